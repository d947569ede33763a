#include "backends/bitmap/bitmap_backend.h"

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <cstring>

#if defined(__SSE2__)
#include <emmintrin.h>
#endif

#include "absl/base/attributes.h"
#include "absl/strings/str_cat.h"

namespace l4re_ma {
namespace bitmap_internal {
namespace {

constexpr uint64_t kAllOnes = ~uint64_t{0};

inline unsigned Ctz(uint64_t x) { return static_cast<unsigned>(__builtin_ctzll(x)); }
inline unsigned Clz(uint64_t x) { return static_cast<unsigned>(__builtin_clzll(x)); }
inline unsigned Popcount(uint64_t x) { return static_cast<unsigned>(__builtin_popcountll(x)); }

// Broken internal invariants abort with a message; user mistakes never do.
inline void Check(bool ok, const char* what) {
  if (__builtin_expect(!ok, 0)) {
    std::fprintf(stderr, "BitmapBackend: internal invariant broken: %s\n", what);
    std::abort();
  }
}

}  // namespace

// ---------------------------------------------------------------------------
// BitHierarchy

BitHierarchy::BitHierarchy(uint64_t n) : n_(n) {
  uint64_t words = n == 0 ? 1 : (n + 63) / 64;
  uint64_t total = 0;
  for (;;) {
    offset_.push_back(total);
    total += words;
    if (words == 1) break;
    words = (words + 63) / 64;
  }
  offset_.push_back(total);
  offset_.shrink_to_fit();
  words_.assign(total, 0);
}

void BitHierarchy::Set(uint64_t i) {
  const size_t levels = offset_.size() - 1;
  for (size_t l = 0; l < levels; ++l) {
    uint64_t& w = words_[offset_[l] + (i >> 6)];
    const bool was_empty = w == 0;
    w |= uint64_t{1} << (i & 63);
    if (!was_empty) return;
    i >>= 6;
  }
}

void BitHierarchy::Clear(uint64_t i) {
  const size_t levels = offset_.size() - 1;
  for (size_t l = 0; l < levels; ++l) {
    uint64_t& w = words_[offset_[l] + (i >> 6)];
    w &= ~(uint64_t{1} << (i & 63));
    if (w != 0) return;
    i >>= 6;
  }
}

uint64_t BitHierarchy::FindFirstSet(uint64_t from) const {
  if (from >= n_) return kNone;
  const size_t levels = offset_.size() - 1;
  uint64_t idx = from;
  size_t l = 0;
  // Climb until a word holds a set bit at or after idx.
  for (;;) {
    const uint64_t w = idx >> 6;
    if (w >= offset_[l + 1] - offset_[l]) return kNone;
    const uint64_t bits = words_[offset_[l] + w] & (kAllOnes << (idx & 63));
    if (bits != 0) {
      idx = (w << 6) + Ctz(bits);
      break;
    }
    if (l + 1 == levels) return kNone;
    ++l;
    idx = w + 1;
  }
  // Descend along first set bits: a summary bit guarantees a non-empty word.
  while (l > 0) {
    --l;
    idx = (idx << 6) + Ctz(words_[offset_[l] + idx]);
  }
  return idx;
}

uint64_t BitHierarchy::FindLastSet(uint64_t before) const {
  if (before == 0) return kNone;
  const size_t levels = offset_.size() - 1;
  uint64_t idx = std::min(before, n_) - 1;  // inclusive bound
  size_t l = 0;
  // Climb until a word holds a set bit at or before idx.
  for (;;) {
    const uint64_t w = idx >> 6;
    const uint64_t bits = words_[offset_[l] + w] & (kAllOnes >> (63 - (idx & 63)));
    if (bits != 0) {
      idx = (w << 6) + 63 - Clz(bits);
      break;
    }
    if (w == 0 || l + 1 == levels) return kNone;
    ++l;
    idx = w - 1;
  }
  // Descend along last set bits.
  while (l > 0) {
    --l;
    idx = (idx << 6) + 63 - Clz(words_[offset_[l] + idx]);
  }
  return idx;
}

absl::Status BitHierarchy::Verify(absl::string_view what) const {
  const size_t levels = offset_.size() - 1;
  const uint64_t bottom = offset_[1] - offset_[0];
  for (uint64_t w = 0; w < bottom; ++w) {
    const uint64_t first = w * 64;
    if (first + 64 > n_) {
      const uint64_t valid = first >= n_ ? 0 : kAllOnes >> (64 - (n_ - first));
      if (words_[w] & ~valid) {
        return absl::InternalError(absl::StrCat(what, ": bit set beyond the end in word ", w));
      }
    }
  }
  for (size_t l = 1; l < levels; ++l) {
    const uint64_t below = offset_[l] - offset_[l - 1];
    for (uint64_t w = 0; w < offset_[l + 1] - offset_[l]; ++w) {
      uint64_t expect = 0;
      for (uint64_t b = 0; b < 64 && w * 64 + b < below; ++b) {
        if (words_[offset_[l - 1] + w * 64 + b] != 0) expect |= uint64_t{1} << b;
      }
      if (words_[offset_[l] + w] != expect) {
        return absl::InternalError(
            absl::StrCat(what, ": summary level ", l, " word ", w, " is stale"));
      }
    }
  }
  return absl::OkStatus();
}

// ---------------------------------------------------------------------------
// ByteMaxTree

namespace {

static_assert(__BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__,
              "ByteMaxTree reads lane j of a node from byte j");

constexpr uint64_t kLanes = 0x0101010101010101;  // 1 in every byte
constexpr uint64_t kHigh = 0x8080808080808080;   // the top bit of every byte

// Top bit of lane j set iff lane j of x >= v. REQUIRES: lanes of x <= 127,
// v <= 128 (no lane borrows from its neighbour).
inline uint64_t LanesAtLeast(uint64_t x, uint64_t v) { return ((x | kHigh) - v * kLanes) & kHigh; }

// Lane-wise maximum. REQUIRES: lanes <= 127.
inline uint64_t LaneMax(uint64_t a, uint64_t b) {
  const uint64_t a_ge = (((a | kHigh) - b) & kHigh) >> 7;
  const uint64_t mask = a_ge * 0xFF;
  return (a & mask) | (b & ~mask);
}

// The largest lane of x. REQUIRES: lanes <= 127.
inline unsigned HorizontalMax(uint64_t x) {
  x = LaneMax(x, x >> 32);
  x = LaneMax(x, x >> 16);
  x = LaneMax(x, x >> 8);
  return static_cast<unsigned>(x & 0xFF);
}

}  // namespace

// Node operations: bit e set iff entry e of a 64-byte node is >= v; the
// largest entry of a node once entry `lane` is `v`. The node is read before
// that entry is stored (a wide load right after a narrow store into it would
// stall on store forwarding), so the entry is patched in registers. With
// SSE2 (every x86-64) a node is four vector compares or maxima; elsewhere
// the same in SWAR arithmetic on eight words. REQUIRES: entries <= 127,
// v <= 127.
#if defined(__SSE2__)

inline uint64_t NodeAtLeast(const uint8_t* node, unsigned v) {
  // Entries and v - 1 fit in a signed byte: x >= v iff x > v - 1.
  const __m128i t = _mm_set1_epi8(static_cast<char>(static_cast<int>(v) - 1));
  const __m128i* p = reinterpret_cast<const __m128i*>(node);
  auto bits = [&](int k) -> uint64_t {
    return static_cast<uint32_t>(_mm_movemask_epi8(_mm_cmpgt_epi8(_mm_loadu_si128(p + k), t)));
  };
  return bits(0) | (bits(1) << 16) | (bits(2) << 32) | (bits(3) << 48);
}

inline unsigned NodeMaxWith(const uint8_t* node, unsigned lane, unsigned v) {
  const __m128i iota = _mm_setr_epi8(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15);
  const __m128i at = _mm_set1_epi8(static_cast<char>(lane));
  const __m128i value = _mm_set1_epi8(static_cast<char>(v));
  const __m128i* p = reinterpret_cast<const __m128i*>(node);
  // Quarter k with entry `lane` replaced by v (spelled out: not unrolled at -O2).
  auto quarter = [&](int k) {
    const __m128i index = _mm_add_epi8(iota, _mm_set1_epi8(static_cast<char>(16 * k)));
    const __m128i hit = _mm_cmpeq_epi8(index, at);
    const __m128i x = _mm_loadu_si128(p + k);
    return _mm_or_si128(_mm_andnot_si128(hit, x), _mm_and_si128(hit, value));
  };
  __m128i m =
      _mm_max_epu8(_mm_max_epu8(quarter(0), quarter(1)), _mm_max_epu8(quarter(2), quarter(3)));
  m = _mm_max_epu8(m, _mm_srli_si128(m, 8));
  m = _mm_max_epu8(m, _mm_srli_si128(m, 4));
  m = _mm_max_epu8(m, _mm_srli_si128(m, 2));
  m = _mm_max_epu8(m, _mm_srli_si128(m, 1));
  return static_cast<unsigned>(_mm_cvtsi128_si32(m)) & 0xFF;
}

#else  // !__SSE2__

inline uint64_t NodeAtLeast(const uint8_t* node, unsigned v) {
  // A multiplication gathers the eight comparison bits of a word (bits
  // 8j + 7) into bits 56 + j without carries.
  uint64_t mask = 0;
  for (unsigned k = 0; k < 8; ++k) {
    uint64_t x;
    std::memcpy(&x, node + 8 * k, sizeof(x));
    mask |= ((LanesAtLeast(x, v) * 0x0002040810204081) >> 56) << (8 * k);
  }
  return mask;
}

inline unsigned NodeMaxWith(const uint8_t* node, unsigned lane, unsigned v) {
  uint64_t x[8];
  std::memcpy(x, node, sizeof(x));
  const unsigned shift = 8 * (lane & 7);
  x[lane >> 3] = (x[lane >> 3] & ~(uint64_t{0xFF} << shift)) | (uint64_t{v} << shift);
  const uint64_t m = LaneMax(LaneMax(LaneMax(x[0], x[1]), LaneMax(x[2], x[3])),
                             LaneMax(LaneMax(x[4], x[5]), LaneMax(x[6], x[7])));
  return HorizontalMax(m);
}

#endif  // __SSE2__

ByteMaxTree::ByteMaxTree(uint64_t n) : n_(n) {
  Check(n >= 1, "ByteMaxTree needs a value");
  uint64_t count = n;
  uint64_t total = 0;  // bytes
  uint64_t offset[kMaxLevels];
  for (levels_ = 0;; ++levels_) {
    Check(levels_ < kMaxLevels, "ByteMaxTree too deep");
    offset[levels_] = total;
    count_[levels_] = count;
    total += (count + kFanout - 1) / kFanout * kFanout;
    if (count <= kFanout) break;
    count = (count + kFanout - 1) / kFanout;
  }
  ++levels_;
  storage_.assign(total / sizeof(uint64_t), 0);
  uint8_t* base = reinterpret_cast<uint8_t*>(storage_.data());
  values_ = base;
  for (unsigned l = 0; l < levels_; ++l) level_[l] = base + offset[l];
}

void ByteMaxTree::RaiseFrom(uint64_t i, unsigned v) {
  values_[i] = static_cast<uint8_t>(v);
  for (unsigned level = 1; level < levels_; ++level) {
    i /= kFanout;
    uint8_t& slot = level_[level][i];
    if (slot >= v) return;
    slot = static_cast<uint8_t>(v);
  }
}

void ByteMaxTree::Resummarize(uint64_t lo, uint64_t hi) {
  for (unsigned level = 1; level < levels_; ++level) {
    lo /= kFanout;
    hi /= kFanout;
    bool changed = false;
    for (uint64_t i = lo; i <= hi; ++i) {
      const uint8_t* node = Node(level - 1, i);
      const unsigned now = NodeMaxWith(node, 0, node[0]);
      if (now != level_[level][i]) {
        level_[level][i] = static_cast<uint8_t>(now);
        changed = true;
      }
    }
    if (!changed) return;
  }
}

inline unsigned ByteMaxTree::SiblingMax(uint64_t i) const {
  return NodeMaxWith(Node(0, i / kFanout), static_cast<unsigned>(i % kFanout), 0);
}

void ByteMaxTree::LowerFrom(unsigned level, uint64_t i, unsigned old, unsigned v) {
  for (;; ++level) {
    uint8_t* entry = &level_[level][i];
    if (level + 1 == levels_) {
      *entry = static_cast<uint8_t>(v);
      return;
    }
    const uint64_t parent = i / kFanout;
    uint8_t& slot = level_[level + 1][parent];
    const unsigned summary = slot;
    // The summary holds old or more: it changes only if old was the maximum.
    if (summary > old) {
      *entry = static_cast<uint8_t>(v);
      return;
    }
    const unsigned now = NodeMaxWith(Node(level, parent), static_cast<unsigned>(i % kFanout), v);
    *entry = static_cast<uint8_t>(v);
    if (now == summary) return;
    i = parent;
    old = summary;
    v = now;
  }
}

inline uint64_t ByteMaxTree::FindFirstAtLeast(unsigned v) const {
  uint64_t i = 0;
  for (unsigned level = levels_; level-- > 0;) {
    const uint64_t ge = NodeAtLeast(Node(level, i), v);
    if (ge == 0) return kNone;  // only at the top: a summary promises a value
    i = kFanout * i + Ctz(ge);
  }
  return i;
}

uint64_t ByteMaxTree::FindFirstAtLeastFrom(uint64_t from, unsigned v) const {
  if (from >= n_) return kNone;
  uint64_t idx = from;
  unsigned level = 0;
  // Climb until a node holds a large enough value at or after idx.
  for (;;) {
    const uint64_t node = idx / kFanout;
    const uint64_t ge = NodeAtLeast(Node(level, node), v) & (kAllOnes << (idx % kFanout));
    if (ge != 0) {
      idx = kFanout * node + Ctz(ge);
      break;
    }
    if (level + 1 == levels_) return kNone;
    ++level;
    idx = node + 1;
    if (idx >= count_[level]) return kNone;
  }
  while (level > 0) {
    --level;
    idx = kFanout * idx + Ctz(NodeAtLeast(Node(level, idx), v));
  }
  return idx;
}

absl::Status ByteMaxTree::Verify(absl::string_view what) const {
  for (unsigned level = 0; level < levels_; ++level) {
    const uint64_t padded = (count_[level] + kFanout - 1) / kFanout * kFanout;
    for (uint64_t i = 0; i < padded; ++i) {
      const unsigned v = level_[level][i];
      if (i >= count_[level]) {
        if (v != 0) return absl::InternalError(absl::StrCat(what, ": padding value set"));
        continue;
      }
      if (v > 127) return absl::InternalError(absl::StrCat(what, ": value over 127"));
      if (level == 0) continue;
      unsigned expect = 0;
      for (uint64_t c = kFanout * i; c < kFanout * (i + 1); ++c) {
        expect = std::max<unsigned>(expect, level_[level - 1][c]);
      }
      if (v != expect) {
        return absl::InternalError(
            absl::StrCat(what, ": summary (", level, ",", i, ") is ", v, ", not ", expect));
      }
      if (NodeMaxWith(Node(level - 1, i), 0, level_[level - 1][kFanout * i]) != expect) {
        return absl::InternalError(absl::StrCat(what, ": NodeMax disagrees at (", level, ",", i, ")"));
      }
    }
  }
  return absl::OkStatus();
}

// ---------------------------------------------------------------------------
// RunTree

void RunTree::PropagateRange(uint64_t lo, uint64_t hi) {
  for (unsigned level = 1; level < levels(); ++level) {
    lo >>= 1;
    hi >>= 1;
    if (lo == hi) {
      // One node left per level: stop where nothing changes.
      for (; level < levels(); ++level, lo >>= 1) {
        const RunSummary s = Combine(level, lo);
        if (s == Get(level, lo)) return;
        Set(level, lo, s);
      }
      return;
    }
    for (uint64_t i = lo; i <= hi; ++i) Set(level, i, Combine(level, i));
  }
}

RunTree::RunTree(uint64_t blocks, uint64_t block_bits)
    : blocks_(blocks), block_bits_(block_bits) {
  Check(blocks >= 1 && block_bits <= 0xFFFF, "RunTree needs a block and 16-bit leaves");
  uint64_t count = blocks;
  uint64_t size16 = 0, size32 = 0, size64 = 0, dirty_words = 0;
  first32_ = first64_ = ~0u;
  for (unsigned level = 0;; ++level) {
    // The largest value a node of this level can hold is its length.
    const uint64_t span = level < 63 && (uint64_t{1} << level) < blocks ? uint64_t{1} << level
                                                                        : blocks;
    const uint64_t max_value = span * block_bits;
    if (max_value > 0xFFFF && first32_ == ~0u) first32_ = level;
    if (max_value > 0xFFFFFFFFu && first64_ == ~0u) first64_ = level;
    uint64_t& size = level < first32_ ? size16 : level < first64_ ? size32 : size64;
    count_.push_back(count);
    last_length_.push_back((blocks - ((count - 1) << level)) * block_bits);
    offset_.push_back(size);
    size += 3 * count;
    dirty_offset_.push_back(dirty_words);
    dirty_words += (count + 63) / 64;
    if (count == 1) break;
    count = (count + 1) / 2;
  }
  if (first32_ == ~0u) first32_ = levels();
  if (first64_ == ~0u) first64_ = levels();
  count_.shrink_to_fit();
  last_length_.shrink_to_fit();
  offset_.shrink_to_fit();
  dirty_offset_.shrink_to_fit();
  narrow16_.assign(size16, 0);
  narrow32_.assign(size32, 0);
  wide_.assign(size64, 0);
  dirty_.assign(dirty_words, 0);
}

}  // namespace bitmap_internal

// ---------------------------------------------------------------------------
// BitmapBackend

using bitmap_internal::Check;
using bitmap_internal::kAllOnes;
using bitmap_internal::kNone;
using bitmap_internal::RunSummary;
using bitmap_internal::Runs;

namespace {

using bitmap_internal::Clz;
using bitmap_internal::Ctz;
using bitmap_internal::Popcount;

// Bit i of the result is set iff bits i .. i+len-1 of x are all set
// (windows inside the word only): two windows of the largest power of two
// <= len cover one of len. Branch-free. REQUIRES: 1 <= len <= 64.
ABSL_ATTRIBUTE_ALWAYS_INLINE inline uint64_t WindowStartsOf(const Runs& r, uint64_t len) {
  const unsigned k = 63 - Clz(len);
  const uint64_t a = r.a[k];
  return a & (a >> (len - (uint64_t{1} << k)));
}

inline uint64_t WindowStarts(uint64_t x, uint64_t len) { return WindowStartsOf(Runs(x), len); }

// The length of the longest run of set bits of x (0 .. 64), from Runs(x): a
// binary search on the answer over the power-of-two run masks, branch-free.
ABSL_ATTRIBUTE_ALWAYS_INLINE inline unsigned LongestRunOf(const Runs& r) {
  // `cur` holds the starts of runs of `len` set bits.
  unsigned len = 0;
  uint64_t cur = kAllOnes;
  auto step = [&](unsigned k) {  // len + 2^k?
    const uint64_t c = cur & (r.a[k] >> len);
    const uint64_t keep = uint64_t{0} - static_cast<uint64_t>(c != 0);
    cur = (c & keep) | (cur & ~keep);
    len += static_cast<unsigned>(keep) & (1u << k);
  };
  step(5);
  step(4);
  step(3);
  step(2);
  step(1);
  step(0);
  // The search tops out at 63: a full word is a[6].
  return r.a[6] != 0 ? 64 : len;
}

ABSL_ATTRIBUTE_ALWAYS_INLINE inline unsigned LongestRun(uint64_t x) {
  return LongestRunOf(Runs(x));
}

// Set bits at the bottom / top of x (0 .. 64).
inline unsigned Prefix(uint64_t x) { return x == kAllOnes ? 64 : Ctz(~x); }
inline unsigned Suffix(uint64_t x) { return x == kAllOnes ? 64 : Clz(~x); }
// Prefix(x), but 63 for all ones: enough wherever it is added to a run of at
// least one bit and capped at 64. Branch-free.
inline unsigned PrefixUpTo63(uint64_t x) { return Ctz(~x | (uint64_t{1} << 63)); }

// A run of at most 64 bits starting at bit `off` (< 64) of word w, as masks
// of words w and w + 1 (hi is 0 unless the run crosses into w + 1).
struct Span {
  uint64_t lo;
  uint64_t hi;
  unsigned end;  // off + n: the bit after the run, relative to word w (<= 127)
};
ABSL_ATTRIBUTE_ALWAYS_INLINE inline Span MakeSpan(unsigned off, uint64_t n) {
  const unsigned end = off + static_cast<unsigned>(n);
  const unsigned end0 = end < 64 ? end : 64;
  const unsigned end1 = end > 64 ? end - 64 : 0;
  return Span{(kAllOnes << off) & (kAllOnes >> (64 - end0)), (uint64_t{1} << end1) - 1, end};
}
// Bit b (< 128) of the word pair (lo, hi).
ABSL_ATTRIBUTE_ALWAYS_INLINE inline bool PairBit(uint64_t lo, uint64_t hi, unsigned b) {
  return (((b < 64 ? lo : hi) >> (b & 63)) & 1) != 0;
}
// Bit off - 1 of the pair (prev, x), i.e. the bit before bit `off` of x.
ABSL_ATTRIBUTE_ALWAYS_INLINE inline bool BitBefore(uint64_t prev, uint64_t x, unsigned off) {
  return ((((x << 1) | (prev >> 63)) >> off) & 1) != 0;
}
// Set bits of the pair (lo, hi) from bit b (< 128) on, up to the pair's end.
ABSL_ATTRIBUTE_ALWAYS_INLINE inline unsigned PairRunFrom(uint64_t lo, uint64_t hi, unsigned b) {
  const unsigned shift = b & 63;
  const unsigned in_lo = Prefix(lo >> shift);  // <= 64 - shift
  const unsigned from_lo = in_lo < 64 - shift ? in_lo : 64 - shift + Prefix(hi);
  return b < 64 ? from_lo : Prefix(hi >> shift);
}

// The key of a word x followed by `next` (see BitmapBackend): the longest
// free stretch that starts in x, followed into next, capped at 64.
ABSL_ATTRIBUTE_ALWAYS_INLINE inline unsigned KeyOfRuns(const Runs& r, uint64_t x,
                                                      uint64_t next) {
  // Branch-free. REQUIRES: x is not all ones.
  const unsigned suf = Clz(~x | 1);  // 0 unless bit 63 is free
  const unsigned straddle = (suf + PrefixUpTo63(next)) & (0u - (suf != 0));
  const unsigned key = std::max(LongestRunOf(r), straddle);
  return key < 64 ? key : 64;
}

ABSL_ATTRIBUTE_ALWAYS_INLINE inline unsigned KeyOfBits(uint64_t x, uint64_t next) {
  if (x == kAllOnes) return 64;
  return KeyOfRuns(Runs(x), x, next);
}

// The lowest start in word x (followed by `next`) of `len` free bits, or 64.
// REQUIRES: 1 <= len <= 64.
ABSL_ATTRIBUTE_ALWAYS_INLINE inline unsigned WindowOffsetOf(const Runs& r, uint64_t x,
                                                           uint64_t next, uint64_t len) {
  // Branch-free: which case applies depends on the data.
  const uint64_t starts = WindowStartsOf(r, len);
  const unsigned inner = Ctz(starts | (uint64_t{1} << 63)) + (starts == 0);  // 64: none
  // The suffix run of x, if any, on into next (x all ones: inner is 0).
  const unsigned suf = Clz(~x | 1);
  const bool straddle = (suf != 0) & (suf + PrefixUpTo63(next) >= len);
  const unsigned cross = straddle ? 64 - suf : 64;
  return inner < cross ? inner : cross;
}

inline unsigned WindowOffset(uint64_t x, uint64_t next, uint64_t len) {
  return WindowOffsetOf(Runs(x), x, next, len);
}

// Bits [lo, hi) within their word. REQUIRES: lo < hi, both in one word.
inline uint64_t RunMask(uint64_t lo, uint64_t hi) {
  return (kAllOnes >> (64 - (hi - lo))) << (lo & 63);
}

// Bits [lo, hi) of word w, for the words a bit range [lo, hi) touches.
inline uint64_t WordMask(uint64_t w, uint64_t lo, uint64_t hi) {
  uint64_t mask = kAllOnes;
  if (w == lo >> 6) mask &= kAllOnes << (lo & 63);
  if (w == (hi - 1) >> 6) mask &= kAllOnes >> (63 - ((hi - 1) & 63));
  return mask;
}

}  // namespace

BitmapBackend::BitmapBackend(PageRun range) : range_(range) {
  const uint64_t first = range.first.value();
  const uint64_t n = range.pages.value();
  Check(first + n >= first && first + n <= (uint64_t{1} << 63),
        "BitmapBackend range overflows (REQUIRES: range.end() <= 2^63)");
  base_ = first & ~(kBlockBits - 1);
  first_bit_ = first - base_;
  end_bit_ = first_bit_ + n;
  blocks_ = std::max<uint64_t>(1, (end_bit_ + kBlockBits - 1) / kBlockBits);
  words_ = blocks_ * kWordsPerBlock;
  total_bits_ = blocks_ * kBlockBits;

  // One padding word in front and two behind, all allocated, so that the
  // small-run paths read a word's neighbours without bounds checks.
  free_store_.assign(words_ + 3, 0);
  starts_store_.assign(words_ + 3, 0);
  free_ = free_store_.data() + 1;
  starts_ = starts_store_.data() + 1;
  // The sentinel: a run start right after the range (an allocated padding
  // bit), so that "the frame after a run is free or starts a run" needs no
  // end-of-range test.
  starts_[end_bit_ >> 6] |= uint64_t{1} << (end_bit_ & 63);
  has_used_ = bitmap_internal::BitHierarchy(words_);
  keys_ = bitmap_internal::ByteMaxTree(words_);
  tree_ = bitmap_internal::RunTree(blocks_, kBlockBits);

  for (uint64_t w = 0; w < words_; ++w) {
    const uint64_t lo = std::max(first_bit_, w * 64);
    const uint64_t hi = std::min(end_bit_, w * 64 + 64);
    const uint64_t value = lo < hi ? WordMask(w, lo, hi) : 0;
    free_[w] = value;
    if (value != kAllOnes) has_used_.Set(w);
  }
  for (uint64_t w = 0; w < words_; ++w) keys_.Set(w, KeyOf(w));
  for (uint64_t b = 0; b < blocks_; ++b) {
    tree_.Set(0, b, ComputeBlock(b));
    if (BlockFull(b)) ++free_superpages_;
  }
  for (unsigned level = 1; level < tree_.levels(); ++level) {
    for (uint64_t i = 0; i < tree_.count(level); ++i) tree_.Set(level, i, tree_.Combine(level, i));
  }
  free_pages_ = n;
  free_runs_ = n > 0 ? 1 : 0;
}

bool BitmapBackend::BlockFull(uint64_t block) const {
  // The eight "has an allocated bit" flags of the block's words are one byte.
  return ((has_used_.Word(block >> 3) >> ((block & 7) * 8)) & 0xFF) == 0;
}

uint64_t BitmapBackend::NextFree(uint64_t bit) const {
  if (bit >= total_bits_) return kNone;
  uint64_t w = bit >> 6;
  const uint64_t x = free_[w] & (kAllOnes << (bit & 63));
  if (x != 0) return (w << 6) + Ctz(x);
  w = keys_.FindFirstAtLeastFrom(w + 1, 1);
  if (w == kNone) return kNone;
  return (w << 6) + Ctz(free_[w]);
}

uint64_t BitmapBackend::NextUsed(uint64_t bit) const {
  if (bit >= total_bits_) return total_bits_;
  uint64_t w = bit >> 6;
  const uint64_t x = ~free_[w] & (kAllOnes << (bit & 63));
  if (x != 0) return (w << 6) + Ctz(x);
  w = has_used_.FindFirstSet(w + 1);
  if (w == kNone) return total_bits_;
  return (w << 6) + Ctz(~free_[w]);
}

uint64_t BitmapBackend::PrevUsed(uint64_t bit) const {
  if (bit == 0) return kNone;
  uint64_t w = (bit - 1) >> 6;
  const uint64_t x = ~free_[w] & (kAllOnes >> (63 - ((bit - 1) & 63)));
  if (x != 0) return (w << 6) + 63 - Clz(x);
  w = has_used_.FindLastSet(w);
  if (w == kNone) return kNone;
  return (w << 6) + 63 - Clz(~free_[w]);
}

uint64_t BitmapBackend::AlignUp(uint64_t bit, unsigned order) const {
  const uint64_t f = base_ + bit;
  if (order >= 64) return f == 0 && bit < end_bit_ ? bit : kNone;
  const uint64_t mask = (uint64_t{1} << order) - 1;
  if (f > kAllOnes - mask) return kNone;
  const uint64_t aligned = ((f + mask) & ~mask) - base_;
  return aligned < end_bit_ ? aligned : kNone;
}

inline uint64_t BitmapBackend::PrefixOf(uint64_t w) const { return Prefix(free_[w]); }

inline unsigned BitmapBackend::KeyOf(uint64_t w) const { return KeyOfBits(free_[w], free_[w + 1]); }

inline uint64_t BitmapBackend::WindowInWord(uint64_t w, uint64_t pages) const {
  const unsigned at = WindowOffset(free_[w], free_[w + 1], pages);
  Check(at < 64, "a word's key promised a window it lacks");
  return (w << 6) + at;
}

RunSummary BitmapBackend::ComputeBlock(uint64_t block) const {
  const uint64_t* w = &free_[block * kWordsPerBlock];
  RunSummary s;
  unsigned j = 0;
  for (; j < kWordsPerBlock && w[j] == kAllOnes; ++j) s.pre += 64;
  if (j == kWordsPerBlock) return RunSummary{kBlockBits, kBlockBits, kBlockBits};
  s.pre += Ctz(~w[j]);
  for (j = kWordsPerBlock; j-- > 0 && w[j] == kAllOnes;) s.suf += 64;
  s.suf += Clz(~w[j]);
  uint64_t run = 0;  // the free run reaching the current word
  for (j = 0; j < kWordsPerBlock; ++j) {
    const uint64_t x = w[j];
    if (x == kAllOnes) {
      run += 64;
      continue;
    }
    s.best = std::max<uint64_t>(s.best, run + Ctz(~x));
    if (x != 0) s.best = std::max<uint64_t>(s.best, LongestRun(x));
    run = Clz(~x);
  }
  return RunSummary{s.pre, s.suf, std::max(s.best, run)};
}

void BitmapBackend::FlushTree() const {
  if (tree_.AnyDirty()) FlushNode(tree_.top(), 0);
}

void BitmapBackend::FlushNode(unsigned level, uint64_t i) const {
  if (level == 0) {
    tree_.Set(0, i, ComputeBlock(i));
  } else {
    for (uint64_t c = 2 * i; c <= 2 * i + 1 && c < tree_.count(level - 1); ++c) {
      if (tree_.Dirty(level - 1, c)) FlushNode(level - 1, c);
    }
    tree_.Set(level, i, tree_.Combine(level, i));
  }
  tree_.ClearDirty(level, i);
}

BitmapBackend::ScanResult BitmapBackend::ScanBlock(uint64_t block, uint64_t from,
                                                   uint64_t carry, uint64_t pages) const {
  uint64_t w = from >> 6;
  const uint64_t wend = (block + 1) * kWordsPerBlock;
  uint64_t x = free_[w] & (kAllOnes << (from & 63));
  uint64_t run = carry;  // free bits ending just before word w
  for (;;) {
    const uint64_t word_bit = w << 6;
    if (x == kAllOnes) {
      run += 64;
      if (run >= pages) return ScanResult{true, word_bit + 64 - run, 0};
    } else if (x == 0) {
      run = 0;
    } else {
      if (run + Ctz(~x) >= pages) return ScanResult{true, word_bit - run, 0};
      // A key bounds the runs inside its word from above.
      if (pages < 64 && keys_.Get(w) >= pages) {
        const uint64_t starts = WindowStarts(x, pages);
        if (starts != 0) return ScanResult{true, word_bit + Ctz(starts), 0};
      }
      run = Clz(~x);
    }
    if (++w == wend) return ScanResult{false, 0, run};
    x = free_[w];
  }
}

uint64_t BitmapBackend::ScanBlockAligned(uint64_t from, uint64_t pages, unsigned order,
                                         uint64_t* resume) const {
  // Bit 0 of a word is an absolute multiple of 64 (base_ is 512-aligned), so
  // the aligned positions inside a word form a fixed pattern for order <= 6.
  static constexpr uint64_t kPattern[7] = {
      kAllOnes,           0x5555555555555555, 0x1111111111111111, 0x0101010101010101,
      0x0001000100010001, 0x0000000100000001, 0x0000000000000001};
  const uint64_t block = from / kBlockBits;
  const uint64_t wend = (block + 1) * kWordsPerBlock;
  uint64_t run_start = kNone;  // start (>= from) of the free run reaching word w
  uint64_t w = from >> 6;
  uint64_t x = free_[w] & (kAllOnes << (from & 63));
  for (;; x = free_[w]) {
    const uint64_t word_bit = w << 6;
    if (x == kAllOnes) {
      if (run_start == kNone) run_start = word_bit;
    } else {
      if (run_start != kNone) {
        // The run ends inside this word: its lowest aligned start is the
        // only candidate it offers.
        const uint64_t aligned = AlignUp(run_start, order);
        if (aligned != kNone && aligned + pages <= word_bit + Ctz(~x)) return aligned;
        run_start = kNone;
      }
      if (pages < 64 && keys_.Get(w) >= pages) {
        uint64_t pattern;
        if (order <= 6) {
          pattern = kPattern[order];
        } else {
          pattern = AlignUp(word_bit, order) == word_bit ? 1 : 0;
        }
        const uint64_t starts = WindowStarts(x, pages) & pattern;
        if (starts != 0) return word_bit + Ctz(starts);
      }
      if ((x >> 63) != 0) run_start = word_bit + 64 - Clz(~x);
    }
    if (++w == wend) break;
  }
  const uint64_t bend = wend << 6;
  if (run_start == kNone) {
    *resume = bend < end_bit_ ? bend : kNone;
    return kNone;
  }
  // A run reaching the block's end: follow it to its true end.
  const uint64_t run_end = NextUsed(bend);
  const uint64_t aligned = AlignUp(run_start, order);
  if (aligned != kNone && aligned + pages <= run_end) return aligned;
  *resume = run_end + 1 < end_bit_ ? run_end + 1 : kNone;
  return kNone;
}

uint64_t BitmapBackend::SearchNode(unsigned level, uint64_t i, uint64_t* carry,
                                   uint64_t pages) const {
  const RunSummary s = tree_.Get(level, i);
  if (*carry + s.pre >= pages) return tree_.Start(level, i) - *carry;
  if (s.best < pages) {
    const uint64_t len = tree_.Length(level, i);
    *carry = s.pre == len ? *carry + len : s.suf;
    return kNone;
  }
  // The window lies inside the node (the tree is exact): descend to the
  // leftmost child that holds one or that one straddles into. Invariant:
  // c (the free bits before node i) + its prefix < pages.
  uint64_t c = *carry;
  while (level > 0) {
    --level;
    const uint64_t l = 2 * i;
    const RunSummary sl = tree_.Get(level, l);
    if (sl.best >= pages) {
      i = l;
      continue;
    }
    const uint64_t len = tree_.Length(level, l);
    c = sl.pre == len ? c + len : sl.suf;
    Check(l + 1 < tree_.count(level), "a tree node claims a window its only child lacks");
    const RunSummary sr = tree_.Get(level, l + 1);
    if (c + sr.pre >= pages) return tree_.Start(level, l + 1) - c;
    i = l + 1;
  }
  const ScanResult r = ScanBlock(i, i * kBlockBits, 0, pages);
  Check(r.found, "a block's counters promised a window it lacks");
  return r.start;
}

uint64_t BitmapBackend::SearchRight(uint64_t block, uint64_t* carry, uint64_t pages) const {
  // The right siblings of block's ancestors, bottom up, tile everything to
  // the right of the block in address order.
  uint64_t i = block;
  for (unsigned level = 0; level < tree_.top(); ++level, i >>= 1) {
    if ((i & 1) != 0 || i + 1 >= tree_.count(level)) continue;
    const uint64_t found = SearchNode(level, i + 1, carry, pages);
    if (found != kNone) return found;
  }
  return kNone;
}

uint64_t BitmapBackend::FindWindow(uint64_t pages, uint64_t from) const {
  if (from >= end_bit_ || pages > end_bit_ - from) return kNone;
  if (pages == 1) return NextFree(from);
  if (pages <= kMaxKey) {
    // The first word at or after from's with a window, then the window;
    // in from's own word the window may start too early: look on.
    uint64_t w = from >> 6;
    for (;;) {
      w = keys_.FindFirstAtLeastFrom(w, static_cast<unsigned>(pages));
      if (w == kNone) return kNone;
      if (w > (from >> 6)) return WindowInWord(w, pages);
      // From's word: only windows starting at or after from count.
      const unsigned at =
          WindowOffset(free_[w] & (kAllOnes << (from & 63)), free_[w + 1], pages);
      if (at < 64) return (w << 6) + at;
      ++w;
    }
  }
  if (tree_.root().best < pages) return kNone;
  uint64_t carry = 0;
  // Everything below first_bit_ is allocated padding: search the whole tree.
  if (from <= first_bit_) return SearchNode(tree_.top(), 0, &carry, pages);
  const uint64_t block = from / kBlockBits;
  if (from % kBlockBits == 0) {
    // Everything right of the previous block: the tree finds it.
    return SearchRight(block - 1, &carry, pages);
  }
  const ScanResult first = ScanBlock(block, from, 0, pages);
  if (first.found) return first.start;
  carry = first.carry;
  return SearchRight(block, &carry, pages);
}

inline void BitmapBackend::FillWord(uint64_t w, uint64_t mask, bool value) {
  const uint64_t old = free_[w];
  const uint64_t now = value ? old | mask : old & ~mask;
  free_[w] = now;
  if (value) {
    if (now == kAllOnes) has_used_.Clear(w);
  } else {
    if (old == kAllOnes) has_used_.Set(w);
  }
}

inline void BitmapBackend::FillBits(uint64_t lo, uint64_t hi, bool value) {
  const uint64_t first = lo >> 6;
  const uint64_t last = (hi - 1) >> 6;
  if (first == last) {
    FillWord(first, RunMask(lo, hi), value);
    return;
  }
  FillWord(first, kAllOnes << (lo & 63), value);
  for (uint64_t w = first + 1; w < last; ++w) FillWord(w, kAllOnes, value);
  FillWord(last, kAllOnes >> (63 - ((hi - 1) & 63)), value);
}

inline void BitmapBackend::LowerKeys(uint64_t s, uint64_t e) {
  // A long run: new keys for its words (those inside it have no free bit
  // left), then each node of the key tree recomputed once.
  uint64_t lo = s >> 6;
  const uint64_t hi = (e - 1) >> 6;
  for (uint64_t w = lo; w <= hi; ++w) keys_.Assign(w, w > lo && w < hi ? 0 : KeyOf(w));
  // The previous word's suffix run straddled into the first word's prefix,
  // which shrank if it reached s (never for a first fit, which starts a
  // free run; the padding word before word 0 is allocated).
  if ((free_[lo - 1] >> 63) != 0 && (~free_[lo] & ((uint64_t{1} << (s & 63)) - 1)) == 0) {
    --lo;
    keys_.Assign(lo, KeyOf(lo));
  }
  keys_.Resummarize(lo, hi);
}

inline void BitmapBackend::RaiseKeys(uint64_t s, uint64_t e) {
  // [s, e) joined the free run [cl, cr) (both clipped to the words around
  // it). Every key that changes is that of a word the run meets, and it
  // rises to the run's contribution: from max(cl, the word's first bit) to
  // min(cr, the end of the next word), capped at kMaxKey.
  const uint64_t ws = s >> 6;
  const uint64_t wz = (e - 1) >> 6;
  uint64_t cl;
  uint64_t wlo = ws;
  const uint64_t used_below = ~free_[ws] & ((uint64_t{1} << (s & 63)) - 1);
  if (used_below != 0) {
    cl = (ws << 6) + 64 - Clz(used_below);
  } else if (ws == 0) {
    cl = 0;
  } else {
    const uint64_t used_prev = ~free_[ws - 1];
    cl = used_prev != 0 ? ((ws - 1) << 6) + 64 - Clz(used_prev) : (ws - 1) << 6;
    if (cl < (ws << 6)) wlo = ws - 1;
  }
  uint64_t cr;
  const unsigned r = e & 63;
  if (r != 0) {
    const uint64_t tail = Ctz(~(free_[wz] >> r));  // <= 64 - r
    cr = tail < 64 - r ? e + tail : ((wz + 1) << 6) + PrefixOf(wz + 1);
  } else {
    cr = e + PrefixOf(wz + 1);
  }
  for (uint64_t w = wlo; w <= wz; ++w) {
    const uint64_t lo = std::max(cl, w << 6);
    const uint64_t hi = std::min(cr, (w << 6) + 128);
    const unsigned v = static_cast<unsigned>(std::min<uint64_t>(hi - lo, kMaxKey));
    keys_.Raise(w, v);
  }
}

void BitmapBackend::UpdateTree(uint64_t s, uint64_t e) {
  if (tree_.AnyDirty()) {
    MarkDirty(s, e);
    return;
  }
  // A clean tree stays clean: the blocks' counters, then their ancestors.
  const uint64_t b0 = s / kBlockBits;
  const uint64_t b1 = (e - 1) / kBlockBits;
  for (uint64_t b = b0; b <= b1; ++b) tree_.Set(0, b, ComputeBlock(b));
  tree_.PropagateRange(b0, b1);
}

inline void BitmapBackend::MarkDirty(uint64_t s, uint64_t e) {
  const uint64_t b0 = s / kBlockBits;
  const uint64_t b1 = (e - 1) / kBlockBits;
  tree_.MarkDirty(b0);
  for (uint64_t b = b0 + 1; b <= b1; ++b) tree_.MarkDirty(b);
}

ABSL_ATTRIBUTE_ALWAYS_INLINE inline std::optional<FrameNumber> BitmapBackend::AllocateSmall(
    uint64_t m) {
  // The first word with a window (its key), then the window in it.
  const uint64_t w = keys_.FindFirstAtLeast(static_cast<unsigned>(m));
  if (w == kNone) return std::nullopt;
  const uint64_t x = free_[w];
  const Runs runs(x);
  const unsigned at = WindowOffsetOf(runs, x, free_[w + 1], m);
  Check(at < 64, "a word's key promised a window it lacks");
  CommitSmall(w, at, m, 0);
  return FrameNumber(base_ + (w << 6) + at);
}

std::optional<FrameNumber> BitmapBackend::AllocateSlow(uint64_t m, unsigned order) {
  if (hot_parked_) Unpark();
  if (m == 0 || m > free_pages_) return std::nullopt;
  uint64_t start;
  if (order == 0) {
    if (m <= kMaxKey) {
      return AllocateSmall(m);
    } else {
      FlushTree();
      start = FindWindow(m, first_bit_);
      if (start == kNone) return std::nullopt;
    }
  } else {
    // Windows of up to kMaxKey bits are found from the keys; longer ones
    // need the tree.
    if (m > kMaxKey) FlushTree();
    // First fit over aligned starts: the lowest unaligned window marks the
    // first block worth a look; scan that block's free runs for an aligned
    // fit, else resume past it. Each round rules out a block (or one long
    // run), never a single short run at a time.
    uint64_t from = AlignUp(first_bit_, order);
    for (;;) {
      if (from == kNone) return std::nullopt;
      start = FindWindow(m, from);
      if (start == kNone) return std::nullopt;
      uint64_t resume;
      start = ScanBlockAligned(start, m, order, &resume);
      if (start != kNone) break;
      from = resume == kNone ? kNone : AlignUp(resume, order);
    }
  }
  Commit(start, m, order);
  return FrameNumber(base_ + start);
}

ABSL_ATTRIBUTE_ALWAYS_INLINE inline void BitmapBackend::CommitSmall(uint64_t w, unsigned off,
                                                                    uint64_t pages,
                                                                    unsigned order) {
  // The run [s, s + pages) lies in words w and (if it crosses) w + 1, which
  // the padding makes safe to read and write as one 128-bit pair.
  const uint64_t prev = free_[w - 1];
  const uint64_t x = free_[w];
  const uint64_t nx = free_[w + 1];
  // Independent of the new key: computed in parallel with it.
  const unsigned siblings = keys_.SiblingMax(w);
  const Span span = MakeSpan(off, pages);
  const unsigned end = span.end;  // bit e, relative to word w
  const bool crosses = end > 64;
  const bool left_free = BitBefore(prev, x, off);
  const bool right_free = PairBit(x, nx, end);
  // One free run loses [s, e): it vanishes, shrinks or splits in two.
  const int runs_delta = static_cast<int>(left_free) + static_cast<int>(right_free) - 1;

  uint64_t lost = 0;
  if (__builtin_expect(x == kAllOnes || (crosses && nx == kAllOnes), 0)) {
    // Whole free words: a free superpage may go, has_used_ changes.
    const uint64_t b0 = w / kWordsPerBlock;
    const uint64_t b1 = (w + crosses) / kWordsPerBlock;
    lost = (x == kAllOnes && BlockFull(b0)) + (b1 != b0 && nx == kAllOnes && BlockFull(b1));
    if (x == kAllOnes) has_used_.Set(w);
    if (crosses && nx == kAllOnes) has_used_.Set(w + 1);
  }
  const uint64_t y0 = x & ~span.lo;
  const uint64_t y1 = nx & ~span.hi;
  free_[w] = y0;
  free_[w + 1] = y1;
  starts_[w] |= uint64_t{1} << off;
  free_pages_ -= pages;
  free_runs_ += runs_delta;
  free_superpages_ -= lost;

  keys_.LowerKnowing(w, KeyOfBits(y0, y1), siblings);
  if (crosses) keys_.Lower(w + 1, KeyOfBits(y1, free_[w + 2]));
  // The previous word's suffix run straddled into w's prefix, which shrank
  // if it reached s (never for a first fit, which starts a free run).
  if ((prev >> 63) != 0 && Prefix(x) >= off) keys_.Lower(w - 1, KeyOfBits(prev, y0));
  tree_.MarkDirty(w / kWordsPerBlock);
  if (crosses) tree_.MarkDirty((w + 1) / kWordsPerBlock);

  hot_valid_ = true;
  hot_parked_ = false;
  hot_start_ = (w << 6) + off;
  hot_n_ = pages;
  hot_order_ = order;
  hot_runs_delta_ = runs_delta;
  hot_superpages_ = lost;
}

std::optional<FrameNumber> BitmapBackend::Allocate(PageCount pages, AlignOrder align) {
  const uint64_t m = pages.value();
  const unsigned order = align.value();
  if (hot_parked_ && m == hot_n_ &&
      (order == hot_order_ ||
       (order > hot_order_ && FrameNumber(base_ + hot_start_).IsAligned(align)))) {
    // The state is that before the hot run's allocation, whose first fit
    // this was (and for a larger order still is, being aligned to it).
    hot_parked_ = false;
    free_pages_ -= m;
    free_runs_ += hot_runs_delta_;
    free_superpages_ -= hot_superpages_;
    return FrameNumber(base_ + hot_start_);
  }
  // Out of line, so that the hot-run round trip needs no stack frame.
  return AllocateCold(m, order);
}

std::optional<FrameNumber> BitmapBackend::AllocateCold(uint64_t m, unsigned order) {
  if (order == 0 && m - 1 < kMaxKey && !hot_parked_ && m <= free_pages_) return AllocateSmall(m);
  return AllocateSlow(m, order);
}

void BitmapBackend::Commit(uint64_t s, uint64_t pages, unsigned order) {
  if (pages <= kMaxKey) {
    CommitSmall(s >> 6, static_cast<unsigned>(s & 63), pages, order);
    return;
  }
  const uint64_t e = s + pages;
  const bool left_free = s > 0 && IsFree(s - 1);
  const bool right_free = e < total_bits_ && IsFree(e);
  // One free run loses [s, e): it vanishes, shrinks or splits in two.
  const int runs_delta = static_cast<int>(left_free) + static_cast<int>(right_free) - 1;
  free_runs_ += runs_delta;

  const uint64_t b0 = s / kBlockBits;
  const uint64_t b1 = (e - 1) / kBlockBits;
  uint64_t lost;
  if (b0 == b1) {
    // A free superpage has only free words.
    lost = free_[s >> 6] == kAllOnes && BlockFull(b0);
  } else {
    // Blocks [full_lo, full_hi) are covered entirely; b0 / b1 may be partial.
    const uint64_t full_lo = (s + kBlockBits - 1) / kBlockBits;
    const uint64_t full_hi = e / kBlockBits;
    lost = full_hi - full_lo;  // these were free superpages
    if (b0 < full_lo && BlockFull(b0)) ++lost;
    if (b1 >= full_hi && BlockFull(b1)) ++lost;
  }
  free_superpages_ -= lost;

  FillBits(s, e, false);
  starts_[s >> 6] |= uint64_t{1} << (s & 63);
  free_pages_ -= pages;
  LowerKeys(s, e);
  UpdateTree(s, e);

  hot_valid_ = true;
  hot_parked_ = false;
  hot_start_ = s;
  hot_n_ = pages;
  hot_order_ = order;
  hot_runs_delta_ = runs_delta;
  hot_superpages_ = lost;
}

ABSL_ATTRIBUTE_ALWAYS_INLINE inline void BitmapBackend::ReleaseSmall(uint64_t w, unsigned off,
                                                                     uint64_t pages) {
  const uint64_t prev = free_[w - 1];
  const uint64_t x = free_[w];
  const uint64_t nx = free_[w + 1];
  const Span span = MakeSpan(off, pages);
  const unsigned end = span.end;
  const bool crosses = end > 64;
  const bool left_free = BitBefore(prev, x, off);
  const bool right_free = PairBit(x, nx, end);
  const uint64_t y0 = x | span.lo;
  const uint64_t y1 = nx | span.hi;
  free_[w] = y0;
  free_[w + 1] = y1;
  starts_[w] &= ~(uint64_t{1} << off);
  free_pages_ += pages;
  // [s, e) becomes free and merges with free neighbours.
  free_runs_ = free_runs_ + 1 - left_free - right_free;
  if (__builtin_expect(y0 == kAllOnes || (crosses && y1 == kAllOnes), 0)) {
    const uint64_t b0 = w / kWordsPerBlock;
    const uint64_t b1 = (w + crosses) / kWordsPerBlock;
    if (y0 == kAllOnes) has_used_.Clear(w);
    if (crosses && y1 == kAllOnes) has_used_.Clear(w + 1);
    free_superpages_ += (y0 == kAllOnes && BlockFull(b0)) +
                        (b1 != b0 && y1 == kAllOnes && BlockFull(b1));
  }

  // The keys rise to the merged free run's contribution (see RaiseKeys):
  // it starts at cl (clipped to word w) and ends at cr (clipped to the end
  // of word w + 1), both relative to word w's first bit.
  const uint64_t used_below = ~y0 & ((uint64_t{1} << off) - 1);
  const unsigned cl = 63 - Clz((used_below << 1) | 1);
  const unsigned cr = end + PairRunFrom(y0, y1, end);  // <= 128
  keys_.Raise(w, std::min(cr - cl, 64u));
  if (cr > 64) keys_.Raise(w + 1, std::min(cr - 64, 64u));
  if (cl == 0 && (prev >> 63) != 0) {
    keys_.Raise(w - 1, std::min(Suffix(prev) + std::min(cr, 64u), 64u));
  }
  tree_.MarkDirty(w / kWordsPerBlock);
  if (crosses) tree_.MarkDirty((w + 1) / kWordsPerBlock);
  hot_valid_ = false;
}

ABSL_ATTRIBUTE_ALWAYS_INLINE inline bool BitmapBackend::FreeSmall(uint64_t s, uint64_t pages) {
  // Exactly one live run: [s, e) allocated, a run start at s and none
  // after it, and bit e free or a run start (the sentinel covers the end).
  const uint64_t w = s >> 6;
  const unsigned off = static_cast<unsigned>(s & 63);
  const Span span = MakeSpan(off, pages);
  const uint64_t x = free_[w];
  const uint64_t nx = free_[w + 1];
  const uint64_t st = starts_[w];
  const uint64_t nst = starts_[w + 1];
  if (((x & span.lo) | (nx & span.hi) | (nst & span.hi)) != 0 ||
      (st & span.lo) != uint64_t{1} << off || !PairBit(x | st, nx | nst, span.end)) {
    return false;
  }
  ReleaseSmall(w, off, pages);
  return true;
}

void BitmapBackend::Release(uint64_t s, uint64_t pages) {
  if (pages <= kMaxKey) {
    ReleaseSmall(s >> 6, static_cast<unsigned>(s & 63), pages);
    return;
  }
  const uint64_t e = s + pages;
  const bool left_free = s > 0 && IsFree(s - 1);
  const bool right_free = e < total_bits_ && IsFree(e);
  // [s, e) becomes free and merges with free neighbours.
  free_runs_ = free_runs_ + 1 - left_free - right_free;
  starts_[s >> 6] &= ~(uint64_t{1} << (s & 63));
  free_pages_ += pages;
  FillBits(s, e, true);

  const uint64_t b0 = s / kBlockBits;
  const uint64_t b1 = (e - 1) / kBlockBits;
  if (b0 == b1) {
    free_superpages_ += free_[s >> 6] == kAllOnes && BlockFull(b0);
  } else {
    const uint64_t full_lo = (s + kBlockBits - 1) / kBlockBits;
    const uint64_t full_hi = e / kBlockBits;
    uint64_t gained = full_hi - full_lo;
    if (b0 < full_lo) gained += BlockFull(b0);
    if (b1 >= full_hi) gained += BlockFull(b1);
    free_superpages_ += gained;
  }
  RaiseKeys(s, e);
  UpdateTree(s, e);
  hot_valid_ = false;
}

void BitmapBackend::Unpark() {
  // Back to the counters of the allocated state; Release adds the free.
  hot_parked_ = false;
  free_pages_ -= hot_n_;
  free_runs_ += hot_runs_delta_;
  free_superpages_ -= hot_superpages_;
  Release(hot_start_, hot_n_);
}

bool BitmapBackend::Free(PageRun run) {
  const uint64_t f = run.first.value();
  const uint64_t m = run.pages.value();
  const uint64_t rf = range_.first.value();
  const uint64_t rn = range_.pages.value();
  if (m == 0 || f < rf || f - rf >= rn || m > rn - (f - rf)) return false;
  const uint64_t s = f - base_;
  if (hot_valid_ && s == hot_start_ && m == hot_n_) {
    if (hot_parked_) return false;  // freed already
    // Park it: the counters take the merged state, the bits wait.
    hot_parked_ = true;
    free_pages_ += m;
    free_runs_ -= hot_runs_delta_;
    free_superpages_ += hot_superpages_;
    return true;
  }
  return FreeCold(s, m);
}

bool BitmapBackend::FreeCold(uint64_t s, uint64_t m) {
  if (m <= kMaxKey && !hot_parked_) return FreeSmall(s, m);
  return FreeSlow(s, m);
}

bool BitmapBackend::FreeSlow(uint64_t s, uint64_t m) {
  if (hot_parked_) Unpark();
  if (m <= kMaxKey) return FreeSmall(s, m);
  const uint64_t e = s + m;
  // Exactly one live run: starts at s, all allocated, no other run start
  // inside, and the run after it (if any) begins right at e.
  const uint64_t first_word = s >> 6;
  const uint64_t last_word = (e - 1) >> 6;
  const uint64_t start_bit = uint64_t{1} << (s & 63);
  if ((starts_[first_word] & start_bit) == 0) return false;
  if (first_word == last_word) {
    const uint64_t mask = RunMask(s, e);
    if ((free_[first_word] & mask) != 0 || (starts_[first_word] & mask) != start_bit) {
      return false;
    }
  } else {
    for (uint64_t w = first_word; w <= last_word; ++w) {
      uint64_t mask = WordMask(w, s, e);
      if ((free_[w] & mask) != 0) return false;
      if (w == first_word) mask &= ~start_bit;
      if ((starts_[w] & mask) != 0) return false;
    }
  }
  if (e < end_bit_ && !IsFree(e) && !IsStart(e)) return false;
  Release(s, m);
  return true;
}

BackendStats BitmapBackend::Stats() const {
  FlushTree();
  uint64_t largest = tree_.root().best;
  if (hot_parked_) {
    // The parked run merges with its free neighbours.
    const uint64_t prev = PrevUsed(hot_start_);
    const uint64_t lo = prev == kNone ? 0 : prev + 1;
    const uint64_t hi = NextUsed(hot_start_ + hot_n_);
    largest = std::max(largest, hi - lo);
  }
  BackendStats s;
  s.total_pages = range_.pages;
  s.free_pages = PageCount(free_pages_);
  s.largest_free_run = PageCount(largest);
  s.free_runs = free_runs_;
  s.free_superpages = free_superpages_;
  s.metadata_bytes = sizeof(*this) +
                     (free_store_.capacity() + starts_store_.capacity()) * sizeof(uint64_t) +
                     has_used_.bytes() + keys_.bytes() + tree_.bytes();
  return s;
}

absl::Status BitmapBackend::CheckInvariants() const {
  auto fail = [](auto&&... args) {
    return absl::InternalError(absl::StrCat("bitmap backend: ", args...));
  };
  if (free_store_.size() != words_ + 3 || starts_store_.size() != words_ + 3 ||
      free_ != free_store_.data() + 1 || starts_ != starts_store_.data() + 1 ||
      keys_.size() != words_ ||
      words_ != blocks_ * kWordsPerBlock || total_bits_ != blocks_ * kBlockBits) {
    return fail("array sizes");
  }
  // Padding words: allocated, no run starts but the sentinel after the range.
  const uint64_t sentinel_word = end_bit_ >> 6;
  const uint64_t sentinel = uint64_t{1} << (end_bit_ & 63);
  for (uint64_t w : {uint64_t{0}, words_ + 1, words_ + 2}) {
    const uint64_t expect = w == sentinel_word + 1 ? sentinel : 0;
    if (free_store_[w] != 0 || starts_store_[w] != expect) return fail("padding word ", w);
  }

  uint64_t free_count = 0;
  uint64_t runs = 0;
  uint64_t longest = 0;
  uint64_t current = 0;
  uint64_t prev_free = 0;  // bit 63 of the previous word, free / allocated in range
  uint64_t prev_used = 0;
  for (uint64_t w = 0; w < words_; ++w) {
    const uint64_t lo = std::max(first_bit_, w * 64);
    const uint64_t hi = std::min(end_bit_, w * 64 + 64);
    const uint64_t valid = lo < hi ? WordMask(w, lo, hi) : 0;
    const uint64_t fr = free_[w];
    if ((fr & ~valid) != 0) return fail("padding frame marked free in word ", w);
    const uint64_t outside = starts_[w] & ~valid;
    if (outside != (w == sentinel_word ? sentinel : 0)) {
      return fail("run start outside the range in word ", w);
    }
    if ((starts_[w] & fr) != 0) return fail("run start on a free frame in word ", w);
    if (w == sentinel_word && (starts_[w] & sentinel) == 0) return fail("sentinel missing");
    if (has_used_.Test(w) != (fr != kAllOnes)) return fail("has_used stale for word ", w);
    free_count += Popcount(fr);
    runs += Popcount(fr & ~((fr << 1) | prev_free));
    const uint64_t used = ~fr & valid;
    const uint64_t used_heads = used & ~((used << 1) | prev_used);
    if ((used_heads & ~starts_[w]) != 0) {
      return fail("allocated frames without a run start at bit ",
                  w * 64 + Ctz(used_heads & ~starts_[w]));
    }
    prev_free = fr >> 63;
    prev_used = used >> 63;
    // Longest free run, bit by bit inside mixed words.
    if (fr == kAllOnes) {
      current += 64;
    } else if (fr == 0) {
      current = 0;
    } else {
      for (unsigned b = 0; b < 64; ++b) {
        if ((fr >> b) & 1) {
          longest = std::max(longest, ++current);
        } else {
          current = 0;
        }
      }
    }
    longest = std::max(longest, current);
  }
  // The keys, from the maximal free runs found bit by bit (independent of the
  // word tricks the backend uses): a run contributes to every word it meets,
  // from its first bit in the word to its end or the end of the next word.
  {
    std::vector<uint8_t> expect(words_, 0);
    for (uint64_t b = 0; b < total_bits_;) {
      if (!IsFree(b)) {
        ++b;
        continue;
      }
      uint64_t z = b;
      while (z < total_bits_ && IsFree(z)) ++z;
      for (uint64_t w = b >> 6; w <= (z - 1) >> 6; ++w) {
        const uint64_t len = std::min(z, w * 64 + 128) - std::max(b, w * 64);
        expect[w] = static_cast<uint8_t>(
            std::max<uint64_t>(expect[w], std::min<uint64_t>(len, kMaxKey)));
      }
      b = z;
    }
    for (uint64_t w = 0; w < words_; ++w) {
      if (keys_.Get(w) != expect[w]) {
        return fail("key of word ", w, " is ", keys_.Get(w), ", not ", expect[w]);
      }
    }
  }
  if (absl::Status st = keys_.Verify("keys"); !st.ok()) return st;

  // The parked hot run reads allocated but counts as free.
  uint64_t hot_superpages = 0;
  int hot_runs_delta = 0;
  if (hot_valid_) {
    const uint64_t s = hot_start_;
    const uint64_t e = s + hot_n_;
    if (hot_n_ == 0 || s < first_bit_ || e > end_bit_ || !IsStart(s)) {
      return fail("hot run [", s, ", ", e, ") is not a live run");
    }
    for (uint64_t b = s; b < e; ++b) {
      if (IsFree(b) || (b > s && IsStart(b))) return fail("hot run is not one live run");
    }
    if (e < end_bit_ && !IsFree(e) && !IsStart(e)) return fail("hot run ends inside a run");
    if (AlignUp(s, hot_order_) != s) return fail("hot run misaligned");
    hot_runs_delta = (s > 0 && IsFree(s - 1)) + (e < total_bits_ && IsFree(e)) - 1;
    for (uint64_t b = s / kBlockBits; b <= (e - 1) / kBlockBits; ++b) {
      bool full = true;
      for (uint64_t bit = b * kBlockBits; bit < (b + 1) * kBlockBits; ++bit) {
        full &= IsFree(bit) || (bit >= s && bit < e);
      }
      hot_superpages += full;
    }
    if (hot_runs_delta != hot_runs_delta_ || hot_superpages != hot_superpages_) {
      return fail("hot run's recorded deltas are stale");
    }
  } else if (hot_parked_) {
    return fail("a parked hot run that is not valid");
  }
  uint64_t expect_free = free_count;
  uint64_t expect_runs = runs;
  if (hot_parked_) {
    expect_free += hot_n_;
    expect_runs -= hot_runs_delta;
  }
  if (expect_free != free_pages_) {
    return fail("free_pages ", free_pages_, " but ", expect_free, " free bits");
  }
  if (expect_runs != free_runs_) {
    return fail("free_runs ", free_runs_, " but ", expect_runs, " maximal free runs");
  }

  uint64_t superpages = 0;
  for (uint64_t b = 0; b < blocks_; ++b) {
    bool full = true;
    for (uint64_t j = 0; j < kWordsPerBlock; ++j) full &= free_[b * kWordsPerBlock + j] == kAllOnes;
    if (full != BlockFull(b)) return fail("BlockFull wrong for block ", b);
    superpages += full;
  }
  if (hot_parked_) superpages += hot_superpages;
  if (superpages != free_superpages_) {
    return fail("free_superpages ", free_superpages_, " but ", superpages, " free superpages");
  }

  if (absl::Status st = has_used_.Verify("has_used"); !st.ok()) return st;
  if (has_used_.size() != words_) return fail("hierarchy size");

  // The tree: clean nodes are exact, dirty marks are closed upwards.
  if (tree_.count(0) != blocks_) return fail("tree leaf count");
  for (uint64_t b = 0; b < blocks_; ++b) {
    const RunSummary stored = tree_.Get(0, b);
    if (stored.pre > kBlockBits || stored.suf > kBlockBits || stored.best > kBlockBits) {
      return fail("block ", b, " counters exceed the block");
    }
    if (tree_.Dirty(0, b)) continue;
    const RunSummary exact = ComputeBlock(b);
    if (stored != exact) {
      return fail("clean block ", b, " has stale counters (", stored.pre, ",", stored.suf, ",",
                  stored.best, ") vs (", exact.pre, ",", exact.suf, ",", exact.best, ")");
    }
  }
  for (unsigned level = 0; level < tree_.levels(); ++level) {
    if (level > 0 && tree_.count(level) != (tree_.count(level - 1) + 1) / 2) {
      return fail("tree shape");
    }
    for (uint64_t i = 0; i < tree_.count(level); ++i) {
      const bool dirty = tree_.Dirty(level, i);
      if (dirty && level < tree_.top() && !tree_.Dirty(level + 1, i >> 1)) {
        return fail("dirty node (", level, ",", i, ") under a clean parent");
      }
      if (level > 0 && !dirty && tree_.Get(level, i) != tree_.Combine(level, i)) {
        return fail("tree node (", level, ",", i, ") disagrees with its children");
      }
    }
  }
  if (!tree_.AnyDirty() && tree_.root().best != longest) {
    return fail("root longest run ", tree_.root().best, " but the bitmap's is ", longest);
  }
  return absl::OkStatus();
}

}  // namespace l4re_ma
