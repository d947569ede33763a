#include "backends/buddy/buddy_backend.h"

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <memory>
#include <optional>
#include <random>
#include <vector>

#include "core/backend_registry.h"
#include "core/page_backend.h"
#include "core/types.h"
#include "gtest/gtest.h"

namespace l4re_ma {
namespace {

PageRun Range(uint64_t first, uint64_t pages) { return {FrameNumber(first), PageCount(pages)}; }

// The stats a fully coalesced buddy system must report for a set of free
// frames: its blocks are the maximal naturally aligned blocks inside the free
// set, found greedily from the lowest free frame.
BackendStats CanonicalStats(uint64_t first, const std::vector<bool>& used) {
  const uint64_t n = used.size();
  std::vector<uint64_t> used_prefix(n + 1, 0);
  for (uint64_t i = 0; i < n; ++i) used_prefix[i + 1] = used_prefix[i] + (used[i] ? 1 : 0);
  BackendStats s;
  s.total_pages = PageCount(n);
  uint64_t free_pages = 0, largest = 0;
  for (uint64_t x = 0; x < n;) {
    if (used[x]) {
      ++x;
      continue;
    }
    const uint64_t f = first + x;
    unsigned k = 0;
    while (k < 63 && (f & ((uint64_t{1} << (k + 1)) - 1)) == 0 &&
           x + (uint64_t{1} << (k + 1)) <= n &&
           used_prefix[x + (uint64_t{1} << (k + 1))] == used_prefix[x]) {
      ++k;
    }
    const uint64_t size = uint64_t{1} << k;
    free_pages += size;
    largest = std::max(largest, size);
    ++s.free_runs;
    if (k >= kSuperPageOrder) s.free_superpages += size >> kSuperPageOrder;
    x += size;
  }
  s.free_pages = PageCount(free_pages);
  s.largest_free_run = PageCount(largest);
  return s;
}

// Everything but metadata_bytes, which the model does not know.
void ExpectSameFreeState(const BackendStats& got, const BackendStats& want) {
  EXPECT_EQ(got.total_pages, want.total_pages);
  EXPECT_EQ(got.free_pages, want.free_pages);
  EXPECT_EQ(got.largest_free_run, want.largest_free_run);
  EXPECT_EQ(got.free_runs, want.free_runs);
  EXPECT_EQ(got.free_superpages, want.free_superpages);
}

// Whether a buddy system over the free frames of `used` (range starting at
// `first`) can serve Allocate(n, AlignOrder(a)): iff some frame F that is a
// multiple of 2^max(ceil_log2 n, a) starts a free aligned block
// [F, F + 2^ceil_log2(n)) inside the range. (Such a block lies in one free
// buddy block of order >= ceil_log2(n), and F is then either that block's
// first frame or inside a block of order > a.)
bool ModelCanServe(uint64_t first, const std::vector<bool>& used, uint64_t n, unsigned a) {
  unsigned c = 0;
  while ((uint64_t{1} << c) < n) ++c;
  const uint64_t size = uint64_t{1} << c;
  const uint64_t step = uint64_t{1} << std::max(c, a);
  const uint64_t end = first + used.size();
  for (uint64_t f = (first + step - 1) & ~(step - 1); f >= first && f < end && size <= end - f;
       f += step) {
    bool all_free = true;
    for (uint64_t x = f - first; x < f - first + size && all_free; ++x) all_free = !used[x];
    if (all_free) return true;
    if (end - f <= step) break;
  }
  return false;
}

TEST(BuddyBackendTest, FreshPoolHoldsMaximalAlignedBlocks) {
  BuddyBackend b(Range(0, 1024));
  const BackendStats s = b.Stats();
  EXPECT_EQ(s.total_pages, PageCount(1024));
  EXPECT_EQ(s.free_pages, PageCount(1024));
  EXPECT_EQ(s.largest_free_run, PageCount(1024));
  EXPECT_EQ(s.free_runs, 1u);
  EXPECT_EQ(s.free_superpages, 2u);
  EXPECT_GT(s.metadata_bytes, 0u);
  EXPECT_EQ(b.name(), "buddy");
  EXPECT_EQ(b.range(), Range(0, 1024));
  EXPECT_TRUE(b.CheckInvariants().ok()) << b.CheckInvariants();
}

TEST(BuddyBackendTest, OddRangesSeedLikeTheModel) {
  const uint64_t cases[][2] = {{0, 1},       {1, 1},       {3, 5},      {7, 1000},
                               {511, 1026},  {513, 511},   {1, 4095},   {1000003, 77777},
                               {4096, 4096}, {12345, 65536}};
  for (const auto& c : cases) {
    SCOPED_TRACE(testing::Message() << "first=" << c[0] << " pages=" << c[1]);
    BuddyBackend b(Range(c[0], c[1]));
    ExpectSameFreeState(b.Stats(), CanonicalStats(c[0], std::vector<bool>(c[1], false)));
    EXPECT_TRUE(b.CheckInvariants().ok()) << b.CheckInvariants();
  }
}

TEST(BuddyBackendTest, OnePageSplitsAndFreeingMergesBack) {
  BuddyBackend b(Range(0, 1 << 16));
  const BackendStats fresh = b.Stats();
  std::optional<FrameNumber> f = b.Allocate(PageCount(1), AlignOrder(0));
  ASSERT_TRUE(f.has_value());
  EXPECT_EQ(*f, FrameNumber(0));
  BackendStats s = b.Stats();
  EXPECT_EQ(s.free_pages, PageCount((1 << 16) - 1));
  EXPECT_EQ(s.free_runs, 16u);  // Buddies of orders 0..15.
  EXPECT_EQ(s.largest_free_run, PageCount(1 << 15));
  EXPECT_EQ(s.free_superpages, 127u);
  EXPECT_TRUE(b.CheckInvariants().ok()) << b.CheckInvariants();

  ASSERT_TRUE(b.Free({*f, PageCount(1)}));
  EXPECT_EQ(b.Stats(), fresh);
  EXPECT_TRUE(b.CheckInvariants().ok()) << b.CheckInvariants();

  // The parked block is handed out again, and a different request performs
  // the deferred merge first.
  for (int i = 0; i < 100; ++i) {
    f = b.Allocate(PageCount(1), AlignOrder(0));
    ASSERT_EQ(f, FrameNumber(0));
    EXPECT_EQ(b.Stats(), s);
    ASSERT_TRUE(b.Free({*f, PageCount(1)}));
    EXPECT_EQ(b.Stats(), fresh);
  }
  EXPECT_TRUE(b.CheckInvariants().ok()) << b.CheckInvariants();
  std::optional<FrameNumber> big = b.Allocate(PageCount(1 << 16), AlignOrder(0));
  ASSERT_EQ(big, FrameNumber(0));
  EXPECT_EQ(b.Stats().free_pages, PageCount(0));
  EXPECT_TRUE(b.CheckInvariants().ok()) << b.CheckInvariants();
  ASSERT_TRUE(b.Free({*big, PageCount(1 << 16)}));
  EXPECT_EQ(b.Stats(), fresh);
  EXPECT_TRUE(b.CheckInvariants().ok()) << b.CheckInvariants();
}

TEST(BuddyBackendTest, FivePagesCostFive) {
  BuddyBackend b(Range(0, 4096));
  const BackendStats fresh = b.Stats();
  std::optional<FrameNumber> f = b.Allocate(PageCount(5), AlignOrder(0));
  ASSERT_TRUE(f.has_value());
  EXPECT_EQ(b.Stats().free_pages, PageCount(4096 - 5));
  EXPECT_TRUE(b.CheckInvariants().ok()) << b.CheckInvariants();
  // The tail is free and used first: [f+5, f+6) is an order-0 block.
  std::optional<FrameNumber> one = b.Allocate(PageCount(1), AlignOrder(0));
  ASSERT_TRUE(one.has_value());
  EXPECT_EQ(*one, *f + PageCount(5));
  std::optional<FrameNumber> two = b.Allocate(PageCount(2), AlignOrder(0));
  ASSERT_TRUE(two.has_value());
  EXPECT_EQ(*two, *f + PageCount(6));
  EXPECT_EQ(b.Stats().free_pages, PageCount(4096 - 8));
  ASSERT_TRUE(b.Free({*f, PageCount(5)}));
  ASSERT_TRUE(b.Free({*two, PageCount(2)}));
  ASSERT_TRUE(b.Free({*one, PageCount(1)}));
  EXPECT_EQ(b.Stats(), fresh);
  EXPECT_TRUE(b.CheckInvariants().ok()) << b.CheckInvariants();

  // Every length costs exactly its length, aligned or not.
  for (uint64_t n = 1; n <= 300; ++n) {
    for (unsigned a : {0u, 3u, 9u}) {
      SCOPED_TRACE(testing::Message() << "n=" << n << " align=" << a);
      std::optional<FrameNumber> r = b.Allocate(PageCount(n), AlignOrder(a));
      ASSERT_TRUE(r.has_value());
      EXPECT_TRUE(r->IsAligned(AlignOrder(a)));
      EXPECT_EQ(b.Stats().free_pages, PageCount(4096 - n));
      ASSERT_TRUE(b.Free({*r, PageCount(n)}));
      ASSERT_EQ(b.Stats(), fresh);
    }
  }
  EXPECT_TRUE(b.CheckInvariants().ok()) << b.CheckInvariants();
}

TEST(BuddyBackendTest, EveryRunIsAlignedAndDisjoint) {
  const uint64_t first = 777, pages = 1 << 19;
  BuddyBackend b(Range(first, pages));
  const BackendStats fresh = b.Stats();
  std::vector<bool> used(pages, false);
  std::vector<PageRun> live;
  for (unsigned a = 0; a <= 14; ++a) {
    for (uint64_t n : {uint64_t{1}, uint64_t{3}, uint64_t{8}, uint64_t{100}}) {
      std::optional<FrameNumber> f = b.Allocate(PageCount(n), AlignOrder(a));
      ASSERT_TRUE(f.has_value()) << "n=" << n << " align=" << a;
      EXPECT_TRUE(f->IsAligned(AlignOrder(a))) << *f << " align=" << a;
      ASSERT_GE(f->value(), first);
      ASSERT_LE(f->value() + n, first + pages);
      for (uint64_t x = f->value() - first; x < f->value() - first + n; ++x) {
        ASSERT_FALSE(used[x]) << "overlap at frame " << first + x;
        used[x] = true;
      }
      live.push_back({*f, PageCount(n)});
    }
  }
  EXPECT_TRUE(b.CheckInvariants().ok()) << b.CheckInvariants();
  ExpectSameFreeState(b.Stats(), CanonicalStats(first, used));
  for (const PageRun& r : live) ASSERT_TRUE(b.Free(r)) << r;
  EXPECT_EQ(b.Stats(), fresh);
  EXPECT_TRUE(b.CheckInvariants().ok()) << b.CheckInvariants();
}

TEST(BuddyBackendTest, UnsatisfiableAlignmentReturnsNullopt) {
  BuddyBackend b(Range(4096, 4096));  // One block of order 12.
  const BackendStats fresh = b.Stats();
  EXPECT_EQ(b.max_order(), 12u);
  EXPECT_FALSE(b.Allocate(PageCount(1), AlignOrder(13)).has_value());
  EXPECT_FALSE(b.Allocate(PageCount(1), AlignOrder(40)).has_value());
  EXPECT_FALSE(b.Allocate(PageCount(1), AlignOrder(63)).has_value());
  EXPECT_FALSE(b.Allocate(PageCount(4097), AlignOrder(0)).has_value());
  EXPECT_EQ(b.Stats(), fresh);
  std::optional<FrameNumber> f = b.Allocate(PageCount(1), AlignOrder(12));
  ASSERT_EQ(f, FrameNumber(4096));
  EXPECT_FALSE(b.Allocate(PageCount(1), AlignOrder(12)).has_value());
  ASSERT_TRUE(b.Free({*f, PageCount(1)}));

  // [1, 1025) holds no block of order 10 even though it has 1024 pages, and
  // no frame aligned to order 11; its last frame 1024 is aligned to order 10
  // (an order-0 block), so one page at that alignment is served.
  BuddyBackend odd(Range(1, 1024));
  const BackendStats odd_fresh = odd.Stats();
  EXPECT_FALSE(odd.Allocate(PageCount(2), AlignOrder(10)).has_value());
  EXPECT_FALSE(odd.Allocate(PageCount(1), AlignOrder(11)).has_value());
  EXPECT_FALSE(odd.Allocate(PageCount(1024), AlignOrder(0)).has_value());
  EXPECT_EQ(odd.Stats(), odd_fresh);
  EXPECT_EQ(odd.Stats().largest_free_run, PageCount(512));
  std::optional<FrameNumber> last = odd.Allocate(PageCount(1), AlignOrder(10));
  EXPECT_EQ(last, FrameNumber(1024));
  EXPECT_TRUE(odd.Allocate(PageCount(512), AlignOrder(9)).has_value());
  EXPECT_TRUE(odd.CheckInvariants().ok()) << odd.CheckInvariants();
}

TEST(BuddyBackendTest, ExhaustionReturnsNulloptAndRecovers) {
  const uint64_t first = 3, pages = 10007;
  BuddyBackend b(Range(first, pages));
  const BackendStats fresh = b.Stats();
  std::mt19937_64 rng(42);
  std::vector<PageRun> live;
  uint64_t allocated = 0;
  for (;;) {
    const uint64_t n = 1 + rng() % 37;
    std::optional<FrameNumber> f = b.Allocate(PageCount(n), AlignOrder(0));
    if (!f) break;
    live.push_back({*f, PageCount(n)});
    allocated += n;
  }
  EXPECT_EQ(b.Stats().free_pages, PageCount(pages - allocated));
  for (;;) {
    std::optional<FrameNumber> f = b.Allocate(PageCount(1), AlignOrder(0));
    if (!f) break;
    live.push_back({*f, PageCount(1)});
  }
  const BackendStats empty = b.Stats();
  EXPECT_EQ(empty.free_pages, PageCount(0));
  EXPECT_EQ(empty.largest_free_run, PageCount(0));
  EXPECT_EQ(empty.free_runs, 0u);
  EXPECT_EQ(empty.free_superpages, 0u);
  EXPECT_FALSE(b.Allocate(PageCount(1), AlignOrder(0)).has_value());
  EXPECT_FALSE(b.Allocate(PageCount(100), AlignOrder(5)).has_value());
  EXPECT_TRUE(b.CheckInvariants().ok()) << b.CheckInvariants();
  std::shuffle(live.begin(), live.end(), rng);
  for (const PageRun& r : live) ASSERT_TRUE(b.Free(r)) << r;
  EXPECT_EQ(b.Stats(), fresh);
  EXPECT_TRUE(b.CheckInvariants().ok()) << b.CheckInvariants();
}

TEST(BuddyBackendTest, InvalidFreesAreRejectedWithoutChange) {
  const uint64_t first = 100, pages = 8192;
  BuddyBackend b(Range(first, pages));
  std::optional<FrameNumber> five = b.Allocate(PageCount(5), AlignOrder(0));
  std::optional<FrameNumber> big = b.Allocate(PageCount(100), AlignOrder(0));
  std::optional<FrameNumber> single = b.Allocate(PageCount(4), AlignOrder(2));  // Hot.
  ASSERT_TRUE(five && big && single);
  const BackendStats before = b.Stats();
  const PageRun bad[] = {
      {*five, PageCount(4)},                 // Prefix (its first block).
      {*five, PageCount(6)},                 // Too long (frame after is free).
      {*five, PageCount(7)},                 // Too long.
      {*five + PageCount(4), PageCount(1)},  // Suffix block.
      {*five + PageCount(1), PageCount(4)},  // Middle.
      {*big, PageCount(64)},                 // First block of 100 = 64+32+4.
      {*big, PageCount(96)},                 // First two blocks.
      {*big + PageCount(64), PageCount(36)},  // The tail blocks.
      {*big + PageCount(64), PageCount(32)},
      {*big, PageCount(101)},
      {*big, PageCount(99)},
      {*single, PageCount(2)},                 // Part of the hot run.
      {*single, PageCount(8)},                 // Longer than the hot run.
      {*single + PageCount(1), PageCount(1)},  // Inside the hot run.
      {*five + PageCount(5), PageCount(1)},    // Free tail frame.
      {FrameNumber(first + pages - 1), PageCount(1)},  // Never allocated.
      {FrameNumber(first - 1), PageCount(1)},          // Below the range.
      {FrameNumber(first + pages), PageCount(1)},      // Above the range.
      {FrameNumber(first + pages - 1), PageCount(2)},  // Sticks out.
      {*five, PageCount(0)},
      {*five, PageCount(~uint64_t{0})},  // Overflows.
  };
  for (const PageRun& r : bad) {
    EXPECT_FALSE(b.Free(r)) << r;
    EXPECT_EQ(b.Stats(), before) << r;
  }
  EXPECT_TRUE(b.CheckInvariants().ok()) << b.CheckInvariants();

  // Double frees, through the hot path and the general path.
  ASSERT_TRUE(b.Free({*single, PageCount(4)}));
  const BackendStats after_single = b.Stats();
  EXPECT_FALSE(b.Free({*single, PageCount(4)}));
  EXPECT_EQ(b.Stats(), after_single);
  EXPECT_TRUE(b.CheckInvariants().ok()) << b.CheckInvariants();
  ASSERT_TRUE(b.Free({*five, PageCount(5)}));
  const BackendStats after_five = b.Stats();
  EXPECT_FALSE(b.Free({*five, PageCount(5)}));
  EXPECT_FALSE(b.Free({*five, PageCount(4)}));
  EXPECT_FALSE(b.Free({*single, PageCount(4)}));
  EXPECT_EQ(b.Stats(), after_five);
  ASSERT_TRUE(b.Free({*big, PageCount(100)}));
  EXPECT_FALSE(b.Free({*big, PageCount(100)}));
  EXPECT_EQ(b.Stats(), BuddyBackend(Range(first, pages)).Stats());
  EXPECT_TRUE(b.CheckInvariants().ok()) << b.CheckInvariants();
}

// A run is identified by its start and end marks; a longer claim that ends
// exactly at the end of a neighbouring run must still be rejected.
TEST(BuddyBackendTest, ClaimsSpanningNeighbouringRunsAreRejected) {
  BuddyBackend b(Range(0, 64));
  std::optional<FrameNumber> five = b.Allocate(PageCount(5), AlignOrder(0));
  std::optional<FrameNumber> one = b.Allocate(PageCount(1), AlignOrder(0));
  std::optional<FrameNumber> two = b.Allocate(PageCount(2), AlignOrder(0));
  std::optional<FrameNumber> three = b.Allocate(PageCount(3), AlignOrder(0));
  ASSERT_EQ(five, FrameNumber(0));
  ASSERT_EQ(one, FrameNumber(5));
  ASSERT_EQ(two, FrameNumber(6));
  ASSERT_EQ(three, FrameNumber(8));
  const BackendStats before = b.Stats();
  for (uint64_t n : {1, 2, 3, 4, 6, 7, 8, 9, 10, 11, 12}) {
    EXPECT_FALSE(b.Free({FrameNumber(0), PageCount(n)})) << n;
  }
  EXPECT_FALSE(b.Free({FrameNumber(5), PageCount(3)}));
  EXPECT_FALSE(b.Free({FrameNumber(6), PageCount(1)}));
  EXPECT_FALSE(b.Free({FrameNumber(7), PageCount(1)}));
  EXPECT_FALSE(b.Free({FrameNumber(8), PageCount(4)}));
  EXPECT_FALSE(b.Free({FrameNumber(9), PageCount(2)}));
  EXPECT_EQ(b.Stats(), before);
  EXPECT_TRUE(b.CheckInvariants().ok()) << b.CheckInvariants();
  ASSERT_TRUE(b.Free({FrameNumber(6), PageCount(2)}));
  ASSERT_TRUE(b.Free({FrameNumber(0), PageCount(5)}));
  ASSERT_TRUE(b.Free({FrameNumber(8), PageCount(3)}));
  ASSERT_TRUE(b.Free({FrameNumber(5), PageCount(1)}));
  EXPECT_EQ(b.Stats(), BuddyBackend(Range(0, 64)).Stats());
  EXPECT_TRUE(b.CheckInvariants().ok()) << b.CheckInvariants();
}

// The parked hot block is reused only for requests the general path would
// serve with a block of its order.
TEST(BuddyBackendTest, HotBlockRespectsAlignmentAndSize) {
  BuddyBackend b(Range(0, 4096));
  const BackendStats fresh = b.Stats();
  std::optional<FrameNumber> f = b.Allocate(PageCount(4), AlignOrder(2));
  ASSERT_EQ(f, FrameNumber(0));
  ASSERT_TRUE(b.Free({*f, PageCount(4)}));  // Parked.
  EXPECT_EQ(b.Stats(), fresh);
  EXPECT_TRUE(b.CheckInvariants().ok()) << b.CheckInvariants();
  // Larger alignment, other sizes: the deferred merge happens first.
  std::optional<FrameNumber> g = b.Allocate(PageCount(4), AlignOrder(5));
  ASSERT_TRUE(g.has_value());
  EXPECT_TRUE(g->IsAligned(AlignOrder(5)));
  EXPECT_TRUE(b.CheckInvariants().ok()) << b.CheckInvariants();
  ASSERT_TRUE(b.Free({*g, PageCount(4)}));
  std::optional<FrameNumber> h = b.Allocate(PageCount(3), AlignOrder(0));
  ASSERT_TRUE(h.has_value());
  EXPECT_EQ(b.Stats().free_pages, PageCount(4093));
  EXPECT_TRUE(b.CheckInvariants().ok()) << b.CheckInvariants();
  ASSERT_TRUE(b.Free({*h, PageCount(3)}));
  EXPECT_EQ(b.Stats(), fresh);
  // A free that does not match the remembered run goes the general way.
  std::optional<FrameNumber> x = b.Allocate(PageCount(2), AlignOrder(0));
  std::optional<FrameNumber> y = b.Allocate(PageCount(2), AlignOrder(0));
  ASSERT_TRUE(x && y);
  ASSERT_TRUE(b.Free({*x, PageCount(2)}));
  EXPECT_TRUE(b.CheckInvariants().ok()) << b.CheckInvariants();
  ASSERT_TRUE(b.Free({*y, PageCount(2)}));
  EXPECT_EQ(b.Stats(), fresh);
  EXPECT_TRUE(b.CheckInvariants().ok()) << b.CheckInvariants();
}

TEST(BuddyBackendTest, FailedAllocationChangesNothing) {
  // [64, 128): one block of order 6; no frame is a multiple of 2^7.
  BuddyBackend b(Range(64, 64));
  std::optional<FrameNumber> f = b.Allocate(PageCount(1), AlignOrder(0));
  ASSERT_EQ(f, FrameNumber(64));
  ASSERT_TRUE(b.Free({*f, PageCount(1)}));  // Parked unmerged.
  const BackendStats parked = b.Stats();
  EXPECT_FALSE(b.Allocate(PageCount(65), AlignOrder(0)).has_value());
  // The aligned-head fallback has to look at the coalesced state, fails and
  // must park the hot block again exactly as it was.
  EXPECT_FALSE(b.Allocate(PageCount(1), AlignOrder(7)).has_value());
  EXPECT_FALSE(b.Allocate(PageCount(3), AlignOrder(63)).has_value());
  EXPECT_EQ(b.Stats(), parked);
  EXPECT_TRUE(b.CheckInvariants().ok()) << b.CheckInvariants();
  // Still parked: handed out again at once.
  f = b.Allocate(PageCount(1), AlignOrder(0));
  ASSERT_EQ(f, FrameNumber(64));
  ASSERT_TRUE(b.Free({*f, PageCount(1)}));
  EXPECT_EQ(b.Stats(), parked);
  // The coalesced state is what counts: the whole pool is one block.
  std::optional<FrameNumber> all = b.Allocate(PageCount(64), AlignOrder(6));
  ASSERT_EQ(all, FrameNumber(64));
  EXPECT_TRUE(b.CheckInvariants().ok()) << b.CheckInvariants();
}

// Regression (conformance AlignmentOnFreshBackend/buddy): Allocate searched
// only blocks of order >= max(ceil_log2 n, a), so a request whose alignment
// exceeds every free block failed although a smaller free block started on
// a suitably aligned frame. The fallback serves it from that block and gives
// its unused tail back.
TEST(BuddyBackendTest, AlignedRequestFitsInASmallerBlockWhoseStartIsAligned) {
  constexpr uint64_t kM = uint64_t{1} << 20;
  constexpr uint64_t kT = uint64_t{1} << 40;
  constexpr uint64_t kNone = ~uint64_t{0};
  struct Case {
    uint64_t first, pages;
    unsigned align;
    uint64_t n;
    uint64_t want;  // kNone: must fail.
  };
  std::vector<Case> cases = {
      // [1, 5001): frame 4096 heads an order-9 block.
      {1, 5000, 12, 1, 4096},
      {1, 5000, 12, 3, 4096},
      {1, 5000, 12, 512, 4096},
      {1, 5000, 12, 513, kNone},
      {1, 5000, 13, 1, kNone},
      // The 1 GiB case: 256 MiB at frame 0x40000, largest block order 16;
      // a 2^30-byte alignment is order 18.
      {0x40000, 65536, 18, 1, 0x40000},
      {0x40000, 65536, 18, 65536, 0x40000},
      {0x40000, 65536, 19, 1, kNone},
      // [2^40, 2^40 + 4096): one block of order 12 at an order-40 frame.
      {kT, 4096, 41, 1, kNone},
      {kT, 4096, 63, 1, kNone},
  };
  for (unsigned a : {20u, 40u, 41u, 63u}) {
    // [0, 5000): frame 0 heads an order-12 block and is aligned to all.
    for (uint64_t n : {1, 3, 4096}) cases.push_back({0, 5000, a, n, 0});
    cases.push_back({0, 5000, a, 4097, kNone});
  }
  for (unsigned a : {7u, 8u, 9u, 10u, 11u, 12u, 20u}) {
    // [2^20 - 5, 2^20 + 95): frame 2^20 heads an order-6 block.
    for (uint64_t n : {1, 3, 64}) cases.push_back({kM - 5, 100, a, n, kM});
    cases.push_back({kM - 5, 100, a, 65, kNone});
  }
  cases.push_back({kM - 5, 100, 21, 1, kNone});
  for (unsigned a : {20u, 40u}) {
    for (uint64_t n : {1, 3, 4096}) cases.push_back({kT, 4096, a, n, kT});
  }

  for (const Case& c : cases) {
    SCOPED_TRACE(testing::Message() << "range [" << c.first << ", +" << c.pages << ") Allocate("
                                    << c.n << ", order " << c.align << ")");
    BuddyBackend b(Range(c.first, c.pages));
    const BackendStats fresh = b.Stats();
    std::vector<bool> used(c.pages, false);
    EXPECT_EQ(ModelCanServe(c.first, used, c.n, c.align), c.want != kNone);
    std::optional<FrameNumber> f = b.Allocate(PageCount(c.n), AlignOrder(c.align));
    if (c.want == kNone) {
      EXPECT_FALSE(f.has_value()) << *f;
      EXPECT_EQ(b.Stats(), fresh);
      EXPECT_TRUE(b.CheckInvariants().ok()) << b.CheckInvariants();
      continue;
    }
    ASSERT_EQ(f, FrameNumber(c.want));
    // Exactly n frames are charged; the rest of the block is free again.
    for (uint64_t x = c.want - c.first; x < c.want - c.first + c.n; ++x) used[x] = true;
    EXPECT_EQ(b.Stats().free_pages, PageCount(c.pages - c.n));
    ExpectSameFreeState(b.Stats(), CanonicalStats(c.first, used));
    EXPECT_TRUE(b.CheckInvariants().ok()) << b.CheckInvariants();
    ASSERT_TRUE(b.Free({*f, PageCount(c.n)}));
    EXPECT_EQ(b.Stats(), fresh);
    EXPECT_TRUE(b.CheckInvariants().ok()) << b.CheckInvariants();
    // Again, now through a parked hot block (single-block runs) or the
    // plain path, and a second request of the same kind finds nothing
    // aligned left unless the tail has another aligned head.
    f = b.Allocate(PageCount(c.n), AlignOrder(c.align));
    ASSERT_EQ(f, FrameNumber(c.want));
    ASSERT_TRUE(b.Free({*f, PageCount(c.n)}));
    EXPECT_EQ(b.Stats(), fresh);
  }
}

// The fallback decides on the coalesced state: a parked hot block is merged
// first, and re-parked unchanged when the fallback finds nothing.
TEST(BuddyBackendTest, AlignedHeadFallbackWithParkedHotBlock) {
  // [0, 5000): blocks of orders 12 (at 0), 9, 8, 7 and 3.
  BuddyBackend b(Range(0, 5000));
  const BackendStats fresh = b.Stats();
  std::optional<FrameNumber> f = b.Allocate(PageCount(1), AlignOrder(12));
  ASSERT_EQ(f, FrameNumber(0));
  ASSERT_TRUE(b.Free({*f, PageCount(1)}));  // Parked: the order-12 block stays split.
  EXPECT_EQ(b.Stats(), fresh);
  // Frame 0 heads the order-12 block of the coalesced state.
  f = b.Allocate(PageCount(1), AlignOrder(63));
  ASSERT_EQ(f, FrameNumber(0));
  EXPECT_TRUE(b.CheckInvariants().ok()) << b.CheckInvariants();
  std::optional<FrameNumber> g = b.Allocate(PageCount(1), AlignOrder(63));
  EXPECT_FALSE(g.has_value()) << *g;  // Frame 0 is taken, 2^63 is not in range.
  g = b.Allocate(PageCount(2), AlignOrder(12));
  ASSERT_EQ(g, FrameNumber(4096));  // Order-9 block at 4096.
  ASSERT_TRUE(b.Free({*g, PageCount(2)}));
  ASSERT_TRUE(b.Free({*f, PageCount(1)}));  // Parked again.
  EXPECT_EQ(b.Stats(), fresh);
  EXPECT_TRUE(b.CheckInvariants().ok()) << b.CheckInvariants();

  // A failing fallback with a parked block: [3, 4099) holds no multiple of
  // 2^13, but blocks of order >= ceil_log2(1) exist.
  BuddyBackend c(Range(3, 4096));
  f = c.Allocate(PageCount(1), AlignOrder(0));
  ASSERT_EQ(f, FrameNumber(3));
  std::optional<FrameNumber> big = c.Allocate(PageCount(8), AlignOrder(3));
  ASSERT_TRUE(big.has_value());
  std::optional<FrameNumber> h = c.Allocate(PageCount(4), AlignOrder(0));
  ASSERT_TRUE(h.has_value());
  ASSERT_TRUE(c.Free({*h, PageCount(4)}));  // Parked.
  const BackendStats parked = c.Stats();
  for (unsigned a : {13u, 20u, 63u}) {
    EXPECT_FALSE(c.Allocate(PageCount(1), AlignOrder(a)).has_value()) << a;
    EXPECT_FALSE(c.Allocate(PageCount(4), AlignOrder(a)).has_value()) << a;
    EXPECT_EQ(c.Stats(), parked);
    EXPECT_TRUE(c.CheckInvariants().ok()) << c.CheckInvariants();
  }
  // The parked block is still there and handed out again.
  EXPECT_EQ(c.Allocate(PageCount(4), AlignOrder(0)), h);
  ASSERT_TRUE(c.Free({*h, PageCount(4)}));
  ASSERT_TRUE(c.Free({*big, PageCount(8)}));
  ASSERT_TRUE(c.Free({*f, PageCount(1)}));
  EXPECT_EQ(c.Stats(), BuddyBackend(Range(3, 4096)).Stats());
  EXPECT_TRUE(c.CheckInvariants().ok()) << c.CheckInvariants();
}

// The fallback scans bitmaps word-parallel (alignment gap < 6 orders), by
// candidate, or by leapfrogging (larger gaps); all three must find the same
// aligned heads as the model, lowest order first, then lowest address, in a
// pool full of small misaligned free blocks.
TEST(BuddyBackendTest, AlignedHeadFallbackScansFragmentedBitmaps) {
  const uint64_t first = 0, pages = uint64_t{1} << 16;
  BuddyBackend b(Range(first, pages));
  std::vector<bool> used(pages, false);
  // Occupy every even frame: free order-0 blocks at every odd frame, none
  // aligned to anything.
  std::vector<PageRun> live;
  for (uint64_t x = 0; x < pages; x += 2) {
    std::optional<FrameNumber> f = b.Allocate(PageCount(1), AlignOrder(1));
    ASSERT_TRUE(f.has_value());
    live.push_back({*f, PageCount(1)});
  }
  for (const PageRun& r : live) used[r.first.value() - first] = true;
  for (uint64_t x = 0; x < pages; ++x) ASSERT_EQ(used[x], x % 2 == 0) << x;
  EXPECT_FALSE(b.Allocate(PageCount(1), AlignOrder(1)).has_value());
  // Free a few even frames; each merges with its odd neighbour. The free
  // blocks become: order 0 at the other odd frames, order 1 at 2 and 34818
  // (aligned to order 1 only; 2 lies under another word of summary level 1
  // than the rest), 36864 (= 9 * 2^12) and 40960 (= 5 * 2^13), order 2 at
  // 32768 (= 2^15).
  auto free_frame = [&](uint64_t f) {
    ASSERT_TRUE(b.Free({FrameNumber(f), PageCount(1)}));
    used[f - first] = false;
  };
  for (uint64_t f : {40960, 36864, 34818, 32768, 32770, 2}) free_frame(f);
  EXPECT_TRUE(b.CheckInvariants().ok()) << b.CheckInvariants();
  ExpectSameFreeState(b.Stats(), CanonicalStats(first, used));
  constexpr uint64_t kNone = ~uint64_t{0};
  const uint64_t wants[][3] = {
      // {n, align, frame}
      {1, 1, 2},       // Plain: smallest order >= 1, lowest address.
      {1, 2, 32768},   {2, 2, 32768},  // Plain: order 2.
      // Order 0 word-parallel (nothing aligned), then order 1: the words of
      // 2 and 34818 have no aligned bit, the next non-empty word has 36864.
      {1, 3, 36864},   {2, 3, 36864},   {1, 5, 36864},
      // Order 0 by direct candidates (nothing), order 1 by leapfrog: lowest
      // aligned head first, hopping over 2, 34818 (and 36864 for order 13);
      // the smaller order wins over the lower address of 32768.
      {1, 12, 36864},  {1, 13, 40960},
      {1, 14, 32768},  {2, 15, 32768}, {3, 15, 32768}, {4, 13, 32768},
      {5, 0, kNone},   {1, 16, kNone}, {1, 63, kNone},
  };
  for (const auto& w : wants) {
    SCOPED_TRACE(testing::Message() << "Allocate(" << w[0] << ", order " << w[1] << ")");
    const BackendStats before = b.Stats();
    std::optional<FrameNumber> f = b.Allocate(PageCount(w[0]), AlignOrder(w[1]));
    if (w[2] == kNone) {
      EXPECT_FALSE(f.has_value()) << *f;
      EXPECT_EQ(b.Stats(), before);
      continue;
    }
    ASSERT_EQ(f, FrameNumber(w[2]));
    EXPECT_TRUE(b.CheckInvariants().ok()) << b.CheckInvariants();
    ASSERT_TRUE(b.Free({*f, PageCount(w[0])}));
    EXPECT_EQ(b.Stats(), before);
  }
  for (unsigned a = 0; a < 20; ++a) {
    for (uint64_t n : {1, 2, 3, 4, 5}) {
      SCOPED_TRACE(testing::Message() << "Allocate(" << n << ", order " << a << ")");
      const BackendStats before = b.Stats();
      std::optional<FrameNumber> f = b.Allocate(PageCount(n), AlignOrder(a));
      ASSERT_EQ(f.has_value(), ModelCanServe(first, used, n, a));
      if (!f) {
        ASSERT_EQ(b.Stats(), before);
        continue;
      }
      ASSERT_TRUE(f->IsAligned(AlignOrder(a)));
      for (uint64_t x = f->value(); x < f->value() + n; ++x) ASSERT_FALSE(used[x - first]) << x;
      ASSERT_TRUE(b.Free({*f, PageCount(n)}));
      ASSERT_EQ(b.Stats(), before);
    }
  }
  EXPECT_TRUE(b.CheckInvariants().ok()) << b.CheckInvariants();
}

// Drives a backend with random operations against a frame-level model.
// With `wide_alignments`, a third of the requests ask for alignments up to
// order 23 and some for orders 40..63 (mostly served by, or failing in, the
// aligned-head fallback).
void RandomizedAgainstModel(uint64_t seed, uint64_t first, uint64_t pages, int ops,
                            bool wide_alignments = false) {
  SCOPED_TRACE(testing::Message() << "seed=" << seed << " first=" << first
                                  << " pages=" << pages << " wide=" << wide_alignments);
  std::mt19937_64 rng(seed);
  BuddyBackend b(Range(first, pages));
  const BackendStats fresh = b.Stats();
  std::vector<bool> used(pages, false);
  uint64_t used_pages = 0;
  std::vector<PageRun> live;
  auto do_free = [&](size_t i) {
    const PageRun r = live[i];
    ASSERT_TRUE(b.Free(r)) << r;
    for (uint64_t x = r.first.value() - first; x < r.end().value() - first; ++x) used[x] = false;
    used_pages -= r.pages.value();
    live[i] = live.back();
    live.pop_back();
  };
  for (int op = 0; op < ops; ++op) {
    SCOPED_TRACE(testing::Message() << "op=" << op);
    const uint64_t dice = rng() % 100;
    if (dice < 55 || live.empty()) {
      const uint64_t n = rng() % 4 == 0 ? 1 + rng() % 600 : 1 + rng() % 16;
      unsigned a = rng() % 3 == 0 ? static_cast<unsigned>(rng() % 11) : 0;
      if (wide_alignments) {
        const uint64_t dice = rng() % 12;
        if (dice < 4) a = static_cast<unsigned>(rng() % 24);
        if (dice == 4) a = 40 + static_cast<unsigned>(rng() % 24);
      }
      const BackendStats before = b.Stats();
      std::optional<FrameNumber> f = b.Allocate(PageCount(n), AlignOrder(a));
      if (!f) {
        // Only legal when no free block holds an aligned start with n
        // frames of the block behind it.
        ASSERT_FALSE(ModelCanServe(first, used, n, a)) << "Allocate(" << n << ", " << a << ")";
        ASSERT_EQ(b.Stats(), before);
        continue;
      }
      ASSERT_TRUE(f->IsAligned(AlignOrder(a))) << *f << " align=" << a;
      ASSERT_GE(f->value(), first);
      ASSERT_LE(f->value() + n, first + pages);
      for (uint64_t x = f->value() - first; x < f->value() - first + n; ++x) {
        ASSERT_FALSE(used[x]) << "overlap at frame " << first + x;
        used[x] = true;
      }
      used_pages += n;
      live.push_back({*f, PageCount(n)});
      // Sometimes free it at once (exercises the parked hot block).
      if (rng() % 8 == 0) do_free(live.size() - 1);
    } else if (dice < 95) {
      do_free(rng() % live.size());
    } else {
      // A wrong free: a part of, or more than, a live run, or a double free.
      const PageRun r = live[rng() % live.size()];
      const BackendStats before = b.Stats();
      PageRun bad = r;
      switch (rng() % 3) {
        case 0:
          bad.pages = PageCount(r.pages.value() + 1 + rng() % 4);
          break;
        case 1:
          if (r.pages.value() == 1) continue;
          bad.pages = PageCount(1 + rng() % (r.pages.value() - 1));
          if (rng() % 2) bad.first = r.end() - bad.pages;
          break;
        default:
          bad.first = FrameNumber(first + rng() % pages);
          if (!used[bad.first.value() - first]) bad.pages = PageCount(1);
          break;
      }
      bool is_live = false;
      for (const PageRun& l : live) is_live |= l == bad;
      if (is_live) continue;
      ASSERT_FALSE(b.Free(bad)) << bad << " live run " << r;
      ASSERT_EQ(b.Stats(), before);
    }
    ASSERT_EQ(b.Stats().free_pages, PageCount(pages - used_pages));
    if (op % 61 == 0) {
      ASSERT_TRUE(b.CheckInvariants().ok()) << b.CheckInvariants();
      ExpectSameFreeState(b.Stats(), CanonicalStats(first, used));
      // largest_free_run is exactly the largest satisfiable request.
      const uint64_t largest = b.Stats().largest_free_run.value();
      const BackendStats before = b.Stats();
      ASSERT_FALSE(b.Allocate(PageCount(largest + 1), AlignOrder(0)).has_value());
      if (largest > 0) {
        std::optional<FrameNumber> f = b.Allocate(PageCount(largest), AlignOrder(0));
        ASSERT_TRUE(f.has_value());
        ASSERT_TRUE(b.Free({*f, PageCount(largest)}));
      }
      ExpectSameFreeState(b.Stats(), before);
    }
  }
  ASSERT_TRUE(b.CheckInvariants().ok()) << b.CheckInvariants();
  std::shuffle(live.begin(), live.end(), rng);
  while (!live.empty()) do_free(live.size() - 1);
  EXPECT_EQ(b.Stats(), fresh);
  EXPECT_TRUE(b.CheckInvariants().ok()) << b.CheckInvariants();
}

TEST(BuddyBackendTest, RandomizedAgainstShadowModel) {
  RandomizedAgainstModel(1, 0, 1 << 15, 25000);
  RandomizedAgainstModel(2, 1000003, 50000, 25000);
  RandomizedAgainstModel(3, 511, 7777, 15000);  // Often exhausted.
  RandomizedAgainstModel(4, (uint64_t{1} << 40) + 37, 40000, 15000);
  RandomizedAgainstModel(5, 4096 * 3 + 1, 2000, 10000);  // Tiny and crowded.
}

// The aligned-head fallback under load: pools whose frames include highly
// aligned ones (frame 0, 2^20, 2^40, the 1 GiB frame 0x40000) next to
// ranges that hold none, with many requests aligned beyond every block.
TEST(BuddyBackendTest, RandomizedWideAlignmentsAgainstShadowModel) {
  RandomizedAgainstModel(11, 0, 3000, 15000, true);
  RandomizedAgainstModel(12, (uint64_t{1} << 20) - 700, 5000, 15000, true);
  RandomizedAgainstModel(13, (uint64_t{1} << 40) + 1, 20000, 15000, true);
  RandomizedAgainstModel(14, 0x40000, 65536, 15000, true);
  RandomizedAgainstModel(15, 0x12345, 9000, 10000, true);  // No multiple of 2^17.
}

TEST(BuddyBackendTest, LargeRangeConstructsQuickly) {
  const uint64_t pages = uint64_t{1} << 24;  // 64 GiB.
  const auto start = std::chrono::steady_clock::now();
  BuddyBackend b(Range(pages, pages));
  const auto elapsed = std::chrono::steady_clock::now() - start;
  EXPECT_LT(elapsed, std::chrono::milliseconds(100));
  const BackendStats s = b.Stats();
  EXPECT_EQ(s.free_pages, PageCount(pages));
  EXPECT_EQ(s.largest_free_run, PageCount(pages));
  EXPECT_EQ(s.free_superpages, pages / 512);
  EXPECT_LT(s.metadata_bytes, pages * 3 / 2);  // About 1.25 bytes per frame.
  std::optional<FrameNumber> f = b.Allocate(PageCount(1), AlignOrder(0));
  std::optional<FrameNumber> g = b.Allocate(PageCount(3000), AlignOrder(20));
  ASSERT_TRUE(f && g);
  EXPECT_TRUE(g->IsAligned(AlignOrder(20)));
  EXPECT_TRUE(b.CheckInvariants().ok()) << b.CheckInvariants();
  ASSERT_TRUE(b.Free({*g, PageCount(3000)}));
  ASSERT_TRUE(b.Free({*f, PageCount(1)}));
  EXPECT_EQ(b.Stats(), BuddyBackend(Range(pages, pages)).Stats());
}

TEST(BuddyBackendTest, RegisteredAsBuddy) {
  absl::StatusOr<std::unique_ptr<PageBackend>> b =
      BackendRegistry::Global().Create("buddy", BackendOptions{Range(5, 1000)});
  ASSERT_TRUE(b.ok()) << b.status();
  EXPECT_EQ((*b)->name(), "buddy");
  EXPECT_EQ((*b)->range(), Range(5, 1000));
  std::optional<FrameNumber> f = (*b)->Allocate(PageCount(10), AlignOrder(3));
  ASSERT_TRUE(f.has_value());
  EXPECT_TRUE((*b)->Free({*f, PageCount(10)}));
  EXPECT_TRUE((*b)->CheckInvariants().ok());
}

}  // namespace
}  // namespace l4re_ma
