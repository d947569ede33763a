// tests/backends/conformance_test.cc: the one suite every PageBackend must
// pass, instantiated for every backend in the registry.
//
// Every answer of the backend is replayed into a ShadowModel (through
// CheckedBackend, tests/testing/checked_backend.h), which rejects runs that
// leave the range, are misaligned or overlap a live run, and gives the exact
// free_pages and free_superpages Stats() must report after every call. The
// tests cover fresh construction over awkward ranges, alignment from order 0
// to 63, exhaustion, invalid frees, and long seeded random sequences.
//
// The suite also runs over "reference" (tests/testing/reference_backend.h),
// a backend correct by inspection: a failure there is a bug in the suite.
//
// Reproducing a failure: every random test prints its seed (SCOPED_TRACE);
// L4RE_MA_CONFORMANCE_SEED=<n> replaces the base seed, e.g. to explore:
//   L4RE_MA_CONFORMANCE_SEED=123 bazel-bin/tests/backends/conformance_test
//       --gtest_filter='*/buddy'
#include <algorithm>
#include <cctype>
#include <cstdint>
#include <cstdlib>
#include <deque>
#include <iostream>
#include <memory>
#include <optional>
#include <random>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "core/backend_registry.h"
#include "core/page_backend.h"
#include "core/types.h"
#include "gtest/gtest.h"
#include "tests/testing/checked_backend.h"
#include "tests/testing/shadow_model.h"

namespace l4re_ma {
namespace {

constexpr uint64_t kMax = ~uint64_t{0};
// The registry refuses ranges ending above 2^52 frames (2^64 bytes).
constexpr uint64_t kFrameLimit = uint64_t{1} << (64 - kPageShift);

PageRun MakeRun(uint64_t first, uint64_t pages) { return {FrameNumber(first), PageCount(pages)}; }

::testing::AssertionResult IsOk(const absl::Status& s) {
  if (s.ok()) return ::testing::AssertionSuccess();
  return ::testing::AssertionFailure() << s;
}

template <typename T>
::testing::AssertionResult IsOk(const absl::StatusOr<T>& s) {
  return IsOk(s.status());
}

uint64_t BaseSeed() {
  if (const char* env = std::getenv("L4RE_MA_CONFORMANCE_SEED")) {
    return std::strtoull(env, nullptr, 0);
  }
  return 0x5eed2024;
}

// One request of the random mix: sizes with a heavy tail, mostly unaligned.
struct Request {
  PageCount pages;
  AlignOrder align;
};

Request DrawRequest(std::mt19937_64& rng) {
  const uint64_t r = rng() % 1000;
  uint64_t pages;
  if (r < 600) {
    pages = 1 + rng() % 16;  // 60 %: 1-16 pages
  } else if (r < 850) {
    pages = 17 + rng() % 48;  // 25 %: 17-64 pages
  } else if (r < 960) {
    pages = 65 + rng() % 536;  // 11 %: 65-600 pages
  } else {
    pages = 512 * (1 + rng() % 4);  // 4 %: 1-4 superpages
  }
  unsigned align = 0;
  if (pages % 512 == 0 && rng() % 2 == 0) {
    align = kSuperPageOrder;
  } else if (rng() % 5 == 0) {
    align = 1 + rng() % 10;  // 20 %: order 1-10
  }
  return {PageCount(pages), AlignOrder(align)};
}

// Ranges for construction: tiny, odd-sized, unaligned first frame, crossing
// 2^32 bytes and 2^20 frames, high in the address space, ending at the very
// top, and large (64 GiB).
std::vector<PageRun> ConstructionRanges() {
  return {
      MakeRun(0, 1),
      MakeRun(1, 1),
      MakeRun(7, 3),
      MakeRun(0, 512),
      MakeRun(512, 512),
      MakeRun(511, 1026),
      MakeRun(1, 1000),
      MakeRun(0x12345, 4097),
      MakeRun((uint64_t{1} << 20) - 515, 1030),
      MakeRun((uint64_t{1} << 40) + 3, 5000),
      MakeRun(kFrameLimit - 4099, 4099),
      MakeRun(0x40001, (uint64_t{1} << 22) + 777),
      MakeRun(0x40000, uint64_t{1} << 24),
  };
}

class BackendConformanceTest : public ::testing::TestWithParam<std::string> {
 protected:
  // A fresh backend over `range` from the registry; nullptr (and a test
  // failure) when the registry refuses.
  std::unique_ptr<PageBackend> Create(PageRun range) {
    absl::StatusOr<std::unique_ptr<PageBackend>> b =
        BackendRegistry::Global().Create(GetParam(), BackendOptions{range});
    EXPECT_TRUE(b.ok()) << b.status();
    if (!b.ok()) return nullptr;
    EXPECT_NE(*b, nullptr) << "the factory of '" << GetParam() << "' returned nullptr";
    return *std::move(b);
  }

