// bench/backend_benchmark.cc: layer 1 of //bench:latency, every registered
// backend alone, beside the first-fit yardstick (bench/firstfit/) measured in
// the same run.
//
// All pools are built through the registry over a range starting at frame
// 0x40000 (1 GiB), 1 GiB (262144 frames) unless said otherwise, and every
// random choice comes from the same seed, so every backend sees the same
// operations (as long as none fails). Benchmarks, each labelled with the
// backend name:
//   L1_Empty/pages:P/align:A     allocate + free of one run on an empty pool
//                                (1, 4, 16, 512 pages; one superpage;
//                                aligned requests), timed in batches of 32
//                                pairs: ns = median of the batch means;
//   L1_Loaded/pages:P/align:A    the same on the mixed pool below (~70 %);
//   L1_Fragmented                ~100 000 single-page holes scattered
//                                through the pool (53 % live); then, at that
//                                occupancy, a random live run is freed or a
//                                run of 1 page (80 %) or 2-8 pages is
//                                allocated; every operation timed:
//                                p50/p99/p99.9/max of allocations, frees and
//                                both;
//   L1_Mixed                     random 1-64-page requests and frees of
//                                random live runs at ~70 % occupancy, steady
//                                state (after a warm-up), every op timed;
//   L1_Scaling/pool:S            the mixed workload on pools of 64 MiB to
//                                64 GiB: construction time, metadata bytes
//                                per GiB managed (fresh and at 70 %), ns/op.
// Counters: ns (the figure), x_firstfit (ns / the yardstick's ns on the
// same case: for pairs, the yardstick runs in batches interleaved with the
// backend's, in the same pool state, so both see the same machine load; for
// the per-operation cases, its own benchmark earlier in the run),
// percentiles in ns, failed (allocations that failed).
#include <algorithm>
#include <chrono>
#include <cstdint>
#include <memory>
#include <numeric>
#include <optional>
#include <random>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/str_cat.h"
#include "bench/latency_common.h"
#include "bench/timing.h"
#include "benchmark/benchmark.h"
#include "core/backend_registry.h"
#include "core/page_backend.h"
#include "core/types.h"

namespace l4re_ma {
namespace bench {
namespace {

constexpr FrameNumber kBase(0x40000);
constexpr uint64_t kPoolPages = uint64_t{1} << 18;  // 1 GiB
constexpr uint64_t kGiBPages = uint64_t{1} << 18;
constexpr int kBatch = 32;
constexpr uint64_t kSeed = 0x6c347265;
constexpr double kOccupancy = 0.70;

std::unique_ptr<PageBackend> MakeBackend(const std::string& name, uint64_t pages) {
  absl::StatusOr<std::unique_ptr<PageBackend>> b =
      BackendRegistry::Global().Create(name, BackendOptions{PageRun{kBase, PageCount(pages)}});
  if (!b.ok()) Fatal(absl::StrCat("cannot build backend ", name, ": ", b.status().ToString()));
  return *std::move(b);
}

// The live runs of a pool under a random workload.
class Workload {
 public:
  Workload(PageBackend* backend, uint64_t seed) : b_(backend), rng_(seed) {}

  uint64_t Uniform(uint64_t lo, uint64_t hi) { return lo + rng_() % (hi - lo + 1); }
  // The request sizes of the mixed workload: 1-64 pages.
  uint64_t MixedSize() { return Uniform(1, 64); }

  bool Allocate(uint64_t pages) {
    std::optional<FrameNumber> f = b_->Allocate(PageCount(pages), AlignOrder(0));
    if (!f) return false;
    live_.push_back(PageRun{*f, PageCount(pages)});
    live_pages_ += pages;
    return true;
  }

  // Mixed-size allocations until `occupancy` of the pool is live.
  void Fill(double occupancy) {
    const uint64_t target = static_cast<uint64_t>(occupancy * static_cast<double>(total()));
    while (live_pages_ < target) {
      if (!Allocate(MixedSize())) Fatal(absl::StrCat(b_->name(), ": pool full while filling"));
    }
  }

