// bench/fragmentation_main.cc: //bench:fragmentation, replays traces on
// backends and reports how much memory each needs and how fragmented it
// gets.
//
//   bazel run //bench:fragmentation -- --backend=all [--pool_size=64M]
//       [--json] --trace=$PWD/bench/traces/gcc.trace
//
// For each trace and backend: peak_live_bytes (most bytes live at once, the
// backend-independent lower bound), min_pool_bytes (the smallest pool on
// which the whole trace runs without a failed allocation, by bisection),
// overhead = min_pool_bytes / peak_live_bytes, and, replayed on a pool of
// --pool_size, failed_allocs and the fragmentation after every operation:
// ext_frag_mean / ext_frag_max (1 - largest free run / free bytes) and
// superpage_free_share_mean (share of the free bytes lying in whole free
// superpages). --json prints one JSON object per line per trace and backend
// with exactly those keys plus backend, trace and ops. Progress goes to
// stderr. Exit status: 0, 1 when a replay failed (a backend bug), 2 for bad
// flags or a malformed trace.
#include <unistd.h>

#include <cinttypes>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <fstream>
#include <iostream>
#include <string>
#include <vector>

#include "absl/flags/flag.h"
#include "absl/flags/parse.h"
#include "absl/flags/usage.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_split.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "bench/replay.h"
#include "bench/trace.h"
#include "core/backend_registry.h"
#include "core/byte_size.h"

ABSL_FLAG(std::vector<std::string>, trace, {}, "trace file(s) to replay, comma-separated");
ABSL_FLAG(std::string, backend, "all", "backend name, or 'all' for every registered one");
ABSL_FLAG(std::string, pool_size, "auto",
          "pool size for failed_allocs and the fragmentation figures (suffixes K, M, G); "
          "'auto': 1.25 x the trace's peak live bytes, rounded up to whole superpages");
ABSL_FLAG(bool, json, false, "print one JSON object per line per trace and backend");
ABSL_FLAG(bool, min_pool, true, "find min_pool_bytes by bisection (the slowest part)");
ABSL_FLAG(std::string, series_out, "",
          "also write the fragmentation time series and pool sizes (JSON) to this file, "
          "for //bench:report");
ABSL_FLAG(int32_t, series_points, 200, "points per time series in --series_out");

namespace l4re_ma {
namespace bench {
namespace {

// Progress lines on stderr, at most one a second (a carriage return keeps
// them on one line on a terminal).
class Progress {
 public:
  Progress() : tty_(isatty(STDERR_FILENO) != 0) {}

  void Start(std::string what) {
    what_ = std::move(what);
    last_ = absl::Now();
    Print("");
  }
  void Update(const std::string& detail) {
    const absl::Time now = absl::Now();
    if (now - last_ < absl::Seconds(1)) return;
    last_ = now;
    Print(detail);
  }
  void Done(const std::string& detail) {
    Print(detail);
    if (tty_) std::fputc('\n', stderr);
  }

