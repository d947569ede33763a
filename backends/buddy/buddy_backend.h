// backends/buddy/buddy_backend.h: a binary buddy allocator over any range of
// frames, with exact (non power-of-two) run lengths.
//
//   l4re_ma::BuddyBackend buddy({l4re_ma::FrameNumber(0x40000),
//                                l4re_ma::PageCount(262144)});
//   auto f = buddy.Allocate(l4re_ma::PageCount(5), l4re_ma::AlignOrder(0));
//   // 5 pages are charged, not 8; the 3-page tail stays free.
//   if (f) (void)buddy.Free({*f, l4re_ma::PageCount(5)});
#ifndef L4RE_MA_BACKENDS_BUDDY_BUDDY_BACKEND_H_
#define L4RE_MA_BACKENDS_BUDDY_BUDDY_BACKEND_H_

#include <cstdint>
#include <cstddef>
#include <optional>

#include "absl/status/status.h"
#include "absl/strings/string_view.h"
#include "core/page_backend.h"
#include "core/types.h"

namespace l4re_ma {

// BuddyBackend: a binary buddy allocator with exact tails.
//
// Strategy. Free memory is a set of naturally aligned power-of-two blocks
// (absolute alignment: a block of order k starts at a frame that is a
// multiple of 2^k). A fresh backend holds the maximal aligned blocks that fit
// in [first, first + pages), so ranges with unaligned ends work and orders go
// as high as the range allows. Allocate(n, AlignOrder(a)) takes the
// lowest-addressed block of the smallest order K >= max(ceil_log2(n), a),
// hands out its first n frames and gives the tail [n, 2^K) back as aligned
// blocks (one per set bit of 2^K - n), so a 5-page run costs 5 pages. Free
// merges the run with those tail blocks while they are still free, then the
// whole block with its buddy as long as the buddy is a free block of the
// same order; whatever cannot merge goes back as the aligned blocks of the
// run's binary digits. The free set is thus always fully coalesced.
//
// Aligned-head fallback. When no block of order >= max(ceil_log2(n), a) is
// free, a smaller block can still serve the request if its first frame
// happens to be a multiple of 2^a (frame 0 of a fresh pool is aligned to
// every order; a 64-frame block at frame 2^20 is aligned to order 20). The
// fallback takes the smallest order K in [ceil_log2(n), a) with a free
// block starting at a multiple of 2^a, lowest address first, and carves it
// like above. A frame aligned to 2^a inside a free block of order <= a is
// that block's first frame, so looking at block heads is exhaustive: a
// request succeeds iff some free block contains a frame aligned to 2^a with
// n frames of the block behind it (a run that would straddle two free
// blocks is the buddy's usual external fragmentation).
//
// Data structures (no heap allocation after construction):
//  * per order, a hierarchical bitmap of free blocks (64-ary summary tree,
//    padded to the same depth for every order so that its loops never
//    mispredict): insert/remove/lowest block O(log_64 n), i.e. 3-4 words for
//    any real pool; "is my buddy free" O(1); a 64-bit mask of non-empty
//    orders finds the smallest usable order in O(1);
//  * one metadata byte per frame, non-zero only at the first and the last
//    frame of a live run: a start (end) mark and ceil_log2(run length).
//    Since a run starts on a multiple of 2^ceil_log2(length), those two
//    bytes identify it exactly, so Free(run) rejects a double free, a
//    never-allocated run, a part of a run or a wrong length in O(1), before
//    it changes anything.
// About 1.3 bytes per frame in all: ~335 KiB per GiB of managed memory
// (20 MiB for 64 GiB), in one anonymous mapping that the kernel zero-fills
// lazily (2 MiB pages requested for large pools), so that constructing a
// 16 M-frame pool costs microseconds.
//
// Hot block (deferred coalescing). Splitting a 2^K block down to one page
// and merging it back costs O(K) (~18-24 levels in a large empty pool). The
// backend therefore remembers the last single-block run it handed out
// together with the order its merge would reach. When exactly that run is
// freed, it is parked unmerged ("pending") and handed out again if the next
// request asks for a block of the same size and a compatible alignment: a
// 1-page allocate/free loop costs O(1). Any other operation first performs
// the deferred merge (O(K)), so the physical structures are fully coalesced
// except for at most this one block. Stats() accounts for the pending merge
// arithmetically (O(1), no mutation), so every reported number is that of
// the fully coalesced state, and the placement never depends on whether
// Stats() was called. Allocate and Free test for the hot block first and
// only then call their general paths (separate, non-inlined functions), so
// that the hot round trip runs without a stack frame (~4 ns per pair).
//
// Complexity: Allocate (but for the aligned-head fallback below) and Free
// O(log n), O(1) on the hot-block path; the validation of a Free is O(1).
// Stats() O(1). Construction O(log n) plus lazily zeroed memory.
// CheckInvariants() O(n).
// The aligned-head fallback runs only when the O(1) order search fails and
// a > ceil_log2(n); the common path pays one predicted branch for it. For
// each non-empty order j in [ceil_log2(n), a), with F_j free blocks of that
// order and C_j ~ n_frames / 2^a + 1 candidate heads (block indices that are
// multiples of 2^(a-j)), it takes the cheaper way:
//  * a - j < 6: a word-parallel scan, one mask bit every 2^(a-j) blocks,
//    over the non-empty bitmap words enumerated from the first summary
//    level: O(1) per non-empty word, at most min(F_j, n_frames / 2^(j+6))
//    of them, plus O(log_64 n) per run of 64 empty words skipped;
//  * a - j >= 6: a bit test per candidate, O(C_j), if C_j <= F_j, else a
//    leapfrog between set bits and candidates through the summary tree,
//    O(min(F_j, C_j) log_64 n).
// So O(log n) for the huge alignments (a >= log2 of the range: at most one
// candidate per order), e.g. 1 page at order 18 in a 256 MiB pool at 1 GiB;
// the worst case, a small alignment in a pool whose free memory is all
// misaligned single frames, reads every bitmap word of the small orders
// once (measured ~1 us at 2^16 frames, ~13 us at 2^20). A failing request
// leaves the state exactly as it was (a parked hot block is re-split).
//
// Fragmentation. Internal: none; the unused tail of a non-power-of-two
// request is returned to the free lists at once, and an entirely free
// superpage always lies inside one free block. External: the buddy constraint; a free run can
// only be used up to its largest aligned block, so largest_free_run may be
// smaller than the longest run of free frames (two adjacent free blocks that
// are not buddies are never merged). Address-ordered choice within an order
// keeps long-lived allocations packed at low addresses.
//
// Invariants (checked by CheckInvariants()): free blocks lie in the range,
// never overlap allocated blocks or each other, and no two free buddies
// coexist (full coalescing) except for the documented pending hot block;
// every frame is in exactly one free block, allocated block or the pending
// block; metadata bytes are non-zero exactly at the first and last frame of
// each live run, with matching orders; the hot block's recorded merge order
// matches the bitmaps; the counters behind Stats() match the bitmaps.
//
// Thread-safety: none; single-threaded by contract (the pool serializes).
//
// When to choose it: general-purpose physical memory with many alignment
// requests (DMA buffers, superpages): any alignment up to the largest free
// block is served in O(log n) without scanning (larger ones by the fallback
// above), freed memory coalesces at once, and superpages are preserved
// well. Prefer an extent-based backend when callers need very long
// unaligned runs in a fragmented pool, and a bitmap when the metadata budget
// is tighter than 1.3 bytes per frame.
class BuddyBackend final : public PageBackend {
 public:
  // Manages the frames of `range`, all free. Any first frame and any page
  // count work. REQUIRES: range.first + range.pages does not overflow.
  // Throws std::bad_alloc if the metadata cannot be allocated.
  explicit BuddyBackend(PageRun range);
  ~BuddyBackend() override = default;

