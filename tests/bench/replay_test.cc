// tests/bench/replay_test.cc: the fragmentation replay on hand-made traces
// whose peak, failures, fragmentation and smallest pool are known.
#include "bench/replay.h"

#include <string>

#include "absl/status/statusor.h"
#include "bench/trace.h"
#include "core/backend_registry.h"
#include "gtest/gtest.h"

namespace l4re_ma {
namespace bench {
namespace {

Trace Parse(const char* text) {
  absl::StatusOr<Trace> t = ParseTrace(text, "test");
  EXPECT_TRUE(t.ok()) << t.status();
  return t.ok() ? *std::move(t) : Trace{};
}

TEST(ReplayTest, RequestsRoundUpAsTheCApiDoes) {
  auto req = [](uint64_t bytes, uint32_t flags, uint32_t align) {
    TraceOp op;
    op.bytes = bytes;
    op.flags = flags;
    op.align_log2 = align;
    return RequestFor(op);
  };
  EXPECT_EQ(req(1, 0, 0).pages, PageCount(1));
  EXPECT_EQ(req(4096, 0, 0).pages, PageCount(1));
  EXPECT_EQ(req(4097, 0, 0).pages, PageCount(2));
  EXPECT_EQ(req(4097, 0, 0).align, AlignOrder(0));
  EXPECT_EQ(req(4096, kTraceFlagContinuous, 5).align, AlignOrder(0)) << "below a page";
  EXPECT_EQ(req(4096, kTraceFlagContinuous, 16).align, AlignOrder(4));
  EXPECT_EQ(req(1, kTraceFlagSuperPages, 0).pages, PageCount(512));
  EXPECT_EQ(req(1, kTraceFlagSuperPages, 0).align, AlignOrder(9));
  EXPECT_EQ(req((2u << 20) + 1, kTraceFlagSuperPages, 0).pages, PageCount(1024));
  EXPECT_EQ(req(1, kTraceFlagSuperPages, 30).align, AlignOrder(18));
}

// Three 4-page runs, the outer two freed, then 8 pages: first fit needs a
// 16-page pool although only 12 pages are ever live.
constexpr char kHoles[] =
    "a A 16384\n"
    "a B 16384\n"
    "a C 16000\n"  // rounds up to 4 pages
    "f A\n"
    "f C\n"
    "a D 32768\n"
    "f D\n"
    "f B\n";

TEST(ReplayTest, PeakFailuresAndFragmentationOfAHandMadeTrace) {
  const Trace t = Parse(kHoles);
  EXPECT_EQ(PeakLivePages(t), PageCount(12));

  ReplayOptions tight;
  tight.pool_pages = PageCount(12);
  absl::StatusOr<ReplayResult> r = Replay(t, "firstfit", tight);
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->ops, 8u);
  EXPECT_EQ(r->allocs, 4u);
  EXPECT_EQ(r->failed_allocs, 1u) << "D finds two 4-page holes";
  EXPECT_EQ(r->peak_live_bytes, 12u * 4096);

  ReplayOptions roomy;
  roomy.pool_pages = PageCount(16);
  roomy.series_points = 3;
  r = Replay(t, "firstfit", roomy);
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->failed_allocs, 0u);
  // Fragmentation after each op: 0, 0, 0, 1 - 4/8, 1 - 8/12, 0 (only the
  // hole [0, 4) is left), 1 - 8/12 (D freed), 0.
  EXPECT_DOUBLE_EQ(r->ext_frag_max, 0.5);
  EXPECT_NEAR(r->ext_frag_mean, (0.5 + 2.0 / 3) / 8, 1e-12);
  EXPECT_EQ(r->superpage_free_share_mean, 0.0) << "16 pages hold no superpage";
  ASSERT_EQ(r->series.size(), 3u);
  EXPECT_EQ(r->series.back().op, 8u);
  EXPECT_NEAR(r->series[1].ext_frag, (0.5 + 1.0 / 3 + 0) / 3, 1e-12);

  absl::StatusOr<PageCount> min = MinPoolPages(t, "firstfit", {});
  ASSERT_TRUE(min.ok()) << min.status();
  EXPECT_EQ(*min, PageCount(16));
}

TEST(ReplayTest, FreeOfAFailedAllocationIsSkipped) {
  const Trace t = Parse("a big 8192\na huge 1048576\nf huge\nf big\n");
  ReplayOptions o;
  o.pool_pages = PageCount(4);
  absl::StatusOr<ReplayResult> r = Replay(t, "firstfit", o);
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->failed_allocs, 1u);
  EXPECT_EQ(r->ops, 4u);

  o.stop_at_first_failure = true;
  r = Replay(t, "firstfit", o);
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->ops, 2u) << "stops at the failed allocation";
}

TEST(ReplayTest, SuperpageShareCountsWholeFreeSuperpages) {
  // 1024 pages from frame 0x40000 (a superpage boundary): after one page is
  // taken, 512 of the 1023 free pages lie in a whole free superpage.
  const Trace t = Parse("a x 4096\nf x\n");
  ReplayOptions o;
  o.pool_pages = PageCount(1024);
  absl::StatusOr<ReplayResult> r = Replay(t, "firstfit", o);
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_NEAR(r->superpage_free_share_mean, (512.0 / 1023 + 1.0) / 2, 1e-12);
}

TEST(ReplayTest, UnknownBackendIsAnError) {
  ReplayOptions o;
  o.pool_pages = PageCount(16);
  EXPECT_FALSE(Replay(Parse(kHoles), "no-such-backend", o).ok());
}

// Every registered backend: the smallest pool found runs the trace without
// a failure and is at least the peak.
TEST(ReplayTest, MinPoolWorksForEveryBackend) {
  const Trace t = Parse(
      "a a 4096\na b 40960\na c 8192 4\na d 4096 1 16\nf b\na e 81920\nf a\n"
      "a f 12288\nf c\na g 2097152 4\nf d\nf e\nf f\nf g\n");
  for (const std::string& name : BackendRegistry::Global().Names()) {
    SCOPED_TRACE(name);
    absl::StatusOr<PageCount> min = MinPoolPages(t, name, {});
    ASSERT_TRUE(min.ok()) << min.status();
    EXPECT_GE(*min, PeakLivePages(t));
    ReplayOptions o;
    o.pool_pages = *min;
    absl::StatusOr<ReplayResult> r = Replay(t, name, o);
    ASSERT_TRUE(r.ok()) << r.status();
    EXPECT_EQ(r->failed_allocs, 0u);
  }
}

}  // namespace
}  // namespace bench
}  // namespace l4re_ma
