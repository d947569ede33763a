// bench/latency_main.cc: //bench:latency, latency of every registered
// backend at three layers, each beside a baseline measured in the same run
// (Google Benchmark; the figures are in the counters):
//   layer 1 (L1_*): the backend alone vs the first-fit yardstick
//                   (bench/backend_benchmark.cc);
//   layer 2 (L2_*): the C API in process vs mmap + touch + munmap
//                   (bench/capi_benchmark.cc);
//   layer 3 (L3_*): through memd vs a raw AF_UNIX ping-pong
//                   (bench/memd_benchmark.cc).
//
//   bazel run -c opt //bench:latency -- [--backends=buddy,region]
//       [--bench_scale=0.2] [--layers=12] [--memd=PATH] [Google Benchmark flags]
//
// Own flags (removed before Google Benchmark sees the rest):
//   --backends=A,B   backends to measure (default: every registered one;
//                    the yardstick "firstfit" is always measured first)
//   --bench_scale=F  multiplies every operation count (default 1)
//   --layers=123     which layers to register (default all)
//   --memd=PATH      the memd binary for layer 3 (default: found next to
//                    this binary in its runfiles; layer 3 is skipped and
//                    says so when there is none)
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <string>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "bench/latency_common.h"
#include "benchmark/benchmark.h"
#include "core/backend_registry.h"

namespace l4re_ma {
namespace bench {
namespace {

// memd from this binary's runfiles: <argv0>.runfiles/l4re_ma/server/memd,
// or $RUNFILES_DIR / $TEST_SRCDIR.
std::string FindMemd(const char* argv0) {
  std::vector<std::string> roots;
  if (const char* r = std::getenv("RUNFILES_DIR")) roots.push_back(r);
  if (const char* r = std::getenv("TEST_SRCDIR")) roots.push_back(r);
  roots.push_back(std::string(argv0) + ".runfiles");
  for (const std::string& root : roots) {
    const std::string path = root + "/l4re_ma/server/memd";
    if (access(path.c_str(), X_OK) == 0) return path;
  }
  return "";
}

int Main(int argc, char** argv) {
  LatencyOptions options;
  std::string layers = "123";
  std::string backends_flag;
  std::string memd = FindMemd(argv[0]);
  std::vector<char*> rest = {argv[0]};
  for (int i = 1; i < argc; ++i) {
    absl::string_view a = argv[i];
    if (absl::ConsumePrefix(&a, "--backends=")) {
      backends_flag = std::string(a);
    } else if (absl::ConsumePrefix(&a, "--bench_scale=")) {
      if (!absl::SimpleAtod(a, &options.scale) || !(options.scale > 0)) {
        std::fprintf(stderr, "latency: --bench_scale=%s is not a positive number\n", argv[i] + 14);
        return 2;
      }
    } else if (absl::ConsumePrefix(&a, "--layers=")) {
      layers = std::string(a);
    } else if (absl::ConsumePrefix(&a, "--memd=")) {
      memd = std::string(a);
    } else if (a == "--help") {
      std::printf(
          "latency: every registered backend at three layers, each beside a same-run baseline.\n"
          "  --backends=A,B   backends to measure (default: all; firstfit always runs first)\n"
          "  --bench_scale=F  multiply every operation count by F (default 1)\n"
          "  --layers=123     layers to run: 1 backend alone, 2 C API, 3 through memd\n"
          "  --memd=PATH      the memd binary for layer 3 (default: from the runfiles)\n"
          "Google Benchmark's flags follow.\n\n");
      rest.push_back(argv[i]);
    } else {
      rest.push_back(argv[i]);
    }
  }
  const BackendRegistry& registry = BackendRegistry::Global();
  options.backends.push_back(kYardstick);
  if (backends_flag.empty()) {
    for (const std::string& name : registry.Names()) {
      if (name != kYardstick) options.backends.push_back(name);
    }
  } else {
    for (absl::string_view name : absl::StrSplit(backends_flag, ',', absl::SkipEmpty())) {
      if (absl::Status s = registry.CheckName(name); !s.ok()) {
        std::fprintf(stderr, "latency: --backends: %s\n", std::string(s.message()).c_str());
        return 2;
      }
      if (name != kYardstick) options.backends.emplace_back(name);
    }
  }
  options.memd_path = memd;

  int rest_argc = static_cast<int>(rest.size());
  benchmark::Initialize(&rest_argc, rest.data());
  if (benchmark::ReportUnrecognizedArguments(rest_argc, rest.data())) return 2;
  if (absl::StrContains(layers, '1')) RegisterBackendBenchmarks(options);
  if (absl::StrContains(layers, '2')) RegisterCApiBenchmarks(options);
  if (absl::StrContains(layers, '3')) {
    if (options.memd_path.empty()) {
      std::fprintf(stderr, "latency: no memd binary found (--memd=PATH): layer 3 skipped\n");
    } else {
      RegisterMemdBenchmarks(options);
    }
  }
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  return 0;
}

}  // namespace
}  // namespace bench
}  // namespace l4re_ma

int main(int argc, char** argv) { return l4re_ma::bench::Main(argc, argv); }
