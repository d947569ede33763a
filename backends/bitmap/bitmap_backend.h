// backends/bitmap/bitmap_backend.h: a hierarchical-bitmap page backend, the
// backend with the smallest bookkeeping, for any run length and alignment.
//
//   l4re_ma::BitmapBackend bitmap({l4re_ma::FrameNumber(0x40000),
//                                  l4re_ma::PageCount(262144)});
//   std::optional<l4re_ma::FrameNumber> f =
//       bitmap.Allocate(l4re_ma::PageCount(300), l4re_ma::AlignOrder(3));
//   if (f) { ...; (void)bitmap.Free({*f, l4re_ma::PageCount(300)}); }
#ifndef L4RE_MA_BACKENDS_BITMAP_BITMAP_BACKEND_H_
#define L4RE_MA_BACKENDS_BITMAP_BITMAP_BACKEND_H_

#include <cstdint>
#include <optional>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/string_view.h"
#include "core/page_backend.h"
#include "core/types.h"

namespace l4re_ma {
namespace bitmap_internal {

inline constexpr uint64_t kNone = ~uint64_t{0};

// A set of bits with 64-ary "some bit set" summaries above it, so that the
// first set bit at or after a position is found in O(log64 n) word reads and
// Set/Clear cost O(1) amortized (a summary bit only flips when a whole word
// below it becomes empty or non-empty).
class BitHierarchy {
 public:
  BitHierarchy() = default;
  // `n` bits, all clear.
  explicit BitHierarchy(uint64_t n);

  bool Test(uint64_t i) const { return (words_[i >> 6] >> (i & 63)) & 1; }
  void Set(uint64_t i);
  void Clear(uint64_t i);
  // The smallest set index >= from, or kNone.
  uint64_t FindFirstSet(uint64_t from) const;
  // Bottom-level word w (bits 64w .. 64w+63).
  uint64_t Word(uint64_t w) const { return words_[w]; }

  uint64_t size() const { return n_; }
  uint64_t bytes() const {
    return (words_.capacity() + offset_.capacity()) * sizeof(uint64_t);
  }
  // Recomputes every summary level from the bottom one.
  absl::Status Verify(absl::string_view what) const;

 private:
  uint64_t n_ = 0;
  // All levels back to back, bottom first; level l starts at offset_[l].
  std::vector<uint64_t> words_;
  std::vector<uint64_t> offset_;  // one entry per level, plus the end
};

// Free-run summary of a stretch of bits: the free run touching its start
// (pre), the one touching its end (suf) and the longest one (best).
struct RunSummary {
  uint64_t pre = 0;
  uint64_t suf = 0;
  uint64_t best = 0;
  friend bool operator==(const RunSummary& a, const RunSummary& b) {
    return a.pre == b.pre && a.suf == b.suf && a.best == b.best;
  }
  friend bool operator!=(const RunSummary& a, const RunSummary& b) { return !(a == b); }
};

// A segment tree of RunSummary over blocks of `block_bits` bits, stored
// level by level (no padding to a power of two) with the narrowest integer
// that holds a level's values: 16 bits while a node spans at most 65535
// bits, then 32, then 64. Node (l, i) covers blocks
// [i << l, min((i + 1) << l, blocks)); its children are 2i and 2i + 1.
class RunTree {
 public:
  RunTree() = default;
  // `blocks` (>= 1) leaves of `block_bits` (<= 65535) bits each, all zero.
  RunTree(uint64_t blocks, uint64_t block_bits);

  unsigned levels() const { return static_cast<unsigned>(count_.size()); }
  unsigned top() const { return levels() - 1; }
  uint64_t count(unsigned level) const { return count_[level]; }
  // Bits covered by node (level, i): all nodes of a level have the same
  // length but the last, which may be shorter.
  uint64_t Length(unsigned level, uint64_t i) const {
    return i + 1 < count_[level] ? block_bits_ << level : last_length_[level];
  }
  // First bit covered by node (level, i).
  uint64_t Start(unsigned level, uint64_t i) const { return (i << level) * block_bits_; }

