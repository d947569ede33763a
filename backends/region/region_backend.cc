#include "backends/region/region_backend.h"

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <iterator>
#include <limits>
#include <optional>
#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

#include "absl/base/attributes.h"
#include "absl/base/optimization.h"
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
constexpr uint64_t kSuperPagePages = uint64_t{1} << kSuperPageOrder;

inline uint64_t SuperpagesIn(uint64_t first, uint64_t pages) {
  if (pages < kSuperPagePages) return 0;  // most extents: skip the arithmetic
  const uint64_t lo = first / kSuperPagePages + (first % kSuperPagePages != 0 ? 1 : 0);
  const uint64_t hi = (first + pages) / kSuperPagePages;
  return hi > lo ? hi - lo : 0;
}

constexpr uint64_t kByteOnes = 0x0101010101010101;
constexpr uint64_t kByteHighs = 0x8080808080808080;

// A mask with bit 8i + 7 set where byte i of `word` equals `byte`; exact
// for the lowest such byte (higher ones may show false matches above a
// true one), and 0 if no byte matches.
inline uint64_t ByteMatches(uint64_t word, uint64_t byte) {
  const uint64_t x = word ^ (kByteOnes * byte);
  return (x - kByteOnes) & ~x & kByteHighs;
}

// The index of the byte of `word` equal to `byte`, or -1 (see ByteMatches).
inline int FindByte(uint64_t word, uint64_t byte) {
  const uint64_t z = ByteMatches(word, byte);
  return z == 0 ? -1 : __builtin_ctzll(z) >> 3;
}

inline uint64_t PopCount(uint64_t m) {
  uint64_t n = 0;
  for (; m != 0; m &= m - 1) ++n;
  return n;
}

// The highest set bit of words[0 .. n) below bit `limit`, or -1.
inline int PrevSetBit(const uint64_t* words, uint32_t limit) {
  int w = static_cast<int>(limit / 64);
  uint64_t m = limit % 64 == 0 ? 0 : words[w] & ((uint64_t{1} << (limit % 64)) - 1);
  while (m == 0) {
    if (--w < 0) return -1;
    m = words[w];
  }
  return w * 64 + 63 - __builtin_clzll(m);
}

}  // namespace

// ---------------------------------------------------------------------------
// TagMap

RegionBackend::TagMap::TagMap(uint64_t size) : size_(size) {
  const uint64_t windows = (size >> kLeafBits) + ((size & 63) != 0 ? 1 : 0);
  const int wbits = windows <= 1 ? 0 : 64 - __builtin_clzll(windows - 1);
  levels_ = std::max(1, (wbits + kInnerBits - 1) / kInnerBits);
}

uint32_t RegionBackend::TagMap::NewInner() {
  uint32_t i;
  if (free_inner_ != kNil) {
    i = free_inner_;  // released clean: no children
    free_inner_ = inners_[i].child[0];
    inners_[i].child[0] = kNil;
  } else {
    i = static_cast<uint32_t>(inners_.size());
    inners_.emplace_back();
    Inner& n = inners_[i];
    std::fill(std::begin(n.occupied), std::end(n.occupied), 0);
    std::fill(std::begin(n.child), std::end(n.child), kNil);
    n.count = 0;
  }
  ++inner_count_;
  return i;
}

uint32_t RegionBackend::TagMap::NewSmall() {
  uint32_t i;
  if (free_small_ != kNil) {
    i = free_small_;
    free_small_ = smalls_[i].tags[0];
  } else {
    i = static_cast<uint32_t>(smalls_.size());
    smalls_.emplace_back();
  }
  smalls_[i].pos = ~uint64_t{0};
  ++small_count_;
  return i;
}

uint32_t RegionBackend::TagMap::NewBig() {
  uint32_t i;
  if (free_big_ != kNil) {
    i = free_big_;
    free_big_ = bigs_[i].tags[0];
  } else {
    i = static_cast<uint32_t>(bigs_.size());
    bigs_.emplace_back();
  }
  bigs_[i].mask = 0;
  bigs_[i].count = 0;
  ++big_count_;
  return i;
}

void RegionBackend::TagMap::SetChild(uint32_t inner, uint32_t i, uint32_t ref) {
  Inner& n = inners_[inner];
  n.child[i] = ref;
  n.occupied[i / 64] |= uint64_t{1} << (i % 64);
  ++n.count;
}

ABSL_ATTRIBUTE_ALWAYS_INLINE inline uint32_t RegionBackend::TagMap::LeafOf(
    uint64_t w) const {
  uint32_t ref = root_;
  if (ref == kNil) return kNil;
  if (ABSL_PREDICT_FALSE(levels_ > 1)) {
    for (int l = levels_ - 1; l > 0; --l) {
      ref = inners_[ref].child[(w >> (kInnerBits * l)) & (kFanout - 1)];
      if (ref == kNil) return kNil;
    }
  }
  return inners_[ref].child[w & (kFanout - 1)];
}

// The lookups and the common updates are branch-free past the descent: the
// presence of a tag is as unpredictable as the neighbours of a run.
ABSL_ATTRIBUTE_ALWAYS_INLINE inline uint32_t RegionBackend::TagMap::Get(uint64_t off) const {
  const uint32_t ref = LeafOf(off >> kLeafBits);
  if (ref == kNil) return kNoTag;
  const uint32_t bit = off & 63;
  if (ABSL_PREDICT_FALSE(ref & kBig)) {
    const BigLeaf& b = bigs_[ref & ~kBig];
    return ((b.mask >> bit) & 1) != 0 ? b.tags[bit] : kNoTag;
  }
  const SmallLeaf& s = smalls_[ref];
  const uint64_t z = ByteMatches(s.pos, bit);
  const uint32_t tag = s.tags[__builtin_ctzll(z | (uint64_t{1} << 63)) >> 3];
  return tag | (uint32_t{0} - (z == 0 ? 1 : 0));  // kNoTag if absent
}

ABSL_ATTRIBUTE_ALWAYS_INLINE inline void RegionBackend::TagMap::Set(uint64_t off,
                                                                      uint32_t tag) {
  const uint32_t ref = LeafOf(off >> kLeafBits);
  if (ABSL_PREDICT_TRUE(ref != kNil && (ref & kBig) == 0)) {
    SmallLeaf& s = smalls_[ref];
    const uint32_t bit = off & 63;
    const uint64_t found = ByteMatches(s.pos, bit);
    const uint64_t use_found = uint64_t{0} - (found != 0 ? 1 : 0);
    // The matching slot, else a free one.
    const uint64_t z = (found & use_found) | (ByteMatches(s.pos, 0xff) & ~use_found);
    if (ABSL_PREDICT_TRUE(z != 0)) {
      const int shift = __builtin_ctzll(z) - 7;  // 8 * slot
      s.pos = (s.pos & ~(uint64_t{0xff} << shift)) | (uint64_t{bit} << shift);
      s.tags[shift >> 3] = tag;
      tag_count_ += found == 0 ? 1 : 0;
      return;
    }
  }
  SetSlow(off, tag);
}