  // The reference backend scans all frames on every call; its long random
  // sequences run over smaller pools.
  bool IsLinearTime() const { return GetParam() == "reference"; }

  // Frees everything in random order, then checks that Stats() equals that of
  // a freshly constructed backend over the same range, and that the whole
  // range is one run again when the fresh backend offers it.
  void FreeAllAndCompareWithFresh(CheckedBackend& c, std::mt19937_64& rng) {
    ASSERT_TRUE(IsOk(c.FreeAll(rng)));
    const PageRun range = c.backend().range();
    std::unique_ptr<PageBackend> fresh = Create(range);
    ASSERT_NE(fresh, nullptr);
    const BackendStats want = fresh->Stats();
    ASSERT_EQ(c.backend().Stats(), want)
        << "after freeing every run, Stats() must equal a fresh backend's (full coalescing)";
    ASSERT_TRUE(IsOk(c.CheckDeep()));
    ASSERT_EQ(c.backend().Stats(), want) << "after probing largest_free_run on an empty pool";
    if (want.largest_free_run == range.pages) {
      absl::StatusOr<std::optional<FrameNumber>> all = c.Allocate(range.pages, AlignOrder(0));
      ASSERT_TRUE(IsOk(all));
      ASSERT_EQ(*all, range.first) << "the whole range must be allocatable as one run again";
      ASSERT_TRUE(IsOk(c.FreeLiveRun(c.live_runs().size() - 1)));
      ASSERT_EQ(c.backend().Stats(), want);
    }
  }

