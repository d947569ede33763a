// tests/testing/shadow_model.h: an obviously-correct model of one backend's
// range, for tests and fuzzers.
//
// A test replays every answer of a backend into a ShadowModel: the model
// rejects any run a correct backend could not have handed out, and from its
// own state gives the exact numbers a backend's Stats() must match:
//
//   l4re_ma::ShadowModel model(backend->range());
//   std::optional<l4re_ma::FrameNumber> f = backend->Allocate(pages, align);
//   if (f) ASSERT_TRUE(model.Allocate(*f, pages, align).ok());
//   EXPECT_EQ(backend->Stats().free_pages, model.free_pages());
#ifndef L4RE_MA_TESTS_TESTING_SHADOW_MODEL_H_
#define L4RE_MA_TESTS_TESTING_SHADOW_MODEL_H_

#include <cstdint>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "core/types.h"

namespace l4re_ma {

// ShadowModel: which frames of a range are handed out, kept as simply as
// possible so that it is right by inspection.
//
// Strategy: the live runs in a std::map (first -> pages); the free frames as
// maximal free extents in a second std::map (first -> end), with a
// std::multiset of their lengths for the longest free run. A superpage (512
// frames from a multiple of 512, all inside the range) is entirely free iff it
// lies inside one maximal free extent, so the count of free superpages is the
// sum over extents, kept up to date as extents are added and removed.
//
// Complexity: Allocate and Free are O(log n) (n = live runs); every accessor
// is O(1) except CanAllocate, FreeRuns and LiveRuns (O(n)) and
// CheckConsistency (O(n log n)), which a long random sequence calls rarely.
//
// Invariants: free extents are disjoint, non-adjacent and non-empty; free
// extents and live runs tile the range exactly; the derived counters equal
// what a scan of the extents gives (CheckConsistency verifies all of it).
//
// Thread-safety: none.
class ShadowModel {
 public:
  // A fresh range: every frame free. REQUIRES: range.pages >= 1 and
  // range.end() does not overflow.
  explicit ShadowModel(PageRun range);

  PageRun range() const { return range_; }

  // Records that a backend answered Allocate(pages, align) with `first`.
  // Returns an error that names the broken rule, and changes nothing, unless
  // [first, first + pages) lies inside the range, first is a multiple of
  // 2^align, and no frame of it is live. REQUIRES: align.value() < 64.
  absl::Status Allocate(FrameNumber first, PageCount pages, AlignOrder align);

  // Records that `run` was freed. Returns an error (and changes nothing)
  // unless `run` is exactly a live run.
  absl::Status Free(PageRun run);

  // Whether `run` is exactly a live run.
  bool IsLive(PageRun run) const;
  // The live run containing frame `f`, if any.
  std::optional<PageRun> LiveRunContaining(FrameNumber f) const;
  // How `run` relates to the current state, for failure messages: "live run",
  // "outside the range ...", "inside live run ...", "free", ...
  std::string Describe(PageRun run) const;

  // Whether some free run of `pages` frames starts at a multiple of 2^align,
  // i.e. whether a perfect backend could satisfy the request now. O(n).
  bool CanAllocate(PageCount pages, AlignOrder align) const;

  PageCount total_pages() const { return range_.pages; }
  PageCount free_pages() const { return PageCount(free_pages_); }
  PageCount live_pages() const { return PageCount(range_.pages.value() - free_pages_); }
  // The longest run of free frames (0 when nothing is free).
  PageCount longest_free_run() const;
  // The number of maximal runs of free frames.
  uint64_t free_run_count() const { return free_.size(); }
  // The number of superpages that are entirely free.
  uint64_t free_superpages() const { return free_superpages_; }
  // The number of superpages lying entirely inside the range.
  uint64_t total_superpages() const { return SuperpagesIn(range_.first, range_.end()); }
  uint64_t live_run_count() const { return live_.size(); }

  // The maximal free runs and the live runs, sorted by first frame. O(n).
  std::vector<PageRun> FreeRuns() const;
  std::vector<PageRun> LiveRuns() const;

  // Recomputes everything from scratch and compares (the model's own test).
  absl::Status CheckConsistency() const;

  // The number of superpages (first frame a multiple of 512, all 512 frames
  // in [first, end)) inside [first, end).
  static uint64_t SuperpagesIn(FrameNumber first, FrameNumber end);

 private:
  // Adds [start, end) to the free extents, merging with its neighbours.
  void AddFree(uint64_t start, uint64_t end);
  // Removes the extent at `it` from the extents and the derived counters.
  void EraseExtent(std::map<uint64_t, uint64_t>::iterator it);
  // Inserts [start, end) as an extent, no merging. REQUIRES: start < end.
  void InsertExtent(uint64_t start, uint64_t end);

  PageRun range_;
  std::map<uint64_t, uint64_t> free_;     // first frame -> end frame
  std::multiset<uint64_t> free_lengths_;  // lengths of the extents in free_
  std::map<uint64_t, uint64_t> live_;     // first frame -> pages
  uint64_t free_pages_ = 0;
  uint64_t free_superpages_ = 0;
};

}  // namespace l4re_ma

#endif  // L4RE_MA_TESTS_TESTING_SHADOW_MODEL_H_