ABSL_ATTRIBUTE_ALWAYS_INLINE inline void RegionBackend::TagMap::Clear(uint64_t off) {
  const uint32_t ref = LeafOf(off >> kLeafBits);
  if (ABSL_PREDICT_TRUE((ref & kBig) == 0)) {
    SmallLeaf& s = smalls_[ref];
    const int shift = __builtin_ctzll(ByteMatches(s.pos, off & 63)) - 7;  // 8 * slot
    const uint64_t pos = s.pos | (uint64_t{0xff} << shift);
    if (ABSL_PREDICT_TRUE(pos != ~uint64_t{0})) {
      s.pos = pos;
      --tag_count_;
      return;
    }
  }
  ClearSlow(off);
}

void RegionBackend::TagMap::SetSlow(uint64_t off, uint32_t tag) {
  const uint64_t w = off >> kLeafBits;
  const uint32_t bit = off & 63;
  if (root_ == kNil) root_ = NewInner();
  uint32_t node = root_;
  for (int l = levels_ - 1; l > 0; --l) {
    const uint32_t i = (w >> (kInnerBits * l)) & (kFanout - 1);
    uint32_t c = inners_[node].child[i];
    if (c == kNil) {
      c = NewInner();  // may move inners_
      SetChild(node, i, c);
    }
    node = c;
  }
  const uint32_t i = w & (kFanout - 1);
  uint32_t ref = inners_[node].child[i];
  if (ref == kNil) {
    ref = NewSmall();
    SetChild(node, i, ref);
  }
  if (ref & kBig) {
    BigLeaf& b = bigs_[ref & ~kBig];
    if (((b.mask >> bit) & 1) == 0) {
      b.mask |= uint64_t{1} << bit;
      ++b.count;
      ++tag_count_;
    }
    b.tags[bit] = tag;
    return;
  }
  {
    SmallLeaf& s = smalls_[ref];
    int k = FindByte(s.pos, bit);
    if (k >= 0) {
      s.tags[k] = tag;
      return;
    }
    ++tag_count_;
    k = FindByte(s.pos, 0xff);
    if (k >= 0) {
      s.pos = (s.pos & ~(uint64_t{0xff} << (8 * k))) | (uint64_t{bit} << (8 * k));
      s.tags[k] = tag;
      return;
    }
  }
  // A ninth tag: the leaf becomes dense.
  const uint32_t bi = NewBig();  // may move bigs_, not smalls_
  BigLeaf& b = bigs_[bi];
  const SmallLeaf& s = smalls_[ref];
  for (int k = 0; k < kSmallCap; ++k) {
    const uint32_t p = (s.pos >> (8 * k)) & 0xff;
    b.mask |= uint64_t{1} << p;
    b.tags[p] = s.tags[k];
  }
  b.mask |= uint64_t{1} << bit;
  b.tags[bit] = tag;
  b.count = kSmallCap + 1;
  smalls_[ref].tags[0] = free_small_;
  free_small_ = ref;
  --small_count_;
  inners_[node].child[i] = bi | kBig;
}

void RegionBackend::TagMap::ClearSlow(uint64_t off) {
  const uint64_t w = off >> kLeafBits;
  const uint32_t bit = off & 63;
  uint32_t path[kMaxLevels];
  uint32_t pos[kMaxLevels];
  uint32_t ref = root_;
  for (int l = levels_ - 1; l >= 0; --l) {
    const uint32_t i = (w >> (kInnerBits * l)) & (kFanout - 1);
    path[l] = ref;
    pos[l] = i;
    ref = inners_[ref].child[i];
  }
  --tag_count_;
  if (ref & kBig) {
    BigLeaf& b = bigs_[ref & ~kBig];
    b.mask &= ~(uint64_t{1} << bit);
    if (--b.count > static_cast<uint32_t>(kSmallCap)) return;
    // Down to kSmallCap tags: the leaf becomes small again.
    const uint32_t si = NewSmall();  // may move smalls_, not bigs_
    SmallLeaf& s = smalls_[si];
    int k = 0;
    for (uint64_t m = b.mask; m != 0; m &= m - 1, ++k) {
      const uint32_t p = __builtin_ctzll(m);
      s.pos = (s.pos & ~(uint64_t{0xff} << (8 * k))) | (uint64_t{p} << (8 * k));
      s.tags[k] = b.tags[p];
    }
    b.tags[0] = free_big_;
    free_big_ = ref & ~kBig;
    --big_count_;
    inners_[path[0]].child[pos[0]] = si;
    return;
  }
  SmallLeaf& s = smalls_[ref];
  s.pos |= uint64_t{0xff} << (8 * FindByte(s.pos, bit));
  if (s.pos != ~uint64_t{0}) return;
  // The window's last tag: release the leaf and every node left empty.
  s.tags[0] = free_small_;
  free_small_ = ref;
  --small_count_;
  for (int l = 0; l < levels_; ++l) {
    Inner& n = inners_[path[l]];
    n.child[pos[l]] = kNil;
    n.occupied[pos[l] / 64] &= ~(uint64_t{1} << (pos[l] % 64));
    if (--n.count != 0) return;
    n.child[0] = free_inner_;  // the node is clean: no children, no bits
    free_inner_ = path[l];
    --inner_count_;
  }
  root_ = kNil;
}

bool RegionBackend::TagMap::FloorIn(uint32_t ref, uint32_t bit, uint32_t* at_bit,
                                    uint32_t* tag) const {
  if (ref & kBig) {
    const BigLeaf& b = bigs_[ref & ~kBig];
    const uint64_t m = b.mask & ((uint64_t{2} << bit) - 1);  // bits <= bit (bit 63: all)
    if (m == 0) return false;
    *at_bit = 63 - __builtin_clzll(m);
    *tag = b.tags[*at_bit];
    return true;
  }
  const SmallLeaf& s = smalls_[ref];
  bool found = false;
  for (int k = 0; k < kSmallCap; ++k) {
    const uint32_t p = (s.pos >> (8 * k)) & 0xff;
    if (p <= bit && (!found || p > *at_bit)) {
      found = true;
      *at_bit = p;
      *tag = s.tags[k];
    }
  }
  return found;
}

bool RegionBackend::TagMap::MaxIn(uint32_t ref, int level, uint64_t w, uint64_t* at,
                                  uint32_t* tag) const {
  // ref is an inner node at `level` (or a leaf if level < 0); w holds the
  // window bits above it.
  for (; level >= 0; --level) {
    const Inner& n = inners_[ref];
    const int j = PrevSetBit(n.occupied, kFanout);
    w = (w << kInnerBits) | static_cast<uint64_t>(j);
    ref = n.child[j];
  }
  uint32_t b;
  if (!FloorIn(ref, 63, &b, tag)) return false;
  *at = (w << kLeafBits) | b;
  return true;
}

bool RegionBackend::TagMap::Floor(uint64_t off, uint64_t* at, uint32_t* tag) const {
  if (root_ == kNil) return false;
  const uint64_t w = off >> kLeafBits;
  uint32_t path[kMaxLevels];
  uint32_t node = root_;
  int l = levels_ - 1;
  for (; l >= 0; --l) {
    path[l] = node;
    const uint32_t c = inners_[node].child[(w >> (kInnerBits * l)) & (kFanout - 1)];
    if (c == kNil) break;
    if (l == 0) {
      uint32_t b;
      if (FloorIn(c, off & 63, &b, tag)) {
        *at = (w << kLeafBits) | b;
        return true;
      }
      break;  // nothing at or below off in this window
    }
    node = c;
  }
  // Up from level l: the nearest occupied child left of the path.
  for (; l < levels_; ++l) {
    const uint32_t i = (w >> (kInnerBits * l)) & (kFanout - 1);
    const int j = PrevSetBit(inners_[path[l]].occupied, i);
    if (j < 0) continue;
    const uint64_t prefix =
        ((w >> (kInnerBits * (l + 1))) << kInnerBits) | static_cast<uint64_t>(j);
    return MaxIn(inners_[path[l]].child[j], l - 1, prefix, at, tag);
  }
  return false;
}