  struct RandomConfig {
    PageRun range;
    int ops;
    uint64_t seed;
  };
  void RunRandomSequence(const RandomConfig& config);
};

TEST(BackendRegistryConformance, EveryBackendIsRegistered) {
  const std::vector<std::string> names = BackendRegistry::Global().Names();
  for (const char* want : {"bitmap", "buddy", "reference", "region", "slab"}) {
    EXPECT_TRUE(std::find(names.begin(), names.end(), want) != names.end())
        << "'" << want << "' is not registered; //backends:all must link every backend";
  }
}

TEST_P(BackendConformanceTest, NameAndRange) {
  for (const PageRun& range : {MakeRun(0, 1), MakeRun(0x12345, 4097), MakeRun(1, 1000)}) {
    std::unique_ptr<PageBackend> b = Create(range);
    ASSERT_NE(b, nullptr);
    EXPECT_EQ(std::string(b->name()), GetParam());
    EXPECT_EQ(b->range(), range);
  }
}

// Fresh stats over every construction range; the largest free run is
// allocatable and one more page is not; one page is always allocatable.
TEST_P(BackendConformanceTest, FreshBackendOverManyRanges) {
  std::mt19937_64 rng(BaseSeed());
  for (const PageRun& range : ConstructionRanges()) {
    if (IsLinearTime() && range.pages.value() > (uint64_t{1} << 23)) continue;  // seconds each
    SCOPED_TRACE(::testing::Message() << "range " << range);
    std::unique_ptr<PageBackend> b = Create(range);
    ASSERT_NE(b, nullptr);
    EXPECT_EQ(b->range(), range);
    CheckedBackend c(b.get());
    ASSERT_TRUE(IsOk(c.CheckFresh()));
    const BackendStats fresh = c.last_stats();
    EXPECT_EQ(fresh.free_superpages, c.model().total_superpages());
    ASSERT_TRUE(IsOk(c.CheckDeep()));
    absl::StatusOr<std::optional<FrameNumber>> one = c.Allocate(PageCount(1), AlignOrder(0));
    ASSERT_TRUE(IsOk(one));
    ASSERT_TRUE(one->has_value()) << "a fresh backend must hand out one page";
    ASSERT_TRUE(IsOk(c.CheckDeep()));
    FreeAllAndCompareWithFresh(c, rng);
    if (HasFatalFailure()) return;
  }
}

// On a fresh backend, a single frame at order k and a naturally aligned block
// of 2^k frames must be allocatable whenever the range holds one (even a
// buddy allocator can split down to any such block); whatever is asked, an
// answer must be aligned and inside the range, and requests no run in the
// range satisfies (orders 20, 40, 63 in most ranges) must return nullopt.
TEST_P(BackendConformanceTest, AlignmentOnFreshBackend) {
  const std::vector<PageRun> ranges = {
      MakeRun(0, 5000),
      MakeRun(1, 5000),
      MakeRun(0x12345, 70000),
      MakeRun((uint64_t{1} << 20) - 5, 100),
      MakeRun(uint64_t{1} << 40, 4096),
      MakeRun((uint64_t{1} << 40) - 1, 4098),
  };
  std::vector<unsigned> orders;
  for (unsigned k = 0; k <= 12; ++k) orders.push_back(k);
  for (unsigned k : {20u, 40u, 41u, 63u}) orders.push_back(k);
  for (const PageRun& range : ranges) {
    for (unsigned k : orders) {
      std::vector<uint64_t> sizes = {1, 3};
      if (k >= 2 && k <= 12) sizes.push_back(uint64_t{1} << k);
      for (uint64_t pages : sizes) {
        SCOPED_TRACE(::testing::Message() << "range " << range << ", Allocate(" << pages
                                          << " pages, order " << k << ") on a fresh backend");
        std::unique_ptr<PageBackend> b = Create(range);
        ASSERT_NE(b, nullptr);
        CheckedBackend c(b.get());
        const bool feasible = c.model().CanAllocate(PageCount(pages), AlignOrder(k));
        absl::StatusOr<std::optional<FrameNumber>> got = c.Allocate(PageCount(pages), AlignOrder(k));
        ASSERT_TRUE(IsOk(got));
        if (feasible && (pages == 1 || pages == (uint64_t{1} << k))) {
          EXPECT_TRUE(got->has_value()) << "the range holds a free run like that";
        }
        ASSERT_TRUE(IsOk(b->CheckInvariants()));
      }
    }
  }
}

// Alignment of every run while the pool fills up, orders 0..12 round-robin,
// plus orders no frame of the range satisfies.
TEST_P(BackendConformanceTest, AlignmentUnderLoad) {
  const uint64_t seed = BaseSeed() + 1;
  SCOPED_TRACE(::testing::Message() << "seed " << seed);
  std::mt19937_64 rng(seed);
  const PageRun range = MakeRun(0x12345, 9000);  // no multiple of 2^17 inside
  std::unique_ptr<PageBackend> b = Create(range);
  ASSERT_NE(b, nullptr);
  CheckedBackend c(b.get());
  ASSERT_TRUE(IsOk(c.CheckFresh()));
  int successes = 0;
  for (int round = 0; round < 4; ++round) {
    for (unsigned k = 0; k <= 12; ++k) {
      for (uint64_t pages : {uint64_t{1}, uint64_t{2}, uint64_t{5}, uint64_t{1} << k,
                             (uint64_t{1} << k) + 3}) {
        absl::StatusOr<std::optional<FrameNumber>> got = c.Allocate(PageCount(pages), AlignOrder(k));
        ASSERT_TRUE(IsOk(got)) << "round " << round;
        successes += got->has_value();
      }
      for (unsigned huge : {17u, 20u, 40u, 63u}) {
        absl::StatusOr<std::optional<FrameNumber>> got = c.Allocate(PageCount(1), AlignOrder(huge));
        ASSERT_TRUE(IsOk(got));
        EXPECT_FALSE(got->has_value()) << "no frame of " << range << " is aligned to order " << huge;
      }
    }
    ASSERT_TRUE(IsOk(c.CheckDeep())) << "round " << round;
    // Free a random half, keeping the pool fragmented for the next round.
    for (size_t n = c.live_runs().size() / 2; n > 0; --n) {
      ASSERT_TRUE(IsOk(c.FreeLiveRun(rng() % c.live_runs().size())));
    }
  }
  EXPECT_GT(successes, 100);
  FreeAllAndCompareWithFresh(c, rng);
}

// Exactly `total` one-page requests succeed; then everything fails without
// a crash; frees make room again, page for page.
TEST_P(BackendConformanceTest, SinglePageExhaustion) {
  const uint64_t seed = BaseSeed() + 2;
  SCOPED_TRACE(::testing::Message() << "seed " << seed);
  std::mt19937_64 rng(seed);
  std::vector<PageRun> ranges = {MakeRun(1, 1), MakeRun(5, 37), MakeRun(0x1001, 1500),
                                 MakeRun(511, 1026)};
  if (!IsLinearTime()) ranges.push_back(MakeRun(0x12345, 40000));
  for (const PageRun& range : ranges) {
    SCOPED_TRACE(::testing::Message() << "range " << range);
    std::unique_ptr<PageBackend> b = Create(range);
    ASSERT_NE(b, nullptr);
    CheckedBackend c(b.get());
    ASSERT_TRUE(IsOk(c.CheckFresh()));
    const uint64_t total = range.pages.value();
    uint64_t got_pages = 0;
    for (uint64_t i = 0; i <= total; ++i) {
      absl::StatusOr<std::optional<FrameNumber>> got = c.Allocate(PageCount(1), AlignOrder(0));
      ASSERT_TRUE(IsOk(got)) << "request " << i;
      if (!got->has_value()) break;
      ++got_pages;
    }
    ASSERT_EQ(got_pages, total) << "one-page requests must succeed until every page is taken";
    EXPECT_EQ(c.last_stats().free_pages, PageCount(0));
    EXPECT_EQ(c.last_stats().largest_free_run, PageCount(0));
    EXPECT_EQ(c.last_stats().free_superpages, 0u);
    for (uint64_t pages : {uint64_t{1}, uint64_t{2}, uint64_t{512}, total, total + 1, kMax}) {
      for (unsigned k : {0u, 1u, 5u, 9u, 63u}) {
        absl::StatusOr<std::optional<FrameNumber>> got = c.Allocate(PageCount(pages), AlignOrder(k));
        ASSERT_TRUE(IsOk(got));
        ASSERT_FALSE(got->has_value()) << "Allocate(" << pages << ", order " << k << ") on a full pool";
      }
    }
    ASSERT_TRUE(IsOk(c.CheckDeep()));
    // Free a random half; exactly that many pages come back.
    std::vector<PageRun> live = c.live_runs();
    std::shuffle(live.begin(), live.end(), rng);
    const size_t freed = live.size() / 2;
    for (size_t i = 0; i < freed; ++i) ASSERT_TRUE(IsOk(c.Free(live[i])));
    uint64_t regained = 0;
    for (uint64_t i = 0; i <= freed; ++i) {
      absl::StatusOr<std::optional<FrameNumber>> got = c.Allocate(PageCount(1), AlignOrder(0));
      ASSERT_TRUE(IsOk(got));
      if (!got->has_value()) break;
      ++regained;
    }
    ASSERT_EQ(regained, freed) << "every freed page must be allocatable again";
    // With one page free, that page is what a request gets.
    const PageRun one = c.live_runs()[rng() % c.live_runs().size()];
    ASSERT_TRUE(IsOk(c.Free(one)));
    absl::StatusOr<std::optional<FrameNumber>> again = c.Allocate(PageCount(1), AlignOrder(0));
    ASSERT_TRUE(IsOk(again));
    ASSERT_EQ(*again, one.first);
    FreeAllAndCompareWithFresh(c, rng);
    if (HasFatalFailure()) return;
  }
}

// Requests larger than the range, up to 2^64 - 1 pages, fail cleanly and
// change nothing, on an empty and on a loaded pool.
TEST_P(BackendConformanceTest, OversizedRequestsFail) {
  std::mt19937_64 rng(BaseSeed() + 3);
  for (const PageRun& range : {MakeRun(0x1003, 3000), MakeRun(0, 4096)}) {
    SCOPED_TRACE(::testing::Message() << "range " << range);
    std::unique_ptr<PageBackend> b = Create(range);
    ASSERT_NE(b, nullptr);
    CheckedBackend c(b.get());
    ASSERT_TRUE(IsOk(c.CheckFresh()));
    const uint64_t total = range.pages.value();
    for (int loaded = 0; loaded < 2; ++loaded) {
      if (loaded) {
        for (int i = 0; i < 40; ++i) {
          const Request q = DrawRequest(rng);
          ASSERT_TRUE(IsOk(c.Allocate(q.pages, q.align)));
        }
      }
      for (uint64_t pages : {total + 1, total + 512, uint64_t{1} << 32, kFrameLimit,
                             uint64_t{1} << 63, kMax - 511, kMax}) {
        for (unsigned k : {0u, 9u, 63u}) {
          const BackendStats before = b->Stats();
          absl::StatusOr<std::optional<FrameNumber>> got = c.Allocate(PageCount(pages), AlignOrder(k));
          ASSERT_TRUE(IsOk(got));
          ASSERT_FALSE(got->has_value()) << "Allocate(" << pages << " pages, order " << k << ")";
          ASSERT_EQ(b->Stats(), before) << "a failed Allocate must change nothing";
        }
      }
      ASSERT_TRUE(IsOk(c.CheckDeep()));
    }
    FreeAllAndCompareWithFresh(c, rng);
    if (HasFatalFailure()) return;
  }
}

// Frees of anything but a live run (double free, never handed out, a part of
// a run, wrong length, spanning runs, outside the range, empty, wrapping
// around 2^64) return false and change nothing; the backend stays usable.
TEST_P(BackendConformanceTest, InvalidFreesAreRejected) {
  const uint64_t seed = BaseSeed() + 4;
  SCOPED_TRACE(::testing::Message() << "seed " << seed);
  std::mt19937_64 rng(seed);
  const PageRun range = MakeRun(0x1003, 3000);
  std::unique_ptr<PageBackend> b = Create(range);
  ASSERT_NE(b, nullptr);
  CheckedBackend c(b.get());
  ASSERT_TRUE(IsOk(c.CheckFresh()));

  std::vector<PageRun> history;  // every run ever handed out
  auto take = [&](uint64_t pages, unsigned order) -> std::optional<PageRun> {
    absl::StatusOr<std::optional<FrameNumber>> got = c.Allocate(PageCount(pages), AlignOrder(order));
    EXPECT_TRUE(IsOk(got));
    if (!got.ok() || !got->has_value()) return std::nullopt;
    history.push_back({**got, PageCount(pages)});
    return history.back();
  };
  // Offers every mangled variant of `run` that is not itself live.
  auto reject = [&](PageRun run) {
    if (c.model().IsLive(run)) return;
    ASSERT_TRUE(IsOk(c.ExpectFreeRejected(run)));
  };
  auto reject_variants = [&](PageRun r) {
    const FrameNumber f = r.first;
    const uint64_t n = r.pages.value();
    for (const PageRun& v :
         {PageRun{f, PageCount(n + 1)}, PageRun{f, PageCount(2 * n)}, PageRun{f, PageCount(n - 1)},
          PageRun{f, PageCount(1)}, PageRun{f + PageCount(1), PageCount(n - 1)},
          PageRun{f + PageCount(1), PageCount(n)}, PageRun{f + PageCount(n - 1), PageCount(1)},
          PageRun{f - PageCount(1), PageCount(n + 1)}, PageRun{f - PageCount(1), PageCount(n)},
          PageRun{f, PageCount(0)}}) {
      reject(v);
      if (::testing::Test::HasFatalFailure()) return;
    }
  };

  // Runs of several sizes, some aligned, and single pages of which every
  // other one is freed again (double-free targets among live neighbours).
  std::vector<PageRun> to_free;
  for (int i = 0; i < 12; ++i) {
    std::optional<PageRun> r = take(1, 0);
    if (r && i % 2 == 0) to_free.push_back(*r);
  }
  for (const auto& [pages, order] : std::vector<std::pair<uint64_t, unsigned>>{
           {8, 0}, {100, 4}, {3, 0}, {512, 9}, {16, 4}, {37, 0}, {2, 1}, {600, 0}}) {
    std::optional<PageRun> r = take(pages, order);
    if (r && pages == 37) to_free.push_back(*r);
  }
  ASSERT_FALSE(HasFailure());
  ASSERT_GE(c.live_runs().size(), 12u) << "a fresh 3000-page pool must satisfy these requests";
  for (const PageRun& r : to_free) ASSERT_TRUE(IsOk(c.Free(r)));

  for (int phase = 0; phase < 3; ++phase) {
    SCOPED_TRACE(::testing::Message() << "phase " << phase);
    // Double frees and stale runs: everything handed out earlier and not live.
    for (const PageRun& r : history) {
      reject(r);
      ASSERT_FALSE(HasFatalFailure());
    }
    // Parts of live runs, wrong lengths, overhangs.
    for (const PageRun& r : std::vector<PageRun>(c.live_runs())) {
      reject_variants(r);
      ASSERT_FALSE(HasFatalFailure());
    }
    // Runs spanning two live runs.
    std::vector<PageRun> live = c.model().LiveRuns();
    for (size_t i = 0; i + 1 < live.size(); ++i) {
      reject({live[i].first, live[i + 1].end() - live[i].first});
      ASSERT_FALSE(HasFatalFailure());
    }
    // Never handed out: pieces of the free extents.
    for (const PageRun& e : c.model().FreeRuns()) {
      const uint64_t n = e.pages.value();
      for (const PageRun& v : {PageRun{e.first, PageCount(1)}, e,
                               PageRun{e.first + PageCount(n / 2), PageCount(1)},
                               PageRun{e.end() - PageCount(1), PageCount(1)},
                               PageRun{e.first, PageCount(std::min<uint64_t>(n, 8))}}) {
        reject(v);
        ASSERT_FALSE(HasFatalFailure());
      }
    }
    // Outside the range, straddling its ends, wrapping around, empty.
    const uint64_t first = range.first.value();
    const uint64_t end = range.end().value();
    for (const PageRun& v : {MakeRun(first - 1, 1), MakeRun(first - 1, 2), MakeRun(first - 8, 16),
                             MakeRun(end, 1), MakeRun(end - 1, 2), MakeRun(end + 100, 5),
                             MakeRun(0, 1), MakeRun(0, first + 1), MakeRun(uint64_t{1} << 51, 1),
                             MakeRun(kMax - 1, 4), MakeRun(kMax, 1), MakeRun(first, kMax),
                             MakeRun(first + 1, kMax), MakeRun(first, range.pages.value()),
                             MakeRun(first, range.pages.value() + 1), MakeRun(end, 0),
                             MakeRun(first, 0)}) {
      reject(v);
      ASSERT_FALSE(HasFatalFailure());
    }
    ASSERT_TRUE(IsOk(c.CheckDeep()));
    // Shuffle the state for the next phase: free some runs, allocate others,
    // so that earlier runs become stale while their frames are live again.
    for (size_t n = c.live_runs().size() / 2; n > 0; --n) {
      ASSERT_TRUE(IsOk(c.FreeLiveRun(rng() % c.live_runs().size())));
    }
    for (int i = 0; i < 30; ++i) {
      const Request q = DrawRequest(rng);
      (void)take(q.pages.value(), q.align.value());
      ASSERT_FALSE(HasFailure());
    }
  }
  // Still usable: every live run frees, and the pool is as new.
  FreeAllAndCompareWithFresh(c, rng);
}

// Instances share nothing: interleaved operations on several backends (two
// over the same range) each match their own model, and destroying a backend
// that still has live runs is fine.
TEST_P(BackendConformanceTest, InstancesAreIndependent) {
  const uint64_t seed = BaseSeed() + 8;
  SCOPED_TRACE(::testing::Message() << "seed " << seed);
  std::mt19937_64 rng(seed);
  const std::vector<PageRun> ranges = {MakeRun(0x1000, 3000), MakeRun(0x1000, 3000),
                                       MakeRun(0x1003, 2000), MakeRun(0x40000, 5000)};
  std::vector<std::unique_ptr<PageBackend>> backends;
  std::vector<std::unique_ptr<CheckedBackend>> checked;
  for (const PageRun& range : ranges) {
    backends.push_back(Create(range));
    ASSERT_NE(backends.back(), nullptr);
    checked.push_back(std::make_unique<CheckedBackend>(backends.back().get()));
    ASSERT_TRUE(IsOk(checked.back()->CheckFresh()));
  }
  for (int step = 0; step < 4000; ++step) {
    CheckedBackend& c = *checked[rng() % checked.size()];
    if (c.live_runs().empty() || rng() % 3 != 0) {
      const Request q = DrawRequest(rng);
      ASSERT_TRUE(IsOk(c.Allocate(q.pages, q.align))) << "step " << step;
    } else {
      ASSERT_TRUE(IsOk(c.FreeLiveRun(rng() % c.live_runs().size()))) << "step " << step;
    }
  }
  for (auto& c : checked) ASSERT_TRUE(IsOk(c->CheckDeep()));
  // Destroy two with live runs; the others must not notice.
  ASSERT_FALSE(checked[0]->live_runs().empty());
  checked.erase(checked.begin() + 2);
  backends.erase(backends.begin() + 2);
  checked.erase(checked.begin());
  backends.erase(backends.begin());
  for (auto& c : checked) {
    ASSERT_TRUE(IsOk(c->CheckDeep()));
    FreeAllAndCompareWithFresh(*c, rng);
    if (HasFatalFailure()) return;
  }
}

void BackendConformanceTest::RunRandomSequence(const RandomConfig& config) {
  SCOPED_TRACE(::testing::Message() << "backend " << GetParam() << ", range " << config.range
                                    << ", seed " << config.seed << " (base seed " << BaseSeed()
                                    << ", set by L4RE_MA_CONFORMANCE_SEED)");
  std::unique_ptr<PageBackend> b = Create(config.range);
  ASSERT_NE(b, nullptr);
  CheckedBackend c(b.get());
  ASSERT_TRUE(IsOk(c.CheckFresh()));
  std::mt19937_64 rng(config.seed);
  const double total = static_cast<double>(config.range.pages.value());

  // Occupancy cycles: fill (3 allocations per free) up to 90 %, or until
  // failures clearly outnumber successes (as full as this mix of requests
  // gets for this backend), then drain (1 in 4) down to 30 %.
  bool filling = true;
  int pressure = 0;  // failures minus successes while filling, floored at 0
  std::deque<PageRun> recently_freed;  // double-free candidates
  uint64_t allocations = 0, failures = 0, rejected_frees = 0, cycles = 0;
  double occupancy_sum = 0, fragmentation_sum = 0;
  for (int step = 0; step < config.ops; ++step) {
    const double occupancy = static_cast<double>(c.model().live_pages().value()) / total;
    occupancy_sum += occupancy;
    if (filling && (occupancy >= 0.9 || pressure >= 32)) {
      filling = false;
    } else if (!filling && occupancy <= 0.3) {
      filling = true;
      pressure = 0;
      ++cycles;
    }
    const uint64_t r = rng() % 100;
    if (r == 0) {
      // A free the backend must refuse: a live run mangled, or a double free.
      std::optional<PageRun> bad;
      if (rng() % 2 == 0 && !recently_freed.empty()) {
        bad = recently_freed[rng() % recently_freed.size()];
      } else if (!c.live_runs().empty()) {
        const PageRun live = c.live_runs()[rng() % c.live_runs().size()];
        const FrameNumber f = live.first;
        const PageCount n = live.pages;
        std::vector<PageRun> variants = {{f, n + PageCount(1)},
                                         {f - PageCount(1), n + PageCount(1)},
                                         {f + PageCount(1), n}};
        if (n.value() > 1) {
          variants.push_back({f, n - PageCount(1)});
          variants.push_back({f + PageCount(1), n - PageCount(1)});
        }
        bad = variants[rng() % variants.size()];
      }
      if (bad && !c.model().IsLive(*bad)) {
        ASSERT_TRUE(IsOk(c.ExpectFreeRejected(*bad))) << "step " << step;
        ++rejected_frees;
      }
    } else if (c.live_runs().empty() || r < (filling ? 75u : 25u)) {
      const Request q = DrawRequest(rng);
      absl::StatusOr<std::optional<FrameNumber>> got = c.Allocate(q.pages, q.align);
      ASSERT_TRUE(IsOk(got)) << "step " << step;
      if (got->has_value()) {
        ++allocations;
        pressure = std::max(0, pressure - 1);
      } else {
        ++failures;
        ++pressure;
      }
    } else {
      const size_t i = rng() % c.live_runs().size();
      const PageRun run = c.live_runs()[i];
      ASSERT_TRUE(IsOk(c.FreeLiveRun(i))) << "step " << step;
      recently_freed.push_back(run);
      if (recently_freed.size() > 64) recently_freed.pop_front();
    }
    if (c.model().longest_free_run().value() > 0) {
      fragmentation_sum += static_cast<double>(c.last_stats().largest_free_run.value()) /
                           static_cast<double>(c.model().longest_free_run().value());
    }
    if (step % 1024 == 1023) {
      ASSERT_TRUE(IsOk(c.CheckDeep())) << "step " << step;
    }
  }
  ASSERT_TRUE(IsOk(c.CheckDeep())) << "after the sequence";
  EXPECT_GT(allocations, static_cast<uint64_t>(config.ops) / 4);
  EXPECT_GT(rejected_frees, 0u);
  EXPECT_GE(cycles, 2u) << "the sequence must drive occupancy up and down";
  std::cout << "[ " << GetParam() << " ] " << config.ops << " ops over " << config.range
            << ": " << allocations << " allocations, " << failures << " failed, "
            << rejected_frees << " invalid frees rejected, " << cycles
            << " fill/drain cycles, mean occupancy " << static_cast<int>(occupancy_sum / config.ops * 100)
            << " %, mean largest_free_run / longest free run "
            << fragmentation_sum / config.ops << "\n";
  FreeAllAndCompareWithFresh(c, rng);
}

// >= 100 000 operations over a pool with unaligned ends; stats checked after
// every operation, invariants and largest_free_run every 1024.
TEST_P(BackendConformanceTest, RandomSequenceLargePool) {
  const PageRun range = IsLinearTime() ? MakeRun(0x1235, 6000) : MakeRun(0x40007, 131072 - 300);
  RunRandomSequence({range, 100000, BaseSeed() + 5});
}

// A pool of a few superpages, full most of the time: exhaustion, splitting
// and coalescing at the edges of the range.
TEST_P(BackendConformanceTest, RandomSequenceTightPool) {
  RunRandomSequence({MakeRun((uint64_t{1} << 20) + 511, 3000), 20000, BaseSeed() + 6});
  if (HasFatalFailure()) return;
  RunRandomSequence({MakeRun(0, 2048 + 5), 20000, BaseSeed() + 7});
}

std::string BackendName(const ::testing::TestParamInfo<std::string>& info) {
  std::string name = info.param;
  for (char& ch : name) {
    if (!std::isalnum(static_cast<unsigned char>(ch))) ch = '_';
  }
  return name;
}

// Names() runs when tests are registered (after static initialization), so
// every backend linked in through //backends:all is covered.
INSTANTIATE_TEST_SUITE_P(AllBackends, BackendConformanceTest,
                         ::testing::ValuesIn(BackendRegistry::Global().Names()), BackendName);

}  // namespace
}  // namespace l4re_ma
