// Tests for RegionBackend: best-fit choice, aligned carving, coalescing,
// exhaustion, odd ranges, rejected frees, hot runs, very long runs, seeded
// randomized runs against a std::vector<bool> shadow model (small ranges,
// exact placement) and against a std::map model of the free extents (large
// ranges, several radix levels).
#include "backends/region/region_backend.h"

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <cstdlib>
#include <map>
#include <memory>
#include <optional>
#include <random>
#include <set>
#include <string>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "core/backend_registry.h"
#include "core/types.h"
#include "gtest/gtest.h"

namespace l4re_ma {
namespace {

constexpr uint64_t kSuperPagePages = uint64_t{1} << kSuperPageOrder;

PageRun Span(uint64_t first, uint64_t pages) {
  return PageRun{FrameNumber(first), PageCount(pages)};
}

std::optional<uint64_t> Alloc(RegionBackend& b, uint64_t pages, unsigned order = 0) {
  std::optional<FrameNumber> f = b.Allocate(PageCount(pages), AlignOrder(order));
  if (!f) return std::nullopt;
  return f->value();
}

// Lays out a fresh backend as consecutive segments, {pages, free?} each,
// that fill the range; returns the first frame of each. Free segments must
// not be adjacent (they would merge). Unaligned runs come from the top of an
// extent, so allocating the segments from the last to the first fills the
// range downwards.
std::vector<uint64_t> Layout(RegionBackend& b,
                             const std::vector<std::pair<uint64_t, bool>>& segments) {
  std::vector<uint64_t> firsts(segments.size());
  uint64_t expect = b.range().end().value();
  for (size_t i = segments.size(); i-- > 0;) {
    expect -= segments[i].first;
    EXPECT_EQ(Alloc(b, segments[i].first), expect) << "layout does not fill the range";
    firsts[i] = expect;
  }
  EXPECT_EQ(expect, b.range().first.value()) << "layout does not fill the range";
  for (size_t i = 0; i < segments.size(); ++i) {
    if (segments[i].second) {
      EXPECT_TRUE(b.Free(Span(firsts[i], segments[i].first)));
    }
  }
  EXPECT_TRUE(b.CheckInvariants().ok());
  return firsts;
}

// The reference: one bool per frame of the range.
class Shadow {
 public:
  explicit Shadow(PageRun range) : first_(range.first.value()), free_(range.pages.value(), true) {}

  bool AllFree(uint64_t first, uint64_t pages) const {
    if (first < first_ || first - first_ + pages > free_.size()) return false;
    for (uint64_t i = first - first_; i < first - first_ + pages; ++i) {
      if (!free_[i]) return false;
    }
    return true;
  }
  void Set(uint64_t first, uint64_t pages, bool free) {
    for (uint64_t i = first - first_; i < first - first_ + pages; ++i) free_[i] = free;
  }

  // Maximal free runs, in address order.
  std::vector<PageRun> FreeRuns() const {
    std::vector<PageRun> runs;
    uint64_t i = 0;
    while (i < free_.size()) {
      if (!free_[i]) {
        ++i;
        continue;
      }
      uint64_t j = i;
      while (j < free_.size() && free_[j]) ++j;
      runs.push_back(Span(first_ + i, j - i));
      i = j;
    }
    return runs;
  }

  // What Stats() must report (all fields but total and metadata).
  BackendStats Expected() const {
    BackendStats s;
    uint64_t free = 0;
    for (const PageRun& r : FreeRuns()) {
      free += r.pages.value();
      s.largest_free_run = std::max(s.largest_free_run, r.pages);
      ++s.free_runs;
      const uint64_t lo = (r.first.value() + kSuperPagePages - 1) / kSuperPagePages;
      const uint64_t hi = r.end().value() / kSuperPagePages;
      if (hi > lo) s.free_superpages += hi - lo;
    }
    s.free_pages = PageCount(free);
    return s;
  }

  // Checks that RegionBackend put an n-page run aligned to 2^order at
  // `start`: in a best-fit extent (one of the smallest that can hold it),
  // or, for aligned requests whose first kMaxAlignedProbes candidates may
  // all fail, in one of the smallest extents that are sure to fit; and
  // inside it at the documented place (the highest aligned frame, unless
  // the extent's first frame is aligned and the top is not). Among extents
  // of equal size any may be chosen (exact bins are LIFO lists, the AVL
  // tree and the exhaustive search go by address), so candidates are
  // probed in size order with ties in an unspecified order: the probes
  // reach the best fit after c_lt to c_lt + c_eq failures (c_lt: candidates
  // below the best-fit size that do not fit, c_eq: those of that size that
  // do not fit). Returns an empty string or what is wrong.
  std::string CheckPlacement(uint64_t start, uint64_t n, unsigned order) const {
    const std::vector<PageRun> runs = FreeRuns();
    const uint64_t mask = (uint64_t{1} << order) - 1;
    const uint64_t sure = n + mask;
    auto fits = [&](const PageRun& r) {
      return r.pages.value() >= n && ((r.end().value() - n) & ~mask) >= r.first.value();
    };
    auto place = [&](const PageRun& r) {
      const uint64_t top = (r.end().value() - n) & ~mask;
      return top + n != r.end().value() && (r.first.value() & mask) == 0 ? r.first.value()
                                                                          : top;
    };
    std::optional<uint64_t> best_size;  // the smallest fitting extent
    std::optional<uint64_t> sure_size;  // the smallest extent sure to fit
    for (const PageRun& r : runs) {
      const uint64_t pages = r.pages.value();
      if (fits(r) && (!best_size || pages < *best_size)) best_size = pages;
      if (pages >= sure && (!sure_size || pages < *sure_size)) sure_size = pages;
    }
    if (!best_size) return "no extent fits, yet Allocate succeeded";
    int c_lt = 0;
    int c_eq = 0;
    for (const PageRun& r : runs) {
      const uint64_t pages = r.pages.value();
      if (pages < n || fits(r)) continue;
      if (pages < *best_size) ++c_lt;
      if (pages == *best_size) ++c_eq;
    }
    const int budget = RegionBackend::kMaxAlignedProbes;
    const bool may_best = c_lt < budget || !sure_size;
    const bool may_sure = sure_size && c_lt + c_eq >= budget;
    for (const PageRun& r : runs) {
      const bool best = may_best && fits(r) && r.pages.value() == *best_size;
      const bool sure_fit = may_sure && r.pages.value() == *sure_size;
      if ((best || sure_fit) && place(r) == start) return "";
    }
    return absl::StrCat("got frame ", start, ", expected a run placed in a free run of ",
                        may_best ? absl::StrCat(*best_size, " pages (best fit)") : "",
                        may_best && may_sure ? " or " : "",
                        may_sure ? absl::StrCat(*sure_size, " pages (sure to fit)") : "");
  }

