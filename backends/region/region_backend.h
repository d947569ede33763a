// backends/region/region_backend.h: an extent allocator for physical frames.
// Best fit by size, immediate coalescing, any run length and any alignment;
// the backend to choose for CONTINUOUS and DMA memory, where large runs must
// stay intact.
//
//   l4re_ma::RegionBackend region({l4re_ma::FrameNumber(0x100000),
//                                  l4re_ma::PageCount(1 << 20)});
//   // 300 pages (1.2 MiB) starting on a 1 MiB boundary:
//   std::optional<l4re_ma::FrameNumber> f =
//       region.Allocate(l4re_ma::PageCount(300), l4re_ma::AlignOrder(8));
//   if (f) { ...; (void)region.Free({*f, l4re_ma::PageCount(300)}); }
#ifndef L4RE_MA_BACKENDS_REGION_REGION_BACKEND_H_
#define L4RE_MA_BACKENDS_REGION_REGION_BACKEND_H_

#include <cstdint>
#include <optional>
#include <vector>

#include "absl/base/attributes.h"
#include "absl/container/btree_map.h"
#include "absl/status/status.h"
#include "absl/strings/string_view.h"
#include "core/page_backend.h"
#include "core/types.h"

namespace l4re_ma {

// RegionBackend hands out runs of exactly the requested length (no rounding
// to powers of two) from a set of free extents, like vmem's arenas (Bonwick
// & Adams, USENIX 2001) and TLSF (Masmano et al., ECRTS 2004), but with an
// exact best fit instead of their instant/good fit.
//
// Strategy
//   The range is tiled by segments: free extents and live runs. Three
//   structures, none of which allocates per operation in the steady state:
//   - Boundary tags (TagMap, below): a radix tree over the frames of the
//     range that holds a 32-bit tag at the boundary frames only, like
//     jemalloc's extent map: at the first frame of every live run its
//     length, at the first and last frame of every free extent its node
//     (not at the range's own first and last frame, which no neighbour ever
//     looks up: a fresh backend holds no tags at all). A lookup is one
//     dependent load per level: 2 up to 2^15 frames (128 MiB), 3 up to 2^24
//     (64 GiB), 4 up to 2^33 (32 TiB).
//   - Extent nodes: one 32-byte node per free extent (first, pages, links)
//     in a pooled array with a free list of slots.
//   - The size index. Extents of up to kExactBinPages pages sit in exact-size
//     bins, intrusive doubly-linked LIFO lists through the nodes, with a
//     two-level bitmap of the non-empty bins; larger extents sit in one
//     intrusive AVL tree ordered by (pages, first).
//   Allocate(n, 0) takes the smallest extent of at least n pages: two
//   find-first-set scans of the bin bitmap, or for large sizes a lower bound
//   in the AVL tree. Among extents of equal size an exact bin yields the one
//   that became that size last (LIFO: cheap, and the most recently touched
//   metadata); the AVL tree yields the lowest address. The run is carved
//   from the top of the extent, so the extent keeps its first frame: three
//   tag writes (the run's tag, the extent's new last frame, the old one
//   cleared) and a move of the node to the bin of its new size (O(1); in
//   place in the AVL tree unless the extent passes another's key).
//   Allocate(n, k) with k > 0 needs an extent holding an n-page run that
//   starts on a multiple of 2^k. Any extent of n + 2^k - 1 pages or more
//   does. Smaller candidates (n .. n + 2^k - 2 pages) fit only if well
//   placed, so the search probes at most kMaxAlignedProbes of them in size
//   order, the first that fits being the best fit; past the probe budget it
//   takes the smallest extent that is sure to fit. The run goes at the
//   highest aligned frame of the extent, or at its first frame if that is
//   aligned and the top is not (so that an extent is split only when neither
//   end is aligned); the head and tail slack stay free extents. Only when no
//   extent is sure to fit and the probes found nothing does the search go on
//   exhaustively (over the remaining candidates, or over the aligned frames
//   of the range if there are fewer of those), so Allocate returns
//   std::nullopt only if no free aligned run exists at all.
//   Free(run) reads the tag at run.first: it must be a live run of exactly
//   run.pages pages. Live tags exist exactly at the first frames of live
//   runs, so that rejects double frees, runs never handed out, parts of a
//   run, two runs at once and frames outside the range, before anything
//   changes. The tags at run.first - 1 and run.first + run.pages say whether
//   a neighbour is a free extent (and which); the run merges with it.
//   Hot run: a run that is freed right after it was allocated (Allocate(n,
//   0) carved it from the top of an extent, nothing in between) is not
//   merged back at once but parked, and the next Allocate(n, 0) hands it out
//   again; any other call merges it first. The merge would restore exactly
//   the state before the allocation, whose best fit for n was that run (the
//   extent back at the head of its bin), so every answer is that of the
//   merged state, and Stats() reports that state too (the counters are
//   updated at once; the tag bytes of the merged state were recorded at the
//   allocation). Allocate and Free test for this first and only then call
//   their general paths, out of line, so that an allocate/free ping-pong
//   runs without a stack frame: about 5 ns per pair.
//
// Complexity (E = free extents, L = live runs, F = frames of the range)
//   Allocate(n, 0), Free: at most 3 tag reads and 4 tag writes of O(log_512
//   F) each (a constant 2 to 4 loads for any real range), plus O(1) for the
//   bins, or O(log E) for an extent over kExactBinPages pages (AVL tree).
//   Worst case: no hashing, no rebuilds, no scans; only the node pools
//   grow, by doubling (a rare copy, amortized O(1)). A 1-64-page steady
//   state at 70 % occupancy measured 45-50 ns per operation at 64 MiB and
//   1 GiB (2.3 GHz), about one DRAM miss more at 64 GiB.
//   Allocate(n, k): the same plus kMaxAlignedProbes probes, except when no
//   free extent is sure to fit: then O(min(E, A (log F + log E))) to find a
//   run or prove there is none (A = aligned frames in the range).
//   Stats: O(1), but O(log E) for largest_free_run while some extent is over
//   kExactBinPages pages. Construction: O(1) whatever the size of the range.
//   CheckInvariants: O(E + L + radix nodes).
//   Runs of 2^31 pages (8 TiB) or more keep their length in a side B-tree
//   map: O(log) for those.
//
// Fragmentation
//   No internal fragmentation: a run is exactly the requested length. Best
//   fit is among the policies with the least external fragmentation on real
//   traces (Wilson et al. 1995); free neighbours always coalesce, so after
//   every run is freed the range is one extent again. Aligned carving leaves
//   the slack free for later requests. The exact bins give up address order
//   among equal sizes (which would cost about 10 ns per operation, a fifth
//   of it): on random traces of uniform sizes that changes nothing
//   measurable, on heavy-tailed ones (60 % of 1-16 pages, 4 % of 512-2048)
//   it costs some: at 70 % occupancy the largest free run averaged 44 %
//   instead of 51 % of the free pages, at 85 % 0.4 % instead of 0.1 % of the
//   requests failed.
//
// Metadata (metadata_bytes counts it exactly; it depends only on the
// current extents and runs, not on the history)
//   A fixed part (the object with the bin heads and bitmap, about 2.4 KiB);
//   a 32-byte node per free extent; the radix nodes holding the tags: per
//   64-frame window with 1 to 8 tags a 40-byte leaf, with more a 272-byte
//   one, and a 2 KiB inner node per 2^15 frames that hold any tag (and one
//   per 2^24 above those). A fresh backend holds no tags: 2.4 KiB for any
//   range. A pool fragmented into 1-64-page runs takes about half a byte per
//   frame (8.8 MB for 64 GiB with 360 000 live runs), a pool of a few large
//   runs a few KiB. Runs of 2^31 pages or more add a side-map entry each.
//   The node pools keep their high-water capacity, which is not counted.
//
// Invariants (checked by CheckInvariants)
//   Tags tile the range into segments as above, free extents are never
//   adjacent (fully coalesced), every node in use is the extent its tags
//   name and sits in exactly the bin or tree of its size; the radix nodes'
//   counts, occupancy masks and leaf classes are right; the bitmap matches
//   the bins; the AVL tree is ordered and balanced; the counters match.
//
// Thread-safety: none; single-threaded by contract (see PageBackend).
//
// When to choose it: contiguous and DMA memory, large or oddly sized runs,
// strict alignments, any workload that must keep big extents intact. For a
// flood of single pages a bitmap or slab backend is faster per operation.
class RegionBackend final : public PageBackend {
 public:
  // How many too-small candidates an aligned request probes before it takes
  // the smallest extent that is sure to fit.
  static constexpr int kMaxAlignedProbes = 16;
  // Extents of up to this many pages live in exact-size bins, larger ones in
  // the AVL tree.
  static constexpr uint64_t kExactBinPages = 512;

