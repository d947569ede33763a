// bench/replay.h: replays a trace (bench/trace.h) on a backend and measures
// fragmentation: the core of //bench:fragmentation.
//
// Every allocation is replayed as ONE contiguous run at the PageBackend
// interface, whatever its flags: a non-contiguous request could always be
// met page by page, so what fragmentation decides is whether contiguous runs
// still fit. Sizes round up to pages; SUPER_PAGES requests round up to whole
// superpages and are superpage-aligned; an alignment is raised to at least a
// page (a superpage with SUPER_PAGES), as l4re_ma_alloc_align does.
//
//   l4re_ma::bench::ReplayOptions opt;
//   opt.pool_pages = l4re_ma::PageCount(65536);
//   absl::StatusOr<l4re_ma::bench::ReplayResult> r =
//       l4re_ma::bench::Replay(trace, "buddy", opt);
//   absl::StatusOr<l4re_ma::PageCount> min =
//       l4re_ma::bench::MinPoolPages(trace, "buddy", {});
//
// Backends are built through the registry over a range starting at frame
// 0x40000 (1 GiB), like every pool of the project.
#ifndef L4RE_MA_BENCH_REPLAY_H_
#define L4RE_MA_BENCH_REPLAY_H_

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "bench/trace.h"
#include "core/types.h"

namespace l4re_ma {
namespace bench {

// Where every replayed pool starts: 1 GiB, as core/phys_pool.h's default.
inline constexpr FrameNumber kReplayBase = FrameNumber(0x40000);

// The run an allocation is replayed as.
struct RunRequest {
  PageCount pages;
  AlignOrder align;
};
RunRequest RequestFor(const TraceOp& op);

// The most pages live at once when every allocation succeeds: no pool
// smaller than this can run the trace. O(ops).
PageCount PeakLivePages(const Trace& trace);

// Called now and then during long replays (done / total ops).
using ProgressFn = std::function<void(uint64_t done, uint64_t total)>;

struct ReplayOptions {
  PageCount pool_pages;
  // Stop at the first failed allocation (bisection only needs to know
  // whether there is one) and skip the per-op statistics.
  bool stop_at_first_failure = false;
  // Points of the time series to keep (buckets of consecutive ops,
  // averaged); 0 keeps none.
  uint32_t series_points = 0;
  ProgressFn progress;
};

// One point of the time series: the averages over a bucket of ops.
struct SeriesPoint {
  uint64_t op = 0;          // index of the bucket's last op + 1
  double live_bytes = 0;    // live bytes after the ops
  double ext_frag = 0;      // 1 - largest free run / free pages
  double superpage_free_share = 0;
};

struct ReplayResult {
  uint64_t ops = 0;  // operations replayed (all of them unless stopped early)
  uint64_t allocs = 0;
  uint64_t failed_allocs = 0;
  uint64_t peak_live_bytes = 0;  // of this replay: failed allocations hold nothing
  // External fragmentation after every op, 1 - largest_free_run /
  // free_pages (0 while nothing is free): its mean and maximum.
  double ext_frag_mean = 0;
  double ext_frag_max = 0;
  // Share of the free pages that lie in entirely free superpages, after
  // every op, averaged.
  double superpage_free_share_mean = 0;
  std::vector<SeriesPoint> series;
};

// Replays `trace` on a fresh `backend` (a registered name) over
// options.pool_pages frames from kReplayBase. A free of an id whose
// allocation failed is skipped. A backend that refuses to free a run it
// handed out is a bug: reported as an Internal error.
absl::StatusOr<ReplayResult> Replay(const Trace& trace, absl::string_view backend,
                                    const ReplayOptions& options);

struct MinPoolOptions {
  // Bisection stops when the interval is at most this fraction of the
  // answer (or one page): 1/1024 gives overhead to about 0.1 %.
  double relative_precision = 1.0 / 1024;
  // Give up above this multiple of the peak (then the result is an error).
  uint64_t max_factor = 64;
  // Called after every trial replay: the pool size tried and whether the
  // whole trace ran without a failed allocation.
  std::function<void(PageCount pool, bool ok)> on_trial;
};

// The smallest pool on which `trace` runs on `backend` with no failed
// allocation, found by bisection between the peak live pages and a pool
// that works (found by doubling). Fragmentation need not be monotonic in
// the pool size; the answer is a size that works, with a failing size
// within the precision below it.
absl::StatusOr<PageCount> MinPoolPages(const Trace& trace, absl::string_view backend,
                                       const MinPoolOptions& options);

}  // namespace bench
}  // namespace l4re_ma

#endif  // L4RE_MA_BENCH_REPLAY_H_