template <typename F>
bool RegionBackend::TagMap::ForEachIn(uint32_t ref, int level, uint64_t w, const F& f) const {
  if (level < 0) {
    if (ref & kBig) {
      const BigLeaf& b = bigs_[ref & ~kBig];
      for (uint64_t m = b.mask; m != 0; m &= m - 1) {
        const uint32_t p = __builtin_ctzll(m);
        if (!f((w << kLeafBits) | p, b.tags[p])) return false;
      }
      return true;
    }
    const SmallLeaf& s = smalls_[ref];
    std::pair<uint32_t, uint32_t> e[kSmallCap];
    int n = 0;
    for (int k = 0; k < kSmallCap; ++k) {
      const uint32_t p = (s.pos >> (8 * k)) & 0xff;
      if (p != 0xff) e[n++] = {p, s.tags[k]};
    }
    for (int k = 1; k < n; ++k) {  // insertion sort of at most kSmallCap
      for (int j = k; j > 0 && e[j].first < e[j - 1].first; --j) std::swap(e[j], e[j - 1]);
    }
    for (int k = 0; k < n; ++k) {
      if (!f((w << kLeafBits) | e[k].first, e[k].second)) return false;
    }
    return true;
  }
  const Inner& in = inners_[ref];
  for (uint32_t wi = 0; wi < kFanout / 64; ++wi) {
    for (uint64_t m = in.occupied[wi]; m != 0; m &= m - 1) {
      const uint32_t j = wi * 64 + __builtin_ctzll(m);
      if (!ForEachIn(in.child[j], level - 1, (w << kInnerBits) | j, f)) return false;
    }
  }
  return true;
}

template <typename F>
bool RegionBackend::TagMap::ForEach(const F& f) const {
  return root_ == kNil || ForEachIn(root_, levels_ - 1, 0, f);
}

absl::Status RegionBackend::TagMap::CheckIn(uint32_t ref, int level, uint64_t w,
                                            uint64_t* tags, uint64_t* inners, uint64_t* smalls,
                                            uint64_t* bigs) const {
  if (level < 0) {
    if (ref & kBig) {
      if ((ref & ~kBig) >= bigs_.size()) return absl::InternalError("bad big leaf ref");
      const BigLeaf& b = bigs_[ref & ~kBig];
      if (b.count != PopCount(b.mask) || b.count <= static_cast<uint32_t>(kSmallCap)) {
        return absl::InternalError(absl::StrCat("dense tag leaf holds ", b.count, " tags"));
      }
      for (uint64_t m = b.mask; m != 0; m &= m - 1) {
        if (((w << kLeafBits) | __builtin_ctzll(m)) >= size_) {
          return absl::InternalError("tag beyond the range");
        }
      }
      *tags += b.count;
      ++*bigs;
      return absl::OkStatus();
    }
    if (ref >= smalls_.size()) return absl::InternalError("bad small leaf ref");
    const SmallLeaf& s = smalls_[ref];
    uint64_t seen = 0;
    int n = 0;
    for (int k = 0; k < kSmallCap; ++k) {
      const uint32_t p = (s.pos >> (8 * k)) & 0xff;
      if (p == 0xff) continue;
      if (p >= 64 || ((seen >> p) & 1) != 0 || ((w << kLeafBits) | p) >= size_) {
        return absl::InternalError("bad or repeated offset in a small tag leaf");
      }
      seen |= uint64_t{1} << p;
      ++n;
    }
    if (n == 0) return absl::InternalError("empty tag leaf");
    *tags += n;
    ++*smalls;
    return absl::OkStatus();
  }
  if (ref >= inners_.size()) return absl::InternalError("bad inner ref");
  const Inner& in = inners_[ref];
  uint64_t children = 0;
  for (uint32_t j = 0; j < kFanout; ++j) {
    const bool bit = (in.occupied[j / 64] >> (j % 64)) & 1;
    if (bit != (in.child[j] != kNil)) return absl::InternalError("occupancy mask is wrong");
    if (!bit) continue;
    ++children;
    absl::Status st = CheckIn(in.child[j], level - 1, (w << kInnerBits) | j, tags, inners, smalls,
                              bigs);
    if (!st.ok()) return st;
  }
  if (children == 0 || children != in.count) {
    return absl::InternalError(absl::StrCat("inner tag node counts ", in.count, " children of ",
                                            children));
  }
  ++*inners;
  return absl::OkStatus();
}

absl::Status RegionBackend::TagMap::Check() const {
  uint64_t tags = 0, inners = 0, smalls = 0, bigs = 0;
  if (root_ != kNil) {
    absl::Status st = CheckIn(root_, levels_ - 1, 0, &tags, &inners, &smalls, &bigs);
    if (!st.ok()) return st;
  }
  if (tags != tag_count_ || inners != inner_count_ || smalls != small_count_ ||
      bigs != big_count_) {
    return absl::InternalError(absl::StrCat("tag map counts ", tags, "/", inners, "/", smalls, "/",
                                            bigs, ", recorded ", tag_count_, "/", inner_count_,
                                            "/", small_count_, "/", big_count_));
  }
  return absl::OkStatus();
}

// ---------------------------------------------------------------------------
// Extent nodes and the size index

ABSL_ATTRIBUTE_ALWAYS_INLINE inline uint32_t RegionBackend::NewExtent(uint64_t first,
                                                                      uint64_t pages) {
  uint32_t x;
  if (free_extent_ != kNil) {
    x = free_extent_;
    free_extent_ = extents_[x].link[1];
  } else {
    // Node indices share the tags with live lengths: below kLiveTag.
    if (extents_.size() >= kLiveTag) throw std::length_error("RegionBackend: too many extents");
    x = static_cast<uint32_t>(extents_.size());
    extents_.emplace_back();
  }
  Extent& e = extents_[x];
  e.first = first;
  e.pages = pages;
  ++extent_count_;
  return x;
}

ABSL_ATTRIBUTE_ALWAYS_INLINE inline void RegionBackend::DeleteExtent(uint32_t x) {
  extents_[x].pages = 0;
  extents_[x].link[1] = free_extent_;
  free_extent_ = x;
  --extent_count_;
}

// Exact bins: doubly-linked LIFO lists, updated without data-dependent
// branches (a missing neighbour's link is written to scratch_ instead).
// Exact bins: doubly-linked LIFO lists, updated without data-dependent
// branches: a missing neighbour's link is written to scratch_ instead, the
// address picked with a mask (compilers turn a ?: of addresses into a
// branch, mispredicted about every other time here).
ABSL_ATTRIBUTE_ALWAYS_INLINE inline uint32_t* RegionBackend::LinkOr(uint32_t x, int i,
                                                                      uint32_t* other) {
  const uintptr_t mask = uintptr_t{0} - (x != kNil ? 1 : 0);
  const uintptr_t link = reinterpret_cast<uintptr_t>(extents_.data()) +
                         uintptr_t{x} * sizeof(Extent) + offsetof(Extent, link) +
                         static_cast<uintptr_t>(i) * sizeof(uint32_t);
  return reinterpret_cast<uint32_t*>((link & mask) | (reinterpret_cast<uintptr_t>(other) & ~mask));
}

