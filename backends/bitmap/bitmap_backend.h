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

#include "absl/base/attributes.h"
#include "absl/status/status.h"
#include "absl/strings/string_view.h"
#include "core/page_backend.h"
#include "core/types.h"

namespace l4re_ma {
namespace bitmap_internal {

inline constexpr uint64_t kNone = ~uint64_t{0};

// A set of bits with 64-ary "some bit set" summaries above it, so that the
// first (last) set bit at or after (before) a position is found in
// O(log64 n) word reads and Set/Clear cost O(1) amortized (a summary bit only
// flips when a whole word below it becomes empty or non-empty).
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
  // The largest set index < before, or kNone.
  uint64_t FindLastSet(uint64_t before) const;
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

// Byte values (0 .. 127) with 64-ary maximum summaries above them: the
// lowest index whose value is at least v is found top-down in one 64-byte
// node (a cache line) per level, compared 16 lanes at a time with SSE2 (8
// with SWAR arithmetic where there is no SSE2): O(log64 n) node reads, 2 for
// 4096 values, 3 for 262144. A change propagates up while a summary
// changes: raising a value costs one compare per level, lowering the
// maximum of a node a vector maximum of its 64 bytes (which LowerKnowing
// takes from a read made in parallel with computing the new value).
class ByteMaxTree {
 public:
  static constexpr unsigned kFanout = 64;

  ByteMaxTree() = default;
  // `n` (>= 1) values, all zero.
  explicit ByteMaxTree(uint64_t n);
  ByteMaxTree(const ByteMaxTree&) = delete;
  ByteMaxTree& operator=(const ByteMaxTree&) = delete;
  ByteMaxTree(ByteMaxTree&&) = default;
  ByteMaxTree& operator=(ByteMaxTree&&) = default;

  unsigned Get(uint64_t i) const { return values_[i]; }
  // REQUIRES: v <= 127.
  void Set(uint64_t i, unsigned v) {
    const unsigned old = values_[i];
    if (v > old) {
      RaiseFrom(i, v);
    } else if (v < old) {
      LowerFrom(0, i, old, v);
    }
  }
  // Set(i, v) for v >= Get(i) / v <= Get(i).
  void Raise(uint64_t i, unsigned v) {
    if (v > values_[i]) RaiseFrom(i, v);
  }
  void Lower(uint64_t i, unsigned v) {
    const unsigned old = values_[i];
    if (v < old) LowerFrom(0, i, old, v);
  }
  // The largest value among the other 63 of i's node (the summary above i
  // would be that if Get(i) were 0). Reading it before a Lower(i, v) takes
  // the node's maximum off that update's critical path (LowerKnowing).
  unsigned SiblingMax(uint64_t i) const;
  // Lower(i, v) given siblings = SiblingMax(i), computed since the last
  // change to i's node.
  void LowerKnowing(uint64_t i, unsigned v, unsigned siblings) {
    const unsigned old = values_[i];
    if (v >= old) return;
    values_[i] = static_cast<uint8_t>(v);
    if (levels_ == 1) return;
    uint8_t& slot = level_[1][i / kFanout];
    const unsigned summary = slot;
    if (summary > old) return;  // old was not the maximum
    const unsigned now = siblings > v ? siblings : v;
    if (now != summary) LowerFrom(1, i / kFanout, summary, now);
  }
  // Many changes at once: Assign values in [lo, hi] (no summaries), then
  // Resummarize(lo, hi) recomputes each affected node once, bottom up.
  void Assign(uint64_t i, unsigned v) { values_[i] = static_cast<uint8_t>(v); }
  void Resummarize(uint64_t lo, uint64_t hi);
  // The lowest i with Get(i) >= v, or kNone. REQUIRES: 1 <= v <= 127.
  uint64_t FindFirstAtLeast(unsigned v) const;
  // The lowest i >= from with Get(i) >= v, or kNone.
  uint64_t FindFirstAtLeastFrom(uint64_t from, unsigned v) const;

  uint64_t size() const { return n_; }
  uint64_t bytes() const { return storage_.capacity() * sizeof(uint64_t); }
  // Recomputes every summary level from the values.
  absl::Status Verify(absl::string_view what) const;

