// backends/slab/slab_backend.h: the "slab" backend (slab-of-superpages), a
// physical-page allocator that keeps 2 MiB superpages whole.
//
// Use it where superpage (huge-page, guest-RAM) requests must keep succeeding
// while small requests come and go, e.g. the pool of a hypervisor that backs
// guest RAM with 2 MiB mappings and also hands out page tables and buffers:
//
//   l4re_ma::SlabBackend slab({l4re_ma::FrameNumber(0x40000),
//                              l4re_ma::PageCount(262144)});   // 1 GiB
//   auto small = slab.Allocate(l4re_ma::PageCount(3), l4re_ma::AlignOrder(0));
//   auto huge = slab.Allocate(l4re_ma::PageCount(1024), l4re_ma::AlignOrder(9));
//   if (small) (void)slab.Free({*small, l4re_ma::PageCount(3)});
#ifndef L4RE_MA_BACKENDS_SLAB_SLAB_BACKEND_H_
#define L4RE_MA_BACKENDS_SLAB_SLAB_BACKEND_H_

#include <cstdint>
#include <memory>
#include <optional>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/string_view.h"
#include "core/page_backend.h"
#include "core/types.h"

namespace l4re_ma {

// SlabBackend: size-class slabs inside 2 MiB superpages.
//
// Purpose: keep 2 MiB superpages whole, so that superpage requests keep
// succeeding under churn of small requests. Small requests are packed into a
// few "slab" superpages; a slab whose objects all die gives its superpage
// back, and the rest of the pool stays in long free extents.
//
// Layout. The range is cut into superpages: 512 frames starting at an
// absolute frame number that is a multiple of 512, entirely inside the range.
// Frames before the first and after the last whole superpage (fewer than 512
// at each end; the whole range when it holds no whole superpage, then fewer
// than 1024) form at most two "edge segments" that can never be part of a
// superpage. An exact first-fit bitmap allocator (any length, any alignment)
// serves them; small and odd requests use them before breaking a superpage,
// so the edges are fully usable and cost no superpage.
//
// Superpage pool. Entirely free superpages form maximal free extents
// (coalesced at once, boundary tags in a side array), kept in one intrusive
// list per exact length; a 64-ary summary bitmap over lengths gives best fit
// (the smallest extent that fits) and the longest extent in O(log_64 S) for S
// superpages. Slab refills thus take the smallest holes first and long
// extents stay long. Runs of >= 2 superpages mark only their first and last
// superpage, so taking and returning them is O(log_64 S), not O(length).
//
// Slabs. A request of at most 256 pages with alignment order <= 8 is a slab
// request. A slab is one superpage carved into objects of one size class at
// offsets i * class, so all objects of a class that is a multiple of 2^k are
// 2^k aligned. The 26 classes are
//   1 2 3 4 5 6 7 8 10 12 14 16 20 24 28 32 40 48 56 64 72 84 100 128 168 256
// (above 64, one class per objects-per-slab count: 72 holds 7, 84 holds 6,
// 100 holds 5, and so on). A request takes the smallest class >= its length
// that is a multiple of 2^align. Per slab, in a side array: a free-object
// bitmap with a summary byte, an allocation-start bitmap and the packed
// requested length (minus one) of each run's last object, so Free checks the
// exact start and length. Partial slabs of a class sit in 8 fullness buckets
// and allocation takes the fullest one, so lightly used slabs drain.
//
// Allocation order for a slab request: (a) the fullest partial slab of its
// class; (b) the edge segments; (c) a fresh superpage (the cached empty one,
// else best fit from the pool); (d) only when no superpage is left: borrow,
// i.e. a run of ceil(n / c) consecutive free objects (2^align aligned) in a
// partial slab of some class c: a larger class first (one object, from its
// fullest slab), then smaller classes (largest first). Within a class the
// run-length index (below) gives the slab whose longest free run fits best,
// and in it the shortest of the first 4 free runs that fit is taken, so long
// runs stay long. Borrowing turns exhaustion into success whenever any slab
// has room: for requests aligned to no more than one object it is exact (it
// fails only if no slab of any class holds the run), larger alignments take
// a slab whose longest run guarantees an aligned fit, else probe 4 slabs.
// Slack is at most the last object. Free handles borrowed runs like any
// other (start bit + continuation objects + recorded length).
//
// Run-length index. Every slab records its longest run of free objects,
// exact at all times: a single-object allocation (the lowest free object)
// can only shorten a longest run by one, unless another run as long exists
// (a word-parallel test, needed only when the other free objects could
// form one); a free merges the object with its neighbours (a ctz/clz on the
// object's word). Per class, the slabs sit in one circular list per longest
// run (sentinel nodes, 8-byte links in a side array) with a 576-bit set of
// non-empty lengths, so "a slab of class c with a run >= k" and "the
// longest run of class c" are a bit search, never a scan of slabs. Lengths
// 0 (full) and 1 share a list: a slab flipping between full and one free
// object, the most common change, moves nowhere; such slabs are found
// through the fullness buckets.
//
// Superpage runs. Requests above 256 pages or with alignment order >= 9 try
// the edge segments first, then take ceil(n / 512) contiguous superpages,
// best fit, aligned to 2^(k-9) superpages for k > 9, and finally borrow
// (d). The tail of a run that is not a multiple of 512 (and the rest of a
// superpage taken by a 257..511-page request) is slack: it counts as free in
// free_pages but is unusable until the run is freed.
//
// Hysteresis. When a slab empties its superpage becomes the one cached empty
// superpage (a previously cached one goes back to the pool), so that a
// single allocate/free cycle does not split and re-coalesce pool extents
// each time. It is invisible: Stats() reports it as back in the pool,
// coalesced with its neighbours, and superpage-run allocation returns it to
// the pool first. After freeing everything, Stats() equals a fresh backend's.
//
// Hot run. The backend remembers the last run it handed out when freeing it
// at once would restore the state from which the same request takes that
// same run again: an object of a partial slab whose fullness bucket it
// would not change (path a), object 0 of a freshly carved slab (path c), or
// a superpage run. When exactly that run is freed next, it is parked: the
// structures keep it allocated, and the next Allocate of the same length and
// alignment hands it out again in O(1); any other call first puts it back
// through the ordinary Free. Stats() reports the state with the run freed,
// arithmetically (the parked superpage or run counts as a free block
// coalesced with its neighbours; the parked object's merged run counts for
// its class), so the hot run is invisible: every answer and every Stats()
// equals that of a backend that freed it at once (see the differential
// test). An allocate/free ping-pong costs ~5 ns per pair.
//
// Complexity (S superpages): slab allocate/free O(1) (a few word operations
// on 512-bit maps, list moves; the run-length test is O(log run) passes
// over <= 8 words; a borrowed run is freed in O(its objects / 64)); taking
// or returning superpages O(log_64 S); runs aligned to more than a
// superpage are O(log_64 S) when an extent of length n + 2^(k-9) - 1 exists,
// else an exact scan of the shorter extents. Borrowing: per class (<= 26) a
// bit search in the run-length set, then in one slab (at most 4 for larger
// alignments) O(log n) word-parallel passes over <= 8 words to place the
// run and to recompute that slab's longest run: no slab is scanned
// (measured ~0.2 us for a few pages, 0.5-0.75 us for a 250-500-page run
// out of single-page slabs). Edge segment operations are bounded by their
// size (< 1024 frames, 16 words). Stats() is O(log_64 S + classes x 9 words).
// CheckInvariants() is O(range).
//
// Fragmentation. Internal waste for align-0 requests (slack / class):
// <= 10 % up to 16 pages, <= 17.5 % up to 64, <= 21 % up to 128, <= 23.2 %
// up to 168, <= 34 % for 169..256 (two objects per superpage); plus per slab
// a tail of 512 mod class pages (at most 32, 6.25 %, for classes 40 and 48).
// Aligned requests round up to a multiple of 2^align. 257..511-page requests
// waste up to half a superpage. A superpage is broken for small requests
// only when no partial slab of the class and no edge space exists; under
// steady churn the slab superpages stay within a small factor of the live
// small data and the rest of the pool stays whole (see the churn test).
//
// Stats (all for the state with a parked hot run freed): free_pages = total
// - requested lengths of live runs (class slack and run slack count as
// free); free_superpages = superpages in the pool (+ the cached empty one),
// exact and O(1); largest_free_run = max(512 x longest pool extent, longest
// free edge run, max over classes of (longest free-object run of any of its
// slabs) x class), which is exactly the largest N for which Allocate(N, 0)
// succeeds; free_runs = pool extents + free edge runs + free objects in
// partial slabs.
//
// Metadata: per superpage 24 B of state (links, tags, counters), 8 B of
// run-length links, 192 B of slab maps (interleaved so that a class >= 8
// slab lives in one cache line) and 4 B of extent list heads: 228 B per
// 2 MiB, about 114 KiB per GiB (0.011 %), plus ~16 KiB fixed (run-length
// sentinels and sets) and < 5 KiB for the edges. Construction is O(S) and
// writes only the 28 B per superpage of state and list heads (7.5 MB and
// ~0.2 ms for 64 GiB).
//
// Invariants (checked by CheckInvariants): pool extents are maximal, tagged
// at both ends and listed under their length; every slab holds at least one
// live object; its maps, counters, summary, longest run and bucket agree,
// it sits in the run-length list of its longest run, the length sets match
// the lists, and every allocated object belongs to exactly one recorded run;
// every superpage that is not a slab, the cached one or the first/last
// superpage of a live run is kFree; the hot run is a live run of its kind;
// the counters equal what the structures hold.
//
// Thread-safety: none; single-threaded by contract (PageBackend). Stats()
// refreshes the edge segments' cached longest run and must not run
// concurrently with itself either.
//
// When to choose it: pools that must keep serving 2 MiB (and larger)
// superpage requests under heavy churn of small requests (guest RAM next to
// page tables and buffers). For pools with only small requests, a bitmap or
// buddy backend wastes less; for arbitrary large sizes an extent backend
// fits tighter; tiny pools (a few superpages) lose capacity to per-class
// partial slabs and rely on borrowing.
//
// REQUIRES: range.pages >= 1 and fewer than 2^32 - 1 superpages in the range.
class SlabBackend final : public PageBackend {
 public:
  // Number of size classes and the largest slab class, in pages.
  static constexpr int kNumClasses = 26;
  static constexpr uint64_t kMaxClassPages = 256;
  // Largest alignment order a slab object can carry (class 256 objects are
  // 256-page aligned); order 9 and above take the superpage path.
  static constexpr unsigned kMaxSlabAlignOrder = 8;
  // One run-length list per class and run length 0..objects per slab
  // (checked against the class table).
  static constexpr int kRunLists = 1723;

