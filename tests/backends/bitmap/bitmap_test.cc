// Tests for BitmapBackend: summary consistency, first-fit placement and
// alignment against a brute-force shadow model, exact Free validation, exact
// statistics (with parked hot runs and a lazy block tree), runs at the edges
// of the range, and construction of large pools.
#include "backends/bitmap/bitmap_backend.h"

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <iostream>
#include <optional>
#include <random>
#include <vector>

#include "absl/status/status.h"
#include "core/backend_registry.h"
#include "core/types.h"
#include "gtest/gtest.h"

namespace l4re_ma {
namespace {

constexpr uint64_t kSuper = uint64_t{1} << kSuperPageOrder;

// A plain reference model: one bool per frame, every query by brute force.
class Shadow {
 public:
  Shadow(uint64_t first, uint64_t pages) : first_(first), used_(pages, false) {}

  uint64_t size() const { return used_.size(); }
  bool used(uint64_t frame) const { return used_[frame - first_]; }

  // The lowest frame f, f % 2^order == 0, with [f, f + pages) free.
  std::optional<uint64_t> FirstFit(uint64_t pages, unsigned order) const {
    const uint64_t n = used_.size();
    uint64_t i = 0;
    while (i < n) {
      if (used_[i]) {
        ++i;
        continue;
      }
      uint64_t j = i;
      while (j < n && !used_[j]) ++j;
      // Free run [i, j).
      const uint64_t f = first_ + i;
      uint64_t a;
      if (order >= 64) {
        a = f == 0 ? 0 : ~uint64_t{0};
      } else {
        const uint64_t mask = (uint64_t{1} << order) - 1;
        a = f > ~uint64_t{0} - mask ? ~uint64_t{0} : (f + mask) & ~mask;
      }
      if (a != ~uint64_t{0} && a - first_ + pages <= j && a >= f) return a;
      i = j;
    }
    return std::nullopt;
  }

  bool AllFree(uint64_t frame, uint64_t pages) const {
    for (uint64_t f = frame; f < frame + pages; ++f) {
      if (used(f)) return false;
    }
    return true;
  }

  void Mark(uint64_t frame, uint64_t pages, bool value) {
    for (uint64_t f = frame; f < frame + pages; ++f) used_[f - first_] = value;
  }

  uint64_t FreePages() const { return std::count(used_.begin(), used_.end(), false); }

  uint64_t LargestRun() const {
    uint64_t best = 0, cur = 0;
    for (bool u : used_) {
      cur = u ? 0 : cur + 1;
      best = std::max(best, cur);
    }
    return best;
  }

  uint64_t FreeRuns() const {
    uint64_t runs = 0;
    for (uint64_t i = 0; i < used_.size(); ++i) {
      if (!used_[i] && (i == 0 || used_[i - 1])) ++runs;
    }
    return runs;
  }

  uint64_t FreeSuperpages() const {
    uint64_t count = 0;
    const uint64_t end = first_ + used_.size();
    for (uint64_t s = (first_ + kSuper - 1) / kSuper * kSuper; s + kSuper <= end; s += kSuper) {
      if (AllFree(s, kSuper)) ++count;
    }
    return count;
  }

