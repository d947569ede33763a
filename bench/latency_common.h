// bench/latency_common.h: what the layers of //bench:latency share: the
// run's options, the same-run baselines every figure is divided by, and a
// few helpers.
#ifndef L4RE_MA_BENCH_LATENCY_COMMON_H_
#define L4RE_MA_BENCH_LATENCY_COMMON_H_

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "benchmark/benchmark.h"
#include "bench/timing.h"

namespace l4re_ma {
namespace bench {

// The yardstick of layer 1 (bench/firstfit/), registered in this binary
// only, and always run first so that every backend has a baseline.
inline constexpr char kYardstick[] = "firstfit";

struct LatencyOptions {
  // Multiplies every operation count (--bench_scale): 0.2 for a quick run.
  double scale = 1.0;
  // Backends to measure, the yardstick first.
  std::vector<std::string> backends;
  // The memd binary for layer 3; empty: layer 3 is skipped.
  std::string memd_path;
};

// `n` scaled by options.scale, at least `min`.
uint64_t Scaled(const LatencyOptions& options, uint64_t n, uint64_t min = 1);

// Figures of baseline benchmarks, by key, for the benchmarks that follow
// them in the same run. Benchmarks run one after the other; no locking.
class Baselines {
 public:
  static void Set(const std::string& key, double value);
  static std::optional<double> Get(const std::string& key);
};

// Sets counter `name` to value / baseline[key] when that baseline ran.
void SetRatio(benchmark::State& state, const char* name, const std::string& key, double value);

// Sets p50/p99/p999/max counters (ns) named `prefix` + "p50_ns", ...
void SetPercentiles(benchmark::State& state, const std::string& prefix, const LatencySummary& s);

// The median of `v` (reordered); 0 if empty.
double Median(std::vector<double>& v);

// Times batches of `a` and of `b` alternately, `batch` calls each, one
// batch pair per iteration, so that both see the same machine load (the
// baseline is `b`). Sets the counters ns and mean_ns (of `a`), base_ns
// (of `b`) and `ratio_name` = ns / base_ns. Each callable returns false on
// failure, which skips the benchmark with an error. Returns ns.
template <typename A, typename B>
double TimeInterleaved(benchmark::State& state, int batch, A a, B b, const char* ratio_name) {
  const CycleClock& clock = CycleClock::Get();
  std::vector<double> a_ns, b_ns;
  a_ns.reserve(static_cast<size_t>(state.max_iterations));
  b_ns.reserve(static_cast<size_t>(state.max_iterations));
  uint64_t a_total = 0;
  for (auto _ : state) {
    uint64_t t0 = CycleClock::Now();
    for (int i = 0; i < batch; ++i) {
      if (!a()) {
        state.SkipWithError("a call failed");
        return 0;
      }
    }
    const uint64_t ca = CycleClock::Now() - t0;
    t0 = CycleClock::Now();
    for (int i = 0; i < batch; ++i) {
      if (!b()) {
        state.SkipWithError("a baseline call failed");
        return 0;
      }
    }
    const uint64_t cb = CycleClock::Now() - t0;
    a_total += ca;
    a_ns.push_back(clock.ToNsPerOp(ca, batch));
    b_ns.push_back(clock.ToNsPerOp(cb, batch));
  }
  const double ns = Median(a_ns);
  const double base = Median(b_ns);
  state.counters["ns"] = ns;
  state.counters["mean_ns"] = clock.ToNsPerOp(a_total, state.iterations() * batch);
  state.counters["base_ns"] = base;
  if (base > 0) state.counters[ratio_name] = ns / base;
  state.SetItemsProcessed(state.iterations() * batch);
  return ns;
}

// Aborts the benchmark binary with a message: a broken setup (a backend
// that cannot be built, an allocation that must succeed) is not a figure.
[[noreturn]] void Fatal(const std::string& message);

void RegisterBackendBenchmarks(const LatencyOptions& options);
void RegisterCApiBenchmarks(const LatencyOptions& options);
void RegisterMemdBenchmarks(const LatencyOptions& options);

}  // namespace bench
}  // namespace l4re_ma

#endif  // L4RE_MA_BENCH_LATENCY_COMMON_H_