 private:
  static constexpr unsigned kMaxLevels = 12;

  // Store v at values_[i], which holds less / old > v, and update the
  // summaries above it.
  void RaiseFrom(uint64_t i, unsigned v);
  // Entry i of `level`, holding old > v, becomes v.
  void LowerFrom(unsigned level, uint64_t i, unsigned old, unsigned v);
  // The entries [64 * node, 64 * node + 64) of a level.
  const uint8_t* Node(unsigned level, uint64_t node) const {
    return level_[level] + kFanout * node;
  }

  uint64_t n_ = 0;
  unsigned levels_ = 0;
  // All levels back to back in one allocation (64-byte aligned), values
  // first, each padded with zeros to a multiple of 64 entries; the top level
  // has at most 64.
  std::vector<uint64_t> storage_;
  uint8_t* values_ = nullptr;
  uint8_t* level_[kMaxLevels] = {};
  uint64_t count_[kMaxLevels] = {};
};

// Run masks of a word x: a[k] has bit i set iff bits i .. i + 2^k - 1 of x
// are all set (k <= 6; a[6] is bit 0 iff x is all ones).
struct Runs {
  uint64_t a[7];
  Runs() = default;
  explicit Runs(uint64_t x) {
    a[0] = x;
    a[1] = a[0] & (a[0] >> 1);
    a[2] = a[1] & (a[1] >> 2);
    a[3] = a[2] & (a[2] >> 4);
    a[4] = a[3] & (a[3] >> 8);
    a[5] = a[4] & (a[4] >> 16);
    a[6] = a[5] & (a[5] >> 32);
  }
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
//
// The tree is lazy: a changed block is only marked dirty, with all its
// ancestors (MarkDirty stops at the first one already marked, so marking is
// O(1) amortized). Whoever reads the tree first recomputes the dirty nodes,
// and only those, bottom up (the owner's Flush). A node that is not dirty is
// exact, and so is every node below it.
class RunTree {
 public:
  RunTree() = default;
  // `blocks` (>= 1) leaves of `block_bits` (<= 65535) bits each, all zero
  // and clean.
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

  bool Dirty(unsigned level, uint64_t i) const {
    return (dirty_[dirty_offset_[level] + (i >> 6)] >> (i & 63)) & 1;
  }
  void ClearDirty(unsigned level, uint64_t i) {
    dirty_[dirty_offset_[level] + (i >> 6)] &= ~(uint64_t{1} << (i & 63));
  }
  // Marks leaf `leaf` and its ancestors dirty (level 0 starts at word 0).
  void MarkDirty(uint64_t leaf) {
    if (((dirty_[leaf >> 6] >> (leaf & 63)) & 1) == 0) MarkDirtyFrom(leaf);
  }
  void MarkDirtyFrom(uint64_t leaf) {
    uint64_t i = leaf;
    for (unsigned level = 0; level < levels(); ++level, i >>= 1) {
      uint64_t& w = dirty_[dirty_offset_[level] + (i >> 6)];
      const uint64_t bit = uint64_t{1} << (i & 63);
      if ((w & bit) != 0) return;
      w |= bit;
    }
  }
  bool AnyDirty() const { return Dirty(top(), 0); }
  // After clean leaves [lo, hi] changed (and were stored): recomputes their
  // ancestors. REQUIRES: no node is dirty.
  void PropagateRange(uint64_t lo, uint64_t hi);

