#include "bench/latency_common.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <map>
#include <optional>
#include <string>
#include <vector>

namespace l4re_ma {
namespace bench {
namespace {

std::map<std::string, double>& BaselineMap() {
  static auto* m = new std::map<std::string, double>();
  return *m;
}

}  // namespace

uint64_t Scaled(const LatencyOptions& options, uint64_t n, uint64_t min) {
  const double v = std::round(static_cast<double>(n) * options.scale);
  return std::max<uint64_t>(min, static_cast<uint64_t>(v));
}

void Baselines::Set(const std::string& key, double value) { BaselineMap()[key] = value; }

std::optional<double> Baselines::Get(const std::string& key) {
  auto it = BaselineMap().find(key);
  if (it == BaselineMap().end()) return std::nullopt;
  return it->second;
}

void SetRatio(benchmark::State& state, const char* name, const std::string& key, double value) {
  std::optional<double> base = Baselines::Get(key);
  if (base.has_value() && *base > 0) state.counters[name] = value / *base;
}

void SetPercentiles(benchmark::State& state, const std::string& prefix, const LatencySummary& s) {
  state.counters[prefix + "p50_ns"] = s.p50;
  state.counters[prefix + "p99_ns"] = s.p99;
  state.counters[prefix + "p999_ns"] = s.p999;
  state.counters[prefix + "max_ns"] = s.max;
}

double Median(std::vector<double>& v) {
  if (v.empty()) return 0;
  std::nth_element(v.begin(), v.begin() + v.size() / 2, v.end());
  return v[v.size() / 2];
}

void Fatal(const std::string& message) {
  std::fprintf(stderr, "latency: %s\n", message.c_str());
  std::exit(1);
}

}  // namespace bench
}  // namespace l4re_ma
