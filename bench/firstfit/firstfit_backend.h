// bench/firstfit/firstfit_backend.h: the yardstick of the benchmarks, a
// first-fit allocator over an address-ordered free list, the strategy of
// L4Re's Moe (its List_alloc), written by us.
//
//   l4re_ma::FirstFitBackend ff({l4re_ma::FrameNumber(0x40000),
//                                l4re_ma::PageCount(262144)});
//   std::optional<l4re_ma::FrameNumber> f =
//       ff.Allocate(l4re_ma::PageCount(16), l4re_ma::AlignOrder(4));
//   if (f) (void)ff.Free({*f, l4re_ma::PageCount(16)});
//
// It is registered as "firstfit" only inside the bench binaries
// (//bench/firstfit:registered), never in //backends:all: it is the baseline
// every backend is measured against, not a backend to choose.
#ifndef L4RE_MA_BENCH_FIRSTFIT_FIRSTFIT_BACKEND_H_
#define L4RE_MA_BENCH_FIRSTFIT_FIRSTFIT_BACKEND_H_

#include <cstdint>
#include <optional>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/string_view.h"
#include "core/page_backend.h"
#include "core/types.h"

namespace l4re_ma {

// FirstFitBackend: a singly-linked list of free extents sorted by address.
//
// Strategy. Allocate(n, k) walks the list from the lowest address and takes
// the first extent holding n frames from a multiple of 2^k; the run is cut
// at that aligned frame, so the extent leaves a head and/or a tail behind.
// Free(run) walks the list to the run's place in address order and merges
// the run with the extents just below and above it (immediate, complete
// coalescing). That is Moe's List_alloc: O(1) on an empty arena, but every
// free (and every allocation that the low extents cannot serve) costs a walk
// over the free list, which is what the benchmarks show under load.
//
// Memory layout, as in Moe. Moe keeps each list node in the first bytes of
// the free block it describes, so a walk touches one cache line (and one
// page) per free extent. The emulated memory is out of reach here, so the
// node of the extent starting at frame f lives in cache line f - first of a
// header table with one 64-byte line per frame: the walk has the same
// dependent, scattered loads as Moe's. The table is an anonymous mapping
// that the kernel fills lazily; only lines that held a header ever use
// memory. (A compact array of nodes would walk about ten times faster than
// Moe does and flatter the yardstick.)
//
// Exact Free validation (Moe has none; a PageBackend must): two bitmaps mark
// the first and the last frame of every live run. Free(first, n) is exactly
// a live run iff `first` is marked as a start, `first + n - 1` as an end, and
// no start lies in between: O(n / 64) word reads, before anything changes.
//
// Complexity (E = free extents): Allocate O(E) worst case, O(1) when the
// first extent fits; Free O(E); Stats O(E) (largest_free_run and
// free_superpages are found by a walk; the walk is what the operations cost
// anyway, and keeping them would slow the O(1) cases); construction O(n / 64)
// for the bitmaps. CheckInvariants O(n).
//
// Fragmentation: classic address-ordered first fit (Wilson et al. 1995:
// among the policies with the least fragmentation on real traces, with best
// fit); small extents collect at low addresses, which is what makes the walks
// long.
//
// Metadata: 2 bits per frame (64 KiB per GiB) plus one 64-byte header per
// free extent (Moe's headers cost nothing, being inside free memory; here
// they are counted). The header table reserves 64 bytes of address space
// per frame.
//
// Invariants: extents are non-empty, inside the range, sorted, and never
// adjacent; the extents and the live runs tile the range; start/end bits are
// set exactly at the first/last frame of live runs; the counters match.
//
// Thread-safety: none (single-threaded by contract, like every PageBackend).
//
// When to choose it: never in production; it is the baseline.
//
// REQUIRES: range.pages <= 2^32 (the header table is 64 bytes per frame).
class FirstFitBackend final : public PageBackend {
 public:
  explicit FirstFitBackend(PageRun range);
  ~FirstFitBackend() override;

  FirstFitBackend(const FirstFitBackend&) = delete;
  FirstFitBackend& operator=(const FirstFitBackend&) = delete;

  absl::string_view name() const override { return "firstfit"; }
  PageRun range() const override { return range_; }
  std::optional<FrameNumber> Allocate(PageCount pages, AlignOrder align) override;
  [[nodiscard]] bool Free(PageRun run) override;
  BackendStats Stats() const override;
  absl::Status CheckInvariants() const override;

 private:
  static constexpr uint64_t kNil = ~uint64_t{0};

  // The list node of the free extent starting at a frame, in that frame's
  // line of the header table. Offsets are frames from range.first.
  struct alignas(64) Header {
    uint64_t pages;
    uint64_t next;  // offset of the next extent up, or kNil
  };

  Header& At(uint64_t offset) const { return headers_[offset]; }

  bool TestBit(const std::vector<uint64_t>& map, uint64_t i) const {
    return (map[i >> 6] >> (i & 63)) & 1;
  }
  void SetBit(std::vector<uint64_t>& map, uint64_t i, bool on) {
    const uint64_t bit = uint64_t{1} << (i & 63);
    if (on) {
      map[i >> 6] |= bit;
    } else {
      map[i >> 6] &= ~bit;
    }
  }
  // Whether a start bit is set for an offset in [lo, hi).
  bool AnyStartIn(uint64_t lo, uint64_t hi) const;

  PageRun range_;
  Header* headers_ = nullptr;  // one line per frame, mapped lazily
  uint64_t header_bytes_ = 0;
  uint64_t head_ = kNil;       // offset of the lowest extent
  uint64_t free_pages_ = 0;
  uint64_t free_runs_ = 0;
  std::vector<uint64_t> starts_;  // bit i: frame range.first + i starts a live run
  std::vector<uint64_t> ends_;    // bit i: frame range.first + i ends a live run
};

}  // namespace l4re_ma

#endif  // L4RE_MA_BENCH_FIRSTFIT_FIRSTFIT_BACKEND_H_