  // Manages `range`. O(1): the range starts as one free extent.
  // REQUIRES: range.first + range.pages does not overflow. An empty range is
  // allowed and never satisfies an allocation.
  explicit RegionBackend(PageRun range);

  RegionBackend(const RegionBackend&) = delete;
  RegionBackend& operator=(const RegionBackend&) = delete;

  absl::string_view name() const override { return "region"; }
  PageRun range() const override { return range_; }

  // Best fit, see the class comment. Returns std::nullopt when no free run
  // of `pages` pages starts on a multiple of 2^align (or pages is 0).
  std::optional<FrameNumber> Allocate(PageCount pages, AlignOrder align) override;

  // Returns false, changing nothing, unless `run` is exactly a live run.
  [[nodiscard]] bool Free(PageRun run) override;

  BackendStats Stats() const override;
  absl::Status CheckInvariants() const override;

 private:
  static constexpr uint32_t kNil = ~uint32_t{0};

  // A map from offsets [0, size) to 32-bit tags, holding few of them: a
  // radix tree of 512-way inner nodes over 64-offset leaves. A leaf with up
  // to kSmallCap tags stores (offset, tag) pairs unordered, found with a
  // word-parallel byte compare; a fuller one is a dense array. Nodes are
  // allocated when the first tag of their span appears and freed when the
  // last one goes, so the footprint depends only on the tags present.
  class TagMap {
   public:
    static constexpr int kLeafBits = 6;
    static constexpr int kInnerBits = 9;
    static constexpr uint32_t kFanout = uint32_t{1} << kInnerBits;
    static constexpr int kSmallCap = 8;
    static constexpr uint32_t kBig = uint32_t{1} << 31;  // leaf ref: a big leaf
    // Inner levels for 64-bit offsets: ceil((64 - kLeafBits) / kInnerBits).
    static constexpr int kMaxLevels = 7;

