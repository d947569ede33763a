// tests/testing/reference_backend.h: the simplest correct PageBackend, to
// check the conformance suite itself.
//
// Every real backend must pass tests/backends/conformance_test.cc; so must
// this one, which is correct by inspection. A check that fails for the
// reference backend is a bug in the suite, not in a backend. Linked with
// //tests/testing:reference_backend_registered it is registered as
// "reference".
#ifndef L4RE_MA_TESTS_TESTING_REFERENCE_BACKEND_H_
#define L4RE_MA_TESTS_TESTING_REFERENCE_BACKEND_H_

#include <cstdint>
#include <map>
#include <optional>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/string_view.h"
#include "core/page_backend.h"
#include "core/types.h"

namespace l4re_ma {

// ReferenceBackend: one bool per frame and a map of the live runs.
//
// Strategy: Allocate scans the range from its start for the first aligned
// candidate whose frames are all free (first fit; on a used frame the scan
// jumps to the next aligned frame after it, so one call is O(n)). Free looks
// the run up in the map of live runs. Stats() counts everything by scanning
// all frames.
//
// Complexity: Allocate O(n), Free O(pages + log runs), Stats O(n), with
// n = frames in the range. Slow on purpose; never use it outside tests.
//
// Fragmentation: first fit over exact extents. largest_free_run is the
// longest free extent and free_runs the number of maximal free extents.
//
// Invariants: used_[i] is true iff frame range.first + i lies in a live run;
// live runs are disjoint and inside the range.
//
// Thread-safety: none (single-threaded by contract).
class ReferenceBackend final : public PageBackend {
 public:
  // REQUIRES: range.pages >= 1.
  explicit ReferenceBackend(PageRun range);

  absl::string_view name() const override { return "reference"; }
  PageRun range() const override { return range_; }
  std::optional<FrameNumber> Allocate(PageCount pages, AlignOrder align) override;
  [[nodiscard]] bool Free(PageRun run) override;
  BackendStats Stats() const override;
  absl::Status CheckInvariants() const override;

 private:
  bool IsUsed(uint64_t frame) const { return used_[frame - range_.first.value()]; }
  void Mark(PageRun run, bool used);

  PageRun range_;
  std::vector<bool> used_;           // one entry per frame of range_
  std::map<uint64_t, uint64_t> live_;  // first frame -> pages
};

}  // namespace l4re_ma

#endif  // L4RE_MA_TESTS_TESTING_REFERENCE_BACKEND_H_
