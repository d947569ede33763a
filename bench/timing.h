// bench/timing.h: timing single operations cheaply, and their percentiles.
//
// A benchmark that wants the tail of a latency distribution cannot time a
// loop: it must time every operation. CycleClock reads the time stamp
// counter (fenced, so the operation stays between the two reads), and is
// calibrated once against CLOCK_MONOTONIC; the cost of the two reads is
// measured and subtracted. LatencySamples keeps the samples in an array
// allocated before the timed loop, so that recording allocates nothing.
//
//   const l4re_ma::bench::CycleClock& clock = l4re_ma::bench::CycleClock::Get();
//   l4re_ma::bench::LatencySamples samples(n);
//   for (...) {
//     const uint64_t t0 = l4re_ma::bench::CycleClock::Now();
//     op();
//     samples.Add(l4re_ma::bench::CycleClock::Now() - t0);
//   }
//   l4re_ma::bench::LatencySummary s = samples.Summarize(clock);  // ns
#ifndef L4RE_MA_BENCH_TIMING_H_
#define L4RE_MA_BENCH_TIMING_H_

#include <x86intrin.h>

#include <cstddef>
#include <cstdint>
#include <vector>

namespace l4re_ma {
namespace bench {

class CycleClock {
 public:
  // Calibrated on first use (about 50 ms). Thread-safe.
  static const CycleClock& Get();

  // The time stamp counter, fenced on both sides: loads and stores before
  // the read complete first, and later ones do not start early.
  static inline uint64_t Now() {
    _mm_lfence();
    const uint64_t t = __rdtsc();
    _mm_lfence();
    return t;
  }

  double ns_per_cycle() const { return ns_per_cycle_; }
  // The median of Now() - Now() back to back: what a timed empty operation
  // measures.
  uint64_t overhead_cycles() const { return overhead_; }

  // A measured interval in ns, the timer overhead taken out (never < 0).
  double ToNs(uint64_t cycles) const {
    return cycles > overhead_ ? static_cast<double>(cycles - overhead_) * ns_per_cycle_ : 0.0;
  }
  // As ToNs, for an interval that covers `ops` operations.
  double ToNsPerOp(uint64_t cycles, uint64_t ops) const {
    return ops == 0 ? 0.0 : ToNs(cycles) / static_cast<double>(ops);
  }

 private:
  CycleClock();
  double ns_per_cycle_ = 1.0;
  uint64_t overhead_ = 0;
};

struct LatencySummary {
  size_t count = 0;
  double mean = 0;
  double p50 = 0;
  double p99 = 0;
  double p999 = 0;
  double max = 0;
};

// Raw cycle samples; Summarize converts and ranks them (nearest rank).
class LatencySamples {
 public:
  explicit LatencySamples(size_t capacity) { cycles_.reserve(capacity); }

  // Allocates only when more than `capacity` samples are added.
  void Add(uint64_t cycles) { cycles_.push_back(cycles); }
  size_t size() const { return cycles_.size(); }
  void Clear() { cycles_.clear(); }

  // Sorts the samples (they stay available); all figures in ns.
  LatencySummary Summarize(const CycleClock& clock);

 private:
  std::vector<uint64_t> cycles_;
};

// The value at quantile q (0..1) of sorted `v` by nearest rank; 0 if empty.
double Quantile(const std::vector<double>& sorted, double q);

}  // namespace bench
}  // namespace l4re_ma

#endif  // L4RE_MA_BENCH_TIMING_H_