ABSL_ATTRIBUTE_ALWAYS_INLINE inline void RegionBackend::BinLink(uint32_t x, uint64_t pages) {
  const uint64_t bin = pages - 1;
  const uint32_t head = bin_head_[bin];
  Extent& e = extents_[x];
  e.link[0] = kNil;
  e.link[1] = head;
  *LinkOr(head, 0, &scratch_) = x;
  bin_head_[bin] = x;
  bin_words_[bin / 64] |= uint64_t{1} << (bin % 64);
  bin_summary_ |= uint64_t{1} << (bin / 64);
}

ABSL_ATTRIBUTE_ALWAYS_INLINE inline void RegionBackend::BinUnlink(uint32_t x,
                                                                    uint64_t pages) {
  const uint64_t bin = pages - 1;
  const uint32_t prev = extents_[x].link[0];
  const uint32_t next = extents_[x].link[1];
  *LinkOr(next, 0, &scratch_) = prev;
  *LinkOr(prev, 1, &bin_head_[bin]) = next;
  uint64_t& word = bin_words_[bin / 64];
  word &= ~(uint64_t{bin_head_[bin] == kNil} << (bin % 64));
  bin_summary_ &= ~(uint64_t{word == 0} << (bin / 64));
}

ABSL_ATTRIBUTE_ALWAYS_INLINE inline void RegionBackend::IndexInsert(uint32_t x) {
  const uint64_t pages = extents_[x].pages;
  if (IsLarge(pages)) {
    AvlInsert(x);
    ++large_count_;
  } else {
    BinLink(x, pages);
  }
}

ABSL_ATTRIBUTE_ALWAYS_INLINE inline void RegionBackend::IndexRemove(uint32_t x) {
  const uint64_t pages = extents_[x].pages;
  if (IsLarge(pages)) {
    AvlErase(x);
    --large_count_;
  } else {
    BinUnlink(x, pages);
  }
}

void RegionBackend::RekeyLarge(uint32_t x, uint64_t first, uint64_t pages) {
  Extent& e = extents_[x];
  if (!IsLarge(e.pages) || !IsLarge(pages)) {
    IndexRemove(x);
    e.first = first;
    e.pages = pages;
    IndexInsert(x);
    return;
  }
  e.first = first;
  e.pages = pages;
  // In place while the extent stays between its neighbours in the tree
  // (always when it is the only large extent).
  if (large_count_ == 1) return;
  const uint32_t prev = AvlPrev(x);
  const uint32_t next = AvlNext(x);
  if ((prev == kNil || KeyLess(prev, x)) && (next == kNil || KeyLess(x, next))) return;
  AvlErase(x);  // structural: does not look at the key
  AvlInsert(x);
}

ABSL_ATTRIBUTE_ALWAYS_INLINE inline void RegionBackend::Rekey(uint32_t x, uint64_t first,
                                                                uint64_t pages) {
  Extent& e = extents_[x];
  const uint64_t old = e.pages;
  if (ABSL_PREDICT_FALSE(IsLarge(old) || IsLarge(pages))) {
    RekeyLarge(x, first, pages);
    return;
  }
  e.first = first;
  if (old == pages) return;
  BinUnlink(x, old);
  e.pages = pages;
  BinLink(x, pages);
}

ABSL_ATTRIBUTE_ALWAYS_INLINE inline int RegionBackend::NextBin(int bin) const {
  int w = bin / 64;
  const uint64_t m = bin_words_[w] & (~uint64_t{0} << (bin % 64));
  if (m != 0) return w * 64 + __builtin_ctzll(m);
  const uint64_t s = bin_summary_ & (~uint64_t{0} << (w + 1));  // w + 1 <= kBinWords <= 64
  if (s == 0) return -1;
  w = __builtin_ctzll(s);
  return w * 64 + __builtin_ctzll(bin_words_[w]);
}

ABSL_ATTRIBUTE_ALWAYS_INLINE inline uint32_t RegionBackend::FirstAtLeast(uint64_t n) const {
  if (ABSL_PREDICT_TRUE(n <= kExactBinPages)) {
    const int bin = NextBin(static_cast<int>(n - 1));
    if (ABSL_PREDICT_TRUE(bin >= 0)) return bin_head_[bin];
    return avl_root_ == kNil ? kNil : AvlMin(avl_root_);
  }
  uint32_t best = kNil;
  for (uint32_t x = avl_root_; x != kNil;) {
    if (extents_[x].pages >= n) {
      best = x;
      x = extents_[x].link[0];
    } else {
      x = extents_[x].link[1];
    }
  }
  return best;
}

uint32_t RegionBackend::NextBySize(uint32_t x) const {
  const Extent& e = extents_[x];
  if (IsLarge(e.pages)) return AvlNext(x);
  if (e.link[1] != kNil) return e.link[1];
  const int bin = e.pages < kExactBinPages ? NextBin(static_cast<int>(e.pages)) : -1;
  if (bin >= 0) return bin_head_[bin];
  return avl_root_ == kNil ? kNil : AvlMin(avl_root_);
}

// ---------------------------------------------------------------------------
// The AVL tree of large extents, ordered by (pages, first).

bool RegionBackend::KeyLess(uint32_t a, uint32_t b) const {
  const Extent& x = extents_[a];
  const Extent& y = extents_[b];
  return x.pages < y.pages || (x.pages == y.pages && x.first < y.first);
}

void RegionBackend::UpdateHeight(uint32_t x) {
  Extent& e = extents_[x];
  e.height = 1 + std::max(Height(e.link[0]), Height(e.link[1]));
}

void RegionBackend::ReplaceChild(uint32_t parent, uint32_t old_child, uint32_t new_child) {
  if (parent == kNil) {
    avl_root_ = new_child;
  } else {
    Extent& p = extents_[parent];
    p.link[p.link[0] == old_child ? 0 : 1] = new_child;
  }
}

uint32_t RegionBackend::Rotate(uint32_t x, int side) {
  const uint32_t c = extents_[x].link[side];
  const uint32_t inner = extents_[c].link[1 - side];
  extents_[x].link[side] = inner;
  if (inner != kNil) extents_[inner].parent = x;
  extents_[c].link[1 - side] = x;
  extents_[c].parent = extents_[x].parent;
  ReplaceChild(extents_[x].parent, x, c);
  extents_[x].parent = c;
  UpdateHeight(x);
  UpdateHeight(c);
  return c;
}

void RegionBackend::Retrace(uint32_t x) {
  // Restores heights and balance from x up to the root.
  while (x != kNil) {
    const uint32_t l = extents_[x].link[0];
    const uint32_t r = extents_[x].link[1];
    const int32_t balance = Height(l) - Height(r);
    if (balance > 1) {
      if (Height(extents_[l].link[0]) < Height(extents_[l].link[1])) Rotate(l, 1);
      x = Rotate(x, 0);
    } else if (balance < -1) {
      if (Height(extents_[r].link[1]) < Height(extents_[r].link[0])) Rotate(r, 0);
      x = Rotate(x, 1);
    } else {
      UpdateHeight(x);
    }
    x = extents_[x].parent;
  }
}