 private:
  uint64_t first_;
  std::vector<bool> used_;
};

BitmapBackend Make(uint64_t first, uint64_t pages) {
  return BitmapBackend(PageRun{FrameNumber(first), PageCount(pages)});
}

// Compares every exact statistic with the shadow and checks invariants.
void ExpectMatches(const BitmapBackend& b, const Shadow& shadow) {
  const BackendStats s = b.Stats();
  EXPECT_EQ(s.total_pages.value(), shadow.size());
  EXPECT_EQ(s.free_pages.value(), shadow.FreePages());
  EXPECT_EQ(s.largest_free_run.value(), shadow.LargestRun());
  EXPECT_EQ(s.free_runs, shadow.FreeRuns());
  EXPECT_EQ(s.free_superpages, shadow.FreeSuperpages());
  const absl::Status st = b.CheckInvariants();
  EXPECT_TRUE(st.ok()) << st;
}

struct Live {
  uint64_t first;
  uint64_t pages;
};

// Frees live[k] in the backend and the shadow; the last live run moves into
// its slot.
void FreeLive(BitmapBackend& b, Shadow& shadow, std::vector<Live>& live, size_t k) {
  ASSERT_TRUE(b.Free({FrameNumber(live[k].first), PageCount(live[k].pages)}));
  shadow.Mark(live[k].first, live[k].pages, false);
  live[k] = live.back();
  live.pop_back();
}

// Every statistic the shadow can compute, compared exactly.
::testing::AssertionResult StatsMatch(const BackendStats& s, const Shadow& shadow) {
  if (s.free_pages.value() == shadow.FreePages() &&
      s.largest_free_run.value() == shadow.LargestRun() && s.free_runs == shadow.FreeRuns() &&
      s.free_superpages == shadow.FreeSuperpages()) {
    return ::testing::AssertionSuccess();
  }
  return ::testing::AssertionFailure()
         << "stats " << s << " but the shadow has free=" << shadow.FreePages()
         << " largest=" << shadow.LargestRun() << " runs=" << shadow.FreeRuns()
         << " free_superpages=" << shadow.FreeSuperpages();
}

TEST(BitmapBackendTest, NameAndRange) {
  BitmapBackend b = Make(100, 1000);
  EXPECT_EQ(b.name(), "bitmap");
  EXPECT_EQ(b.range(), (PageRun{FrameNumber(100), PageCount(1000)}));
}

TEST(BitmapBackendTest, RegisteredAsBitmap) {
  ASSERT_TRUE(BackendRegistry::Global().Contains("bitmap"));
  auto backend = BackendRegistry::Global().Create(
      "bitmap", BackendOptions{PageRun{FrameNumber(7), PageCount(999)}});
  ASSERT_TRUE(backend.ok()) << backend.status();
  EXPECT_EQ((*backend)->name(), "bitmap");
  std::optional<FrameNumber> f = (*backend)->Allocate(PageCount(10), AlignOrder(3));
  ASSERT_TRUE(f.has_value());
  EXPECT_EQ(f->value(), 8u);
  EXPECT_TRUE((*backend)->Free({*f, PageCount(10)}));
}

TEST(BitmapBackendTest, FreshStatsForManyRanges) {
  for (uint64_t first : {0ull, 1ull, 63ull, 64ull, 511ull, 512ull, 513ull, 12345ull, 1ull << 40}) {
    for (uint64_t pages : {1ull, 2ull, 63ull, 64ull, 65ull, 511ull, 512ull, 513ull, 1000ull,
                           4097ull, 70000ull}) {
      SCOPED_TRACE(testing::Message() << "first=" << first << " pages=" << pages);
      BitmapBackend b = Make(first, pages);
      Shadow shadow(first, pages);
      ExpectMatches(b, shadow);
      EXPECT_EQ(b.Stats().free_runs, 1u);
      EXPECT_EQ(b.Stats().largest_free_run.value(), pages);
      EXPECT_GT(b.Stats().metadata_bytes, 0u);
    }
  }
}

TEST(BitmapBackendTest, FirstFitIsLowestAddress) {
  BitmapBackend b = Make(1000, 5000);
  std::optional<FrameNumber> a = b.Allocate(PageCount(10), AlignOrder(0));
  std::optional<FrameNumber> c = b.Allocate(PageCount(20), AlignOrder(0));
  std::optional<FrameNumber> d = b.Allocate(PageCount(5), AlignOrder(0));
  ASSERT_TRUE(a && c && d);
  EXPECT_EQ(a->value(), 1000u);
  EXPECT_EQ(c->value(), 1010u);
  EXPECT_EQ(d->value(), 1030u);
  ASSERT_TRUE(b.Free({*c, PageCount(20)}));
  // A smaller request reuses the lowest hole; a larger one goes past it.
  EXPECT_EQ(b.Allocate(PageCount(21), AlignOrder(0))->value(), 1035u);
  EXPECT_EQ(b.Allocate(PageCount(7), AlignOrder(0))->value(), 1010u);
  EXPECT_EQ(b.Allocate(PageCount(13), AlignOrder(0))->value(), 1017u);
  EXPECT_TRUE(b.CheckInvariants().ok());
}

TEST(BitmapBackendTest, AlignmentOfEveryRunForManyOrders) {
  // An odd base so that absolute and relative alignment differ.
  const uint64_t first = 12345;
  const uint64_t pages = 1 << 20;
  BitmapBackend b = Make(first, pages);
  Shadow shadow(first, pages);
  std::mt19937_64 rng(7);
  std::vector<Live> live;
  for (int round = 0; round < 3; ++round) {
    for (unsigned order = 0; order <= 20; ++order) {
      for (uint64_t size : {1ull, 3ull, 64ull, 100ull, 513ull}) {
        const std::optional<uint64_t> expect = shadow.FirstFit(size, order);
        const std::optional<FrameNumber> got = b.Allocate(PageCount(size), AlignOrder(order));
        ASSERT_EQ(got.has_value(), expect.has_value()) << "order " << order << " size " << size;
        if (!got) continue;
        EXPECT_EQ(got->value(), *expect) << "order " << order << " size " << size;
        EXPECT_TRUE(got->IsAligned(AlignOrder(order)));
        shadow.Mark(got->value(), size, true);
        live.push_back({got->value(), size});
      }
    }
    // Free a random half to create holes for the next round.
    std::shuffle(live.begin(), live.end(), rng);
    for (size_t i = 0; i < live.size() / 2; ++i) {
      ASSERT_TRUE(b.Free({FrameNumber(live[i].first), PageCount(live[i].pages)}));
      shadow.Mark(live[i].first, live[i].pages, false);
    }
    live.erase(live.begin(), live.begin() + live.size() / 2);
    ExpectMatches(b, shadow);
  }
}

TEST(BitmapBackendTest, HugeAlignmentOrders) {
  // Only frame 2^40 (and multiples) qualify for order 40.
  BitmapBackend b = Make((uint64_t{1} << 40) - 1000, 5000);
  std::optional<FrameNumber> f = b.Allocate(PageCount(10), AlignOrder(40));
  ASSERT_TRUE(f.has_value());
  EXPECT_EQ(f->value(), uint64_t{1} << 40);
  EXPECT_FALSE(b.Allocate(PageCount(1), AlignOrder(40)).has_value());
  EXPECT_FALSE(b.Allocate(PageCount(1), AlignOrder(41)).has_value());
  EXPECT_FALSE(b.Allocate(PageCount(1), AlignOrder(63)).has_value());
  EXPECT_TRUE(b.Free({*f, PageCount(10)}));

  // Frame 0 satisfies every order.
  BitmapBackend z = Make(0, 100);
  std::optional<FrameNumber> g = z.Allocate(PageCount(3), AlignOrder(63));
  ASSERT_TRUE(g.has_value());
  EXPECT_EQ(g->value(), 0u);
  EXPECT_FALSE(z.Allocate(PageCount(1), AlignOrder(63)).has_value());
  EXPECT_EQ(z.Allocate(PageCount(1), AlignOrder(6))->value(), 64u);
  EXPECT_TRUE(z.CheckInvariants().ok());

  // An aligned frame exists but the run does not fit behind it.
  BitmapBackend t = Make(1000, 100);  // frames 1000..1099; 1024 is aligned to 2^10
  EXPECT_FALSE(t.Allocate(PageCount(80), AlignOrder(10)).has_value());
  EXPECT_EQ(t.Allocate(PageCount(76), AlignOrder(10))->value(), 1024u);
}

TEST(BitmapBackendTest, RunsCrossingWordAndBlockBoundaries) {
  const uint64_t first = 0;
  const uint64_t pages = 8 * BitmapBackend::kBlockBits;
  // For every boundary kind (word: 64, block: 512, several blocks), carve a
  // hole that straddles it and make sure exactly that hole is found.
  for (uint64_t boundary : {64ull, 128ull, 512ull, 1024ull, 1536ull}) {
    for (uint64_t before : {1ull, 5ull, 63ull, 64ull, 65ull, 511ull}) {
      for (uint64_t after : {1ull, 7ull, 64ull, 200ull, 600ull}) {
        if (before > boundary) continue;
        SCOPED_TRACE(testing::Message()
                     << "boundary " << boundary << " before " << before << " after " << after);
        BitmapBackend b = Make(first, pages);
        Shadow shadow(first, pages);
        // Fill everything with single pages, then free the straddling hole.
        for (uint64_t i = 0; i < pages; ++i) {
          ASSERT_EQ(b.Allocate(PageCount(1), AlignOrder(0))->value(), i);
        }
        shadow.Mark(0, pages, true);
        for (uint64_t f = boundary - before; f < boundary + after; ++f) {
          ASSERT_TRUE(b.Free({FrameNumber(f), PageCount(1)}));
        }
        shadow.Mark(boundary - before, before + after, false);
        ExpectMatches(b, shadow);
        // One page too long fails; the exact size lands on the hole.
        EXPECT_FALSE(b.Allocate(PageCount(before + after + 1), AlignOrder(0)).has_value());
        std::optional<FrameNumber> f = b.Allocate(PageCount(before + after), AlignOrder(0));
        ASSERT_TRUE(f.has_value());
        EXPECT_EQ(f->value(), boundary - before);
        shadow.Mark(f->value(), before + after, true);
        ExpectMatches(b, shadow);
        EXPECT_TRUE(b.Free({*f, PageCount(before + after)}));
        shadow.Mark(f->value(), before + after, false);
        ExpectMatches(b, shadow);
      }
    }
  }
}

TEST(BitmapBackendTest, LongRunsAcrossManyBlocks) {
  BitmapBackend b = Make(333, 100000);
  Shadow shadow(333, 100000);
  std::vector<Live> live;
  for (uint64_t size : {5000ull, 1ull, 20000ull, 3ull, 511ull, 513ull, 30000ull}) {
    std::optional<FrameNumber> f = b.Allocate(PageCount(size), AlignOrder(0));
    ASSERT_TRUE(f.has_value());
    EXPECT_EQ(f->value(), *shadow.FirstFit(size, 0));
    shadow.Mark(f->value(), size, true);
    live.push_back({f->value(), size});
    ExpectMatches(b, shadow);
  }
  ASSERT_TRUE(b.Free({FrameNumber(live[2].first), PageCount(live[2].pages)}));
  shadow.Mark(live[2].first, live[2].pages, false);
  ExpectMatches(b, shadow);
  std::optional<FrameNumber> f = b.Allocate(PageCount(19999), AlignOrder(9));
  ASSERT_TRUE(f.has_value());
  EXPECT_EQ(f->value(), *shadow.FirstFit(19999, 9));
  shadow.Mark(f->value(), 19999, true);
  ExpectMatches(b, shadow);
}

TEST(BitmapBackendTest, LongestFreeRunMatchesBruteForce) {
  std::mt19937_64 rng(99);
  BitmapBackend b = Make(77, 30000);
  Shadow shadow(77, 30000);
  std::vector<Live> live;
  for (int i = 0; i < 3000; ++i) {
    if (live.empty() || rng() % 3 != 0) {
      const uint64_t size = 1 + rng() % (rng() % 4 == 0 ? 700 : 40);
      std::optional<FrameNumber> f = b.Allocate(PageCount(size), AlignOrder(0));
      ASSERT_EQ(f.has_value(), shadow.FirstFit(size, 0).has_value());
      if (!f) continue;
      shadow.Mark(f->value(), size, true);
      live.push_back({f->value(), size});
    } else {
      ASSERT_NO_FATAL_FAILURE(FreeLive(b, shadow, live, rng() % live.size()));
    }
    ASSERT_EQ(b.Stats().largest_free_run.value(), shadow.LargestRun()) << "op " << i;
  }
}

TEST(BitmapBackendTest, ExhaustionAndRecovery) {
  for (uint64_t first : {0ull, 5ull, 1000ull}) {
    for (uint64_t pages : {1ull, 100ull, 1537ull}) {
      BitmapBackend b = Make(first, pages);
      const BackendStats fresh = b.Stats();
      std::vector<FrameNumber> got;
      while (std::optional<FrameNumber> f = b.Allocate(PageCount(1), AlignOrder(0))) {
        got.push_back(*f);
        ASSERT_LE(got.size(), pages);
      }
      EXPECT_EQ(got.size(), pages);
      const BackendStats full = b.Stats();
      EXPECT_EQ(full.free_pages.value(), 0u);
      EXPECT_EQ(full.largest_free_run.value(), 0u);
      EXPECT_EQ(full.free_runs, 0u);
      EXPECT_EQ(full.free_superpages, 0u);
      EXPECT_FALSE(b.Allocate(PageCount(1), AlignOrder(0)).has_value());
      EXPECT_FALSE(b.Allocate(PageCount(2), AlignOrder(5)).has_value());
      EXPECT_FALSE(b.Allocate(PageCount(pages + 1), AlignOrder(0)).has_value());
      EXPECT_EQ(b.Stats(), full);
      for (FrameNumber f : got) ASSERT_TRUE(b.Free({f, PageCount(1)}));
      EXPECT_EQ(b.Stats(), fresh);
      // The whole range in one run, and nothing more.
      EXPECT_EQ(b.Allocate(PageCount(pages), AlignOrder(0))->value(), first);
      EXPECT_FALSE(b.Allocate(PageCount(1), AlignOrder(0)).has_value());
      EXPECT_TRUE(b.Free({FrameNumber(first), PageCount(pages)}));
      EXPECT_EQ(b.Stats(), fresh);
      EXPECT_TRUE(b.CheckInvariants().ok());
    }
  }
}

TEST(BitmapBackendTest, OddSizedAndOddBasedRanges) {
  std::mt19937_64 rng(5);
  for (uint64_t first : {1ull, 63ull, 511ull, 513ull, 4097ull, 999999ull}) {
    for (uint64_t pages : {1ull, 2ull, 63ull, 65ull, 511ull, 513ull, 1023ull, 3001ull}) {
      SCOPED_TRACE(testing::Message() << "first=" << first << " pages=" << pages);
      BitmapBackend b = Make(first, pages);
      Shadow shadow(first, pages);
      const BackendStats fresh = b.Stats();
      std::vector<Live> live;
      // Fill to exhaustion with mixed sizes and alignments.
      for (int i = 0; i < 400; ++i) {
        const uint64_t size = 1 + rng() % 70;
        const unsigned order = rng() % 7;
        const std::optional<uint64_t> expect = shadow.FirstFit(size, order);
        const std::optional<FrameNumber> f = b.Allocate(PageCount(size), AlignOrder(order));
        ASSERT_EQ(f.has_value(), expect.has_value());
        if (!f) continue;
        ASSERT_EQ(f->value(), *expect);
        ASSERT_GE(f->value(), first);
        ASSERT_LE(f->value() + size, first + pages);
        shadow.Mark(f->value(), size, true);
        live.push_back({f->value(), size});
      }
      ExpectMatches(b, shadow);
      std::shuffle(live.begin(), live.end(), rng);
      for (const Live& l : live) ASSERT_TRUE(b.Free({FrameNumber(l.first), PageCount(l.pages)}));
      EXPECT_EQ(b.Stats(), fresh);
    }
  }
}

TEST(BitmapBackendTest, InvalidFreesAreRejectedWithoutChange) {
  BitmapBackend b = Make(1000, 4000);
  const std::optional<FrameNumber> a = b.Allocate(PageCount(10), AlignOrder(0));    // 1000..1009
  const std::optional<FrameNumber> c = b.Allocate(PageCount(20), AlignOrder(0));    // 1010..1029
  const std::optional<FrameNumber> d = b.Allocate(PageCount(600), AlignOrder(0));   // 1030..1629
  const std::optional<FrameNumber> e = b.Allocate(PageCount(1), AlignOrder(0));     // 1630
  ASSERT_TRUE(a && c && d && e);
  ASSERT_EQ(d->value(), 1030u);
  const BackendStats before = b.Stats();

  const std::vector<PageRun> bad = {
      {FrameNumber(1000), PageCount(9)},      // prefix of a run
      {FrameNumber(1001), PageCount(9)},      // suffix of a run
      {FrameNumber(1001), PageCount(5)},      // middle of a run
      {FrameNumber(1000), PageCount(11)},     // a run plus a page of the next
      {FrameNumber(1000), PageCount(30)},     // two adjacent runs merged
      {FrameNumber(1010), PageCount(621)},    // three runs merged
      {FrameNumber(1030), PageCount(599)},    // long run minus its last page
      {FrameNumber(1030), PageCount(601)},    // long run plus the next run
      {FrameNumber(1631), PageCount(1)},      // never allocated
      {FrameNumber(1630), PageCount(2)},      // a run plus a free page
      {FrameNumber(3000), PageCount(5)},      // never allocated, far away
      {FrameNumber(999), PageCount(11)},      // starts before the range
      {FrameNumber(4999), PageCount(2)},      // ends after the range
      {FrameNumber(5000), PageCount(1)},      // after the range
      {FrameNumber(0), PageCount(1)},         // before the range
      {FrameNumber(1000), PageCount(0)},      // empty
      {FrameNumber(~uint64_t{0} - 1), PageCount(5)},  // wraps around
      {FrameNumber(1000), PageCount(~uint64_t{0})},   // absurd length
  };
  for (const PageRun& r : bad) {
    EXPECT_FALSE(b.Free(r)) << r;
    EXPECT_EQ(b.Stats(), before) << r;
    EXPECT_TRUE(b.CheckInvariants().ok()) << r;
  }
  // Each real run frees exactly once.
  EXPECT_TRUE(b.Free({*c, PageCount(20)}));
  EXPECT_FALSE(b.Free({*c, PageCount(20)}));  // double free
  EXPECT_FALSE(b.Free({*a, PageCount(30)}));  // the freed neighbour does not merge in
  const BackendStats mid = b.Stats();
  EXPECT_FALSE(b.Free({*c, PageCount(20)}));
  EXPECT_EQ(b.Stats(), mid);
  EXPECT_TRUE(b.Free({*a, PageCount(10)}));
  EXPECT_TRUE(b.Free({*d, PageCount(600)}));
  EXPECT_TRUE(b.Free({*e, PageCount(1)}));
  EXPECT_FALSE(b.Free({*e, PageCount(1)}));
  EXPECT_EQ(b.Stats(), Make(1000, 4000).Stats());

  // A run reaching the end of the range frees; one page less does not.
  BitmapBackend t = Make(10, 100);
  ASSERT_EQ(t.Allocate(PageCount(100), AlignOrder(0))->value(), 10u);
  EXPECT_FALSE(t.Free({FrameNumber(10), PageCount(99)}));
  EXPECT_FALSE(t.Free({FrameNumber(11), PageCount(99)}));
  EXPECT_TRUE(t.Free({FrameNumber(10), PageCount(100)}));
}

// Regression: a one-page aligned request used per-word summaries of the
// deferred ("pending") block that a free in that block had left stale.
TEST(BitmapBackendTest, AlignedOnePageSeesFreesInTheDeferredBlock) {
  BitmapBackend b = Make(0, 1024);
  for (uint64_t i = 0; i < 64; ++i) ASSERT_EQ(b.Allocate(PageCount(1), AlignOrder(0))->value(), i);
  (void)b.Stats();  // brings every summary up to date
  ASSERT_EQ(b.Allocate(PageCount(1), AlignOrder(0))->value(), 64u);  // block 0 deferred again
  ASSERT_TRUE(b.Free({FrameNumber(4), PageCount(1)}));                 // a free inside it
  std::optional<FrameNumber> f = b.Allocate(PageCount(1), AlignOrder(2));
  ASSERT_TRUE(f.has_value());
  EXPECT_EQ(f->value(), 4u);
  EXPECT_TRUE(b.CheckInvariants().ok());
}

// An allocation and a free in the same block (a parked hot run, a lazy block
// tree) leave the statistics exact at every point, whether or not Stats()
// ran in between.
TEST(BitmapBackendTest, DeferredBlockKeepsStatsExact) {
  BitmapBackend b = Make(100, 5000);
  Shadow shadow(100, 5000);
  const BackendStats fresh = b.Stats();
  for (uint64_t size : {1ull, 2ull, 7ull, 64ull, 300ull}) {
    std::optional<FrameNumber> f = b.Allocate(PageCount(size), AlignOrder(0));
    ASSERT_TRUE(f.has_value());
    shadow.Mark(f->value(), size, true);
    ExpectMatches(b, shadow);
    ASSERT_TRUE(b.Free({*f, PageCount(size)}));
    shadow.Mark(f->value(), size, false);
    EXPECT_EQ(b.Stats(), fresh);
    // Again without looking in between.
    f = b.Allocate(PageCount(size), AlignOrder(0));
    ASSERT_TRUE(f.has_value());
    ASSERT_TRUE(b.Free({*f, PageCount(size)}));
    EXPECT_TRUE(b.CheckInvariants().ok());
    EXPECT_EQ(b.Stats(), fresh);
  }
}

TEST(BitmapBackendTest, SuperpageAccounting) {
  // Frames 300 .. 300+3000: superpages 512, 1024, 1536, 2048, 2560 (2560+512 > 3300? no: 3072 <= 3300).
  BitmapBackend b = Make(300, 3000);
  Shadow shadow(300, 3000);
  EXPECT_EQ(b.Stats().free_superpages, shadow.FreeSuperpages());
  EXPECT_EQ(b.Stats().free_superpages, 5u);
  // One page in a superpage takes it out; the first partial one never counted.
  std::optional<FrameNumber> f = b.Allocate(PageCount(1), AlignOrder(9));
  ASSERT_TRUE(f.has_value());
  EXPECT_EQ(f->value(), 512u);
  EXPECT_EQ(b.Stats().free_superpages, 4u);
  std::optional<FrameNumber> g = b.Allocate(PageCount(1200), AlignOrder(0));  // 300..511 is too short
  ASSERT_TRUE(g.has_value());
  EXPECT_EQ(g->value(), 513u);
  EXPECT_EQ(b.Stats().free_superpages, 2u);  // 1024 and 1536 gone, 2048 and 2560 left
  ASSERT_TRUE(b.Free({*f, PageCount(1)}));
  EXPECT_EQ(b.Stats().free_superpages, 2u);
  ASSERT_TRUE(b.Free({*g, PageCount(1200)}));
  EXPECT_EQ(b.Stats().free_superpages, 5u);
  EXPECT_TRUE(b.CheckInvariants().ok());
}

// Seeded random operations against the shadow. With `stats_every` > 1 the
// backend's block tree mostly stays lazy (dirty) between Stats() calls, as it
// does in real use.
void RunRandomized(uint64_t seed, uint64_t first, uint64_t pages, int ops, int stats_every,
                   uint64_t max_size, unsigned max_order) {
  SCOPED_TRACE(testing::Message() << "seed=" << seed << " first=" << first
                                  << " pages=" << pages << " stats_every=" << stats_every);
  std::mt19937_64 rng(seed);
  BitmapBackend b = Make(first, pages);
  Shadow shadow(first, pages);
  const BackendStats fresh = b.Stats();
  std::vector<Live> live;
  for (int op = 0; op < ops; ++op) {
    const bool allocate = live.empty() || rng() % 100 < 55;
    if (allocate) {
      // Mostly small requests, some large ones.
      const uint64_t size = rng() % 4 == 0 ? 1 + rng() % max_size : 1 + rng() % 16;
      const unsigned order = rng() % 3 == 0 ? rng() % (max_order + 1) : 0;
      const std::optional<uint64_t> expect = shadow.FirstFit(size, order);
      const std::optional<FrameNumber> f = b.Allocate(PageCount(size), AlignOrder(order));
      ASSERT_EQ(f.has_value(), expect.has_value()) << "op " << op << " size " << size
                                                   << " order " << order;
      if (f) {
        ASSERT_EQ(f->value(), *expect) << "op " << op << " size " << size << " order " << order;
        ASSERT_TRUE(shadow.AllFree(f->value(), size));  // no overlap
        shadow.Mark(f->value(), size, true);
        live.push_back({f->value(), size});
      }
    } else {
      const size_t k = rng() % live.size();
      const Live l = live[k];
      // Now and then try an invalid free of a neighbouring shape first.
      if (rng() % 8 == 0) {
        const BackendStats s = b.Stats();
        if (l.pages > 1) {
          ASSERT_FALSE(b.Free({FrameNumber(l.first), PageCount(l.pages - 1)}));
          ASSERT_FALSE(b.Free({FrameNumber(l.first + 1), PageCount(l.pages - 1)}));
        }
        ASSERT_FALSE(b.Free({FrameNumber(l.first), PageCount(l.pages + 1)}));
        ASSERT_EQ(b.Stats(), s);
      }
      ASSERT_TRUE(b.Free({FrameNumber(l.first), PageCount(l.pages)})) << "op " << op;
      shadow.Mark(l.first, l.pages, false);
      live[k] = live.back();
      live.pop_back();
      if (rng() % 4 == 0) {
        ASSERT_FALSE(b.Free({FrameNumber(l.first), PageCount(l.pages)})) << "double free";
      }
    }
    if (op % stats_every == 0) {
      ASSERT_TRUE(StatsMatch(b.Stats(), shadow)) << "op " << op;
      const absl::Status st = b.CheckInvariants();
      ASSERT_TRUE(st.ok()) << "op " << op << ": " << st;
    } else if (op % 7 == 0) {
      // Invariants hold with deferred work pending too (no Stats() flush).
      const absl::Status st = b.CheckInvariants();
      ASSERT_TRUE(st.ok()) << "op " << op << ": " << st;
    }
  }
  ExpectMatches(b, shadow);
  for (const Live& l : live) ASSERT_TRUE(b.Free({FrameNumber(l.first), PageCount(l.pages)}));
  EXPECT_EQ(b.Stats(), fresh);
  EXPECT_EQ(b.Stats(), Make(first, pages).Stats());
  EXPECT_TRUE(b.CheckInvariants().ok());
}

TEST(BitmapBackendTest, RandomizedAgainstShadowStatsEveryOp) {
  RunRandomized(/*seed=*/1, /*first=*/1001, /*pages=*/20000, /*ops=*/4000, /*stats_every=*/1,
                /*max_size=*/600, /*max_order=*/10);
}

TEST(BitmapBackendTest, RandomizedAgainstShadowSparseStats) {
  for (uint64_t seed : {2, 3, 4}) {
    RunRandomized(seed, /*first=*/seed * 4099, /*pages=*/30000 + seed * 777, /*ops=*/5000,
                  /*stats_every=*/50, /*max_size=*/600, /*max_order=*/10);
  }
}

TEST(BitmapBackendTest, RandomizedSmallPoolHighPressure) {
  for (uint64_t seed : {10, 11, 12, 13}) {
    RunRandomized(seed, /*first=*/seed * 37, /*pages=*/1500 + seed, /*ops=*/4000,
                  /*stats_every=*/3, /*max_size=*/200, /*max_order=*/8);
  }
}

// Steady-state churn around 70 % occupancy with small, often aligned
// requests: the workload of the latency goals, where most searches start in
// the middle of a block and walk right through the tree.
void RunChurn(uint64_t seed, uint64_t first, uint64_t pages, int ops) {
  SCOPED_TRACE(testing::Message() << "seed=" << seed << " first=" << first << " pages=" << pages);
  std::mt19937_64 rng(seed);
  BitmapBackend b = Make(first, pages);
  Shadow shadow(first, pages);
  std::vector<Live> live;
  uint64_t used = 0;
  for (int op = 0; op < ops; ++op) {
    if (used > pages * 7 / 10 && !live.empty()) {
      const size_t k = rng() % live.size();
      ASSERT_TRUE(b.Free({FrameNumber(live[k].first), PageCount(live[k].pages)})) << "op " << op;
      shadow.Mark(live[k].first, live[k].pages, false);
      used -= live[k].pages;
      live[k] = live.back();
      live.pop_back();
    } else {
      const uint64_t size = 1 + rng() % 64;
      const unsigned order = rng() % 7;
      const std::optional<uint64_t> expect = shadow.FirstFit(size, order);
      const std::optional<FrameNumber> f = b.Allocate(PageCount(size), AlignOrder(order));
      ASSERT_EQ(f.has_value(), expect.has_value()) << "op " << op;
      if (!f) continue;
      ASSERT_EQ(f->value(), *expect) << "op " << op << " size " << size << " order " << order;
      shadow.Mark(f->value(), size, true);
      live.push_back({f->value(), size});
      used += size;
    }
    if (op % 500 == 0) {
      ASSERT_EQ(b.Stats().largest_free_run.value(), shadow.LargestRun()) << "op " << op;
      ASSERT_TRUE(b.CheckInvariants().ok()) << "op " << op;
    }
  }
  ExpectMatches(b, shadow);
}

TEST(BitmapBackendTest, SteadyStateChurnSmallAlignedRequests) {
  RunChurn(/*seed=*/21, /*first=*/777, /*pages=*/20000, /*ops=*/12000);
  RunChurn(/*seed=*/22, /*first=*/0, /*pages=*/3000, /*ops=*/20000);
  RunChurn(/*seed=*/23, /*first=*/123457, /*pages=*/40000, /*ops=*/6000);
}

// Many small random ranges (odd bases and sizes, frame 0 included) with
// random sizes, orders up to 63 and invalid frees of neighbouring shapes;
// placement, statistics and invariants are checked after every operation.
TEST(BitmapBackendTest, RandomRangesDifferential) {
  for (uint64_t seed = 100; seed < 160; ++seed) {
    std::mt19937_64 rng(seed);
    const uint64_t first = rng() % 3 == 0 ? 0 : rng() % 100000;
    const uint64_t pages = 1 + rng() % (rng() % 2 ? 3000 : 600);
    SCOPED_TRACE(testing::Message() << "seed=" << seed << " first=" << first << " pages=" << pages);
    BitmapBackend b = Make(first, pages);
    Shadow shadow(first, pages);
    std::vector<Live> live;
    for (int op = 0; op < 600; ++op) {
      if (live.empty() || rng() % 2 == 0) {
        const uint64_t size = rng() % 4 == 0 ? 1 : 1 + rng() % (rng() % 5 == 0 ? 700 : 40);
        unsigned order = rng() % 2 ? 0 : rng() % 12;
        if (rng() % 50 == 0) order = 20 + rng() % 44;
        const std::optional<uint64_t> expect = shadow.FirstFit(size, order);
        const std::optional<FrameNumber> f = b.Allocate(PageCount(size), AlignOrder(order));
        ASSERT_EQ(f.has_value(), expect.has_value()) << "op " << op;
        if (f) {
          ASSERT_EQ(f->value(), *expect) << "op " << op << " size " << size << " order " << order;
          shadow.Mark(f->value(), size, true);
          live.push_back({f->value(), size});
        }
      } else {
        const size_t k = rng() % live.size();
        const Live l = live[k];
        if (rng() % 4 == 0) {
          ASSERT_FALSE(b.Free({FrameNumber(l.first), PageCount(l.pages + 1)}));
          if (l.pages > 1) {
            ASSERT_FALSE(b.Free({FrameNumber(l.first + 1), PageCount(l.pages - 1)}));
            ASSERT_FALSE(b.Free({FrameNumber(l.first), PageCount(l.pages - 1)}));
          }
        }
        ASSERT_TRUE(b.Free({FrameNumber(l.first), PageCount(l.pages)})) << "op " << op;
        shadow.Mark(l.first, l.pages, false);
        live[k] = live.back();
        live.pop_back();
      }
      const absl::Status st = b.CheckInvariants();
      ASSERT_TRUE(st.ok()) << "op " << op << ": " << st;
      if (op % 10 == 0) {
        ASSERT_TRUE(StatsMatch(b.Stats(), shadow)) << "op " << op;
      }
    }
    for (const Live& l : live) ASSERT_TRUE(b.Free({FrameNumber(l.first), PageCount(l.pages)}));
    EXPECT_EQ(b.Stats(), Make(first, pages).Stats());
  }
}

// The hot run: a run freed right after its allocation is parked, not merged;
// the next identical request gets it back, anything else merges it first.
// Every answer and every statistic must be those of the merged state.
TEST(BitmapBackendTest, HotRunIsParkedAndMergedExactly) {
  BitmapBackend b = Make(1000, 3000);
  Shadow shadow(1000, 3000);
  const BackendStats fresh = b.Stats();
  // Frames 1000..1009 | 1010..1029 | 1030..1034, then a hole at 1010..1029.
  std::optional<FrameNumber> a = b.Allocate(PageCount(10), AlignOrder(0));
  std::optional<FrameNumber> c = b.Allocate(PageCount(20), AlignOrder(0));
  std::optional<FrameNumber> d = b.Allocate(PageCount(5), AlignOrder(0));
  ASSERT_TRUE(a && c && d);
  shadow.Mark(a->value(), 10, true);
  shadow.Mark(d->value(), 5, true);
  ASSERT_TRUE(b.Free({*c, PageCount(20)}));
  ExpectMatches(b, shadow);

  // Allocate + free the same run: parked, Stats as merged, same run again.
  std::optional<FrameNumber> e = b.Allocate(PageCount(7), AlignOrder(0));
  ASSERT_TRUE(e.has_value());
  EXPECT_EQ(e->value(), 1010u);
  ASSERT_TRUE(b.Free({*e, PageCount(7)}));
  ExpectMatches(b, shadow);
  EXPECT_FALSE(b.Free({*e, PageCount(7)}));  // a parked run is free already
  EXPECT_FALSE(b.Free({*e, PageCount(3)}));  // and no part of it is live
  ExpectMatches(b, shadow);
  EXPECT_EQ(b.Allocate(PageCount(7), AlignOrder(0))->value(), 1010u);
  ASSERT_TRUE(b.Free({FrameNumber(1010), PageCount(7)}));
  // A different size merges the parked run first: the hole is whole again.
  EXPECT_EQ(b.Allocate(PageCount(20), AlignOrder(0))->value(), 1010u);
  shadow.Mark(1010, 20, true);
  ExpectMatches(b, shadow);
  ASSERT_TRUE(b.Free({FrameNumber(1010), PageCount(20)}));
  shadow.Mark(1010, 20, false);
  // A larger order whose alignment the parked run meets reuses it; a
  // smaller one must not (a lower aligned fit may exist).
  std::optional<FrameNumber> g = b.Allocate(PageCount(4), AlignOrder(3));
  ASSERT_TRUE(g.has_value());
  EXPECT_EQ(g->value(), *shadow.FirstFit(4, 3));
  ASSERT_TRUE(b.Free({*g, PageCount(4)}));
  EXPECT_EQ(b.Allocate(PageCount(4), AlignOrder(4))->value(), *shadow.FirstFit(4, 4));
  ASSERT_TRUE(b.Free({FrameNumber(*shadow.FirstFit(4, 4)), PageCount(4)}));
  const uint64_t low = *shadow.FirstFit(4, 2);
  EXPECT_EQ(b.Allocate(PageCount(4), AlignOrder(2))->value(), low);
  shadow.Mark(low, 4, true);
  ExpectMatches(b, shadow);
  ASSERT_TRUE(b.Free({FrameNumber(low), PageCount(4)}));
  shadow.Mark(low, 4, false);
  ASSERT_TRUE(b.Free({*a, PageCount(10)}));
  ASSERT_TRUE(b.Free({*d, PageCount(5)}));
  EXPECT_EQ(b.Stats(), fresh);
  EXPECT_TRUE(b.CheckInvariants().ok());

  // A parked run between free frames: Stats count the merged run.
  BitmapBackend t = Make(0, 1000);
  Shadow ts(0, 1000);
  ASSERT_EQ(t.Allocate(PageCount(10), AlignOrder(0))->value(), 0u);
  ASSERT_EQ(t.Allocate(PageCount(10), AlignOrder(0))->value(), 10u);
  ASSERT_EQ(t.Allocate(PageCount(10), AlignOrder(0))->value(), 20u);
  ts.Mark(10, 10, true);
  ASSERT_TRUE(t.Free({FrameNumber(0), PageCount(10)}));    // a real free
  ASSERT_TRUE(t.Free({FrameNumber(20), PageCount(10)}));   // parked, merges with 30..999
  ExpectMatches(t, ts);
  EXPECT_EQ(t.Stats().largest_free_run.value(), 980u);
  EXPECT_EQ(t.Allocate(PageCount(980), AlignOrder(0))->value(), 20u);
  ts.Mark(20, 980, true);
  ExpectMatches(t, ts);
  ASSERT_TRUE(t.Free({FrameNumber(20), PageCount(980)}));  // parked again
  ASSERT_TRUE(t.Free({FrameNumber(10), PageCount(10)}));   // merges it, then frees
  EXPECT_EQ(t.Stats(), Make(0, 1000).Stats());
  EXPECT_TRUE(t.CheckInvariants().ok());
}

// Frees of the run just allocated (parked hot runs) mixed with everything
// else, checked against the shadow after every operation.
TEST(BitmapBackendTest, RandomizedHotRunsAgainstShadow) {
  for (uint64_t seed : {31, 32, 33}) {
    SCOPED_TRACE(testing::Message() << "seed=" << seed);
    std::mt19937_64 rng(seed);
    const uint64_t first = 777 * seed;
    const uint64_t pages = 5000;
    BitmapBackend b = Make(first, pages);
    Shadow shadow(first, pages);
    std::vector<Live> live;
    for (int op = 0; op < 3000; ++op) {
      const unsigned kind = rng() % 10;
      if (kind < 5 || live.empty()) {
        const uint64_t size = 1 + rng() % (rng() % 4 == 0 ? 300 : 40);
        const unsigned order = rng() % 4 == 0 ? rng() % 8 : 0;
        const std::optional<uint64_t> expect = shadow.FirstFit(size, order);
        const std::optional<FrameNumber> f = b.Allocate(PageCount(size), AlignOrder(order));
        ASSERT_EQ(f.has_value(), expect.has_value()) << "op " << op;
        if (!f) continue;
        ASSERT_EQ(f->value(), *expect) << "op " << op << " size " << size << " order " << order;
        shadow.Mark(f->value(), size, true);
        live.push_back({f->value(), size});
      } else {
        // Mostly the latest run (the hot one), sometimes any.
        const size_t k = kind < 8 ? live.size() - 1 : rng() % live.size();
        const Live l = live[k];
        ASSERT_TRUE(b.Free({FrameNumber(l.first), PageCount(l.pages)})) << "op " << op;
        shadow.Mark(l.first, l.pages, false);
        live[k] = live.back();
        live.pop_back();
        if (rng() % 3 == 0) {
          ASSERT_FALSE(b.Free({FrameNumber(l.first), PageCount(l.pages)})) << "double free";
        }
      }
      if (op % 3 == 0) {
        const absl::Status st = b.CheckInvariants();
        ASSERT_TRUE(st.ok()) << "op " << op << ": " << st;
      }
      if (op % 5 == 0) {
        ASSERT_TRUE(StatsMatch(b.Stats(), shadow)) << "op " << op;
      }
    }
    for (const Live& l : live) ASSERT_TRUE(b.Free({FrameNumber(l.first), PageCount(l.pages)}));
    EXPECT_EQ(b.Stats(), Make(first, pages).Stats());
    EXPECT_TRUE(b.CheckInvariants().ok());
  }
}

// Long stretches of small operations leave the block tree lazy (dirty);
// the first long or aligned request, or Stats(), must see the exact state.
TEST(BitmapBackendTest, LazyTreeIsExactWhenRead) {
  std::mt19937_64 rng(41);
  const uint64_t first = 123, pages = 40000;
  BitmapBackend b = Make(first, pages);
  Shadow shadow(first, pages);
  std::vector<Live> live;
  for (int round = 0; round < 30; ++round) {
    for (int i = 0; i < 300; ++i) {  // small unaligned requests only, ~70 % full
      if (live.empty() || shadow.FreePages() > pages * 3 / 10) {
        const uint64_t size = 1 + rng() % 64;
        const std::optional<FrameNumber> f = b.Allocate(PageCount(size), AlignOrder(0));
        ASSERT_TRUE(f.has_value());
        ASSERT_EQ(f->value(), *shadow.FirstFit(size, 0));
        shadow.Mark(f->value(), size, true);
        live.push_back({f->value(), size});
      } else {
        ASSERT_NO_FATAL_FAILURE(FreeLive(b, shadow, live, rng() % live.size()));
      }
    }
    ASSERT_TRUE(b.CheckInvariants().ok());
    // Then a long or aligned request through the tree, or Stats.
    const unsigned what = round % 3;
    if (what == 2) {
      ASSERT_EQ(b.Stats().largest_free_run.value(), shadow.LargestRun());
      continue;
    }
    const uint64_t size = what == 0 ? 65 + rng() % 600 : 1 + rng() % 200;
    const unsigned order = what == 0 ? 0 : 4 + rng() % 6;
    const std::optional<uint64_t> expect = shadow.FirstFit(size, order);
    const std::optional<FrameNumber> f = b.Allocate(PageCount(size), AlignOrder(order));
    ASSERT_EQ(f.has_value(), expect.has_value()) << "round " << round;
    if (!f) continue;
    ASSERT_EQ(f->value(), *expect) << "round " << round << " size " << size;
    shadow.Mark(f->value(), size, true);
    live.push_back({f->value(), size});
  }
  ExpectMatches(b, shadow);
}

// Ranges ending exactly at a word or block boundary (no padding after the
// range inside the last block) and runs touching frame 0 and the last frame.
TEST(BitmapBackendTest, RunsAtTheEdgesOfTheRange) {
  for (uint64_t first : {0ull, 64ull, 512ull, 448ull}) {
    for (uint64_t pages : {64ull, 128ull, 512ull, 1024ull, 576ull}) {
      SCOPED_TRACE(testing::Message() << "first=" << first << " pages=" << pages);
      BitmapBackend b = Make(first, pages);
      Shadow shadow(first, pages);
      const BackendStats fresh = b.Stats();
      std::vector<Live> live;
      for (uint64_t size : {1ull, 63ull, 64ull, 1ull, 65ull, 7ull}) {
        const std::optional<FrameNumber> f = b.Allocate(PageCount(size), AlignOrder(0));
        const std::optional<uint64_t> expect = shadow.FirstFit(size, 0);
        ASSERT_EQ(f.has_value(), expect.has_value());
        if (!f) continue;
        ASSERT_EQ(f->value(), *expect);
        shadow.Mark(*expect, size, true);
        live.push_back({*expect, size});
      }
      // The rest of the range in one run, up to the last frame.
      const uint64_t rest = shadow.LargestRun();
      if (rest > 0) {
        const std::optional<FrameNumber> f = b.Allocate(PageCount(rest), AlignOrder(0));
        ASSERT_TRUE(f.has_value());
        ASSERT_EQ(f->value(), *shadow.FirstFit(rest, 0));
        shadow.Mark(f->value(), rest, true);
        live.push_back({f->value(), rest});
      }
      ExpectMatches(b, shadow);
      // Invalid frees past the end or overlapping it are rejected.
      EXPECT_FALSE(b.Free({FrameNumber(first + pages - 1), PageCount(2)}));
      EXPECT_FALSE(b.Free({FrameNumber(first + pages), PageCount(1)}));
      for (const Live& l : live) {
        ASSERT_TRUE(b.Free({FrameNumber(l.first), PageCount(l.pages)}));
        shadow.Mark(l.first, l.pages, false);
        ASSERT_TRUE(b.CheckInvariants().ok());
      }
      EXPECT_EQ(b.Stats(), fresh);
    }
  }
}

TEST(BitmapBackendTest, HugeRangeConstructsQuickly) {
  const uint64_t pages = uint64_t{1} << 24;  // 64 GiB
  const auto t0 = std::chrono::steady_clock::now();
  BitmapBackend b = Make(12345, pages);
  const auto t1 = std::chrono::steady_clock::now();
  const double ms = std::chrono::duration<double, std::milli>(t1 - t0).count();
  std::cout << "16M-frame construction: " << ms << " ms\n";
  EXPECT_LT(ms, 1000.0);
  BackendStats s = b.Stats();
  EXPECT_EQ(s.free_pages.value(), pages);
  EXPECT_EQ(s.largest_free_run.value(), pages);
  EXPECT_EQ(s.free_runs, 1u);
  // Superpages fully inside [12345, 12345 + 2^24).
  EXPECT_EQ(s.free_superpages, (12345 + pages) / kSuper - (12345 + kSuper - 1) / kSuper);
  const double per_gib = static_cast<double>(s.metadata_bytes) / 64.0;
  std::cout << "metadata: " << s.metadata_bytes << " bytes, " << per_gib / 1024.0
            << " KiB per GiB\n";
  EXPECT_LT(per_gib, 80.0 * 1024);
  // Allocate across the whole pool and back.
  std::optional<FrameNumber> big = b.Allocate(PageCount(pages - 5000), AlignOrder(12));
  ASSERT_TRUE(big.has_value());
  EXPECT_TRUE(big->IsAligned(AlignOrder(12)));
  std::optional<FrameNumber> one = b.Allocate(PageCount(1), AlignOrder(0));
  ASSERT_TRUE(one.has_value());
  EXPECT_EQ(one->value(), 12345u);
  EXPECT_TRUE(b.Free({*big, PageCount(pages - 5000)}));
  EXPECT_TRUE(b.Free({*one, PageCount(1)}));
  EXPECT_EQ(b.Stats(), s);
}

TEST(BitmapBackendTest, MetadataIsFixedAndSmall) {
  BitmapBackend b = Make(0, 262144);  // 1 GiB
  const uint64_t bytes = b.Stats().metadata_bytes;
  std::cout << "metadata for 1 GiB: " << bytes << " bytes\n";
  EXPECT_LT(bytes, 80u * 1024);
  EXPECT_GE(bytes, 64u * 1024);  // two bitmaps of 32 KiB
  for (int i = 0; i < 1000; ++i) ASSERT_TRUE(b.Allocate(PageCount(1 + i % 7), AlignOrder(i % 4)));
  EXPECT_EQ(b.Stats().metadata_bytes, bytes);
}

}  // namespace
}  // namespace l4re_ma
