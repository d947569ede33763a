#include "bench/timing.h"

#include <time.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <vector>

namespace l4re_ma {
namespace bench {
namespace {

uint64_t MonotonicNs() {
  timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return static_cast<uint64_t>(ts.tv_sec) * 1000000000u + static_cast<uint64_t>(ts.tv_nsec);
}

}  // namespace

const CycleClock& CycleClock::Get() {
  static const CycleClock* clock = new CycleClock();
  return *clock;
}

CycleClock::CycleClock() {
  // Rate: cycles over a busy-waited 20 ms, three times; the median is
  // robust against a preemption in one of them.
  std::vector<double> rates;
  for (int i = 0; i < 3; ++i) {
    const uint64_t n0 = MonotonicNs();
    const uint64_t c0 = Now();
    uint64_t n1 = n0;
    while (n1 - n0 < 20000000) n1 = MonotonicNs();
    const uint64_t c1 = Now();
    rates.push_back(static_cast<double>(n1 - n0) / static_cast<double>(c1 - c0));
  }
  std::sort(rates.begin(), rates.end());
  ns_per_cycle_ = rates[1];
  std::vector<uint64_t> d(20001);
  for (uint64_t& x : d) {
    const uint64_t a = Now();
    x = Now() - a;
  }
  std::nth_element(d.begin(), d.begin() + d.size() / 2, d.end());
  overhead_ = d[d.size() / 2];
}

double Quantile(const std::vector<double>& sorted, double q) {
  if (sorted.empty()) return 0;
  // Nearest rank: the smallest value with at least q of the samples at or
  // below it.
  const double rank = std::ceil(q * static_cast<double>(sorted.size()));
  const size_t i = rank < 1 ? 0 : static_cast<size_t>(rank) - 1;
  return sorted[std::min(i, sorted.size() - 1)];
}

LatencySummary LatencySamples::Summarize(const CycleClock& clock) {
  LatencySummary s;
  s.count = cycles_.size();
  if (cycles_.empty()) return s;
  std::sort(cycles_.begin(), cycles_.end());
  std::vector<double> ns;
  ns.reserve(cycles_.size());
  double sum = 0;
  for (uint64_t c : cycles_) {
    ns.push_back(clock.ToNs(c));
    sum += ns.back();
  }
  s.mean = sum / static_cast<double>(ns.size());
  s.p50 = Quantile(ns, 0.5);
  s.p99 = Quantile(ns, 0.99);
  s.p999 = Quantile(ns, 0.999);
  s.max = ns.back();
  return s;
}

}  // namespace bench
}  // namespace l4re_ma
