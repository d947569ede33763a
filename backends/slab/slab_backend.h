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
// i.e. a run of ceil(n / c) consecutive free objects (2^align aligned) in
// the emptiest partial slab of some class c: a larger class first (one
// object), then smaller classes (largest first). Borrowing turns exhaustion
// into success as long as some slab has room, at the cost of slack in the
// last object. Free handles borrowed runs like any other (start bit +
// continuation objects + recorded length).
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
// Complexity (S superpages): slab allocate/free O(1) (a few word operations
// on 512-bit maps, list moves; a borrowed run is freed in O(its objects /
// 64)); taking or returning superpages O(log_64 S); runs aligned to more than
// a superpage are O(log_64 S) when an extent of length n + 2^(k-9) - 1
// exists, else an exact scan of the shorter extents. Borrowing looks at one
// slab per class (<= 26). Edge segment operations are bounded by their size
// (< 1024 frames, 16 words). Stats() is O(log_64 S + classes), using a cached
// longest free-object run per slab (refreshed by Stats when stale).
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
// Stats: free_pages = total - requested lengths of live runs (class slack and
// run slack count as free); free_superpages = superpages in the pool (+ the
// cached empty one), exact and O(1); largest_free_run = max(512 x longest
// pool extent, longest free edge run, max over classes of (longest free
// object run in the borrow candidate slab) x class), which is exactly the
// largest N for which Allocate(N, 0) succeeds; free_runs = pool extents +
// free edge runs + free objects in partial slabs.
//
// Metadata: per superpage 24 B of state (links, tags, counters), 192 B of
// slab maps (interleaved so that a class >= 8 slab lives in one cache line)
// and 4 B of extent list heads: 220 B per 2 MiB, about 110 KiB per GiB
// (0.011 %), plus < 5 KiB for the edges. Construction is O(S) and writes only
// the 28 B per superpage of state and list heads (7 MB and ~0.2 ms for
// 64 GiB).
//
// Invariants (checked by CheckInvariants): pool extents are maximal, tagged
// at both ends and listed under their length; every slab holds at least one
// live object; its maps, counters, summary, cached longest run and bucket
// agree and every allocated object belongs to exactly one recorded run; every
// superpage that is not a slab, the cached one or the first/last superpage of
// a live run is kFree; the counters equal what the structures hold.
//
// Thread-safety: none; single-threaded by contract (PageBackend). Stats()
// refreshes a cache and must not run concurrently with itself either.
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
  uint64_t slab_superpages() const { return slab_superpages_; }

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
    // slab: cached longest run of free objects, kLongestUnknown when stale.
    // A cache that const Stats() may refresh.
    uint16_t longest;
  };
  static_assert(sizeof(SuperpageMeta) == 24, "SuperpageMeta grew");
  static constexpr uint16_t kLongestUnknown = 0xffff;

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

  // Internal results are frame numbers, kNoFrame for failure.
  static constexpr uint64_t kNoFrame = UINT64_MAX;

  // Slab path.
  // Takes the lowest free object of slab `sp` (class `ci`) for `n` pages.
  uint64_t AllocateObjectFrom(uint32_t sp, int ci, uint64_t n);
  // Takes objects [obj, obj + count) of slab `sp` for one run of `n` pages.
  uint64_t AllocateObjects(uint32_t sp, int ci, uint32_t obj, uint32_t count, uint64_t n);
  // Exhaustion fallback: a run of consecutive free objects in the emptiest
  // partial slab of some class, classes tried from `first_class` upwards,
  // then downwards.
  uint64_t Borrow(uint64_t n, unsigned align, int first_class);
  // First object index in slab `sp` starting `count` free objects whose
  // frame is 2^align aligned, or -1.
  int64_t FindObjects(uint32_t sp, int ci, uint32_t count, unsigned align) const;
  // Longest run of free objects in slab `sp` (cached in its meta).
  uint32_t LongestFreeObjects(uint32_t sp) const;
  // The slab Borrow and Stats look at for class `ci`: the head of its
  // emptiest non-empty bucket. REQUIRES: bucket_mask_[ci] != 0.
  uint32_t BorrowCandidate(int ci) const;
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

  PageRun range_;
  uint64_t sp_base_ = 0;         // absolute superpage number of local index 0
  uint32_t num_superpages_ = 0;  // S
  uint64_t sp_frames_begin_ = 0;  // [begin, end): frames in whole superpages
  uint64_t sp_frames_end_ = 0;

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

  EdgeSegment edges_[2];
  uint64_t free_pages_ = 0;
  uint64_t metadata_bytes_ = 0;
};

}  // namespace l4re_ma

#endif  // L4RE_MA_BACKENDS_SLAB_SLAB_BACKEND_H_
