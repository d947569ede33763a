// examples/dma_pool/dma_pool.h: embedding a backend in a server of your own.
//
// DmaPool is a tiny DMA-buffer service: device drivers ask it for buffers of
// a byte size and alignment and get an I/O address range back; they return
// it by address. It embeds one RegionBackend (extents, best fit: large
// contiguous runs stay intact, the right choice for DMA) over the I/O
// address window it owns, adds what the backend deliberately leaves to its
// user — argument checks, byte/page conversion, a lock, bookkeeping of who
// holds what — and nothing of the rest of l4re_ma (no C API, no dataspaces,
// no global state).
//
// Thread-safety: all methods are thread-safe (one mutex around the backend,
// which is single-threaded by contract). A std::mutex: ThreadSanitizer sees
// it, whatever Abseil build the embedder links.
#ifndef L4RE_MA_EXAMPLES_DMA_POOL_DMA_POOL_H_
#define L4RE_MA_EXAMPLES_DMA_POOL_DMA_POOL_H_

#include <cstdint>
#include <mutex>
#include <string>

#include "absl/container/flat_hash_map.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "backends/region/region_backend.h"

namespace dma_example {

struct DmaBuffer {
  uint64_t iova = 0;   // I/O virtual address the device uses
  uint64_t bytes = 0;  // as requested
  std::string owner;   // who holds it (for the dump)
};

class DmaPool {
 public:
  // A pool managing the I/O addresses [base, base + bytes); both must be
  // page-aligned and bytes non-zero.
  static absl::StatusOr<std::unique_ptr<DmaPool>> Create(uint64_t base, uint64_t bytes);

  // A buffer of `bytes` (rounded up to pages) starting on a 2^align_shift
  // boundary (at least a page). InvalidArgument for 0 bytes or align_shift
  // >= 64; ResourceExhausted when no aligned run is free.
  absl::StatusOr<DmaBuffer> Allocate(uint64_t bytes, unsigned align_shift, std::string owner)
     ;
  // Returns the buffer at `iova`. NotFound if no buffer starts there.
  absl::Status Free(uint64_t iova);

  uint64_t free_bytes() const;
  uint64_t largest_free_bytes() const;
  size_t live_buffers() const;

 private:
  explicit DmaPool(l4re_ma::PageRun window) : backend_(window) {}

  mutable std::mutex mu_;
  l4re_ma::RegionBackend backend_;                  // guarded by mu_
  absl::flat_hash_map<uint64_t, DmaBuffer> live_;  // guarded by mu_
};

}  // namespace dma_example

#endif  // L4RE_MA_EXAMPLES_DMA_POOL_DMA_POOL_H_
