// tests/bench/firstfit_test.cc: the first-fit yardstick obeys the
// PageBackend contract (checked against the shadow model after every call),
// places runs exactly where address-ordered first fit must, and fails a
// request only when no aligned free run exists at all.
#include "bench/firstfit/firstfit_backend.h"

#include <cstdint>
#include <optional>
#include <random>
#include <vector>

#include "core/types.h"
#include "gtest/gtest.h"
#include "tests/testing/checked_backend.h"
#include "tests/testing/shadow_model.h"

namespace l4re_ma {
namespace {

PageRun MakeRun(uint64_t first, uint64_t pages) { return {FrameNumber(first), PageCount(pages)}; }

TEST(FirstFitBackendTest, FreshOverAwkwardRanges) {
  for (const PageRun& range : {MakeRun(0, 1), MakeRun(7, 3), MakeRun(511, 1026), MakeRun(0x40000, 262144),
                               MakeRun((uint64_t{1} << 40) + 3, 5000)}) {
    SCOPED_TRACE(::testing::Message() << "range " << range);
    FirstFitBackend b(range);
    CheckedBackend c(&b);
    ASSERT_TRUE(c.CheckFresh().ok()) << c.CheckFresh();
    EXPECT_EQ(b.name(), "firstfit");
    EXPECT_EQ(b.Stats().largest_free_run, range.pages);
    EXPECT_EQ(b.Stats().free_runs, 1u);
  }
}

TEST(FirstFitBackendTest, TakesTheLowestFit) {
  FirstFitBackend b(MakeRun(1000, 100));
  // Runs at 1000, 1010, 1020; free the first two pieces to leave holes of
  // 10 and 5 pages below the rest.
  ASSERT_EQ(b.Allocate(PageCount(10), AlignOrder(0)), FrameNumber(1000));
  ASSERT_EQ(b.Allocate(PageCount(5), AlignOrder(0)), FrameNumber(1010));
  ASSERT_EQ(b.Allocate(PageCount(5), AlignOrder(0)), FrameNumber(1015));
  ASSERT_TRUE(b.Free(MakeRun(1000, 10)));
  // 4 pages: the lowest hole, not the best-fitting one.
  EXPECT_EQ(b.Allocate(PageCount(4), AlignOrder(0)), FrameNumber(1000));
  // 8 pages no longer fit below 1020.
  EXPECT_EQ(b.Allocate(PageCount(8), AlignOrder(0)), FrameNumber(1020));
  // Aligned to 16 frames: 1008 lies in the hole [1004, 1010) with 2 frames
  // behind it.
  EXPECT_EQ(b.Allocate(PageCount(2), AlignOrder(4)), FrameNumber(1008));
  // The alignment gap [1004, 1008) is too small for 6 pages, which go above
  // the last run; 4 pages fill the gap exactly.
  EXPECT_EQ(b.Allocate(PageCount(6), AlignOrder(0)), FrameNumber(1028));
  EXPECT_EQ(b.Allocate(PageCount(4), AlignOrder(0)), FrameNumber(1004));
  EXPECT_EQ(b.Stats().free_runs, 1u);  // [1034, 1100)
  EXPECT_TRUE(b.CheckInvariants().ok()) << b.CheckInvariants();
}

TEST(FirstFitBackendTest, RejectsEverythingButALiveRun) {
  FirstFitBackend b(MakeRun(64, 64));
  ASSERT_EQ(b.Allocate(PageCount(4), AlignOrder(0)), FrameNumber(64));
  ASSERT_EQ(b.Allocate(PageCount(4), AlignOrder(0)), FrameNumber(68));
  const BackendStats before = b.Stats();
  for (const PageRun& bad : {MakeRun(64, 3), MakeRun(65, 3), MakeRun(64, 8), MakeRun(64, 5), MakeRun(72, 1),
                             MakeRun(63, 1), MakeRun(128, 1), MakeRun(100, 100), MakeRun(64, 0),
                             MakeRun(~uint64_t{0} - 1, 4)}) {
    SCOPED_TRACE(::testing::Message() << "run " << bad);
    EXPECT_FALSE(b.Free(bad));
    EXPECT_EQ(b.Stats(), before);
  }
  EXPECT_TRUE(b.Free(MakeRun(68, 4)));
  EXPECT_FALSE(b.Free(MakeRun(68, 4))) << "double free";
  EXPECT_TRUE(b.Free(MakeRun(64, 4)));
  EXPECT_EQ(b.Stats(), FirstFitBackend(MakeRun(64, 64)).Stats());
}

// Random requests in a tight pool: every answer is checked against the
// model; since first fit is exhaustive, Allocate must fail exactly when no
// aligned free run exists, and largest_free_run is the longest free extent.
TEST(FirstFitBackendTest, RandomSequenceAgainstTheModel) {
  for (uint64_t seed : {1u, 2u, 3u}) {
    SCOPED_TRACE(::testing::Message() << "seed " << seed);
    std::mt19937_64 rng(seed);
    const PageRun range = MakeRun(0x40000 + seed * 3, 3000 + seed * 517);
    FirstFitBackend b(range);
    CheckedBackend c(&b);
    ASSERT_TRUE(c.CheckFresh().ok());
    for (int op = 0; op < 20000; ++op) {
      if (c.live_runs().empty() || rng() % 100 < 55) {
        const PageCount pages(1 + (rng() % 4 == 0 ? rng() % 300 : rng() % 12));
        const AlignOrder align(rng() % 5 == 0 ? rng() % 10 : 0);
        const bool possible = c.model().CanAllocate(pages, align);
        absl::StatusOr<std::optional<FrameNumber>> f = c.Allocate(pages, align);
        ASSERT_TRUE(f.ok()) << f.status();
        ASSERT_EQ(f->has_value(), possible) << pages << " at " << align;
      } else {
        ASSERT_TRUE(c.FreeLiveRun(rng() % c.live_runs().size()).ok());
      }
      ASSERT_EQ(b.Stats().largest_free_run, c.model().longest_free_run());
      ASSERT_EQ(b.Stats().free_runs, c.model().free_run_count());
      if (op % 2000 == 0) {
        ASSERT_TRUE(c.CheckDeep().ok()) << c.CheckDeep();
      }
    }
    ASSERT_TRUE(c.FreeAll(rng).ok());
    EXPECT_EQ(b.Stats(), FirstFitBackend(range).Stats());
    EXPECT_TRUE(b.CheckInvariants().ok());
  }
}

}  // namespace
}  // namespace l4re_ma