  BuddyBackend(const BuddyBackend&) = delete;
  BuddyBackend& operator=(const BuddyBackend&) = delete;

  absl::string_view name() const override { return "buddy"; }
  PageRun range() const override { return range_; }

  // Returns the first frame of `pages` frames aligned to 2^align, or
  // std::nullopt when no free block of order >= ceil_log2(pages) contains a
  // frame aligned to 2^align with `pages` frames behind it in that block
  // (i.e. neither a free block of order max(ceil_log2(pages), align) or
  // larger exists, nor a smaller one of order >= ceil_log2(pages) whose first
  // frame is a multiple of 2^align). Any align < 64 works, including orders
  // above the largest block. Exactly `pages` frames are charged; a failing
  // call changes nothing.
  std::optional<FrameNumber> Allocate(PageCount pages, AlignOrder align) override;

  // Releases exactly a live run returned by Allocate and coalesces it.
  // Returns false, changing nothing, for anything else.
  [[nodiscard]] bool Free(PageRun run) override;

  // Stats of the fully coalesced state, O(1).
  BackendStats Stats() const override;

  // O(n) consistency check of bitmaps, metadata, counters and hot block.
  absl::Status CheckInvariants() const override;

  // The largest block order the range can hold (floor(log2(pages))).
  unsigned max_order() const { return num_orders_ == 0 ? 0 : num_orders_ - 1; }

 private:
  // 64-ary summary levels cover 2^66 bits with 11 levels.
  static constexpr unsigned kMaxLevels = 11;
  static constexpr unsigned kMaxOrders = 64;

  // The free blocks of one order as a hierarchical bitmap. Bit i of level 0
  // stands for the block starting at frame (base + i) << order; bit j of
  // level l + 1 is set iff word j of level l is non-zero. The top level is a
  // single word.
  struct OrderIndex {
    uint64_t base = 0;    // Absolute block number of bit 0.
    uint64_t blocks = 0;  // Block slots covered (some may stick out).
    unsigned levels = 0;
    uint64_t* level[kMaxLevels] = {};
    uint64_t words[kMaxLevels] = {};