 private:
  void Print(const std::string& detail) {
    std::fprintf(stderr, tty_ ? "\r\033[K[fragmentation] %s %s" : "[fragmentation] %s %s\n",
                 what_.c_str(), detail.c_str());
    std::fflush(stderr);
  }
  bool tty_;
  std::string what_;
  absl::Time last_;
};

std::string JsonString(absl::string_view s) {
  std::string out = "\"";
  for (char c : s) {
    if (c == '"' || c == '\\') {
      out += '\\';
      out += c;
    } else if (static_cast<unsigned char>(c) < 0x20) {
      absl::StrAppendFormat(&out, "\\u%04x", c);
    } else {
      out += c;
    }
  }
  return out + "\"";
}

std::string JsonNumber(double v) {
  if (!std::isfinite(v)) return "null";
  return absl::StrFormat("%.6g", v);
}

struct Row {
  std::string backend;
  std::string trace;
  uint64_t ops = 0;
  uint64_t peak_live_bytes = 0;
  uint64_t min_pool_bytes = 0;  // 0: not measured
  uint64_t pool_bytes = 0;
  ReplayResult replay;
};

std::string JsonLine(const Row& r) {
  const double overhead =
      r.peak_live_bytes == 0 || r.min_pool_bytes == 0
          ? NAN
          : static_cast<double>(r.min_pool_bytes) / static_cast<double>(r.peak_live_bytes);
  return absl::StrCat(
      "{\"backend\":", JsonString(r.backend), ",\"trace\":", JsonString(r.trace),
      ",\"ops\":", r.ops, ",\"peak_live_bytes\":", r.peak_live_bytes,
      ",\"min_pool_bytes\":", r.min_pool_bytes == 0 ? "null" : absl::StrCat(r.min_pool_bytes),
      ",\"overhead\":", JsonNumber(overhead), ",\"failed_allocs\":", r.replay.failed_allocs,
      ",\"ext_frag_mean\":", JsonNumber(r.replay.ext_frag_mean),
      ",\"ext_frag_max\":", JsonNumber(r.replay.ext_frag_max),
      ",\"superpage_free_share_mean\":", JsonNumber(r.replay.superpage_free_share_mean), "}");
}

void PrintTable(const std::vector<Row>& rows) {
  std::printf("%-18s %-9s %9s %11s %11s %11s %8s %7s %9s %9s %9s\n", "trace", "backend", "ops",
              "peak_live", "min_pool", "pool", "overhead", "failed", "frag_mean", "frag_max",
              "sp_share");
  for (const Row& r : rows) {
    const std::string overhead =
        r.min_pool_bytes == 0 ? "-"
                              : absl::StrFormat("%.3f", static_cast<double>(r.min_pool_bytes) /
                                                            static_cast<double>(r.peak_live_bytes));
    std::printf("%-18s %-9s %9" PRIu64 " %11s %11s %11s %8s %7" PRIu64 " %9.4f %9.4f %9.4f\n",
                r.trace.c_str(), r.backend.c_str(), r.ops, FormatBytes(r.peak_live_bytes).c_str(),
                r.min_pool_bytes == 0 ? "-" : FormatBytes(r.min_pool_bytes).c_str(),
                FormatBytes(r.pool_bytes).c_str(), overhead.c_str(), r.replay.failed_allocs,
                r.replay.ext_frag_mean, r.replay.ext_frag_max, r.replay.superpage_free_share_mean);
  }
}

bool WriteSeries(const std::string& path, const std::vector<Row>& rows) {
  std::ofstream out(path);
  if (!out) return false;
  out << "{\"runs\":[\n";
  for (size_t i = 0; i < rows.size(); ++i) {
    const Row& r = rows[i];
    out << "{\"backend\":" << JsonString(r.backend) << ",\"trace\":" << JsonString(r.trace)
        << ",\"ops\":" << r.ops << ",\"pool_bytes\":" << r.pool_bytes
        << ",\"peak_live_bytes\":" << r.peak_live_bytes << ",\"points\":[";
    for (size_t j = 0; j < r.replay.series.size(); ++j) {
      const SeriesPoint& p = r.replay.series[j];
      out << (j == 0 ? "" : ",") << "[" << p.op << "," << JsonNumber(p.live_bytes) << ","
          << JsonNumber(p.ext_frag) << "," << JsonNumber(p.superpage_free_share) << "]";
    }
    out << "]}" << (i + 1 < rows.size() ? ",\n" : "\n");
  }
  out << "]}\n";
  return static_cast<bool>(out);
}

int Main() {
  const std::vector<std::string> traces = absl::GetFlag(FLAGS_trace);
  if (traces.empty()) {
    std::cerr << "fragmentation: --trace=FILE is required (see --help)\n";
    return 2;
  }
  std::vector<std::string> backends;
  const std::string backend_flag = absl::GetFlag(FLAGS_backend);
  if (backend_flag == "all") {
    backends = BackendRegistry::Global().Names();
  } else {
    for (absl::string_view name : absl::StrSplit(backend_flag, ',')) {
      if (absl::Status s = BackendRegistry::Global().CheckName(name); !s.ok()) {
        std::cerr << "fragmentation: --backend=" << backend_flag << ": " << s.message() << "\n";
        return 2;
      }
      backends.emplace_back(name);
    }
  }
  uint64_t fixed_pool = 0;
  if (const std::string p = absl::GetFlag(FLAGS_pool_size); p != "auto") {
    absl::StatusOr<uint64_t> bytes = ParseByteSize(p);
    if (!bytes.ok() || *bytes % kPageSize != 0) {
      std::cerr << "fragmentation: --pool_size=" << p << ": "
                << (bytes.ok() ? "not a whole number of 4 KiB pages"
                               : std::string(bytes.status().message()))
                << "\n";
      return 2;
    }
    fixed_pool = *bytes;
  }

  Progress progress;
  std::vector<Row> rows;
  int status = 0;
  for (const std::string& path : traces) {
    absl::StatusOr<Trace> trace = LoadTrace(path);
    if (!trace.ok()) {
      std::cerr << "fragmentation: " << trace.status().message() << "\n";
      return 2;
    }
    const PageCount peak = PeakLivePages(*trace);
    uint64_t pool_pages = fixed_pool / kPageSize;
    if (pool_pages == 0) {
      const uint64_t sp = uint64_t{1} << kSuperPageOrder;
      pool_pages = std::max<uint64_t>(sp, (peak.value() * 5 / 4 + sp - 1) / sp * sp);
    }
    for (const std::string& backend : backends) {
      Row row;
      row.backend = backend;
      row.trace = trace->name;
      row.ops = trace->ops.size();
      row.peak_live_bytes = peak.bytes();
      row.pool_bytes = PageCount(pool_pages).bytes();
      progress.Start(absl::StrCat(trace->name, " on ", backend, ":"));

      ReplayOptions options;
      options.pool_pages = PageCount(pool_pages);
      options.series_points = static_cast<uint32_t>(std::max(0, absl::GetFlag(FLAGS_series_points)));
      options.progress = [&](uint64_t done, uint64_t total) {
        progress.Update(absl::StrFormat("replay on %s: %d/%d ops", FormatBytes(row.pool_bytes),
                                        done, total));
      };
      absl::StatusOr<ReplayResult> r = Replay(*trace, backend, options);
      if (!r.ok()) {
        std::cerr << "\nfragmentation: " << r.status().message() << "\n";
        status = 1;
        continue;
      }
      row.replay = *std::move(r);
      if (absl::GetFlag(FLAGS_min_pool)) {
        int trial = 0;
        MinPoolOptions mo;
        mo.on_trial = [&](PageCount pool, bool ok) {
          progress.Update(absl::StrFormat("bisecting min_pool_bytes: trial %d, %s %s", ++trial,
                                          FormatBytes(pool.bytes()), ok ? "runs" : "fails"));
        };
        absl::StatusOr<PageCount> min = MinPoolPages(*trace, backend, mo);
        if (!min.ok()) {
          std::cerr << "\nfragmentation: " << min.status().message() << "\n";
          status = 1;
        } else {
          row.min_pool_bytes = min->bytes();
        }
      }
      progress.Done(absl::StrFormat("%d ops, %d failed allocations%s", row.ops,
                                    row.replay.failed_allocs,
                                    row.min_pool_bytes == 0
                                        ? ""
                                        : absl::StrCat(", min pool ", FormatBytes(row.min_pool_bytes))));
      if (absl::GetFlag(FLAGS_json)) {
        std::printf("%s\n", JsonLine(row).c_str());
        std::fflush(stdout);
      }
      rows.push_back(std::move(row));
    }
  }
  if (!absl::GetFlag(FLAGS_json)) PrintTable(rows);
  if (const std::string out = absl::GetFlag(FLAGS_series_out); !out.empty()) {
    if (!WriteSeries(out, rows)) {
      std::cerr << "fragmentation: cannot write --series_out=" << out << "\n";
      return 1;
    }
  }
  return status;
}

}  // namespace
}  // namespace bench
}  // namespace l4re_ma

int main(int argc, char** argv) {
  absl::SetProgramUsageMessage(
      "Replays allocation traces on backends and reports fragmentation.\n"
      "  fragmentation --trace=FILE[,FILE...] [--backend=NAME|all] [--pool_size=SIZE|auto] "
      "[--json]\n"
      "Trace format: bench/trace.h. Backends:\n" +
      l4re_ma::BackendRegistry::Global().Describe());
  std::vector<char*> rest = absl::ParseCommandLine(argc, argv);
  if (rest.size() > 1) {
    std::cerr << "fragmentation: unexpected argument '" << rest[1] << "' (see --help)\n";
    return 2;
  }
  return l4re_ma::bench::Main();
}
