#include "bench/replay.h"

#include <algorithm>
#include <cstdint>
#include <memory>
#include <optional>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/str_cat.h"
#include "core/backend_registry.h"
#include "core/page_backend.h"

namespace l4re_ma {
namespace bench {
namespace {

constexpr uint64_t kProgressEvery = uint64_t{1} << 16;

}  // namespace

RunRequest RequestFor(const TraceOp& op) {
  uint64_t pages = PageCount::FromBytesRoundUp(op.bytes).value();
  unsigned shift = std::max<unsigned>(op.align_log2, kPageShift);
  if ((op.flags & kTraceFlagSuperPages) != 0) {
    const uint64_t sp = uint64_t{1} << kSuperPageOrder;
    pages = (pages + sp - 1) / sp * sp;
    shift = std::max<unsigned>(shift, kSuperPageShift);
  }
  return RunRequest{PageCount(pages), AlignOrder(shift - kPageShift)};
}

PageCount PeakLivePages(const Trace& trace) {
  std::vector<uint64_t> slot_pages(trace.slots, 0);
  uint64_t live = 0;
  uint64_t peak = 0;
  for (const TraceOp& op : trace.ops) {
    if (op.kind == TraceOp::Kind::kAlloc) {
      slot_pages[op.slot] = RequestFor(op).pages.value();
      live += slot_pages[op.slot];
      peak = std::max(peak, live);
    } else {
      live -= slot_pages[op.slot];
      slot_pages[op.slot] = 0;
    }
  }
  return PageCount(peak);
}

absl::StatusOr<ReplayResult> Replay(const Trace& trace, absl::string_view backend_name,
                                    const ReplayOptions& options) {
  absl::StatusOr<std::unique_ptr<PageBackend>> created = BackendRegistry::Global().Create(
      backend_name, BackendOptions{PageRun{kReplayBase, options.pool_pages}});
  if (!created.ok()) return created.status();
  PageBackend& backend = **created;

  ReplayResult r;
  // The live run of each slot; pages == 0 when the slot holds nothing (never
  // allocated, freed, or its allocation failed).
  std::vector<PageRun> live(trace.slots, PageRun{});
  uint64_t live_pages = 0;
  double frag_sum = 0;
  double share_sum = 0;
  const uint64_t total = trace.ops.size();
  const uint64_t bucket =
      options.series_points == 0 ? 0 : std::max<uint64_t>(1, (total + options.series_points - 1) /
                                                                 options.series_points);
  SeriesPoint acc;
  uint64_t in_bucket = 0;

  for (const TraceOp& op : trace.ops) {
    if (op.kind == TraceOp::Kind::kAlloc) {
      ++r.allocs;
      const RunRequest req = RequestFor(op);
      std::optional<FrameNumber> f = backend.Allocate(req.pages, req.align);
      if (f.has_value()) {
        live[op.slot] = PageRun{*f, req.pages};
        live_pages += req.pages.value();
        r.peak_live_bytes = std::max(r.peak_live_bytes, PageCount(live_pages).bytes());
      } else {
        ++r.failed_allocs;
        if (options.stop_at_first_failure) {
          ++r.ops;
          break;
        }
      }
    } else if (live[op.slot].pages.value() != 0) {
      if (!backend.Free(live[op.slot])) {
        return absl::InternalError(absl::StrCat("backend '", backend_name, "' refused to free ",
                                                "the live run ", live[op.slot].first.value(), "+",
                                                live[op.slot].pages.value(), " at op ", r.ops,
                                                " of trace ", trace.name));
      }
      live_pages -= live[op.slot].pages.value();
      live[op.slot] = PageRun{};
    }
    ++r.ops;
    if (options.progress && r.ops % kProgressEvery == 0) options.progress(r.ops, total);
    if (options.stop_at_first_failure) continue;

    const BackendStats s = backend.Stats();
    const double free_pages = static_cast<double>(s.free_pages.value());
    const double frag =
        free_pages > 0 ? 1.0 - static_cast<double>(s.largest_free_run.value()) / free_pages : 0.0;
    const double share =
        free_pages > 0
            ? static_cast<double>(s.free_superpages << kSuperPageOrder) / free_pages
            : 0.0;
    frag_sum += frag;
    share_sum += share;
    r.ext_frag_max = std::max(r.ext_frag_max, frag);
    if (bucket != 0) {
      acc.live_bytes += static_cast<double>(PageCount(live_pages).bytes());
      acc.ext_frag += frag;
      acc.superpage_free_share += share;
      if (++in_bucket == bucket || r.ops == total) {
        const double n = static_cast<double>(in_bucket);
        r.series.push_back(SeriesPoint{r.ops, acc.live_bytes / n, acc.ext_frag / n,
                                       acc.superpage_free_share / n});
        acc = SeriesPoint{};
        in_bucket = 0;
      }
    }
  }
  if (!options.stop_at_first_failure && r.ops > 0) {
    r.ext_frag_mean = frag_sum / static_cast<double>(r.ops);
    r.superpage_free_share_mean = share_sum / static_cast<double>(r.ops);
  }
  if (options.progress) options.progress(r.ops, total);
  return r;
}

absl::StatusOr<PageCount> MinPoolPages(const Trace& trace, absl::string_view backend,
                                       const MinPoolOptions& options) {
  const uint64_t peak = std::max<uint64_t>(1, PeakLivePages(trace).value());
  auto works = [&](uint64_t pool) -> absl::StatusOr<bool> {
    ReplayOptions o;
    o.pool_pages = PageCount(pool);
    o.stop_at_first_failure = true;
    absl::StatusOr<ReplayResult> r = Replay(trace, backend, o);
    if (!r.ok()) return r.status();
    const bool ok = r->failed_allocs == 0;
    if (options.on_trial) options.on_trial(PageCount(pool), ok);
    return ok;
  };

  absl::StatusOr<bool> ok = works(peak);
  if (!ok.ok()) return ok.status();
  if (*ok) return PageCount(peak);
  // Invariant from here: lo fails, hi works.
  uint64_t lo = peak;
  uint64_t step = std::max<uint64_t>(1, peak / 8);
  uint64_t hi = peak + step;
  for (;;) {
    ok = works(hi);
    if (!ok.ok()) return ok.status();
    if (*ok) break;
    lo = hi;
    if (hi >= peak * options.max_factor) {
      return absl::ResourceExhaustedError(absl::StrCat(
          "trace ", trace.name, " does not run on backend '", backend, "' even in a pool of ",
          options.max_factor, "x its peak live memory"));
    }
    step *= 2;
    hi = peak + step;
  }
  for (;;) {
    const uint64_t tolerance =
        std::max<uint64_t>(1, static_cast<uint64_t>(static_cast<double>(hi) * options.relative_precision));
    if (hi - lo <= tolerance) break;
    const uint64_t mid = lo + (hi - lo) / 2;
    ok = works(mid);
    if (!ok.ok()) return ok.status();
    if (*ok) {
      hi = mid;
    } else {
      lo = mid;
    }
  }
  return PageCount(hi);
}

}  // namespace bench
}  // namespace l4re_ma