  explicit SlabBackend(PageRun range);
  SlabBackend(const SlabBackend&) = delete;
  SlabBackend& operator=(const SlabBackend&) = delete;
  ~SlabBackend() override;

  absl::string_view name() const override { return "slab"; }
  PageRun range() const override { return range_; }

  std::optional<FrameNumber> Allocate(PageCount pages, AlignOrder align) override;
  [[nodiscard]] bool Free(PageRun run) override;
  BackendStats Stats() const override;
  absl::Status CheckInvariants() const override;

  // Pages of size class `class_index` (0 <= class_index < kNumClasses).
  static PageCount ClassPages(int class_index);
  // The class a slab request of `pages` at `align` starts with, or -1 when
  // the request takes the superpage-run path.
  static int ClassFor(PageCount pages, AlignOrder align);
  // Number of whole superpages in the range, and frames outside them.
  uint64_t superpages() const { return num_superpages_; }
  PageCount edge_pages() const;
  // Number of superpages currently carved into slabs.
  uint64_t slab_superpages() const {
    return slab_superpages_ - (HotParked(kHotFreshSlab) ? 1 : 0);
  }

 private:
  static constexpr uint32_t kNil = UINT32_MAX;
  static constexpr int kBuckets = 8;
  static constexpr uint8_t kNoBucket = 0xff;

