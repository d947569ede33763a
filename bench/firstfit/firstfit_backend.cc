#include "bench/firstfit/firstfit_backend.h"

#include <sys/mman.h>

#include <algorithm>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <optional>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"

namespace l4re_ma {
namespace {

constexpr uint64_t kSuperPagePages = uint64_t{1} << kSuperPageOrder;

// Superpages (512 frames from a multiple of 512) inside [first, end).
uint64_t SuperpagesIn(uint64_t first, uint64_t end) {
  const uint64_t lo = first / kSuperPagePages + (first % kSuperPagePages != 0 ? 1 : 0);
  const uint64_t hi = end / kSuperPagePages;
  return hi > lo ? hi - lo : 0;
}

}  // namespace

FirstFitBackend::FirstFitBackend(PageRun range)
    : range_(range),
      header_bytes_(range.pages.value() * sizeof(Header)),
      starts_((range.pages.value() + 63) / 64, 0),
      ends_((range.pages.value() + 63) / 64, 0) {
  void* p = range.pages.value() > (uint64_t{1} << 32)
                ? MAP_FAILED
                : mmap(nullptr, header_bytes_, PROT_READ | PROT_WRITE,
                       MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
  if (p == MAP_FAILED) {
    std::fprintf(stderr, "FirstFitBackend: cannot map a header table for %llu frames\n",
                 static_cast<unsigned long long>(range.pages.value()));
    std::abort();
  }
  headers_ = static_cast<Header*>(p);
  head_ = 0;
  At(0) = Header{range.pages.value(), kNil};
  free_pages_ = range.pages.value();
  free_runs_ = 1;
}

FirstFitBackend::~FirstFitBackend() { munmap(headers_, header_bytes_); }

std::optional<FrameNumber> FirstFitBackend::Allocate(PageCount pages, AlignOrder align) {
  const uint64_t n = pages.value();
  const uint64_t base = range_.first.value();
  const uint64_t mask = (uint64_t{1} << align.value()) - 1;  // align < 64
  uint64_t prev = kNil;
  for (uint64_t o = head_; o != kNil; prev = o, o = At(o).next) {
    Header& e = At(o);
    if (e.pages < n) continue;
    // The first frame of the extent at or above it that is aligned.
    const uint64_t first = base + o;
    uint64_t start = first;
    if ((start & mask) != 0) {
      if (start > ~uint64_t{0} - mask) continue;  // no aligned frame above
      start = (start | mask) + 1;
    }
    const uint64_t end = first + e.pages;
    if (start >= end || end - start < n) continue;

    // Cut [start, start + n) out of e, leaving a head and/or a tail.
    const uint64_t head = start - first;
    const uint64_t tail = end - (start + n);
    const uint64_t next = e.next;
    uint64_t after = next;  // what follows the pieces left
    if (tail != 0) {
      const uint64_t t = start + n - base;
      At(t) = Header{tail, next};
      after = t;
    }
    if (head != 0) {
      e.pages = head;
      e.next = after;
    } else if (prev == kNil) {
      head_ = after;
    } else {
      At(prev).next = after;
    }
    free_runs_ = free_runs_ - 1 + (head != 0 ? 1 : 0) + (tail != 0 ? 1 : 0);
    free_pages_ -= n;
    SetBit(starts_, start - base, true);
    SetBit(ends_, start + n - 1 - base, true);
    return FrameNumber(start);
  }
  return std::nullopt;
}

bool FirstFitBackend::AnyStartIn(uint64_t lo, uint64_t hi) const {
  uint64_t a = lo;
  while (a < hi) {
    uint64_t bits = starts_[a >> 6] >> (a & 63);
    const uint64_t take = std::min<uint64_t>(64 - (a & 63), hi - a);
    if (take < 64) bits &= (uint64_t{1} << take) - 1;
    if (bits != 0) return true;
    a += take;
  }
  return false;
}

bool FirstFitBackend::Free(PageRun run) {
  const uint64_t n = run.pages.value();
  const uint64_t base = range_.first.value();
  const uint64_t total = range_.pages.value();
  if (n == 0 || run.first.value() < base || run.first.value() - base >= total ||
      n > total - (run.first.value() - base)) {
    return false;
  }
  const uint64_t o = run.first.value() - base;  // the run is [o, o + n)
  if (!TestBit(starts_, o) || !TestBit(ends_, o + n - 1) || AnyStartIn(o + 1, o + n)) {
    return false;
  }
  SetBit(starts_, o, false);
  SetBit(ends_, o + n - 1, false);

  // Moe's walk: find the extents just below and above the run.
  uint64_t prev = kNil;
  uint64_t next = head_;
  while (next != kNil && next < o) {
    prev = next;
    next = At(next).next;
  }
  const bool merge_left = prev != kNil && prev + At(prev).pages == o;
  const bool merge_right = next != kNil && next == o + n;
  if (merge_left) {
    Header& l = At(prev);
    l.pages += n;
    if (merge_right) {
      l.pages += At(next).pages;
      l.next = At(next).next;
      --free_runs_;
    }
  } else {
    Header& h = At(o);
    if (merge_right) {
      h = Header{n + At(next).pages, At(next).next};
    } else {
      h = Header{n, next};
      ++free_runs_;
    }
    if (prev == kNil) {
      head_ = o;
    } else {
      At(prev).next = o;
    }
  }
  free_pages_ += n;
  return true;
}

BackendStats FirstFitBackend::Stats() const {
  BackendStats s;
  s.total_pages = range_.pages;
  s.free_pages = PageCount(free_pages_);
  uint64_t largest = 0;
  uint64_t superpages = 0;
  const uint64_t base = range_.first.value();
  for (uint64_t o = head_; o != kNil; o = At(o).next) {
    largest = std::max(largest, At(o).pages);
    superpages += SuperpagesIn(base + o, base + o + At(o).pages);
  }
  s.largest_free_run = PageCount(largest);
  s.free_runs = free_runs_;
  s.free_superpages = superpages;
  s.metadata_bytes =
      (starts_.size() + ends_.size()) * sizeof(uint64_t) + free_runs_ * sizeof(Header);
  return s;
}

absl::Status FirstFitBackend::CheckInvariants() const {
  const uint64_t total = range_.pages.value();
  uint64_t pages = 0;
  uint64_t runs = 0;
  // Offsets between the end of one extent and the start of the next are
  // live and must be tiled by marked runs: a start bit, then an end bit,
  // alternating.
  auto check_live = [&](uint64_t a, uint64_t b) -> absl::Status {
    bool in_run = false;
    for (uint64_t i = a; i < b; ++i) {
      const bool s = TestBit(starts_, i);
      if (s == in_run) {
        return absl::InternalError(absl::StrCat("frame offset ", i, ": start bit ", s,
                                                in_run ? " inside a run" : " outside a run"));
      }
      in_run = !TestBit(ends_, i);
    }
    if (in_run) {
      return absl::InternalError(absl::StrCat("live stretch [", a, ", ", b, ") ends inside a run"));
    }
    return absl::OkStatus();
  };
  uint64_t cursor = 0;  // the end of the last extent seen
  for (uint64_t o = head_; o != kNil; o = At(o).next) {
    const Header& e = At(o);
    if (e.pages == 0) return absl::InternalError(absl::StrCat("empty extent at offset ", o));
    if (o < cursor || (runs > 0 && o == cursor)) {
      return absl::InternalError(absl::StrCat(
          "extent at offset ", o, " is unsorted, overlapping or adjacent to the previous one"));
    }
    if (o >= total || e.pages > total - o) {
      return absl::InternalError(absl::StrCat("extent at offset ", o, " leaves the range"));
    }
    if (absl::Status s = check_live(cursor, o); !s.ok()) return s;
    for (uint64_t i = o; i < o + e.pages; ++i) {
      if (TestBit(starts_, i) || TestBit(ends_, i)) {
        return absl::InternalError(absl::StrCat("free frame offset ", i, " carries a run mark"));
      }
    }
    pages += e.pages;
    ++runs;
    cursor = o + e.pages;
    if (runs > total) return absl::InternalError("the free list has a cycle");
  }
  if (absl::Status s = check_live(cursor, total); !s.ok()) return s;
  if (pages != free_pages_) {
    return absl::InternalError(absl::StrCat("free_pages ", free_pages_, " but the list holds ", pages));
  }
  if (runs != free_runs_) {
    return absl::InternalError(absl::StrCat("free_runs ", free_runs_, " but the list holds ", runs));
  }
  return absl::OkStatus();
}

}  // namespace l4re_ma