void RegionBackend::AvlInsert(uint32_t x) {
  Extent& e = extents_[x];
  e.link[0] = e.link[1] = kNil;
  e.height = 1;
  if (avl_root_ == kNil) {
    e.parent = kNil;
    avl_root_ = x;
    return;
  }
  uint32_t cur = avl_root_;
  for (;;) {
    const int dir = KeyLess(x, cur) ? 0 : 1;
    const uint32_t next = extents_[cur].link[dir];
    if (next == kNil) {
      extents_[cur].link[dir] = x;
      e.parent = cur;
      break;
    }
    cur = next;
  }
  Retrace(cur);
}

void RegionBackend::AvlErase(uint32_t x) {
  const Extent e = extents_[x];
  const uint32_t l = e.link[0];
  const uint32_t r = e.link[1];
  if (l != kNil && r != kNil) {
    // The successor y (no left child) takes x's place.
    const uint32_t y = AvlMin(r);
    uint32_t retrace_from = y;
    if (y != r) {
      const uint32_t yp = extents_[y].parent;
      const uint32_t yr = extents_[y].link[1];
      extents_[yp].link[0] = yr;
      if (yr != kNil) extents_[yr].parent = yp;
      extents_[y].link[1] = r;
      extents_[r].parent = y;
      retrace_from = yp;
    }
    extents_[y].link[0] = l;
    extents_[l].parent = y;
    extents_[y].height = e.height;
    extents_[y].parent = e.parent;
    ReplaceChild(e.parent, x, y);
    Retrace(retrace_from);
    return;
  }
  const uint32_t c = l != kNil ? l : r;
  if (c != kNil) extents_[c].parent = e.parent;
  ReplaceChild(e.parent, x, c);
  Retrace(e.parent);
}

uint32_t RegionBackend::AvlMin(uint32_t x) const {
  while (extents_[x].link[0] != kNil) x = extents_[x].link[0];
  return x;
}

uint32_t RegionBackend::AvlMax(uint32_t x) const {
  while (extents_[x].link[1] != kNil) x = extents_[x].link[1];
  return x;
}

uint32_t RegionBackend::AvlNext(uint32_t x) const {
  if (extents_[x].link[1] != kNil) return AvlMin(extents_[x].link[1]);
  uint32_t p = extents_[x].parent;
  while (p != kNil && extents_[p].link[1] == x) {
    x = p;
    p = extents_[p].parent;
  }
  return p;
}

uint32_t RegionBackend::AvlPrev(uint32_t x) const {
  if (extents_[x].link[0] != kNil) return AvlMax(extents_[x].link[0]);
  uint32_t p = extents_[x].parent;
  while (p != kNil && extents_[p].link[0] == x) {
    x = p;
    p = extents_[p].parent;
  }
  return p;
}

// ---------------------------------------------------------------------------
// The backend

ABSL_ATTRIBUTE_ALWAYS_INLINE inline void RegionBackend::TagEnd(uint64_t last, uint32_t x) {
  if (last != range_last_) tags_.Set(Off(last), x);
}

ABSL_ATTRIBUTE_ALWAYS_INLINE inline uint32_t RegionBackend::LiveTag(uint64_t first, uint64_t n) {
  if (ABSL_PREDICT_TRUE(n <= kMaxShortRun)) return kLiveTag | static_cast<uint32_t>(n);
  long_runs_[first] = n;
  return kLiveTag;
}

ABSL_ATTRIBUTE_ALWAYS_INLINE inline uint64_t RegionBackend::LiveLength(uint64_t first,
                                                                      uint32_t tag) const {
  const uint64_t n = tag & ~kLiveTag;
  if (ABSL_PREDICT_TRUE(n != 0)) return n;
  auto it = long_runs_.find(first);
  return it == long_runs_.end() ? 0 : it->second;
}

RegionBackend::RegionBackend(PageRun range)
    : range_(range),
      range_last_(range.pages.value() == 0 ? range.first.value() : range.end().value() - 1),
      tags_(range.pages.value()) {
  std::fill(std::begin(bin_head_), std::end(bin_head_), kNil);
  const uint64_t first = range.first.value();
  const uint64_t pages = range.pages.value();
  if (pages == 0) return;
  // One extent from the range's first to its last frame: no tags.
  const uint32_t x = NewExtent(first, pages);
  IndexInsert(x);
  head_extent_ = x;
  free_pages_ = pages;
  free_superpages_ = SuperpagesIn(first, pages);
}

std::optional<FrameNumber> RegionBackend::Allocate(PageCount pages, AlignOrder align) {
  const uint64_t n = pages.value();
  if (hot_parked_ && n == hot_n_ && align.value() == 0) {
    // Merged, the parked run would be this request's best fit again (see
    // the class comment): hand it out as it is.
    hot_parked_ = false;
    free_pages_ -= n;
    free_superpages_ -= hot_superpages_;
    ++live_count_;
    return FrameNumber(hot_start_);
  }
  return AllocateGeneral(n, align.value());
}

std::optional<FrameNumber> RegionBackend::AllocateGeneral(uint64_t n, unsigned order) {
  if (n == 0) return std::nullopt;
  if (hot_parked_) {
    Flush();
  }
  uint32_t x;
  uint64_t start;
  if (order == 0) {
    x = FirstAtLeast(n);
    if (x == kNil) return std::nullopt;
    const uint64_t first = extents_[x].first;
    const uint64_t size = extents_[x].pages;
    start = first + size - n;  // the top: no split
    if (ABSL_PREDICT_TRUE(size > n && n <= kMaxShortRun)) {
      // Carve the top (Carve's first case, inlined): the extent keeps its
      // first frame; its last frame moves down below the run.
      hot_tag_bytes_ = tags_.bytes();
      const uint64_t last = start + n - 1;
      if (ABSL_PREDICT_FALSE(size >= kSuperPagePages)) {
        free_superpages_ -= SuperpagesIn(first, size) - SuperpagesIn(first, size - n);
      }
      free_pages_ -= n;
      if (n > 1 && last != range_last_) tags_.Clear(Off(last));
      tags_.Set(Off(start), kLiveTag | static_cast<uint32_t>(n));  // n == 1: over the old tag
      tags_.Set(Off(start - 1), x);
      Rekey(x, first, size - n);
      hot_valid_ = true;
      hot_extent_ = x;
      hot_start_ = start;
      hot_n_ = n;
      ++live_count_;
      return FrameNumber(start);
    }
    if (ABSL_PREDICT_TRUE(size == n && n <= kMaxShortRun)) {
      // An exact fit (Carve's last case, inlined): the run replaces the
      // extent, taking over its first-frame tag.
      if (ABSL_PREDICT_FALSE(n >= kSuperPagePages)) free_superpages_ -= SuperpagesIn(first, n);
      free_pages_ -= n;
      if (first == range_.first.value()) head_extent_ = kNil;
      tags_.Set(Off(first), kLiveTag | static_cast<uint32_t>(n));
      const uint64_t last = first + n - 1;
      if (n > 1 && last != range_last_) tags_.Clear(Off(last));
      IndexRemove(x);
      DeleteExtent(x);
      hot_valid_ = false;
      ++live_count_;
      return FrameNumber(first);
    }
  } else {
    x = FindAligned(n, order, &start);
    if (x == kNil) return std::nullopt;
  }
  Carve(x, start, n);
  hot_valid_ = false;
  ++live_count_;
  return FrameNumber(start);
}

