#include "core/local_dataspace.h"

#include <algorithm>
#include <cstring>
#include <utility>

#include "absl/container/inlined_vector.h"
#include "absl/strings/str_cat.h"
#include "core/errors.h"
#include "core/local_allocator.h"

namespace l4re_ma {
namespace {

uint64_t RoundUp(uint64_t value, unsigned shift) {
  const uint64_t unit = uint64_t{1} << shift;
  return (value + unit - 1) & ~(unit - 1);
}

}  // namespace

std::shared_ptr<LocalDataspace> LocalDataspace::Contiguous(std::shared_ptr<LocalAllocator> owner,
                                                           uint64_t size, unsigned page_shift,
                                                           PageRun run, uint64_t charge) {
  return std::shared_ptr<LocalDataspace>(
      new LocalDataspace(std::move(owner), size, page_shift, true, run, charge));
}

std::shared_ptr<LocalDataspace> LocalDataspace::Noncontiguous(
    std::shared_ptr<LocalAllocator> owner, uint64_t size, unsigned page_shift, uint64_t charge) {
  return std::shared_ptr<LocalDataspace>(
      new LocalDataspace(std::move(owner), size, page_shift, false, PageRun{}, charge));
}

LocalDataspace::LocalDataspace(std::shared_ptr<LocalAllocator> owner, uint64_t size,
                               unsigned page_shift, bool contiguous, PageRun run,
                               uint64_t charge)
    : owner_(std::move(owner)),
      size_(size),
      rounded_size_(RoundUp(size, page_shift)),
      page_shift_(page_shift),
      contiguous_(contiguous),
      run_(run),
      charge_(charge) {}

LocalDataspace::~LocalDataspace() { Kill(); }

absl::Status LocalDataspace::DeadError() const {
  return IpcError(IpcCode::kNotExistent, "the dataspace has been freed");
}

void LocalDataspace::Kill() {
  {
    MutexLock lock(&mu_);
    if (dead_) return;
    dead_ = true;
  }
  // Mappings go first: once frames are back in the pool another dataspace
  // may get them.
  RevokeAllMappings();
  uint64_t charge, pool_bytes = 0;
  {
    MutexLock lock(&mu_);
    Storage& storage = owner_->storage();
    PhysPool& pool = owner_->pool();
    if (contiguous_) {
      storage.Zero(run_);
      pool.Free(run_);
      pool_bytes = run_.pages.bytes();
    } else {
      // Zero adjacent frames in one go (a single hole punch for big runs).
      PageRun pending{};
      for (const auto& [index, frame] : pages_) {
        if (pending.pages.value() != 0 && pending.end() == frame) {
          pending.pages += unit_pages();
        } else {
          if (pending.pages.value() != 0) storage.Zero(pending);
          pending = PageRun{frame, unit_pages()};
        }
      }
      if (pending.pages.value() != 0) storage.Zero(pending);
      for (const auto& [index, frame] : pages_) pool.Free(PageRun{frame, unit_pages()});
      pool_bytes = pages_.size() * page_bytes();
      pages_.clear();
    }
    charge = charge_;
    charge_ = 0;
  }
  owner_->Uncharge(charge, pool_bytes);
  owner_->Forget(this);
}

absl::StatusOr<DataspaceInfo> LocalDataspace::Info() {
  MutexLock lock(&mu_);
  if (dead_) return DeadError();
  return DataspaceInfo{size_, kRightsRWX, contiguous_, page_shift_};
}

absl::StatusOr<PhysExtent> LocalDataspace::Phys(uint64_t offset) {
  MutexLock lock(&mu_);
  if (dead_) return DeadError();
  if (!contiguous_) {
    return L4Error(L4Errno::kInval, "the dataspace is not physically contiguous");
  }
  if (offset >= size_) {
    return L4Error(L4Errno::kRange, absl::StrCat("offset ", offset, " is beyond the size ", size_));
  }
  return PhysExtent{run_.first.addr() + offset, size_ - offset};
}

absl::Status LocalDataspace::Allocate(uint64_t offset, uint64_t size) {
  MutexLock lock(&mu_);
  if (dead_) return DeadError();
  if (contiguous_) return absl::OkStatus();
  if (offset >= size_ || size > size_ - offset) {
    return L4Error(L4Errno::kRange, absl::StrCat("range [", offset, ", +", size,
                                                 ") is outside the dataspace of ", size_, " bytes"));
  }
  return BackLocked(offset, offset + size);
}

absl::Status LocalDataspace::BackLocked(uint64_t offset, uint64_t end) {
  if (contiguous_ || end <= offset) return absl::OkStatus();
  // Pages are backed in batches; within a batch the fresh frames go to the
  // page indices in ascending order. They are all zero, so any assignment
  // is right, and this one makes adjacent frames adjacent in the dataspace
  // too: an attach then maps a few long runs instead of a page at a time,
  // whatever order the backend hands single pages out in.
  constexpr size_t kBatch = 256;
  absl::InlinedVector<uint64_t, kBatch> missing;
  absl::InlinedVector<FrameNumber, kBatch> frames;
  const uint64_t last = (end - 1) >> page_shift_;
  uint64_t index = offset >> page_shift_;
  absl::Status status;
  while (index <= last && status.ok()) {
    missing.clear();
    frames.clear();
    for (auto it = pages_.lower_bound(index); index <= last && missing.size() < kBatch; ++index) {
      if (it != pages_.end() && it->first == index) {
        ++it;
      } else {
        missing.push_back(index);
      }
    }
    for (size_t i = 0; i < missing.size(); ++i) {
      status = owner_->Charge(page_bytes(), page_bytes());
      if (!status.ok()) break;
      std::optional<FrameNumber> frame =
          owner_->pool().Allocate(unit_pages(), AlignOrder(page_shift_ - kPageShift));
      if (!frame) {
        owner_->Uncharge(page_bytes(), page_bytes());
        status = L4Error(L4Errno::kNoMem, absl::StrCat("the ", owner_->pool().backend_name(),
                                                        " pool has no free page left"));
        break;
      }
      frames.push_back(*frame);
    }
    std::sort(frames.begin(), frames.end());
    for (size_t i = 0; i < frames.size(); ++i) pages_.emplace(missing[i], frames[i]);
    charge_ += frames.size() * page_bytes();
  }
  return status;
}

const FrameNumber* LocalDataspace::FrameOfLocked(uint64_t offset) const {
  if (contiguous_) return &run_.first;
  auto it = pages_.find(offset >> page_shift_);
  return it == pages_.end() ? nullptr : &it->second;
}

char* LocalDataspace::ByteAddressLocked(uint64_t offset) const {
  const Storage& storage = owner_->storage();
  if (contiguous_) return storage.Address(run_.first) + offset;
  auto it = pages_.find(offset >> page_shift_);
  if (it == pages_.end()) return nullptr;
  return storage.Address(it->second) + (offset & (page_bytes() - 1));
}

void LocalDataspace::ReleasePageLocked(uint64_t page_index) {
  auto it = pages_.find(page_index);
  if (it == pages_.end()) return;
  const PageRun run{it->second, unit_pages()};
  pages_.erase(it);
  owner_->storage().Zero(run);
  owner_->pool().Free(run);
  charge_ -= page_bytes();
  owner_->Uncharge(page_bytes(), page_bytes());
}

void LocalDataspace::ZeroBytesLocked(uint64_t from, uint64_t to) {
  Storage& storage = owner_->storage();
  const uint64_t base = contiguous_ ? 0 : (from >> page_shift_) << page_shift_;
  const FrameNumber first = *FrameOfLocked(from);
  const uint64_t head = from - base, tail = to - base;
  const uint64_t whole_from = RoundUp(head, kPageShift), whole_to = tail & ~(kPageSize - 1);
  if (whole_from < whole_to) {
    storage.Zero(PageRun{first + PageCount(whole_from >> kPageShift),
                         PageCount((whole_to - whole_from) >> kPageShift)});
    std::memset(storage.Address(first) + head, 0, whole_from - head);
    std::memset(storage.Address(first) + whole_to, 0, tail - whole_to);
  } else {
    std::memset(storage.Address(first) + head, 0, tail - head);
  }
}

void LocalDataspace::ClearLocked(uint64_t offset, uint64_t end, bool release) {
  if (contiguous_) {
    ZeroBytesLocked(offset, end);
    return;
  }
  const uint64_t first = offset >> page_shift_, last = (end - 1) >> page_shift_;
  // Releasing erases from the btree, which invalidates iterators: look the
  // next backed page up afresh each time.
  for (uint64_t next = first;;) {
    auto it = pages_.lower_bound(next);
    if (it == pages_.end() || it->first > last) break;
    const uint64_t index = it->first;
    next = index + 1;
    const uint64_t page_start = index << page_shift_;
    const uint64_t from = std::max(offset, page_start);
    const uint64_t to = std::min(end, page_start + page_bytes());
    if (release && from == page_start && to == page_start + page_bytes()) {
      ReleasePageLocked(index);
    } else {
      ZeroBytesLocked(from, to);
    }
  }
}

absl::Status LocalDataspace::Clear(uint64_t offset, uint64_t size) {
  MutexLock lock(&mu_);
  if (dead_) return DeadError();
  if (offset >= rounded_size_) {
    return L4Error(L4Errno::kRange, absl::StrCat("offset ", offset, " is beyond the ",
                                                 rounded_size_, " bytes of the dataspace"));
  }
  const uint64_t end = offset + std::min(size, rounded_size_ - offset);
  if (end == offset) return absl::OkStatus();
  // A partial clear of an unbacked page is its first use, as on L4.
  if (!contiguous_) {
    if ((offset & (page_bytes() - 1)) != 0) {
      if (absl::Status s = BackLocked(offset, offset + 1); !s.ok()) return s;
    }
    if ((end & (page_bytes() - 1)) != 0) {
      if (absl::Status s = BackLocked(end - 1, end); !s.ok()) return s;
    }
  }
  // Pages still mapped somewhere are zeroed in place so that the mappings
  // keep working and read zeros; unmapped ones go back to the pool.
  ClearLocked(offset, end, mappings_ == 0);
  return absl::OkStatus();
}

// Locks both page tables in address order (once if src is this), which the
// thread-safety analysis cannot follow.
absl::Status LocalDataspace::CopyIn(uint64_t dst_offset, Dataspace& src_ds, uint64_t src_offset,
                                    uint64_t size) ABSL_NO_THREAD_SAFETY_ANALYSIS {
  auto* src = dynamic_cast<LocalDataspace*>(&src_ds);
  if (src == nullptr || src->owner_->shared_storage() != owner_->shared_storage()) {
    return L4Error(L4Errno::kInval, "the source is not a dataspace of this allocator");
  }
  LocalDataspace* first = std::min(this, src);
  LocalDataspace* second = std::max(this, src);
  MutexLock lock1(&first->mu_);
  std::optional<MutexLock> lock2;
  if (second != first) lock2.emplace(&second->mu_);
  if (dead_) return DeadError();
  if (src->dead_) return L4Error(L4Errno::kInval, "the source dataspace has been freed");
  if (size == 0) return absl::OkStatus();
  const uint64_t dst_room = dst_offset < size_ ? size_ - dst_offset : 0;
  const uint64_t src_room = src_offset < src->rounded_size_ ? src->rounded_size_ - src_offset : 0;
  const uint64_t n = std::min({size, dst_room, src_room});
  if (n == 0) return absl::OkStatus();
  if (absl::Status s = BackLocked(dst_offset, dst_offset + n); !s.ok()) return s;
  CopyBytes(*this, dst_offset, *src, src_offset, n);
  return absl::OkStatus();
}

void LocalDataspace::CopyBytes(const LocalDataspace& dst, uint64_t dst_offset,
                               const LocalDataspace& src, uint64_t src_offset, uint64_t n) {
  // Chunks never cross a 4 KiB frame of either side; going backwards when
  // the destination overlaps the source from above gives memmove semantics.
  const bool backwards = &dst == &src && dst_offset > src_offset && dst_offset < src_offset + n;
  uint64_t done = 0;
  while (done < n) {
    const uint64_t remaining = n - done;
    uint64_t d, s, len;
    if (!backwards) {
      d = dst_offset + done;
      s = src_offset + done;
      len = std::min({remaining, kPageSize - (d & (kPageSize - 1)), kPageSize - (s & (kPageSize - 1))});
    } else {
      const uint64_t d_end = dst_offset + remaining, s_end = src_offset + remaining;
      len = std::min({remaining, ((d_end - 1) & (kPageSize - 1)) + 1, ((s_end - 1) & (kPageSize - 1)) + 1});
      d = d_end - len;
      s = s_end - len;
    }
    char* to = dst.ByteAddressLocked(d);
    const char* from = src.ByteAddressLocked(s);
    if (from != nullptr) {
      std::memmove(to, from, len);
    } else {
      std::memset(to, 0, len);
    }
    done += len;
  }
}

absl::StatusOr<MapResult> LocalDataspace::Map(uint64_t offset, uint64_t size) {
  MutexLock lock(&mu_);
  if (dead_) return DeadError();
  MapResult result;
  result.fd = owner_->storage().fd();
  if (offset < rounded_size_) {
    const uint64_t end = offset + std::min(size, rounded_size_ - offset);
    const Storage& storage = owner_->storage();
    if (contiguous_) {
      result.runs.push_back(MapRun{offset, storage.FileOffset(run_.first) + offset, end - offset});
    } else {
      if (absl::Status s = BackLocked(offset, end); !s.ok()) return s;
      for (auto it = pages_.lower_bound(offset >> page_shift_);
           it != pages_.end() && (it->first << page_shift_) < end; ++it) {
        const uint64_t page_start = it->first << page_shift_;
        const uint64_t from = std::max(offset, page_start);
        const uint64_t to = std::min(end, page_start + page_bytes());
        const uint64_t file = storage.FileOffset(it->second) + (from - page_start);
        if (!result.runs.empty() && result.runs.back().ds_offset + result.runs.back().length == from &&
            result.runs.back().file_offset + result.runs.back().length == file) {
          result.runs.back().length += to - from;
        } else {
          result.runs.push_back(MapRun{from, file, to - from});
        }
      }
    }
  }
  ++mappings_;
  return result;
}

void LocalDataspace::Unmap() {
  MutexLock lock(&mu_);
  if (mappings_ > 0) --mappings_;
}

}  // namespace l4re_ma