  uint64_t bytes() const {
    return narrow16_.capacity() * sizeof(uint16_t) + narrow32_.capacity() * sizeof(uint32_t) +
           (wide_.capacity() + offset_.capacity() + count_.capacity() +
            last_length_.capacity() + dirty_.capacity() + dirty_offset_.capacity()) *
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
  // One dirty bit per node, level by level; level l starts at word
  // dirty_offset_[l].
  std::vector<uint64_t> dirty_;
  std::vector<uint64_t> dirty_offset_;
};

}  // namespace bitmap_internal

// BitmapBackend: one bit per frame, summarised so that nothing scans the map.
//
// Strategy. Frame f is bit f - base of a bitmap (1 = free), where base is the
// range's first frame rounded down to a 2 MiB superpage; the bits outside the
// range are permanently "allocated" padding, so every 512-bit block is one
// absolute superpage and one 64-byte cache line. The policy is first fit by
// address, exactly: the lowest frame whose run of `pages` frames is free and
// whose frame number is a multiple of 2^align. Above the bitmap sit:
//   * a key per 64-bit word, kept exact at every moment: the longest free
//     stretch that starts in the word (at its first free bit, or at the
//     word's first bit for a run coming from the word before), followed into
//     the next word, capped at 64. The lowest window of m <= 64 frames starts
//     in the first word whose key is >= m, so a 64-ary byte max-tree over the
//     keys (ByteMaxTree: one cache line per node, compared 16 lanes at a time
//     with SSE2 or 8 with SWAR elsewhere) finds it in one node per level, 2
//     nodes for 1 GiB, 3 for 64 GiB; the window inside the word (or
//     straddling into the next) comes from shift-and window masks and a
//     count-trailing-zeros. Allocating lowers the keys of the one or two
//     words it touches (the longest free run of a word by a branch-free
//     binary search over its power-of-two run masks) and the node maximum
//     above them; freeing raises them to the merged run's length, no
//     recomputation needed. Nothing else is touched for small runs.
//   * a binary segment tree of (prefix-free, suffix-free, longest-free)
//     counters over the 512-frame blocks for the rest: runs of more than 64
//     frames and Stats().largest_free_run. It is lazy: small operations only
//     mark their block dirty (one bit test, usually already set); the tree
//     is brought up to date, dirty nodes only, when a request over 64 frames
//     or Stats() reads it, and operations on long runs keep a clean tree
//     clean at once.
//   * an exact 64-ary hierarchy of "word has an allocated bit", for the
//     superpage count and for following a long run to its end.
// Aligned requests take the lowest unaligned window (from the keys, or from
// the tree above 64 frames) and scan its block's runs word by word with the
// alignment as a bit pattern; a block without an aligned fit is skipped as a
// whole.
//
// Hot run. A run freed right after it was allocated, with nothing in
// between, is parked rather than merged: the counters take the merged state
// at once, the bits wait. The next Allocate of the same length and order (or
// a larger order the run meets) returns it again, which is exactly the first
// fit of the merged state, the state before its allocation; any other call
// merges it first (a real free), and Stats() counts it as merged (the run
// joined with its free neighbours for largest_free_run). An allocate/free
// ping-pong costs a few compares.
//
// Complexity (n frames, m = pages). Allocate(m <= 64, 0): O(log64 n) node
// reads and O(1) word operations, no loops over the map. Free(m <= 64):
// O(1) validation plus O(log64 n) for the keys. Allocate(m > 64, 0) and
// aligned requests: O(log n + m/64) with a clean tree, plus for aligned ones
// O(log n) per block below the result holding a free run of m frames but no
// aligned one (in practice a handful; bounded by n / 512). Bringing the tree
// up to date costs O(log n) per block dirtied since the last time, i.e.
// amortized O(log n) per earlier small operation (one read after k small
// operations: O(min(k, n / 512) log n)). Free(m > 64): O(m/64 + log n).
// Stats(): O(1) plus that amortized refresh. The constructor is O(n/64);
// CheckInvariants() is O(n).
//
// Exact Free validation. A second bitmap marks the first frame of every live
// run. Free(first, pages) succeeds iff `first` is a run start, every frame of
// the run is allocated and none but the first is a run start, and the frame
// after it is free or a run start (a sentinel run start sits on the padding
// bit right after the range): that is exactly a live run, never a part of
// one nor two adjacent ones merged. Both bitmaps have an allocated padding
// word before and two after them, so the small-run paths read a word's
// neighbours without bounds checks.
//
// Metadata per GiB managed (262144 frames): 32 KiB free bitmap + 32 KiB
// run-start bitmap + 4 KiB keys and their tree + 0.5 KiB hierarchy + 6.5 KiB
// block tree (16-bit counters low in the tree) with its dirty bits: 75.8 KiB
// for 1 GiB, 74.8 KiB per GiB for 64 GiB (2.3 bits per page), fixed at
// construction and independent of the load. The run-start bitmap is the
// price of exact Free validation: telling a run start from a run
// continuation needs at least log2((3 + sqrt 5) / 2) ~ 1.39 bits per frame
// in the worst case, so no encoding with one bit per page can validate frees
// exactly.
//
// Fragmentation. First fit keeps allocations packed at low addresses and
// leaves the high end in long runs; freed runs coalesce with their neighbours
// implicitly (the bitmap has no boundaries), so coalescing is immediate and
// complete. Alignment costs no internal fragmentation: an aligned run wastes
// nothing, the frames skipped in front of it stay free.
//
// Invariants: the padding bits are allocated and start no run but the
// sentinel; run starts are allocated frames and every maximal allocated
// stretch begins with one; every key is exact and the key tree is exact; the
// hierarchy is exact; a clean tree node is exact (so is everything below it)
// and the dirty marks are closed upwards; the counters behind Stats() are
// exact, a parked hot run counted as free.
//
// Thread-safety: none (single-threaded by contract; the pool serializes).
//
// When to choose it: memory-tight configurations and large pools, workloads
// with runs of arbitrary (non power-of-two) length or alignment, and where a
// predictable lowest-address placement matters (guest RAM, DMA pools). A
// buddy allocator is still somewhat faster for small power-of-two requests
// at high churn.
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
  // Requests up to this many pages are served from the per-word keys.
  static constexpr uint64_t kMaxKey = 64;

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
  // The last allocated bit before `bit`, or kNone.
  uint64_t PrevUsed(uint64_t bit) const;
  // The lowest bit >= bit whose frame is a multiple of 2^order, or kNone
  // when there is none inside the range.
  uint64_t AlignUp(uint64_t bit, unsigned order) const;

