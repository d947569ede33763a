// Tests for the slab-of-superpages backend: superpage refill and release,
// slab policy, alignment, superpage runs, exhaustion, odd ranges, exact Free
// validation, and a seeded randomized run against a shadow model.
#include "backends/slab/slab_backend.h"

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <memory>
#include <optional>
#include <random>
#include <vector>

#include "core/backend_registry.h"
#include "gtest/gtest.h"

namespace l4re_ma {
namespace {

constexpr uint64_t kSp = 512;

PageRun Range(uint64_t first, uint64_t pages) { return {FrameNumber(first), PageCount(pages)}; }

std::optional<FrameNumber> Alloc(SlabBackend& b, uint64_t pages, unsigned align = 0) {
  return b.Allocate(PageCount(pages), AlignOrder(align));
}

bool FreeRun(SlabBackend& b, FrameNumber f, uint64_t pages) {
  return b.Free({f, PageCount(pages)});
}

// Whole 512-aligned superpages inside [first, first + pages), counted naively.
uint64_t WholeSuperpages(uint64_t first, uint64_t pages) {
  uint64_t n = 0;
  for (uint64_t s = (first + kSp - 1) / kSp; (s + 1) * kSp <= first + pages; ++s) ++n;
  return n;
}

TEST(SlabBackendTest, NameRangeAndFreshStats) {
  SlabBackend b(Range(0x40000, 4 * kSp));
  EXPECT_EQ(b.name(), "slab");
  EXPECT_EQ(b.range(), Range(0x40000, 4 * kSp));
  const BackendStats s = b.Stats();
  EXPECT_EQ(s.total_pages, PageCount(4 * kSp));
  EXPECT_EQ(s.free_pages, PageCount(4 * kSp));
  EXPECT_EQ(s.largest_free_run, PageCount(4 * kSp));
  EXPECT_EQ(s.free_runs, 1u);
  EXPECT_EQ(s.free_superpages, 4u);
  EXPECT_GT(s.metadata_bytes, 0u);
  EXPECT_EQ(b.superpages(), 4u);
  EXPECT_EQ(b.edge_pages(), PageCount(0));
  EXPECT_TRUE(b.CheckInvariants().ok());
}

TEST(SlabBackendTest, RegisteredAsSlab) {
  auto created = BackendRegistry::Global().Create("slab", BackendOptions{Range(1000, 5000)});
  ASSERT_TRUE(created.ok()) << created.status();
  EXPECT_EQ((*created)->name(), "slab");
  EXPECT_EQ((*created)->Stats(), SlabBackend(Range(1000, 5000)).Stats());
}

TEST(SlabBackendTest, ClassesBoundWaste) {
  for (uint64_t n = 1; n <= SlabBackend::kMaxClassPages; ++n) {
    const int c = SlabBackend::ClassFor(PageCount(n), AlignOrder(0));
    ASSERT_GE(c, 0);
    const uint64_t size = SlabBackend::ClassPages(c).value();
    EXPECT_GE(size, n);
    if (c > 0) {
      EXPECT_LT(SlabBackend::ClassPages(c - 1).value(), n) << "not the smallest class";
    }
    // Slack / class: below a quarter up to 168 pages, a third above.
    if (n <= 168) {
      EXPECT_LE((size - n) * 100, size * 24) << n;
    } else {
      EXPECT_LE((size - n) * 100, size * 34) << n;
    }
    for (unsigned k = 0; k <= SlabBackend::kMaxSlabAlignOrder; ++k) {
      const int ck = SlabBackend::ClassFor(PageCount(n), AlignOrder(k));
      ASSERT_GE(ck, 0);
      EXPECT_EQ(SlabBackend::ClassPages(ck).value() % (uint64_t{1} << k), 0u);
      EXPECT_GE(SlabBackend::ClassPages(ck).value(), n);
    }
  }
  EXPECT_EQ(SlabBackend::ClassFor(PageCount(257), AlignOrder(0)), -1);
  EXPECT_EQ(SlabBackend::ClassFor(PageCount(1), AlignOrder(9)), -1);
}

TEST(SlabBackendTest, SuperpageRefillAndRelease) {
  SlabBackend b(Range(0, 4 * kSp));
  const BackendStats fresh = b.Stats();
  std::vector<FrameNumber> objs;
  auto first = Alloc(b, 1);
  ASSERT_TRUE(first);
  objs.push_back(*first);
  EXPECT_EQ(b.Stats().free_superpages, 3u) << "first small request takes one superpage";
  EXPECT_EQ(b.slab_superpages(), 1u);
  // Fill the class-1 slab: 512 objects, no further superpage.
  for (int i = 1; i < 512; ++i) {
    auto f = Alloc(b, 1);
    ASSERT_TRUE(f);
    objs.push_back(*f);
    ASSERT_EQ(b.Stats().free_superpages, 3u) << i;
  }
  EXPECT_EQ(b.Stats().free_pages, PageCount(3 * kSp));
  // The next one needs a second superpage.
  auto extra = Alloc(b, 1);
  ASSERT_TRUE(extra);
  EXPECT_EQ(b.Stats().free_superpages, 2u);
  EXPECT_EQ(b.slab_superpages(), 2u);
  EXPECT_TRUE(b.CheckInvariants().ok()) << b.CheckInvariants();
  // Freeing every object of the first slab returns its superpage at once.
  for (size_t i = 0; i < objs.size(); ++i) {
    ASSERT_TRUE(FreeRun(b, objs[i], 1));
    ASSERT_EQ(b.Stats().free_superpages, i + 1 == objs.size() ? 3u : 2u) << i;
  }
  EXPECT_EQ(b.slab_superpages(), 1u);
  ASSERT_TRUE(FreeRun(b, *extra, 1));
  EXPECT_EQ(b.Stats(), fresh);
  EXPECT_TRUE(b.CheckInvariants().ok()) << b.CheckInvariants();
}

TEST(SlabBackendTest, SmallRequestsReusePartialSlabs) {
  SlabBackend b(Range(0, 8 * kSp));
  // One slab per class: every class costs exactly one superpage.
  std::vector<std::pair<FrameNumber, uint64_t>> live;
  for (int c = 0; c < 6; ++c) {
    const uint64_t n = SlabBackend::ClassPages(c).value();
    auto f = Alloc(b, n);
    ASSERT_TRUE(f);
    live.push_back({*f, n});
    EXPECT_EQ(b.Stats().free_superpages, 8u - (c + 1));
  }
  // More requests of those classes, short of filling their slabs: no superpage.
  for (int round = 0; round < 40; ++round) {
    for (int c = 0; c < 6; ++c) {
      const uint64_t n = SlabBackend::ClassPages(c).value();
      auto f = Alloc(b, n);
      ASSERT_TRUE(f);
      live.push_back({*f, n});
    }
    ASSERT_EQ(b.Stats().free_superpages, 2u);
  }
  // Freed holes in a slab are refilled before any superpage is taken.
  for (int i = 0; i < 10; ++i) {
    ASSERT_TRUE(FreeRun(b, live[6 * i + 6].first, live[6 * i + 6].second));
  }
  for (int i = 0; i < 10; ++i) ASSERT_TRUE(Alloc(b, 1));
  EXPECT_EQ(b.Stats().free_superpages, 2u);
  EXPECT_TRUE(b.CheckInvariants().ok()) << b.CheckInvariants();
}

TEST(SlabBackendTest, FullestPartialSlabServesFirst) {
  SlabBackend b(Range(0, 4 * kSp));
  std::vector<FrameNumber> objs;
  for (int i = 0; i < 1024; ++i) {
    auto f = Alloc(b, 1);
    ASSERT_TRUE(f);
    objs.push_back(*f);
  }
  ASSERT_EQ(b.slab_superpages(), 2u);
  const uint64_t slab_a = objs[0].value() / kSp;
  const uint64_t slab_b = objs[1023].value() / kSp;
  ASSERT_NE(slab_a, slab_b);
  // Slab A nearly empty, slab B nearly full.
  for (int i = 0; i < 400; ++i) ASSERT_TRUE(FreeRun(b, objs[i], 1));
  for (int i = 0; i < 5; ++i) ASSERT_TRUE(FreeRun(b, objs[1023 - i], 1));
  for (int i = 0; i < 5; ++i) {
    auto f = Alloc(b, 1);
    ASSERT_TRUE(f);
    EXPECT_EQ(f->value() / kSp, slab_b) << "allocation should go to the fuller slab";
  }
  EXPECT_TRUE(b.CheckInvariants().ok()) << b.CheckInvariants();
}

TEST(SlabBackendTest, CachedEmptySuperpageIsInvisible) {
  // The last emptied slab superpage is kept for the next refill, but stats
  // and superpage runs see it as back in the pool.
  SlabBackend b(Range(0, 2 * kSp));
  const BackendStats fresh = b.Stats();
  auto f = Alloc(b, 1);
  ASSERT_TRUE(f);
  ASSERT_TRUE(FreeRun(b, *f, 1));
  EXPECT_EQ(b.Stats(), fresh);
  EXPECT_TRUE(b.CheckInvariants().ok()) << b.CheckInvariants();
  auto all = Alloc(b, 2 * kSp);
  ASSERT_TRUE(all);
  EXPECT_EQ(*all, FrameNumber(0));
  ASSERT_TRUE(FreeRun(b, *all, 2 * kSp));
  EXPECT_EQ(b.Stats(), fresh);
  // Cached superpage between two runs: reported coalesced with neither.
  SlabBackend c(Range(0, 3 * kSp));
  auto r0 = Alloc(c, kSp);
  auto mid = Alloc(c, 1);
  auto r2 = Alloc(c, kSp);
  ASSERT_TRUE(r0 && mid && r2);
  ASSERT_TRUE(FreeRun(c, *mid, 1));
  EXPECT_EQ(c.Stats().free_superpages, 1u);
  EXPECT_EQ(c.Stats().free_runs, 1u);
  EXPECT_EQ(c.Stats().largest_free_run, PageCount(kSp));
  ASSERT_TRUE(FreeRun(c, *r0, kSp));
  EXPECT_EQ(c.Stats().largest_free_run, PageCount(2 * kSp));
  EXPECT_EQ(c.Stats().free_runs, 1u);
  ASSERT_TRUE(FreeRun(c, *r2, kSp));
  EXPECT_EQ(c.Stats(), SlabBackend(Range(0, 3 * kSp)).Stats());
  EXPECT_TRUE(c.CheckInvariants().ok()) << c.CheckInvariants();
}

TEST(SlabBackendTest, ChurnOfSmallRequestsKeepsSuperpagesWhole) {
  constexpr uint64_t kSuperpages = 256;
  SlabBackend b(Range(0, kSuperpages * kSp));
  std::mt19937_64 rng(7);
  std::vector<std::pair<FrameNumber, uint64_t>> live;
  uint64_t live_pages = 0;
  auto alloc_small = [&] {
    const uint64_t n = 1 + rng() % 16;
    auto f = Alloc(b, n);
    ASSERT_TRUE(f);
    live.push_back({*f, n});
    live_pages += n;
  };
  for (int i = 0; i < 2000; ++i) alloc_small();
  uint64_t max_slabs = 0;
  for (int op = 0; op < 60000; ++op) {
    const size_t i = rng() % live.size();
    ASSERT_TRUE(FreeRun(b, live[i].first, live[i].second));
    live_pages -= live[i].second;
    live[i] = live.back();
    live.pop_back();
    alloc_small();
    max_slabs = std::max(max_slabs, b.slab_superpages());
  }
  // Slabs stay within a small factor of the live data, and the rest of the
  // pool is one long free extent that superpage runs can use.
  const uint64_t working_set = (live_pages + kSp - 1) / kSp;
  EXPECT_LE(max_slabs, 2 * working_set + 16) << "working set " << working_set;
  const BackendStats s = b.Stats();
  EXPECT_GE(s.free_superpages + b.slab_superpages(), kSuperpages);
  EXPECT_GE(s.largest_free_run.value(), (kSuperpages - max_slabs - 1) * kSp);
  auto run = Alloc(b, s.largest_free_run.value(), 9);
  ASSERT_TRUE(run);
  ASSERT_TRUE(FreeRun(b, *run, s.largest_free_run.value()));
  for (auto [f, n] : live) ASSERT_TRUE(FreeRun(b, f, n));
  EXPECT_EQ(b.Stats(), SlabBackend(Range(0, kSuperpages * kSp)).Stats());
  RecordProperty("working_set_superpages", static_cast<int>(working_set));
  RecordProperty("max_slab_superpages", static_cast<int>(max_slabs));
}

TEST(SlabBackendTest, AlignedObjects) {
  SlabBackend b(Range(0x12345 * kSp, 1024 * kSp));
  std::vector<std::pair<FrameNumber, uint64_t>> live;
  for (unsigned k = 0; k <= 12; ++k) {
    for (uint64_t n : {1, 2, 3, 5, 9, 17, 33, 100, 129, 200, 256, 300, 511, 512, 700}) {
      auto f = Alloc(b, n, k);
      ASSERT_TRUE(f) << n << " at order " << k;
      EXPECT_TRUE(f->IsAligned(AlignOrder(k))) << *f << " n=" << n << " k=" << k;
      live.push_back({*f, n});
    }
  }
  EXPECT_TRUE(b.CheckInvariants().ok()) << b.CheckInvariants();
  for (auto [f, n] : live) ASSERT_TRUE(FreeRun(b, f, n));
  EXPECT_EQ(b.Stats(), SlabBackend(Range(0x12345 * kSp, 1024 * kSp)).Stats());
}

TEST(SlabBackendTest, SuperpageRuns) {
  SlabBackend b(Range(0, 16 * kSp));
  auto one = Alloc(b, kSp, 9);
  ASSERT_TRUE(one);
  EXPECT_TRUE(one->IsAligned(AlignOrder(9)));
  EXPECT_EQ(b.Stats().free_superpages, 15u);
  // 1000 pages take two superpages; the 24-page tail is slack, counted free.
  auto two = Alloc(b, 1000);
  ASSERT_TRUE(two);
  EXPECT_TRUE(two->IsAligned(AlignOrder(9)));
  EXPECT_EQ(b.Stats().free_superpages, 13u);
  EXPECT_EQ(b.Stats().free_pages, PageCount(16 * kSp - kSp - 1000));
  // 300 pages (above the largest class) take one whole superpage.
  auto big = Alloc(b, 300);
  ASSERT_TRUE(big);
  EXPECT_EQ(b.Stats().free_superpages, 12u);
  // Alignment above a superpage: 4 MiB and 8 MiB aligned runs.
  auto a10 = Alloc(b, 2 * kSp, 10);
  ASSERT_TRUE(a10);
  EXPECT_TRUE(a10->IsAligned(AlignOrder(10)));
  auto a12 = Alloc(b, 1, 12);
  ASSERT_TRUE(a12);
  EXPECT_TRUE(a12->IsAligned(AlignOrder(12)));
  EXPECT_TRUE(b.CheckInvariants().ok()) << b.CheckInvariants();
  // Runs free by exact start and length only.
  EXPECT_FALSE(FreeRun(b, *two, 1024));
  EXPECT_FALSE(FreeRun(b, *two, 999));
  EXPECT_FALSE(FreeRun(b, *two + PageCount(kSp), 488));
  EXPECT_TRUE(FreeRun(b, *two, 1000));
  EXPECT_TRUE(FreeRun(b, *one, kSp));
  EXPECT_TRUE(FreeRun(b, *big, 300));
  EXPECT_TRUE(FreeRun(b, *a10, 2 * kSp));
  EXPECT_TRUE(FreeRun(b, *a12, 1));
  EXPECT_EQ(b.Stats(), SlabBackend(Range(0, 16 * kSp)).Stats());
  // The whole pool as one run, twice.
  for (int i = 0; i < 2; ++i) {
    auto all = Alloc(b, 16 * kSp, 13);
    ASSERT_TRUE(all);
    EXPECT_EQ(*all, FrameNumber(0));
    EXPECT_EQ(b.Stats().free_pages, PageCount(0));
    EXPECT_EQ(b.Stats().largest_free_run, PageCount(0));
    EXPECT_FALSE(Alloc(b, 1));
    EXPECT_TRUE(FreeRun(b, *all, 16 * kSp));
  }
}

TEST(SlabBackendTest, BestFitKeepsLongExtents) {
  SlabBackend b(Range(0, 16 * kSp));
  std::vector<FrameNumber> runs;
  for (int i = 0; i < 16; ++i) runs.push_back(*Alloc(b, kSp));
  // Holes: one superpage at 3, four at 8..11.
  ASSERT_TRUE(FreeRun(b, runs[3], kSp));
  for (int i = 8; i < 12; ++i) ASSERT_TRUE(FreeRun(b, runs[i], kSp));
  EXPECT_EQ(b.Stats().largest_free_run, PageCount(4 * kSp));
  // A slab refill takes the single hole, not the long extent.
  auto small = Alloc(b, 7);
  ASSERT_TRUE(small);
  EXPECT_EQ(small->value() / kSp, runs[3].value() / kSp);
  EXPECT_EQ(b.Stats().largest_free_run, PageCount(4 * kSp));
  auto four = Alloc(b, 4 * kSp);
  ASSERT_TRUE(four);
  EXPECT_EQ(*four, runs[8]);
}

TEST(SlabBackendTest, ExhaustionWithSmallRequests) {
  SlabBackend b(Range(0, 4 * kSp));
  uint64_t count = 0;
  while (Alloc(b, 1)) ++count;
  EXPECT_EQ(count, 4 * kSp);
  const BackendStats s = b.Stats();
  EXPECT_EQ(s.free_pages, PageCount(0));
  EXPECT_EQ(s.largest_free_run, PageCount(0));
  EXPECT_EQ(s.free_superpages, 0u);
  EXPECT_FALSE(Alloc(b, 1));
  EXPECT_FALSE(Alloc(b, kSp));
  EXPECT_TRUE(b.CheckInvariants().ok()) << b.CheckInvariants();
}

TEST(SlabBackendTest, ExhaustionBorrowsFromOtherClasses) {
  SlabBackend b(Range(0, 2 * kSp));
  // Superpage 0: a class-8 slab with one object. Superpage 1: a run.
  auto eight = Alloc(b, 8);
  ASSERT_TRUE(eight);
  EXPECT_EQ(*eight, FrameNumber(0));
  auto run = Alloc(b, kSp);
  ASSERT_TRUE(run);
  EXPECT_EQ(b.Stats().free_superpages, 0u);
  // 63 free class-8 objects in a row can serve up to 504 pages.
  EXPECT_EQ(b.Stats().largest_free_run, PageCount(63 * 8));
  // No class-3 slab and no free superpage: a class-8 object serves it.
  auto three = Alloc(b, 3);
  ASSERT_TRUE(three);
  EXPECT_EQ(*three, FrameNumber(8));
  EXPECT_FALSE(FreeRun(b, *three, 8)) << "the requested length is kept exactly";
  EXPECT_TRUE(FreeRun(b, *three, 3));
  // 100 pages: a run of 13 consecutive class-8 objects.
  auto hundred = Alloc(b, 100);
  ASSERT_TRUE(hundred);
  EXPECT_EQ(*hundred, FrameNumber(8));
  EXPECT_EQ(b.Stats().free_pages, PageCount(2 * kSp - 8 - kSp - 100));
  EXPECT_EQ(b.Stats().largest_free_run, PageCount(50 * 8));
  EXPECT_TRUE(b.CheckInvariants().ok()) << b.CheckInvariants();
  const BackendStats before = b.Stats();
  EXPECT_FALSE(FreeRun(b, *hundred, 104));
  EXPECT_FALSE(FreeRun(b, *hundred, 96));
  EXPECT_FALSE(FreeRun(b, *hundred, 8));
  EXPECT_FALSE(FreeRun(b, *hundred + PageCount(8), 92)) << "inside a borrowed run";
  EXPECT_FALSE(FreeRun(b, *hundred + PageCount(96), 4)) << "its last object";
  EXPECT_EQ(b.Stats(), before);
  EXPECT_TRUE(FreeRun(b, *hundred, 100));
  // Above the largest class and without a free superpage: borrowed as well.
  auto big = Alloc(b, 504);
  ASSERT_TRUE(big);
  EXPECT_EQ(*big, FrameNumber(8));
  EXPECT_FALSE(Alloc(b, 1));
  EXPECT_EQ(b.Stats().largest_free_run, PageCount(0));
  EXPECT_TRUE(FreeRun(b, *big, 504));
  EXPECT_FALSE(Alloc(b, 505));
  EXPECT_TRUE(b.CheckInvariants().ok()) << b.CheckInvariants();
  EXPECT_TRUE(FreeRun(b, *eight, 8));
  EXPECT_TRUE(FreeRun(b, *run, kSp));
  EXPECT_EQ(b.Stats(), SlabBackend(Range(0, 2 * kSp)).Stats());
}

TEST(SlabBackendTest, OddRanges) {
  const std::pair<uint64_t, uint64_t> ranges[] = {
      {0, 1},         {7, 1},          {100, 800},       {1, 1022},   {511, 2},
      {300, 2000},    {512, 513},      {1000, 5 * kSp},  {513, 1535}, {3 * kSp - 1, kSp + 2},
      {12345, 77777}, {kSp * 9, 1000}, {(1ull << 40) + 3, 4000},
  };
  for (auto [first, pages] : ranges) {
    SCOPED_TRACE(testing::Message() << "range " << first << "+" << pages);
    SlabBackend b(Range(first, pages));
    const BackendStats fresh = b.Stats();
    EXPECT_EQ(fresh.total_pages, PageCount(pages));
    EXPECT_EQ(fresh.free_pages, PageCount(pages));
    EXPECT_EQ(fresh.free_superpages, WholeSuperpages(first, pages));
    EXPECT_EQ(b.superpages(), WholeSuperpages(first, pages));
    EXPECT_EQ(b.edge_pages().value() + b.superpages() * kSp, pages);
    ASSERT_TRUE(b.CheckInvariants().ok()) << b.CheckInvariants();
    // largest_free_run is honest on a fresh backend.
    auto big = Alloc(b, fresh.largest_free_run.value());
    ASSERT_TRUE(big);
    ASSERT_TRUE(FreeRun(b, *big, fresh.largest_free_run.value()));
    EXPECT_FALSE(Alloc(b, fresh.largest_free_run.value() + 1));
    // Small requests use the edges before breaking a superpage.
    const uint64_t edge = b.edge_pages().value();
    std::vector<FrameNumber> pages_out;
    for (uint64_t i = 0; i < edge; ++i) {
      auto f = Alloc(b, 1);
      ASSERT_TRUE(f);
      pages_out.push_back(*f);
      ASSERT_EQ(b.Stats().free_superpages, fresh.free_superpages);
    }
    // Then every page is usable, one at a time.
    while (auto f = Alloc(b, 1)) {
      ASSERT_TRUE(Range(first, pages).Contains(*f));
      pages_out.push_back(*f);
    }
    EXPECT_EQ(pages_out.size(), pages);
    std::sort(pages_out.begin(), pages_out.end());
    EXPECT_TRUE(std::adjacent_find(pages_out.begin(), pages_out.end()) == pages_out.end());
    ASSERT_TRUE(b.CheckInvariants().ok()) << b.CheckInvariants();
    for (FrameNumber f : pages_out) ASSERT_TRUE(FreeRun(b, f, 1));
    EXPECT_EQ(b.Stats(), fresh);
    ASSERT_TRUE(b.CheckInvariants().ok()) << b.CheckInvariants();
  }
}

TEST(SlabBackendTest, EdgesServeAlignedAndOddRequests) {
  // [100, 900): no whole superpage; frame 512 is 2 MiB aligned.
  SlabBackend b(Range(100, 800));
  EXPECT_EQ(b.superpages(), 0u);
  EXPECT_EQ(b.Stats().largest_free_run, PageCount(800));
  auto a9 = Alloc(b, 10, 9);
  ASSERT_TRUE(a9);
  EXPECT_EQ(*a9, FrameNumber(512));
  EXPECT_FALSE(Alloc(b, 1, 10)) << "no 4 MiB aligned frame in [100, 900)";
  auto a6 = Alloc(b, 3, 6);
  ASSERT_TRUE(a6);
  EXPECT_EQ(*a6, FrameNumber(128));
  EXPECT_EQ(b.Stats().largest_free_run, PageCount(512 - 131));  // [131, 512)
  EXPECT_TRUE(FreeRun(b, *a9, 10));
  EXPECT_TRUE(FreeRun(b, *a6, 3));
  EXPECT_EQ(b.Stats(), SlabBackend(Range(100, 800)).Stats());
  // A range starting at frame 0 satisfies any alignment.
  SlabBackend zero(Range(0, 10));
  auto a40 = Alloc(zero, 1, 40);
  ASSERT_TRUE(a40);
  EXPECT_EQ(*a40, FrameNumber(0));
  EXPECT_FALSE(Alloc(zero, 1, 40));
  EXPECT_TRUE(FreeRun(zero, *a40, 1));
}

TEST(SlabBackendTest, InvalidFreesChangeNothing) {
  SlabBackend b(Range(300, 8 * kSp));  // head edge 212 frames, tail edge 300
  // A slab object, a superpage run and an edge run.
  std::vector<std::pair<FrameNumber, uint64_t>> live;
  for (int i = 0; i < 512; ++i) live.push_back({*Alloc(b, 1), 1});  // fill the edges
  ASSERT_EQ(b.Stats().free_superpages, 7u);
  auto obj = Alloc(b, 5);
  ASSERT_TRUE(obj);
  auto run = Alloc(b, 1500);
  ASSERT_TRUE(run);
  auto edge_run = live[10];
  ASSERT_TRUE(FreeRun(b, live[11].first, 1));  // make edge_run's neighbour free
  live.erase(live.begin() + 11);
  const BackendStats before = b.Stats();
  const std::vector<PageRun> bad = {
      {*obj, PageCount(4)},                  // shorter than requested
      {*obj, PageCount(6)},                  // longer than requested
      {*obj + PageCount(1), PageCount(4)},   // inside an object
      {*obj + PageCount(5), PageCount(5)},   // a never-allocated object
      {*run, PageCount(1499)},
      {*run, PageCount(1536)},
      {*run + PageCount(kSp), PageCount(988)},  // inside the run
      {*run + PageCount(1024), PageCount(1)},   // in the run's last superpage
      {edge_run.first, PageCount(2)},
      {edge_run.first + PageCount(1), PageCount(1)},  // the freed neighbour
      {FrameNumber(299), PageCount(1)},               // below the range
      {FrameNumber(300 + 8 * kSp), PageCount(1)},     // above the range
      {FrameNumber(300 + 8 * kSp - 1), PageCount(2)},  // crosses the end
      {*obj, PageCount(0)},
      {FrameNumber(300 + 212 + 6 * kSp), PageCount(kSp)},  // a free superpage
  };
  for (const PageRun& r : bad) {
    EXPECT_FALSE(b.Free(r)) << r;
    EXPECT_EQ(b.Stats(), before) << r;
    ASSERT_TRUE(b.CheckInvariants().ok()) << b.CheckInvariants();
  }
  ASSERT_TRUE(FreeRun(b, *obj, 5));
  EXPECT_FALSE(FreeRun(b, *obj, 5)) << "double free of a slab object";
  ASSERT_TRUE(FreeRun(b, *run, 1500));
  EXPECT_FALSE(FreeRun(b, *run, 1500)) << "double free of a run";
  ASSERT_TRUE(FreeRun(b, edge_run.first, 1));
  EXPECT_FALSE(FreeRun(b, edge_run.first, 1)) << "double free in an edge";
  live.erase(live.begin() + 10);
  const BackendStats after = b.Stats();
  EXPECT_FALSE(FreeRun(b, *obj, 5));
  EXPECT_EQ(b.Stats(), after);
  for (auto [f, n] : live) ASSERT_TRUE(FreeRun(b, f, n));
  EXPECT_EQ(b.Stats(), SlabBackend(Range(300, 8 * kSp)).Stats());
}

TEST(SlabBackendTest, BorrowingFindsRunsInAnySlab) {
  // An exhausted pool of single-page slabs (object i of slab s is frame
  // s * 512 + i). Slab 7 is the emptiest but holds only isolated free
  // pages; slabs 2 and 4 are nearly full but hold a run of 5 and of 7 free
  // pages. Borrowing must find those runs, the one that fits best first.
  constexpr uint64_t kSps = 8;
  SlabBackend b(Range(0, kSps * kSp));
  const BackendStats fresh = b.Stats();
  std::vector<bool> live(kSps * kSp, false);
  for (uint64_t i = 0; i < kSps * kSp; ++i) {
    auto f = Alloc(b, 1);
    ASSERT_TRUE(f);
    live[f->value()] = true;
  }
  ASSERT_EQ(b.slab_superpages(), kSps);
  auto give = [&](uint64_t first, uint64_t end, uint64_t step) {
    for (uint64_t f = first; f < end; f += step) {
      ASSERT_TRUE(FreeRun(b, FrameNumber(f), 1)) << f;
      live[f] = false;
    }
  };
  give(7 * kSp, 8 * kSp, 2);
  give(2 * kSp + 100, 2 * kSp + 105, 1);
  give(4 * kSp + 300, 4 * kSp + 307, 1);
  EXPECT_EQ(b.Stats().largest_free_run, PageCount(7));
  auto five = Alloc(b, 5);
  ASSERT_TRUE(five);
  EXPECT_EQ(*five, FrameNumber(2 * kSp + 100)) << "the run that fits best";
  EXPECT_EQ(b.Stats().largest_free_run, PageCount(7));
  auto four = Alloc(b, 4);
  ASSERT_TRUE(four);
  EXPECT_EQ(*four, FrameNumber(4 * kSp + 300));
  EXPECT_EQ(b.Stats().largest_free_run, PageCount(3));
  EXPECT_FALSE(Alloc(b, 4)) << "no run of 4 is left anywhere";
  auto three = Alloc(b, 3);
  ASSERT_TRUE(three);
  EXPECT_EQ(*three, FrameNumber(4 * kSp + 304));
  EXPECT_EQ(b.Stats().largest_free_run, PageCount(1));
  EXPECT_FALSE(Alloc(b, 2)) << "only isolated pages are left";
  EXPECT_FALSE(Alloc(b, 2, 1));
  auto one = Alloc(b, 1);
  ASSERT_TRUE(one);
  EXPECT_EQ(one->value() / kSp, 7u);
  ASSERT_TRUE(b.CheckInvariants().ok()) << b.CheckInvariants();
  ASSERT_TRUE(FreeRun(b, *five, 5));
  ASSERT_TRUE(FreeRun(b, *four, 4));
  ASSERT_TRUE(FreeRun(b, *three, 3));
  ASSERT_TRUE(FreeRun(b, *one, 1));
  for (uint64_t f = 0; f < kSps * kSp; ++f) {
    if (live[f]) {
      ASSERT_TRUE(FreeRun(b, FrameNumber(f), 1)) << f;
    }
  }
  EXPECT_EQ(b.Stats(), fresh);
  EXPECT_TRUE(b.CheckInvariants().ok()) << b.CheckInvariants();
}

TEST(SlabBackendTest, ParkedHotRunIsValidatedExactly) {
  // A run freed right after its allocation is parked, not put back: it
  // must still be reported free, refused a second time, and put back
  // exactly by the next unrelated call.
  SlabBackend b(Range(0, 4 * kSp));
  const BackendStats fresh = b.Stats();
  auto keep = Alloc(b, 3);  // a slab with another object: kHotObject below
  ASSERT_TRUE(keep);
  const BackendStats with_keep = b.Stats();
  struct Case {
    uint64_t pages;
    unsigned align;
    const BackendStats* before;
  };
  // A fresh slab (class 1), an object next to `keep` (class 3), one and
  // two superpages, an aligned object.
  for (const Case& c : {Case{1, 0, &with_keep}, Case{3, 0, &with_keep}, Case{kSp, 9, &with_keep},
                        Case{2 * kSp - 7, 0, &with_keep}, Case{16, 4, &with_keep}}) {
    SCOPED_TRACE(testing::Message() << c.pages << " pages at order " << c.align);
    auto f = Alloc(b, c.pages, c.align);
    ASSERT_TRUE(f);
    ASSERT_TRUE(FreeRun(b, *f, c.pages));
    EXPECT_EQ(b.Stats(), *c.before);
    ASSERT_TRUE(b.CheckInvariants().ok()) << b.CheckInvariants();
    EXPECT_FALSE(FreeRun(b, *f, c.pages)) << "double free of the parked run";
    EXPECT_FALSE(FreeRun(b, *f, c.pages + 1));
    EXPECT_EQ(b.Stats(), *c.before);
    EXPECT_EQ(b.slab_superpages(), 1u);
    // The same request gets the same run back.
    auto again = Alloc(b, c.pages, c.align);
    ASSERT_TRUE(again);
    EXPECT_EQ(*again, *f);
    EXPECT_FALSE(FreeRun(b, *f, c.pages - 1 == 0 ? 2 : c.pages - 1));
    ASSERT_TRUE(FreeRun(b, *f, c.pages));
    // An unrelated request puts it back first.
    auto other = Alloc(b, 2);
    ASSERT_TRUE(other);
    ASSERT_TRUE(b.CheckInvariants().ok()) << b.CheckInvariants();
    ASSERT_TRUE(FreeRun(b, *other, 2));
    EXPECT_FALSE(FreeRun(b, *f, c.pages)) << "freed and put back";
    EXPECT_EQ(b.Stats(), *c.before);
  }
  ASSERT_TRUE(FreeRun(b, *keep, 3));
  EXPECT_EQ(b.Stats(), fresh);
  EXPECT_TRUE(b.CheckInvariants().ok()) << b.CheckInvariants();
}

// Parking the hot run is invisible: backend `a` parks it; backend `b` puts
// it back after every call (an invalid Free, which is refused, does that).
// Both must give the same answers and the same Stats() at every step.
void RunHotDifferential(uint64_t seed, PageRun range, int ops) {
  SCOPED_TRACE(testing::Message() << "seed " << seed << " range " << range);
  std::mt19937_64 rng(seed);
  auto uniform = [&](uint64_t lo, uint64_t hi) {
    return std::uniform_int_distribution<uint64_t>(lo, hi)(rng);
  };
  SlabBackend a(range);
  SlabBackend b(range);
  const PageRun bogus{range.end(), PageCount(1)};  // outside the range
  std::vector<PageRun> live;
  uint64_t last_n = 1;
  unsigned last_k = 0;
  for (int op = 0; op < ops; ++op) {
    const uint64_t kind = uniform(0, 99);
    if (kind < 45 || live.empty()) {
      // Allocate; often the previous request again, often freed at once.
      uint64_t n = last_n;
      unsigned k = last_k;
      if (uniform(0, 2) != 0) {
        const uint64_t size = uniform(0, 99);
        n = size < 60   ? uniform(1, 8)
            : size < 85 ? uniform(1, 300)
                        : kSp * uniform(1, 3) - uniform(0, 1);
        k = uniform(0, 3) == 0 ? static_cast<unsigned>(uniform(0, 10)) : 0;
      }
      last_n = n;
      last_k = k;
      const auto fa = a.Allocate(PageCount(n), AlignOrder(k));
      const auto fb = b.Allocate(PageCount(n), AlignOrder(k));
      ASSERT_EQ(fa, fb) << "n=" << n << " k=" << k << " op " << op;
      if (fa) {
        if (uniform(0, 1) == 0) {
          ASSERT_TRUE(a.Free({*fa, PageCount(n)}));
          ASSERT_TRUE(b.Free({*fb, PageCount(n)}));
        } else {
          live.push_back({*fa, PageCount(n)});
        }
      }
    } else if (kind < 90) {
      const size_t i = uniform(0, live.size() - 1);
      const PageRun r = live[i];
      live[i] = live.back();
      live.pop_back();
      ASSERT_TRUE(a.Free(r)) << r << " op " << op;
      ASSERT_TRUE(b.Free(r)) << r << " op " << op;
      if (uniform(0, 3) == 0) {
        ASSERT_FALSE(a.Free(r)) << "double free, op " << op;
        ASSERT_FALSE(b.Free(r));
      }
    } else {
      // A wrong length for a live run, or the last freed run again.
      const PageRun r = live[uniform(0, live.size() - 1)];
      const PageRun wrong{r.first, r.pages + PageCount(1)};
      ASSERT_FALSE(a.Free(wrong));
      ASSERT_FALSE(b.Free(wrong));
    }
    ASSERT_FALSE(b.Free(bogus));
    ASSERT_EQ(a.Stats(), b.Stats()) << "op " << op;
    ASSERT_EQ(a.slab_superpages(), b.slab_superpages()) << "op " << op;
    if (op % 128 == 0) {
      ASSERT_TRUE(a.CheckInvariants().ok()) << a.CheckInvariants();
      ASSERT_TRUE(b.CheckInvariants().ok()) << b.CheckInvariants();
    }
  }
  for (const PageRun& r : live) {
    ASSERT_TRUE(a.Free(r));
    ASSERT_TRUE(b.Free(r));
  }
  EXPECT_EQ(a.Stats(), SlabBackend(range).Stats());
  EXPECT_EQ(b.Stats(), a.Stats());
  EXPECT_TRUE(a.CheckInvariants().ok()) << a.CheckInvariants();
}

TEST(SlabBackendTest, ParkedHotRunIsInvisible) {
  for (uint64_t seed = 1; seed <= 3; ++seed) {
    RunHotDifferential(seed, Range(0, 48 * kSp), 6000);
    RunHotDifferential(100 + seed, Range(300, 10 * kSp + 77), 6000);  // edges, exhaustion
    RunHotDifferential(200 + seed, Range(0, 4 * kSp), 4000);  // mostly borrowing
  }
}

// A randomized sequence against a shadow model of every frame.
class Shadow {
 public:
  explicit Shadow(PageRun range)
      : range_(range),
        used_(range.pages.value(), false),
        sp_first_((range.first.value() + kSp - 1) / kSp),
        sp_used_(WholeSuperpages(range.first.value(), range.pages.value()), 0) {}
  // Marks a run used; false if it leaves the range or overlaps a live run.
  bool Take(FrameNumber f, uint64_t n) {
    if (f < range_.first || f >= range_.end() || n > (range_.end() - f).value()) return false;
    const uint64_t off = (f - range_.first).value();
    for (uint64_t i = off; i < off + n; ++i) {
      if (used_[i]) return false;
    }
    for (uint64_t i = off; i < off + n; ++i) used_[i] = true;
    Count(f, n, +1);
    free_ -= n;
    return true;
  }
  void Give(FrameNumber f, uint64_t n) {
    const uint64_t off = (f - range_.first).value();
    for (uint64_t i = off; i < off + n; ++i) used_[i] = false;
    Count(f, n, -1);
    free_ += n;
  }
  uint64_t free() const { return free_; }
  // Whole superpages with no used frame.
  uint64_t FreeSuperpages() const {
    return static_cast<uint64_t>(std::count(sp_used_.begin(), sp_used_.end(), 0));
  }
  // Whether `count` consecutive entirely free whole superpages start at a
  // 2^align-aligned frame.
  bool HasFreeSuperpageRun(uint64_t count, unsigned align) const {
    const uint64_t step = align > 9 ? uint64_t{1} << (align - 9) : 1;
    for (uint64_t i = 0; i + count <= sp_used_.size(); ++i) {
      if ((sp_first_ + i) % step != 0) continue;
      bool all = true;
      for (uint64_t j = i; j < i + count && all; ++j) all = sp_used_[j] == 0;
      if (all) return true;
    }
    return false;
  }