uint32_t RegionBackend::FindAligned(uint64_t n, unsigned order, uint64_t* start) const {
  // Extents of at least `sure` pages hold an aligned run wherever they lie.
  const uint64_t slack = order >= 64 ? kMaxFrame : (uint64_t{1} << order) - 1;
  const uint64_t sure = n > kMaxFrame - slack ? kMaxFrame : n + slack;

  // Candidates below `sure`, smallest first: the first that fits is the
  // best fit.
  uint32_t x = FirstAtLeast(n);
  for (int probes = 0; x != kNil && extents_[x].pages < sure; x = NextBySize(x), ++probes) {
    if (probes == kMaxAlignedProbes) break;
    const Extent& e = extents_[x];
    if (std::optional<uint64_t> s = PlaceIn(e.first, e.pages, n, order)) {
      *start = *s;
      return x;
    }
  }
  if (x == kNil) return kNil;  // every extent of n pages or more was probed
  // x is the first candidate not probed yet. Unless it is sure to fit, the
  // probe budget is spent: take the smallest extent that is.
  const uint32_t sure_x = extents_[x].pages >= sure ? x : FirstAtLeast(sure);
  if (sure_x != kNil) {
    // Always fits; checked anyway because `sure` saturates at 2^64 - 1.
    const Extent& e = extents_[sure_x];
    if (std::optional<uint64_t> s = PlaceIn(e.first, e.pages, n, order)) {
      *start = *s;
      return sure_x;
    }
  }

  // Rare: no extent is sure to fit and the probes found nothing. Decide
  // exactly, by whichever search is shorter: the remaining candidates (fewer
  // than the free extents) or the aligned frames of the range.
  const uint64_t last_start = range_.end().value() - n;  // n <= an extent <= the range
  std::optional<uint64_t> first_aligned = AlignUp(range_.first.value(), order);
  if (!first_aligned || *first_aligned > last_start) return kNil;
  const uint64_t positions = order >= 64 ? 1 : ((last_start - *first_aligned) >> order) + 1;
  if (positions < extent_count_) return FindAlignedByPosition(n, order, start);
  for (; x != kNil; x = NextBySize(x)) {
    const Extent& e = extents_[x];
    if (std::optional<uint64_t> s = PlaceIn(e.first, e.pages, n, order)) {
      *start = *s;
      return x;
    }
  }
  return kNil;
}

uint32_t RegionBackend::FindAlignedByPosition(uint64_t n, unsigned order,
                                              uint64_t* start) const {
  // Visits the segment holding each aligned frame, jumping from a segment to
  // the first aligned frame after it: min(aligned frames, segments) lookups.
  // A free extent holds the run iff it does at its first aligned frame.
  // Keeps the smallest fitting extent, the lowest among equals.
  uint32_t best = kNil;
  const uint64_t range_first = range_.first.value();
  const uint64_t range_end = range_.end().value();
  const uint64_t last_start = range_end - n;
  std::optional<uint64_t> a = AlignUp(range_first, order);
  while (a && *a <= last_start) {
    uint64_t at;
    uint32_t tag;
    uint32_t x = kNil;
    uint64_t end;
    if (!tags_.Floor(Off(*a), &at, &tag)) {
      x = head_extent_;  // no tag at or before a: the untagged extent at the start
      if (x == kNil) break;
      end = extents_[x].first + extents_[x].pages;
    } else if (tag & kLiveTag) {
      end = range_first + at + LiveLength(range_first + at, tag);
    } else {
      x = tag;
      end = extents_[x].first + extents_[x].pages;
    }
    if (x != kNil && *a + n <= end && (best == kNil || extents_[x].pages < extents_[best].pages)) {
      best = x;
    }
    if (end > last_start) break;
    a = AlignUp(end, order);
  }
  if (best == kNil) return kNil;
  *start = *PlaceIn(extents_[best].first, extents_[best].pages, n, order);
  return best;
}

void RegionBackend::Carve(uint32_t x, uint64_t start, uint64_t n) {
  const uint64_t first = extents_[x].first;
  const uint64_t pages = extents_[x].pages;
  const uint64_t last = first + pages - 1;
  const uint64_t head = start - first;
  const uint64_t tail = last - (start + n - 1);
  free_superpages_ += SuperpagesIn(first, head) + SuperpagesIn(start + n, tail) -
                      SuperpagesIn(first, pages);
  free_pages_ -= n;
  const uint32_t live = LiveTag(start, n);
  if (head != 0 && tail == 0) {
    // The top: the extent keeps its first frame; its last frame moves down.
    if (n > 1 && last != range_last_) tags_.Clear(Off(last));
    tags_.Set(Off(start), live);  // for n == 1, over the old last-frame tag
    tags_.Set(Off(start - 1), x);
    Rekey(x, first, head);
  } else if (head == 0 && tail != 0) {
    // The bottom: the run takes over the extent's first frame.
    if (first == range_.first.value()) head_extent_ = kNil;
    tags_.Set(Off(first), live);
    tags_.Set(Off(start + n), x);
    Rekey(x, start + n, tail);
  } else if (head != 0) {
    // The middle (aligned): the head stays x, the tail is a new extent.
    tags_.Set(Off(start - 1), x);
    tags_.Set(Off(start), live);
    const uint32_t t = NewExtent(start + n, tail);
    IndexInsert(t);
    tags_.Set(Off(start + n), t);
    TagEnd(last, t);  // over x's old last-frame tag
    Rekey(x, first, head);
  } else {
    // An exact fit.
    if (first == range_.first.value()) head_extent_ = kNil;
    tags_.Set(Off(first), live);
    if (n > 1 && last != range_last_) tags_.Clear(Off(last));
    IndexRemove(x);
    DeleteExtent(x);
  }
}