  RunSummary Get(unsigned level, uint64_t i) const {
    const uint64_t at = offset_[level] + 3 * i;
    if (level < first32_) return Load(&narrow16_[at]);
    if (level < first64_) return Load(&narrow32_[at]);
    return Load(&wide_[at]);
  }
  void Set(unsigned level, uint64_t i, const RunSummary& s) {
    const uint64_t at = offset_[level] + 3 * i;
    if (level < first32_) {
      Store(&narrow16_[at], s);
    } else if (level < first64_) {
      Store(&narrow32_[at], s);
    } else {
      Store(&wide_[at], s);
    }
  }
  RunSummary root() const { return Get(top(), 0); }

  // The summary of two adjacent stretches, `l` of `ll` bits then `r` of `lr`.
  static RunSummary Join(const RunSummary& l, uint64_t ll, const RunSummary& r, uint64_t lr) {
    RunSummary out;
    out.pre = l.pre == ll ? ll + r.pre : l.pre;
    out.suf = r.suf == lr ? lr + l.suf : r.suf;
    out.best = l.best > r.best ? l.best : r.best;
    if (l.suf + r.pre > out.best) out.best = l.suf + r.pre;
    return out;
  }
  // The value node (level, i) must hold given its children. REQUIRES: level > 0.
  RunSummary Combine(unsigned level, uint64_t i) const {
    const unsigned child = level - 1;
    const uint64_t li = 2 * i;
    const RunSummary l = Get(child, li);
    if (li + 1 >= count_[child]) return l;
    // A left child is never a level's last node.
    return Join(l, block_bits_ << child, Get(child, li + 1), Length(child, li + 1));
  }
  // After leaf `leaf` changed: recomputes its ancestors until one is unchanged.
  void PropagateFrom(uint64_t leaf) {
    RunSummary cur = Get(0, leaf);
    uint64_t i = leaf;
    for (unsigned level = 1; level < levels(); ++level) {
      const unsigned child = level - 1;
      const uint64_t sibling = i ^ 1;
      if (sibling < count_[child]) {
        const RunSummary other = Get(child, sibling);
        cur = (i & 1) == 0 ? Join(cur, block_bits_ << child, other, Length(child, sibling))
                           : Join(other, block_bits_ << child, cur, Length(child, i));
      }
      i >>= 1;
      if (cur == Get(level, i)) return;
      Set(level, i, cur);
    }
  }
  // After leaves [lo, hi] changed: recomputes their ancestors.
  void PropagateRange(uint64_t lo, uint64_t hi);

  uint64_t bytes() const {
    return narrow16_.capacity() * sizeof(uint16_t) + narrow32_.capacity() * sizeof(uint32_t) +
           (wide_.capacity() + offset_.capacity() + count_.capacity() +
            last_length_.capacity()) *
               sizeof(uint64_t);
  }

 private:
  template <typename T>
  static RunSummary Load(const T* p) {
    return RunSummary{p[0], p[1], p[2]};
  }
  template <typename T>
  static void Store(T* p, const RunSummary& s) {
    p[0] = static_cast<T>(s.pre);
    p[1] = static_cast<T>(s.suf);
    p[2] = static_cast<T>(s.best);
  }

