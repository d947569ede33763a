#include "backends/buddy/buddy_backend.h"

#include <sys/mman.h>

#include <algorithm>
#include <limits>
#include <new>
#include <vector>

#include "absl/base/attributes.h"
#include "absl/base/optimization.h"
#include "absl/status/status.h"
#include "absl/strings/str_cat.h"

namespace l4re_ma {
namespace {

// Metadata byte of a frame. A live run of n pages at frame f was carved from
// a block of order >= K = ceil_log2(n), so f is a multiple of 2^K. Its first
// frame holds kMetaStart | K, its last frame kMetaEnd | K (one byte holds
// both when n == 1); every other frame holds 0. That pins the run down
// exactly: an end mark of order K at frame e names the run starting at
// e rounded down to 2^K, so a claimed run (f, n) is live iff f holds the
// start mark and f + n - 1 the end mark, both of order ceil_log2(n).
constexpr uint8_t kMetaStart = 0x80;
constexpr uint8_t kMetaEnd = 0x40;
constexpr uint8_t kMetaOrderMask = 0x3f;

inline unsigned FloorLog2(uint64_t x) { return 63 - __builtin_clzll(x); }
inline unsigned CeilLog2(uint64_t x) { return x <= 1 ? 0 : 64 - __builtin_clzll(x - 1); }

// The marks of the first and last frame of a run of n pages (equal for n == 1).
inline uint8_t StartMark(uint64_t n) {
  return static_cast<uint8_t>(kMetaStart | CeilLog2(n) | (n == 1 ? kMetaEnd : 0));
}
inline uint8_t EndMark(uint64_t n) {
  return static_cast<uint8_t>(kMetaEnd | CeilLog2(n) | (n == 1 ? kMetaStart : 0));
}
inline unsigned Ctz(uint64_t x) { return __builtin_ctzll(x); }
constexpr uint64_t Pow2(unsigned k) { return uint64_t{1} << k; }

// kEvery[s] has one bit every 2^s positions, starting at bit 0 (s < 6).
constexpr uint64_t kEvery[6] = {~uint64_t{0},          0x5555555555555555ULL,
                                0x1111111111111111ULL, 0x0101010101010101ULL,
                                0x0001000100010001ULL, 0x0000000100000001ULL};

}  // namespace

BuddyBackend::Mapping::~Mapping() {
  if (addr != nullptr) munmap(addr, bytes);
}

// Set, Clear and FindFirst are branch-free apart from the loop over the
// levels, whose trip count is the same for every order: with random sizes
// the early exits of a textbook summary tree are mispredicted often.
void BuddyBackend::OrderIndex::Set(uint64_t i) {
  // Setting a summary bit that is already set is harmless.
  for (unsigned l = 0; l < levels; ++l) {
    level[l][i >> 6] |= uint64_t{1} << (i & 63);
    i >>= 6;
  }
}

void BuddyBackend::OrderIndex::Clear(uint64_t i) {
  uint64_t clear = 1;  // Whether the bit at this level goes.
  for (unsigned l = 0; l < levels; ++l) {
    uint64_t& w = level[l][i >> 6];
    w &= ~(clear << (i & 63));
    clear = w == 0;
    i >>= 6;
  }
}

uint64_t BuddyBackend::OrderIndex::FindFirst() const {
  uint64_t i = 0;
  for (unsigned l = levels; l-- > 0;) i = (i << 6) | Ctz(level[l][i]);
  return i;
}

uint64_t BuddyBackend::OrderIndex::FindNext(uint64_t i, unsigned from) const {
  if (i >= (from == 0 ? blocks : words[from - 1])) return kNoBit;
  // Climb until a word holds a set bit at or after the position, ...
  unsigned l = from;
  uint64_t p = i;  // A bit position at level l.
  for (;;) {
    const uint64_t w = p >> 6;
    const uint64_t bits = level[l][w] & (~uint64_t{0} << (p & 63));
    if (bits != 0) {
      p = (w << 6) | Ctz(bits);
      break;
    }
    // Continue with the next word of level l: bit w + 1 of level l + 1.
    if (++l == levels || w + 1 >= words[l - 1]) return kNoBit;
    p = w + 1;
  }
  // ... then descend along the lowest set bits.
  while (l-- > from) p = (p << 6) | Ctz(level[l][p]);
  return p;
}

BuddyBackend::BuddyBackend(PageRun range) : range_(range) {
  first_ = range.first.value();
  pages_ = std::min(range.pages.value(), std::numeric_limits<uint64_t>::max() - first_);
  end_ = first_ + pages_;
  num_orders_ = pages_ == 0 ? 0 : FloorLog2(pages_) + 1;

  // Lay out the bitmap levels of every order in one array. Every order gets
  // as many levels as order 0 needs (the extra top levels are one word), so
  // that the level loops run the same number of times for all orders.
  uint64_t total_words = 0;
  for (unsigned k = 0; k < num_orders_; ++k) {
    OrderIndex& o = orders_[k];
    o.base = first_ >> k;
    o.blocks = ((end_ - 1) >> k) - o.base + 1;
    uint64_t bits = o.blocks;
    do {
      const uint64_t words = (bits + 63) / 64;
      o.words[o.levels++] = words;
      total_words += words;
      bits = words;
    } while (bits > 1 || o.levels < orders_[0].levels);
  }

  if (pages_ > 0) {
    // Anonymous memory is zero-filled lazily: a 64 GiB pool is set up in
    // microseconds. Large pools ask for 2 MiB pages (best effort), which
    // saves most TLB misses of frees at random addresses.
    const size_t bytes = total_words * sizeof(uint64_t) + pages_;
    void* p = mmap(nullptr, bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (p == MAP_FAILED) throw std::bad_alloc();
    storage_.addr = p;
    storage_.bytes = bytes;
    if (bytes >= kSuperPageSize) (void)madvise(p, bytes, MADV_HUGEPAGE);
    words_ = static_cast<uint64_t*>(p);
    meta_ = reinterpret_cast<uint8_t*>(words_ + total_words);
  }
  uint64_t* next = words_;
  for (unsigned k = 0; k < num_orders_; ++k) {
    OrderIndex& o = orders_[k];
    for (unsigned l = 0; l < o.levels; ++l) {
      o.level[l] = next;
      next += o.words[l];
    }
  }
  metadata_bytes_ = pages_ + total_words * sizeof(uint64_t) + sizeof(*this);

  // Seed with the maximal naturally aligned blocks.
  for (uint64_t f = first_; f < end_;) {
    const unsigned align = f == 0 ? 63 : Ctz(f);
    const unsigned k = std::min(align, FloorLog2(end_ - f));
    InsertBlock(k, f);
    f += Pow2(k);
  }
}

inline void BuddyBackend::Count(unsigned order, int delta) {
  if ((count_[order] += delta) == 0) {
    nonempty_mask_ &= ~Pow2(order);
  } else {
    nonempty_mask_ |= Pow2(order);
  }
  free_pages_ += delta * static_cast<int64_t>(Pow2(order));
  free_blocks_ += delta;
  // A block of order >= 9 holds 2^(order - 9) superpages, a smaller one none.
  free_superpages_ += delta * static_cast<int64_t>(Pow2(order) >> kSuperPageOrder);
}

inline void BuddyBackend::InsertBlock(unsigned order, uint64_t frame) {
  OrderIndex& o = orders_[order];
  o.Set((frame >> order) - o.base);
  Count(order, +1);
}

inline void BuddyBackend::RemoveBlock(unsigned order, uint64_t frame) {
  OrderIndex& o = orders_[order];
  o.Clear((frame >> order) - o.base);
  Count(order, -1);
}

inline bool BuddyBackend::IsFreeBlock(unsigned order, uint64_t frame) const {
  const OrderIndex& o = orders_[order];
  // Bits of blocks sticking out of the range are never set, and an index
  // below base wraps around to a huge value.
  const uint64_t i = (frame >> order) - o.base;
  return i < o.blocks && o.Test(i);
}

inline void BuddyBackend::InsertAndMerge(unsigned order, uint64_t frame) {
  while (order + 1 < num_orders_) {
    const uint64_t buddy = frame ^ Pow2(order);
    if (!IsFreeBlock(order, buddy)) break;
    RemoveBlock(order, buddy);
    frame &= ~Pow2(order);
    ++order;
  }
  InsertBlock(order, frame);
}

void BuddyBackend::FlushHot() {
  InsertAndMerge(hot_.order, hot_.frame);
  hot_.state = HotState::kNone;
}

void BuddyBackend::UnflushHot() {
  // FlushHot() merged the parked block with its free buddies of orders
  // [order, top) into one block of order `top` and stopped there (the
  // invariant of the hot block); split it the same way back.
  RemoveBlock(hot_.top, hot_.frame & ~(Pow2(hot_.top) - 1));
  for (unsigned j = hot_.order; j < hot_.top; ++j) {
    InsertBlock(j, (hot_.frame & ~(Pow2(j) - 1)) ^ Pow2(j));
  }
  hot_.state = HotState::kPending;
}

inline void BuddyBackend::MarkRun(uint64_t frame, uint64_t pages) {
  uint8_t* m = &meta_[frame - first_];
  m[pages - 1] = EndMark(pages);
  m[0] = StartMark(pages);
}

inline bool BuddyBackend::IsLiveRun(uint64_t frame, uint64_t pages) const {
  const uint8_t* m = &meta_[frame - first_];
  return m[0] == StartMark(pages) && m[pages - 1] == EndMark(pages);
}

inline void BuddyBackend::UnmarkRun(uint64_t frame, uint64_t pages) {
  uint8_t* m = &meta_[frame - first_];
  m[0] = 0;
  m[pages - 1] = 0;
}

int BuddyBackend::LogicalMaxOrder() const {
  int max_order = nonempty_mask_ == 0 ? -1 : static_cast<int>(FloorLog2(nonempty_mask_));
  if (hot_.state == HotState::kPending) max_order = std::max<int>(max_order, hot_.top);
  return max_order;
}

ABSL_ATTRIBUTE_ALWAYS_INLINE inline uint64_t BuddyBackend::Carve(unsigned k, uint64_t index,
                                                                 uint64_t n) {
  OrderIndex& o = orders_[k];
  o.Clear(index);
  Count(k, -1);
  const uint64_t frame = (o.base + index) << k;
  // Give the tail [n, 2^k) back as aligned blocks of increasing order. Each
  // one's buddy lies in [0, r), which is handed out or already returned, so
  // none of them can merge.
  const uint64_t size = Pow2(k);
  for (uint64_t r = n; r < size; r += r & (~r + 1)) InsertBlock(Ctz(r), frame + r);
  MarkRun(frame, n);

  if ((n & (n - 1)) == 0) {
    // A single block whose buddies of orders [log2 n, k) were just freed
    // and whose buddy of order k is not free (full coalescing).
    hot_ = HotBlock{frame, n, static_cast<uint8_t>(FloorLog2(n)), static_cast<uint8_t>(k),
                    HotState::kAllocated};
  } else {
    hot_.state = HotState::kNone;
  }
  return frame;
}

std::optional<FrameNumber> BuddyBackend::Allocate(PageCount pages, AlignOrder align) {
  const uint64_t n = pages.value();
  const unsigned a = align.value();

  // Hot path: hand the parked block out again.
  // Alignments up to its own order only, so the hot path succeeds exactly
  // when the general path would.
  if (hot_.state == HotState::kPending && n == hot_.pages && a <= hot_.order) {
    MarkRun(hot_.frame, hot_.pages);
    hot_.state = HotState::kAllocated;
    return FrameNumber(hot_.frame);
  }
  // A separate function, so that the hot path needs no stack frame.
  return AllocateGeneral(n, a);
}

ABSL_ATTRIBUTE_NOINLINE std::optional<FrameNumber> BuddyBackend::AllocateGeneral(uint64_t n,
                                                                                 unsigned a) {
  if (n == 0 || n > pages_ || a >= 64) return std::nullopt;
  const unsigned c = CeilLog2(n);
  const unsigned need = std::max(c, a);
  if (hot_.state == HotState::kPending) {
    // Decide on the coalesced state before touching anything, so that a
    // failing request changes nothing.
    if (ABSL_PREDICT_FALSE(static_cast<int>(need) > LogicalMaxOrder())) {
      return AllocateAlignedHead(n, c, a);
    }
    FlushHot();
  }
  const uint64_t usable = nonempty_mask_ & (~uint64_t{0} << need);
  if (ABSL_PREDICT_FALSE(usable == 0)) return AllocateAlignedHead(n, c, a);
  const unsigned k = Ctz(usable);
  return FrameNumber(Carve(k, orders_[k].FindFirst(), n));
}

ABSL_ATTRIBUTE_NOINLINE std::optional<FrameNumber> BuddyBackend::AllocateAlignedHead(
    uint64_t n, unsigned c, unsigned a) {
  // Only blocks of orders [c, a) are left to look at. Without a free block
  // of order >= c (in the coalesced state) nothing can fit.
  if (a <= c || static_cast<int>(c) > LogicalMaxOrder()) return std::nullopt;
  const bool was_pending = hot_.state == HotState::kPending;
  if (was_pending) FlushHot();
  unsigned k = 0;
  const uint64_t index = FindAlignedHead(c, a, &k);
  if (index == kNoBit) {
    if (was_pending) UnflushHot();
    return std::nullopt;
  }
  return FrameNumber(Carve(k, index, n));
}

uint64_t BuddyBackend::FindAlignedHead(unsigned c, unsigned a, unsigned* order) const {
  // Non-empty orders in [c, a); the caller ensures c < a < 64.
  for (uint64_t orders = nonempty_mask_ & (~uint64_t{0} << c) & (Pow2(a) - 1); orders != 0;
       orders &= orders - 1) {
    const unsigned j = Ctz(orders);
    const OrderIndex& o = orders_[j];
    // Bit i is block base + i, whose first frame is a multiple of 2^a iff
    // base + i is a multiple of 2^s: the candidates are i = r + t 2^s.
    const unsigned s = a - j;
    const uint64_t step = Pow2(s);
    const uint64_t r = (0 - o.base) & (step - 1);
    if (r >= o.blocks) continue;  // No aligned head inside the range.
    uint64_t found = kNoBit;
    if (s < 6) {
      // Several candidates per word: test whole words against a mask with
      // one bit every 2^s, visiting only the non-empty words. They are
      // enumerated from the bits of summary level 1 (O(1) each); the
      // summary tree skips runs of 64 empty words.
      const uint64_t mask = kEvery[s] << r;  // r < 2^s: word 0, no bit lost.
      if (o.levels == 1) {
        const uint64_t bits = o.level[0][0] & mask;
        if (bits != 0) found = Ctz(bits);
      }
      for (uint64_t u = o.levels == 1 ? kNoBit : o.FindNext(0, 1); u != kNoBit;
           u = o.FindNext(((u >> 6) + 1) << 6, 1)) {
        // u is a non-empty level-0 word; walk the rest of its level-1 word.
        for (uint64_t nonempty = o.level[1][u >> 6] & (~uint64_t{0} << (u & 63));
             nonempty != 0; nonempty &= nonempty - 1) {
          const uint64_t w = (u & ~uint64_t{63}) | Ctz(nonempty);
          const uint64_t bits = o.level[0][w] & mask;
          if (bits != 0) {
            found = (w << 6) | Ctz(bits);
            break;
          }
        }
        if (found != kNoBit) break;
      }
    } else {
      // At most one candidate per word. Test the candidates directly when
      // they are fewer than the free blocks of this order, else leapfrog:
      // the next set bit, then the next candidate at or after it.
      const uint64_t candidates = ((o.blocks - 1 - r) >> s) + 1;
      if (candidates <= count_[j]) {
        for (uint64_t i = r; i < o.blocks; i += step) {
          if (o.Test(i)) {
            found = i;
            break;
          }
        }
      } else {
        for (uint64_t p = o.FindNext(r); p != kNoBit;) {
          const uint64_t off = (p - r) & (step - 1);
          if (off == 0) {
            found = p;
            break;
          }
          const uint64_t next = p + (step - off);  // <= blocks - 1 + 2^63: no overflow
          if (next >= o.blocks) break;
          p = o.FindNext(next);
        }
      }
    }
    if (found != kNoBit) {
      *order = j;
      return found;
    }
  }
  return kNoBit;
}

bool BuddyBackend::Free(PageRun run) {
  const uint64_t frame = run.first.value();
  const uint64_t n = run.pages.value();

  // Hot path: the remembered run is exactly this one and live, so park it.
  if (hot_.state == HotState::kAllocated && frame == hot_.frame && n == hot_.pages) {
    UnmarkRun(frame, n);
    hot_.state = HotState::kPending;
    return true;
  }
  // A separate function, so that the hot path needs no stack frame.
  return FreeGeneral(frame, n);
}

ABSL_ATTRIBUTE_NOINLINE bool BuddyBackend::FreeGeneral(uint64_t frame, uint64_t n) {
  if (frame < first_ || frame >= end_ || n == 0 || n > end_ - frame ||
      !IsLiveRun(frame, n)) {
    return false;
  }

  if (hot_.state == HotState::kPending) FlushHot();
  hot_.state = HotState::kNone;
  UnmarkRun(frame, n);
  ReleaseRun(frame, n);
  return true;
}

void BuddyBackend::ReleaseRun(uint64_t frame, uint64_t pages) {
  // The run fills the start of the 2^k block it was carved from; the rest of
  // that block was handed back as tail blocks, one per set bit of 2^k - n,
  // in increasing order and address. Merge the run with its tail blocks as
  // long as they are still free, then the whole block with its buddies.
  const unsigned k = CeilLog2(pages);
  uint64_t tail_orders = Pow2(k) - pages;
  uint64_t tail = frame + pages;  // The next tail block.
  while (tail_orders != 0) {
    const unsigned j = Ctz(tail_orders);
    if (!IsFreeBlock(j, tail)) {
      // Stuck at order j: the aligned 2^j block ending at `tail` (the run's
      // last frames plus the tail blocks merged so far) is the lower buddy
      // of a block that is not free. The run's remaining blocks, of orders
      // > j, cannot merge either: the upper buddy of each one overlaps this
      // busy tail block, and a run block's buddy is never below it.
      const uint64_t carry = tail - Pow2(j);
      InsertBlock(j, carry);
      for (uint64_t rest = carry - frame; rest != 0;) {
        const unsigned i = Ctz(rest);  // The block at the end of the rest.
        rest ^= Pow2(i);
        InsertBlock(i, frame + rest);
      }
      return;
    }
    RemoveBlock(j, tail);
    tail += Pow2(j);
    tail_orders &= tail_orders - 1;
  }
  InsertAndMerge(k, frame);
}

BackendStats BuddyBackend::Stats() const {
  BackendStats s;
  s.total_pages = PageCount(pages_);
  uint64_t free_pages = free_pages_;
  uint64_t free_blocks = free_blocks_;
  uint64_t free_superpages = free_superpages_;
  if (hot_.state == HotState::kPending) {
    // The deferred merge: the buddies of orders [order, top) and the parked
    // block become one block of order `top`.
    free_pages += hot_.pages;
    free_blocks = free_blocks - (hot_.top - hot_.order) + 1;
    if (hot_.top >= kSuperPageOrder) {
      free_superpages += Pow2(std::max<unsigned>(hot_.order, kSuperPageOrder) - kSuperPageOrder);
    }
  }
  const int max_order = LogicalMaxOrder();
  s.free_pages = PageCount(free_pages);
  s.largest_free_run = PageCount(max_order < 0 ? 0 : Pow2(max_order));
  s.free_runs = free_blocks;
  s.free_superpages = free_superpages;
  s.metadata_bytes = metadata_bytes_;
  return s;
}

absl::Status BuddyBackend::CheckInvariants() const {
  // Who owns each frame: 0 nobody yet, 1 a free block, 2 an allocated block,
  // 3 the pending hot block.
  std::vector<uint8_t> owner(pages_, 0);
  auto claim = [&](uint64_t frame, unsigned order, uint8_t who) -> absl::Status {
    if (frame < first_ || frame >= end_ || Pow2(order) > end_ - frame) {
      return absl::InternalError(absl::StrCat("block at frame ", frame, " of order ", order,
                                              " sticks out of the range"));
    }
    for (uint64_t x = frame - first_; x < frame - first_ + Pow2(order); ++x) {
      if (owner[x] != 0) {
        return absl::InternalError(absl::StrCat("block at frame ", frame, " of order ", order,
                                                " overlaps another block at frame ",
                                                first_ + x));
      }
      owner[x] = who;
    }
    return absl::OkStatus();
  };

  uint64_t free_pages = 0, free_blocks = 0, free_superpages = 0, mask = 0;
  for (unsigned k = 0; k < kMaxOrders; ++k) {
    if (k >= num_orders_) {
      if (count_[k] != 0) return absl::InternalError(absl::StrCat("count of order ", k));
      continue;
    }
    const OrderIndex& o = orders_[k];
    // Summary levels mirror the level below; padding bits are clear.
    for (unsigned l = 0; l < o.levels; ++l) {
      const uint64_t valid_bits = l == 0 ? o.blocks : o.words[l - 1];
      for (uint64_t w = 0; w < o.words[l]; ++w) {
        for (unsigned b = 0; b < 64; ++b) {
          const uint64_t i = w * 64 + b;
          const bool bit = (o.level[l][w] >> b) & 1;
          const bool want = i >= valid_bits ? false : (l == 0 ? bit : o.level[l - 1][i] != 0);
          if (bit != want) {
            return absl::InternalError(absl::StrCat("order ", k, " level ", l, " bit ", i,
                                                    " is ", bit, ", expected ", want));
          }
        }
      }
    }
    if (o.words[o.levels - 1] != 1) {
      return absl::InternalError(absl::StrCat("order ", k, " top level is not one word"));
    }
    uint64_t count = 0;
    for (uint64_t w = 0; w < o.words[0]; ++w) {
      for (uint64_t bits = o.level[0][w]; bits != 0; bits &= bits - 1) {
        const uint64_t i = w * 64 + Ctz(bits);
        const uint64_t frame = (o.base + i) << k;
        absl::Status st = claim(frame, k, 1);
        if (!st.ok()) return st;
        for (uint64_t x = frame; x < frame + Pow2(k); ++x) {
          if (meta_[x - first_] != 0) {
            return absl::InternalError(
                absl::StrCat("free frame ", x, " has metadata ", int{meta_[x - first_]}));
          }
        }
        const uint64_t bi = ((frame ^ Pow2(k)) >> k) - o.base;
        if (bi < o.blocks && o.Test(bi)) {
          return absl::InternalError(absl::StrCat("free buddies of order ", k, " at frames ",
                                                  frame, " and ", frame ^ Pow2(k),
                                                  " are not merged"));
        }
        ++count;
        free_pages += Pow2(k);
        ++free_blocks;
        if (k >= kSuperPageOrder) free_superpages += Pow2(k - kSuperPageOrder);
      }
    }
    if (count != count_[k]) {
      return absl::InternalError(
          absl::StrCat("order ", k, " holds ", count, " blocks, counter says ", count_[k]));
    }
    if (count != 0) mask |= Pow2(k);
  }
  if (mask != nonempty_mask_ || free_pages != free_pages_ || free_blocks != free_blocks_ ||
      free_superpages != free_superpages_) {
    return absl::InternalError(absl::StrCat(
        "counters disagree with the bitmaps: mask ", nonempty_mask_, " vs ", mask, ", pages ",
        free_pages_, " vs ", free_pages, ", blocks ", free_blocks_, " vs ", free_blocks,
        ", superpages ", free_superpages_, " vs ", free_superpages));
  }

  // Live runs, in address order: a start mark of order K on a multiple of
  // 2^K, zeros, then the matching end mark so that the length has order K.
  for (uint64_t x = 0; x < pages_; ++x) {
    const uint8_t m = meta_[x];
    if (m == 0) continue;
    const uint64_t frame = first_ + x;
    const unsigned order = m & kMetaOrderMask;
    if ((m & kMetaStart) == 0 || order >= num_orders_ || (frame & (Pow2(order) - 1)) != 0) {
      return absl::InternalError(
          absl::StrCat("bad run mark ", int{m}, " at frame ", frame));
    }
    uint64_t y = x;
    if ((m & kMetaEnd) == 0) {
      do {
        ++y;
      } while (y < pages_ && y - x < Pow2(order) && meta_[y] == 0);
    }
    const uint64_t n = y - x + 1;
    if (y >= pages_ || n > Pow2(order) || meta_[y] != EndMark(n) || m != StartMark(n)) {
      return absl::InternalError(
          absl::StrCat("run starting at frame ", frame, " has no matching end mark"));
    }
    for (uint64_t z = x; z <= y; ++z) {
      if (owner[z] != 0) {
        return absl::InternalError(absl::StrCat("live run at frame ", frame,
                                                " overlaps a free block at frame ", first_ + z));
      }
      owner[z] = 2;
    }
    x = y;
  }

  if (hot_.state != HotState::kNone) {
    const uint64_t p = hot_.frame;
    if (hot_.pages != Pow2(hot_.order) || hot_.top < hot_.order || hot_.top >= num_orders_ ||
        p < first_ || p >= end_ || Pow2(hot_.order) > end_ - p || (p & (hot_.pages - 1)) != 0) {
      return absl::InternalError(absl::StrCat("malformed hot block at frame ", p));
    }
    if (hot_.state == HotState::kPending) {
      if (meta_[p - first_] != 0 || meta_[p - first_ + hot_.pages - 1] != 0) {
        return absl::InternalError(absl::StrCat("pending hot block at ", p, " has metadata"));
      }
      absl::Status st = claim(p, hot_.order, 3);
      if (!st.ok()) return st;
    } else {
      if (!IsLiveRun(p, hot_.pages)) {
        return absl::InternalError(
            absl::StrCat("hot block at ", p, " is not a live single-block run"));
      }
    }
    // Its merge chain: free buddies of orders [order, top), then none.
    uint64_t f = p;
    for (unsigned j = hot_.order; j <= hot_.top; ++j) {
      const OrderIndex& o = orders_[j];
      const uint64_t bi = ((f ^ Pow2(j)) >> j) - o.base;
      const bool buddy_free = bi < o.blocks && o.Test(bi);
      if (buddy_free != (j < hot_.top)) {
        return absl::InternalError(absl::StrCat("hot block at ", p, " of order ", hot_.order,
                                                " records merge order ", hot_.top,
                                                " but its buddy of order ", j, " is ",
                                                buddy_free ? "free" : "not free"));
      }
      f &= ~Pow2(j);
    }
  }

  for (uint64_t x = 0; x < pages_; ++x) {
    if (owner[x] == 0) {
      return absl::InternalError(
          absl::StrCat("frame ", first_ + x, " is neither free nor allocated"));
    }
  }
  return absl::OkStatus();
}

}  // namespace l4re_ma