 private:
  void Count(FrameNumber f, uint64_t n, int delta) {
    for (uint64_t frame = f.value(); frame < f.value() + n; ++frame) {
      const uint64_t sp = frame / kSp;
      if (sp >= sp_first_ && sp - sp_first_ < sp_used_.size()) sp_used_[sp - sp_first_] += delta;
    }
  }

  PageRun range_;
  std::vector<bool> used_;
  uint64_t sp_first_;
  std::vector<int> sp_used_;
  uint64_t free_ = range_.pages.value();
};

void RunRandomized(uint64_t seed, PageRun range, int ops) {
  SCOPED_TRACE(testing::Message() << "seed " << seed << " range " << range);
  std::mt19937_64 rng(seed);
  SlabBackend b(range);
  const BackendStats fresh = b.Stats();
  Shadow shadow(range);
  std::vector<std::pair<FrameNumber, uint64_t>> live;
  auto uniform = [&](uint64_t lo, uint64_t hi) {
    return std::uniform_int_distribution<uint64_t>(lo, hi)(rng);
  };
  for (int op = 0; op < ops; ++op) {
    // Grow until ~85 % used, then shrink, in waves.
    const uint64_t grow_percent = (op / 500) % 2 == 0 ? 70 : 30;
    const bool grow = live.empty() || uniform(0, 99) < grow_percent;
    if (grow) {
      uint64_t n;
      const uint64_t kind = uniform(0, 99);
      if (kind < 60) {
        n = uniform(1, 64);
      } else if (kind < 90) {
        n = uniform(1, 600);
      } else {
        n = kSp * uniform(1, 4);
      }
      unsigned k = 0;
      if (uniform(0, 3) == 0) k = static_cast<unsigned>(uniform(0, 10));
      auto f = b.Allocate(PageCount(n), AlignOrder(k));
      if (f) {
        ASSERT_TRUE(f->IsAligned(AlignOrder(k))) << *f << " n=" << n << " k=" << k;
        ASSERT_TRUE(shadow.Take(*f, n)) << "overlap or out of range: " << *f << " +" << n
                                        << " op " << op;
        live.push_back({*f, n});
      } else if (n > SlabBackend::kMaxClassPages || k > SlabBackend::kMaxSlabAlignOrder) {
        // Superpage runs are found exactly: no fitting aligned run exists.
        ASSERT_FALSE(shadow.HasFreeSuperpageRun((n + kSp - 1) / kSp, k))
            << "run of " << n << " at order " << k << " refused, op " << op;
      } else {
        ASSERT_EQ(b.Stats().free_superpages, 0u) << "slab request refused, op " << op;
      }
    } else {
      const size_t i = uniform(0, live.size() - 1);
      auto [f, n] = live[i];
      if (uniform(0, 9) == 0) {
        // Wrong lengths are rejected without changing anything.
        const BackendStats before = b.Stats();
        ASSERT_FALSE(b.Free({f, PageCount(n + 1)}));
        if (n > 1) {
          ASSERT_FALSE(b.Free({f, PageCount(n - 1)}));
        }
        ASSERT_EQ(b.Stats(), before);
      }
      ASSERT_TRUE(b.Free({f, PageCount(n)})) << f << " +" << n << " op " << op;
      shadow.Give(f, n);
      live[i] = live.back();
      live.pop_back();
      if (uniform(0, 9) == 0) {
        const BackendStats before = b.Stats();
        ASSERT_FALSE(b.Free({f, PageCount(n)})) << "double free accepted, op " << op;
        ASSERT_EQ(b.Stats(), before);
      }
    }
    const BackendStats s = b.Stats();
    ASSERT_EQ(s.free_pages.value(), shadow.free()) << "op " << op;
    ASSERT_LE(s.largest_free_run, s.free_pages);
    ASSERT_EQ(s.free_superpages, shadow.FreeSuperpages()) << "op " << op;
    if (op % 16 == 0 && s.largest_free_run.value() > 0) {
      // largest_free_run is exact: N succeeds, N + 1 does not.
      const uint64_t n = s.largest_free_run.value();
      auto f = b.Allocate(PageCount(n), AlignOrder(0));
      ASSERT_TRUE(f) << "largest_free_run " << n << " not allocatable, op " << op;
      ASSERT_TRUE(shadow.Take(*f, n));
      ASSERT_TRUE(b.Free({*f, PageCount(n)}));
      shadow.Give(*f, n);
      auto g = b.Allocate(PageCount(n + 1), AlignOrder(0));
      ASSERT_FALSE(g) << "largest_free_run " << n << " but " << n + 1 << " succeeded, op " << op;
      ASSERT_EQ(b.Stats(), s) << "op " << op;
    }
    if (op % 256 == 0) {
      ASSERT_TRUE(b.CheckInvariants().ok()) << b.CheckInvariants();
    }
  }
  ASSERT_TRUE(b.CheckInvariants().ok()) << b.CheckInvariants();
  std::shuffle(live.begin(), live.end(), rng);
  for (auto [f, n] : live) ASSERT_TRUE(b.Free({f, PageCount(n)}));
  EXPECT_EQ(b.Stats(), fresh);
  EXPECT_TRUE(b.CheckInvariants().ok()) << b.CheckInvariants();
}

TEST(SlabBackendTest, RandomizedAgainstShadow) {
  for (uint64_t seed = 1; seed <= 4; ++seed) {
    RunRandomized(seed, Range(0, 64 * kSp), 8000);
    RunRandomized(100 + seed, Range(300, 40 * kSp + 77), 8000);
    RunRandomized(200 + seed, Range(0x40000 + 5, 16 * kSp), 8000);
    RunRandomized(300 + seed, Range(100, 900), 4000);  // edges only
    RunRandomized(400 + seed, Range(kSp * 1001, 3 * kSp + 511), 6000);
    RunRandomized(500 + seed, Range(kSp * 8 - 1, 5 * kSp + 2), 6000);
    RunRandomized(600 + seed, Range(0, 4 * kSp), 6000);  // mostly exhausted: borrowing
  }
}

TEST(SlabBackendTest, LargePoolConstructsQuickly) {
  const auto start = std::chrono::steady_clock::now();
  SlabBackend b(Range(0x100000, uint64_t{1} << 24));  // 64 GiB
  const auto elapsed = std::chrono::steady_clock::now() - start;
  EXPECT_LT(std::chrono::duration_cast<std::chrono::milliseconds>(elapsed).count(), 500);
  const BackendStats s = b.Stats();
  EXPECT_EQ(s.free_superpages, 32768u);
  EXPECT_EQ(s.largest_free_run, PageCount(uint64_t{1} << 24));
  // Modest metadata: about 0.011 % of the pool (220 bytes per superpage).
  EXPECT_LT(s.metadata_bytes, 8u << 20);
  auto f = Alloc(b, 3);
  ASSERT_TRUE(f);
  auto g = Alloc(b, uint64_t{1} << 23, 20);
  ASSERT_TRUE(g);
  EXPECT_TRUE(g->IsAligned(AlignOrder(20)));
  ASSERT_TRUE(FreeRun(b, *f, 3));
  ASSERT_TRUE(FreeRun(b, *g, uint64_t{1} << 23));
  EXPECT_EQ(b.Stats(), s);
}

}  // namespace
}  // namespace l4re_ma
