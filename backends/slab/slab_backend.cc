#include "backends/slab/slab_backend.h"

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <cstring>

#include "absl/strings/str_cat.h"

namespace l4re_ma {
namespace {

constexpr uint64_t kSpPages = uint64_t{1} << kSuperPageOrder;  // 512

constexpr uint16_t kClassPagesTable[SlabBackend::kNumClasses] = {
    1,  2,  3,  4,  5,  6,  7,  8,  10,  12,  14,  16,  20,
    24, 28, 32, 40, 48, 56, 64, 72, 84, 100, 128, 168, 256};

// Everything derived from the class list, computed at compile time.
struct ClassTables {
  // class_for[k][n]: smallest class >= n that is a multiple of 2^k.
  uint8_t class_for[SlabBackend::kMaxSlabAlignOrder + 1][SlabBackend::kMaxClassPages + 1];
  // align_mask[k]: classes that are multiples of 2^k.
  uint32_t align_mask[SlabBackend::kMaxSlabAlignOrder + 1];
  uint16_t objects[SlabBackend::kNumClasses];  // objects per slab
  uint8_t len_bits[SlabBackend::kNumClasses];  // 0, 1, 2, 4 or 8
  // floor(offset / class) == (offset * obj_recip) >> 32 for offset < 512.
  uint64_t obj_recip[SlabBackend::kNumClasses];
  // Fullness bucket of a partial slab with f free objects:
  // ((f - 1) * bucket_recip) >> 32, in [0, kBuckets).
  uint64_t bucket_recip[SlabBackend::kNumClasses];
  // First run-length list of each class (one per length 0..objects).
  uint16_t run_base[SlabBackend::kNumClasses];
  int run_lists;
};

constexpr ClassTables MakeClassTables() {
  ClassTables t{};
  for (unsigned k = 0; k <= SlabBackend::kMaxSlabAlignOrder; ++k) {
    for (uint64_t n = 1; n <= SlabBackend::kMaxClassPages; ++n) {
      for (int c = 0; c < SlabBackend::kNumClasses; ++c) {
        if (kClassPagesTable[c] >= n && kClassPagesTable[c] % (1u << k) == 0) {
          t.class_for[k][n] = static_cast<uint8_t>(c);
          break;
        }
      }
    }
    for (int c = 0; c < SlabBackend::kNumClasses; ++c) {
      if (kClassPagesTable[c] % (1u << k) == 0) t.align_mask[k] |= 1u << c;
    }
  }
  for (int c = 0; c < SlabBackend::kNumClasses; ++c) {
    const uint64_t size = kClassPagesTable[c];
    const uint64_t m = kSpPages / size;
    t.objects[c] = static_cast<uint16_t>(m);
    uint8_t bits = 0;
    while ((uint64_t{1} << bits) < size) ++bits;  // bits for size - 1
    uint8_t width = 0;
    if (bits > 0) {
      width = 1;
      while (width < bits) width *= 2;
    }
    t.len_bits[c] = width;
    t.obj_recip[c] = ((uint64_t{1} << 32) + size - 1) / size;
    t.bucket_recip[c] = (uint64_t{8} << 32) / (m - 1);
    t.run_base[c] = static_cast<uint16_t>(t.run_lists);
    t.run_lists += static_cast<int>(m) + 1;
  }
  return t;
}

constexpr ClassTables kTables = MakeClassTables();

constexpr bool CheckTables() {
  for (int c = 0; c < SlabBackend::kNumClasses; ++c) {
    // Packed lengths fit in the 8 length words without crossing a word.
    if (kTables.objects[c] * kTables.len_bits[c] > 8 * 64) return false;
    if (kTables.len_bits[c] != 0 && 64 % kTables.len_bits[c] != 0) return false;
    if (kTables.objects[c] < 2) return false;  // partial slabs need m >= 2
    // A slab of <= 64 objects needs only the length words in line 0.
    if (kTables.objects[c] <= 64 && kTables.objects[c] * kTables.len_bits[c] > 4 * 64) {
      return false;
    }
    // The reciprocal division is exact for every offset in a superpage.
    for (uint64_t off = 0; off < kSpPages; ++off) {
      if (((off * kTables.obj_recip[c]) >> 32) != off / kClassPagesTable[c]) return false;
    }
    for (uint64_t f = 1; f < kTables.objects[c]; ++f) {
      if (((f - 1) * kTables.bucket_recip[c]) >> 32 >= 8) return false;
    }
    if (c > 0 && kClassPagesTable[c] <= kClassPagesTable[c - 1]) return false;
  }
  return kClassPagesTable[SlabBackend::kNumClasses - 1] == SlabBackend::kMaxClassPages &&
         kTables.run_lists == SlabBackend::kRunLists;
}
static_assert(CheckTables(), "slab class tables are inconsistent");

inline int Ctz(uint64_t x) { return __builtin_ctzll(x); }
inline int Clz(uint64_t x) { return __builtin_clzll(x); }

// Smallest multiple of 2^k that is >= x, or nullopt on overflow.
inline std::optional<uint64_t> AlignUp(uint64_t x, unsigned k) {
  const uint64_t mask = (uint64_t{1} << k) - 1;
  if ((x & mask) == 0) return x;
  const uint64_t y = x | mask;
  if (y == UINT64_MAX) return std::nullopt;
  return y + 1;
}

// Word order inside SlabBits::w. Free and start words of the same 64
// objects share a cache line, and the first line also holds length words
// 0..3: everything of a class >= 8 slab (<= 64 objects) is in line 0.
constexpr uint8_t kFreeWord[8] = {0, 6, 8, 10, 12, 14, 16, 18};
constexpr uint8_t kStartWord[8] = {1, 7, 9, 11, 13, 15, 17, 19};
constexpr uint8_t kLenWord[8] = {2, 3, 4, 5, 20, 21, 22, 23};

// Bits of map word `wi` that stand for one of `objs` objects.
inline uint64_t ValidMask(uint32_t objs, uint32_t wi) {
  const uint32_t full = objs >> 6;
  if (wi < full) return ~uint64_t{0};
  if (wi > full || (objs & 63) == 0) return 0;
  return (uint64_t{1} << (objs & 63)) - 1;
}

inline bool IsFreeObject(const uint64_t* w, uint32_t i) {
  return (w[kFreeWord[i >> 6]] >> (i & 63)) & 1;
}

// First free object at or after i, or objs.
inline uint32_t NextFreeObject(const uint64_t* w, uint32_t i, uint32_t objs) {
  uint32_t wi = i >> 6;
  if (wi >= 8) return objs;
  uint64_t bits = w[kFreeWord[wi]] & (~uint64_t{0} << (i & 63));
  while (bits == 0) {
    if (++wi >= 8) return objs;
    bits = w[kFreeWord[wi]];
  }
  return std::min<uint32_t>(objs, (wi << 6) + Ctz(bits));
}

// First allocated object at or after i, or objs.
inline uint32_t NextUsedObject(const uint64_t* w, uint32_t i, uint32_t objs) {
  uint32_t wi = i >> 6;
  if (wi >= 8) return objs;
  uint64_t bits = ~w[kFreeWord[wi]] & (~uint64_t{0} << (i & 63));
  while (bits == 0) {
    if (++wi >= 8) return objs;
    bits = ~w[kFreeWord[wi]];
  }
  return std::min<uint32_t>(objs, (wi << 6) + Ctz(bits));
}

// Number of allocated objects that start no run, from object i on: the tail
// of a multi-object run. Start-map sentinels stop it at the last object.
inline uint32_t ContinuationObjects(const uint64_t* w, uint32_t i) {
  uint32_t total = 0;
  while (i < 512) {
    const uint32_t wi = i >> 6;
    const uint32_t sh = i & 63;
    const uint64_t cont = ~w[kFreeWord[wi]] & ~w[kStartWord[wi]];
    const uint64_t rest = ~(cont >> sh);  // zeros where continuation objects are
    const uint32_t ones = rest == 0 ? 64 : static_cast<uint32_t>(Ctz(rest));
    if (ones < 64 - sh) return total + ones;
    total += 64 - sh;
    i += 64 - sh;
  }
  return total;
}

// Marks objects [i, i + count) free or allocated; returns the new summary.
inline uint8_t SetObjects(uint64_t* w, uint8_t summary, uint32_t i, uint32_t count,
                          bool free) {
  while (count > 0) {
    const uint32_t wi = i >> 6;
    const uint32_t sh = i & 63;
    const uint32_t take = std::min<uint32_t>(count, 64 - sh);
    const uint64_t mask = (take == 64 ? ~uint64_t{0} : ((uint64_t{1} << take) - 1)) << sh;
    uint64_t& word = w[kFreeWord[wi]];
    word = free ? (word | mask) : (word & ~mask);
    if (word != 0) {
      summary |= static_cast<uint8_t>(1u << wi);
    } else {
      summary &= static_cast<uint8_t>(~(1u << wi));
    }
    i += take;
    count -= take;
  }
  return summary;
}

// Packed requested lengths (minus one) of the last object of each run.
inline uint64_t GetLen(const uint64_t* w, unsigned width, uint64_t obj) {
  if (width == 0) return 0;
  const uint64_t bit = obj * width;
  return (w[kLenWord[bit >> 6]] >> (bit & 63)) & ((uint64_t{1} << width) - 1);
}

inline void SetLen(uint64_t* w, unsigned width, uint64_t obj, uint64_t v) {
  if (width == 0) return;
  const uint64_t bit = obj * width;
  const uint64_t mask = ((uint64_t{1} << width) - 1) << (bit & 63);
  uint64_t& word = w[kLenWord[bit >> 6]];
  word = (word & ~mask) | (v << (bit & 63));
}

inline int BucketOf(int ci, uint64_t free_objs) {
  return static_cast<int>(((free_objs - 1) * kTables.bucket_recip[ci]) >> 32);
}

// --- Word-parallel runs of free objects ------------------------------------
//
// A slab's free-object map as a little-endian 512-bit vector of `nw` words
// (bit i = object i), padded with zero words to 9 so that a shift can
// always read the next word.
struct ObjectMap {
  uint64_t x[9];
  uint32_t nw;
};

inline ObjectMap LoadFreeMap(const uint64_t* w, uint32_t objs) {
  ObjectMap m;
  m.nw = (objs + 63) >> 6;
  for (uint32_t j = 0; j < 9; ++j) m.x[j] = j < m.nw ? w[kFreeWord[j]] : 0;
  return m;
}

// dst = a & (src >> s), as 512-bit vectors (s >= 1); dst may be a or src
// (words are written in ascending order and read at or above their own
// index). REQUIRES: src[nw] == 0; leaves dst[nw] == 0.
inline void AndShifted(uint64_t* dst, const uint64_t* a, const uint64_t* src, uint32_t nw,
                       uint32_t s) {
  if (__builtin_expect(s < 64, 1)) {
    for (uint32_t j = 0; j < nw; ++j) {
      dst[j] = a[j] & ((src[j] >> s) | (src[j + 1] << (64 - s)));
    }
    dst[nw] = 0;
    return;
  }
  const uint32_t q = s >> 6;
  const uint32_t b = s & 63;
  for (uint32_t j = 0; j < nw; ++j) {
    const uint64_t lo = j + q < nw ? src[j + q] : 0;
    const uint64_t hi = j + q + 1 < nw ? src[j + q + 1] : 0;
    dst[j] = a[j] & (b == 0 ? lo : (lo >> b) | (hi << (64 - b)));
  }
  dst[nw] = 0;
}

inline bool AnyBit(const uint64_t* v, uint32_t nw) {
  uint64_t any = 0;
  for (uint32_t j = 0; j < nw; ++j) any |= v[j];
  return any != 0;
}

// Turns map v into the set of objects that start `len` (>= 1) free
// objects: O(log len) passes. Returns whether any is left.
inline bool RunStarts(uint64_t* v, uint32_t nw, uint32_t len) {
  uint32_t have = 1;
  while (2 * have <= len) {
    AndShifted(v, v, v, nw, have);
    have *= 2;
    if (!AnyBit(v, nw)) return false;
  }
  if (have < len) AndShifted(v, v, v, nw, len - have);
  return AnyBit(v, nw);
}

// The longest run of set bits in `m`, known to be < `bound`: builds the
// maps of run starts of length 1, 2, 4, ... and extends greedily, O(log
// bound) passes.
inline uint32_t LongestRun(const ObjectMap& m, uint32_t bound) {
  uint64_t level[10][9];
  std::memcpy(level[0], m.x, sizeof(m.x));
  if (!AnyBit(level[0], m.nw)) return 0;
  int t = 0;  // level[t] = starts of runs >= 2^t, non-empty
  while (t + 1 < 10 && (uint32_t{2} << t) < bound) {
    AndShifted(level[t + 1], level[t], level[t], m.nw, uint32_t{1} << t);
    if (!AnyBit(level[t + 1], m.nw)) break;
    ++t;
  }
  uint64_t cur[9];
  std::memcpy(cur, level[t], sizeof(cur));
  uint32_t len = uint32_t{1} << t;
  for (int s = t - 1; s >= 0; --s) {
    uint64_t cand[9];
    AndShifted(cand, cur, level[s], m.nw, len);
    if (AnyBit(cand, m.nw)) {
      std::memcpy(cur, cand, sizeof(cur));
      len += uint32_t{1} << s;
    }
  }
  return len;
}

// Free objects from object i upwards (0 when i is not free). One word in
// the common case.
inline uint32_t RunFrom(const uint64_t* w, uint32_t i) {
  uint32_t n = 0;
  while (i < 512) {
    const uint32_t b = i & 63;
    const uint64_t x = w[kFreeWord[i >> 6]] >> b;
    if (__builtin_expect(~x != 0, 1)) {
      const uint32_t ones = static_cast<uint32_t>(Ctz(~x));
      if (__builtin_expect(ones < 64 - b, 1)) return n + ones;
    }
    n += 64 - b;  // the run reaches the end of the word
    i += 64 - b;
  }
  return n;
}

// Free objects just below object i. One word in the common case.
inline uint32_t RunBefore(const uint64_t* w, uint32_t i) {
  uint32_t n = 0;
  while (i > 0) {
    const uint32_t top = (i - 1) & 63;  // bits [0, top] of word (i - 1) / 64
    const uint64_t x = w[kFreeWord[(i - 1) >> 6]] << (63 - top);
    if (__builtin_expect(~x != 0, 1)) {
      const uint32_t ones = static_cast<uint32_t>(Clz(~x));
      if (__builtin_expect(ones < top + 1, 1)) return n + ones;
    }
    n += top + 1;
    i -= top + 1;
  }
  return n;
}

// Free objects from bit b of `x` (the free word of object obj, b = obj & 63)
// upwards, on into the next words if the run reaches the word's end.
inline uint32_t RunUp(const uint64_t* w, uint32_t obj, uint64_t x) {
  const uint32_t b = obj & 63;
  const uint64_t stop = ~(x >> b);
  const uint32_t ones = stop == 0 ? 64 : static_cast<uint32_t>(Ctz(stop));
  if (__builtin_expect(ones == 64 - b, 0)) return ones + RunFrom(w, obj - b + 64);
  return ones;
}

// Free objects from bit b of `x` downwards, on into the previous words.
inline uint32_t RunDown(const uint64_t* w, uint32_t obj, uint64_t x) {
  const uint32_t b = obj & 63;
  const uint64_t stop = ~(x << (63 - b));
  const uint32_t ones = stop == 0 ? 64 : static_cast<uint32_t>(Clz(stop));
  if (__builtin_expect(ones == b + 1, 0)) return ones + RunBefore(w, obj - b);
  return ones;
}

// Objects that are multiples of 2^s, as word masks for s < 6.
constexpr uint64_t kStrideMask[6] = {~uint64_t{0},          0x5555555555555555ull,
                                     0x1111111111111111ull, 0x0101010101010101ull,
                                     0x0001000100010001ull, 0x0000000100000001ull};

}  // namespace

// ---------------------------------------------------------------------------
// SummaryBitmap

void SlabBackend::SummaryBitmap::Init(uint64_t nbits) {
  nbits_ = std::max<uint64_t>(nbits, 1);
  levels_ = 0;
  uint64_t bits = nbits_;
  uint64_t total = 0;
  while (true) {
    const uint64_t words = (bits + 63) / 64;
    offset_[levels_] = total;
    count_[levels_] = words;
    total += words;
    ++levels_;
    if (words == 1) break;
    bits = words;
  }
  words_.assign(total, 0);
}

void SlabBackend::SummaryBitmap::Set(uint64_t i) {
  for (int l = 0; l < levels_; ++l) {
    uint64_t& w = words_[offset_[l] + (i >> 6)];
    const bool was_empty = w == 0;
    w |= uint64_t{1} << (i & 63);
    if (!was_empty) return;
    i >>= 6;
  }
}

void SlabBackend::SummaryBitmap::Clear(uint64_t i) {
  for (int l = 0; l < levels_; ++l) {
    uint64_t& w = words_[offset_[l] + (i >> 6)];
    w &= ~(uint64_t{1} << (i & 63));
    if (w != 0) return;
    i >>= 6;
  }
}

uint64_t SlabBackend::SummaryBitmap::FindNext(uint64_t i) const {
  if (i >= nbits_) return kNone;
  for (int l = 0; l < levels_; ++l) {
    const uint64_t w = i >> 6;
    if (w >= count_[l]) return kNone;
    const uint64_t bits = words_[offset_[l] + w] & (~uint64_t{0} << (i & 63));
    if (bits != 0) {
      i = (w << 6) + Ctz(bits);
      for (int d = l - 1; d >= 0; --d) i = (i << 6) + Ctz(words_[offset_[d] + i]);
      return i;
    }
    i = w + 1;
  }
  return kNone;
}

uint64_t SlabBackend::SummaryBitmap::FindLast() const {
  const uint64_t top = words_[offset_[levels_ - 1]];
  if (top == 0) return kNone;
  uint64_t i = 63 - Clz(top);
  for (int d = levels_ - 2; d >= 0; --d) i = (i << 6) + 63 - Clz(words_[offset_[d] + i]);
  return i;
}

absl::Status SlabBackend::SummaryBitmap::Check() const {
  for (int l = 0; l + 1 < levels_; ++l) {
    for (uint64_t w = 0; w < count_[l]; ++w) {
      const bool nonzero = words_[offset_[l] + w] != 0;
      const bool summary = (words_[offset_[l + 1] + (w >> 6)] >> (w & 63)) & 1;
      if (nonzero != summary) {
        return absl::InternalError(absl::StrCat("length summary level ", l + 1, " bit ", w,
                                                " disagrees with level ", l));
      }
    }
  }
  const uint64_t tail = nbits_ & 63;
  if (tail != 0 && (words_[count_[0] - 1] >> tail) != 0) {
    return absl::InternalError("length summary has bits beyond its size");
  }
  return absl::OkStatus();
}

// ---------------------------------------------------------------------------
// EdgeSegment

void SlabBackend::EdgeSegment::Init(uint64_t base, uint32_t size) {
  base_ = base;
  size_ = size;
  std::memset(free_, 0, sizeof(free_));
  if (size > 0) SetRange(0, size, true);
  free_pages_ = size;
  free_runs_ = size > 0 ? 1 : 0;
  largest_ = size;
  largest_dirty_ = false;
  run_len_.assign(size, 0);
}

uint32_t SlabBackend::EdgeSegment::NextFree(uint32_t i) const {
  uint32_t w = i >> 6;
  if (w >= kWords) return size_;
  uint64_t bits = free_[w] & (~uint64_t{0} << (i & 63));
  while (bits == 0) {
    if (++w >= kWords) return size_;
    bits = free_[w];
  }
  return std::min<uint32_t>(size_, (w << 6) + Ctz(bits));
}

uint32_t SlabBackend::EdgeSegment::NextUsed(uint32_t i) const {
  uint32_t w = i >> 6;
  if (w >= kWords) return size_;
  uint64_t bits = ~free_[w] & (~uint64_t{0} << (i & 63));
  while (bits == 0) {
    if (++w >= kWords) return size_;
    bits = ~free_[w];
  }
  return std::min<uint32_t>(size_, (w << 6) + Ctz(bits));
}

void SlabBackend::EdgeSegment::SetRange(uint32_t i, uint32_t n, bool free) {
  while (n > 0) {
    const uint32_t bit = i & 63;
    const uint32_t take = std::min<uint32_t>(n, 64 - bit);
    const uint64_t mask = (take == 64 ? ~uint64_t{0} : ((uint64_t{1} << take) - 1)) << bit;
    if (free) {
      free_[i >> 6] |= mask;
    } else {
      free_[i >> 6] &= ~mask;
    }
    i += take;
    n -= take;
  }
}

uint64_t SlabBackend::EdgeSegment::Allocate(uint64_t n, unsigned align) {
  if (n > free_pages_) return kNoFrame;
  if (!largest_dirty_ && n > largest_) return kNoFrame;
  uint32_t p = NextFree(0);
  while (p < size_) {
    const std::optional<uint64_t> abs = AlignUp(base_ + p, align);
    if (!abs || *abs - base_ >= size_ || *abs - base_ + n > size_) return kNoFrame;
    const uint32_t a = static_cast<uint32_t>(*abs - base_);
    if (!IsFree(a)) {
      p = NextFree(a);
      continue;
    }
    const uint32_t q = NextUsed(a);
    if (q - a >= n) {
      const uint32_t len = static_cast<uint32_t>(n);
      const bool left_free = a > 0 && IsFree(a - 1);
      const bool right_free = a + len < size_ && IsFree(a + len);
      SetRange(a, len, false);
      free_runs_ += static_cast<uint32_t>(left_free) + static_cast<uint32_t>(right_free);
      free_runs_ -= 1;
      free_pages_ -= len;
      run_len_[a] = static_cast<uint16_t>(len);
      largest_dirty_ = true;
      return base_ + a;
    }
    p = NextFree(q);
  }
  return kNoFrame;
}

bool SlabBackend::EdgeSegment::Free(uint64_t frame, uint64_t n) {
  const uint64_t off = frame - base_;
  if (off >= size_ || run_len_[off] == 0 || run_len_[off] != n) return false;
  const uint32_t a = static_cast<uint32_t>(off);
  const uint32_t len = static_cast<uint32_t>(n);
  const bool left_free = a > 0 && IsFree(a - 1);
  const bool right_free = a + len < size_ && IsFree(a + len);
  SetRange(a, len, true);
  free_runs_ += 1;
  free_runs_ -= static_cast<uint32_t>(left_free) + static_cast<uint32_t>(right_free);
  free_pages_ += len;
  run_len_[a] = 0;
  largest_dirty_ = true;
  return true;
}

uint32_t SlabBackend::EdgeSegment::Largest() const {
  if (largest_dirty_) {
    uint32_t best = 0;
    for (uint32_t p = NextFree(0); p < size_;) {
      const uint32_t q = NextUsed(p);
      best = std::max(best, q - p);
      p = NextFree(q);
    }
    largest_ = best;
    largest_dirty_ = false;
  }
  return largest_;
}

absl::Status SlabBackend::EdgeSegment::Check(uint64_t* live_pages) const {
  uint32_t free_count = 0;
  uint32_t runs = 0;
  uint32_t best = 0;
  for (uint32_t i = 0; i < kWords * 64; ++i) {
    if (i >= size_) {
      if (IsFree(i)) return absl::InternalError("edge bitmap has bits beyond the segment");
      continue;
    }
    if (IsFree(i)) {
      ++free_count;
      if (i == 0 || !IsFree(i - 1)) ++runs;
    }
  }
  for (uint32_t p = NextFree(0); p < size_;) {
    const uint32_t q = NextUsed(p);
    best = std::max(best, q - p);
    p = NextFree(q);
  }
  if (free_count != free_pages_ || runs != free_runs_) {
    return absl::InternalError(absl::StrCat("edge at frame ", base_, ": counted ", free_count,
                                            " free pages in ", runs, " runs, recorded ",
                                            free_pages_, " in ", free_runs_));
  }
  if (!largest_dirty_ && largest_ != best) {
    return absl::InternalError("edge cached largest run is stale");
  }
  // Every used frame belongs to exactly one live run, recorded at its start.
  for (uint32_t p = 0; p < size_;) {
    if (IsFree(p)) {
      if (run_len_[p] != 0) return absl::InternalError("edge: free frame marked as run start");
      ++p;
      continue;
    }
    const uint32_t len = run_len_[p];
    if (len == 0 || p + len > size_) {
      return absl::InternalError(absl::StrCat("edge at frame ", base_ + p,
                                              ": used frame without a valid run start"));
    }
    for (uint32_t i = p; i < p + len; ++i) {
      if (IsFree(i) || (i > p && run_len_[i] != 0)) {
        return absl::InternalError(absl::StrCat("edge run at frame ", base_ + p, " is broken"));
      }
    }
    *live_pages += len;
    p += len;
  }
  return absl::OkStatus();
}

// ---------------------------------------------------------------------------
// RunLengthSet

uint32_t SlabBackend::RunLengthSet::FindNext(uint32_t i, uint32_t objs) const {
  for (uint32_t wi = i >> 6; wi <= (objs - 1) >> 6; ++wi) {
    const uint64_t bits = words[wi] & (wi == (i >> 6) ? ~uint64_t{0} << (i & 63) : ~uint64_t{0});
    if (bits != 0) {
      const uint32_t len = (wi << 6) + Ctz(bits);
      return len < objs ? len : kNone;
    }
  }
  return kNone;
}

uint32_t SlabBackend::RunLengthSet::FindLast(uint32_t objs) const {
  for (int wi = static_cast<int>((objs - 1) >> 6); wi >= 0; --wi) {
    const uint32_t below = objs - (static_cast<uint32_t>(wi) << 6);  // >= 1
    uint64_t mask = below >= 64 ? ~uint64_t{0} : (uint64_t{1} << below) - 1;
    if (wi == 0) mask &= ~uint64_t{3};  // lengths 0 and 1
    const uint64_t bits = words[wi] & mask;
    if (bits != 0) return (static_cast<uint32_t>(wi) << 6) + 63 - Clz(bits);
  }
  return 0;
}

// ---------------------------------------------------------------------------
// SlabBackend

PageCount SlabBackend::ClassPages(int class_index) {
  return PageCount(kClassPagesTable[class_index]);
}

int SlabBackend::ClassFor(PageCount pages, AlignOrder align) {
  if (pages.value() == 0 || pages.value() > kMaxClassPages ||
      align.value() > kMaxSlabAlignOrder) {
    return -1;
  }
  return kTables.class_for[align.value()][pages.value()];
}

SlabBackend::SlabBackend(PageRun range) : range_(range) {
  const uint64_t first = range.first.value();
  const uint64_t end = range.end().value();
  const uint64_t sp_lo = (first >> kSuperPageOrder) + ((first & (kSpPages - 1)) != 0 ? 1 : 0);
  const uint64_t sp_hi = end >> kSuperPageOrder;
  const uint64_t count = sp_hi > sp_lo ? sp_hi - sp_lo : 0;
  if (count >= kNil) {
    std::fprintf(stderr, "SlabBackend: range %llu+%llu holds %llu superpages, limit %u\n",
                 static_cast<unsigned long long>(first),
                 static_cast<unsigned long long>(range.pages.value()),
                 static_cast<unsigned long long>(count), kNil - 1);
    std::abort();
  }
  num_superpages_ = static_cast<uint32_t>(count);
  sp_base_ = sp_lo;
  if (count > 0) {
    sp_frames_begin_ = sp_lo << kSuperPageOrder;
    sp_frames_end_ = sp_hi << kSuperPageOrder;
    edges_[0].Init(first, static_cast<uint32_t>(sp_frames_begin_ - first));
    edges_[1].Init(sp_frames_end_, static_cast<uint32_t>(end - sp_frames_end_));
  } else {
    sp_frames_begin_ = sp_frames_end_ = end;
    edges_[0].Init(first, static_cast<uint32_t>(end - first));
    edges_[1].Init(end, 0);
  }

  meta_.reset(new SuperpageMeta[num_superpages_]);
  bits_.reset(new SlabBits[num_superpages_]);  // left uninitialized
  for (uint32_t i = 0; i < num_superpages_; ++i) {
    SuperpageMeta& m = meta_[i];
    m.prev = m.next = kNil;
    m.u.run_pages = 0;
    m.free_objs = 0;
    m.state = kFree;
    m.cls = 0;
    m.bucket = kNoBucket;
    m.summary = 0;
    m.longest = 0;
  }
  ext_heads_.assign(static_cast<size_t>(num_superpages_) + 1, kNil);
  ext_lengths_.Init(static_cast<uint64_t>(num_superpages_) + 1);
  if (num_superpages_ > 0) InsertExtent(0, num_superpages_);
  free_superpages_ = num_superpages_;
  for (auto& row : slab_heads_) {
    for (uint32_t& h : row) h = kNil;
  }
  for (int ci = 0; ci < kNumClasses; ++ci) {
    run_list_base_[ci] = num_superpages_ + kTables.run_base[ci];
  }
  const uint64_t nodes = uint64_t{num_superpages_} + kRunLists;
  run_links_.reset(new RunLink[nodes]);  // superpage nodes set when linked
  for (uint64_t i = num_superpages_; i < nodes; ++i) {
    run_links_[i].prev = run_links_[i].next = static_cast<uint32_t>(i);
  }
  free_pages_ = range.pages.value();
  metadata_bytes_ = sizeof(*this) + uint64_t{num_superpages_} * sizeof(SuperpageMeta) +
                    nodes * sizeof(RunLink) +
                    uint64_t{num_superpages_} * sizeof(SlabBits) +
                    ext_heads_.capacity() * sizeof(uint32_t) + ext_lengths_.bytes() +
                    edges_[0].bytes() + edges_[1].bytes();
}

SlabBackend::~SlabBackend() = default;

PageCount SlabBackend::edge_pages() const {
  return PageCount(uint64_t{edges_[0].size()} + edges_[1].size());
}

// --- Superpage pool --------------------------------------------------------

void SlabBackend::InsertExtent(uint32_t start, uint32_t len) {
  SuperpageMeta& m = meta_[start];
  m.u.ext.len = len;
  meta_[start + len - 1].u.ext.start = start;
  m.prev = kNil;
  if (ext_lengths_.Test(len)) {
    m.next = ext_heads_[len];
    meta_[m.next].prev = start;
  } else {
    m.next = kNil;
    ext_lengths_.Set(len);
  }
  ext_heads_[len] = start;
  ++num_extents_;
}

void SlabBackend::RemoveExtent(uint32_t start, uint32_t len) {
  SuperpageMeta& m = meta_[start];
  if (m.prev != kNil) {
    meta_[m.prev].next = m.next;
  } else {
    ext_heads_[len] = m.next;
    if (m.next == kNil) ext_lengths_.Clear(len);
  }
  if (m.next != kNil) meta_[m.next].prev = m.prev;
  --num_extents_;
}

void SlabBackend::CarveFromExtent(uint32_t ext, uint32_t len, uint32_t start, uint32_t count) {
  RemoveExtent(ext, len);
  if (start > ext) InsertExtent(ext, start - ext);
  const uint32_t end = start + count;
  if (end < ext + len) InsertExtent(end, ext + len - end);
  free_superpages_ -= count;
}

std::optional<uint32_t> SlabBackend::TakeSuperpages(uint64_t count, unsigned align_order) {
  if (count == 0 || count > free_superpages_) return std::nullopt;
  const uint32_t n = static_cast<uint32_t>(count);
  if (align_order == 0) {
    const uint64_t len = ext_lengths_.FindNext(n);
    if (len == SummaryBitmap::kNone) return std::nullopt;
    const uint32_t ext = ext_heads_[len];
    CarveFromExtent(ext, static_cast<uint32_t>(len), ext, n);
    return ext;
  }
  // The first aligned start inside extent `ext`, if `n` superpages fit there.
  auto fit = [&](uint32_t ext, uint64_t len) -> std::optional<uint32_t> {
    const std::optional<uint64_t> abs = AlignUp(sp_base_ + ext, align_order);
    if (!abs) return std::nullopt;
    const uint64_t start = *abs - sp_base_;
    if (start - ext >= len || len - (start - ext) < n) return std::nullopt;
    return static_cast<uint32_t>(start);
  };
  // Guaranteed fit: any extent of length >= n + 2^align - 1.
  const uint64_t slack = align_order >= 63 ? UINT64_MAX : (uint64_t{1} << align_order) - 1;
  const uint64_t need = slack > num_superpages_ ? UINT64_MAX : n + slack;
  if (need <= num_superpages_) {
    const uint64_t len = ext_lengths_.FindNext(need);
    if (len != SummaryBitmap::kNone) {
      const uint32_t ext = ext_heads_[len];
      const uint32_t start = *fit(ext, len);
      CarveFromExtent(ext, static_cast<uint32_t>(len), start, n);
      return start;
    }
  }
  // Exact search among the shorter extents (rare: large alignments only).
  for (uint64_t len = ext_lengths_.FindNext(n); len != SummaryBitmap::kNone && len < need;
       len = ext_lengths_.FindNext(len + 1)) {
    for (uint32_t ext = ext_heads_[len]; ext != kNil; ext = meta_[ext].next) {
      if (const std::optional<uint32_t> start = fit(ext, len)) {
        CarveFromExtent(ext, static_cast<uint32_t>(len), *start, n);
        return *start;
      }
    }
  }
  return std::nullopt;
}

void SlabBackend::FlushCachedSuperpage() {
  if (cached_sp_ == kNil) return;
  ReleaseSuperpages(cached_sp_, 1);
  cached_sp_ = kNil;
}

void SlabBackend::ReleaseSuperpages(uint32_t sp, uint32_t count) {
  meta_[sp].state = kFree;
  meta_[sp + count - 1].state = kFree;
  free_superpages_ += count;
  uint32_t start = sp;
  uint32_t len = count;
  if (sp > 0 && meta_[sp - 1].state == kFree) {
    const uint32_t left = meta_[sp - 1].u.ext.start;
    const uint32_t left_len = meta_[left].u.ext.len;
    RemoveExtent(left, left_len);
    start = left;
    len += left_len;
  }
  const uint32_t right = sp + count;
  if (right < num_superpages_ && meta_[right].state == kFree) {
    const uint32_t right_len = meta_[right].u.ext.len;
    RemoveExtent(right, right_len);
    len += right_len;
  }
  InsertExtent(start, len);
}

uint64_t SlabBackend::AllocateRun(uint64_t n, unsigned align) {
  FlushCachedSuperpage();
  const uint64_t count = (n >> kSuperPageOrder) + ((n & (kSpPages - 1)) != 0 ? 1 : 0);
  if (count > free_superpages_) return kNoFrame;
  const std::optional<uint32_t> sp =
      TakeSuperpages(count, align > kSuperPageOrder ? align - kSuperPageOrder : 0);
  if (!sp) return kNoFrame;
  SuperpageMeta& head = meta_[*sp];
  head.state = kRunHead;
  head.u.run_pages = n;
  if (count > 1) meta_[*sp + count - 1].state = kRunTail;
  free_pages_ -= n;
  // Freed at once, this run would go back where it came from (the extent
  // it was cut from, at the head of its list) and the same request would
  // take it again: it may be parked.
  hot_.kind = kHotRun;
  hot_.sp = *sp;
  hot_.extra = static_cast<uint32_t>(count);
  return SuperpageFrame(*sp);
}

// --- Edges ---------------------------------------------------------------

uint64_t SlabBackend::AllocateFromEdges(uint64_t n, unsigned align) {
  for (EdgeSegment& e : edges_) {
    if (n > e.free_pages()) continue;
    const uint64_t f = e.Allocate(n, align);
    if (f != kNoFrame) {
      free_pages_ -= n;
      return f;
    }
  }
  return kNoFrame;
}

// --- Slabs ---------------------------------------------------------------

void SlabBackend::LinkSlab(uint32_t sp, int ci, int bucket) {
  SuperpageMeta& m = meta_[sp];
  uint32_t& head = slab_heads_[ci][bucket];
  m.bucket = static_cast<uint8_t>(bucket);
  m.prev = kNil;
  m.next = head;
  if (head != kNil) meta_[head].prev = sp;
  head = sp;
  bucket_mask_[ci] |= static_cast<uint8_t>(1u << bucket);
  class_mask_ |= 1u << ci;
}

void SlabBackend::UnlinkSlab(uint32_t sp) {
  SuperpageMeta& m = meta_[sp];
  const int ci = m.cls;
  const int bucket = m.bucket;
  if (m.prev != kNil) {
    meta_[m.prev].next = m.next;
  } else {
    slab_heads_[ci][bucket] = m.next;
    if (m.next == kNil) {
      bucket_mask_[ci] &= static_cast<uint8_t>(~(1u << bucket));
      if (bucket_mask_[ci] == 0) class_mask_ &= ~(1u << ci);
    }
  }
  if (m.next != kNil) meta_[m.next].prev = m.prev;
  m.bucket = kNoBucket;
}

inline void SlabBackend::UpdateBucket(uint32_t sp, int ci, uint32_t free_objs) {
  SuperpageMeta& m = meta_[sp];
  if (free_objs == 0) {
    if (m.bucket != kNoBucket) UnlinkSlab(sp);
    return;
  }
  const int bucket = BucketOf(ci, free_objs);
  if (bucket == m.bucket) return;
  if (m.bucket != kNoBucket) UnlinkSlab(sp);
  LinkSlab(sp, ci, bucket);
}

inline uint32_t SlabBackend::RunList(int ci, uint32_t len) const {
  return run_list_base_[ci] + len;
}

namespace {
// Lists by longest run: 0 shares the list of 1.
inline uint32_t RunKey(uint32_t longest) { return longest | uint32_t{longest == 0}; }
}  // namespace

inline void SlabBackend::UnlinkRun(uint32_t sp, int ci) {
  RunLink* links = run_links_.get();
  const RunLink node = links[sp];
  links[node.prev].next = node.next;
  links[node.next].prev = node.prev;
  // The length leaves the set when its list empties.
  const uint32_t key = RunKey(meta_[sp].longest);
  const uint32_t list = RunList(ci, key);
  run_lengths_[ci].ClearIf(key, links[list].next == list);
}

inline void SlabBackend::LinkRun(uint32_t sp, int ci, uint32_t longest) {
  RunLink* links = run_links_.get();
  const uint32_t key = RunKey(longest);
  const uint32_t list = RunList(ci, key);
  const uint32_t head = links[list].next;
  links[sp].prev = list;
  links[sp].next = head;
  links[head].prev = sp;
  links[list].next = sp;
  meta_[sp].longest = static_cast<uint16_t>(longest);
  run_lengths_[ci].Set(key);
}

inline void SlabBackend::SetLongest(uint32_t sp, int ci, uint32_t longest) {
  const uint32_t old = meta_[sp].longest;
  // Another list unless both are 0 or 1.
  if (old != longest && (old | longest) > 1) {
    UnlinkRun(sp, ci);
    LinkRun(sp, ci, longest);
  } else {
    meta_[sp].longest = static_cast<uint16_t>(longest);
  }
}

void SlabBackend::CarveSlab(uint32_t sp, int ci) {
  SuperpageMeta& m = meta_[sp];
  uint64_t* w = bits_[sp].w;
  const uint32_t objs = kTables.objects[ci];
  uint8_t summary = 0;
  for (uint32_t wi = 0; wi < 8; ++wi) {
    const uint64_t valid = ValidMask(objs, wi);
    w[kFreeWord[wi]] = valid;
    w[kStartWord[wi]] = ~valid;  // sentinels past the last object
    if (valid != 0) summary |= static_cast<uint8_t>(1u << wi);
  }
  m.state = kSlab;
  m.cls = static_cast<uint8_t>(ci);
  m.free_objs = static_cast<uint16_t>(objs);
  m.summary = summary;
  m.bucket = kNoBucket;  // linked once its first object is taken
  LinkRun(sp, ci, objs);  // empty: listed under objs, which searches skip
  ++slab_superpages_;
  free_objects_ += objs;
}

inline uint64_t SlabBackend::AllocateObjectFrom(uint32_t sp, int ci, uint64_t n) {
  SuperpageMeta& m = meta_[sp];
  uint64_t* w = bits_[sp].w;
  const int wi = Ctz(m.summary);
  uint64_t& free_word = w[kFreeWord[wi]];
  const uint64_t word = free_word;
  const uint64_t bit = word & (~word + 1);
  const uint32_t obj = (static_cast<uint32_t>(wi) << 6) + Ctz(word);
  const uint32_t longest = m.longest;
  const uint32_t left = m.free_objs - 1u;
  if (longest <= 1) {
    // Only single free objects: one is left iff any object is.
    m.longest = static_cast<uint16_t>(left != 0);
  } else {
    // The lowest free object starts a run; taking it shortens that run by
    // one. Only if it was a longest run can the longest change, to one
    // less unless another run that long exists (possible only if the rest
    // of the free objects could hold one).
    const uint32_t run = RunUp(w, obj, word);
    bool shorter = run == longest;
    if (__builtin_expect(shorter && left - (run - 1) >= run, 0)) {
      ObjectMap map = LoadFreeMap(w, kTables.objects[ci]);
      map.x[obj >> 6] &= ~bit;
      shorter = !RunStarts(map.x, map.nw, run);
    }
    SetLongest(sp, ci, longest - shorter);
  }
  free_word = word ^ bit;
  if (free_word == 0) m.summary &= static_cast<uint8_t>(~(1u << wi));
  w[kStartWord[wi]] |= bit;
  SetLen(w, kTables.len_bits[ci], obj, n - 1);
  hot_.extra = obj;
  m.free_objs = static_cast<uint16_t>(left);
  --free_objects_;
  free_pages_ -= n;
  UpdateBucket(sp, ci, left);
  return SuperpageFrame(sp) + uint64_t{obj} * kClassPagesTable[ci];
}

uint64_t SlabBackend::AllocateObjects(uint32_t sp, int ci, uint32_t obj, uint32_t count,
                                      uint64_t n, bool keeps_longest) {
  SuperpageMeta& m = meta_[sp];
  uint64_t* w = bits_[sp].w;
  const uint32_t run = RunBefore(w, obj) + RunFrom(w, obj);  // the run cut
  m.summary = SetObjects(w, m.summary, obj, count, false);
  w[kStartWord[obj >> 6]] |= uint64_t{1} << (obj & 63);
  const uint64_t size = kClassPagesTable[ci];
  SetLen(w, kTables.len_bits[ci], obj + count - 1, n - (count - 1) * size - 1);
  m.free_objs = static_cast<uint16_t>(m.free_objs - count);
  if (!keeps_longest && run == m.longest) {
    // Still as long elsewhere, or recomputed (shorter than `run` now).
    ObjectMap map = LoadFreeMap(w, kTables.objects[ci]);
    ObjectMap probe = map;
    if (m.free_objs < run || !RunStarts(probe.x, probe.nw, run)) {
      SetLongest(sp, ci, LongestRun(map, run));
    }
  }
  free_objects_ -= count;
  free_pages_ -= n;
  UpdateBucket(sp, ci, m.free_objs);
  return SuperpageFrame(sp) + obj * size;
}

int64_t SlabBackend::FindObjects(uint32_t sp, int ci, uint32_t count, unsigned align,
                                 bool* keeps_longest) const {
  const uint64_t* w = bits_[sp].w;
  const uint32_t objs = kTables.objects[ci];
  *keeps_longest = false;
  if (count > objs) return -1;
  if (align >= kSuperPageOrder) {
    // Only object 0 sits on a superpage boundary.
    if (!FrameNumber(SuperpageFrame(sp)).IsAligned(AlignOrder(align))) return -1;
    return RunFrom(w, 0) >= count ? 0 : -1;
  }
  // Object i is 2^align aligned iff i * size is, i.e. i is a multiple of
  // 2^stride.
  const unsigned tz = static_cast<unsigned>(Ctz(kClassPagesTable[ci]));
  const unsigned stride = align > tz ? align - tz : 0;
  ObjectMap map = LoadFreeMap(w, objs);
  const ObjectMap free_map = map;
  if (!RunStarts(map.x, map.nw, count)) return -1;
  if (stride == 0) {
    // Best fit: the shortest of the first kCandidates free runs that hold
    // `count` objects, taken from its start. Cutting a run shorter than the
    // longest, or one of two longest ones, leaves the longest as it is.
    constexpr int kCandidates = 4;
    const uint32_t longest = meta_[sp].longest;
    int64_t best = -1;
    uint32_t best_len = 0;
    uint32_t as_long = 0;  // fitting runs seen of the longest length
    int seen = 0;
    uint64_t below = 0;  // top bit of the previous free word
    for (uint32_t j = 0; j < map.nw && seen < kCandidates; ++j) {
      const uint64_t x = free_map.x[j];
      uint64_t starts = map.x[j] & x & ~((x << 1) | below);  // fitting run starts
      below = x >> 63;
      for (; starts != 0 && seen < kCandidates; starts &= starts - 1, ++seen) {
        const uint32_t p = (j << 6) + Ctz(starts);
        const uint32_t len = RunFrom(w, p);
        as_long += len == longest ? 1 : 0;
        if (best < 0 || len < best_len) {
          best = p;
          best_len = len;
        }
      }
    }
    *keeps_longest = best_len < longest || as_long >= 2;
    return best;
  }
  for (uint32_t j = 0; j < map.nw; ++j) {
    uint64_t bits = map.x[j];
    if (stride < 6) {
      bits &= kStrideMask[stride];
    } else if (((j << 6) & ((uint32_t{1} << stride) - 1)) != 0) {
      bits = 0;
    } else {
      bits &= 1;
    }
    if (bits != 0) return (j << 6) + Ctz(bits);
  }
  return -1;
}

uint64_t SlabBackend::BorrowFromClass(int ci, uint64_t n, unsigned align) {
  const uint64_t size = kClassPagesTable[ci];
  const uint32_t objs = kTables.objects[ci];
  const uint64_t need64 = n / size + (n % size != 0 ? 1 : 0);
  if (need64 >= objs) return kNoFrame;  // a partial slab has < objs free
  const uint32_t need = static_cast<uint32_t>(need64);
  // A run of `sure` free objects holds `need` aligned ones for certain.
  uint32_t sure = objs;
  if (align < kSuperPageOrder) {
    const unsigned tz = static_cast<unsigned>(Ctz(size));
    const uint32_t step = align > tz ? uint32_t{1} << (align - tz) : 1;
    sure = need + step - 1;
  }
  auto take = [&](uint32_t sp) -> uint64_t {
    bool keeps_longest;
    const int64_t obj = FindObjects(sp, ci, need, align, &keeps_longest);
    if (obj < 0) return kNoFrame;
    return AllocateObjects(sp, ci, static_cast<uint32_t>(obj), need, n, keeps_longest);
  };
  if (sure == 1) {
    // One object, any alignment it has: every partial slab fits; take the
    // fullest, like a normal allocation.
    return take(slab_heads_[ci][Ctz(bucket_mask_[ci])]);
  }
  const RunLengthSet& lengths = run_lengths_[ci];
  const RunLink* links = run_links_.get();
  if (sure < objs) {
    // The slab whose longest run fits best.
    const uint32_t len = lengths.FindNext(sure, objs);
    if (len != RunLengthSet::kNone) return take(links[RunList(ci, len)].next);
    if (sure == need) return kNoFrame;  // exact: no run of `need` anywhere
  }
  // Aligned requests: probe a few slabs whose longest run may or may not
  // hold an aligned run (the fullest one first when one object will do).
  constexpr int kMaxProbes = 4;
  int probes = 0;
  if (need == 1) {
    const uint64_t f = take(slab_heads_[ci][Ctz(bucket_mask_[ci])]);
    if (f != kNoFrame || ++probes == kMaxProbes) return f;
  }
  for (uint32_t len = lengths.FindNext(std::max<uint32_t>(need, 2), objs);
       len != RunLengthSet::kNone && len < sure; len = lengths.FindNext(len + 1, objs)) {
    const uint32_t list = RunList(ci, len);
    for (uint32_t sp = links[list].next; sp != list; sp = links[sp].next) {
      const uint64_t f = take(sp);
      if (f != kNoFrame || ++probes == kMaxProbes) return f;
    }
  }
  return kNoFrame;
}

uint64_t SlabBackend::Borrow(uint64_t n, unsigned align, int first_class) {
  const uint32_t below = first_class > 0 ? (uint32_t{1} << first_class) - 1 : 0;
  // Single objects of a larger class first (least slack), then runs of
  // objects of smaller classes, largest class first.
  for (uint32_t up = first_class >= 0 ? class_mask_ & ~below : 0; up != 0; up &= up - 1) {
    const uint64_t f = BorrowFromClass(Ctz(up), n, align);
    if (f != kNoFrame) return f;
  }
  for (uint32_t down = first_class >= 0 ? class_mask_ & below : class_mask_; down != 0;) {
    const int ci = 31 - __builtin_clz(down);
    const uint64_t f = BorrowFromClass(ci, n, align);
    if (f != kNoFrame) return f;
    down &= ~(uint32_t{1} << ci);
  }
  return kNoFrame;
}

inline bool SlabBackend::FreeObject(uint32_t sp, uint64_t offset, uint64_t n) {
  SuperpageMeta& m = meta_[sp];
  const int ci = m.cls;
  const uint64_t size = kClassPagesTable[ci];
  const uint64_t obj = (offset * kTables.obj_recip[ci]) >> 32;
  const uint32_t objs = kTables.objects[ci];
  if (obj * size != offset || obj >= objs) return false;
  uint64_t* w = bits_[sp].w;
  const int wi = static_cast<int>(obj >> 6);
  const uint64_t bit = uint64_t{1} << (obj & 63);
  uint64_t& free_word = w[kFreeWord[wi]];
  uint64_t& start_word = w[kStartWord[wi]];
  // Not allocated, or inside a multi-object run: not a run start.
  if ((free_word & bit) != 0 || (start_word & bit) == 0) return false;
  // The run continues over the following allocated non-start objects.
  const uint32_t count = 1 + ContinuationObjects(w, static_cast<uint32_t>(obj) + 1);
  const uint64_t head_pages = (count - 1) * size;
  if (n <= head_pages ||
      n - head_pages != GetLen(w, kTables.len_bits[ci], obj + count - 1) + 1) {
    return false;
  }
  const uint32_t now_free = m.free_objs + count;
  free_objects_ += count;
  free_pages_ += n;
  if (now_free == objs) {
    // Empty: the superpage leaves the slab lists and becomes the one cached
    // empty superpage; the previous one, if any, goes back to the pool.
    if (m.bucket != kNoBucket) UnlinkSlab(sp);
    UnlinkRun(sp, ci);
    free_objects_ -= objs;
    --slab_superpages_;
    m.free_objs = 0;
    m.summary = 0;
    FlushCachedSuperpage();
    m.state = kCached;
    cached_sp_ = sp;
    return true;
  }
  // The freed objects join the free runs on either side (none in a full
  // slab).
  const uint32_t longest = m.longest;
  uint32_t merged = count;
  if (count == 1) {
    free_word |= bit;
    m.summary |= static_cast<uint8_t>(1u << wi);
    if (longest != 0) {
      merged = RunDown(w, static_cast<uint32_t>(obj), free_word) +
               RunUp(w, static_cast<uint32_t>(obj), free_word) - 1;
    }
  } else {
    m.summary = SetObjects(w, m.summary, static_cast<uint32_t>(obj), count, true);
    if (longest != 0) {
      merged = RunBefore(w, static_cast<uint32_t>(obj)) + RunFrom(w, static_cast<uint32_t>(obj));
    }
  }
  start_word &= ~bit;
  m.free_objs = static_cast<uint16_t>(now_free);
  SetLongest(sp, ci, std::max<uint32_t>(longest, merged));
  UpdateBucket(sp, ci, now_free);
  return true;
}

uint32_t SlabBackend::HotObjectMergedRun() const {
  const uint64_t* w = bits_[hot_.sp].w;
  const uint32_t obj = hot_.extra;
  const uint64_t x = w[kFreeWord[obj >> 6]] | uint64_t{1} << (obj & 63);
  return RunDown(w, obj, x) + RunUp(w, obj, x) - 1;
}

// --- Interface -----------------------------------------------------------

std::optional<FrameNumber> SlabBackend::Allocate(PageCount pages, AlignOrder align) {
  const uint64_t n = pages.value();
  if (hot_.parked && n == hot_.pages && align.value() == hot_.align) {
    // Put back, the parked run would be this request's answer again.
    hot_.parked = false;
    return FrameNumber(hot_.frame);
  }
  return AllocateGeneral(n, align.value());
}

bool SlabBackend::Free(PageRun run) {
  if (run.first.value() == hot_.frame && run.pages.value() == hot_.pages &&
      hot_.kind != kHotNone && !hot_.parked) {
    // Exactly the hot run: park it (Stats() reports it freed).
    hot_.parked = true;
    return true;
  }
  return FreeGeneral(run.first.value(), run.pages.value());
}

void SlabBackend::FlushHot() {
  hot_.parked = false;
  hot_.kind = kHotNone;
  const bool freed = FreeGeneral(hot_.frame, hot_.pages);
  (void)freed;  // always: the run is live
}

__attribute__((noinline)) std::optional<FrameNumber> SlabBackend::AllocateGeneral(uint64_t n,
                                                                                   unsigned k) {
  if (hot_.parked) FlushHot();
  hot_.kind = kHotNone;
  if (n == 0 || k >= 64) return std::nullopt;
  uint64_t f;
  if (n <= kMaxClassPages && k <= kMaxSlabAlignOrder) {
    const int ci = kTables.class_for[k][n];
    if (bucket_mask_[ci] != 0) {
      // (a) The fullest partial slab of the class.
      const uint32_t sp = slab_heads_[ci][Ctz(bucket_mask_[ci])];
      const uint8_t bucket = meta_[sp].bucket;
      f = AllocateObjectFrom(sp, ci, n);
      const SuperpageMeta& m = meta_[sp];
      // Hot if freeing it would not move the slab to another bucket.
      if (m.bucket == bucket) {
        hot_.kind = kHotObject;  // hot_.extra: the object
        hot_.sp = sp;
      }
    } else if ((f = AllocateFromEdges(n, k)) != kNoFrame) {
      // (b) The edges, which never hold a whole superpage.
    } else if (cached_sp_ != kNil || free_superpages_ != 0) {
      // (c) A fresh superpage: the cached empty one, else best fit.
      uint32_t sp = cached_sp_;
      if (sp != kNil) {
        cached_sp_ = kNil;
      } else {
        sp = *TakeSuperpages(1, 0);
      }
      CarveSlab(sp, ci);
      f = AllocateObjectFrom(sp, ci, n);
      hot_.kind = kHotFreshSlab;  // hot_.extra: object 0
      hot_.sp = sp;
    } else {
      // (d) Exhaustion: borrow from a partial slab of another class.
      f = Borrow(n, k, ci);
    }
  } else {
    f = AllocateFromEdges(n, k);
    if (f == kNoFrame) f = AllocateRun(n, k);
    if (f == kNoFrame) f = Borrow(n, k, -1);
  }
  if (f == kNoFrame) return std::nullopt;
  if (hot_.kind != kHotNone) {
    hot_.frame = f;
    hot_.pages = n;
    hot_.align = static_cast<uint8_t>(k);
  }
  return FrameNumber(f);
}

__attribute__((noinline)) bool SlabBackend::FreeGeneral(uint64_t f, uint64_t n) {
  if (hot_.parked) {
    if (f == hot_.frame && n == hot_.pages) return false;  // freed already
    FlushHot();
  }
  const uint64_t first = range_.first.value();
  const uint64_t end = range_.end().value();
  if (n == 0 || f < first || f >= end || n > end - f) return false;
  if (f < sp_frames_begin_ || f >= sp_frames_end_) {
    for (EdgeSegment& e : edges_) {
      if (e.Contains(f)) {
        if (!e.Free(f, n)) return false;
        free_pages_ += n;
        hot_.kind = kHotNone;
        return true;
      }
    }
    return false;
  }
  const uint32_t sp = static_cast<uint32_t>((f >> kSuperPageOrder) - sp_base_);
  // Overlap the likely cache miss on the slab maps with the one on meta_.
  __builtin_prefetch(&bits_[sp]);
  const uint64_t offset = f & (kSpPages - 1);
  SuperpageMeta& m = meta_[sp];
  if (m.state == kSlab) {
    if (!FreeObject(sp, offset, n)) return false;
    hot_.kind = kHotNone;
    return true;
  }
  if (m.state != kRunHead || offset != 0 || m.u.run_pages != n) return false;
  const uint64_t count = (n >> kSuperPageOrder) + ((n & (kSpPages - 1)) != 0 ? 1 : 0);
  free_pages_ += n;
  ReleaseSuperpages(sp, static_cast<uint32_t>(count));
  hot_.kind = kHotNone;
  return true;
}

BackendStats SlabBackend::Stats() const {
  // Everything is reported for the state in which a parked hot run is
  // freed (HotParked): arithmetic on the counters, nothing is changed.
  BackendStats s;
  s.total_pages = range_.pages;
  uint64_t free_pages = free_pages_;
  uint64_t free_objects = free_objects_;
  uint32_t class_mask = class_mask_;
  uint64_t largest = std::max(edges_[0].Largest(), edges_[1].Largest());
  uint64_t longest_extent = free_superpages_ != 0 ? ext_lengths_.FindLast() : 0;
  uint64_t free_superpages = free_superpages_;
  uint64_t extents = num_extents_;
  // A free block the structures do not show yet: the cached empty
  // superpage, the emptied slab of a parked kHotFreshSlab or a parked
  // superpage run (never two at once: both need an empty cache).
  uint32_t block = cached_sp_;
  uint32_t block_len = 1;
  if (hot_.parked) {
    free_pages += hot_.pages;
    if (hot_.kind == kHotObject) {
      free_objects += 1;
    } else if (hot_.kind == kHotFreshSlab) {
      // Its class has no other partial slab.
      free_objects -= kTables.objects[meta_[hot_.sp].cls] - 1;
      class_mask &= ~(1u << meta_[hot_.sp].cls);
      block = hot_.sp;
    } else {
      block = hot_.sp;
      block_len = hot_.extra;
    }
  }
  if (block != kNil) {
    // Reported as back in the pool, coalesced with its neighbours.
    const uint32_t sp = block;
    const uint64_t left =
        sp > 0 && meta_[sp - 1].state == kFree ? meta_[meta_[sp - 1].u.ext.start].u.ext.len : 0;
    const uint32_t after = sp + block_len;
    const uint64_t right =
        after < num_superpages_ && meta_[after].state == kFree ? meta_[after].u.ext.len : 0;
    longest_extent = std::max(longest_extent, left + block_len + right);
    free_superpages += block_len;
    extents = extents + 1 - (left != 0 ? 1 : 0) - (right != 0 ? 1 : 0);
  }
  largest = std::max(largest, longest_extent * kSpPages);
  // What Borrow can serve: the longest free-object run of each class.
  for (uint32_t mask = class_mask; mask != 0; mask &= mask - 1) {
    const int ci = Ctz(mask);
    // Every partial slab has a free object; runs of 2 or more are indexed.
    uint64_t objects = std::max<uint32_t>(1, run_lengths_[ci].FindLast(kTables.objects[ci]));
    if (HotParked(kHotObject) && meta_[hot_.sp].cls == ci) {
      objects = std::max<uint64_t>(objects, HotObjectMergedRun());
    }
    largest = std::max<uint64_t>(largest, objects * kClassPagesTable[ci]);
  }
  s.free_pages = PageCount(free_pages);
  s.largest_free_run = PageCount(largest);
  s.free_runs = extents + edges_[0].free_runs() + edges_[1].free_runs() + free_objects;
  s.free_superpages = free_superpages;
  s.metadata_bytes = metadata_bytes_;
  return s;
}

// --- Invariants ----------------------------------------------------------

absl::Status SlabBackend::CheckSuperpages(uint64_t* live_pages) const {
  uint64_t free_sp = 0;
  uint64_t extents = 0;
  uint64_t slabs = 0;
  uint64_t free_objs = 0;
  for (uint64_t i = 0; i < num_superpages_;) {
    const SuperpageMeta& m = meta_[i];
    switch (m.state) {
      case kFree: {
        const uint64_t len = m.u.ext.len;
        if (len == 0 || i + len > num_superpages_) {
          return absl::InternalError(absl::StrCat("superpage ", i, ": bad extent length ", len));
        }
        for (uint64_t j = i; j < i + len; ++j) {
          if (meta_[j].state != kFree) {
            return absl::InternalError(
                absl::StrCat("extent at superpage ", i, " covers non-free superpage ", j));
          }
        }
        if (meta_[i + len - 1].u.ext.start != i) {
          return absl::InternalError(absl::StrCat("extent at superpage ", i, ": bad end tag"));
        }
        if (i + len < num_superpages_ && meta_[i + len].state == kFree) {
          return absl::InternalError(absl::StrCat("extent at superpage ", i, " not coalesced"));
        }
        bool listed = false;
        if (ext_lengths_.Test(len)) {
          uint64_t steps = 0;
          for (uint32_t e = ext_heads_[len]; e != kNil && steps <= num_superpages_;
               e = meta_[e].next, ++steps) {
            if (e == i) listed = true;
          }
        }
        if (!listed) {
          return absl::InternalError(
              absl::StrCat("extent at superpage ", i, " missing from list ", len));
        }
        free_sp += len;
        ++extents;
        i += len;
        break;
      }
      case kSlab: {
        const int ci = m.cls;
        if (ci >= kNumClasses) {
          return absl::InternalError(absl::StrCat("slab ", i, ": bad class ", ci));
        }
        const uint64_t* w = bits_[i].w;
        const uint32_t objs = kTables.objects[ci];
        uint64_t count = 0;
        for (uint32_t wi = 0; wi < 8; ++wi) {
          const uint64_t free_word = w[kFreeWord[wi]];
          const uint64_t start_word = w[kStartWord[wi]];
          const uint64_t valid = ValidMask(objs, wi);
          count += __builtin_popcountll(free_word);
          if (((m.summary >> wi) & 1) != (free_word != 0)) {
            return absl::InternalError(absl::StrCat("slab ", i, ": summary bit ", wi, " wrong"));
          }
          if ((free_word & ~valid) != 0 || (start_word & ~valid) != ~valid ||
              (free_word & start_word) != 0) {
            return absl::InternalError(
                absl::StrCat("slab ", i, ": free/start maps inconsistent in word ", wi));
          }
        }
        if (count != m.free_objs || count >= objs) {
          return absl::InternalError(absl::StrCat("slab ", i, ": ", count, " free of ", objs,
                                                  ", counter says ", m.free_objs));
        }
        const int want_bucket = count == 0 ? kNoBucket : BucketOf(ci, count);
        if (m.bucket != want_bucket) {
          return absl::InternalError(absl::StrCat("slab ", i, ": bucket ", int{m.bucket},
                                                  ", expected ", want_bucket));
        }
        {
          uint32_t best = 0;
          for (uint32_t p = NextFreeObject(w, 0, objs); p < objs;) {
            const uint32_t q = NextUsedObject(w, p, objs);
            best = std::max(best, q - p);
            p = NextFreeObject(w, q, objs);
          }
          if (best != m.longest) {
            return absl::InternalError(absl::StrCat("slab ", i, ": recorded longest run ",
                                                    m.longest, ", actual ", best));
          }
          if (LongestRun(LoadFreeMap(w, objs), objs + 1) != best) {
            return absl::InternalError(
                absl::StrCat("slab ", i, ": word-parallel longest run disagrees"));
          }
        }
        // Every allocated object belongs to one run that starts with a start
        // bit and records its length at its last object.
        const uint64_t size = kClassPagesTable[ci];
        for (uint32_t obj = 0; obj < objs;) {
          if (IsFreeObject(w, obj)) {
            ++obj;
            continue;
          }
          if (((w[kStartWord[obj >> 6]] >> (obj & 63)) & 1) == 0) {
            return absl::InternalError(
                absl::StrCat("slab ", i, ": object ", obj, " allocated without a run start"));
          }
          const uint32_t run = 1 + ContinuationObjects(w, obj + 1);
          if (obj + run > objs) {
            return absl::InternalError(absl::StrCat("slab ", i, ": run at object ", obj,
                                                    " passes the last object"));
          }
          const uint64_t last_pages = GetLen(w, kTables.len_bits[ci], obj + run - 1) + 1;
          if (last_pages > size) {
            return absl::InternalError(absl::StrCat("slab ", i, ": run at object ", obj,
                                                    " records ", last_pages,
                                                    " pages in its last object"));
          }
          *live_pages += (run - 1) * size + last_pages;
          obj += run;
        }
        ++slabs;
        free_objs += count;
        ++i;
        break;
      }
      case kRunHead: {
        const uint64_t pages = m.u.run_pages;
        const uint64_t count =
            (pages >> kSuperPageOrder) + ((pages & (kSpPages - 1)) != 0 ? 1 : 0);
        if (pages == 0 || count > num_superpages_ - i) {
          return absl::InternalError(absl::StrCat("run at superpage ", i, ": bad length ", pages));
        }
        for (uint64_t j = i + 1; j + 1 < i + count; ++j) {
          if (meta_[j].state != kFree) {
            return absl::InternalError(absl::StrCat("run at superpage ", i, ": interior ", j,
                                                    " in state ", int{meta_[j].state}));
          }
        }
        if (count > 1 && meta_[i + count - 1].state != kRunTail) {
          return absl::InternalError(absl::StrCat("run at superpage ", i, ": no tail mark"));
        }
        *live_pages += pages;
        i += count;
        break;
      }
      case kCached:
        if (i != cached_sp_) {
          return absl::InternalError(absl::StrCat("superpage ", i, " cached, but the cache holds ",
                                                  cached_sp_));
        }
        ++i;
        break;
      default:
        return absl::InternalError(
            absl::StrCat("superpage ", i, ": unexpected state ", int{m.state}));
    }
  }
  if (cached_sp_ != kNil &&
      (cached_sp_ >= num_superpages_ || meta_[cached_sp_].state != kCached)) {
    return absl::InternalError(absl::StrCat("cached superpage ", cached_sp_, " not marked"));
  }
  if (free_sp != free_superpages_ || extents != num_extents_) {
    return absl::InternalError(absl::StrCat("pool holds ", free_sp, " superpages in ", extents,
                                            " extents; counters say ", free_superpages_,
                                            " in ", num_extents_));
  }
  if (slabs != slab_superpages_ || free_objs != free_objects_) {
    return absl::InternalError(absl::StrCat(slabs, " slabs with ", free_objs,
                                            " free objects; counters say ", slab_superpages_,
                                            " with ", free_objects_));
  }
  return absl::OkStatus();
}

absl::Status SlabBackend::CheckLists() const {
  if (absl::Status s = ext_lengths_.Check(); !s.ok()) return s;
  // Extent lists: each listed node is an extent start of that length.
  uint64_t listed = 0;
  for (uint64_t len = 0; len <= num_superpages_; ++len) {
    if (!ext_lengths_.Test(len)) continue;
    if (len == 0 || ext_heads_[len] == kNil) {
      return absl::InternalError(absl::StrCat("length ", len, " marked but list empty"));
    }
    uint32_t prev = kNil;
    for (uint32_t e = ext_heads_[len]; e != kNil; prev = e, e = meta_[e].next) {
      if (++listed > num_extents_) return absl::InternalError("extent lists too long or cyclic");
      if (meta_[e].state != kFree || meta_[e].u.ext.len != len || meta_[e].prev != prev) {
        return absl::InternalError(
            absl::StrCat("extent list ", len, ": bad node at superpage ", e));
      }
    }
  }
  if (listed != num_extents_) {
    return absl::InternalError(absl::StrCat(listed, " extents listed, ", num_extents_, " kept"));
  }
  // Slab lists: every partial slab sits in the list of its class and bucket.
  uint64_t partial = 0;
  for (uint64_t i = 0; i < num_superpages_; ++i) {
    if (meta_[i].state == kSlab && meta_[i].free_objs > 0) ++partial;
  }
  uint64_t in_lists = 0;
  uint32_t class_mask = 0;
  for (int ci = 0; ci < kNumClasses; ++ci) {
    uint8_t mask = 0;
    for (int bkt = 0; bkt < kBuckets; ++bkt) {
      uint32_t prev = kNil;
      for (uint32_t s = slab_heads_[ci][bkt]; s != kNil; prev = s, s = meta_[s].next) {
        if (++in_lists > partial) return absl::InternalError("slab lists too long or cyclic");
        const SuperpageMeta& m = meta_[s];
        if (m.state != kSlab || m.cls != ci || m.bucket != bkt || m.prev != prev ||
            m.free_objs == 0) {
          return absl::InternalError(absl::StrCat("slab list of class ", ci, " bucket ", bkt,
                                                  ": bad node at superpage ", s));
        }
        mask |= static_cast<uint8_t>(1u << bkt);
      }
    }
    if (mask != bucket_mask_[ci]) {
      return absl::InternalError(absl::StrCat("class ", ci, ": bucket mask mismatch"));
    }
    if (mask != 0) class_mask |= 1u << ci;
  }
  if (in_lists != partial || class_mask != class_mask_) {
    return absl::InternalError(absl::StrCat(partial, " partial slabs, ", in_lists,
                                            " listed; class mask mismatch: ",
                                            class_mask != class_mask_));
  }
  // Run-length index: every slab sits in the list of its class and longest
  // run, and the length sets say which lists of partial slabs are
  // non-empty.
  uint64_t slabs = 0;
  for (uint64_t i = 0; i < num_superpages_; ++i) slabs += meta_[i].state == kSlab ? 1 : 0;
  const RunLink* links = run_links_.get();
  uint64_t in_run_lists = 0;
  for (int ci = 0; ci < kNumClasses; ++ci) {
    const RunLengthSet& set = run_lengths_[ci];
    const uint32_t objs = kTables.objects[ci];
    uint32_t last = 0;
    for (uint32_t len = 0; len < 9 * 64; ++len) {
      const uint32_t list = len >= 1 && len <= objs ? RunList(ci, len) : kNil;
      const bool nonempty = list != kNil && links[list].next != list;
      if (set.Test(len) != nonempty) {
        return absl::InternalError(
            absl::StrCat("class ", ci, ": run length ", len, " marked wrongly"));
      }
      if (nonempty && len >= 2 && len < objs) {
        last = len;
        if (set.FindNext(len, objs) != len ||
            (len > 1 && set.FindNext(len - 1, objs) > len)) {
          return absl::InternalError(absl::StrCat("class ", ci, ": run-length search broken"));
        }
      }
      if (list == kNil) continue;
      uint32_t prev = list;
      for (uint32_t s = links[list].next; s != list; prev = s, s = links[s].next) {
        if (++in_run_lists > slabs || s >= num_superpages_) {
          return absl::InternalError("run-length lists too long, cyclic or broken");
        }
        const SuperpageMeta& m = meta_[s];
        if (m.state != kSlab || m.cls != ci || RunKey(m.longest) != len ||
            links[s].prev != prev) {
          return absl::InternalError(absl::StrCat("run-length list of class ", ci, " length ",
                                                  len, ": bad node at superpage ", s));
        }
      }
      if (links[list].prev != prev) {
        return absl::InternalError(absl::StrCat("run-length list of class ", ci, " length ",
                                                len, ": bad back link"));
      }
    }
    if (set.FindLast(objs) != last) {
      return absl::InternalError(absl::StrCat("class ", ci, ": largest run length wrong"));
    }
  }
  if (in_run_lists != slabs) {
    return absl::InternalError(
        absl::StrCat(slabs, " slabs, ", in_run_lists, " in run-length lists"));
  }
  return absl::OkStatus();
}

absl::Status SlabBackend::CheckHot() const {
  if (hot_.kind == kHotNone) {
    if (hot_.parked) return absl::InternalError("parked hot run without a kind");
    return absl::OkStatus();
  }
  const uint64_t f = hot_.frame;
  if (f < sp_frames_begin_ || f >= sp_frames_end_ || hot_.pages == 0) {
    return absl::InternalError("hot run outside the superpages");
  }
  const uint32_t sp = static_cast<uint32_t>((f >> kSuperPageOrder) - sp_base_);
  const SuperpageMeta& m = meta_[sp];
  if (sp != hot_.sp) return absl::InternalError("hot run: wrong superpage");
  if (hot_.kind == kHotRun) {
    const uint64_t count =
        (hot_.pages >> kSuperPageOrder) + ((hot_.pages & (kSpPages - 1)) != 0 ? 1 : 0);
    if (m.state != kRunHead || m.u.run_pages != hot_.pages || count != hot_.extra ||
        (f & (kSpPages - 1)) != 0 || cached_sp_ != kNil) {
      return absl::InternalError("hot superpage run is not a live run, or the cache is full");
    }
    return absl::OkStatus();
  }
  // A single live object of a slab, recorded with its length.
  if (m.state != kSlab) return absl::InternalError("hot object: not in a slab");
  const int ci = m.cls;
  const uint64_t size = kClassPagesTable[ci];
  const uint64_t offset = f & (kSpPages - 1);
  const uint32_t obj = hot_.extra;
  const uint64_t* w = bits_[sp].w;
  if (offset != obj * size || obj >= kTables.objects[ci] || IsFreeObject(w, obj) ||
      ((w[kStartWord[obj >> 6]] >> (obj & 63)) & 1) == 0 ||
      ContinuationObjects(w, obj + 1) != 0 ||
      GetLen(w, kTables.len_bits[ci], obj) + 1 != hot_.pages) {
    return absl::InternalError("hot object is not a live single-object run");
  }
  if (hot_.kind == kHotObject) {
    if (m.free_objs == 0 || BucketOf(ci, m.free_objs + 1) != m.bucket) {
      return absl::InternalError("hot object: freeing it would move its slab");
    }
  } else if (m.free_objs + 1 != kTables.objects[ci] || obj != 0 || cached_sp_ != kNil ||
             slab_heads_[ci][m.bucket] != sp || m.next != kNil ||
             bucket_mask_[ci] != (1u << m.bucket)) {
    return absl::InternalError("hot fresh slab: not the only, freshly carved slab");
  }
  return absl::OkStatus();
}

absl::Status SlabBackend::CheckInvariants() const {
  uint64_t live = 0;
  if (absl::Status s = CheckSuperpages(&live); !s.ok()) return s;
  if (absl::Status s = CheckLists(); !s.ok()) return s;
  if (absl::Status s = CheckHot(); !s.ok()) return s;
  for (const EdgeSegment& e : edges_) {
    if (absl::Status s = e.Check(&live); !s.ok()) return s;
  }
  const uint64_t edge_total = uint64_t{edges_[0].size()} + edges_[1].size();
  if (edge_total + uint64_t{num_superpages_} * kSpPages != range_.pages.value()) {
    return absl::InternalError("edges and superpages do not cover the range");
  }
  if (live + free_pages_ != range_.pages.value()) {
    return absl::InternalError(absl::StrCat("live runs hold ", live, " pages, free_pages is ",
                                            free_pages_, ", total ", range_.pages.value()));
  }
  return absl::OkStatus();
}

}  // namespace l4re_ma