ABSL_ATTRIBUTE_ALWAYS_INLINE inline bool RegionBackend::FreeSlow(uint64_t first,
                                                                     uint64_t n) {
  const uint64_t range_first = range_.first.value();
  const uint64_t total = range_.pages.value();
  if (n == 0 || first < range_first || first - range_first >= total ||
      n > total - (first - range_first)) {
    return false;
  }
  const uint32_t tag = tags_.Get(Off(first));
  if ((tag & kLiveTag) == 0 || tag == kNoTag || LiveLength(first, tag) != n) return false;
  // The neighbours: a free extent ends at first - 1 or starts at last + 1
  // exactly if that frame holds its tag.
  const uint64_t last = first + n - 1;
  static_assert(kNoTag == kNil, "an absent tag reads as no neighbour");
  uint32_t left = first != range_first ? tags_.Get(Off(first - 1)) : kNoTag;
  uint32_t right = last != range_last_ ? tags_.Get(Off(last + 1)) : kNoTag;
  left = (left & kLiveTag) == 0 ? left : kNil;
  right = (right & kLiveTag) == 0 ? right : kNil;
  if (tag == kLiveTag) long_runs_.erase(first);
  --live_count_;
  free_pages_ += n;
  hot_valid_ = false;

  if (left != kNil && right != kNil) {
    // The left extent swallows the run and the right extent.
    const uint64_t l_first = extents_[left].first;
    const uint64_t l_pages = extents_[left].pages;
    const uint64_t r_pages = extents_[right].pages;
    const uint64_t r_last = last + r_pages;
    const uint64_t merged = l_pages + n + r_pages;
    free_superpages_ += SuperpagesIn(l_first, merged) - SuperpagesIn(l_first, l_pages) -
                        SuperpagesIn(last + 1, r_pages);
    // The left extent's last-frame tag goes, unless it is its first-frame
    // tag too; the right extent's first-frame tag goes, unless it is its
    // last-frame tag too, which now names the merged extent.
    if (l_first != first - 1 || l_first == range_first) tags_.Clear(Off(first - 1));
    tags_.Clear(Off(first));
    if (r_pages == 1 && r_last != range_last_) {
      tags_.Set(Off(r_last), left);
    } else {
      tags_.Clear(Off(last + 1));
      TagEnd(r_last, left);
    }
    IndexRemove(right);
    DeleteExtent(right);
    Rekey(left, l_first, merged);
  } else if (left != kNil) {
    const uint64_t l_first = extents_[left].first;
    const uint64_t l_pages = extents_[left].pages;
    free_superpages_ += SuperpagesIn(l_first, l_pages + n) - SuperpagesIn(l_first, l_pages);
    if (l_first != first - 1 || l_first == range_first) tags_.Clear(Off(first - 1));
    if (last == range_last_) {
      tags_.Clear(Off(first));
    } else if (n == 1) {
      tags_.Set(Off(first), left);
    } else {
      tags_.Clear(Off(first));
      tags_.Set(Off(last), left);
    }
    Rekey(left, l_first, l_pages + n);
  } else if (right != kNil) {
    // The right extent grows down over the run.
    const uint64_t r_pages = extents_[right].pages;
    free_superpages_ += SuperpagesIn(first, n + r_pages) - SuperpagesIn(last + 1, r_pages);
    if (r_pages > 1 || last + r_pages == range_last_) tags_.Clear(Off(last + 1));
    if (first != range_first) {
      tags_.Set(Off(first), right);
    } else {
      tags_.Clear(Off(first));
      head_extent_ = right;
    }
    Rekey(right, first, n + r_pages);
  } else {
    free_superpages_ += SuperpagesIn(first, n);
    const uint32_t x = NewExtent(first, n);
    IndexInsert(x);
    if (first != range_first) {
      tags_.Set(Off(first), x);
    } else {
      tags_.Clear(Off(first));
      head_extent_ = x;
    }
    TagEnd(last, x);
  }
  return true;
}

bool RegionBackend::Free(PageRun run) {
  const uint64_t first = run.first.value();
  const uint64_t n = run.pages.value();
  if (hot_valid_ && first == hot_start_ && n == hot_n_ && !hot_parked_) {
    // Park it: only the counters learn of the merge (see the class comment).
    hot_parked_ = true;
    const Extent& e = extents_[hot_extent_];
    hot_superpages_ = SuperpagesIn(e.first, e.pages + n) - SuperpagesIn(e.first, e.pages);
    free_pages_ += n;
    free_superpages_ += hot_superpages_;
    --live_count_;
    return true;
  }
  return FreeGeneral(first, n);
}

bool RegionBackend::FreeGeneral(uint64_t first, uint64_t n) {
  if (hot_parked_) {
    if (first == hot_start_ && n == hot_n_) return false;  // freed already
    Flush();
  }
  return FreeSlow(first, n);
}

void RegionBackend::Flush() {
  hot_parked_ = false;
  // The counters already describe the merged state; FreeSlow counts again.
  free_pages_ -= hot_n_;
  free_superpages_ -= hot_superpages_;
  ++live_count_;
  const bool freed = FreeSlow(hot_start_, hot_n_);
  (void)freed;  // always: the run is live
}

uint32_t RegionBackend::Largest() const {
  if (avl_root_ != kNil) return AvlMax(avl_root_);
  if (bin_summary_ == 0) return kNil;
  const int w = 63 - __builtin_clzll(bin_summary_);
  return bin_head_[w * 64 + 63 - __builtin_clzll(bin_words_[w])];
}

BackendStats RegionBackend::Stats() const {
  BackendStats s;
  s.total_pages = range_.pages;
  s.free_pages = PageCount(free_pages_);
  const uint32_t largest = Largest();
  uint64_t largest_pages = largest == kNil ? 0 : extents_[largest].pages;
  if (hot_parked_) largest_pages = std::max(largest_pages, extents_[hot_extent_].pages + hot_n_);
  s.largest_free_run = PageCount(largest_pages);
  s.free_runs = extent_count_;
  s.free_superpages = free_superpages_;
  s.metadata_bytes = sizeof(*this) + (hot_parked_ ? hot_tag_bytes_ : tags_.bytes()) +
                     extent_count_ * sizeof(Extent) + long_runs_.size() * kLongRunBytes;
  return s;
}

absl::Status RegionBackend::CheckAvl(uint32_t x, uint32_t parent, int32_t* height,
                                     uint64_t* count, std::vector<uint8_t>* marks) const {
  if (x == kNil) {
    *height = 0;
    return absl::OkStatus();
  }
  if (x >= extents_.size() || (*marks)[x] != 1) {
    return absl::InternalError("AVL tree holds a node that is no extent");
  }
  (*marks)[x] = 4;
  const Extent& e = extents_[x];
  if (e.parent != parent) return absl::InternalError("AVL parent link broken");
  if (!IsLarge(e.pages)) {
    return absl::InternalError(absl::StrCat("extent at frame ", e.first, " with ", e.pages,
                                            " pages is in the AVL tree"));
  }
  if ((e.link[0] != kNil && !KeyLess(e.link[0], x)) ||
      (e.link[1] != kNil && !KeyLess(x, e.link[1]))) {
    return absl::InternalError("AVL tree out of order");
  }
  int32_t hl, hr;
  absl::Status s = CheckAvl(e.link[0], x, &hl, count, marks);
  if (!s.ok()) return s;
  s = CheckAvl(e.link[1], x, &hr, count, marks);
  if (!s.ok()) return s;
  if (e.height != 1 + std::max(hl, hr) || hl - hr > 1 || hr - hl > 1) {
    return absl::InternalError("AVL tree unbalanced or heights wrong");
  }
  *height = e.height;
  ++*count;
  return absl::OkStatus();
}

