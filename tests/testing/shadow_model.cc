#include "tests/testing/shadow_model.h"

#include <algorithm>
#include <iterator>
#include <sstream>
#include <utility>

#include "absl/strings/str_cat.h"

namespace l4re_ma {
namespace {

constexpr uint64_t kSuperPagePages = uint64_t{1} << kSuperPageOrder;

std::string ToString(PageRun run) {
  std::ostringstream os;
  os << run;
  return os.str();
}

// The first multiple of 2^order at or after `f`, if it is below 2^64.
std::optional<uint64_t> RoundUp(uint64_t f, unsigned order) {
  if (order >= 64) return f == 0 ? std::optional<uint64_t>(0) : std::nullopt;
  const uint64_t mask = (uint64_t{1} << order) - 1;
  if (f > UINT64_MAX - mask) return std::nullopt;
  return (f + mask) & ~mask;
}

}  // namespace

uint64_t ShadowModel::SuperpagesIn(FrameNumber first, FrameNumber end) {
  const uint64_t lo = (first.value() + kSuperPagePages - 1) / kSuperPagePages;
  const uint64_t hi = end.value() / kSuperPagePages;
  return hi > lo ? hi - lo : 0;
}

ShadowModel::ShadowModel(PageRun range) : range_(range) {
  if (range.pages.value() > 0) AddFree(range.first.value(), range.end().value());
}

void ShadowModel::InsertExtent(uint64_t start, uint64_t end) {
  free_.emplace(start, end);
  free_lengths_.insert(end - start);
  free_pages_ += end - start;
  free_superpages_ += SuperpagesIn(FrameNumber(start), FrameNumber(end));
}

void ShadowModel::EraseExtent(std::map<uint64_t, uint64_t>::iterator it) {
  const uint64_t start = it->first;
  const uint64_t end = it->second;
  free_lengths_.erase(free_lengths_.find(end - start));
  free_pages_ -= end - start;
  free_superpages_ -= SuperpagesIn(FrameNumber(start), FrameNumber(end));
  free_.erase(it);
}

void ShadowModel::AddFree(uint64_t start, uint64_t end) {
  auto next = free_.lower_bound(start);
  if (next != free_.end() && next->first == end) {
    end = next->second;
    EraseExtent(next++);
  }
  if (next != free_.begin()) {
    auto prev = std::prev(next);
    if (prev->second == start) {
      start = prev->first;
      EraseExtent(prev);
    }
  }
  InsertExtent(start, end);
}

absl::Status ShadowModel::Allocate(FrameNumber first, PageCount pages, AlignOrder align) {
  const PageRun run{first, pages};
  const uint64_t f = first.value();
  const uint64_t n = pages.value();
  if (n == 0) return absl::InvalidArgumentError("a run of 0 pages was handed out");
  if (f < range_.first.value() || n > range_.end().value() - std::min(f, range_.end().value())) {
    return absl::OutOfRangeError(
        absl::StrCat("run ", ToString(run), " is not inside the range ", ToString(range_)));
  }
  if (!first.IsAligned(align)) {
    return absl::FailedPreconditionError(absl::StrCat(
        "run ", ToString(run), " is not aligned to 2^", align.value(), " pages"));
  }
  auto it = free_.upper_bound(f);
  if (it == free_.begin() || std::prev(it)->second < f + n) {
    return absl::AlreadyExistsError(
        absl::StrCat("run ", ToString(run), " overlaps live frames: ", Describe(run)));
  }
  --it;
  const uint64_t start = it->first;
  const uint64_t end = it->second;
  EraseExtent(it);
  if (start < f) InsertExtent(start, f);
  if (f + n < end) InsertExtent(f + n, end);
  live_.emplace(f, n);
  return absl::OkStatus();
}

absl::Status ShadowModel::Free(PageRun run) {
  auto it = live_.find(run.first.value());
  if (it == live_.end() || it->second != run.pages.value()) {
    return absl::NotFoundError(
        absl::StrCat("run ", ToString(run), " is not a live run: ", Describe(run)));
  }
  live_.erase(it);
  AddFree(run.first.value(), run.end().value());
  return absl::OkStatus();
}

bool ShadowModel::IsLive(PageRun run) const {
  auto it = live_.find(run.first.value());
  return it != live_.end() && it->second == run.pages.value();
}

std::optional<PageRun> ShadowModel::LiveRunContaining(FrameNumber f) const {
  auto it = live_.upper_bound(f.value());
  if (it == live_.begin()) return std::nullopt;
  --it;
  if (f.value() - it->first >= it->second) return std::nullopt;
  return PageRun{FrameNumber(it->first), PageCount(it->second)};
}

std::string ShadowModel::Describe(PageRun run) const {
  const uint64_t f = run.first.value();
  const uint64_t n = run.pages.value();
  if (IsLive(run)) return "a live run";
  if (n == 0) return "an empty run";
  if (f < range_.first.value() || f >= range_.end().value()) {
    return absl::StrCat("starts outside the range ", ToString(range_));
  }
  if (n > range_.end().value() - f) {
    return absl::StrCat("ends outside the range ", ToString(range_));
  }
  if (std::optional<PageRun> live = LiveRunContaining(run.first)) {
    return absl::StrCat("starts inside live run ", ToString(*live));
  }
  // Starts on a free frame: is it entirely free?
  auto next_live = live_.lower_bound(f);
  if (next_live != live_.end() && next_live->first < f + n) {
    return absl::StrCat("starts on a free frame and overlaps live run ",
                        ToString({FrameNumber(next_live->first), PageCount(next_live->second)}));
  }
  return "entirely free (never handed out, or already freed)";
}

bool ShadowModel::CanAllocate(PageCount pages, AlignOrder align) const {
  for (const auto& [start, end] : free_) {
    std::optional<uint64_t> f = RoundUp(start, align.value());
    if (f && *f < end && pages.value() <= end - *f) return true;
  }
  return false;
}

PageCount ShadowModel::longest_free_run() const {
  return PageCount(free_lengths_.empty() ? 0 : *free_lengths_.rbegin());
}

std::vector<PageRun> ShadowModel::FreeRuns() const {
  std::vector<PageRun> runs;
  runs.reserve(free_.size());
  for (const auto& [start, end] : free_) runs.push_back({FrameNumber(start), PageCount(end - start)});
  return runs;
}

std::vector<PageRun> ShadowModel::LiveRuns() const {
  std::vector<PageRun> runs;
  runs.reserve(live_.size());
  for (const auto& [first, pages] : live_) runs.push_back({FrameNumber(first), PageCount(pages)});
  return runs;
}

absl::Status ShadowModel::CheckConsistency() const {
  // Walk free extents and live runs in address order: they must tile the range.
  std::map<uint64_t, std::pair<uint64_t, bool>> all;  // first -> (end, is_free)
  for (const auto& [start, end] : free_) {
    if (start >= end) return absl::InternalError(absl::StrCat("empty extent at ", start));
    all.emplace(start, std::make_pair(end, true));
  }
  for (const auto& [first, pages] : live_) {
    if (pages == 0) return absl::InternalError(absl::StrCat("empty live run at ", first));
    if (!all.emplace(first, std::make_pair(first + pages, false)).second) {
      return absl::InternalError(absl::StrCat("live run and extent both start at ", first));
    }
  }
  uint64_t at = range_.first.value();
  bool prev_free = false;
  uint64_t free_pages = 0;
  uint64_t superpages = 0;
  std::multiset<uint64_t> lengths;
  for (const auto& [start, entry] : all) {
    const auto [end, is_free] = entry;
    if (start != at) {
      return absl::InternalError(absl::StrCat("gap or overlap at frame ", at, " (next piece starts at ",
                                              start, ")"));
    }
    if (is_free && prev_free) {
      return absl::InternalError(absl::StrCat("adjacent free extents meet at ", start));
    }
    if (is_free) {
      free_pages += end - start;
      superpages += SuperpagesIn(FrameNumber(start), FrameNumber(end));
      lengths.insert(end - start);
    }
    prev_free = is_free;
    at = end;
  }
  if (at != range_.end().value()) {
    return absl::InternalError(absl::StrCat("pieces end at ", at, ", the range at ",
                                            range_.end().value()));
  }
  if (free_pages != free_pages_) {
    return absl::InternalError(absl::StrCat("free pages ", free_pages_, ", recount ", free_pages));
  }
  if (superpages != free_superpages_) {
    return absl::InternalError(
        absl::StrCat("free superpages ", free_superpages_, ", recount ", superpages));
  }
  if (lengths != free_lengths_) return absl::InternalError("extent length multiset is stale");
  return absl::OkStatus();
}

}  // namespace l4re_ma
