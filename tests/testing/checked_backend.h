// tests/testing/checked_backend.h: drives a PageBackend and a ShadowModel in
// lockstep and checks the PageBackend contract after every call.
//
// The conformance suite, fuzzers and ad-hoc tests share these checks:
//
//   std::unique_ptr<l4re_ma::PageBackend> b = ...;  // freshly constructed
//   l4re_ma::CheckedBackend checked(b.get());
//   ASSERT_TRUE(checked.CheckFresh().ok());
//   absl::StatusOr<std::optional<l4re_ma::FrameNumber>> f =
//       checked.Allocate(l4re_ma::PageCount(3), l4re_ma::AlignOrder(0));
//   ASSERT_TRUE(f.ok()) << f.status();  // ok: the answer obeyed the contract
//   if (*f) ASSERT_TRUE(checked.Free({**f, l4re_ma::PageCount(3)}).ok());
//
// Every error message says what was asked, what the backend answered and
// which rule that breaks.
#ifndef L4RE_MA_TESTS_TESTING_CHECKED_BACKEND_H_
#define L4RE_MA_TESTS_TESTING_CHECKED_BACKEND_H_

#include <cstddef>
#include <cstdint>
#include <optional>
#include <random>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "core/page_backend.h"
#include "core/types.h"
#include "tests/testing/shadow_model.h"

namespace l4re_ma {

// CheckedBackend: a PageBackend under test plus its ShadowModel.
//
// After every Allocate or Free it checks, in O(log n) plus one Stats() call:
//   - a returned run lies inside the range, is aligned as asked and overlaps
//     no live run (the model);
//   - Stats(): total_pages unchanged, free_pages and free_superpages equal
//     the model's, largest_free_run <= the model's longest free run;
//   - at AlignOrder(0), Allocate(N) succeeds iff N <= the largest_free_run
//     reported before the call (that is what largest_free_run means);
//   - Free of a live run succeeds.
// ExpectFreeRejected checks that a run which is not live is refused without
// any change to Stats(); CheckDeep adds CheckInvariants() and probes
// largest_free_run with real allocations.
//
// Once a check has failed the model may disagree with the backend; stop
// using the object then (tests ASSERT on every call).
//
// Thread-safety: none.
class CheckedBackend {
 public:
  // `backend` must be freshly constructed and outlive this object.
  explicit CheckedBackend(PageBackend* backend);

  CheckedBackend(const CheckedBackend&) = delete;
  CheckedBackend& operator=(const CheckedBackend&) = delete;

  // Checks the state of a fresh backend: every page free, free_superpages
  // equal to the model's, CheckInvariants() ok.
  absl::Status CheckFresh();

  // Forwards Allocate and checks the answer (see the class comment). Returns
  // the backend's answer, or an error when it breaks the contract.
  // REQUIRES: pages >= 1, align.value() < 64.
  absl::StatusOr<std::optional<FrameNumber>> Allocate(PageCount pages, AlignOrder align);

  // Frees a live run; an error when the backend refuses it or Stats() is off.
  // O(live runs) to find it: random sequences use FreeLiveRun.
  absl::Status Free(PageRun run);
  // Frees live_runs()[index] (the last live run moves into its slot).
  absl::Status FreeLiveRun(size_t index);
  // Frees every live run, in an order drawn from `rng`.
  absl::Status FreeAll(std::mt19937_64& rng);

  // Offers `run`, which must not be a live run, to Free. An error unless
  // Free returns false, Stats() is exactly as before and CheckInvariants()
  // still holds.
  absl::Status ExpectFreeRejected(PageRun run);

  // Compares Stats() with the model; the fast check done after every call.
  absl::Status CheckStats();

  // CheckStats, CheckInvariants(), then allocates largest_free_run pages
  // (must succeed) and largest_free_run + 1 pages (must fail) at order 0 and
  // frees what it got. Leaves the same live runs; O(n).
  absl::Status CheckDeep();

  PageBackend& backend() { return *backend_; }
  const ShadowModel& model() const { return model_; }
  // The live runs, in no particular order (for picking one at random).
  const std::vector<PageRun>& live_runs() const { return live_runs_; }
  // Stats() as of the last check.
  const BackendStats& last_stats() const { return last_stats_; }

 private:
  PageBackend* backend_;
  ShadowModel model_;
  std::vector<PageRun> live_runs_;
  BackendStats last_stats_;
};

}  // namespace l4re_ma

#endif  // L4RE_MA_TESTS_TESTING_CHECKED_BACKEND_H_
