#include "examples/dma_pool/dma_pool.h"

#include <set>
#include <thread>
#include <vector>

#include "gtest/gtest.h"

namespace dma_example {
namespace {

constexpr uint64_t kBase = 0x80000000, kBytes = 16 << 20;

TEST(DmaPoolTest, HandsOutAlignedDisjointAddressesInsideTheWindow) {
  auto pool = *DmaPool::Create(kBase, kBytes);
  std::vector<DmaBuffer> held;
  for (unsigned align : {12u, 13u, 16u, 20u, 12u, 21u}) {
    auto b = pool->Allocate(5000, align, "dev");
    ASSERT_TRUE(b.ok()) << b.status();
    EXPECT_EQ(b->iova % (uint64_t{1} << align), 0u);
    EXPECT_GE(b->iova, kBase);
    EXPECT_LE(b->iova + 8192, kBase + kBytes);
    for (const DmaBuffer& o : held) {
      EXPECT_TRUE(b->iova + 8192 <= o.iova || o.iova + 8192 <= b->iova);
    }
    held.push_back(*b);
  }
  for (const DmaBuffer& b : held) EXPECT_TRUE(pool->Free(b.iova).ok());
  EXPECT_EQ(pool->free_bytes(), kBytes);
  EXPECT_EQ(pool->largest_free_bytes(), kBytes) << "everything coalesced again";
}

TEST(DmaPoolTest, BadRequestsGetClearErrorsAndLoseNothing) {
  auto pool = *DmaPool::Create(kBase, kBytes);
  EXPECT_TRUE(absl::IsInvalidArgument(pool->Allocate(0, 12, "dev").status()));
  EXPECT_TRUE(absl::IsInvalidArgument(pool->Allocate(4096, 64, "dev").status()));
  auto too_big = pool->Allocate(kBytes + 1, 12, "gpu");
  EXPECT_TRUE(absl::IsResourceExhausted(too_big.status()));
  EXPECT_NE(too_big.status().message().find("gpu"), absl::string_view::npos);
  EXPECT_TRUE(absl::IsNotFound(pool->Free(kBase)));
  auto b = pool->Allocate(4096, 12, "dev");
  ASSERT_TRUE(b.ok());
  EXPECT_TRUE(pool->Free(b->iova).ok());
  EXPECT_TRUE(absl::IsNotFound(pool->Free(b->iova))) << "double free";
  EXPECT_EQ(pool->free_bytes(), kBytes);
  EXPECT_FALSE(DmaPool::Create(kBase + 1, kBytes).ok());
  EXPECT_FALSE(DmaPool::Create(kBase, 0).ok());
}

TEST(DmaPoolTest, ManyDriversAtOnce) {
  auto pool = *DmaPool::Create(kBase, kBytes);
  std::vector<std::thread> drivers;
  std::atomic<int> failures{0};
  for (int d = 0; d < 4; ++d) {
    drivers.emplace_back([&, d] {
      std::vector<uint64_t> mine;
      for (int i = 0; i < 2000; ++i) {
        if (i % 3 == 2 && !mine.empty()) {
          if (!pool->Free(mine.back()).ok()) ++failures;
          mine.pop_back();
          continue;
        }
        auto b = pool->Allocate(4096 * (1 + (i * 7 + d) % 9), 12 + i % 4, "driver");
        if (b.ok()) mine.push_back(b->iova);
      }
      for (uint64_t iova : mine) {
        if (!pool->Free(iova).ok()) ++failures;
      }
    });
  }
  for (auto& t : drivers) t.join();
  EXPECT_EQ(failures.load(), 0);
  EXPECT_EQ(pool->live_buffers(), 0u);
  EXPECT_EQ(pool->free_bytes(), kBytes);
}

}  // namespace
}  // namespace dma_example
