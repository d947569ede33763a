// The rest of ../shared/api-contract.md, point by point: lazy backing and
// its charges, contiguous charges, the maximum strategy, l4re_ds_allocate,
// l4re_ds_clear, l4re_ds_copy_in, sub-allocators and statistics. Each test
// is named after the behaviour; the suite runs once per backend
// (L4RE_MA_BACKEND is set by the BUILD file).
#include <l4/sys/factory.h>
#include <l4/sys/ipc.h>

#include <algorithm>
#include <climits>
#include <cstring>
#include <vector>

#include "tests/api/api_test_util.h"

namespace l4re_ma::testing {
namespace {

constexpr long kPage = 4096;

l4re_ma_stats_t Stats(l4_cap_idx_t srv = l4re_env()->mem_alloc) {
  l4re_ma_stats_t s{};
  EXPECT_EQ(l4re_ma_stats_srv(srv, &s), 0);
  return s;
}

class ContractTest : public ApiTest {
 protected:
  // A sub-allocator with `limit` bytes of quota, in a slot of its own.
  l4_cap_idx_t SubAllocator(unsigned long limit, l4_cap_idx_t parent = l4re_env()->mem_alloc) {
    l4_cap_idx_t cap = NewCap();
    EXPECT_EQ(l4_error(l4_factory_create_factory(parent, cap, limit)), 0);
    return cap;
  }
  l4re_ds_t AllocFrom(l4_cap_idx_t srv, long size, unsigned long flags = 0,
                      unsigned long align = 0) {
    l4re_ds_t ds = NewCap();
    EXPECT_EQ(l4re_ma_alloc_align_srv(srv, size, ds, flags, align), 0) << size;
    return ds;
  }
};

// Allocation point 1: the inline forms use l4re_global_env->mem_alloc.
TEST_F(ContractTest, InlineFormsUseTheEnvironmentsAllocator) {
  l4_cap_idx_t sub = SubAllocator(1 << 20);
  const l4_cap_idx_t root = l4re_global_env->mem_alloc;
  l4re_global_env->mem_alloc = sub;
  l4re_ds_t ds = NewCap();
  const long r = l4re_ma_alloc(8192, ds, L4RE_MA_CONTINUOUS);
  l4re_global_env->mem_alloc = root;
  ASSERT_EQ(r, 0);
  EXPECT_EQ(Stats(sub).quota_used, 8192u) << "charged to the sub-allocator";
}

// Point 5: contiguous charge = size rounded up to max(align, 12) or 21.
TEST_F(ContractTest, ContiguousChargeIsTheSizeRoundedUpToItsPageSize) {
  struct Case {
    long size;
    unsigned long flags, align;
    uint64_t charge;
  } cases[] = {
      {1, L4RE_MA_CONTINUOUS, 0, 4096},
      {4097, L4RE_MA_CONTINUOUS, 0, 8192},
      {4097, L4RE_MA_CONTINUOUS, 16, 65536},
      {4097, L4RE_MA_PINNED | L4RE_MA_SUPER_PAGES, 0, 2 << 20},
      {(2 << 20) + 1, L4RE_MA_CONTINUOUS | L4RE_MA_SUPER_PAGES, 12, 4 << 20},
  };
  for (const Case& c : cases) {
    l4_cap_idx_t sub = SubAllocator(8 << 20);
    AllocFrom(sub, c.size, c.flags, c.align);
    EXPECT_EQ(Stats(sub).quota_used, c.charge) << c.size << " align " << c.align;
    EXPECT_EQ(Stats(sub).mem_used, c.charge);
  }
}

// Point 5: quota is checked before memory is taken.
TEST_F(ContractTest, ContiguousBeyondTheQuotaIsENoMemAndTakesNothing) {
  l4_cap_idx_t sub = SubAllocator(1 << 20);
  const uint64_t pool_free = PoolFree();
  l4re_ds_t ds = NewCap();
  EXPECT_EQ(l4re_ma_alloc_align_srv(sub, (1 << 20) + 1, ds, L4RE_MA_CONTINUOUS, 0), -L4_ENOMEM);
  EXPECT_EQ(PoolFree(), pool_free);
  EXPECT_EQ(Stats(sub).quota_used, 0u);
}

// Point 6: only bookkeeping at allocation; pages on first use.
TEST_F(ContractTest, NoncontiguousPagesAreChargedOnFirstUse) {
  l4_cap_idx_t sub = SubAllocator(64 << 20);
  l4re_ds_t ds = AllocFrom(sub, 32 * kPage);
  const uint64_t bookkeeping = Stats(sub).quota_used;
  EXPECT_GT(bookkeeping, 0u);
  EXPECT_LT(bookkeeping, static_cast<uint64_t>(kPage));
  EXPECT_EQ(Stats(sub).mem_used, 0u);
  // Attach backs the attached range only.
  void* addr = nullptr;
  ASSERT_EQ(l4re_rm_attach(&addr, 4 * kPage, L4RE_RM_F_SEARCH_ADDR | L4RE_RM_F_RW, ds, 8 * kPage,
                           L4_PAGESHIFT),
            0);
  EXPECT_EQ(Stats(sub).mem_used, 4u * kPage);
  // ds_allocate backs its range.
  ASSERT_EQ(l4re_ds_allocate(ds, 0, 2 * kPage), 0);
  EXPECT_EQ(Stats(sub).mem_used, 6u * kPage);
  // The destination of a copy is used.
  l4re_ds_t src = AllocFrom(sub, kPage, L4RE_MA_CONTINUOUS);
  ASSERT_EQ(l4re_ds_copy_in(ds, 20 * kPage, src, 0, kPage), 0);
  EXPECT_EQ(Stats(sub).mem_used, 8u * kPage);  // 6 + 1 copied + 1 contiguous source
  // A partial clear of an unbacked page uses it.
  ASSERT_EQ(l4re_ds_clear(ds, 25 * kPage + 10, 100), 0);
  EXPECT_EQ(Stats(sub).mem_used, 9u * kPage);
  EXPECT_EQ(Stats(sub).quota_used, bookkeeping + 9u * kPage);
  EXPECT_EQ(l4re_rm_detach(addr), 0);
}

TEST_F(ContractTest, ADataspaceFarLargerThanTheQuotaIsCreatedAndFailsWhenBacked) {
  l4_cap_idx_t sub = SubAllocator(1 << 20);
  l4re_ds_t ds = AllocFrom(sub, 1L << 30);
  EXPECT_EQ(l4re_ds_size(ds), 1u << 30);
  EXPECT_EQ(l4re_ds_allocate(ds, 0, 2 << 20), -L4_ENOMEM);
  void* addr = nullptr;
  EXPECT_EQ(l4re_rm_attach(&addr, 2 << 20, L4RE_RM_F_SEARCH_ADDR | L4RE_RM_F_RW, ds, 0,
                           L4_PAGESHIFT),
            -L4_ENOMEM);
  // What fits still works.
  EXPECT_EQ(l4re_ds_allocate(ds, 0, 64 * kPage), 0);
}

TEST_F(ContractTest, ReleasingTheDataspaceReturnsEveryPageAndTheQuota) {
  l4_cap_idx_t sub = SubAllocator(64 << 20);
  l4re_ds_t ds = AllocFrom(sub, 8 << 20);
  ASSERT_EQ(l4re_ds_allocate(ds, 0, 8 << 20), 0);
  EXPECT_EQ(Stats(sub).mem_used, 8u << 20);
  l4re_util_cap_free_um(ds);
  EXPECT_EQ(Stats(sub).mem_used, 0u);
  EXPECT_EQ(Stats(sub).quota_used, 0u);
}

// Point 7: byte-granular size; mappings reach the rounded size; tail is zero.
TEST_F(ContractTest, TheTailUpToTheRoundedSizeIsMappedAndReadsZero) {
  for (unsigned long flags : {0UL, static_cast<unsigned long>(L4RE_MA_CONTINUOUS)}) {
    l4re_ds_t ds = Alloc(5000, flags);
    EXPECT_EQ(l4re_ds_size(ds), 5000u);
    char* p = Attach(ds, 5000);
    for (int i = 5000; i < 8192; ++i) ASSERT_EQ(p[i], 0) << i;
    p[8191] = 1;  // writable up to the rounded size
    EXPECT_EQ(l4re_rm_detach(p), 0);
  }
}

// Point 8: the maximum strategy.
TEST_F(ContractTest, MaximumStrategyLeavesAtLeastTheRequestedAmountAllocatable) {
  l4_cap_idx_t sub = SubAllocator(16 << 20);
  const long keep = 3 << 20;
  l4re_ds_t big = AllocFrom(sub, -keep, L4RE_MA_CONTINUOUS);
  const l4re_ds_size_t got = l4re_ds_size(big);
  EXPECT_GT(got, 0u);
  EXPECT_EQ(got % kPage, 0u) << "the size is what was obtained, a page multiple";
  EXPECT_LE(got, static_cast<l4re_ds_size_t>((16 << 20) - keep));
  l4_addr_t pa;
  l4_size_t ps;
  ASSERT_EQ(l4re_ds_phys(big, 0, &pa, &ps), 0);
  EXPECT_EQ(ps, got) << "one contiguous block";
  // L4Re's own test: a dataspace of `keep` bytes still fits and is backed.
  l4re_ds_t rest = AllocFrom(sub, keep);
  void* addr = nullptr;
  EXPECT_EQ(l4re_rm_attach(&addr, keep, L4RE_RM_F_SEARCH_ADDR | L4RE_RM_F_RW | L4RE_RM_F_EAGER_MAP,
                           rest, 0, L4_PAGESHIFT),
            0);
  std::memset(addr, 1, keep);
  EXPECT_EQ(l4re_rm_detach(addr), 0);
}

TEST_F(ContractTest, MaximumStrategyTakesNearlyEverythingFromTheRoot) {
  const uint64_t free_before = PoolFree();
  l4re_ds_t big = Alloc(-(16L << 20), L4RE_MA_CONTINUOUS);
  const l4re_ds_size_t got = l4re_ds_size(big);
  EXPECT_LE(got, free_before - (16u << 20));
  EXPECT_GE(PoolFree(), 16u << 20);
  l4re_ds_t rest = Alloc(16L << 20);
  EXPECT_EQ(l4re_ds_allocate(rest, 0, 16L << 20), 0);
}

TEST_F(ContractTest, MaximumStrategyWithSuperPagesGivesSuperpageMultiples) {
  l4_cap_idx_t sub = SubAllocator(32 << 20);
  l4re_ds_t big = AllocFrom(sub, -(1L << 20), L4RE_MA_CONTINUOUS | L4RE_MA_SUPER_PAGES);
  EXPECT_EQ(l4re_ds_size(big) % (2u << 20), 0u);
  EXPECT_GT(l4re_ds_size(big), 0u);
  l4_addr_t pa;
  l4_size_t ps;
  ASSERT_EQ(l4re_ds_phys(big, 0, &pa, &ps), 0);
  EXPECT_EQ(pa % (2u << 20), 0u);
}

TEST_F(ContractTest, MaximumStrategyWithNotEnoughLeftIsENoMem) {
  l4_cap_idx_t sub = SubAllocator(1 << 20);
  l4re_ds_t ds = NewCap();
  EXPECT_EQ(l4re_ma_alloc_align_srv(sub, -(1L << 20), ds, L4RE_MA_CONTINUOUS, 0), -L4_ENOMEM);
  EXPECT_EQ(l4re_ma_alloc_align_srv(sub, -(2L << 20), ds, L4RE_MA_CONTINUOUS, 0), -L4_ENOMEM);
  EXPECT_EQ(l4re_ma_alloc_align_srv(sub, LONG_MIN, ds, L4RE_MA_CONTINUOUS, 0), -L4_ENOMEM);
  // Less than one page would remain: nothing to take.
  EXPECT_EQ(l4re_ma_alloc_align_srv(sub, -((1L << 20) - 100), ds, L4RE_MA_CONTINUOUS, 0),
            -L4_ENOMEM);
  EXPECT_EQ(Stats(sub).quota_used, 0u);
}

// Point 10: alignments from 0 to 200.
TEST_F(ContractTest, EveryAlignmentFromZeroTo200HasItsDocumentedResult) {
  for (unsigned long align = 0; align <= 200; ++align) {
    for (unsigned long flags : {0UL, static_cast<unsigned long>(L4RE_MA_CONTINUOUS)}) {
      l4re_ds_t ds = NewCap();
      const long r = l4re_ma_alloc_align(4096, ds, flags, align);
      if (align >= 64) {
        EXPECT_EQ(r, -L4_EINVAL) << align;
        continue;
      }
      if (flags == 0) {
        EXPECT_EQ(r, 0) << "non-contiguous memory ignores the alignment: " << align;
        continue;
      }
      ASSERT_TRUE(r == 0 || r == -L4_ENOMEM) << align << ": " << r;
      if (align <= 20) EXPECT_EQ(r, 0) << align;
      if (r == 0) {
        l4_addr_t pa;
        l4_size_t ps;
        ASSERT_EQ(l4re_ds_phys(ds, 0, &pa, &ps), 0);
        EXPECT_EQ(pa % (1UL << (align < 12 ? 12 : align)), 0u) << align;
      }
      l4re_util_cap_free_um(ds);
    }
  }
}

// l4re_ds_allocate.
TEST_F(ContractTest, AllocateOfAContiguousDataspaceIsAlwaysZero) {
  l4re_ds_t ds = Alloc(3 * kPage, L4RE_MA_CONTINUOUS);
  EXPECT_EQ(l4re_ds_allocate(ds, 0, 3 * kPage), 0);
  EXPECT_EQ(l4re_ds_allocate(ds, 100 * kPage, kPage), 0);
}

TEST_F(ContractTest, AllocateOutsideANoncontiguousDataspaceIsERange) {
  l4re_ds_t ds = Alloc(10 * kPage);
  EXPECT_EQ(l4re_ds_allocate(ds, 10 * kPage, 1), -L4_ERANGE);
  EXPECT_EQ(l4re_ds_allocate(ds, 0, 10 * kPage + 1), -L4_ERANGE);
  EXPECT_EQ(l4re_ds_allocate(ds, 5 * kPage, ~0ULL), -L4_ERANGE);
  EXPECT_EQ(l4re_ds_allocate(ds, ~0ULL, 1), -L4_ERANGE);
  EXPECT_EQ(l4re_ds_allocate(ds, 9 * kPage, kPage), 0);
  EXPECT_EQ(l4re_ds_allocate(ds, 3, 0), 0);
}

TEST_F(ContractTest, AllocateBacksEveryPageInTheRangeOnce) {
  l4_cap_idx_t sub = SubAllocator(4 << 20);
  l4re_ds_t ds = AllocFrom(sub, 16 * kPage);
  ASSERT_EQ(l4re_ds_allocate(ds, kPage + 1, 3 * kPage), 0);  // pages 1..4
  EXPECT_EQ(Stats(sub).mem_used, 4u * kPage);
  ASSERT_EQ(l4re_ds_allocate(ds, 0, 16 * kPage), 0);
  EXPECT_EQ(Stats(sub).mem_used, 16u * kPage);
}

// Rust bindings (client sequence 5): tell -ERANGE, -ENOMEM and IPC errors apart.
TEST_F(ContractTest, AllocateDistinguishesRangeMemoryAndIpcErrors) {
  l4_cap_idx_t sub = SubAllocator(64 * kPage);
  l4re_ds_t ds = AllocFrom(sub, 128 * kPage);
  EXPECT_EQ(l4re_ds_allocate(ds, 0, 129 * kPage), -L4_ERANGE);
  EXPECT_EQ(l4re_ds_allocate(ds, 0, 128 * kPage), -L4_ENOMEM);
  EXPECT_EQ(l4re_ds_allocate(NewCap(), 0, kPage), kIpcNotExistent);
}

// l4re_ds_clear.
TEST_F(ContractTest, ClearBeyondTheRoundedSizeIsERange) {
  l4re_ds_t ds = Alloc(5000);
  EXPECT_EQ(l4re_ds_clear(ds, 8192, 1), -L4_ERANGE);
  EXPECT_EQ(l4re_ds_clear(ds, ~0ULL, 1), -L4_ERANGE);
  EXPECT_EQ(l4re_ds_clear(ds, 8191, 100), 0) << "inside the rounded size, clamped";
}

TEST_F(ContractTest, ClearZeroesAndClampsAndMappingsStayUsable) {
  for (unsigned long flags : {0UL, static_cast<unsigned long>(L4RE_MA_CONTINUOUS)}) {
    l4re_ds_t ds = Alloc(6 * kPage, flags);
    char* p = Attach(ds, 6 * kPage);
    std::memset(p, 0x33, 6 * kPage);
    ASSERT_EQ(l4re_ds_clear(ds, 100, 3 * kPage), 0);
    for (long i = 0; i < 6 * kPage; ++i) {
      const bool cleared = i >= 100 && i < 100 + 3 * kPage;
      ASSERT_EQ(p[i], cleared ? 0 : 0x33) << i;
    }
    ASSERT_EQ(l4re_ds_clear(ds, 5 * kPage, ~0ULL), 0);
    for (long i = 5 * kPage; i < 6 * kPage; ++i) ASSERT_EQ(p[i], 0) << i;
    p[5 * kPage] = 7;  // still writable, still the dataspace
    char* q = Attach(ds, 6 * kPage);
    EXPECT_EQ(q[5 * kPage], 7);
    EXPECT_EQ(l4re_rm_detach(q), 0);
    EXPECT_EQ(l4re_rm_detach(p), 0);
  }
}

TEST_F(ContractTest, ClearReleasesWholeUnmappedPagesOfANoncontiguousDataspace) {
  l4_cap_idx_t sub = SubAllocator(4 << 20);
  l4re_ds_t ds = AllocFrom(sub, 8 * kPage);
  ASSERT_EQ(l4re_ds_allocate(ds, 0, 8 * kPage), 0);
  EXPECT_EQ(Stats(sub).mem_used, 8u * kPage);
  ASSERT_EQ(l4re_ds_clear(ds, kPage / 2, 4 * kPage), 0);  // pages 1..3 whole, 0 and 4 partly
  EXPECT_EQ(Stats(sub).mem_used, 5u * kPage);
  char* p = Attach(ds, 8 * kPage);
  for (long i = 0; i < 8 * kPage; ++i) ASSERT_EQ(p[i], 0) << i;
  EXPECT_EQ(Stats(sub).mem_used, 8u * kPage) << "attach backs them again";
  EXPECT_EQ(l4re_rm_detach(p), 0);
}

// l4re_ds_copy_in.
TEST_F(ContractTest, CopyInCopiesTheClampedLength) {
  l4re_ds_t src = Alloc(3 * kPage, L4RE_MA_CONTINUOUS);
  l4re_ds_t dst = Alloc(2 * kPage + 10);
  char* s = Attach(src, 3 * kPage);
  for (long i = 0; i < 3 * kPage; ++i) s[i] = static_cast<char>(i % 251);
  ASSERT_EQ(l4re_ds_copy_in(dst, 5, src, 7, ~0ULL), 0);
  char* d = Attach(dst, 2 * kPage + 10);
  // min(len, dst.size - 5, src.rounded - 7) = 2 * kPage + 5 bytes.
  EXPECT_EQ(d[4], 0);
  for (long i = 0; i < 2 * kPage + 5; ++i) ASSERT_EQ(d[5 + i], static_cast<char>((7 + i) % 251)) << i;
  for (long i = 2 * kPage + 10; i < 3 * kPage; ++i) ASSERT_EQ(d[i], 0) << "nothing past the size";
  EXPECT_EQ(l4re_rm_detach(s), 0);
  EXPECT_EQ(l4re_rm_detach(d), 0);
}

TEST_F(ContractTest, CopyInWithNothingToCopyReturnsZero) {
  l4re_ds_t src = Alloc(kPage);
  l4re_ds_t dst = Alloc(kPage);
  EXPECT_EQ(l4re_ds_copy_in(dst, 0, src, 0, 0), 0);
  EXPECT_EQ(l4re_ds_copy_in(dst, kPage, src, 0, 10), 0);
  EXPECT_EQ(l4re_ds_copy_in(dst, 0, src, kPage, 10), 0);
  EXPECT_EQ(l4re_ds_copy_in(dst, ~0ULL, src, ~0ULL, ~0ULL), 0);
}

TEST_F(ContractTest, CopyInFromSomethingThatIsNotADataspaceOfThisAllocatorIsEInval) {
  l4re_ds_t dst = Alloc(kPage);
  EXPECT_EQ(l4re_ds_copy_in(dst, 0, NewCap(), 0, 10), -L4_EINVAL);
  EXPECT_EQ(l4re_ds_copy_in(dst, 0, L4_INVALID_CAP, 0, 10), -L4_EINVAL);
  EXPECT_EQ(l4re_ds_copy_in(dst, 0, l4re_env()->rm, 0, 10), -L4_EINVAL);
  EXPECT_EQ(l4re_ds_copy_in(dst, 0, l4re_env()->mem_alloc, 0, 10), -L4_EINVAL);
}

TEST_F(ContractTest, CopyInBetweenSubAllocatorsOfOneServerWorks) {
  l4_cap_idx_t a = SubAllocator(1 << 20), b = SubAllocator(1 << 20);
  l4re_ds_t src = AllocFrom(a, kPage);
  l4re_ds_t dst = AllocFrom(b, kPage);
  char* s = Attach(src, kPage);
  std::strcpy(s, "from a");
  ASSERT_EQ(l4re_ds_copy_in(dst, 0, src, 0, 7), 0);
  char* d = Attach(dst, kPage);
  EXPECT_STREQ(d, "from a");
  EXPECT_EQ(l4re_rm_detach(s), 0);
  EXPECT_EQ(l4re_rm_detach(d), 0);
}

TEST_F(ContractTest, CopyInIsASnapshot) {
  l4re_ds_t src = Alloc(kPage);
  l4re_ds_t dst = Alloc(kPage);
  char* s = Attach(src, kPage);
  std::strcpy(s, "before");
  ASSERT_EQ(l4re_ds_copy_in(dst, 0, src, 0, kPage), 0);
  std::strcpy(s, "after!");
  char* d = Attach(dst, kPage);
  EXPECT_STREQ(d, "before");
  EXPECT_EQ(l4re_rm_detach(s), 0);
  EXPECT_EQ(l4re_rm_detach(d), 0);
}

TEST_F(ContractTest, CopyInOntoItselfBehavesLikeMemmove) {
  for (unsigned long flags : {0UL, static_cast<unsigned long>(L4RE_MA_CONTINUOUS)}) {
    for (long shift : {-3 * kPage + 5, -1L, 1L, 17L, kPage, 2 * kPage + 3}) {
      l4re_ds_t ds = Alloc(8 * kPage, flags);
      char* p = Attach(ds, 8 * kPage);
      std::vector<char> model(8 * kPage);
      for (long i = 0; i < 8 * kPage; ++i) model[i] = p[i] = static_cast<char>(i * 7 % 253);
      const long src = 3 * kPage, dst = src + shift, len = 4 * kPage;
      ASSERT_EQ(l4re_ds_copy_in(ds, dst, ds, src, len), 0);
      const long n = std::min({len, 8 * kPage - dst, 8 * kPage - src});  // the clamp
      std::memmove(model.data() + dst, model.data() + src, n);
      for (long i = 0; i < 8 * kPage; ++i) ASSERT_EQ(p[i], model[i]) << "shift " << shift << " at " << i;
      EXPECT_EQ(l4re_rm_detach(p), 0);
      l4re_util_cap_free_um(ds);
    }
  }
}

TEST_F(ContractTest, CopyInFromUnbackedPagesCopiesZeros) {
  l4re_ds_t src = Alloc(4 * kPage);
  l4re_ds_t dst = Alloc(4 * kPage);
  char* d = Attach(dst, 4 * kPage);
  std::memset(d, 9, 4 * kPage);
  ASSERT_EQ(l4re_ds_copy_in(dst, 0, src, 0, 4 * kPage), 0);
  for (long i = 0; i < 4 * kPage; ++i) ASSERT_EQ(d[i], 0) << i;
  EXPECT_EQ(l4re_rm_detach(d), 0);
}

// Sub-allocators and statistics.
TEST_F(ContractTest, CreatingASubAllocatorReservesItsWholeLimitAtOnce) {
  l4_cap_idx_t sub = SubAllocator(8 << 20);
  EXPECT_EQ(Stats(sub).quota, 8u << 20);
  l4_cap_idx_t nested = SubAllocator(3 << 20, sub);
  EXPECT_EQ(Stats(sub).quota_used, 3u << 20);
  EXPECT_EQ(Stats(nested).quota, 3u << 20);
  l4re_util_cap_free_um(nested);
  caps_.erase(std::find(caps_.begin(), caps_.end(), nested));
  EXPECT_EQ(Stats(sub).quota_used, 0u) << "the reservation comes back";
}

TEST_F(ContractTest, ASubAllocatorThatDoesNotFitIsENoMem) {
  l4_cap_idx_t sub = SubAllocator(1 << 20);
  l4_cap_idx_t cap = NewCap();
  EXPECT_EQ(l4_error(l4_factory_create_factory(sub, cap, (1 << 20) + 1)), -L4_ENOMEM);
  EXPECT_EQ(l4re_ds_size(cap), 0u);
  l4re_ma_stats_t s;
  EXPECT_EQ(l4re_ma_stats_srv(cap, &s), kIpcNotExistent) << "nothing was delivered";
}

TEST_F(ContractTest, ALimitThatIsNotPositiveIsEInval) {
  l4_cap_idx_t cap = NewCap();
  for (unsigned long limit : {0UL, static_cast<unsigned long>(-1L), 1UL << 63}) {
    EXPECT_EQ(l4_error(l4_factory_create_factory(l4re_env()->mem_alloc, cap, limit)), -L4_EINVAL)
        << limit;
  }
}

TEST_F(ContractTest, CreateFactoryOnABadCapabilityFails) {
  l4_cap_idx_t cap = NewCap();
  l4_msgtag_t tag = l4_factory_create_factory(L4_INVALID_CAP, cap, 4096);
  EXPECT_EQ(l4_error(tag), kIpcNotExistent);
  EXPECT_TRUE(l4_msgtag_has_error(tag));
  EXPECT_EQ(l4_error(l4_factory_create_factory(l4re_env()->rm, cap, 4096)), -L4_EBADPROTO);
  EXPECT_EQ(l4_error(l4_factory_create_factory(l4re_env()->mem_alloc, L4_INVALID_CAP, 4096)),
            -L4_EINVAL);
}

TEST_F(ContractTest, ASubAllocatorServesLikeTheRoot) {
  l4_cap_idx_t sub = SubAllocator(16 << 20);
  l4re_ds_t ds = NewCap();
  EXPECT_EQ(l4re_ma_alloc_align_srv(sub, 0, ds, 0, 0), -L4_ERANGE);
  EXPECT_EQ(l4re_ma_alloc_align_srv(sub, -1, ds, 0, 0), -L4_ERANGE);
  EXPECT_EQ(l4re_ma_alloc_align_srv(sub, 4096, ds, 0x08, 0), -L4_EINVAL);
  EXPECT_EQ(l4re_ma_alloc_align_srv(sub, 4096, ds, 0, 64), -L4_EINVAL);
  ASSERT_EQ(l4re_ma_alloc_align_srv(sub, 1 << 20, ds, L4RE_MA_CONTINUOUS, 20), 0);
  char* p = Attach(ds, 1 << 20);
  p[0] = 1;
  EXPECT_EQ(l4re_rm_detach(p), 0);
  EXPECT_EQ(l4re_ma_free_srv(sub, ds), 0);
  EXPECT_EQ(Stats(sub).quota_used, 0u);
}

TEST_F(ContractTest, DestroyingASubAllocatorDestroysItsDataspaces) {
  const l4re_ma_stats_t root_before = Stats();
  l4_cap_idx_t sub = NewCap();
  ASSERT_EQ(l4_error(l4_factory_create_factory(l4re_env()->mem_alloc, sub, 8 << 20)), 0);
  l4_cap_idx_t nested = NewCap();
  ASSERT_EQ(l4_error(l4_factory_create_factory(sub, nested, 2 << 20)), 0);
  l4re_ds_t a = AllocFrom(sub, 1 << 20, L4RE_MA_CONTINUOUS);
  l4re_ds_t b = AllocFrom(nested, 1 << 20);
  ASSERT_EQ(l4re_ds_allocate(b, 0, 1 << 20), 0);
  EXPECT_EQ(Stats().quota_used, root_before.quota_used + (8u << 20));
  l4re_util_cap_free_um(sub);
  EXPECT_EQ(l4re_ds_size(a), 0u);
  EXPECT_EQ(l4re_ds_size(b), 0u) << "and those of its sub-allocators";
  l4re_ma_stats_t s;
  EXPECT_EQ(l4re_ma_stats_srv(nested, &s), kIpcNotExistent);
  EXPECT_EQ(Stats().quota_used, root_before.quota_used);
  EXPECT_EQ(PoolFree(), free_at_start_);
}

TEST_F(ContractTest, StatisticsFollowMoesFormula) {
  l4_cap_idx_t sub = SubAllocator(8 << 20);
  AllocFrom(sub, 3 << 20, L4RE_MA_CONTINUOUS);
  l4re_ds_t lazy = AllocFrom(sub, 1 << 20);
  ASSERT_EQ(l4re_ds_allocate(lazy, 0, 1 << 20), 0);
  const l4re_ma_stats_t s = Stats(sub);
  EXPECT_EQ(s.quota, 8u << 20);
  EXPECT_EQ(s.mem_used, 4u << 20);
  EXPECT_GT(s.quota_used, s.mem_used) << "bookkeeping is charged too";
  EXPECT_EQ(s.mem_limit, 8u << 20);
  uint64_t expect = s.mem_limit - s.mem_used;
  expect = std::min<uint64_t>(expect, s.quota - s.quota_used);
  expect = std::min<uint64_t>(expect, PoolFree());
  EXPECT_EQ(s.mem_free, expect);
}

TEST_F(ContractTest, StatisticsOfABadCapabilityFail) {
  l4re_ma_stats_t s;
  EXPECT_EQ(l4re_ma_stats_srv(L4_INVALID_CAP, &s), kIpcNotExistent);
  EXPECT_EQ(l4re_ma_stats_srv(l4re_env()->rm, &s), -L4_EBADPROTO);
  EXPECT_EQ(l4re_ma_stats_srv(l4re_env()->mem_alloc, nullptr), -L4_EINVAL);
}

using ContractDeathTest = ContractTest;

TEST_F(ContractDeathTest, MappingsOfADestroyedSubAllocatorsDataspacesFault) {
  GTEST_FLAG_SET(death_test_style, "threadsafe");
  EXPECT_DEATH(
      {
        l4_cap_idx_t sub = l4re_util_cap_alloc();
        if (l4_error(l4_factory_create_factory(l4re_env()->mem_alloc, sub, 1 << 20)) != 0)
          _exit(2);
        l4re_ds_t ds = l4re_util_cap_alloc();
        if (l4re_ma_alloc_align_srv(sub, 8192, ds, 0, 0) != 0) _exit(3);
        void* addr = nullptr;
        if (l4re_rm_attach(&addr, 8192, L4RE_RM_F_SEARCH_ADDR | L4RE_RM_F_RW, ds, 0, 12) != 0)
          _exit(4);
        static_cast<volatile char*>(addr)[0] = 1;
        l4re_util_cap_free_um(sub);
        fprintf(stderr, "touching a dataspace of a destroyed allocator\n");
        static_cast<volatile char*>(addr)[0] = 2;
        _exit(0);
      },
      "touching a dataspace of a destroyed allocator");
}

}  // namespace
}  // namespace l4re_ma::testing