  // Frees `holes` single-page runs at random among every other live run in
  // address order, so that no two holes touch; highest address first (each
  // free is then O(1) for the first-fit list, which would otherwise spend
  // minutes here).
  void PunchIsolatedHoles(uint64_t holes) {
    std::sort(live_.begin(), live_.end(),
              [](const PageRun& a, const PageRun& c) { return a.first < c.first; });
    std::vector<uint64_t> odd(live_.size() / 2);
    if (holes > odd.size()) Fatal("not enough live runs for the holes");
    std::iota(odd.begin(), odd.end(), 0);
    std::shuffle(odd.begin(), odd.end(), rng_);
    odd.resize(holes);
    std::sort(odd.begin(), odd.end(), std::greater<>());
    for (uint64_t k : odd) {
      PageRun& r = live_[2 * k + 1];
      if (!b_->Free(r)) Fatal(absl::StrCat(b_->name(), " refused to free a live run"));
      live_pages_ -= r.pages.value();
      r.pages = PageCount(0);
    }
    live_.erase(std::remove_if(live_.begin(), live_.end(),
                               [](const PageRun& r) { return r.pages.value() == 0; }),
                live_.end());
    std::shuffle(live_.begin(), live_.end(), rng_);
  }

  // One step at `target` live pages: below it, allocate size() pages;
  // otherwise free a random live run. Returns the cycles the backend call
  // took (the bookkeeping around it is not timed) and counts failures.
  template <typename SizeFn>
  uint64_t Step(uint64_t target, SizeFn size) {
    if (live_pages_ < target || live_.empty()) {
      const uint64_t pages = size();
      const uint64_t t0 = CycleClock::Now();
      std::optional<FrameNumber> f = b_->Allocate(PageCount(pages), AlignOrder(0));
      const uint64_t t1 = CycleClock::Now();
      if (f) {
        live_.push_back(PageRun{*f, PageCount(pages)});
        live_pages_ += pages;
      } else {
        ++failed_;
      }
      last_was_alloc_ = true;
      return t1 - t0;
    }
    const size_t i = rng_() % live_.size();
    const PageRun r = live_[i];
    live_[i] = live_.back();
    live_.pop_back();
    const uint64_t t0 = CycleClock::Now();
    const bool ok = b_->Free(r);
    const uint64_t t1 = CycleClock::Now();
    if (!ok) Fatal(absl::StrCat(b_->name(), " refused to free a live run"));
    live_pages_ -= r.pages.value();
    last_was_alloc_ = false;
    return t1 - t0;
  }
  uint64_t MixedStep() {
    return Step(target(), [this] { return MixedSize(); });
  }

  PageBackend& backend() { return *b_; }
  uint64_t total() const { return b_->range().pages.value(); }
  // 70 % of the pool.
  uint64_t target() const {
    return static_cast<uint64_t>(kOccupancy * static_cast<double>(total()));
  }
  uint64_t live_pages() const { return live_pages_; }
  std::vector<PageRun>& live() { return live_; }
  uint64_t failed() const { return failed_; }
  bool last_was_alloc() const { return last_was_alloc_; }