  enum State : uint8_t {
    kFree = 0,  // in the pool, or inside a run (between its first and last)
    kSlab = 1,
    kRunHead = 2,  // first superpage of a live run
    kRunTail = 3,  // last superpage of a live run of >= 2 superpages
    kCached = 4,   // the one cached empty superpage (cached_sp_)
  };

  // Per-superpage state, 24 bytes.
  struct SuperpageMeta {
    uint32_t prev;  // extent list (at an extent's start) or slab bucket list
    uint32_t next;
    union {
      struct {
        uint32_t len;    // valid at an extent's first superpage
        uint32_t start;  // valid at an extent's last superpage
      } ext;
      uint64_t run_pages;  // requested pages, valid at a run head
    } u;
    uint16_t free_objs;  // slab: free objects
    uint8_t state;
    uint8_t cls;      // slab: class index
    uint8_t bucket;   // slab: fullness bucket, kNoBucket when full
    uint8_t summary;  // slab: bit w set iff free-object word w is non-zero
    // slab: the longest run of free objects, always exact (0 when full,
    // the object count while freshly carved).
    uint16_t longest;
  };
  static_assert(sizeof(SuperpageMeta) == 24, "SuperpageMeta grew");

  // Links of the run-length lists: circular, doubly linked, one node per
  // superpage (index sp) and one sentinel per list (index S + list), so
  // that moving a slab between lists is branch-free.
  struct RunLink {
    uint32_t prev;
    uint32_t next;
  };

