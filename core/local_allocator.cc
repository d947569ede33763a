#include "core/local_allocator.h"

#include <algorithm>
#include <utility>

#include "absl/strings/str_cat.h"
#include "core/byte_size.h"
#include "core/errors.h"
#include "core/local_dataspace.h"

namespace l4re_ma {
namespace {

uint64_t RoundUp(uint64_t value, uint64_t unit) {  // unit: a power of two
  return (value + unit - 1) & ~(unit - 1);
}

}  // namespace

std::shared_ptr<LocalAllocator> LocalAllocator::CreateRoot(std::shared_ptr<PhysPool> pool,
                                                           std::shared_ptr<Storage> storage,
                                                           uint64_t quota) {
  return std::shared_ptr<LocalAllocator>(
      new LocalAllocator(std::move(pool), std::move(storage), quota, nullptr));
}

LocalAllocator::LocalAllocator(std::shared_ptr<PhysPool> pool, std::shared_ptr<Storage> storage,
                               uint64_t quota, std::shared_ptr<LocalAllocator> parent)
    : pool_(std::move(pool)),
      storage_(std::move(storage)),
      quota_(quota),
      parent_(std::move(parent)) {}

absl::Status LocalAllocator::DeadError() const {
  return IpcError(IpcCode::kNotExistent, "the memory allocator has been destroyed");
}

absl::StatusOr<std::shared_ptr<Dataspace>> LocalAllocator::Alloc(long size, unsigned long flags,
                                                                  unsigned long align) {
  {
    MutexLock lock(&mu_);
    if (dead_) return DeadError();
  }
  if (size == 0) return L4Error(L4Errno::kRange, "size 0 is not supported");
  if ((flags & ~kMaKnownFlags) != 0) {
    return L4Error(L4Errno::kInval,
                   absl::StrCat("unknown flag bits 0x", absl::Hex(flags & ~kMaKnownFlags),
                                " in flags 0x", absl::Hex(flags)));
  }
  if (align >= 64) {
    return L4Error(L4Errno::kInval, absl::StrCat("alignment 2^", align, " is not supported (< 64)"));
  }
  const bool contiguous = (flags & (kMaContinuous | kMaPinned)) != 0;
  const unsigned min_shift = (flags & kMaSuperPages) ? kSuperPageShift : kPageShift;
  if (size < 0 && !contiguous) {
    return L4Error(L4Errno::kRange,
                   absl::StrCat("negative size ", size, " needs the CONTINUOUS flag"));
  }
  const unsigned page_shift = std::max(static_cast<unsigned>(align), min_shift);
  if (size < 0) return AllocMaximum(uint64_t{0} - static_cast<uint64_t>(size), page_shift);
  if (contiguous) return AllocContiguous(static_cast<uint64_t>(size), page_shift);
  return AllocNoncontiguous(static_cast<uint64_t>(size), min_shift);
}

absl::StatusOr<std::shared_ptr<Dataspace>> LocalAllocator::AllocContiguous(uint64_t size,
                                                                           unsigned page_shift) {
  const uint64_t bytes = RoundUp(size, uint64_t{1} << page_shift);
  if (absl::Status s = Charge(bytes, bytes); !s.ok()) return s;
  const PageCount pages(bytes >> kPageShift);
  std::optional<FrameNumber> first;
  if (pages <= pool_->range().pages) {
    first = pool_->Allocate(pages, AlignOrder(page_shift - kPageShift));
  }
  if (!first) {
    Uncharge(bytes, bytes);
    return L4Error(L4Errno::kNoMem,
                   absl::StrCat("no free run of ", FormatBytes(bytes), " aligned to 2^",
                                page_shift, " bytes in the ", pool_->backend_name(), " pool"));
  }
  return Adopt(LocalDataspace::Contiguous(shared_from_this(), size, page_shift,
                                          PageRun{*first, pages}, bytes));
}

absl::StatusOr<std::shared_ptr<Dataspace>> LocalAllocator::AllocMaximum(uint64_t keep,
                                                                        unsigned page_shift) {
  const uint64_t unit = uint64_t{1} << page_shift;
  uint64_t available = pool_->free_bytes();
  {
    MutexLock lock(&mu_);
    available = std::min(available, quota_ - quota_used_);
  }
  // What must stay allocatable: a non-contiguous dataspace of `keep` bytes,
  // bookkeeping included, fully backed.
  const uint64_t reserve =
      keep >= (uint64_t{1} << 62) ? keep : RoundUp(keep, kPageSize) + kNoncontBookkeepingBytes;
  if (available <= reserve) {
    return L4Error(L4Errno::kNoMem, absl::StrCat("only ", FormatBytes(available),
                                                 " available; asked to keep ", FormatBytes(keep)));
  }
  const uint64_t limit = (available - reserve) & ~(unit - 1);
  const uint64_t largest = pool_->Stats().largest_free_run.bytes() & ~(unit - 1);
  const uint64_t max_units = std::min(limit, largest) >> page_shift;
  const PageCount unit_pages(unit >> kPageShift);
  const AlignOrder order(page_shift - kPageShift);
  auto try_units = [&](uint64_t units) {
    return pool_->Allocate(PageCount(units * unit_pages.value()), order);
  };
  // Allocatability is monotonic in the size: find the largest that fits.
  std::optional<FrameNumber> first = max_units > 0 ? try_units(max_units) : std::nullopt;
  uint64_t units = max_units;
  if (!first && max_units > 1) {
    uint64_t lo = 0, hi = max_units;
    while (hi - lo > 1) {
      const uint64_t mid = lo + (hi - lo) / 2;
      if (std::optional<FrameNumber> f = try_units(mid)) {
        pool_->Free({*f, PageCount(mid * unit_pages.value())});
        lo = mid;
      } else {
        hi = mid;
      }
    }
    units = lo;
    if (units > 0) first = try_units(units);
  }
  if (!first) {
    return L4Error(L4Errno::kNoMem, absl::StrCat("no free run of 2^", page_shift,
                                                 " bytes left after keeping ", FormatBytes(keep)));
  }
  const uint64_t bytes = units << page_shift;
  const PageRun run{*first, PageCount(bytes >> kPageShift)};
  if (absl::Status s = Charge(bytes, bytes); !s.ok()) {
    pool_->Free(run);
    return s;
  }
  return Adopt(LocalDataspace::Contiguous(shared_from_this(), bytes, page_shift, run, bytes));
}

absl::StatusOr<std::shared_ptr<Dataspace>> LocalAllocator::AllocNoncontiguous(
    uint64_t size, unsigned page_shift) {
  if (absl::Status s = Charge(kNoncontBookkeepingBytes, 0); !s.ok()) return s;
  return Adopt(LocalDataspace::Noncontiguous(shared_from_this(), size, page_shift,
                                             kNoncontBookkeepingBytes));
}

absl::StatusOr<std::shared_ptr<Dataspace>> LocalAllocator::Adopt(
    std::shared_ptr<LocalDataspace> ds) {
  {
    MutexLock lock(&mu_);
    if (!dead_) {
      dataspaces_.emplace(ds.get(), ds);
      return std::shared_ptr<Dataspace>(std::move(ds));
    }
  }
  ds->Kill();
  return DeadError();
}

absl::Status LocalAllocator::Free(Dataspace& ds) {
  {
    MutexLock lock(&mu_);
    if (dead_) return DeadError();
  }
  auto* local = dynamic_cast<LocalDataspace*>(&ds);
  if (local == nullptr || &local->owner() != this) {
    return L4Error(L4Errno::kPerm, "the dataspace belongs to another allocator");
  }
  local->Kill();
  return absl::OkStatus();
}

absl::StatusOr<std::shared_ptr<MemAllocator>> LocalAllocator::CreateSubAllocator(long limit) {
  if (limit <= 0) {
    return L4Error(L4Errno::kInval, absl::StrCat("quota limit ", limit, " must be positive"));
  }
  const uint64_t bytes = static_cast<uint64_t>(limit);
  if (absl::Status s = Charge(bytes, 0); !s.ok()) {
    if (absl::IsResourceExhausted(s)) {
      return L4Error(L4Errno::kNoMem, absl::StrCat("cannot reserve a quota of ",
                                                   FormatBytes(bytes), " from the parent"));
    }
    return s;
  }
  std::shared_ptr<LocalAllocator> child(
      new LocalAllocator(pool_, storage_, bytes, shared_from_this()));
  {
    MutexLock lock(&mu_);
    if (!dead_) {
      children_.push_back(child);
      return std::shared_ptr<MemAllocator>(std::move(child));
    }
  }
  child->Destroy();
  return DeadError();
}

absl::StatusOr<AllocatorStats> LocalAllocator::Stats() {
  const uint64_t pool_free = pool_->free_bytes();
  MutexLock lock(&mu_);
  if (dead_) return DeadError();
  AllocatorStats s;
  s.quota = quota_;
  s.quota_used = quota_used_;
  s.mem_limit = std::min(quota_, pool_->range().pages.bytes());
  s.mem_used = mem_used_;
  s.mem_free = std::min({s.mem_limit - std::min(s.mem_limit, s.mem_used),
                         s.quota - s.quota_used, pool_free});
  return s;
}

absl::StatusOr<PoolInfo> LocalAllocator::Pool() {
  {
    MutexLock lock(&mu_);
    if (dead_) return DeadError();
  }
  const BackendStats stats = pool_->Stats();
  PoolInfo info;
  info.backend = pool_->backend_name();
  info.base = pool_->range().first.addr().value();
  info.size = pool_->range().pages.bytes();
  info.free_bytes = stats.free_pages.bytes();
  info.largest_free_run = stats.largest_free_run.bytes();
  return info;
}

void LocalAllocator::Destroy() {
  absl::flat_hash_map<LocalDataspace*, std::weak_ptr<LocalDataspace>> dataspaces;
  std::vector<std::weak_ptr<LocalAllocator>> children;
  {
    MutexLock lock(&mu_);
    if (dead_) return;
    dead_ = true;
    dataspaces.swap(dataspaces_);
    children.swap(children_);
  }
  for (auto& [ptr, weak] : dataspaces) {
    if (std::shared_ptr<LocalDataspace> ds = weak.lock()) ds->Kill();
  }
  for (auto& weak : children) {
    if (std::shared_ptr<LocalAllocator> child = weak.lock()) child->Destroy();
  }
  if (parent_ != nullptr) parent_->Uncharge(quota_, 0);
}

absl::Status LocalAllocator::Charge(uint64_t bytes, uint64_t pool_bytes) {
  MutexLock lock(&mu_);
  if (dead_) return DeadError();
  if (bytes > quota_ - quota_used_) {
    return L4Error(L4Errno::kNoMem,
                   absl::StrCat("quota exhausted: ", FormatBytes(bytes), " needed, ",
                                FormatBytes(quota_ - quota_used_), " of ", FormatBytes(quota_),
                                " left"));
  }
  quota_used_ += bytes;
  mem_used_ += pool_bytes;
  return absl::OkStatus();
}

void LocalAllocator::Uncharge(uint64_t bytes, uint64_t pool_bytes) {
  MutexLock lock(&mu_);
  quota_used_ -= bytes;
  mem_used_ -= pool_bytes;
}

void LocalAllocator::Forget(LocalDataspace* ds) {
  MutexLock lock(&mu_);
  dataspaces_.erase(ds);
}

}  // namespace l4re_ma