    struct Inner {
      uint64_t occupied[kFanout / 64];  // bit i: child[i] != kNil
      uint32_t child[kFanout];          // inner node or leaf ref, or kNil
      uint32_t count;                   // children != kNil
    };
    struct SmallLeaf {
      uint64_t pos;  // byte i: the offset in the window of tags[i], or 0xff
      uint32_t tags[kSmallCap];
    };
    struct BigLeaf {
      uint64_t mask;  // bit i: tags[i] is present
      uint32_t count;
      uint32_t tags[64];
    };

    explicit TagMap(uint64_t size);

    // The tag at `off`, or kNoTag.
    uint32_t Get(uint64_t off) const;
    // Inserts or overwrites the tag at `off`. REQUIRES: tag != kNoTag.
    void Set(uint64_t off, uint32_t tag);
    // Removes the tag at `off`, which must be present.
    void Clear(uint64_t off);
    // The largest offset <= off holding a tag, with its tag; false if none.
    bool Floor(uint64_t off, uint64_t* at, uint32_t* tag) const;
    // Calls f(offset, tag) for every tag in increasing offset order until f
    // returns false; returns whether it ran to the end.
    template <typename F>
    bool ForEach(const F& f) const;
    // Bytes of the nodes in use.
    uint64_t bytes() const {
      return inner_count_ * sizeof(Inner) + small_count_ * sizeof(SmallLeaf) +
             big_count_ * sizeof(BigLeaf);
    }
    uint64_t tag_count() const { return tag_count_; }
    absl::Status Check() const;