  // Per-superpage slab bits, valid while the superpage is a slab: three
  // 512-bit maps (free objects; allocation starts, with sentinels past the
  // last object; packed requested lengths), interleaved so that a slab of
  // <= 64 objects (class >= 8) lives in the first cache line. The word
  // order is given by kFreeWord, kStartWord and kLenWord in the .cc file.
  struct alignas(64) SlabBits {
    uint64_t w[24];
  };

  // A 64-ary bitmap tree over [0, n): set, clear, next set bit at or after
  // i, last set bit, each O(log_64 n).
  class SummaryBitmap {
   public:
    static constexpr uint64_t kNone = UINT64_MAX;
    void Init(uint64_t nbits);
    void Set(uint64_t i);
    void Clear(uint64_t i);
    bool Test(uint64_t i) const { return (words_[i >> 6] >> (i & 63)) & 1; }
    uint64_t FindNext(uint64_t i) const;
    uint64_t FindLast() const;
    uint64_t bytes() const { return words_.capacity() * sizeof(uint64_t); }
    absl::Status Check() const;

   private:
    std::vector<uint64_t> words_;
    uint64_t nbits_ = 0;
    int levels_ = 0;
    uint64_t offset_[8] = {};  // first word of each level in words_
    uint64_t count_[8] = {};   // words per level
  };

  // The run-length index of one class. Every slab of the class sits in
  // the list of its longest free run L, except that L = 0 (full) and L = 1
  // share the list of 1: a slab flipping between full and one free object,
  // the most common change, stays put. A slab whose longest run is 1 is
  // found through the fullness buckets instead. Bit L is set iff list L is
  // non-empty, for L in [1, objs] (objs: a freshly carved slab); searches
  // look only at [2, objs): next length at or after i, the largest one, at
  // most 9 words each.
  struct RunLengthSet {
    static constexpr uint32_t kNone = UINT32_MAX;
    uint64_t words[9] = {};
    void Set(uint32_t i) { words[i >> 6] |= uint64_t{1} << (i & 63); }
    // Removes i if `gone`, branch-free.
    void ClearIf(uint32_t i, bool gone) { words[i >> 6] &= ~(uint64_t{gone} << (i & 63)); }
    bool Test(uint32_t i) const { return (words[i >> 6] >> (i & 63)) & 1; }
    // Smallest member in [i, objs), or kNone. REQUIRES: i >= 2.
    uint32_t FindNext(uint32_t i, uint32_t objs) const;
    // The largest member in [2, objs), 0 when none.
    uint32_t FindLast(uint32_t objs) const;
  };

