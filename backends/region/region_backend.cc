#include "backends/region/region_backend.h"

#include <algorithm>
#include <cstdint>
#include <iterator>
#include <limits>
#include <optional>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "core/types.h"

namespace l4re_ma {
namespace {

constexpr uint64_t kMaxFrame = std::numeric_limits<uint64_t>::max();

// The smallest multiple of 2^order that is >= x, or nullopt if it does not
// fit in 64 bits. Orders >= 64 only admit frame 0.
std::optional<uint64_t> AlignUp(uint64_t x, unsigned order) {
  if (order >= 64) return x == 0 ? std::optional<uint64_t>(0) : std::nullopt;
  const uint64_t mask = (uint64_t{1} << order) - 1;
  if ((x & mask) == 0) return x;
  if (x > kMaxFrame - mask) return std::nullopt;
  return (x + mask) & ~mask;
}

// The largest multiple of 2^order that is <= x.
uint64_t AlignDown(uint64_t x, unsigned order) {
  return order >= 64 ? 0 : x & ~((uint64_t{1} << order) - 1);
}

bool IsAligned(uint64_t x, unsigned order) { return AlignDown(x, order) == x; }

// Where an n-page run aligned to 2^order goes inside the free extent
// [first, first + pages), or nullopt if none fits: at the highest aligned
// frame, unless that leaves a tail while `first` itself is aligned (then at
// `first`, which leaves no head). Either way at most one end is split off
// when the other end is aligned.
std::optional<uint64_t> PlaceIn(uint64_t first, uint64_t pages, uint64_t n, unsigned order) {
  if (pages < n) return std::nullopt;
  const uint64_t top = AlignDown(first + pages - n, order);
  if (top < first) return std::nullopt;
  if (top + n != first + pages && IsAligned(first, order)) return first;
  return top;
}

// Superpages (frames s .. s + 511 with s % 512 == 0) inside [first, first + pages).
uint64_t SuperpagesIn(uint64_t first, uint64_t pages) {
  constexpr uint64_t kSuperPagePages = uint64_t{1} << kSuperPageOrder;
  const uint64_t lo = first / kSuperPagePages + (first % kSuperPagePages != 0 ? 1 : 0);
  const uint64_t hi = (first + pages) / kSuperPagePages;
  return hi > lo ? hi - lo : 0;
}

}  // namespace

RegionBackend::RegionBackend(PageRun range) : range_(range) {
  const uint64_t first = range.first.value();
  const uint64_t pages = range.pages.value();
  if (pages == 0) return;
  by_addr_.insert(Extent{first, pages});
  by_size_.insert(SizeKey{pages, first});
  free_pages_ = pages;
  free_superpages_ = SuperpagesIn(first, pages);
}

std::optional<FrameNumber> RegionBackend::Allocate(PageCount pages, AlignOrder align) {
  const uint64_t n = pages.value();
  if (n == 0) return std::nullopt;
  SizeIndex::iterator extent;
  uint64_t start;
  if (align.value() == 0) {
    extent = by_size_.lower_bound(SizeKey{n, 0});
    if (extent == by_size_.end()) return std::nullopt;
    start = extent->first + extent->pages - n;  // the top: no split
  } else {
    extent = FindAligned(n, align.value(), &start);
    if (extent == by_size_.end()) return std::nullopt;
  }
  Carve(extent, start, n);
  live_.emplace(start, n);
  return FrameNumber(start);
}

RegionBackend::SizeIndex::iterator RegionBackend::FindAligned(uint64_t n, unsigned order,
                                                              uint64_t* start) {
  // Extents of at least `sure` pages hold an aligned run wherever they lie.
  const uint64_t slack = order >= 64 ? kMaxFrame : (uint64_t{1} << order) - 1;
  const uint64_t sure = n > kMaxFrame - slack ? kMaxFrame : n + slack;

  // Candidates below `sure`, smallest first: the first that fits is the
  // best fit.
  auto it = by_size_.lower_bound(SizeKey{n, 0});
  for (int probes = 0; it != by_size_.end() && it->pages < sure; ++it, ++probes) {
    if (probes == kMaxAlignedProbes) break;
    if (std::optional<uint64_t> s = PlaceIn(it->first, it->pages, n, order)) {
      *start = *s;
      return it;
    }
  }
  if (it == by_size_.end()) return it;
  if (it->pages < sure) {
    // Probe budget spent: take the smallest extent that is sure to fit.
    auto sure_it = by_size_.lower_bound(SizeKey{sure, 0});
    if (sure_it != by_size_.end()) it = sure_it;
  }
  if (it->pages >= sure) {
    // Always fits; checked anyway because `sure` saturates at 2^64 - 1.
    if (std::optional<uint64_t> s = PlaceIn(it->first, it->pages, n, order)) {
      *start = *s;
      return it;
    }
  }

  // Rare: no extent is sure to fit and the probes found nothing. Decide
  // exactly, by whichever search is shorter: the remaining candidates (fewer
  // than the free extents) or the aligned frames of the range.
  const uint64_t last_start = range_.end().value() - n;  // n <= an extent <= the range
  std::optional<uint64_t> first_aligned = AlignUp(range_.first.value(), order);
  if (!first_aligned || *first_aligned > last_start) return by_size_.end();
  const uint64_t positions = order >= 64 ? 1 : ((last_start - *first_aligned) >> order) + 1;
  if (positions < by_size_.size()) return FindAlignedByPosition(n, order, start);
  for (; it != by_size_.end(); ++it) {
    if (std::optional<uint64_t> s = PlaceIn(it->first, it->pages, n, order)) {
      *start = *s;
      return it;
    }
  }
  return it;
}

RegionBackend::SizeIndex::iterator RegionBackend::FindAlignedByPosition(uint64_t n,
                                                                        unsigned order,
                                                                        uint64_t* start) {
  // Visits the first aligned frame of every extent that has one, each with
  // one upper_bound: min(aligned frames, extents) steps. An extent fits iff
  // the run fits at that frame. Keeps the smallest fitting extent, the
  // lowest among equals.
  std::optional<Extent> best;
  const uint64_t last_start = range_.end().value() - n;
  std::optional<uint64_t> a = AlignUp(range_.first.value(), order);
  while (a && *a <= last_start) {
    auto next = by_addr_.upper_bound(*a);  // the first extent after a
    if (next != by_addr_.begin()) {
      const Extent& e = *std::prev(next);
      if (*a + n <= e.first + e.pages && (!best || e.pages < best->pages)) best = e;
    }
    if (next == by_addr_.end()) break;
    a = AlignUp(next->first, order);
  }
  if (!best) return by_size_.end();
  *start = *PlaceIn(best->first, best->pages, n, order);
  return by_size_.find(SizeKey{best->pages, best->first});
}

void RegionBackend::MoveSizeKey(SizeIndex::iterator it, uint64_t pages, uint64_t first) {
  // In place when the neighbours stay on the same side (an extent that is
  // alone in the set, or one that passes no other extent's size).
  const SizeKey key{pages, first};
  const bool after_prev = it == by_size_.begin() || *std::prev(it) < key;
  const bool before_next = std::next(it) == by_size_.end() || key < *std::next(it);
  if (after_prev && before_next) {
    it->pages = pages;
    it->first = first;
    return;
  }
  // Not the only entry (that always stays in place), so the tree keeps its
  // root and the erase frees no node that the insert must allocate again.
  by_size_.erase(it);
  by_size_.insert(key);
}

void RegionBackend::Carve(SizeIndex::iterator extent, uint64_t start, uint64_t n) {
  const uint64_t first = extent->first;
  const uint64_t pages = extent->pages;
  const uint64_t head = start - first;
  const uint64_t tail = first + pages - start - n;
  free_superpages_ += SuperpagesIn(first, head) + SuperpagesIn(start + n, tail) -
                      SuperpagesIn(first, pages);
  free_pages_ -= n;

  auto addr = by_addr_.find(first);
  if (head != 0) {
    // The head keeps the extent's first frame; the tail, if any, is new.
    addr->pages = head;
    MoveSizeKey(extent, head, first);
    if (tail != 0) {
      by_addr_.insert(std::next(addr), Extent{start + n, tail});
      by_size_.insert(SizeKey{tail, start + n});
    }
  } else if (tail != 0) {
    // The tail takes over the extent: its first frame moves up over frames
    // that were the extent's, so the address order holds.
    addr->first = start + n;
    addr->pages = tail;
    MoveSizeKey(extent, tail, start + n);
  } else {
    by_addr_.erase(addr);
    by_size_.erase(extent);
  }
}

bool RegionBackend::Free(PageRun run) {
  const uint64_t first = run.first.value();
  const uint64_t n = run.pages.value();
  auto live = live_.find(first);
  if (live == live_.end() || live->second != n) return false;
  live_.erase(live);
  free_pages_ += n;

  // Neighbours: the first extent after the run and the one before it. Both
  // are disjoint from the live run; they merge if they touch it.
  auto right = by_addr_.upper_bound(first);
  const bool right_adjacent = right != by_addr_.end() && right->first == first + n;
  auto left = right;
  const bool left_adjacent =
      right != by_addr_.begin() && (--left, left->first + left->pages == first);

  if (left_adjacent && right_adjacent) {
    // The left extent swallows the run and the right extent.
    const uint64_t merged = left->pages + n + right->pages;
    free_superpages_ += SuperpagesIn(left->first, merged) -
                        SuperpagesIn(left->first, left->pages) -
                        SuperpagesIn(right->first, right->pages);
    by_size_.erase(SizeKey{right->pages, right->first});
    MoveSizeKey(by_size_.find(SizeKey{left->pages, left->first}), merged, left->first);
    left->pages = merged;
    by_addr_.erase(right);
  } else if (left_adjacent) {
    const uint64_t merged = left->pages + n;
    free_superpages_ +=
        SuperpagesIn(left->first, merged) - SuperpagesIn(left->first, left->pages);
    MoveSizeKey(by_size_.find(SizeKey{left->pages, left->first}), merged, left->first);
    left->pages = merged;
  } else if (right_adjacent) {
    // The right extent grows down over the run: the address order holds.
    const uint64_t merged = n + right->pages;
    free_superpages_ +=
        SuperpagesIn(first, merged) - SuperpagesIn(right->first, right->pages);
    MoveSizeKey(by_size_.find(SizeKey{right->pages, right->first}), merged, first);
    right->first = first;
    right->pages = merged;
  } else {
    free_superpages_ += SuperpagesIn(first, n);
    by_addr_.insert(right, Extent{first, n});
    by_size_.insert(SizeKey{n, first});
  }
  return true;
}

BackendStats RegionBackend::Stats() const {
  BackendStats s;
  s.total_pages = range_.pages;
  s.free_pages = PageCount(free_pages_);
  s.largest_free_run = PageCount(by_size_.empty() ? 0 : by_size_.rbegin()->pages);
  s.free_runs = by_size_.size();
  s.free_superpages = free_superpages_;
  s.metadata_bytes =
      sizeof(*this) + by_size_.size() * kExtentEntryBytes + live_.size() * kLiveEntryBytes;
  return s;
}

absl::Status RegionBackend::CheckInvariants() const {
  const uint64_t range_first = range_.first.value();
  const uint64_t range_end = range_.end().value();
  if (by_addr_.size() != by_size_.size()) {
    return absl::InternalError(absl::StrCat("address index holds ", by_addr_.size(),
                                            " extents, size index ", by_size_.size()));
  }
  // Free extents: inside the range, ascending, disjoint, never adjacent, and
  // in both indexes.
  uint64_t free_pages = 0;
  uint64_t superpages = 0;
  std::optional<uint64_t> prev_end;
  for (const Extent& e : by_addr_) {
    if (e.pages == 0 || e.first < range_first || e.first > range_end ||
        e.pages > range_end - e.first) {
      return absl::InternalError(absl::StrCat("free extent at frame ", e.first, " with ",
                                              e.pages, " pages is not inside the range"));
    }
    if (prev_end && e.first <= *prev_end) {
      return absl::InternalError(absl::StrCat(
          "free extent at frame ", e.first,
          e.first < *prev_end ? " overlaps" : " is adjacent to (not coalesced with)",
          " the previous one, which ends at frame ", *prev_end));
    }
    if (!by_size_.contains(SizeKey{e.pages, e.first})) {
      return absl::InternalError(absl::StrCat("free extent at frame ", e.first, " with ",
                                              e.pages, " pages is missing from the size index"));
    }
    free_pages += e.pages;
    superpages += SuperpagesIn(e.first, e.pages);
    prev_end = e.first + e.pages;
  }
  // The size index: strictly ascending (entries are changed in place), and
  // every entry is an extent of the address index.
  const SizeKey* prev_key = nullptr;
  for (const SizeKey& k : by_size_) {
    if (prev_key != nullptr && !(*prev_key < k)) {
      return absl::InternalError(absl::StrCat("size index out of order at (", k.pages,
                                              " pages, frame ", k.first, ")"));
    }
    auto e = by_addr_.find(k.first);
    if (e == by_addr_.end() || e->pages != k.pages) {
      return absl::InternalError(absl::StrCat("size index entry (", k.pages, " pages, frame ",
                                              k.first, ") is no free extent"));
    }
    prev_key = &k;
  }
  if (free_pages != free_pages_) {
    return absl::InternalError(absl::StrCat("free page count ", free_pages_,
                                            " but the free extents hold ", free_pages));
  }
  if (superpages != free_superpages_) {
    return absl::InternalError(absl::StrCat("free superpage count ", free_superpages_,
                                            " but the free extents hold ", superpages));
  }

  // Live runs: inside the range, disjoint from each other and from the free
  // extents, and together with them exactly the range.
  std::vector<std::pair<uint64_t, uint64_t>> runs(live_.begin(), live_.end());
  std::sort(runs.begin(), runs.end());
  uint64_t live_pages = 0;
  auto extent = by_addr_.begin();
  std::optional<uint64_t> prev_run_end;
  for (const auto& [first, pages] : runs) {
    if (pages == 0 || first < range_first || first > range_end ||
        pages > range_end - first) {
      return absl::InternalError(absl::StrCat("live run at frame ", first, " with ", pages,
                                              " pages is not inside the range"));
    }
    if (prev_run_end && first < *prev_run_end) {
      return absl::InternalError(absl::StrCat("live run at frame ", first,
                                              " overlaps the previous one"));
    }
    prev_run_end = first + pages;
    // Extents wholly below this run are done with; the next one must not
    // reach into it, nor may the run reach into that extent.
    while (extent != by_addr_.end() && extent->first + extent->pages <= first) ++extent;
    if (extent != by_addr_.end() && extent->first < first + pages) {
      return absl::InternalError(absl::StrCat("live run at frame ", first, " with ", pages,
                                              " pages overlaps the free extent at frame ",
                                              extent->first));
    }
    live_pages += pages;
  }
  if (free_pages + live_pages != range_.pages.value()) {
    return absl::InternalError(absl::StrCat("free (", free_pages, ") and live (", live_pages,
                                            ") pages do not add up to the range (",
                                            range_.pages.value(), ")"));
  }
  return absl::OkStatus();
}

}  // namespace l4re_ma
