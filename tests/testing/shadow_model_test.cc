#include "tests/testing/shadow_model.h"

#include <cstdint>
#include <map>
#include <random>
#include <vector>

#include "gtest/gtest.h"

namespace l4re_ma {
namespace {

PageRun MakeRun(uint64_t first, uint64_t pages) { return {FrameNumber(first), PageCount(pages)}; }

TEST(ShadowModelTest, SuperpagesIn) {
  EXPECT_EQ(ShadowModel::SuperpagesIn(FrameNumber(0), FrameNumber(511)), 0u);
  EXPECT_EQ(ShadowModel::SuperpagesIn(FrameNumber(0), FrameNumber(512)), 1u);
  EXPECT_EQ(ShadowModel::SuperpagesIn(FrameNumber(1), FrameNumber(1024)), 1u);
  EXPECT_EQ(ShadowModel::SuperpagesIn(FrameNumber(1), FrameNumber(1023)), 0u);
  EXPECT_EQ(ShadowModel::SuperpagesIn(FrameNumber(512), FrameNumber(2048)), 3u);
  EXPECT_EQ(ShadowModel::SuperpagesIn(FrameNumber(700), FrameNumber(600)), 0u);
}

TEST(ShadowModelTest, FreshRange) {
  ShadowModel m(MakeRun(511, 1025));  // [511, 1536): superpages at 512 and 1024
  EXPECT_EQ(m.free_pages(), PageCount(1025));
  EXPECT_EQ(m.longest_free_run(), PageCount(1025));
  EXPECT_EQ(m.free_run_count(), 1u);
  EXPECT_EQ(m.free_superpages(), 2u);
  EXPECT_EQ(m.total_superpages(), 2u);
  ShadowModel m2(MakeRun(513, 1023));  // [513, 1536): only the superpage at 1024
  EXPECT_EQ(m2.free_superpages(), 1u);
  EXPECT_TRUE(m.CheckConsistency().ok());
}

TEST(ShadowModelTest, RejectsBadRuns) {
  ShadowModel m(MakeRun(100, 50));
  EXPECT_FALSE(m.Allocate(FrameNumber(99), PageCount(1), AlignOrder(0)).ok());   // before
  EXPECT_FALSE(m.Allocate(FrameNumber(149), PageCount(2), AlignOrder(0)).ok());  // past end
  EXPECT_FALSE(m.Allocate(FrameNumber(150), PageCount(1), AlignOrder(0)).ok());
  EXPECT_FALSE(m.Allocate(FrameNumber(~uint64_t{0}), PageCount(2), AlignOrder(0)).ok());
  EXPECT_FALSE(m.Allocate(FrameNumber(101), PageCount(1), AlignOrder(1)).ok());  // misaligned
  EXPECT_FALSE(m.Allocate(FrameNumber(100), PageCount(0), AlignOrder(0)).ok());
  ASSERT_TRUE(m.Allocate(FrameNumber(104), PageCount(4), AlignOrder(2)).ok());
  EXPECT_FALSE(m.Allocate(FrameNumber(107), PageCount(1), AlignOrder(0)).ok());  // overlap
  EXPECT_FALSE(m.Allocate(FrameNumber(100), PageCount(5), AlignOrder(0)).ok());
  EXPECT_FALSE(m.Free(MakeRun(104, 3)).ok());
  EXPECT_FALSE(m.Free(MakeRun(105, 3)).ok());
  EXPECT_FALSE(m.Free(MakeRun(100, 4)).ok());
  EXPECT_EQ(m.free_pages(), PageCount(46));
  EXPECT_EQ(m.free_run_count(), 2u);
  EXPECT_EQ(m.longest_free_run(), PageCount(42));
  EXPECT_TRUE(m.Free(MakeRun(104, 4)).ok());
  EXPECT_FALSE(m.Free(MakeRun(104, 4)).ok());  // double free
  EXPECT_EQ(m.free_run_count(), 1u);
  EXPECT_TRUE(m.CheckConsistency().ok());
}

TEST(ShadowModelTest, HugeAlignments) {
  ShadowModel m(MakeRun(0, 10));
  EXPECT_TRUE(m.CanAllocate(PageCount(1), AlignOrder(63)));
  EXPECT_FALSE(m.CanAllocate(PageCount(11), AlignOrder(0)));
  EXPECT_FALSE(m.CanAllocate(PageCount(~uint64_t{0}), AlignOrder(0)));
  ShadowModel high(MakeRun(uint64_t{1} << 40, 10));
  EXPECT_TRUE(high.CanAllocate(PageCount(10), AlignOrder(40)));
  EXPECT_FALSE(high.CanAllocate(PageCount(1), AlignOrder(41)));
  EXPECT_FALSE(high.CanAllocate(PageCount(1), AlignOrder(63)));
}

// The model against a frame-by-frame brute force, over random operations.
TEST(ShadowModelTest, MatchesBruteForce) {
  const uint64_t seed = 20240601;
  SCOPED_TRACE(testing::Message() << "seed " << seed);
  std::mt19937_64 rng(seed);
  const PageRun range = MakeRun(1000 + 333, 3000);
  ShadowModel m(range);
  std::vector<bool> used(range.pages.value(), false);
  std::map<uint64_t, uint64_t> live;
  auto brute_free = [&](uint64_t f, uint64_t n) {
    if (f < range.first.value() || f + n > range.end().value()) return false;
    for (uint64_t i = f; i < f + n; ++i) {
      if (used[i - range.first.value()]) return false;
    }
    return true;
  };
  for (int step = 0; step < 20000; ++step) {
    SCOPED_TRACE(testing::Message() << "step " << step);
    if (rng() % 2 == 0 || live.empty()) {
      const uint64_t f = range.first.value() - 20 + rng() % (range.pages.value() + 40);
      const uint64_t n = 1 + (rng() % 4 == 0 ? rng() % 700 : rng() % 16);
      const AlignOrder a(rng() % 3 == 0 ? rng() % 11 : 0);
      const bool valid = FrameNumber(f).IsAligned(a) && brute_free(f, n);
      ASSERT_EQ(m.Allocate(FrameNumber(f), PageCount(n), a).ok(), valid);
      if (valid) {
        live[f] = n;
        for (uint64_t i = f; i < f + n; ++i) used[i - range.first.value()] = true;
      }
    } else {
      auto it = live.begin();
      std::advance(it, rng() % live.size());
      const uint64_t delta = rng() % 4 == 0 ? 1 : 0;  // sometimes a wrong length
      const PageRun run = MakeRun(it->first, it->second + delta);
      ASSERT_EQ(m.Free(run).ok(), delta == 0);
      if (delta == 0) {
        for (uint64_t i = it->first; i < it->first + it->second; ++i) used[i - range.first.value()] = false;
        live.erase(it);
      }
    }
    uint64_t free_pages = 0, longest = 0, runs = 0, cur = 0, superpages = 0;
    for (uint64_t i = 0; i < used.size(); ++i) {
      cur = used[i] ? 0 : cur + 1;
      free_pages += !used[i];
      runs += cur == 1;
      longest = std::max(longest, cur);
    }
    for (uint64_t sp = (range.first.value() + 511) / 512 * 512; sp + 512 <= range.end().value(); sp += 512) {
      superpages += brute_free(sp, 512);
    }
    ASSERT_EQ(m.free_pages().value(), free_pages);
    ASSERT_EQ(m.longest_free_run().value(), longest);
    ASSERT_EQ(m.free_run_count(), runs);
    ASSERT_EQ(m.free_superpages(), superpages);
    ASSERT_EQ(m.live_run_count(), live.size());
    if (step % 500 == 0) {
      ASSERT_TRUE(m.CheckConsistency().ok()) << m.CheckConsistency();
      for (unsigned order : {0u, 3u, 9u}) {
        for (uint64_t n : {1u, 17u, 512u}) {
          bool brute = false;
          for (uint64_t f = range.first.value(); f < range.end().value() && !brute; ++f) {
            brute = FrameNumber(f).IsAligned(AlignOrder(order)) && brute_free(f, n);
          }
          ASSERT_EQ(m.CanAllocate(PageCount(n), AlignOrder(order)), brute) << n << " " << order;
        }
      }
    }
  }
}

}  // namespace
}  // namespace l4re_ma