  // Exact first-fit bitmap allocator for one edge segment (< 1024 frames).
  class EdgeSegment {
   public:
    static constexpr uint32_t kWords = 16;
    void Init(uint64_t base, uint32_t size);
    bool Contains(uint64_t frame) const { return frame - base_ < size_; }
    // Returns the first frame or kNoFrame.
    uint64_t Allocate(uint64_t n, unsigned align);
    bool Free(uint64_t frame, uint64_t n);
    uint32_t size() const { return size_; }
    uint32_t free_pages() const { return free_pages_; }
    uint32_t free_runs() const { return free_runs_; }
    uint32_t Largest() const;
    uint64_t bytes() const { return run_len_.capacity() * sizeof(uint16_t); }
    absl::Status Check(uint64_t* live_pages) const;

   private:
    bool IsFree(uint32_t i) const { return (free_[i >> 6] >> (i & 63)) & 1; }
    uint32_t NextFree(uint32_t i) const;
    uint32_t NextUsed(uint32_t i) const;
    void SetRange(uint32_t i, uint32_t n, bool free);

    uint64_t base_ = 0;
    uint32_t size_ = 0;
    uint32_t free_pages_ = 0;
    uint32_t free_runs_ = 0;
    mutable uint32_t largest_ = 0;
    mutable bool largest_dirty_ = false;
    uint64_t free_[kWords] = {};
    std::vector<uint16_t> run_len_;  // requested length at live run starts
  };

  // The hot run (see the class comment): the last run handed out, if it
  // came from a path whose allocate/free round trip restores the state,
  // and whether it is parked (freed, but not yet put back).
  enum HotKind : uint8_t {
    kHotNone = 0,
    kHotObject,     // one object of a partial slab; its bucket is the same
                    // with or without the object
    kHotFreshSlab,  // object 0 of a freshly carved slab, the only partial
                    // slab of its class; freeing it empties the slab
    kHotRun,        // a superpage run; the cache is empty
  };
  struct HotRun {
    uint64_t frame = 0;
    uint64_t pages = 0;
    uint32_t sp = 0;
    uint32_t extra = 0;  // object index (slab kinds) or superpages (kHotRun)
    uint8_t kind = kHotNone;
    uint8_t align = 0;  // alignment order of the request
    bool parked = false;
  };

  // Internal results are frame numbers, kNoFrame for failure.
  static constexpr uint64_t kNoFrame = UINT64_MAX;

  // Allocate and Free past the hot-run shortcut, out of line.
  std::optional<FrameNumber> AllocateGeneral(uint64_t n, unsigned k);
  bool FreeGeneral(uint64_t f, uint64_t n);
  // Puts a parked hot run back (the Free that parking deferred).
  void FlushHot();
  // Stats() of the state this one stands for: the parked run freed.
  bool HotParked(HotKind kind) const { return hot_.parked && hot_.kind == kind; }

