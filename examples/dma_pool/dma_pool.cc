#include "examples/dma_pool/dma_pool.h"

#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"

namespace dma_example {

using l4re_ma::AlignOrder;
using l4re_ma::FrameNumber;
using l4re_ma::kPageShift;
using l4re_ma::kPageSize;
using l4re_ma::PageCount;
using l4re_ma::PageRun;

absl::StatusOr<std::unique_ptr<DmaPool>> DmaPool::Create(uint64_t base, uint64_t bytes) {
  if (bytes == 0 || base % kPageSize != 0 || bytes % kPageSize != 0 || base + bytes < base) {
    return absl::InvalidArgumentError(
        absl::StrFormat("window [%#x, +%#x) is not a page-aligned, non-empty range", base, bytes));
  }
  return std::unique_ptr<DmaPool>(
      new DmaPool(PageRun{FrameNumber(base >> kPageShift), PageCount(bytes >> kPageShift)}));
}

absl::StatusOr<DmaBuffer> DmaPool::Allocate(uint64_t bytes, unsigned align_shift,
                                            std::string owner) {
  if (bytes == 0) return absl::InvalidArgumentError("a DMA buffer of 0 bytes");
  if (align_shift >= 64) {
    return absl::InvalidArgumentError(absl::StrCat("alignment 2^", align_shift, " is too large"));
  }
  const PageCount pages = PageCount::FromBytesRoundUp(bytes);
  std::lock_guard<std::mutex> lock(mu_);
  std::optional<FrameNumber> first =
      backend_.Allocate(pages, AlignOrder::FromByteShift(align_shift));
  if (!first) {
    return absl::ResourceExhaustedError(absl::StrFormat(
        "no free run of %d bytes aligned to 2^%d for %s", pages.bytes(), align_shift, owner));
  }
  DmaBuffer buffer{first->addr().value(), bytes, std::move(owner)};
  live_.emplace(buffer.iova, buffer);
  return buffer;
}

absl::Status DmaPool::Free(uint64_t iova) {
  std::lock_guard<std::mutex> lock(mu_);
  auto it = live_.find(iova);
  if (it == live_.end()) {
    return absl::NotFoundError(absl::StrFormat("no DMA buffer starts at %#x", iova));
  }
  const PageRun run{FrameNumber(iova >> kPageShift), PageCount::FromBytesRoundUp(it->second.bytes)};
  if (!backend_.Free(run)) return absl::InternalError("the backend rejected a run it handed out");
  live_.erase(it);
  return absl::OkStatus();
}

uint64_t DmaPool::free_bytes() const {
  std::lock_guard<std::mutex> lock(mu_);
  return backend_.Stats().free_pages.bytes();
}

uint64_t DmaPool::largest_free_bytes() const {
  std::lock_guard<std::mutex> lock(mu_);
  return backend_.Stats().largest_free_run.bytes();
}

size_t DmaPool::live_buffers() const {
  std::lock_guard<std::mutex> lock(mu_);
  return live_.size();
}

}  // namespace dma_example
