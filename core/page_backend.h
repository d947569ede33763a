// core/page_backend.h: the one interface every physical-memory backend
// implements.
//
// A backend manages a fixed range of emulated physical memory, counted in
// 4 KiB frames. It hands out runs of contiguous frames at a requested
// alignment and takes them back. It knows nothing of dataspaces, quotas,
// capabilities or the C API: the dispatcher (core/local_allocator.h) validates
// every request, charges quotas and keeps statistics before it calls a
// backend. That is what makes a backend embeddable on its own, e.g. as the
// guest-RAM allocator of a hypervisor or the pool of a DMA-buffer service:
//
//   l4re_ma::BuddyBackend buddy({l4re_ma::FrameNumber(0x40000),
//                                l4re_ma::PageCount(262144)});
//   std::optional<l4re_ma::FrameNumber> f =
//       buddy.Allocate(l4re_ma::PageCount(16), l4re_ma::AlignOrder(4));
//   if (f) { ...; (void)buddy.Free({*f, l4re_ma::PageCount(16)}); }
//
// Thread-safety: none. A backend is single-threaded by contract; the core
// serializes calls with one mutex per pool (core/phys_pool.h).
#ifndef L4RE_MA_CORE_PAGE_BACKEND_H_
#define L4RE_MA_CORE_PAGE_BACKEND_H_

#include <cstdint>
#include <optional>
#include <ostream>

#include "absl/status/status.h"
#include "absl/strings/string_view.h"
#include "core/types.h"

namespace l4re_ma {

// What a backend reports about itself. Every field is exact at every moment,
// and Stats() is cheap (O(log n) or better) because the fragmentation harness
// calls it after every operation.
struct BackendStats {
  // Frames in the managed range.
  PageCount total_pages;
  // Frames not handed out: total minus the pages of every live run. Frames a
  // backend cannot use for now (slack inside a slab, say) still count as
  // free here; they show up as fragmentation (largest_free_run < free_pages).
  PageCount free_pages;
  // The largest N for which Allocate(N, AlignOrder(0)) succeeds right now.
  // For extent-based backends this is the longest free run; a buddy backend
  // reports its largest free block.
  PageCount largest_free_run;
  // Number of free runs as the backend keeps them (extents, blocks, ...).
  uint64_t free_runs = 0;
  // Number of superpage-aligned 2 MiB superpages that are entirely free.
  uint64_t free_superpages = 0;
  // Bytes of bookkeeping the backend holds for this range.
  uint64_t metadata_bytes = 0;

  friend bool operator==(const BackendStats& a, const BackendStats& b) {
    return a.total_pages == b.total_pages && a.free_pages == b.free_pages &&
           a.largest_free_run == b.largest_free_run && a.free_runs == b.free_runs &&
           a.free_superpages == b.free_superpages && a.metadata_bytes == b.metadata_bytes;
  }
  friend bool operator!=(const BackendStats& a, const BackendStats& b) { return !(a == b); }
  friend std::ostream& operator<<(std::ostream& os, const BackendStats& s) {
    return os << "{total=" << s.total_pages << " free=" << s.free_pages
              << " largest=" << s.largest_free_run << " runs=" << s.free_runs
              << " free_superpages=" << s.free_superpages
              << " metadata=" << s.metadata_bytes << "B}";
  }
};

class PageBackend {
 public:
  virtual ~PageBackend() = default;

  // The registered name ("buddy", "bitmap", ...), used as a label.
  virtual absl::string_view name() const = 0;

  // The frames this backend manages, fixed at construction.
  virtual PageRun range() const = 0;

  // Allocates `pages` contiguous frames whose first frame is a multiple of
  // 2^align (absolute frame numbers). Returns the first frame, or
  // std::nullopt when no such run is free (exhaustion is never fatal).
  // REQUIRES: pages >= 1 and align.value() < 64 (the dispatcher checks).
  virtual std::optional<FrameNumber> Allocate(PageCount pages, AlignOrder align) = 0;

  // Returns a run to the backend. `run` must be exactly a run returned by
  // Allocate and not freed since. Anything else (double free, a run never
  // handed out, a part of one, a run outside the range) returns false and
  // leaves the backend unchanged.
  [[nodiscard]] virtual bool Free(PageRun run) = 0;

  virtual BackendStats Stats() const = 0;

  // Full consistency check of the internal structures (O(n) is fine): for
  // tests and fuzzers, never called on the hot path. Returns an error that
  // says which invariant is broken.
  virtual absl::Status CheckInvariants() const = 0;
};

}  // namespace l4re_ma

#endif  // L4RE_MA_CORE_PAGE_BACKEND_H_
