#include "tests/testing/reference_backend.h"

#include <algorithm>

#include "absl/strings/str_cat.h"

namespace l4re_ma {
namespace {

// What one live run costs in the std::map, roughly: the pair plus the node's
// colour and three pointers. Only used to report metadata_bytes.
constexpr uint64_t kBytesPerLiveRun = sizeof(std::pair<const uint64_t, uint64_t>) + 32;

constexpr uint64_t kSuperPagePages = uint64_t{1} << kSuperPageOrder;

}  // namespace

ReferenceBackend::ReferenceBackend(PageRun range)
    : range_(range), used_(range.pages.value(), false) {}

void ReferenceBackend::Mark(PageRun run, bool used) {
  for (uint64_t f = run.first.value(); f < run.end().value(); ++f) {
    used_[f - range_.first.value()] = used;
  }
}

std::optional<FrameNumber> ReferenceBackend::Allocate(PageCount pages, AlignOrder align) {
  const uint64_t n = pages.value();
  const uint64_t end = range_.end().value();
  if (n == 0 || n > range_.pages.value() || align.value() >= 64) return std::nullopt;
  const uint64_t mask = (uint64_t{1} << align.value()) - 1;
  uint64_t candidate = range_.first.value();
  for (;;) {
    if (candidate > UINT64_MAX - mask) return std::nullopt;
    candidate = (candidate + mask) & ~mask;  // the next aligned frame
    if (candidate >= end || n > end - candidate) return std::nullopt;
    uint64_t f = candidate;
    while (f < candidate + n && !IsUsed(f)) ++f;
    if (f == candidate + n) break;
    candidate = f + 1;  // every candidate up to f would contain frame f
  }
  Mark({FrameNumber(candidate), pages}, true);
  live_.emplace(candidate, n);
  return FrameNumber(candidate);
}

bool ReferenceBackend::Free(PageRun run) {
  auto it = live_.find(run.first.value());
  if (it == live_.end() || it->second != run.pages.value()) return false;
  live_.erase(it);
  Mark(run, false);
  return true;
}

BackendStats ReferenceBackend::Stats() const {
  BackendStats s;
  s.total_pages = range_.pages;
  uint64_t free_pages = 0;
  uint64_t longest = 0;
  uint64_t current = 0;
  for (uint64_t i = 0; i < used_.size(); ++i) {
    if (used_[i]) {
      current = 0;
      continue;
    }
    ++free_pages;
    if (++current == 1) ++s.free_runs;
    longest = std::max(longest, current);
  }
  s.free_pages = PageCount(free_pages);
  s.largest_free_run = PageCount(longest);
  // Every superpage entirely inside the range, checked frame by frame.
  const uint64_t begin = range_.first.value();
  const uint64_t end = range_.end().value();
  for (uint64_t sp = (begin + kSuperPagePages - 1) / kSuperPagePages * kSuperPagePages;
       sp + kSuperPagePages <= end; sp += kSuperPagePages) {
    bool all_free = true;
    for (uint64_t f = sp; f < sp + kSuperPagePages && all_free; ++f) all_free = !IsUsed(f);
    if (all_free) ++s.free_superpages;
  }
  s.metadata_bytes = (used_.capacity() + 7) / 8 + live_.size() * kBytesPerLiveRun;
  return s;
}

absl::Status ReferenceBackend::CheckInvariants() const {
  if (used_.size() != range_.pages.value()) {
    return absl::InternalError(absl::StrCat("reference: ", used_.size(), " frame flags for ",
                                            range_.pages.value(), " frames"));
  }
  uint64_t prev_end = range_.first.value();
  uint64_t live_pages = 0;
  for (const auto& [first, pages] : live_) {
    if (pages == 0 || first < prev_end || pages > range_.end().value() - first) {
      return absl::InternalError(absl::StrCat("reference: live run at frame ", first, " +", pages,
                                              " is empty, overlaps its predecessor or leaves the range"));
    }
    for (uint64_t f = first; f < first + pages; ++f) {
      if (!IsUsed(f)) {
        return absl::InternalError(
            absl::StrCat("reference: frame ", f, " of live run at ", first, " is marked free"));
      }
    }
    live_pages += pages;
    prev_end = first + pages;
  }
  const uint64_t used = static_cast<uint64_t>(std::count(used_.begin(), used_.end(), true));
  if (used != live_pages) {
    return absl::InternalError(absl::StrCat("reference: ", used, " frames marked used, live runs hold ",
                                            live_pages));
  }
  return absl::OkStatus();
}

}  // namespace l4re_ma