absl::Status RegionBackend::CheckInvariants() const {
  const uint64_t range_first = range_.first.value();
  const uint64_t range_end = range_.end().value();
  absl::Status status = tags_.Check();
  if (!status.ok()) return status;

  // Walk the segments through the tags. marks: 1 = a free extent met.
  std::vector<uint8_t> marks(extents_.size(), 0);
  uint64_t pos = range_first;  // where the next segment starts
  bool prev_free = false;
  bool expect_end = false;  // the next tag must be end_x's last-frame tag
  uint64_t end_at = 0;
  uint32_t end_x = kNil;
  uint64_t live = 0, extents = 0, free_pages = 0, superpages = 0, long_tags = 0;
  std::string error;
  auto extent = [&](uint32_t x, uint64_t f) -> bool {
    if (x >= extents_.size() || marks[x] != 0) {
      error = absl::StrCat("frame ", f, " names a bad or repeated extent node ", x);
      return false;
    }
    const Extent& e = extents_[x];
    if (e.first != f || e.pages == 0 || e.pages > range_end - f) {
      error = absl::StrCat("extent node ", x, " (", e.first, " +", e.pages,
                           ") does not start at frame ", f, " inside the range");
      return false;
    }
    if (prev_free) {
      error = absl::StrCat("free extent at frame ", f, " is adjacent to (not coalesced with) "
                           "the previous one");
      return false;
    }
    marks[x] = 1;
    ++extents;
    free_pages += e.pages;
    superpages += SuperpagesIn(e.first, e.pages);
    prev_free = true;
    pos = f + e.pages;
    const uint64_t last = pos - 1;
    expect_end = last != range_last_ && last != f;
    end_at = last;
    end_x = x;
    return true;
  };
  if (range_.pages.value() == 0) {
    if (tags_.tag_count() != 0 || head_extent_ != kNil || extent_count_ != 0) {
      return absl::InternalError("an empty range holds extents or tags");
    }
  } else if (head_extent_ != kNil) {
    if (!extent(head_extent_, range_first)) return absl::InternalError(error);
    // A one-frame head extent keeps its last-frame tag at the range's first frame.
    if (extents_[head_extent_].pages == 1 && range_first != range_last_) {
      expect_end = true;
    }
  }
  tags_.ForEach([&](uint64_t off, uint32_t tag) {
    const uint64_t f = range_first + off;
    if (expect_end) {
      if (f != end_at || tag != end_x) {
        error = absl::StrCat("expected the last-frame tag of extent ", end_x, " at frame ",
                             end_at, ", found a tag at frame ", f);
        return false;
      }
      expect_end = false;
      return true;
    }
    if (f != pos) {
      error = absl::StrCat("tag at frame ", f, " inside a segment (the next starts at ", pos, ")");
      return false;
    }
    if (tag & kLiveTag) {
      const uint64_t n = LiveLength(f, tag);
      if (n == 0 || n > range_end - f || (tag == kLiveTag && n <= kMaxShortRun)) {
        error = absl::StrCat("live run at frame ", f, " has a bad length ", n);
        return false;
      }
      long_tags += tag == kLiveTag;
      ++live;
      prev_free = false;
      pos = f + n;
      return true;
    }
    if (f == range_first) {
      error = "the free extent at the range's first frame is tagged there";
      return false;
    }
    return extent(tag, f);
  });
  if (!error.empty()) return absl::InternalError(error);
  if (expect_end) {
    return absl::InternalError(absl::StrCat("missing last-frame tag of extent ", end_x));
  }
  if (range_.pages.value() != 0 && pos != range_end) {
    return absl::InternalError(
        absl::StrCat("segments end at frame ", pos, ", not at the range end"));
  }
  if (long_tags != long_runs_.size()) {
    return absl::InternalError("long-run map and long-run tags disagree");
  }

  // The counters, with a parked hot run counted as merged.
  const uint64_t parked = hot_parked_ ? hot_n_ : 0;
  if (hot_valid_) {
    const uint32_t x = hot_extent_;
    const uint64_t run_end = hot_start_ + hot_n_;
    const bool next_free = run_end != range_end && (tags_.Get(Off(run_end)) & kLiveTag) == 0;
    if (x >= marks.size() || marks[x] != 1 ||
        extents_[x].first + extents_[x].pages != hot_start_ ||
        tags_.Get(Off(hot_start_)) != (kLiveTag | hot_n_) || next_free) {
      return absl::InternalError("the hot run is not a live run at the top of its extent");
    }
    if (hot_parked_ &&
        hot_superpages_ != SuperpagesIn(extents_[x].first, extents_[x].pages + hot_n_) -
                               SuperpagesIn(extents_[x].first, extents_[x].pages)) {
      return absl::InternalError("the parked hot run's superpage count is wrong");
    }
  } else if (hot_parked_) {
    return absl::InternalError("a hot run is parked but not valid");
  }
  if (extents != extent_count_ || live != live_count_ + (hot_parked_ ? 1 : 0)) {
    return absl::InternalError(absl::StrCat("counted ", extents, " extents and ", live,
                                            " live runs, recorded ", extent_count_, " and ",
                                            live_count_));
  }
  if (free_pages + parked != free_pages_) {
    return absl::InternalError(absl::StrCat("free page count ", free_pages_,
                                            " but the free extents hold ", free_pages));
  }
  if (superpages + (hot_parked_ ? hot_superpages_ : 0) != free_superpages_) {
    return absl::InternalError(absl::StrCat("free superpage count ", free_superpages_,
                                            " but the free extents hold ", superpages));
  }

  // Node pool: every slot is either a free extent or on the free list.
  uint64_t free_slots = 0;
  for (uint32_t x = free_extent_; x != kNil; x = extents_[x].link[1]) {
    if (x >= extents_.size() || marks[x] != 0) {
      return absl::InternalError("node free list is broken");
    }
    marks[x] = 2;
    if (++free_slots > extents_.size()) return absl::InternalError("node free list loops");
  }
  if (free_slots + extent_count_ != extents_.size()) {
    return absl::InternalError("node slots are neither in use nor free");
  }

  // Exact bins and their bitmap.
  uint64_t indexed = 0;
  for (uint64_t bin = 0; bin < kExactBinPages; ++bin) {
    const bool bit = (bin_words_[bin / 64] >> (bin % 64)) & 1;
    if (bit != (bin_head_[bin] != kNil)) {
      return absl::InternalError(absl::StrCat("bitmap bit of bin ", bin, " is wrong"));
    }
    uint32_t prev = kNil;
    for (uint32_t x = bin_head_[bin]; x != kNil; x = extents_[x].link[1]) {
      if (x >= extents_.size() || marks[x] != 1) {
        return absl::InternalError(absl::StrCat("bin ", bin, " holds a node that is no extent"));
      }
      marks[x] = 3;
      if (extents_[x].pages != bin + 1 || extents_[x].link[0] != prev) {
        return absl::InternalError(absl::StrCat("bin ", bin, " is broken at node ", x));
      }
      prev = x;
      ++indexed;
    }
  }
  for (int w = 0; w < kBinWords; ++w) {
    if (((bin_summary_ >> w) & 1) != (bin_words_[w] != 0 ? 1u : 0u)) {
      return absl::InternalError("bin summary bitmap is wrong");
    }
  }
  if (bin_summary_ >> kBinWords != 0) return absl::InternalError("bin summary has stray bits");

  // The AVL tree of large extents.
  int32_t height;
  uint64_t large = 0;
  status = CheckAvl(avl_root_, kNil, &height, &large, &marks);
  if (!status.ok()) return status;
  if (large != large_count_ || indexed + large != extent_count_) {
    return absl::InternalError(absl::StrCat("size index holds ", indexed, " + ", large,
                                            " extents, expected ", extent_count_));
  }
  return absl::OkStatus();
}

}  // namespace l4re_ma