  // Free bits from the first bit of word w on, at most 64 (0 past the end).
  uint64_t PrefixOf(uint64_t w) const;
  // The exact key of word w (see the class comment).
  unsigned KeyOf(uint64_t w) const;
  // The lowest window of `pages` (<= kMaxKey) bits starting in word w.
  // REQUIRES: KeyOf(w) >= pages.
  uint64_t WindowInWord(uint64_t w, uint64_t pages) const;

  // The lowest bit >= from starting `pages` free bits, or kNone.
  // REQUIRES: pages <= kMaxKey or a clean tree.
  uint64_t FindWindow(uint64_t pages, uint64_t from) const;
  // Looks for the lowest window in block `block` starting at or after `from`
  // (inside the block), preceded by `carry` free bits.
  ScanResult ScanBlock(uint64_t block, uint64_t from, uint64_t carry, uint64_t pages) const;
  // The lowest window of `pages` bits whose first frame is a multiple of
  // 2^order, among the free runs that start in [from, end of from's block)
  // or contain `from` (those runs are followed to their true end). If there
  // is none, *resume is where to look next (kNone: nowhere).
  uint64_t ScanBlockAligned(uint64_t from, uint64_t pages, unsigned order,
                            uint64_t* resume) const;
  // The lowest window starting in node (level, i) or in the *carry free bits
  // before it; kNone with *carry = the free bits ending at the node's end.
  // REQUIRES: a clean tree.
  uint64_t SearchNode(unsigned level, uint64_t i, uint64_t* carry, uint64_t pages) const;
  // The same over everything to the right of block `block`.
  uint64_t SearchRight(uint64_t block, uint64_t* carry, uint64_t pages) const;

  // Exact counters of block `block`, from its eight words.
  bitmap_internal::RunSummary ComputeBlock(uint64_t block) const;
  // Recomputes every dirty tree node.
  void FlushTree() const;
  void FlushNode(unsigned level, uint64_t i) const;

