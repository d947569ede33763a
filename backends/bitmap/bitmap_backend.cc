#include "backends/bitmap/bitmap_backend.h"

#include <algorithm>
#include <cstdio>
#include <cstdlib>

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
// RunTree

RunTree::RunTree(uint64_t blocks, uint64_t block_bits)
    : blocks_(blocks), block_bits_(block_bits) {
  Check(blocks >= 1 && block_bits <= 0xFFFF, "RunTree needs a block and 16-bit leaves");
  uint64_t count = blocks;
  uint64_t size16 = 0, size32 = 0, size64 = 0;
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
    if (count == 1) break;
    count = (count + 1) / 2;
  }
  if (first32_ == ~0u) first32_ = levels();
  if (first64_ == ~0u) first64_ = levels();
  count_.shrink_to_fit();
  last_length_.shrink_to_fit();
  offset_.shrink_to_fit();
  narrow16_.assign(size16, 0);
  narrow32_.assign(size32, 0);
  wide_.assign(size64, 0);
}

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

}  // namespace bitmap_internal

// ---------------------------------------------------------------------------
// BitmapBackend

using bitmap_internal::Check;
using bitmap_internal::kAllOnes;
using bitmap_internal::kNone;
using bitmap_internal::RunSummary;

namespace {

using bitmap_internal::Clz;
using bitmap_internal::Ctz;
using bitmap_internal::Popcount;

// Bit i of the result is set iff bits i .. i+len-1 of x are all set
// (windows inside the word only). REQUIRES: 1 <= len < 64.
inline uint64_t WindowStarts(uint64_t x, uint64_t len) {
  uint64_t have = 1;
  while (have < len && x != 0) {
    const uint64_t shift = std::min(have, len - have);
    x &= x >> shift;
    have += shift;
  }
  return x;
}

// The length of the longest run of set bits of x (0 .. 64).
inline unsigned LongestRun(uint64_t x) {
  if (x == kAllOnes) return 64;
  // a_k: bit i set iff bits i .. i + 2^k - 1 are all set.
  const uint64_t a0 = x;
  const uint64_t a1 = a0 & (a0 >> 1);
  const uint64_t a2 = a1 & (a1 >> 2);
  const uint64_t a3 = a2 & (a2 >> 4);
  const uint64_t a4 = a3 & (a3 >> 8);
  const uint64_t a5 = a4 & (a4 >> 16);
  // Binary search on the answer: `cur` holds the starts of runs of `len`.
  unsigned len = 0;
  uint64_t cur = kAllOnes;
  auto step = [&](uint64_t a, unsigned p) {
    const uint64_t c = cur & (a >> len);
    if (c != 0) {
      cur = c;
      len += p;
    }
  };
  step(a5, 32);
  step(a4, 16);
  step(a3, 8);
  step(a2, 4);
  step(a1, 2);
  step(a0, 1);
  return len;
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
  total_bits_ = blocks_ * kBlockBits;
  const uint64_t words = blocks_ * kWordsPerBlock;

  free_.assign(words, 0);
  starts_.assign(words, 0);
  word_best_.assign(words, 0);
  has_free_ = bitmap_internal::BitHierarchy(words);
  has_used_ = bitmap_internal::BitHierarchy(words);
  tree_ = bitmap_internal::RunTree(blocks_, kBlockBits);

  for (uint64_t w = 0; w < words; ++w) {
    const uint64_t lo = std::max(first_bit_, w * 64);
    const uint64_t hi = std::min(end_bit_, w * 64 + 64);
    const uint64_t value = lo < hi ? WordMask(w, lo, hi) : 0;
    free_[w] = value;
    word_best_[w] = static_cast<uint8_t>(LongestRun(value));
    if (value != 0) has_free_.Set(w);
    if (value != kAllOnes) has_used_.Set(w);
  }
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
  w = has_free_.FindFirstSet(w + 1);
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

uint64_t BitmapBackend::AlignUp(uint64_t bit, unsigned order) const {
  const uint64_t f = base_ + bit;
  if (order >= 64) return f == 0 && bit < end_bit_ ? bit : kNone;
  const uint64_t mask = (uint64_t{1} << order) - 1;
  if (f > kAllOnes - mask) return kNone;
  const uint64_t aligned = ((f + mask) & ~mask) - base_;
  return aligned < end_bit_ ? aligned : kNone;
}

RunSummary BitmapBackend::ComputeBlock(uint64_t block) const {
  const uint64_t* w = &free_[block * kWordsPerBlock];
  const uint8_t* wb = &word_best_[block * kWordsPerBlock];
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
    s.best = std::max<uint64_t>({s.best, run + Ctz(~x), wb[j]});
    run = Clz(~x);
  }
  return RunSummary{s.pre, s.suf, std::max(s.best, run)};
}

void BitmapBackend::FlushPending() const {
  if (pending_ == kNone) return;
  for (unsigned m = pending_words_; m != 0; m &= m - 1) {
    const uint64_t w = pending_ * kWordsPerBlock + Ctz(m);
    word_best_[w] = static_cast<uint8_t>(LongestRun(free_[w]));
  }
  RefreshBlock(pending_);
  pending_ = kNone;
  pending_words_ = 0;
}

void BitmapBackend::RefreshBlock(uint64_t block) const {
  const RunSummary s = ComputeBlock(block);
  if (s != tree_.Get(0, block)) {
    tree_.Set(0, block, s);
    tree_.PropagateFrom(block);
  }
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
      if (pages < 64 && word_best_[w] >= pages) {
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
      if (pages < 64 && word_best_[w] >= pages) {
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

inline void BitmapBackend::FillWord(uint64_t w, uint64_t mask, bool value, bool defer) {
  const uint64_t old = free_[w];
  const uint64_t now = value ? old | mask : old & ~mask;
  free_[w] = now;
  if (defer) {
    pending_words_ |= 1u << (w % kWordsPerBlock);
  } else {
    word_best_[w] = static_cast<uint8_t>(LongestRun(now));
  }
  if (value) {
    if (old == 0) has_free_.Set(w);
    if (now == kAllOnes) has_used_.Clear(w);
  } else {
    if (now == 0) has_free_.Clear(w);
    if (old == kAllOnes) has_used_.Set(w);
  }
}

void BitmapBackend::FillBits(uint64_t lo, uint64_t hi, bool value, bool defer) {
  const uint64_t first = lo >> 6;
  const uint64_t last = (hi - 1) >> 6;
  if (first == last) {
    FillWord(first, RunMask(lo, hi), value, defer);
    return;
  }
  FillWord(first, kAllOnes << (lo & 63), value, defer);
  for (uint64_t w = first + 1; w < last; ++w) FillWord(w, kAllOnes, value, defer);
  FillWord(last, kAllOnes >> (63 - ((hi - 1) & 63)), value, defer);
}

std::optional<FrameNumber> BitmapBackend::Allocate(PageCount pages, AlignOrder align) {
  const uint64_t m = pages.value();
  if (m == 0 || m > free_pages_) return std::nullopt;
  const unsigned order = align.value();
  // Plain one-page requests need only the exact word hierarchy; all others
  // read the tree or word_best_, which must be up to date.
  if (m > 1 || order != 0) FlushPending();
  uint64_t start;
  if (order == 0) {
    start = FindWindow(m, first_bit_);
    if (start == kNone) return std::nullopt;
  } else {
    // First fit over aligned starts: the lowest unaligned window (from the
    // tree) marks the first block worth a look; scan that block's free runs
    // for an aligned fit, else resume past it. Each round rules out a block
    // (or one long run), never a single short run at a time.
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
  Commit(start, m);
  return FrameNumber(base_ + start);
}

void BitmapBackend::Commit(uint64_t s, uint64_t pages) {
  const uint64_t e = s + pages;
  const bool left_free = s > 0 && IsFree(s - 1);
  const bool right_free = e < total_bits_ && IsFree(e);
  // One free run loses [s, e): it vanishes, shrinks or splits in two.
  free_runs_ = free_runs_ + left_free + right_free - 1;

  const uint64_t b0 = s / kBlockBits;
  const uint64_t b1 = (e - 1) / kBlockBits;
  if (b0 == b1) {
    // Defer the block's counters: a free in the same block may undo this.
    if (pending_ != b0) {
      FlushPending();
      pending_ = b0;
    }
    if (BlockFull(b0)) --free_superpages_;
    FillBits(s, e, false, /*defer=*/true);
    starts_[s >> 6] |= uint64_t{1} << (s & 63);
    free_pages_ -= pages;
    return;
  }
  if (pending_ != kNone && pending_ >= b0 && pending_ <= b1) FlushPending();

  // Blocks [full_lo, full_hi) are covered entirely; b0 / b1 may be partial.
  const uint64_t full_lo = (s + kBlockBits - 1) / kBlockBits;
  const uint64_t full_hi = e / kBlockBits;
  uint64_t lost = full_hi - full_lo;  // these were free superpages
  if (b0 < full_lo && BlockFull(b0)) ++lost;
  if (b1 >= full_hi && BlockFull(b1)) ++lost;
  free_superpages_ -= lost;

  FillBits(s, e, false, /*defer=*/false);
  starts_[s >> 6] |= uint64_t{1} << (s & 63);
  free_pages_ -= pages;

  for (uint64_t b = full_lo; b < full_hi; ++b) tree_.Set(0, b, RunSummary{});
  if (b0 < full_lo) tree_.Set(0, b0, ComputeBlock(b0));
  if (b1 >= full_hi) tree_.Set(0, b1, ComputeBlock(b1));
  tree_.PropagateRange(b0, b1);
}

bool BitmapBackend::RaiseBlock(uint64_t block, uint64_t lo, uint64_t hi) {
  // The block gains one free run [cl, cr) (clipped to the block) containing
  // [lo, hi); everything else in it is unchanged, so the exact counters move
  // only where that run touches the block's ends or beats its longest run.
  const uint64_t bstart = block * kBlockBits;
  const uint64_t bend = bstart + kBlockBits;
  uint64_t cl = bstart;
  for (uint64_t w = lo >> 6, mask = (lo & 63) == 0 ? 0 : kAllOnes >> (64 - (lo & 63));;) {
    const uint64_t used = ~free_[w] & mask;
    if (used != 0) {
      cl = (w << 6) + 64 - Clz(used);
      break;
    }
    if (w == bstart >> 6) break;
    --w;
    mask = kAllOnes;
  }
  uint64_t cr = bend;
  if (hi < bend) {
    for (uint64_t w = hi >> 6, mask = kAllOnes << (hi & 63);;) {
      const uint64_t used = ~free_[w] & mask;
      if (used != 0) {
        cr = (w << 6) + Ctz(used);
        break;
      }
      if (++w == bend >> 6) break;
      mask = kAllOnes;
    }
  }
  const uint64_t len = cr - cl;
  const RunSummary old = tree_.Get(0, block);
  const RunSummary now{cl == bstart ? len : old.pre, cr == bend ? len : old.suf,
                       std::max(old.best, len)};
  if (now == old) return false;
  tree_.Set(0, block, now);
  return true;
}

bool BitmapBackend::Free(PageRun run) {
  const uint64_t f = run.first.value();
  const uint64_t m = run.pages.value();
  const uint64_t rf = range_.first.value();
  const uint64_t rn = range_.pages.value();
  if (m == 0 || f < rf || f - rf >= rn || m > rn - (f - rf)) return false;
  const uint64_t s = f - base_;
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

  const bool left_free = s > 0 && IsFree(s - 1);
  const bool right_free = e < total_bits_ && IsFree(e);
  // [s, e) becomes free and merges with free neighbours.
  free_runs_ = free_runs_ + 1 - left_free - right_free;
  starts_[first_word] &= ~start_bit;
  free_pages_ += m;

  const uint64_t b0 = s / kBlockBits;
  const uint64_t b1 = (e - 1) / kBlockBits;
  if (b0 == b1) {
    // The pending block is recomputed later anyway.
    const bool pending = b0 == pending_;
    FillBits(s, e, true, /*defer=*/pending);
    if (BlockFull(b0)) ++free_superpages_;
    if (!pending && RaiseBlock(b0, s, e)) tree_.PropagateFrom(b0);
    return true;
  }
  if (pending_ != kNone && pending_ >= b0 && pending_ <= b1) FlushPending();
  FillBits(s, e, true, /*defer=*/false);
  const uint64_t full_lo = (s + kBlockBits - 1) / kBlockBits;
  const uint64_t full_hi = e / kBlockBits;
  uint64_t gained = full_hi - full_lo;
  for (uint64_t b = full_lo; b < full_hi; ++b) {
    tree_.Set(0, b, RunSummary{kBlockBits, kBlockBits, kBlockBits});
  }
  if (b0 < full_lo) {
    gained += BlockFull(b0);
    RaiseBlock(b0, s, (b0 + 1) * kBlockBits);
  }
  if (b1 >= full_hi) {
    gained += BlockFull(b1);
    RaiseBlock(b1, b1 * kBlockBits, e);
  }
  free_superpages_ += gained;
  tree_.PropagateRange(b0, b1);
  return true;
}

BackendStats BitmapBackend::Stats() const {
  FlushPending();
  BackendStats s;
  s.total_pages = range_.pages;
  s.free_pages = PageCount(free_pages_);
  s.largest_free_run = PageCount(tree_.root().best);
  s.free_runs = free_runs_;
  s.free_superpages = free_superpages_;
  s.metadata_bytes = sizeof(*this) + (free_.capacity() + starts_.capacity()) * sizeof(uint64_t) +
                     word_best_.capacity() + has_free_.bytes() + has_used_.bytes() +
                     tree_.bytes();
  return s;
}

absl::Status BitmapBackend::CheckInvariants() const {
  auto fail = [](auto&&... args) {
    return absl::InternalError(absl::StrCat("bitmap backend: ", args...));
  };
  const uint64_t words = blocks_ * kWordsPerBlock;
  if (free_.size() != words || starts_.size() != words || word_best_.size() != words) {
    return fail("array sizes");
  }

  uint64_t free_count = 0;
  uint64_t runs = 0;
  uint64_t longest = 0;
  uint64_t current = 0;
  uint64_t prev_free = 0;  // bit 63 of the previous word, free / allocated in range
  uint64_t prev_used = 0;
  for (uint64_t w = 0; w < words; ++w) {
    const uint64_t lo = std::max(first_bit_, w * 64);
    const uint64_t hi = std::min(end_bit_, w * 64 + 64);
    const uint64_t valid = lo < hi ? WordMask(w, lo, hi) : 0;
    const uint64_t fr = free_[w];
    const bool deferred = w / kWordsPerBlock == pending_ &&
                          ((pending_words_ >> (w % kWordsPerBlock)) & 1) != 0;
    if ((fr & ~valid) != 0) return fail("padding frame marked free in word ", w);
    if ((starts_[w] & ~valid) != 0) return fail("run start outside the range in word ", w);
    if ((starts_[w] & fr) != 0) return fail("run start on a free frame in word ", w);
    if (has_free_.Test(w) != (fr != 0)) return fail("has_free stale for word ", w);
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
    // Longest free run, bit by bit inside mixed words (independent of the
    // word tricks the backend uses).
    if (fr == kAllOnes) {
      current += 64;
    } else if (fr == 0) {
      current = 0;
    } else {
      uint64_t in_word = 0;
      for (unsigned b = 0, r = 0; b < 64; ++b) {
        if ((fr >> b) & 1) {
          longest = std::max(longest, ++current);
          in_word = std::max<uint64_t>(in_word, ++r);
        } else {
          current = 0;
          r = 0;
        }
      }
      if (word_best_[w] != in_word && !deferred) return fail("word_best stale for word ", w);
    }
    if (!deferred && ((fr == kAllOnes && word_best_[w] != 64) || (fr == 0 && word_best_[w] != 0))) {
      return fail("word_best stale for word ", w);
    }
    longest = std::max(longest, current);
  }
  if (free_count != free_pages_) return fail("free_pages ", free_pages_, " but ", free_count, " free bits");
  if (runs != free_runs_) return fail("free_runs ", free_runs_, " but ", runs, " maximal free runs");

  uint64_t superpages = 0;
  for (uint64_t b = 0; b < blocks_; ++b) {
    bool full = true;
    for (uint64_t j = 0; j < kWordsPerBlock; ++j) full &= free_[b * kWordsPerBlock + j] == kAllOnes;
    if (full != BlockFull(b)) return fail("BlockFull wrong for block ", b);
    superpages += full;
  }
  if (superpages != free_superpages_) {
    return fail("free_superpages ", free_superpages_, " but ", superpages, " free superpages");
  }

  for (absl::Status st : {has_free_.Verify("has_free"), has_used_.Verify("has_used")}) {
    if (!st.ok()) return st;
  }
  if (has_free_.size() != words || has_used_.size() != words) return fail("hierarchy sizes");
  if (pending_ != kNone && pending_ >= blocks_) return fail("pending block out of range");
  if (pending_ == kNone && pending_words_ != 0) return fail("stale words without a pending block");

  if (tree_.count(0) != blocks_) return fail("tree leaf count");
  for (uint64_t b = 0; b < blocks_; ++b) {
    const RunSummary exact = ComputeBlock(b);
    const RunSummary stored = tree_.Get(0, b);
    // The pending block's counters are recomputed before anything reads them.
    if (b != pending_ && stored != exact) {
      return fail("block ", b, " has stale counters (", stored.pre, ",", stored.suf, ",",
                  stored.best, ") vs (", exact.pre, ",", exact.suf, ",", exact.best, ")");
    }
    if (stored.pre > kBlockBits || stored.suf > kBlockBits || stored.best > kBlockBits) {
      return fail("block ", b, " counters exceed the block");
    }
  }
  for (unsigned level = 1; level < tree_.levels(); ++level) {
    if (tree_.count(level) != (tree_.count(level - 1) + 1) / 2) return fail("tree shape");
    for (uint64_t i = 0; i < tree_.count(level); ++i) {
      if (tree_.Get(level, i) != tree_.Combine(level, i)) {
        return fail("tree node (", level, ",", i, ") disagrees with its children");
      }
    }
  }
  const uint64_t root_best = tree_.root().best;
  if (pending_ == kNone && root_best != longest) {
    return fail("root longest run ", root_best, " but the bitmap's is ", longest);
  }
  return absl::OkStatus();
}

}  // namespace l4re_ma
