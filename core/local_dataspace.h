// core/local_dataspace.h: the in-process dataspace.
//
// A contiguous dataspace holds one aligned run of frames from allocation to
// death. A non-contiguous one has a sparse page table (dataspace page index
// -> first frame of that page; a page is 4 KiB, or 2 MiB with SUPER_PAGES)
// that fills on first use, each page charged to the owner's quota as it is
// backed. Bytes live in the owner's Storage at the frames' file offsets.
//
// Dying (Kill(): last capability released, l4re_ma_free, or the allocator
// destroyed) revokes every mapping first, then zeroes and frees the frames
// and uncharges the quota. Calls on a dead dataspace fail with an IPC error.
//
// Thread-safety: one mutex guards the page table; see local_allocator.h for
// the lock order.
#ifndef L4RE_MA_CORE_LOCAL_DATASPACE_H_
#define L4RE_MA_CORE_LOCAL_DATASPACE_H_

#include <cstdint>
#include <memory>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/container/btree_map.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "core/sync.h"
#include "core/dataspace.h"
#include "core/types.h"

namespace l4re_ma {

class LocalAllocator;

class LocalDataspace final : public Dataspace {
 public:
  // A contiguous dataspace over `run` (already charged: `charge` bytes).
  static std::shared_ptr<LocalDataspace> Contiguous(std::shared_ptr<LocalAllocator> owner,
                                                    uint64_t size, unsigned page_shift,
                                                    PageRun run, uint64_t charge);
  // A lazily backed dataspace (bookkeeping already charged: `charge` bytes).
  static std::shared_ptr<LocalDataspace> Noncontiguous(std::shared_ptr<LocalAllocator> owner,
                                                       uint64_t size, unsigned page_shift,
                                                       uint64_t charge);
  ~LocalDataspace() override;

  // Dataspace:
  absl::StatusOr<DataspaceInfo> Info() override;
  absl::StatusOr<PhysExtent> Phys(uint64_t offset) override;
  absl::Status Allocate(uint64_t offset, uint64_t size) override;
  absl::Status Clear(uint64_t offset, uint64_t size) override;
  absl::Status CopyIn(uint64_t dst_offset, Dataspace& src, uint64_t src_offset,
                      uint64_t size) override;
  absl::StatusOr<MapResult> Map(uint64_t offset, uint64_t size) override;
  void Unmap() override;
  void OnLastCapabilityReleased() override { Kill(); }

  // Frees everything now (idempotent); see the file comment.
  void Kill();

  const LocalAllocator& owner() const { return *owner_; }
  bool contiguous() const { return contiguous_; }
  // Size rounded up to the dataspace's page size: how far mappings reach.
  uint64_t rounded_size() const { return rounded_size_; }

 private:
  LocalDataspace(std::shared_ptr<LocalAllocator> owner, uint64_t size, unsigned page_shift,
                 bool contiguous, PageRun run, uint64_t charge);

  uint64_t page_bytes() const { return uint64_t{1} << page_shift_; }
  PageCount unit_pages() const { return PageCount(page_bytes() >> kPageShift); }
  absl::Status DeadError() const;

  // Backs every dataspace page overlapping [offset, end).
  absl::Status BackLocked(uint64_t offset, uint64_t end) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Where byte `offset` lives in this process's mapping of the storage, or
  // nullptr if its page is not backed.
  char* ByteAddressLocked(uint64_t offset) const ABSL_SHARED_LOCKS_REQUIRED(mu_);
  // The first frame of the (backed) page holding byte `offset`.
  const FrameNumber* FrameOfLocked(uint64_t offset) const ABSL_SHARED_LOCKS_REQUIRED(mu_);
  // Zeroes [from, to) inside one backed dataspace page (or the contiguous run).
  void ZeroBytesLocked(uint64_t from, uint64_t to) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Zeroes [offset, end) of backed pages; releases wholly covered pages of a
  // non-contiguous dataspace when `release` is set.
  void ClearLocked(uint64_t offset, uint64_t end, bool release) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void ReleasePageLocked(uint64_t page_index) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Copies within the same storage; handles overlap like memmove.
  static void CopyBytes(const LocalDataspace& dst, uint64_t dst_offset,
                        const LocalDataspace& src, uint64_t src_offset, uint64_t size)
      ABSL_NO_THREAD_SAFETY_ANALYSIS;

  const std::shared_ptr<LocalAllocator> owner_;
  const uint64_t size_;
  const uint64_t rounded_size_;
  const unsigned page_shift_;
  const bool contiguous_;
  const PageRun run_;  // contiguous only

  mutable Mutex mu_;
  bool dead_ ABSL_GUARDED_BY(mu_) = false;
  // Bytes charged to the owner: bookkeeping, pages.
  uint64_t charge_ ABSL_GUARDED_BY(mu_);
  // Non-contiguous only: dataspace page index -> its first frame.
  absl::btree_map<uint64_t, FrameNumber> pages_ ABSL_GUARDED_BY(mu_);
  int64_t mappings_ ABSL_GUARDED_BY(mu_) = 0;
};

}  // namespace l4re_ma

#endif  // L4RE_MA_CORE_LOCAL_DATASPACE_H_
