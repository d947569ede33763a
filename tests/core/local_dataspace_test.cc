// The dispatcher and the in-process dataspace, below the C API: things the C
// API tests cannot see directly.
#include "core/local_dataspace.h"

#include <memory>
#include <optional>
#include <vector>

#include "core/local_allocator.h"
#include "core/phys_pool.h"
#include "core/storage.h"
#include "gtest/gtest.h"

namespace l4re_ma {
namespace {

// Hands out the highest free frames first (as an extent allocator that
// carves from the top does): consecutive single pages come out descending.
class TopDownBackend final : public PageBackend {
 public:
  explicit TopDownBackend(PageRun range) : range_(range), free_(range.pages.value(), true) {}
  absl::string_view name() const override { return "top-down"; }
  PageRun range() const override { return range_; }
  std::optional<FrameNumber> Allocate(PageCount pages, AlignOrder align) override {
    const uint64_t n = pages.value();
    for (uint64_t end = free_.size(); end >= n; --end) {
      const uint64_t start = end - n;
      if (!(range_.first + PageCount(start)).IsAligned(align)) continue;
      bool ok = true;
      for (uint64_t i = start; i < end && ok; ++i) ok = free_[i];
      if (!ok) continue;
      for (uint64_t i = start; i < end; ++i) free_[i] = false;
      return range_.first + PageCount(start);
    }
    return std::nullopt;
  }
  bool Free(PageRun run) override {
    for (uint64_t i = 0; i < run.pages.value(); ++i) free_[(run.first - range_.first).value() + i] = true;
    return true;
  }
  BackendStats Stats() const override {
    BackendStats s;
    s.total_pages = range_.pages;
    for (bool f : free_) s.free_pages += PageCount(f ? 1 : 0);
    return s;
  }
  absl::Status CheckInvariants() const override { return absl::OkStatus(); }

 private:
  PageRun range_;
  std::vector<bool> free_;
};

std::shared_ptr<LocalAllocator> TopDownAllocator() {
  auto pool = std::make_shared<PhysPool>(
      std::make_unique<TopDownBackend>(PageRun{FrameNumber(0x40000), PageCount(4096)}));
  auto storage = Storage::Create(pool->range(), "test");
  EXPECT_TRUE(storage.ok());
  return LocalAllocator::CreateRoot(pool, *storage, 16 << 20);
}

// Regression (found by the benchmark with the region backend): a 1 MiB
// lazily backed dataspace was mapped with 256 mmap calls because its pages
// came from the backend in descending order.
TEST(LocalDataspaceTest, BackedPagesAreAssignedInAscendingFrameOrder) {
  auto allocator = TopDownAllocator();
  auto ds = allocator->Alloc(1 << 20, 0, 0);
  ASSERT_TRUE(ds.ok()) << ds.status();
  auto mapped = (*ds)->Map(0, 1 << 20);
  ASSERT_TRUE(mapped.ok()) << mapped.status();
  EXPECT_EQ(mapped->runs.size(), 1u) << "one run, not one per page";
  EXPECT_EQ(mapped->runs[0].length, 1u << 20);
  (*ds)->Unmap();
}

TEST(LocalDataspaceTest, MapReportsOnlyTheRangeWithinTheRoundedSize) {
  auto allocator = TopDownAllocator();
  auto ds = allocator->Alloc(3 * 4096 + 1, kMaContinuous, 0);
  ASSERT_TRUE(ds.ok());
  auto mapped = (*ds)->Map(4096, 1 << 20);
  ASSERT_TRUE(mapped.ok());
  ASSERT_EQ(mapped->runs.size(), 1u);
  EXPECT_EQ(mapped->runs[0].ds_offset, 4096u);
  EXPECT_EQ(mapped->runs[0].length, 3u * 4096);
  auto beyond = (*ds)->Map(8 * 4096, 4096);
  ASSERT_TRUE(beyond.ok());
  EXPECT_TRUE(beyond->runs.empty());
}

TEST(LocalDataspaceTest, ADeadDataspaceAnswersWithAnIpcError) {
  auto allocator = TopDownAllocator();
  auto ds = allocator->Alloc(4096, 0, 0);
  ASSERT_TRUE(ds.ok());
  static_cast<LocalDataspace*>(ds->get())->Kill();
  EXPECT_TRUE(absl::IsUnavailable((*ds)->Info().status()));
  EXPECT_TRUE(absl::IsUnavailable((*ds)->Map(0, 4096).status()));
  EXPECT_EQ(allocator->Stats()->quota_used, 0u);
}

}  // namespace
}  // namespace l4re_ma