    bool Test(uint64_t i) const { return (level[0][i >> 6] >> (i & 63)) & 1; }
    void Set(uint64_t i);
    void Clear(uint64_t i);
    // The lowest set bit. REQUIRES: some bit is set.
    uint64_t FindFirst() const;
    // The lowest set bit >= i of level `from` (0: the blocks; l: the
    // non-empty words of level l - 1), or kNoBit; O(log_64 n).
    uint64_t FindNext(uint64_t i, unsigned from = 0) const;
  };

  // The single remembered run / parked free block (see the class comment).
  enum class HotState : uint8_t { kNone, kAllocated, kPending };
  struct HotBlock {
    uint64_t frame = 0;
    uint64_t pages = 0;  // 2^order.
    uint8_t order = 0;
    // The order its merge reaches: buddies of orders [order, top) are free
    // blocks, the buddy of order `top` is not.
    uint8_t top = 0;
    HotState state = HotState::kNone;
  };

  // A private zero-filled anonymous mapping, unmapped on destruction.
  struct Mapping {
    Mapping() = default;
    Mapping(const Mapping&) = delete;
    Mapping& operator=(const Mapping&) = delete;
    ~Mapping();
    void* addr = nullptr;
    size_t bytes = 0;
  };

  static constexpr uint64_t kNoBit = ~uint64_t{0};

  // Adjusts the counters behind Stats() for `delta` blocks of `order`.
  void Count(unsigned order, int delta);
  // Adds / removes a free block of `order` starting at absolute `frame`
  // (no merging) and updates the counters.
  void InsertBlock(unsigned order, uint64_t frame);
  void RemoveBlock(unsigned order, uint64_t frame);
  // Whether a free block of `order` starts at `frame` (any frame works).
  bool IsFreeBlock(unsigned order, uint64_t frame) const;
  // Adds a free block and merges it with free buddies as far as possible.
  void InsertAndMerge(unsigned order, uint64_t frame);
  // Frees a validated run and coalesces it.
  void ReleaseRun(uint64_t frame, uint64_t pages);
  // Performs the deferred merge of a pending hot block.
  void FlushHot();
  // Undoes FlushHot() (re-splits the merged block and parks the hot block
  // again), so that a failing request leaves the state exactly unchanged.
  void UnflushHot();
  // Allocate and Free without their hot-block paths.
  std::optional<FrameNumber> AllocateGeneral(uint64_t n, unsigned a);
  bool FreeGeneral(uint64_t frame, uint64_t n);
  // Takes block `index` (bit index in orders_[order]) out of the free set,
  // hands out its first n frames, returns the tail and records the hot block.
  uint64_t Carve(unsigned order, uint64_t index, uint64_t n);
  // The slow path of Allocate when no free block of order >= max(c, a)
  // exists: the aligned-head fallback (see the class comment).
  // c = ceil_log2(n). May flush (and on failure restore) a pending hot block.
  std::optional<FrameNumber> AllocateAlignedHead(uint64_t n, unsigned c, unsigned a);
  // The smallest order j in [c, min(a, num_orders_)) with a free block whose
  // first frame is a multiple of 2^a, lowest first; returns its bit index
  // and sets *order, or kNoBit. Looks at the bitmaps only.
  uint64_t FindAlignedHead(unsigned c, unsigned a, unsigned* order) const;
  // Sets / tests / clears the start and end marks of a run (see the .cc).
  void MarkRun(uint64_t frame, uint64_t pages);
  bool IsLiveRun(uint64_t frame, uint64_t pages) const;
  void UnmarkRun(uint64_t frame, uint64_t pages);
  // The largest order of a free block in the coalesced state, or -1.
  int LogicalMaxOrder() const;

  PageRun range_;
  uint64_t first_ = 0;
  uint64_t pages_ = 0;
  uint64_t end_ = 0;
  unsigned num_orders_ = 0;

  // Every level of every OrderIndex, then one metadata byte per frame (see
  // kMeta* in the .cc file), in one mapping.
  Mapping storage_;
  uint64_t* words_ = nullptr;
  uint8_t* meta_ = nullptr;
  uint64_t metadata_bytes_ = 0;

  OrderIndex orders_[kMaxOrders];
  uint64_t count_[kMaxOrders] = {};  // Free blocks per order.
  uint64_t nonempty_mask_ = 0;       // Bit k set iff count_[k] > 0.
  // Totals over the bitmaps (the pending hot block is not in them).
  uint64_t free_pages_ = 0;
  uint64_t free_blocks_ = 0;
  uint64_t free_superpages_ = 0;

  HotBlock hot_;
};

}  // namespace l4re_ma

#endif  // L4RE_MA_BACKENDS_BUDDY_BUDDY_BACKEND_H_
