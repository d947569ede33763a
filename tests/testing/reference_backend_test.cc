#include "tests/testing/reference_backend.h"

#include <cstdint>
#include <random>
#include <vector>

#include "gtest/gtest.h"
#include "tests/testing/shadow_model.h"

namespace l4re_ma {
namespace {

PageRun MakeRun(uint64_t first, uint64_t pages) { return {FrameNumber(first), PageCount(pages)}; }

TEST(ReferenceBackendTest, FirstFitAndExactStats) {
  ReferenceBackend b(MakeRun(3, 20));
  EXPECT_EQ(b.Allocate(PageCount(2), AlignOrder(0)), FrameNumber(3));
  EXPECT_EQ(b.Allocate(PageCount(1), AlignOrder(3)), FrameNumber(8));
  EXPECT_EQ(b.Allocate(PageCount(1), AlignOrder(0)), FrameNumber(5));
  EXPECT_EQ(b.Allocate(PageCount(15), AlignOrder(0)), std::nullopt);
  EXPECT_EQ(b.Allocate(PageCount(1), AlignOrder(5)), std::nullopt);
  const BackendStats s = b.Stats();
  EXPECT_EQ(s.free_pages, PageCount(16));
  EXPECT_EQ(s.largest_free_run, PageCount(14));  // [9, 23)
  EXPECT_EQ(s.free_runs, 2u);                     // [6, 8) and [9, 23)
  EXPECT_FALSE(b.Free(MakeRun(3, 1)));
  EXPECT_FALSE(b.Free(MakeRun(8, 2)));
  EXPECT_TRUE(b.Free(MakeRun(8, 1)));
  EXPECT_FALSE(b.Free(MakeRun(8, 1)));
  EXPECT_TRUE(b.CheckInvariants().ok());
}

TEST(ReferenceBackendTest, HugeRequestsFail) {
  ReferenceBackend b(MakeRun(0, 100));
  EXPECT_EQ(b.Allocate(PageCount(~uint64_t{0}), AlignOrder(0)), std::nullopt);
  EXPECT_EQ(b.Allocate(PageCount(101), AlignOrder(0)), std::nullopt);
  EXPECT_EQ(b.Allocate(PageCount(1), AlignOrder(63)), FrameNumber(0));
  EXPECT_EQ(b.Allocate(PageCount(1), AlignOrder(63)), std::nullopt);
}

// The reference is extent-exact: its stats equal the model's, always.
TEST(ReferenceBackendTest, StatsEqualModelExactly) {
  const uint64_t seed = 77;
  SCOPED_TRACE(testing::Message() << "seed " << seed);
  std::mt19937_64 rng(seed);
  const PageRun range = MakeRun(511, 2600);
  ReferenceBackend b(range);
  ShadowModel m(range);
  std::vector<PageRun> live;
  for (int step = 0; step < 5000; ++step) {
    SCOPED_TRACE(testing::Message() << "step " << step);
    if (rng() % 2 == 0 || live.empty()) {
      const PageCount n(1 + (rng() % 5 == 0 ? rng() % 600 : rng() % 16));
      const AlignOrder a(rng() % 4 == 0 ? rng() % 10 : 0);
      const std::optional<FrameNumber> f = b.Allocate(n, a);
      ASSERT_EQ(f.has_value(), m.CanAllocate(n, a));  // first fit misses nothing
      if (f) {
        ASSERT_TRUE(m.Allocate(*f, n, a).ok());
        live.push_back({*f, n});
      }
    } else {
      const size_t i = rng() % live.size();
      ASSERT_TRUE(b.Free(live[i]));
      ASSERT_TRUE(m.Free(live[i]).ok());
      live[i] = live.back();
      live.pop_back();
    }
    const BackendStats s = b.Stats();
    ASSERT_EQ(s.free_pages, m.free_pages());
    ASSERT_EQ(s.largest_free_run, m.longest_free_run());
    ASSERT_EQ(s.free_runs, m.free_run_count());
    ASSERT_EQ(s.free_superpages, m.free_superpages());
  }
  ASSERT_TRUE(b.CheckInvariants().ok());
}

}  // namespace
}  // namespace l4re_ma
