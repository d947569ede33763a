// core/mem_allocator.h: the memory allocator interface behind
// l4re_ma_alloc_align_srv, l4re_ma_free_srv and l4_factory_create_factory.
//
// Implementations: LocalAllocator (core/local_allocator.h), the dispatcher
// that validates, accounts and asks a backend in process; and a remote one
// that forwards the same calls to memd. Thread-safe.
#ifndef L4RE_MA_CORE_MEM_ALLOCATOR_H_
#define L4RE_MA_CORE_MEM_ALLOCATOR_H_

#include <cstdint>
#include <memory>
#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "core/dataspace.h"
#include "core/object.h"

namespace l4re_ma {

// l4re_ma_flags, L4Re's values.
inline constexpr unsigned long kMaContinuous = 0x01;
inline constexpr unsigned long kMaPinned = 0x02;
inline constexpr unsigned long kMaSuperPages = 0x04;
inline constexpr unsigned long kMaKnownFlags = kMaContinuous | kMaPinned | kMaSuperPages;

// Per-allocator statistics, as Moe computes them. All in bytes.
struct AllocatorStats {
  uint64_t quota = 0;       // the allocator's limit (bookkeeping included)
  uint64_t quota_used = 0;  // charged: pages, bookkeeping, sub-allocator limits
  uint64_t mem_limit = 0;   // pool memory this allocator may use
  uint64_t mem_used = 0;    // pool memory backing its own dataspaces
  uint64_t mem_free = 0;    // min(mem_limit - mem_used, quota - quota_used, pool free)
};

// The physical pool behind an allocator.
struct PoolInfo {
  std::string backend;          // registered backend name
  uint64_t base = 0;            // first emulated physical address
  uint64_t size = 0;            // bytes
  uint64_t free_bytes = 0;      // bytes not handed out
  uint64_t largest_free_run = 0;  // bytes of the largest run Allocate can serve now
};

class MemAllocator : public Object {
 public:
  ObjectKind kind() const final { return ObjectKind::kMemAllocator; }

  // l4re_ma_alloc_align_srv: a new dataspace (see the C header for every
  // case). Errors carry the exact L4 error (core/errors.h).
  virtual absl::StatusOr<std::shared_ptr<Dataspace>> Alloc(long size, unsigned long flags,
                                                            unsigned long align) = 0;

  // l4re_ma_free_srv: frees `ds` now if this allocator created it
  // (FailedPrecondition/EPERM otherwise).
  virtual absl::Status Free(Dataspace& ds) = 0;

  // l4_factory_create_factory: a sub-allocator whose quota `limit` is
  // reserved from this one at once.
  virtual absl::StatusOr<std::shared_ptr<MemAllocator>> CreateSubAllocator(long limit) = 0;

  virtual absl::StatusOr<AllocatorStats> Stats() = 0;

  virtual absl::StatusOr<PoolInfo> Pool() = 0;
};

}  // namespace l4re_ma

#endif  // L4RE_MA_CORE_MEM_ALLOCATOR_H_