  // Whether any free run of `pages` pages starts on a multiple of 2^order.
  bool AlignedRunExists(uint64_t pages, unsigned order) const {
    const uint64_t align = uint64_t{1} << order;
    for (const PageRun& r : FreeRuns()) {
      const uint64_t start = (r.first.value() + align - 1) / align * align;
      if (start + pages <= r.end().value()) return true;
    }
    return false;
  }

 private:
  uint64_t first_;
  std::vector<bool> free_;
};

void ExpectStatsMatch(const RegionBackend& b, const Shadow& shadow) {
  const BackendStats got = b.Stats();
  const BackendStats want = shadow.Expected();
  EXPECT_EQ(got.total_pages, b.range().pages);
  EXPECT_EQ(got.free_pages, want.free_pages);
  EXPECT_EQ(got.largest_free_run, want.largest_free_run);
  EXPECT_EQ(got.free_runs, want.free_runs);
  EXPECT_EQ(got.free_superpages, want.free_superpages);
}

TEST(RegionBackendTest, NameAndRange) {
  RegionBackend b(Span(100, 50));
  EXPECT_EQ(b.name(), "region");
  EXPECT_EQ(b.range(), Span(100, 50));
}

TEST(RegionBackendTest, FreshStats) {
  RegionBackend b(Span(0, 4096));
  const BackendStats s = b.Stats();
  EXPECT_EQ(s.total_pages, PageCount(4096));
  EXPECT_EQ(s.free_pages, PageCount(4096));
  EXPECT_EQ(s.largest_free_run, PageCount(4096));
  EXPECT_EQ(s.free_runs, 1u);
  EXPECT_EQ(s.free_superpages, 8u);
  EXPECT_GT(s.metadata_bytes, 0u);
  EXPECT_TRUE(b.CheckInvariants().ok());
}

TEST(RegionBackendTest, OddRangeCountsOnlyWholeSuperpages) {
  // Frames 1000003 .. 1000003 + 7777: superpages start at 1000448, 1000960,
  // ..., 1007104; the last one fully inside ends at 1007616 <= 1007780.
  RegionBackend b(Span(1000003, 7777));
  const BackendStats s = b.Stats();
  EXPECT_EQ(s.free_superpages, (1007780 / 512) - (1000003 + 511) / 512);
  EXPECT_EQ(s.free_superpages, 14u);
  EXPECT_EQ(Alloc(b, 1), 1007779u);     // the top frame
  EXPECT_EQ(Alloc(b, 1, 9), 1007616u);  // the highest superpage-aligned frame
  EXPECT_EQ(Alloc(b, 7777), std::nullopt);
  EXPECT_TRUE(b.CheckInvariants().ok());
}

TEST(RegionBackendTest, SinglePageRange) {
  RegionBackend b(Span(12345, 1));
  EXPECT_EQ(b.Stats().free_superpages, 0u);
  EXPECT_EQ(Alloc(b, 2), std::nullopt);
  EXPECT_EQ(Alloc(b, 1, 1), std::nullopt);  // 12345 is odd
  EXPECT_EQ(Alloc(b, 1), 12345u);
  EXPECT_EQ(Alloc(b, 1), std::nullopt);
  EXPECT_TRUE(b.Free(Span(12345, 1)));
  EXPECT_EQ(b.Stats(), RegionBackend(Span(12345, 1)).Stats());
}

TEST(RegionBackendTest, EmptyRangeNeverAllocates) {
  RegionBackend b(Span(7, 0));
  EXPECT_EQ(Alloc(b, 1), std::nullopt);
  EXPECT_FALSE(b.Free(Span(7, 1)));
  EXPECT_EQ(b.Stats().free_runs, 0u);
  EXPECT_TRUE(b.CheckInvariants().ok());
}

TEST(RegionBackendTest, ZeroPagesIsRejected) {
  RegionBackend b(Span(0, 64));
  const BackendStats before = b.Stats();
  EXPECT_EQ(Alloc(b, 0), std::nullopt);
  EXPECT_EQ(b.Stats(), before);
}

TEST(RegionBackendTest, BestFitTakesSmallestExtent) {
  RegionBackend b(Span(0, 100));
  // Free extents of 10 (frame 0), 4 (frame 11) and 7 (frame 16).
  Layout(b, {{10, true}, {1, false}, {4, true}, {1, false}, {7, true}, {77, false}});
  EXPECT_EQ(b.Stats().free_runs, 3u);

  EXPECT_EQ(Alloc(b, 4), 11u);  // exact fit
  EXPECT_TRUE(b.Free(Span(11, 4)));
  EXPECT_EQ(Alloc(b, 5), 18u);  // 7 is the smallest that holds 5; its top
  EXPECT_EQ(b.Stats().free_runs, 3u);  // the 2-page rest [16, 18) stays free
  EXPECT_TRUE(b.Free(Span(18, 5)));
  EXPECT_EQ(Alloc(b, 8), 2u);
  EXPECT_TRUE(b.Free(Span(2, 8)));
  EXPECT_EQ(Alloc(b, 11), std::nullopt);
  EXPECT_EQ(b.Stats().largest_free_run, PageCount(10));
  EXPECT_TRUE(b.CheckInvariants().ok());
}

// Among extents of the same size the choice is unspecified: exact-size bins
// are LIFO lists, which saves keeping them in address order on every update
// (measured at about a fifth of the time of an operation). Whichever equal
// extent is chosen, its top is carved and the rest stays free.
TEST(RegionBackendTest, BestFitTiesTakeOneOfTheEqualExtents) {
  RegionBackend b(Span(0, 100));
  Layout(b, {{6, false}, {4, true}, {1, false}, {4, true}, {1, false}, {4, true}, {80, false}});
  const std::optional<uint64_t> three = Alloc(b, 3);  // one of the three, its top
  ASSERT_TRUE(three == 7u || three == 12u || three == 17u) << *three;
  std::vector<uint64_t> fours;
  for (int i = 0; i < 2; ++i) {
    const std::optional<uint64_t> f = Alloc(b, 4);  // the other two, whole
    ASSERT_TRUE(f.has_value());
    fours.push_back(*f);
  }
  std::vector<uint64_t> all = {*three - 1, fours[0], fours[1]};
  std::sort(all.begin(), all.end());
  EXPECT_EQ(all, (std::vector<uint64_t>{6, 11, 16}));
  EXPECT_EQ(Alloc(b, 1), *three - 1);  // the 1-page rest of the first
  EXPECT_EQ(Alloc(b, 1), std::nullopt);
  EXPECT_TRUE(b.CheckInvariants().ok());
}

TEST(RegionBackendTest, AlignedCarvingKeepsHeadAndTailFree) {
  RegionBackend b(Span(0, 4096));
  Layout(b, {{3, false}, {4090, true}, {3, false}});  // free extent [3, 4093)
  const BackendStats fresh_layout = b.Stats();
  EXPECT_EQ(fresh_layout.free_superpages, 6u);  // 512 .. 3072

  // Neither end is aligned: the run goes at the highest aligned frame.
  EXPECT_EQ(Alloc(b, 16, 4), 4064u);
  BackendStats s = b.Stats();
  EXPECT_EQ(s.free_runs, 2u);  // head [3, 4064) and tail [4080, 4093)
  EXPECT_EQ(s.free_pages, PageCount(4090 - 16));
  EXPECT_EQ(s.largest_free_run, PageCount(4061));
  EXPECT_EQ(s.free_superpages, 6u);
  EXPECT_TRUE(b.CheckInvariants().ok());

  EXPECT_EQ(Alloc(b, 13), 4080u);  // the tail, an exact fit
  EXPECT_EQ(b.Stats().free_runs, 1u);
  EXPECT_EQ(Alloc(b, 512, 9), 3072u);  // head [3, 3072), tail [3584, 4064)
  s = b.Stats();
  EXPECT_EQ(s.free_runs, 2u);
  EXPECT_EQ(s.free_superpages, 5u);
  EXPECT_EQ(s.largest_free_run, PageCount(3069));
  EXPECT_TRUE(b.CheckInvariants().ok());

  EXPECT_TRUE(b.Free(Span(4064, 16)));
  EXPECT_TRUE(b.Free(Span(4080, 13)));
  EXPECT_TRUE(b.Free(Span(3072, 512)));
  EXPECT_EQ(b.Stats(), fresh_layout);
}

TEST(RegionBackendTest, AlignedCarvingDoesNotSplitAnExtentWithAnAlignedEnd) {
  RegionBackend b(Span(0, 1024));
  Layout(b, {{1021, true}, {3, false}});  // free extent [0, 1021)
  EXPECT_EQ(Alloc(b, 16, 4), 0u);  // the top (992) would leave a 13-page tail
  EXPECT_EQ(b.Stats().free_runs, 1u);
  EXPECT_EQ(Alloc(b, 5, 0), 1016u);  // free [16, 1016)
  EXPECT_EQ(Alloc(b, 8, 3), 1008u);  // the top is aligned: no split either
  EXPECT_EQ(b.Stats().free_runs, 1u);
  EXPECT_EQ(b.Stats().largest_free_run, PageCount(1008 - 16));
  EXPECT_TRUE(b.CheckInvariants().ok());
}

TEST(RegionBackendTest, AlignedRequestPrefersSmallestFittingExtent) {
  RegionBackend b(Span(0, 200));
  // [0,9) live, [9,19) free: 10 pages but no 8-aligned run of 8;
  // [19,24) live, [24,32) free: 8 pages at 24, a perfect fit;
  // [32,40) live, [40,200) free.
  Layout(b, {{9, false}, {10, true}, {5, false}, {8, true}, {8, false}, {160, true}});
  EXPECT_EQ(Alloc(b, 8, 3), 24u);
  EXPECT_EQ(Alloc(b, 8, 3), 192u);  // now only the large extent fits; its top
  EXPECT_EQ(b.Stats().free_runs, 2u);
  EXPECT_TRUE(b.CheckInvariants().ok());
}

TEST(RegionBackendTest, AlignedSearchPastTheProbeBudget) {
  // More non-fitting candidates than the probe budget, then one that fits,
  // and no extent large enough to be sure: the exhaustive fallback must
  // still find it. n = 4, order 3: 9-page extents at 8m + 1 cannot hold an
  // aligned run ([8m+8, 8m+12) > 8m+10), a 10-page extent at 8m + 4 can.
  const int kSmall = RegionBackend::kMaxAlignedProbes + 8;
  std::vector<std::pair<uint64_t, bool>> layout = {{1, false}};
  for (int i = 0; i < kSmall; ++i) {
    layout.push_back({9, true});  // at 16i + 1
    layout.push_back({7, false});
  }
  // Now at 16 * kSmall + 1: live up to 16 * kSmall + 4, then 10 free pages.
  layout.push_back({3, false});
  layout.push_back({10, true});
  const uint64_t fit_first = 16 * kSmall + 4;
  layout.push_back({2, false});
  const uint64_t total = fit_first + 10 + 2;
  RegionBackend b(Span(0, total));
  Layout(b, layout);
  EXPECT_EQ(b.Stats().largest_free_run, PageCount(10));
  EXPECT_EQ(Alloc(b, 4, 3), fit_first + 4);
  EXPECT_EQ(Alloc(b, 4, 3), std::nullopt);  // the 9-pagers never fit
  EXPECT_TRUE(b.CheckInvariants().ok());
}

TEST(RegionBackendTest, AlignedSearchByPosition) {
  // Many small free extents and few aligned frames (order 6): past the probe
  // budget, the exhaustive fallback walks the aligned frames of the range
  // instead of the extents. The 3-page extents at 4i + 1 hold no multiple
  // of 64; a 5-page extent at 448 and a 3-page one at 512 do.
  std::vector<std::pair<uint64_t, bool>> layout = {{1, false}};
  for (int i = 0; i < 100; ++i) {
    layout.push_back({3, true});
    layout.push_back({1, false});
  }
  layout.push_back({47, false});  // [401, 448)
  layout.push_back({5, true});    // [448, 453)
  layout.push_back({59, false});  // [453, 512)
  layout.push_back({3, true});    // [512, 515)
  layout.push_back({1, false});
  RegionBackend b(Span(0, 516));
  Layout(b, layout);
  EXPECT_EQ(Alloc(b, 4, 6), 448u);  // only the 5-page extent holds 4
  EXPECT_TRUE(b.Free(Span(448, 4)));
  EXPECT_EQ(Alloc(b, 3, 6), 512u);  // best fit: the 3-page extent
  EXPECT_EQ(Alloc(b, 3, 6), 448u);
  EXPECT_EQ(Alloc(b, 3, 6), std::nullopt);
  EXPECT_EQ(Alloc(b, 1, 6), std::nullopt);
  EXPECT_TRUE(b.CheckInvariants().ok());
}

TEST(RegionBackendTest, HugeAlignments) {
  RegionBackend odd(Span(1001, 5000));  // frames [1001, 6001)
  EXPECT_EQ(Alloc(odd, 1, 20), std::nullopt);
  EXPECT_EQ(Alloc(odd, 1, 63), std::nullopt);
  EXPECT_EQ(Alloc(odd, 4978, 10), std::nullopt);  // 1024 + 4978 > 6001
  EXPECT_EQ(Alloc(odd, 4977, 10), 1024u);
  EXPECT_TRUE(odd.Free(Span(1024, 4977)));
  EXPECT_EQ(Alloc(odd, 1, 10), 5120u);
  EXPECT_TRUE(odd.CheckInvariants().ok());

  RegionBackend zero(Span(0, 5000));
  EXPECT_EQ(Alloc(zero, 5, 63), 0u);
  EXPECT_EQ(Alloc(zero, 5, 63), std::nullopt);
  EXPECT_EQ(Alloc(zero, 5, 12), 4096u);
  EXPECT_TRUE(zero.CheckInvariants().ok());

  RegionBackend high(Span(uint64_t{1} << 40, 4096));
  EXPECT_EQ(Alloc(high, 4096, 40), uint64_t{1} << 40);
  EXPECT_TRUE(high.Free(Span(uint64_t{1} << 40, 4096)));
  EXPECT_EQ(Alloc(high, 1, 41), std::nullopt);
}

TEST(RegionBackendTest, CoalescesWithLeftRightAndBoth) {
  RegionBackend b(Span(0, 100));
  const std::vector<uint64_t> f =
      Layout(b, {{10, false}, {10, false}, {10, false}, {10, false}, {60, false}});
  EXPECT_EQ(b.Stats().free_runs, 0u);

  ASSERT_TRUE(b.Free(Span(f[0], 10)));
  ASSERT_TRUE(b.Free(Span(f[1], 10)));  // merges with the left neighbour
  EXPECT_EQ(b.Stats().free_runs, 1u);
  EXPECT_EQ(b.Stats().largest_free_run, PageCount(20));

  ASSERT_TRUE(b.Free(Span(f[4], 60)));
  ASSERT_TRUE(b.Free(Span(f[3], 10)));  // merges with the right neighbour
  EXPECT_EQ(b.Stats().free_runs, 2u);
  EXPECT_EQ(b.Stats().largest_free_run, PageCount(70));
  EXPECT_TRUE(b.CheckInvariants().ok());

  ASSERT_TRUE(b.Free(Span(f[2], 10)));  // merges with both
  EXPECT_EQ(b.Stats().free_runs, 1u);
  EXPECT_EQ(b.Stats(), RegionBackend(Span(0, 100)).Stats());
  EXPECT_EQ(Alloc(b, 100), 0u);
}

TEST(RegionBackendTest, Exhaustion) {
  RegionBackend b(Span(5, 37));
  EXPECT_EQ(Alloc(b, 38), std::nullopt);
  std::vector<uint64_t> got;
  while (std::optional<uint64_t> f = Alloc(b, 1)) got.push_back(*f);
  ASSERT_EQ(got.size(), 37u);
  for (uint64_t i = 0; i < 37; ++i) EXPECT_EQ(got[i], 41 - i);  // from the top
  BackendStats s = b.Stats();
  EXPECT_EQ(s.free_pages, PageCount(0));
  EXPECT_EQ(s.largest_free_run, PageCount(0));
  EXPECT_EQ(s.free_runs, 0u);
  EXPECT_EQ(Alloc(b, 1, 3), std::nullopt);
  EXPECT_TRUE(b.CheckInvariants().ok());
  for (uint64_t i = 0; i < 37; i += 2) EXPECT_TRUE(b.Free(Span(got[i], 1)));
  for (uint64_t i = 1; i < 37; i += 2) EXPECT_TRUE(b.Free(Span(got[i], 1)));
  EXPECT_EQ(b.Stats(), RegionBackend(Span(5, 37)).Stats());

  EXPECT_EQ(Alloc(b, 37), 5u);
  EXPECT_EQ(Alloc(b, 1), std::nullopt);
  EXPECT_TRUE(b.Free(Span(5, 37)));
  EXPECT_EQ(b.Stats(), RegionBackend(Span(5, 37)).Stats());
}

TEST(RegionBackendTest, BadFreesAreRejectedAndChangeNothing) {
  RegionBackend b(Span(1000, 100));
  // Live: a = [1000, 1010), c = [1020, 1030), d = [1030, 1040); free: the rest.
  const std::vector<uint64_t> f =
      Layout(b, {{10, false}, {10, true}, {10, false}, {10, false}, {60, true}});
  const BackendStats before = b.Stats();
  const std::vector<PageRun> bad = {
      Span(1010, 10),  // never allocated (a free extent)
      Span(1012, 3),   // inside a free extent
      Span(1000, 5),   // the first half of a
      Span(1005, 5),   // the second half of a
      Span(1002, 3),   // the middle of a
      Span(1000, 11),  // a plus a free page
      Span(1000, 20),  // a and the free extent after it
      Span(1005, 10),  // overlaps a and a free extent
      Span(1020, 20),  // c and d together
      Span(1020, 9),   // c, one page short
      Span(999, 10),   // below the range
      Span(1100, 1),   // past the range
      Span(1000, 0),   // empty
      Span(~uint64_t{0}, 1),
  };
  for (const PageRun& r : bad) {
    EXPECT_FALSE(b.Free(r)) << r;
    EXPECT_EQ(b.Stats(), before) << r;
    EXPECT_TRUE(b.CheckInvariants().ok()) << r;
  }
  EXPECT_TRUE(b.Free(Span(f[0], 10)));
  const BackendStats after = b.Stats();
  EXPECT_FALSE(b.Free(Span(f[0], 10)));  // double free
  EXPECT_FALSE(b.Free(Span(f[0], 20)));  // the merged extent
  EXPECT_EQ(b.Stats(), after);
  EXPECT_TRUE(b.Free(Span(f[2], 10)));
  EXPECT_TRUE(b.Free(Span(f[3], 10)));
  EXPECT_FALSE(b.Free(Span(f[3], 10)));
  EXPECT_EQ(b.Stats(), RegionBackend(Span(1000, 100)).Stats());
}

// A seeded random sequence of allocations (1..max_pages pages, orders
// 0..10) and frees against the shadow model; every result and every stat is
// checked. Small max_pages makes thousands of small extents, which drives
// aligned requests past the probe budget into the exhaustive search; large
// max_pages keeps many extents above kExactBinPages, in the AVL tree.
// REGION_TEST_SEED=<n> replays one seed.
struct RandomParams {
  uint64_t seed;
  uint64_t max_pages;
};

class RegionRandomTest : public ::testing::TestWithParam<RandomParams> {};

TEST_P(RegionRandomTest, MatchesShadowModel) {
  uint64_t seed = GetParam().seed;
  const uint64_t max_pages = GetParam().max_pages;
  if (const char* env = std::getenv("REGION_TEST_SEED")) seed = std::strtoull(env, nullptr, 10);
  SCOPED_TRACE(absl::StrCat("seed ", seed, " (replay with REGION_TEST_SEED=", seed, ")"));
  std::mt19937_64 rng(seed);

  // An odd range: unaligned start, unaligned length, a few superpages.
  const PageRun range = Span(777 + (seed % 7), 30011);
  RegionBackend b(range);
  Shadow shadow(range);
  std::vector<PageRun> live;
  const int kOps = 4000;
  for (int op = 0; op < kOps; ++op) {
    // Phases of filling and draining so that occupancy sweeps 0..100 %.
    const bool filling = (op / 500) % 2 == 0;
    const int roll = static_cast<int>(rng() % 100);
    if (roll < 3 && !live.empty()) {
      // A bad free: a run that is not exactly live.
      const PageRun& r = live[rng() % live.size()];
      PageRun bad = r;
      switch (rng() % 4) {
        case 0: bad.pages = r.pages + PageCount(1); break;
        case 1: bad.first = r.first + PageCount(1); bad.pages = PageCount(1); break;
        case 2: bad.pages = PageCount(r.pages.value() > 1 ? r.pages.value() - 1 : 2); break;
        default: bad.first = FrameNumber(r.first.value() - 1); break;
      }
      // Next to a 1-page run, a shifted run can be another live run.
      if (std::find(live.begin(), live.end(), bad) != live.end()) continue;
      const BackendStats before = b.Stats();
      ASSERT_FALSE(b.Free(bad)) << "op " << op << " " << bad;
      ASSERT_EQ(b.Stats(), before) << "op " << op;
    } else if (live.empty() || roll < (filling ? 75 : 30)) {
      const uint64_t pages = 1 + rng() % max_pages;
      const unsigned order = rng() % 2 == 0 ? 0 : static_cast<unsigned>(rng() % 11);
      const std::optional<uint64_t> f = Alloc(b, pages, order);
      if (!f) {
        ASSERT_FALSE(shadow.AlignedRunExists(pages, order))
            << "op " << op << ": Allocate(" << pages << ", " << order << ") failed";
      } else {
        ASSERT_TRUE(FrameNumber(*f).IsAligned(AlignOrder(order))) << "op " << op;
        ASSERT_TRUE(shadow.AllFree(*f, pages)) << "op " << op << ": overlap at " << *f;
        ASSERT_EQ(shadow.CheckPlacement(*f, pages, order), "")
            << "op " << op << ": Allocate(" << pages << ", " << order << ")";
        shadow.Set(*f, pages, false);
        live.push_back(Span(*f, pages));
      }
    } else {
      const size_t i = rng() % live.size();
      ASSERT_TRUE(b.Free(live[i])) << "op " << op << " " << live[i];
      shadow.Set(live[i].first.value(), live[i].pages.value(), true);
      live[i] = live.back();
      live.pop_back();
    }
    ExpectStatsMatch(b, shadow);
    if (op % 16 == 0) {
      ASSERT_TRUE(b.CheckInvariants().ok()) << b.CheckInvariants();
    }
    if (::testing::Test::HasFailure()) FAIL() << "stopped at op " << op;
  }
  ASSERT_TRUE(b.CheckInvariants().ok()) << b.CheckInvariants();

  std::shuffle(live.begin(), live.end(), rng);
  for (const PageRun& r : live) ASSERT_TRUE(b.Free(r)) << r;
  EXPECT_EQ(b.Stats(), RegionBackend(range).Stats());
  EXPECT_TRUE(b.CheckInvariants().ok());
}

INSTANTIATE_TEST_SUITE_P(Seeds, RegionRandomTest,
                         ::testing::Values(RandomParams{1, 600}, RandomParams{42, 600},
                                           RandomParams{20240611, 600}, RandomParams{7, 24},
                                           RandomParams{99, 3000}));

// A run freed right after its allocation is parked unmerged and handed out
// again by the next request of its size; every other call merges it first.
// None of that may show: Stats() and all answers are those of the merged
// state.
TEST(RegionBackendTest, HotRunIsParkedInvisibly) {
  const PageRun range = Span(1000, 5000);
  RegionBackend b(range);
  const BackendStats fresh = b.Stats();
  // Free [1000, 3000) and [3100, 5995); live [3000, 3100) and [5995, 6000).
  const std::vector<uint64_t> f =
      Layout(b, {{2000, true}, {100, false}, {2895, true}, {5, false}});
  const BackendStats before = b.Stats();

  EXPECT_EQ(Alloc(b, 7), 2993u);  // best fit: the smaller extent, its top
  const BackendStats allocated = b.Stats();
  ASSERT_TRUE(b.Free(Span(2993, 7)));  // parked
  EXPECT_EQ(b.Stats(), before);
  EXPECT_TRUE(b.CheckInvariants().ok()) << b.CheckInvariants();
  EXPECT_FALSE(b.Free(Span(2993, 7)));  // a double free, parked or not
  EXPECT_FALSE(b.Free(Span(2993, 6)));
  EXPECT_FALSE(b.Free(Span(2994, 6)));
  EXPECT_FALSE(b.Free(Span(2993, 107)));  // the run and the live one after it
  EXPECT_EQ(b.Stats(), before);
  EXPECT_EQ(Alloc(b, 7), 2993u);  // the parked run again
  EXPECT_EQ(b.Stats(), allocated);
  ASSERT_TRUE(b.Free(Span(2993, 7)));
  EXPECT_EQ(Alloc(b, 8), 2992u);  // merged first: the top of the whole extent
  ASSERT_TRUE(b.Free(Span(2992, 8)));  // parked
  EXPECT_EQ(b.Stats(), before);

  // Parked, then an aligned request: merged first.
  EXPECT_EQ(Alloc(b, 3), 2997u);
  ASSERT_TRUE(b.Free(Span(2997, 3)));
  EXPECT_EQ(Alloc(b, 3, 5), 2976u);  // the highest multiple of 32 that fits
  EXPECT_TRUE(b.CheckInvariants().ok()) << b.CheckInvariants();
  ASSERT_TRUE(b.Free(Span(2976, 3)));
  // Parked, then a free of another run: merged first, then that run.
  EXPECT_EQ(Alloc(b, 2), 2998u);
  ASSERT_TRUE(b.Free(Span(2998, 2)));
  ASSERT_TRUE(b.Free(Span(f[1], 100)));
  EXPECT_EQ(b.Stats().free_runs, 1u);
  EXPECT_TRUE(b.CheckInvariants().ok()) << b.CheckInvariants();
  ASSERT_TRUE(b.Free(Span(f[3], 5)));
  EXPECT_EQ(b.Stats(), fresh);
  // A run at the very top of the range, parked, then the whole range.
  EXPECT_EQ(Alloc(b, 1), 5999u);
  ASSERT_TRUE(b.Free(Span(5999, 1)));
  EXPECT_EQ(b.Stats(), fresh);
  EXPECT_EQ(Alloc(b, 5000), 1000u);
  ASSERT_TRUE(b.Free(range));
  EXPECT_EQ(b.Stats(), fresh);
  EXPECT_TRUE(b.CheckInvariants().ok()) << b.CheckInvariants();
}

// Runs of 2^31 pages and more keep their length outside the 32-bit tags.
TEST(RegionBackendTest, RunsOfTwoToThe31PagesAndMore) {
  const uint64_t base = uint64_t{1} << 40;
  const uint64_t g = uint64_t{1} << 31;
  const PageRun range = Span(base + 5, 4 * g + 3);  // [2^40 + 5, 2^40 + 2^33 + 8)
  const uint64_t end = range.end().value();
  RegionBackend b(range);
  const BackendStats fresh = b.Stats();
  // The highest multiple of 2^31 with room for 2^31 pages: 2^40 + 3 * 2^31,
  // leaving an 8-page tail.
  EXPECT_EQ(Alloc(b, g, 31), base + 3 * g);
  const uint64_t top = base + 3 * g;  // the end of the head extent
  const uint64_t big = g + 3;
  const uint64_t edge = g - 1;  // the shortest length kept aside
  EXPECT_EQ(Alloc(b, big), top - big);
  EXPECT_EQ(Alloc(b, edge), top - big - edge);
  EXPECT_EQ(Alloc(b, 1), end - 1);  // best fit: the 8-page tail
  EXPECT_TRUE(b.CheckInvariants().ok()) << b.CheckInvariants();
  EXPECT_FALSE(b.Free(Span(top - big, big - 1)));
  EXPECT_FALSE(b.Free(Span(top - big, big + 1)));
  EXPECT_FALSE(b.Free(Span(top - big - edge, edge - 1)));
  EXPECT_FALSE(b.Free(Span(top - big - edge, edge + big)));
  EXPECT_FALSE(b.Free(Span(top, g - 1)));
  EXPECT_TRUE(b.Free(Span(top - big, big)));
  EXPECT_FALSE(b.Free(Span(top - big, big)));
  EXPECT_TRUE(b.Free(Span(top - big - edge, edge)));  // merges with both
  EXPECT_TRUE(b.CheckInvariants().ok()) << b.CheckInvariants();
  EXPECT_TRUE(b.Free(Span(top, g)));
  EXPECT_TRUE(b.Free(Span(end - 1, 1)));
  EXPECT_EQ(b.Stats(), fresh);
  EXPECT_EQ(Alloc(b, range.pages.value()), range.first.value());
  EXPECT_TRUE(b.Free(range));
  EXPECT_EQ(b.Stats(), fresh);
  EXPECT_TRUE(b.CheckInvariants().ok()) << b.CheckInvariants();
}

// The exhaustive aligned search over the aligned frames of a range whose
// tags span two radix levels: 2^18 four-page free extents between live
// runs, none holding a multiple of 2^13, then two that do.
TEST(RegionBackendTest, AlignedSearchByPositionOnALargeRange) {
  const uint64_t pages = uint64_t{1} << 21;
  RegionBackend b(Span(0, pages));
  for (uint64_t i = 0; i < pages / 4; ++i) ASSERT_EQ(Alloc(b, 4), pages - 4 * (i + 1));
  for (uint64_t f = 4; f < pages; f += 8) ASSERT_TRUE(b.Free(Span(f, 4)));
  EXPECT_EQ(b.Stats().free_runs, pages / 8);
  EXPECT_EQ(Alloc(b, 4, 13), std::nullopt);
  ASSERT_TRUE(b.Free(Span(8192 * 100, 4)));  // [819200, 819208) free
  ASSERT_TRUE(b.Free(Span(8192 * 5, 4)));    // [40960, 40968) free
  EXPECT_TRUE(b.CheckInvariants().ok()) << b.CheckInvariants();
  EXPECT_EQ(Alloc(b, 4, 13), 8192u * 5);  // best fit: equal sizes, the lower
  EXPECT_EQ(Alloc(b, 5, 13), 8192u * 100);
  EXPECT_EQ(Alloc(b, 4, 13), std::nullopt);
  EXPECT_TRUE(b.CheckInvariants().ok()) << b.CheckInvariants();
}

// Long seeded random sequences over large ranges (two to four radix
// levels, dense windows of one-page runs), checked against an exact model
// of the free extents kept in std::map: every placement of an unaligned
// request (best fit, at the top), every failure, every Stats() field.
// Some runs are freed right after their allocation (hot runs).
struct StressParams {
  uint64_t seed;
  uint64_t first;
  uint64_t pages;
  uint64_t max_pages;
  int ops;
};

class RegionStressTest : public ::testing::TestWithParam<StressParams> {};

TEST_P(RegionStressTest, MatchesExtentModel) {
  const StressParams p = GetParam();
  uint64_t seed = p.seed;
  if (const char* env = std::getenv("REGION_TEST_SEED")) seed = std::strtoull(env, nullptr, 10);
  SCOPED_TRACE(absl::StrCat("seed ", seed, " (replay with REGION_TEST_SEED=", seed, ")"));
  std::mt19937_64 rng(seed);
  const PageRun range = Span(p.first, p.pages);
  RegionBackend b(range);
  const BackendStats fresh = b.Stats();

  std::map<uint64_t, uint64_t> free_map = {{p.first, p.pages}};  // first -> pages
  std::multiset<uint64_t> sizes = {p.pages};
  uint64_t free_pages = p.pages;
  auto superpages = [](uint64_t first, uint64_t pages) {
    const uint64_t lo = (first + kSuperPagePages - 1) / kSuperPagePages;
    const uint64_t hi = (first + pages) / kSuperPagePages;
    return hi > lo ? hi - lo : 0;
  };
  uint64_t free_superpages = superpages(p.first, p.pages);
  auto add_free = [&](uint64_t first, uint64_t pages) {
    free_map[first] = pages;
    sizes.insert(pages);
    free_superpages += superpages(first, pages);
  };
  auto remove_free = [&](std::map<uint64_t, uint64_t>::iterator it) {
    sizes.erase(sizes.find(it->second));
    free_superpages -= superpages(it->first, it->second);
    free_map.erase(it);
  };
  std::vector<PageRun> live;

  auto allocate = [&](uint64_t n, unsigned order) -> std::optional<uint64_t> {
    const std::optional<uint64_t> got = Alloc(b, n, order);
    const uint64_t mask = (uint64_t{1} << order) - 1;
    if (!got) {
      for (const auto& [first, pages] : free_map) {
        const uint64_t start = (first + mask) & ~mask;
        EXPECT_FALSE(start >= first && start + n <= first + pages)
            << "Allocate(" << n << ", " << order << ") failed, but [" << first << " +" << pages
            << ") holds an aligned run";
      }
      return got;
    }
    auto it = free_map.upper_bound(*got);
    EXPECT_NE(it, free_map.begin()) << "run at " << *got << " is not free";
    if (it == free_map.begin()) return std::nullopt;
    --it;
    const uint64_t first = it->first;
    const uint64_t pages = it->second;
    EXPECT_TRUE((*got & mask) == 0 && *got >= first && *got + n <= first + pages)
        << "run [" << *got << " +" << n << ") is not an aligned part of a free extent";
    if (order == 0) {
      EXPECT_EQ(pages, *sizes.lower_bound(n)) << "not the best fit for " << n;
      EXPECT_EQ(*got, first + pages - n) << "not carved from the top";
    }
    remove_free(it);
    if (*got > first) add_free(first, *got - first);
    if (*got + n < first + pages) add_free(*got + n, first + pages - *got - n);
    free_pages -= n;
    live.push_back(Span(*got, n));
    return got;
  };
  auto free_live = [&](size_t i) {
    const PageRun r = live[i];
    live[i] = live.back();
    live.pop_back();
    ASSERT_TRUE(b.Free(r)) << r;
    uint64_t first = r.first.value();
    uint64_t pages = r.pages.value();
    auto next = free_map.find(first + pages);
    if (next != free_map.end()) {
      pages += next->second;
      remove_free(next);
    }
    auto prev = free_map.lower_bound(first);
    if (prev != free_map.begin() && (--prev, prev->first + prev->second == first)) {
      first = prev->first;
      pages += prev->second;
      remove_free(prev);
    }
    add_free(first, pages);
    free_pages += r.pages.value();
  };

  // Spread the runs over the whole range first: fill it with runs of random
  // length, then free 40 % of them.
  while (!sizes.empty()) {
    const uint64_t n = std::min(*sizes.rbegin(), 1 + rng() % p.max_pages);
    ASSERT_TRUE(allocate(n, 0).has_value());
    if (::testing::Test::HasFailure()) return;
  }
  EXPECT_EQ(b.Stats().free_pages, PageCount(0));
  std::shuffle(live.begin(), live.end(), rng);
  for (size_t k = live.size() * 2 / 5; k > 0; --k) free_live(live.size() - 1);
  ASSERT_TRUE(b.CheckInvariants().ok()) << b.CheckInvariants();

  for (int op = 0; op < p.ops; ++op) {
    const bool filling = (op / 4000) % 2 == 0;
    const int roll = static_cast<int>(rng() % 100);
    // Mostly small runs, some of up to max_pages, now and then one page.
    const uint64_t n = rng() % 8 == 0 ? 1 + rng() % p.max_pages
                                      : 1 + rng() % std::min<uint64_t>(p.max_pages, 64);
    if (roll < 3 && !live.empty()) {
      const PageRun& r = live[rng() % live.size()];
      PageRun bad = r;
      switch (rng() % 3) {
        case 0: bad.pages = r.pages + PageCount(1); break;
        case 1: bad.first = r.first + PageCount(1); bad.pages = PageCount(1); break;
        default: bad.pages = PageCount(r.pages.value() > 1 ? r.pages.value() - 1 : 2); break;
      }
      if (std::find(live.begin(), live.end(), bad) != live.end()) continue;
      const BackendStats before = b.Stats();
      ASSERT_FALSE(b.Free(bad)) << "op " << op << " " << bad;
      ASSERT_EQ(b.Stats(), before) << "op " << op;
    } else if (roll < 13) {
      // A hot run: allocated and freed at once, maybe allocated again.
      if (allocate(n, 0)) {
        free_live(live.size() - 1);
        if (rng() % 2 == 0) allocate(n, 0);
      }
    } else if (live.empty() || roll < (filling ? 60 : 40)) {
      const unsigned order = rng() % 4 == 0 ? static_cast<unsigned>(1 + rng() % 12) : 0;
      allocate(n, order);
    } else {
      free_live(rng() % live.size());
    }
    const BackendStats s = b.Stats();
    ASSERT_EQ(s.free_pages, PageCount(free_pages)) << "op " << op;
    ASSERT_EQ(s.free_runs, free_map.size()) << "op " << op;
    ASSERT_EQ(s.largest_free_run, PageCount(sizes.empty() ? 0 : *sizes.rbegin())) << "op " << op;
    ASSERT_EQ(s.free_superpages, free_superpages) << "op " << op;
    if (op % 1024 == 0) ASSERT_TRUE(b.CheckInvariants().ok()) << b.CheckInvariants();
    if (::testing::Test::HasFailure()) FAIL() << "stopped at op " << op;
  }
  ASSERT_TRUE(b.CheckInvariants().ok()) << b.CheckInvariants();
  std::shuffle(live.begin(), live.end(), rng);
  for (const PageRun& r : live) ASSERT_TRUE(b.Free(r)) << r;
  EXPECT_EQ(b.Stats(), fresh);
  EXPECT_TRUE(b.CheckInvariants().ok()) << b.CheckInvariants();
}

INSTANTIATE_TEST_SUITE_P(
    Ranges, RegionStressTest,
    ::testing::Values(
        // Two radix levels, runs of up to 64 pages (about 65000).
        StressParams{11, 3, (uint64_t{1} << 21) + 77, 64, 30000},
        // Dense windows: one- to four-page runs (about 100000), big leaves.
        StressParams{12, 1 << 20, 1 << 18, 4, 30000},
        // Four radix levels, sparse: runs of up to 2^20 pages.
        StressParams{13, (uint64_t{1} << 40) + 5, (uint64_t{1} << 34) + 3, uint64_t{1} << 20,
                     20000},
        // A small pool, often full: exhaustion and exact fits.
        StressParams{14, 777, 3000, 300, 30000}));

TEST(RegionBackendTest, LargeRangeConstructsQuickly) {
  const PageRun range = Span(0, uint64_t{1} << 24);  // 64 GiB
  const auto t0 = std::chrono::steady_clock::now();
  auto b = std::make_unique<RegionBackend>(range);
  const auto t1 = std::chrono::steady_clock::now();
  EXPECT_LT(std::chrono::duration_cast<std::chrono::milliseconds>(t1 - t0).count(), 50);
  const BackendStats fresh = b->Stats();
  EXPECT_EQ(fresh.free_superpages, uint64_t{1} << 15);
  EXPECT_LT(fresh.metadata_bytes, 4096u);
  const uint64_t top3 = (uint64_t{1} << 24) - 3;
  EXPECT_EQ(Alloc(*b, 3), top3);
  EXPECT_EQ(Alloc(*b, uint64_t{1} << 23, 23), 0u);
  EXPECT_EQ(b->Stats().free_superpages, (uint64_t{1} << 14) - 1);
  EXPECT_TRUE(b->Free(Span(0, uint64_t{1} << 23)));
  EXPECT_TRUE(b->Free(Span(top3, 3)));
  EXPECT_EQ(b->Stats(), fresh);
}

TEST(RegionBackendTest, RegisteredAsRegion) {
  auto b = BackendRegistry::Global().Create("region", BackendOptions{Span(4096, 1000)});
  ASSERT_TRUE(b.ok()) << b.status();
  EXPECT_EQ((*b)->name(), "region");
  EXPECT_EQ((*b)->range(), Span(4096, 1000));
  EXPECT_EQ((*b)->Allocate(PageCount(10), AlignOrder(0)), FrameNumber(5086));
}

}  // namespace
}  // namespace l4re_ma