  uint64_t blocks_ = 0;
  uint64_t block_bits_ = 0;
  unsigned first32_ = 0;  // levels [0, first32_) are 16-bit
  unsigned first64_ = 0;  // levels [first32_, first64_) are 32-bit, the rest 64
  std::vector<uint64_t> count_;        // nodes per level
  std::vector<uint64_t> last_length_;  // bits covered by a level's last node
  std::vector<uint64_t> offset_;       // first value of each level in its array
  std::vector<uint16_t> narrow16_;
  std::vector<uint32_t> narrow32_;
  std::vector<uint64_t> wide_;
};

}  // namespace bitmap_internal

// BitmapBackend: one bit per frame, summarised so that nothing scans the map.
//
// Strategy. Frame f is bit f - base of a bitmap (1 = free), where base is the
// range's first frame rounded down to a 2 MiB superpage; the bits outside the
// range are permanently "allocated" padding, so every 512-bit block is one
// absolute superpage and one 64-byte cache line. Above the bitmap sit:
//   * two exact 64-ary hierarchies over the 64-bit words, "has a free bit"
//     and "has an allocated bit": the next free / allocated frame after any
//     position in O(log64 n) word reads (3 levels for 64 GiB);
//   * one byte per word with the longest free run inside it;
//   * a binary segment tree of (prefix-free, suffix-free, longest-free)
//     counters over the 512-frame blocks: the longest free run is at the
//     root, and the lowest window of any length is found by one root-to-leaf
//     descent and a scan of the leaf's eight words (count-trailing-zeros and
//     shift-and window masks).
// The policy is first fit by address, exactly: the lowest frame whose run of
// `pages` frames is free and whose frame number is a multiple of 2^align.
// Aligned requests take the lowest unaligned window from the tree and scan
// its block's runs word by word with the alignment as a bit pattern; a block
// without an aligned fit is skipped as a whole.
//
// Deferred block. The block of the last one-block allocation is "pending":
// its tree counters (and the per-word bytes of words changed in it) are
// recomputed only when another block is allocated from, when a request needs
// the tree (anything but an unaligned one-page request), or in Stats(). An
// allocation and a free in the same block therefore cost no tree work. Other
// frees update the tree at once.
//
// Complexity (n frames, m = pages). Allocate(1, 0): O(log64 n), plus the
// deferred O(log n) refresh of the previously pending block when the pending
// block changes. Allocate(m, 0): O(log n + m/64). Allocate(m, k > 0): that,
// plus O(log n) for each block below the result holding a free run of m
// frames but no aligned one (in practice a handful; bounded by n / 512).
// Free: O(m/64 + log n), exact validation included. Stats(): O(log n). The
// constructor is O(n/64); CheckInvariants() is O(n).
//
// Exact Free validation. A second bitmap marks the first frame of every live
// run. Free(first, pages) succeeds iff `first` is a run start, every frame of
// the run is allocated and none but the first is a run start, and the frame
// after it is free, a run start, or the end of the range: that is exactly a
// live run, never a part of one nor two adjacent ones merged.
//
// Metadata per GiB managed (262144 frames): 32 KiB free bitmap + 32 KiB
// run-start bitmap + 4 KiB per-word run bytes + 1 KiB word hierarchies +
// 6 KiB block tree (16-bit counters low in the tree), 76 KiB in all (2.4 bits
// per page), fixed at construction and independent of the load; 4.7 MiB for
// 64 GiB. The run-start bitmap is the price of exact Free validation: telling
// a run start from a run continuation needs at least
// log2((3 + sqrt 5) / 2) ~ 1.39 bits per frame in the worst case, so no
// encoding with one bit per page can validate frees exactly.
//
// Fragmentation. First fit keeps allocations packed at low addresses and
// leaves the high end in long runs; freed runs coalesce with their neighbours
// implicitly (the bitmap has no boundaries), so coalescing is immediate and
// complete. Alignment costs no internal fragmentation: an aligned run wastes
// nothing, the frames skipped in front of it stay free.
//
// Invariants: the padding bits are allocated; run starts are allocated
// frames and every maximal allocated stretch begins with one; the word
// hierarchies are exact; the per-word bytes and block counters are exact
// except in the pending block; every inner tree node is the combination of
// its children; the counters behind Stats() are exact.
//
// Thread-safety: none (single-threaded by contract; the pool serializes).
//
// When to choose it: memory-tight configurations and large pools, workloads
// with runs of arbitrary (non power-of-two) length or alignment, and where a
// predictable lowest-address placement matters (guest RAM, DMA pools). A
// buddy allocator is faster for small power-of-two requests at high churn.
class BitmapBackend final : public PageBackend {
 public:
  // REQUIRES: range.end() <= 2^63 (the registry allows at most 2^52).
  explicit BitmapBackend(PageRun range);

  BitmapBackend(const BitmapBackend&) = delete;
  BitmapBackend& operator=(const BitmapBackend&) = delete;

  absl::string_view name() const override { return "bitmap"; }
  PageRun range() const override { return range_; }
  std::optional<FrameNumber> Allocate(PageCount pages, AlignOrder align) override;
  [[nodiscard]] bool Free(PageRun run) override;
  BackendStats Stats() const override;
  absl::Status CheckInvariants() const override;

  // Frames per tree leaf: one 2 MiB superpage, eight words, one cache line.
  static constexpr uint64_t kBlockBits = 512;

 private:
  static constexpr uint64_t kWordsPerBlock = kBlockBits / 64;

  struct ScanResult {
    bool found;
    uint64_t start;  // the window's first bit, when found
    uint64_t carry;  // free bits ending at the block's end, when not found
  };