   private:
    // The leaf of window w (offsets 64w .. 64w + 63), or kNil.
    uint32_t LeafOf(uint64_t w) const;
    // Set and Clear for the rarer cases: nodes to create or release, dense
    // leaves, a small leaf that fills up.
    void SetSlow(uint64_t off, uint32_t tag);
    void ClearSlow(uint64_t off);
    void SetChild(uint32_t inner, uint32_t i, uint32_t ref);
    uint32_t NewInner();
    uint32_t NewSmall();
    uint32_t NewBig();
    bool FloorIn(uint32_t ref, uint32_t bit, uint32_t* at_bit, uint32_t* tag) const;
    bool MaxIn(uint32_t ref, int level, uint64_t w, uint64_t* at, uint32_t* tag) const;
    template <typename F>
    bool ForEachIn(uint32_t ref, int level, uint64_t w, const F& f) const;
    absl::Status CheckIn(uint32_t ref, int level, uint64_t w, uint64_t* tags,
                         uint64_t* inners, uint64_t* smalls, uint64_t* bigs) const;

    uint64_t size_;
    int levels_;  // inner levels above the leaves, >= 1
    uint32_t root_ = kNil;
    uint64_t tag_count_ = 0;
    uint64_t inner_count_ = 0;
    uint64_t small_count_ = 0;
    uint64_t big_count_ = 0;
    std::vector<Inner> inners_;
    std::vector<SmallLeaf> smalls_;
    std::vector<BigLeaf> bigs_;
    uint32_t free_inner_ = kNil;  // free slots, chained through child[0]
    uint32_t free_small_ = kNil;  // through tags[0]
    uint32_t free_big_ = kNil;    // through tags[0]
  };

  // Tags: a free extent's node index, or kLiveTag | length for a live run
  // (kLiveTag alone: the length is in long_runs_). kNoTag is none of them.
  static constexpr uint32_t kLiveTag = uint32_t{1} << 31;
  static constexpr uint32_t kNoTag = ~uint32_t{0};
  static constexpr uint64_t kMaxShortRun = kLiveTag - 2;

  // A free extent. In an exact bin, link[0] and link[1] are the previous and
  // next extent of the bin's list; in the AVL tree they are the left and
  // right child, with `parent` and `height`. A free node slot chains the
  // free list through link[1].
  struct Extent {
    uint64_t first;
    uint64_t pages;
    uint32_t link[2];
    uint32_t parent;
    int32_t height;
  };
  static_assert(sizeof(Extent) == 32, "Extent should be 32 bytes");

  static constexpr int kBinWords = static_cast<int>(kExactBinPages / 64);
  static_assert(kExactBinPages % 64 == 0 && kBinWords <= 64, "bin bitmap layout");

  // Estimated heap bytes per entry of long_runs_ (a B-tree slot of 16 bytes
  // at 2/3 fill, plus node overhead).
  static constexpr uint64_t kLongRunBytes = 32;

  uint64_t Off(uint64_t frame) const { return frame - range_.first.value(); }
  // Tags the last frame of free extent x, unless it is the range's.
  void TagEnd(uint64_t last, uint32_t x);
  // The live tag for an n-page run at `first` (recording long runs).
  uint32_t LiveTag(uint64_t first, uint64_t n);
  // The length of the live run at `first` whose tag is `tag`.
  uint64_t LiveLength(uint64_t first, uint32_t tag) const;

  // Node pool.
  uint32_t NewExtent(uint64_t first, uint64_t pages);
  void DeleteExtent(uint32_t x);

  // Size index: exact bins and the AVL tree.
  static bool IsLarge(uint64_t pages) { return pages > kExactBinPages; }
  // The address of link[i] of node x, or `other` if x is kNil.
  uint32_t* LinkOr(uint32_t x, int i, uint32_t* other);
  void BinLink(uint32_t x, uint64_t pages);
  void BinUnlink(uint32_t x, uint64_t pages);
  void IndexInsert(uint32_t x);
  void IndexRemove(uint32_t x);
  // Gives the indexed extent x the new first frame and length, moving it in
  // the size index as needed.
  void Rekey(uint32_t x, uint64_t first, uint64_t pages);
  void RekeyLarge(uint32_t x, uint64_t first, uint64_t pages);
  // The smallest extent of at least n pages (best fit), or kNil.
  uint32_t FirstAtLeast(uint64_t n) const;
  // The extent after x in size order, or kNil.
  uint32_t NextBySize(uint32_t x) const;
  // The first non-empty exact bin >= bin, or -1.
  int NextBin(int bin) const;
  // The largest free extent, or kNil.
  uint32_t Largest() const;