 private:
  PageBackend* b_;
  std::mt19937_64 rng_;
  std::vector<PageRun> live_;
  uint64_t live_pages_ = 0;
  uint64_t failed_ = 0;
  bool last_was_alloc_ = false;
};

// Brings a pool to the mixed steady state: filled to 70 %, then `warmup`
// mixed steps.
void BuildMixed(Workload& w, uint64_t warmup) {
  w.live().reserve(static_cast<size_t>(w.total() / 16));
  w.Fill(kOccupancy);
  for (uint64_t i = 0; i < warmup; ++i) w.MixedStep();
}

// Times every step of a workload at `target` live pages, one operation per
// iteration: ns (mean), percentiles of all operations, of allocations and
// of frees, failed; x_firstfit = ns / the yardstick's under `key`, which the
// yardstick's own benchmark (registered first) records.
template <typename SizeFn>
LatencySummary TimeSteps(benchmark::State& state, Workload& w, uint64_t target, SizeFn size,
                         const std::string& key) {
  const CycleClock& clock = CycleClock::Get();
  const size_t n = static_cast<size_t>(state.max_iterations);
  LatencySamples all(n);
  LatencySamples allocs(n);
  LatencySamples frees(n);
  for (auto _ : state) {
    const uint64_t c = w.Step(target, size);
    all.Add(c);
    (w.last_was_alloc() ? allocs : frees).Add(c);
  }
  const LatencySummary s = all.Summarize(clock);
  state.counters["ns"] = s.mean;
  SetPercentiles(state, "", s);
  SetPercentiles(state, "alloc_", allocs.Summarize(clock));
  SetPercentiles(state, "free_", frees.Summarize(clock));
  state.counters["failed"] = static_cast<double>(w.failed());
  state.SetItemsProcessed(state.iterations());
  if (w.backend().name() == kYardstick) Baselines::Set(key, s.mean);
  SetRatio(state, "x_firstfit", key, s.mean);
  return s;
}

// One allocate + free pair; false if either fails.
bool Pair(PageBackend& b, uint64_t pages, unsigned align) {
  std::optional<FrameNumber> f = b.Allocate(PageCount(pages), AlignOrder(align));
  benchmark::DoNotOptimize(f);
  return f.has_value() && b.Free(PageRun{*f, PageCount(pages)});
}

// Batches of allocate + free pairs of one request on `b`, interleaved with
// batches of the same pairs on the yardstick `y` in the same state, so that
// both see the same machine load: ns (the median of the batch means) and
// x_firstfit = ns / the yardstick's.
void TimePairs(benchmark::State& state, PageBackend& b, PageBackend& y, uint64_t pages,
               unsigned align) {
  TimeInterleaved(
      state, kBatch, [&] { return Pair(b, pages, align); }, [&] { return Pair(y, pages, align); },
      "x_firstfit");
}

void BM_Empty(benchmark::State& state, std::string backend, uint64_t pages, unsigned align) {
  std::unique_ptr<PageBackend> b = MakeBackend(backend, kPoolPages);
  std::unique_ptr<PageBackend> y = MakeBackend(kYardstick, kPoolPages);
  state.SetLabel(backend);
  TimePairs(state, *b, *y, pages, align);
}

void BM_Loaded(benchmark::State& state, std::string backend, uint64_t pages, unsigned align,
               uint64_t warmup, uint64_t yardstick_warmup) {
  std::unique_ptr<PageBackend> b = MakeBackend(backend, kPoolPages);
  std::unique_ptr<PageBackend> y = MakeBackend(kYardstick, kPoolPages);
  state.SetLabel(backend);
  Workload w(b.get(), kSeed);
  BuildMixed(w, warmup);
  Workload wy(y.get(), kSeed);
  BuildMixed(wy, yardstick_warmup);
  TimePairs(state, *b, *y, pages, align);
}

void BM_Mixed(benchmark::State& state, std::string backend, uint64_t warmup) {
  std::unique_ptr<PageBackend> b = MakeBackend(backend, kPoolPages);
  state.SetLabel(backend);
  Workload w(b.get(), kSeed);
  BuildMixed(w, warmup);
  const LatencySummary s = TimeSteps(state, w, w.target(), [&w] { return w.MixedSize(); }, "mixed");
  state.counters["occupancy"] =
      static_cast<double>(w.live_pages()) / static_cast<double>(kPoolPages);
  if (backend == kYardstick) Baselines::Set("mixed/p50", s.p50);
  SetRatio(state, "x_firstfit_p50", "mixed/p50", s.p50);
}

// ~100 000 isolated single-page holes in a 1 GiB pool, then frees of random
// live runs and small allocations, keeping the occupancy where it was.
void BM_Fragmented(benchmark::State& state, std::string backend) {
  constexpr uint64_t kFilled = 240000;
  constexpr uint64_t kHoles = 100000;
  std::unique_ptr<PageBackend> b = MakeBackend(backend, kPoolPages);
  state.SetLabel(backend);
  Workload w(b.get(), kSeed);
  w.live().reserve(kFilled + static_cast<size_t>(state.max_iterations));
  for (uint64_t i = 0; i < kFilled; ++i) {
    if (!w.Allocate(1)) Fatal(absl::StrCat(backend, ": cannot fill the pool with single pages"));
  }
  w.PunchIsolatedHoles(kHoles);
  state.counters["holes"] = static_cast<double>(b->Stats().free_runs);
  // 1 page (80 %) or 2-8 pages, at the occupancy the holes left.
  TimeSteps(state, w, w.live_pages(),
            [&w] { return w.Uniform(0, 9) < 8 ? 1 : w.Uniform(2, 8); }, "fragmented");
}

void BM_Scaling(benchmark::State& state, std::string backend, uint64_t pool_pages,
                uint64_t warmup) {
  const auto t0 = std::chrono::steady_clock::now();
  std::unique_ptr<PageBackend> b = MakeBackend(backend, pool_pages);
  const auto t1 = std::chrono::steady_clock::now();
  state.SetLabel(backend);
  const double gib = static_cast<double>(pool_pages) / static_cast<double>(kGiBPages);
  state.counters["construct_us"] = std::chrono::duration<double, std::micro>(t1 - t0).count();
  state.counters["meta_fresh_B_per_GiB"] = static_cast<double>(b->Stats().metadata_bytes) / gib;
  Workload w(b.get(), kSeed);
  BuildMixed(w, warmup);
  TimeSteps(state, w, w.target(), [&w] { return w.MixedSize(); },
            absl::StrCat("scaling/", pool_pages));
  state.counters["meta_B_per_GiB"] = static_cast<double>(b->Stats().metadata_bytes) / gib;
}

std::string PoolName(uint64_t pages) {
  const uint64_t mib = pages * kPageSize >> 20;
  return mib >= 1024 ? absl::StrCat(mib / 1024, "G") : absl::StrCat(mib, "M");
}

}  // namespace

void RegisterBackendBenchmarks(const LatencyOptions& o) {
  struct Request {
    uint64_t pages;
    unsigned align;
  };
  // Runs of 1, 4, 16, 512 pages; one superpage; aligned requests (64 KiB,
  // 1 MiB).
  const Request empty[] = {{1, 0}, {4, 0}, {16, 0}, {512, 0}, {512, 9}, {1, 4}, {16, 8}};
  const Request loaded[] = {{1, 0}, {16, 0}, {512, 9}, {1, 4}, {16, 8}};
  const uint64_t batches = Scaled(o, 20000, 100);
  for (const Request& r : empty) {
    for (const std::string& name : o.backends) {
      benchmark::RegisterBenchmark(
          absl::StrCat("L1_Empty/pages:", r.pages, "/align:", r.align, "/", name).c_str(),
          BM_Empty, name, r.pages, r.align)
          ->Iterations(static_cast<benchmark::IterationCount>(batches));
    }
  }
  for (const std::string& name : o.backends) {
    const bool slow = name == kYardstick;
    benchmark::RegisterBenchmark(absl::StrCat("L1_Mixed/", name).c_str(), BM_Mixed, name,
                                 Scaled(o, slow ? 20000 : 100000, 200))
        ->Iterations(static_cast<benchmark::IterationCount>(Scaled(o, slow ? 5000 : 200000, 500)));
  }
  for (const Request& r : loaded) {
    for (const std::string& name : o.backends) {
      const bool slow = name == kYardstick;
      benchmark::RegisterBenchmark(
          absl::StrCat("L1_Loaded/pages:", r.pages, "/align:", r.align, "/", name).c_str(),
          BM_Loaded, name, r.pages, r.align, Scaled(o, slow ? 20000 : 100000, 200),
          Scaled(o, 20000, 200))
          ->Iterations(static_cast<benchmark::IterationCount>(Scaled(o, 300, 20)));
    }
  }
  for (const std::string& name : o.backends) {
    const bool slow = name == kYardstick;
    benchmark::RegisterBenchmark(absl::StrCat("L1_Fragmented/", name).c_str(), BM_Fragmented,
                                 name)
        ->Iterations(static_cast<benchmark::IterationCount>(Scaled(o, slow ? 2000 : 100000, 200)));
  }
  // Scaling: steady state needs most live runs replaced, so the warm-up is
  // twice the live runs expected at 70 % (average request 32.5 pages). The
  // yardstick cannot get there on large pools (its operations cost
  // milliseconds there) and runs up to 4 GiB only.
  for (uint64_t pool = uint64_t{1} << 14; pool <= uint64_t{1} << 24; pool <<= 2) {
    const uint64_t live_runs = pool * 7 / 10 * 2 / 65;
    for (const std::string& name : o.backends) {
      const bool slow = name == kYardstick;
      if (slow && pool > (uint64_t{1} << 20)) continue;
      benchmark::RegisterBenchmark(
          absl::StrCat("L1_Scaling/pool:", PoolName(pool), "/", name).c_str(), BM_Scaling, name,
          pool, Scaled(o, std::max<uint64_t>(20000, 2 * live_runs), 200))
          ->Iterations(static_cast<benchmark::IterationCount>(Scaled(o, slow ? 2000 : 50000, 200)));
    }
  }
}

}  // namespace bench
}  // namespace l4re_ma