  bool IsFree(uint64_t bit) const { return (free_[bit >> 6] >> (bit & 63)) & 1; }
  bool IsStart(uint64_t bit) const { return (starts_[bit >> 6] >> (bit & 63)) & 1; }
  bool BlockFull(uint64_t block) const;
  // The first free / allocated bit at or after `bit`; kNone / total_bits_.
  uint64_t NextFree(uint64_t bit) const;
  uint64_t NextUsed(uint64_t bit) const;
  // The lowest bit >= bit whose frame is a multiple of 2^order, or kNone
  // when there is none inside the range.
  uint64_t AlignUp(uint64_t bit, unsigned order) const;

  // The lowest bit >= from starting `pages` free bits, or kNone.
  // REQUIRES: pages == 1 or no block is pending.
  uint64_t FindWindow(uint64_t pages, uint64_t from) const;
  // Looks for the lowest window in block `block` starting at or after `from`
  // (inside the block), preceded by `carry` free bits.
  ScanResult ScanBlock(uint64_t block, uint64_t from, uint64_t carry, uint64_t pages) const;
  // The lowest window of `pages` bits whose first frame is a multiple of
  // 2^order, among the free runs that start in [from, end of from's block)
  // or contain `from` (those runs are followed to their true end). If there
  // is none, *resume is where to look next (kNone: nowhere).
  // REQUIRES: no block is pending (it reads word_best_).
  uint64_t ScanBlockAligned(uint64_t from, uint64_t pages, unsigned order,
                            uint64_t* resume) const;
  // The lowest window starting in node (level, i) or in the *carry free bits
  // before it; kNone with *carry = the free bits ending at the node's end.
  uint64_t SearchNode(unsigned level, uint64_t i, uint64_t* carry, uint64_t pages) const;
  // The same over everything to the right of block `block`.
  uint64_t SearchRight(uint64_t block, uint64_t* carry, uint64_t pages) const;

  // Exact counters of block `block`, from its eight words.
  bitmap_internal::RunSummary ComputeBlock(uint64_t block) const;
  // Stores a block's exact counters and propagates them up the tree.
  void RefreshBlock(uint64_t block) const;
  // Brings the pending block's word_best_ entries and counters (if any) up
  // to date.
  void FlushPending() const;

  // Marks [start, start + pages) allocated as one live run, keeping every
  // counter exact; the block's tree counters are deferred when it is one.
  void Commit(uint64_t start, uint64_t pages);
  // Sets the bits [lo, hi) free (value true) or allocated, keeping the word
  // hierarchies exact. With `defer` ([lo, hi) inside the pending block) the
  // words' word_best_ entries are left for FlushPending().
  void FillBits(uint64_t lo, uint64_t hi, bool value, bool defer);
  void FillWord(uint64_t w, uint64_t mask, bool value, bool defer);
  // After [lo, hi) was freed in block `block`, not pending: raises its
  // counters by the free run now containing [lo, hi). Returns whether they
  // changed.
  bool RaiseBlock(uint64_t block, uint64_t lo, uint64_t hi);

  PageRun range_;
  uint64_t base_ = 0;        // frame of bit 0, superpage aligned
  uint64_t first_bit_ = 0;   // range_.first - base_
  uint64_t end_bit_ = 0;     // first_bit_ + range_.pages
  uint64_t blocks_ = 0;
  uint64_t total_bits_ = 0;  // blocks_ * kBlockBits

  std::vector<uint64_t> free_;    // 1 = free frame
  std::vector<uint64_t> starts_;  // 1 = first frame of a live run
  // Longest free run inside each word (stale for the pending block's words
  // in pending_words_).
  mutable std::vector<uint8_t> word_best_;
  bitmap_internal::BitHierarchy has_free_;  // per word: != 0
  bitmap_internal::BitHierarchy has_used_;  // per word: != ~0
  // The block whose tree counters are not up to date, or kNone, and which of
  // its words have a stale word_best_ entry (bit j: word j of the block).
  mutable uint64_t pending_ = bitmap_internal::kNone;
  mutable unsigned pending_words_ = 0;
  mutable bitmap_internal::RunTree tree_;

  uint64_t free_pages_ = 0;
  uint64_t free_runs_ = 0;
  uint64_t free_superpages_ = 0;
};

}  // namespace l4re_ma

#endif  // L4RE_MA_BACKENDS_BITMAP_BITMAP_BACKEND_H_