  bool KeyLess(uint32_t a, uint32_t b) const;
  int32_t Height(uint32_t x) const { return x == kNil ? 0 : extents_[x].height; }
  void UpdateHeight(uint32_t x);
  void ReplaceChild(uint32_t parent, uint32_t old_child, uint32_t new_child);
  // AVL rotation: x's child on `side` (0 left, 1 right) takes x's place and
  // x becomes its child on the other side. Returns the new subtree root.
  uint32_t Rotate(uint32_t x, int side);
  void Retrace(uint32_t x);
  void AvlInsert(uint32_t x);
  void AvlErase(uint32_t x);
  uint32_t AvlMin(uint32_t x) const;
  uint32_t AvlMax(uint32_t x) const;
  uint32_t AvlNext(uint32_t x) const;
  uint32_t AvlPrev(uint32_t x) const;
  // Checks the subtree at x; marks its nodes in `marks` (which must say 1:
  // a free extent) as 4.
  absl::Status CheckAvl(uint32_t x, uint32_t parent, int32_t* height, uint64_t* count,
                        std::vector<uint8_t>* marks) const;

  // The best extent for an n-page run aligned to 2^order, order > 0, or
  // kNil. Sets *start to where the run goes inside it.
  uint32_t FindAligned(uint64_t n, unsigned order, uint64_t* start) const;
  // Exhaustive fallback of FindAligned over the aligned frames of the range.
  uint32_t FindAlignedByPosition(uint64_t n, unsigned order, uint64_t* start) const;

  // Turns [start, start + n) of the free extent x into a live run.
  void Carve(uint32_t x, uint64_t start, uint64_t n);
  // Allocate and Free past the hot-run shortcut (out of line, so that the
  // shortcut runs without a stack frame).
  ABSL_ATTRIBUTE_NOINLINE std::optional<FrameNumber> AllocateGeneral(uint64_t n,
                                                                    unsigned order);
  ABSL_ATTRIBUTE_NOINLINE bool FreeGeneral(uint64_t first, uint64_t n);
  // Free of a run, all hot-run business done.
  bool FreeSlow(uint64_t first, uint64_t n);
  // Merges a parked hot run.
  void Flush();

  PageRun range_;
  uint64_t range_last_;  // the range's last frame (range_.first if empty)
  TagMap tags_;
  std::vector<Extent> extents_;
  uint32_t free_extent_ = kNil;
  uint32_t scratch_ = 0;  // receives the link writes for missing neighbours
  uint32_t head_extent_ = kNil;  // the free extent at range_.first, untagged
  uint64_t extent_count_ = 0;
  uint64_t live_count_ = 0;
  uint64_t free_pages_ = 0;
  uint64_t free_superpages_ = 0;
  uint32_t avl_root_ = kNil;
  uint64_t large_count_ = 0;
  absl::btree_map<uint64_t, uint64_t> long_runs_;  // first frame -> pages

  // The hot run: the last Allocate(hot_n_, 0) carved [hot_start_, +hot_n_)
  // from the top of extent hot_extent_, and nothing changed since but
  // possibly its Free, which parked it (hot_parked_). While parked, the
  // counters already describe the merged state; hot_tag_bytes_ is
  // tags_.bytes() of that state.
  bool hot_valid_ = false;
  bool hot_parked_ = false;
  uint32_t hot_extent_ = kNil;
  uint64_t hot_start_ = 0;
  uint64_t hot_n_ = 0;
  uint64_t hot_superpages_ = 0;  // superpages the merge adds
  uint64_t hot_tag_bytes_ = 0;

  uint64_t bin_summary_ = 0;  // bit w: bin_words_[w] != 0
  uint64_t bin_words_[kBinWords] = {};
  uint32_t bin_head_[kExactBinPages];  // bin b holds extents of b + 1 pages
};

}  // namespace l4re_ma

#endif  // L4RE_MA_BACKENDS_REGION_REGION_BACKEND_H_
