// core/types.h: strong types for pages, frames, physical addresses and
// alignments, shared by the core, every backend and the tools.
//
// The C API keeps L4Re's integer types; everything behind it counts memory in
// these types so that a page count can never be passed where a byte count or
// a frame number is expected. All are trivially copyable value types.
#ifndef L4RE_MA_CORE_TYPES_H_
#define L4RE_MA_CORE_TYPES_H_

#include <cstdint>
#include <ostream>

namespace l4re_ma {

inline constexpr unsigned kPageShift = 12;
inline constexpr uint64_t kPageSize = uint64_t{1} << kPageShift;
inline constexpr unsigned kSuperPageShift = 21;
inline constexpr uint64_t kSuperPageSize = uint64_t{1} << kSuperPageShift;
// log2 of the number of pages in a superpage (512 pages = 2 MiB).
inline constexpr unsigned kSuperPageOrder = kSuperPageShift - kPageShift;

// A number of 4 KiB pages.
class PageCount {
 public:
  constexpr PageCount() = default;
  constexpr explicit PageCount(uint64_t pages) : n_(pages) {}

  // The smallest page count covering `bytes` bytes.
  static constexpr PageCount FromBytesRoundUp(uint64_t bytes) {
    return PageCount((bytes >> kPageShift) +
                     ((bytes & (kPageSize - 1)) != 0 ? 1 : 0));
  }

  constexpr uint64_t value() const { return n_; }
  constexpr uint64_t bytes() const { return n_ << kPageShift; }

  constexpr PageCount& operator+=(PageCount o) { n_ += o.n_; return *this; }
  constexpr PageCount& operator-=(PageCount o) { n_ -= o.n_; return *this; }
  friend constexpr PageCount operator+(PageCount a, PageCount b) { return PageCount(a.n_ + b.n_); }
  friend constexpr PageCount operator-(PageCount a, PageCount b) { return PageCount(a.n_ - b.n_); }
  friend constexpr bool operator==(PageCount a, PageCount b) { return a.n_ == b.n_; }
  friend constexpr bool operator!=(PageCount a, PageCount b) { return a.n_ != b.n_; }
  friend constexpr bool operator<(PageCount a, PageCount b) { return a.n_ < b.n_; }
  friend constexpr bool operator<=(PageCount a, PageCount b) { return a.n_ <= b.n_; }
  friend constexpr bool operator>(PageCount a, PageCount b) { return a.n_ > b.n_; }
  friend constexpr bool operator>=(PageCount a, PageCount b) { return a.n_ >= b.n_; }
  template <typename H>
  friend H AbslHashValue(H h, PageCount p) { return H::combine(std::move(h), p.n_); }
  friend std::ostream& operator<<(std::ostream& os, PageCount p) { return os << p.n_ << "p"; }

 private:
  uint64_t n_ = 0;
};

// log2 of an alignment measured in pages: order 0 is any page, order 9 is a
// 2 MiB superpage. Alignment is absolute: frame f satisfies order k iff
// f % 2^k == 0.
class AlignOrder {
 public:
  constexpr AlignOrder() = default;
  constexpr explicit AlignOrder(unsigned order) : order_(order) {}

  // The order for a log2 byte alignment; byte shifts below a page give 0.
  static constexpr AlignOrder FromByteShift(unsigned shift) {
    return AlignOrder(shift > kPageShift ? shift - kPageShift : 0);
  }

  constexpr unsigned value() const { return order_; }
  constexpr unsigned byte_shift() const { return order_ + kPageShift; }
  // Number of pages in one aligned unit. REQUIRES: value() < 64.
  constexpr PageCount pages() const { return PageCount(uint64_t{1} << order_); }

  friend constexpr bool operator==(AlignOrder a, AlignOrder b) { return a.order_ == b.order_; }
  friend constexpr bool operator!=(AlignOrder a, AlignOrder b) { return a.order_ != b.order_; }
  friend constexpr bool operator<(AlignOrder a, AlignOrder b) { return a.order_ < b.order_; }
  friend constexpr bool operator<=(AlignOrder a, AlignOrder b) { return a.order_ <= b.order_; }
  friend constexpr bool operator>(AlignOrder a, AlignOrder b) { return a.order_ > b.order_; }
  friend constexpr bool operator>=(AlignOrder a, AlignOrder b) { return a.order_ >= b.order_; }
  friend std::ostream& operator<<(std::ostream& os, AlignOrder a) { return os << "order" << a.order_; }