  // Slab path.
  // Takes the lowest free object of slab `sp` (class `ci`) for `n` pages;
  // records its index in hot_.extra.
  uint64_t AllocateObjectFrom(uint32_t sp, int ci, uint64_t n);
  // Takes objects [obj, obj + count) of slab `sp` for one run of `n` pages;
  // `keeps_longest`: the caller knows the longest free run stays as it is.
  uint64_t AllocateObjects(uint32_t sp, int ci, uint32_t obj, uint32_t count, uint64_t n,
                           bool keeps_longest);
  // Exhaustion fallback: a run of consecutive free objects in a partial
  // slab of some class, classes tried from `first_class` upwards, then
  // downwards; within a class the slab whose longest run fits best.
  uint64_t Borrow(uint64_t n, unsigned align, int first_class);
  uint64_t BorrowFromClass(int ci, uint64_t n, unsigned align);
  // Where to take `count` free objects in slab `sp` whose first frame is
  // 2^align aligned, or -1: for alignment to a single object, the start of
  // the shortest of the first 4 free runs that fit (*keeps_longest: taking
  // them leaves the slab's longest run as it is); else the first aligned
  // fit. Word-parallel: O(log count) passes over at most 8 words.
  int64_t FindObjects(uint32_t sp, int ci, uint32_t count, unsigned align,
                      bool* keeps_longest) const;
  // Records the longest free run of slab `sp` (class `ci`), moving it to
  // the head of the matching run-length list if that is another one.
  void SetLongest(uint32_t sp, int ci, uint32_t longest);
  void UnlinkRun(uint32_t sp, int ci);
  void LinkRun(uint32_t sp, int ci, uint32_t longest);
  uint32_t RunList(int ci, uint32_t len) const;
  // The longest free run the slab of the parked kHotObject would have.
  uint32_t HotObjectMergedRun() const;
  bool FreeObject(uint32_t sp, uint64_t offset, uint64_t n);
  void CarveSlab(uint32_t sp, int ci);
  void LinkSlab(uint32_t sp, int ci, int bucket);
  void UnlinkSlab(uint32_t sp);
  void UpdateBucket(uint32_t sp, int ci, uint32_t free_objs);

  // Superpage pool.
  uint64_t AllocateRun(uint64_t n, unsigned align);
  // Takes `count` superpages aligned to 2^align_order (absolute superpage
  // numbers) out of the pool, best fit; returns the first local index.
  std::optional<uint32_t> TakeSuperpages(uint64_t count, unsigned align_order);
  void CarveFromExtent(uint32_t ext, uint32_t len, uint32_t start, uint32_t count);
  void ReleaseSuperpages(uint32_t sp, uint32_t count);
  // Returns the cached empty superpage, if any, to the pool.
  void FlushCachedSuperpage();
  void InsertExtent(uint32_t start, uint32_t len);
  void RemoveExtent(uint32_t start, uint32_t len);

  uint64_t AllocateFromEdges(uint64_t n, unsigned align);

  uint64_t SuperpageFrame(uint32_t sp) const {
    return (sp_base_ + sp) << kSuperPageOrder;
  }

  absl::Status CheckSuperpages(uint64_t* live_pages) const;
  absl::Status CheckLists() const;
  absl::Status CheckHot() const;

  PageRun range_;
  uint64_t sp_base_ = 0;         // absolute superpage number of local index 0
  uint32_t num_superpages_ = 0;  // S
  uint64_t sp_frames_begin_ = 0;  // [begin, end): frames in whole superpages
  uint64_t sp_frames_end_ = 0;

  HotRun hot_;

  std::unique_ptr<SuperpageMeta[]> meta_;
  std::unique_ptr<SlabBits[]> bits_;  // uninitialized until carved
  std::vector<uint32_t> ext_heads_;   // by extent length, valid iff bit set
  SummaryBitmap ext_lengths_;         // lengths with a non-empty list

  uint64_t free_superpages_ = 0;  // in the pool, without the cached one
  uint32_t cached_sp_ = kNil;     // last emptied slab superpage, or kNil
  uint64_t num_extents_ = 0;
  uint64_t slab_superpages_ = 0;
  uint64_t free_objects_ = 0;  // free objects in partial slabs

  uint32_t slab_heads_[kNumClasses][kBuckets];
  uint8_t bucket_mask_[kNumClasses] = {};
  uint32_t class_mask_ = 0;  // classes with a partial slab

  // Run-length index: per class, the lengths present and one list per
  // length (sentinel node S + kTables.run_base[class] + length).
  RunLengthSet run_lengths_[kNumClasses];
  uint32_t run_list_base_[kNumClasses];  // S + kTables.run_base[class]
  std::unique_ptr<RunLink[]> run_links_;  // S + kRunLists nodes

  EdgeSegment edges_[2];
  uint64_t free_pages_ = 0;
  uint64_t metadata_bytes_ = 0;
};

}  // namespace l4re_ma

#endif  // L4RE_MA_BACKENDS_SLAB_SLAB_BACKEND_H_
