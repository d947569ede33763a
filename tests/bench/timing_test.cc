// tests/bench/timing_test.cc: the percentile arithmetic of bench/timing.h.
#include "bench/timing.h"

#include <cstdint>
#include <vector>

#include "gtest/gtest.h"

namespace l4re_ma {
namespace bench {
namespace {

TEST(TimingTest, QuantileIsTheNearestRank) {
  std::vector<double> v;
  for (int i = 1; i <= 1000; ++i) v.push_back(i);
  EXPECT_EQ(Quantile(v, 0.5), 500);
  EXPECT_EQ(Quantile(v, 0.99), 990);
  EXPECT_EQ(Quantile(v, 0.999), 999);
  EXPECT_EQ(Quantile(v, 1.0), 1000);
  EXPECT_EQ(Quantile(v, 0.0), 1);
  EXPECT_EQ(Quantile({}, 0.5), 0);
  EXPECT_EQ(Quantile({7}, 0.999), 7);
}

TEST(TimingTest, ClockIsCalibrated) {
  const CycleClock& clock = CycleClock::Get();
  // Any x86 machine of this century: 0.1 to 10 GHz.
  EXPECT_GT(clock.ns_per_cycle(), 0.1);
  EXPECT_LT(clock.ns_per_cycle(), 10.0);
  EXPECT_EQ(clock.ToNs(clock.overhead_cycles()), 0.0) << "the timer's own cost is taken out";
  EXPECT_EQ(clock.ToNs(0), 0.0);
}

TEST(TimingTest, SummaryOfKnownSamples) {
  const CycleClock& clock = CycleClock::Get();
  LatencySamples samples(1000);
  // 1000 samples: 998 of 100 cycles, one of 1000 and one of 5000 (beyond the
  // timer overhead each).
  const uint64_t o = clock.overhead_cycles();
  for (int i = 0; i < 998; ++i) samples.Add(o + 100);
  samples.Add(o + 1000);
  samples.Add(o + 5000);
  const LatencySummary s = samples.Summarize(clock);
  EXPECT_EQ(s.count, 1000u);
  EXPECT_DOUBLE_EQ(s.p50, clock.ToNs(o + 100));
  EXPECT_DOUBLE_EQ(s.p99, clock.ToNs(o + 100));
  EXPECT_DOUBLE_EQ(s.p999, clock.ToNs(o + 1000));
  EXPECT_DOUBLE_EQ(s.max, clock.ToNs(o + 5000));
  EXPECT_NEAR(s.mean, (998 * 100 + 1000 + 5000) / 1000.0 * clock.ns_per_cycle(), 1e-9);
}

}  // namespace
}  // namespace bench
}  // namespace l4re_ma
