#include "tests/testing/checked_backend.h"

#include <algorithm>
#include <sstream>
#include <string>
#include <utility>

#include "absl/strings/str_cat.h"

namespace l4re_ma {
namespace {

template <typename T>
std::string Str(const T& value) {
  std::ostringstream os;
  os << value;
  return os.str();
}

absl::Status Annotate(const absl::Status& s, absl::string_view context) {
  if (s.ok()) return s;
  return absl::Status(s.code(), absl::StrCat(context, ": ", s.message()));
}

}  // namespace

CheckedBackend::CheckedBackend(PageBackend* backend)
    : backend_(backend), model_(backend->range()), last_stats_(backend->Stats()) {}

absl::Status CheckedBackend::CheckFresh() {
  const BackendStats s = backend_->Stats();
  last_stats_ = s;
  const PageCount total = model_.total_pages();
  if (s.total_pages != total || s.free_pages != total) {
    return absl::InternalError(absl::StrCat("fresh backend over ", Str(model_.range()),
                                            ": want total_pages = free_pages = ", total.value(),
                                            ", Stats() = ", Str(s)));
  }
  if (s.free_superpages != model_.free_superpages()) {
    return absl::InternalError(absl::StrCat("fresh backend over ", Str(model_.range()), ": want ",
                                            model_.free_superpages(),
                                            " free superpages, Stats() = ", Str(s)));
  }
  if (s.largest_free_run > total || (total.value() > 0 && s.largest_free_run.value() == 0)) {
    return absl::InternalError(absl::StrCat("fresh backend over ", Str(model_.range()),
                                            ": largest_free_run must be in [1, total], Stats() = ",
                                            Str(s)));
  }
  return Annotate(backend_->CheckInvariants(), "CheckInvariants() on a fresh backend");
}

absl::Status CheckedBackend::CheckStats() {
  const BackendStats s = backend_->Stats();
  last_stats_ = s;
  const char* broken = nullptr;
  if (s.total_pages != model_.total_pages()) {
    broken = "total_pages must equal the range's pages";
  } else if (s.free_pages != model_.free_pages()) {
    broken = "free_pages must equal total minus the pages of live runs";
  } else if (s.largest_free_run > model_.longest_free_run()) {
    broken = "largest_free_run exceeds the longest run of free frames";
  } else if (s.free_superpages != model_.free_superpages()) {
    broken = "free_superpages must count the entirely free aligned superpages";
  }
  if (broken == nullptr) return absl::OkStatus();
  return absl::InternalError(absl::StrCat(
      broken, ": Stats() = ", Str(s), ", model: total=", model_.total_pages().value(),
      " free=", model_.free_pages().value(), " longest_free_run=", model_.longest_free_run().value(),
      " free_superpages=", model_.free_superpages(), " free_runs=", model_.free_run_count(),
      " live_runs=", model_.live_run_count()));
}

absl::StatusOr<std::optional<FrameNumber>> CheckedBackend::Allocate(PageCount pages,
                                                                    AlignOrder align) {
  if (pages.value() == 0 || align.value() >= 64) {
    return absl::InvalidArgumentError("CheckedBackend::Allocate: pages >= 1 and order < 64 required");
  }
  const PageCount largest_before = last_stats_.largest_free_run;
  const std::optional<FrameNumber> got = backend_->Allocate(pages, align);
  const std::string call = absl::StrCat("Allocate(", pages.value(), " pages, order ",
                                        align.value(), ") -> ",
                                        got ? Str(got->value()) : std::string("nullopt"));
  if (got) {
    absl::Status s = model_.Allocate(*got, pages, align);
    if (!s.ok()) return Annotate(s, call);
    live_runs_.push_back({*got, pages});
  }
  if (align.value() == 0 && got.has_value() != (pages <= largest_before)) {
    return absl::InternalError(absl::StrCat(
        call, ": largest_free_run was ", largest_before.value(),
        " before the call; an order-0 request must succeed iff it asks for at most that"));
  }
  if (absl::Status s = CheckStats(); !s.ok()) return Annotate(s, absl::StrCat("after ", call));
  return got;
}

absl::Status CheckedBackend::Free(PageRun run) {
  auto it = std::find(live_runs_.begin(), live_runs_.end(), run);
  if (it == live_runs_.end() || !model_.IsLive(run)) {
    return absl::FailedPreconditionError(
        absl::StrCat("CheckedBackend::Free(", Str(run), "): not a live run"));
  }
  return FreeLiveRun(static_cast<size_t>(it - live_runs_.begin()));
}

absl::Status CheckedBackend::FreeLiveRun(size_t index) {
  if (index >= live_runs_.size()) {
    return absl::FailedPreconditionError("CheckedBackend::FreeLiveRun: index out of range");
  }
  const PageRun run = live_runs_[index];
  const std::string call = absl::StrCat("Free(", Str(run), ")");
  if (!backend_->Free(run)) {
    return absl::InternalError(absl::StrCat(call, " returned false for a live run"));
  }
  if (absl::Status s = model_.Free(run); !s.ok()) return Annotate(s, call);
  live_runs_[index] = live_runs_.back();
  live_runs_.pop_back();
  return Annotate(CheckStats(), absl::StrCat("after ", call));
}

absl::Status CheckedBackend::FreeAll(std::mt19937_64& rng) {
  std::shuffle(live_runs_.begin(), live_runs_.end(), rng);
  while (!live_runs_.empty()) {
    if (absl::Status s = FreeLiveRun(live_runs_.size() - 1); !s.ok()) return s;
  }
  return absl::OkStatus();
}

absl::Status CheckedBackend::ExpectFreeRejected(PageRun run) {
  if (model_.IsLive(run)) {
    return absl::FailedPreconditionError(
        absl::StrCat("CheckedBackend::ExpectFreeRejected(", Str(run), "): that run is live"));
  }
  const BackendStats before = backend_->Stats();
  const std::string call =
      absl::StrCat("Free(", Str(run), ") of a run that ", model_.Describe(run));
  if (backend_->Free(run)) {
    return absl::InternalError(absl::StrCat(call, " returned true; it must return false"));
  }
  const BackendStats after = backend_->Stats();
  if (after != before) {
    return absl::InternalError(absl::StrCat(call, " returned false but changed Stats() from ",
                                            Str(before), " to ", Str(after)));
  }
  if (absl::Status s = backend_->CheckInvariants(); !s.ok()) {
    return Annotate(s, absl::StrCat("CheckInvariants() after rejected ", call));
  }
  return CheckStats();
}

absl::Status CheckedBackend::CheckDeep() {
  if (absl::Status s = CheckStats(); !s.ok()) return s;
  if (absl::Status s = backend_->CheckInvariants(); !s.ok()) {
    return Annotate(s, absl::StrCat("CheckInvariants() with ", model_.live_run_count(),
                                    " live runs, ", model_.free_pages().value(), " free pages"));
  }
  const PageCount largest = last_stats_.largest_free_run;
  if (largest.value() > 0) {
    absl::StatusOr<std::optional<FrameNumber>> got = Allocate(largest, AlignOrder(0));
    if (!got.ok()) return Annotate(got.status(), "probing largest_free_run");
    if (absl::Status s = FreeLiveRun(live_runs_.size() - 1); !s.ok()) return s;
  }
  // Allocate() itself fails the call if this succeeds.
  absl::StatusOr<std::optional<FrameNumber>> over =
      Allocate(last_stats_.largest_free_run + PageCount(1), AlignOrder(0));
  if (!over.ok()) return Annotate(over.status(), "probing largest_free_run + 1");
  if (*over) return FreeLiveRun(live_runs_.size() - 1);
  return absl::OkStatus();
}

}  // namespace l4re_ma
