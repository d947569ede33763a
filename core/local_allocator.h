// core/local_allocator.h: the dispatcher. The in-process implementation of
// MemAllocator and Dataspace.
//
// LocalAllocator owns every check of the C API's allocation contract (sizes,
// flags, alignment, quota; ../shared/api-contract.md), charges its quota,
// asks the pool's backend for runs of pages and builds LocalDataspaces. The
// backend only ever sees validated requests for runs of pages.
//
// Quota: a root allocator has a limit in bytes (by default the pool size).
// Charged are: the pages of a contiguous dataspace (its size rounded up to
// its page size) at allocation; kNoncontBookkeepingBytes for a
// non-contiguous dataspace at allocation and each of its pages when it is
// first used; and the whole limit of every sub-allocator at its creation.
//
// Lifetime: an allocator dies when the last capability to it is released
// (or Destroy() is called): every dataspace and sub-allocator it created
// dies with it and its reservation returns to the parent; later calls fail
// with an IPC error, as with a deleted L4 object.
//
// Lock order: region map -> LocalDataspace::mu_ -> LocalAllocator::mu_ ->
// PhysPool. Thread-safe.
#ifndef L4RE_MA_CORE_LOCAL_ALLOCATOR_H_
#define L4RE_MA_CORE_LOCAL_ALLOCATOR_H_

#include <cstdint>
#include <memory>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/container/flat_hash_map.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "core/sync.h"
#include "core/mem_allocator.h"
#include "core/phys_pool.h"
#include "core/storage.h"

namespace l4re_ma {

class LocalDataspace;

class LocalAllocator final : public MemAllocator,
                             public std::enable_shared_from_this<LocalAllocator> {
 public:
  // What a non-contiguous dataspace costs before any page is used: the
  // object and the root of its page table.
  static constexpr uint64_t kNoncontBookkeepingBytes = 512;

  // A root allocator: dataspaces take frames from `pool` and keep their
  // bytes in `storage` (which must cover the pool's range); `quota` bytes.
  static std::shared_ptr<LocalAllocator> CreateRoot(std::shared_ptr<PhysPool> pool,
                                                    std::shared_ptr<Storage> storage,
                                                    uint64_t quota);

  // MemAllocator:
  absl::StatusOr<std::shared_ptr<Dataspace>> Alloc(long size, unsigned long flags,
                                                    unsigned long align) override;
  absl::Status Free(Dataspace& ds) override;
  absl::StatusOr<std::shared_ptr<MemAllocator>> CreateSubAllocator(long limit) override;
  absl::StatusOr<AllocatorStats> Stats() override;
  absl::StatusOr<PoolInfo> Pool() override;
  void OnLastCapabilityReleased() override { Destroy(); }

  // Destroys this allocator, its dataspaces and sub-allocators. Idempotent.
  void Destroy();

  PhysPool& pool() const { return *pool_; }
  Storage& storage() const { return *storage_; }
  const std::shared_ptr<Storage>& shared_storage() const { return storage_; }

  // Accounting used by LocalDataspace. Charge() fails with -L4_ENOMEM when
  // `bytes` do not fit in the quota, or with an IPC error once dead.
  absl::Status Charge(uint64_t bytes, uint64_t pool_bytes) ABSL_LOCKS_EXCLUDED(mu_);
  void Uncharge(uint64_t bytes, uint64_t pool_bytes) ABSL_LOCKS_EXCLUDED(mu_);

  // Called by a dying LocalDataspace.
  void Forget(LocalDataspace* ds) ABSL_LOCKS_EXCLUDED(mu_);

 private:
  LocalAllocator(std::shared_ptr<PhysPool> pool, std::shared_ptr<Storage> storage,
                 uint64_t quota, std::shared_ptr<LocalAllocator> parent);

  absl::StatusOr<std::shared_ptr<Dataspace>> AllocContiguous(uint64_t size, unsigned page_shift);
  absl::StatusOr<std::shared_ptr<Dataspace>> AllocMaximum(uint64_t keep, unsigned page_shift);
  absl::StatusOr<std::shared_ptr<Dataspace>> AllocNoncontiguous(uint64_t size,
                                                                unsigned page_shift);
  // Registers a new dataspace; fails (and kills it) if this allocator died.
  absl::StatusOr<std::shared_ptr<Dataspace>> Adopt(std::shared_ptr<LocalDataspace> ds);
  absl::Status DeadError() const;

  const std::shared_ptr<PhysPool> pool_;
  const std::shared_ptr<Storage> storage_;
  const uint64_t quota_;
  const std::shared_ptr<LocalAllocator> parent_;

  mutable Mutex mu_;
  bool dead_ ABSL_GUARDED_BY(mu_) = false;
  uint64_t quota_used_ ABSL_GUARDED_BY(mu_) = 0;
  uint64_t mem_used_ ABSL_GUARDED_BY(mu_) = 0;
  absl::flat_hash_map<LocalDataspace*, std::weak_ptr<LocalDataspace>> dataspaces_
      ABSL_GUARDED_BY(mu_);
  std::vector<std::weak_ptr<LocalAllocator>> children_ ABSL_GUARDED_BY(mu_);
};

}  // namespace l4re_ma

#endif  // L4RE_MA_CORE_LOCAL_ALLOCATOR_H_