  // Allocate and Free past the hot-run shortcut (out of line); the general
  // paths behind them.
  ABSL_ATTRIBUTE_NOINLINE std::optional<FrameNumber> AllocateCold(uint64_t pages,
                                                                  unsigned order);
  ABSL_ATTRIBUTE_NOINLINE bool FreeCold(uint64_t s, uint64_t pages);
  std::optional<FrameNumber> AllocateSlow(uint64_t pages, unsigned order);
  // Allocate(pages <= kMaxKey, order 0), nothing parked.
  std::optional<FrameNumber> AllocateSmall(uint64_t pages);
  bool FreeSlow(uint64_t s, uint64_t pages);
  // Merges the parked hot run into the bitmap (a real free).
  void Unpark();
  // Marks [s, s + pages) allocated as one live run and records it as the hot
  // run (it was the first fit for (pages, order)).
  void Commit(uint64_t s, uint64_t pages, unsigned order);
  // Commit for pages <= kMaxKey, s = 64 w + off: two words at most.
  void CommitSmall(uint64_t w, unsigned off, uint64_t pages, unsigned order);
  // Frees the live run [s, s + pages). REQUIRES: it is one.
  void Release(uint64_t s, uint64_t pages);
  void ReleaseSmall(uint64_t w, unsigned off, uint64_t pages);
  // Free of pages <= kMaxKey: validation and ReleaseSmall.
  bool FreeSmall(uint64_t s, uint64_t pages);
  // Sets the bits [lo, hi) free (value true) or allocated, keeping the word
  // hierarchies exact.
  void FillBits(uint64_t lo, uint64_t hi, bool value);
  void FillWord(uint64_t w, uint64_t mask, bool value);
  // Brings the keys of the words around [s, e) up to date after [s, e) was
  // allocated / freed.
  void LowerKeys(uint64_t s, uint64_t e);
  void RaiseKeys(uint64_t s, uint64_t e);
  void MarkDirty(uint64_t s, uint64_t e);
  // After [s, e) changed, for long runs: keeps a clean tree clean (the
  // blocks' counters and their ancestors at once), else MarkDirty.
  void UpdateTree(uint64_t s, uint64_t e);

  PageRun range_;
  uint64_t base_ = 0;        // frame of bit 0, superpage aligned
  uint64_t first_bit_ = 0;   // range_.first - base_
  uint64_t end_bit_ = 0;     // first_bit_ + range_.pages
  uint64_t blocks_ = 0;
  uint64_t words_ = 0;       // blocks_ * kWordsPerBlock
  uint64_t total_bits_ = 0;  // blocks_ * kBlockBits

  // 1 = free frame / first frame of a live run, one bit per frame, with
  // padding words at indices -1, words_ and words_ + 1 (see the constructor).
  std::vector<uint64_t> free_store_;
  std::vector<uint64_t> starts_store_;
  uint64_t* free_ = nullptr;    // &free_store_[1]
  uint64_t* starts_ = nullptr;  // &starts_store_[1]
  bitmap_internal::BitHierarchy has_used_;  // per word: != ~0
  bitmap_internal::ByteMaxTree keys_;       // per word: KeyOf(w)
  mutable bitmap_internal::RunTree tree_;   // per block, lazy

  // Exact at every moment, the parked hot run counted as free.
  uint64_t free_pages_ = 0;
  uint64_t free_runs_ = 0;
  uint64_t free_superpages_ = 0;

  // The hot run: the last allocation, [hot_start_, hot_start_ + hot_n_),
  // the first fit for (hot_n_, hot_order_), with nothing changed since but
  // possibly its Free, which parked it (hot_parked_): its bits still read
  // allocated, the counters above already describe the merged state. The
  // allocation changed free_runs_ by hot_runs_delta_ and took
  // hot_superpages_ free superpages.
  bool hot_valid_ = false;
  bool hot_parked_ = false;
  unsigned hot_order_ = 0;
  int hot_runs_delta_ = 0;
  uint64_t hot_start_ = 0;
  uint64_t hot_n_ = 0;
  uint64_t hot_superpages_ = 0;
};

}  // namespace l4re_ma

#endif  // L4RE_MA_BACKENDS_BITMAP_BITMAP_BACKEND_H_