 private:
  unsigned order_ = 0;
};

class PhysAddr;

// A page frame number in the emulated physical address space: frame f covers
// the bytes [f * 4096, (f + 1) * 4096).
class FrameNumber {
 public:
  constexpr FrameNumber() = default;
  constexpr explicit FrameNumber(uint64_t frame) : f_(frame) {}

  constexpr uint64_t value() const { return f_; }
  constexpr PhysAddr addr() const;
  constexpr bool IsAligned(AlignOrder a) const {
    return a.value() >= 64 ? f_ == 0 : (f_ & ((uint64_t{1} << a.value()) - 1)) == 0;
  }

  friend constexpr FrameNumber operator+(FrameNumber f, PageCount n) { return FrameNumber(f.f_ + n.value()); }
  friend constexpr FrameNumber operator-(FrameNumber f, PageCount n) { return FrameNumber(f.f_ - n.value()); }
  // Distance between two frames. REQUIRES: a >= b.
  friend constexpr PageCount operator-(FrameNumber a, FrameNumber b) { return PageCount(a.f_ - b.f_); }
  friend constexpr bool operator==(FrameNumber a, FrameNumber b) { return a.f_ == b.f_; }
  friend constexpr bool operator!=(FrameNumber a, FrameNumber b) { return a.f_ != b.f_; }
  friend constexpr bool operator<(FrameNumber a, FrameNumber b) { return a.f_ < b.f_; }
  friend constexpr bool operator<=(FrameNumber a, FrameNumber b) { return a.f_ <= b.f_; }
  friend constexpr bool operator>(FrameNumber a, FrameNumber b) { return a.f_ > b.f_; }
  friend constexpr bool operator>=(FrameNumber a, FrameNumber b) { return a.f_ >= b.f_; }
  template <typename H>
  friend H AbslHashValue(H h, FrameNumber f) { return H::combine(std::move(h), f.f_); }
  friend std::ostream& operator<<(std::ostream& os, FrameNumber f) { return os << "frame" << f.f_; }

 private:
  uint64_t f_ = 0;
};

// A byte address in the emulated physical address space.
class PhysAddr {
 public:
  constexpr PhysAddr() = default;
  constexpr explicit PhysAddr(uint64_t addr) : a_(addr) {}

  constexpr uint64_t value() const { return a_; }
  constexpr FrameNumber frame() const { return FrameNumber(a_ >> kPageShift); }

  friend constexpr PhysAddr operator+(PhysAddr a, uint64_t bytes) { return PhysAddr(a.a_ + bytes); }
  friend constexpr bool operator==(PhysAddr a, PhysAddr b) { return a.a_ == b.a_; }
  friend constexpr bool operator!=(PhysAddr a, PhysAddr b) { return a.a_ != b.a_; }
  friend constexpr bool operator<(PhysAddr a, PhysAddr b) { return a.a_ < b.a_; }
  friend std::ostream& operator<<(std::ostream& os, PhysAddr a) { return os << "0x" << std::hex << a.a_ << std::dec; }

 private:
  uint64_t a_ = 0;
};

constexpr PhysAddr FrameNumber::addr() const { return PhysAddr(f_ << kPageShift); }

// A run of contiguous frames [first, first + pages).
struct PageRun {
  FrameNumber first;
  PageCount pages;

  constexpr FrameNumber end() const { return first + pages; }
  constexpr bool Contains(FrameNumber f) const { return first <= f && f < end(); }
  constexpr bool Overlaps(const PageRun& o) const { return first < o.end() && o.first < end(); }

  friend constexpr bool operator==(const PageRun& a, const PageRun& b) {
    return a.first == b.first && a.pages == b.pages;
  }
  friend constexpr bool operator!=(const PageRun& a, const PageRun& b) { return !(a == b); }
  friend std::ostream& operator<<(std::ostream& os, const PageRun& r) {
    return os << "[" << r.first << " +" << r.pages << "]";
  }
};

}  // namespace l4re_ma

#endif  // L4RE_MA_CORE_TYPES_H_
