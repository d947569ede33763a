// l4re_ma_alloc, l4re_ma_alloc_align, l4re_ma_alloc_align_srv and
// l4re_ma_free: every return code of ../shared/api-contract.md that the
// in-process allocator covers, each test named after the behaviour.
#include <climits>
#include <cstring>
#include <memory>
#include <thread>

#include "absl/strings/str_cat.h"
#include "api/runtime.h"
#include "core/local_allocator.h"
#include "core/phys_pool.h"
#include "core/storage.h"
#include "tests/api/api_test_util.h"

#pragma GCC diagnostic ignored "-Wdeprecated-declarations"

namespace l4re_ma::testing {
namespace {

using MemAllocTest = ApiTest;

TEST_F(MemAllocTest, SizeZeroIsERangeWhateverTheFlags) {
  l4re_ds_t ds = NewCap();
  for (unsigned long flags : {0UL, 1UL, 2UL, 4UL, 5UL, 7UL, 8UL, 0x100UL, ~0UL}) {
    EXPECT_EQ(l4re_ma_alloc(0, ds, flags), -L4_ERANGE) << "flags " << flags;
    EXPECT_EQ(l4re_ma_alloc_align(0, ds, flags, 200), -L4_ERANGE) << "flags " << flags;
  }
}

TEST_F(MemAllocTest, NegativeSizeWithoutContinuousIsERange) {
  l4re_ds_t ds = NewCap();
  for (long size : {-1L, -4096L, LONG_MIN, static_cast<long>(~0UL)}) {
    EXPECT_EQ(l4re_ma_alloc(size, ds, 0), -L4_ERANGE) << size;
    EXPECT_EQ(l4re_ma_alloc(size, ds, L4RE_MA_SUPER_PAGES), -L4_ERANGE) << size;
  }
}

TEST_F(MemAllocTest, UnknownFlagBitsAreEInval) {
  l4re_ds_t ds = NewCap();
  for (unsigned long flags : {0x08UL, 0x10UL, 0x09UL, 0x80000000UL, ~0UL}) {
    EXPECT_EQ(l4re_ma_alloc(4096, ds, flags), -L4_EINVAL) << "flags " << flags;
  }
  EXPECT_EQ(l4re_ds_size(ds), 0u) << "nothing was delivered";
}

TEST_F(MemAllocTest, AlignOf64OrMoreIsEInval) {
  l4re_ds_t ds = NewCap();
  for (unsigned long align : {64UL, 65UL, 200UL, ~0UL}) {
    EXPECT_EQ(l4re_ma_alloc_align(4096, ds, 0, align), -L4_EINVAL) << align;
    EXPECT_EQ(l4re_ma_alloc_align(4096, ds, L4RE_MA_CONTINUOUS, align), -L4_EINVAL) << align;
  }
}

TEST_F(MemAllocTest, AlignBelowTheMinimumIsRaisedSilently) {
  for (unsigned long align : {0UL, 1UL, 11UL}) {
    l4re_ds_t ds = Alloc(5000, L4RE_MA_CONTINUOUS, align);
    l4_addr_t pa = 0;
    l4_size_t ps = 0;
    ASSERT_EQ(l4re_ds_phys(ds, 0, &pa, &ps), 0);
    EXPECT_EQ(pa % L4_PAGESIZE, 0u);
    EXPECT_EQ(l4re_ds_size(ds), 5000u);
    l4re_ds_t super = Alloc(5000, L4RE_MA_CONTINUOUS | L4RE_MA_SUPER_PAGES, align);
    ASSERT_EQ(l4re_ds_phys(super, 0, &pa, &ps), 0);
    EXPECT_EQ(pa % L4_SUPERPAGESIZE, 0u) << "SUPER_PAGES raises the alignment to 2 MiB";
  }
}

TEST_F(MemAllocTest, ContiguousAlignmentIsHonoured) {
  for (unsigned long align = 12; align <= 24; ++align) {
    l4re_ds_t ds = Alloc(4096, L4RE_MA_CONTINUOUS, align);
    l4_addr_t pa = 0;
    l4_size_t ps = 0;
    ASSERT_EQ(l4re_ds_phys(ds, 0, &pa, &ps), 0);
    EXPECT_EQ(pa % (1UL << align), 0u) << "align " << align;
  }
}

TEST_F(MemAllocTest, AnAlignmentNoFreeBlockSatisfiesIsENoMem) {
  l4re_ds_t ds = NewCap();
  for (unsigned long align : {40UL, 50UL, 63UL}) {
    EXPECT_EQ(l4re_ma_alloc_align(4096, ds, L4RE_MA_CONTINUOUS, align), -L4_ENOMEM) << align;
  }
}

TEST_F(MemAllocTest, ContiguousLargerThanThePoolIsENoMem) {
  l4re_ds_t ds = NewCap();
  const long pool = static_cast<long>(PoolInfo().size);
  EXPECT_EQ(l4re_ma_alloc(pool + 4096, ds, L4RE_MA_CONTINUOUS), -L4_ENOMEM);
  EXPECT_EQ(l4re_ma_alloc(LONG_MAX, ds, L4RE_MA_CONTINUOUS), -L4_ENOMEM);
  EXPECT_EQ(l4re_ma_alloc(LONG_MAX, ds, L4RE_MA_PINNED | L4RE_MA_SUPER_PAGES), -L4_ENOMEM);
}

TEST_F(MemAllocTest, NoncontiguousLargerThanThePoolIsCreatedAndFailsWhenBacked) {
  const long pool = static_cast<long>(PoolInfo().size);
  l4re_ds_t ds = Alloc(4 * pool, 0);
  EXPECT_EQ(l4re_ds_size(ds), static_cast<l4re_ds_size_t>(4 * pool));
  EXPECT_EQ(PoolFree(), free_at_start_) << "nothing is backed before first use";
  void* addr = nullptr;
  EXPECT_EQ(l4re_rm_attach(&addr, 2 * pool, L4RE_RM_F_SEARCH_ADDR | L4RE_RM_F_RW, ds, 0,
                           L4_PAGESHIFT),
            -L4_ENOMEM);
}

TEST_F(MemAllocTest, SizesAreByteGranular) {
  for (long size : {1L, 4095L, 4097L, 123457L, static_cast<long>(INT_MAX) - 1}) {
    l4re_ds_t ds = Alloc(size, 0);
    EXPECT_EQ(l4re_ds_size(ds), static_cast<l4re_ds_size_t>(size));
  }
  l4re_ds_t ds = Alloc(1, L4RE_MA_CONTINUOUS);
  EXPECT_EQ(l4re_ds_size(ds), 1u);
}

TEST_F(MemAllocTest, PinnedBehavesAsContinuous) {
  l4re_ds_t ds = Alloc(3 << 20, L4RE_MA_PINNED);
  l4_addr_t pa = 0;
  l4_size_t ps = 0;
  ASSERT_EQ(l4re_ds_phys(ds, 0, &pa, &ps), 0);
  EXPECT_EQ(ps, 3u << 20) << "one physical run covers the whole dataspace";
}

TEST_F(MemAllocTest, FailureLeavesTheSlotUnchanged) {
  l4re_ds_t ds = Alloc(4096, L4RE_MA_CONTINUOUS);
  EXPECT_EQ(l4re_ma_alloc(0, ds, 0), -L4_ERANGE);
  EXPECT_EQ(l4re_ma_alloc(LONG_MAX, ds, L4RE_MA_CONTINUOUS), -L4_ENOMEM);
  EXPECT_EQ(l4re_ma_alloc(4096, ds, 0x08), -L4_EINVAL);
  EXPECT_EQ(l4re_ds_size(ds), 4096u) << "the old dataspace is still in the slot";
}

TEST_F(MemAllocTest, SuccessReplacesWhatTheSlotHeld) {
  l4re_ds_t ds = Alloc(1 << 20, L4RE_MA_CONTINUOUS);
  EXPECT_EQ(PoolFree(), free_at_start_ - (1 << 20));
  ASSERT_EQ(l4re_ma_alloc(8192, ds, 0), 0);
  EXPECT_EQ(l4re_ds_size(ds), 8192u);
  EXPECT_EQ(PoolFree(), free_at_start_) << "the replaced dataspace was freed";
}

TEST_F(MemAllocTest, InvalidOrEmptyServerCapabilityIsIpcError) {
  l4re_ds_t ds = NewCap();
  EXPECT_EQ(l4re_ma_alloc_align_srv(L4_INVALID_CAP, 4096, ds, 0, 0), kIpcNotExistent);
  EXPECT_EQ(l4re_ma_alloc_align_srv(NewCap(), 4096, ds, 0, 0), kIpcNotExistent);
  EXPECT_EQ(l4re_ma_alloc_align_srv(~0UL << 40, 4096, ds, 0, 0), kIpcNotExistent);
  EXPECT_EQ(l4re_ma_alloc_align_srv(0, 4096, ds, 0, 0), kIpcNotExistent);
  EXPECT_EQ(l4re_ma_free_srv(L4_INVALID_CAP, ds), kIpcNotExistent);
}

TEST_F(MemAllocTest, ServerCapabilityOfAnotherKindIsEBadProto) {
  l4re_ds_t other = Alloc(4096);
  l4re_ds_t ds = NewCap();
  EXPECT_EQ(l4re_ma_alloc_align_srv(other, 4096, ds, 0, 0), -L4_EBADPROTO);
  EXPECT_EQ(l4re_ma_alloc_align_srv(l4re_env()->rm, 4096, ds, 0, 0), -L4_EBADPROTO);
}

TEST_F(MemAllocTest, InvalidDestinationSlotIsEInvalAndAllocatesNothing) {
  EXPECT_EQ(l4re_ma_alloc(1 << 20, L4_INVALID_CAP, L4RE_MA_CONTINUOUS), -L4_EINVAL);
  EXPECT_EQ(PoolFree(), free_at_start_);
}

TEST_F(MemAllocTest, MemoryIsZeroWhenHandedOut) {
  for (unsigned long flags : {0UL, static_cast<unsigned long>(L4RE_MA_CONTINUOUS)}) {
    for (int round = 0; round < 3; ++round) {
      l4re_ds_t ds = NewCap();
      ASSERT_EQ(l4re_ma_alloc(64 << 10, ds, flags), 0);
      char* p = Attach(ds, 64 << 10);
      for (int i = 0; i < (64 << 10); ++i) ASSERT_EQ(p[i], 0) << "byte " << i;
      std::memset(p, 0xff, 64 << 10);
      ASSERT_EQ(l4re_rm_detach(p), 0);
      ASSERT_EQ(l4re_ma_free(ds), 0);
    }
  }
}

TEST_F(MemAllocTest, ManyThreadsAllocateAtOnce) {
  constexpr int kThreads = 4, kRounds = 300;
  std::vector<std::thread> threads;
  std::atomic<int> errors{0};
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([t, &errors] {
      for (int i = 0; i < kRounds; ++i) {
        l4re_ds_t ds = l4re_util_cap_alloc();
        const long size = 4096 * (1 + (i + t) % 7);
        const unsigned long flags = (i % 3 == 0) ? L4RE_MA_CONTINUOUS : 0;
        if (l4re_ma_alloc(size, ds, flags) != 0) { ++errors; continue; }
        void* addr = nullptr;
        if (l4re_rm_attach(&addr, size, L4RE_RM_F_SEARCH_ADDR | L4RE_RM_F_RW, ds, 0,
                           L4_PAGESHIFT) != 0) { ++errors; continue; }
        char* p = static_cast<char*>(addr);
        if (p[0] != 0 || p[size - 1] != 0) ++errors;
        std::memset(p, t + 1, size);
        if (p[size / 2] != t + 1) ++errors;
        l4re_ds_t back = L4_INVALID_CAP;
        if (l4re_rm_detach_ds(addr, &back) != 0 || !l4_capability_equal(back, ds)) ++errors;
        l4re_util_cap_free_um(ds);
      }
    });
  }
  for (auto& th : threads) th.join();
  EXPECT_EQ(errors.load(), 0);
}

// l4re_ma_free (beyond Moe, where it is an empty stub).

TEST_F(MemAllocTest, FreeReleasesTheDataspaceAndEmptiesTheSlot) {
  l4re_ds_t ds = Alloc(1 << 20, L4RE_MA_CONTINUOUS);
  ASSERT_EQ(l4re_ma_free(ds), 0);
  EXPECT_EQ(PoolFree(), free_at_start_);
  EXPECT_EQ(l4re_ds_size(ds), 0u);
  l4re_ds_stats_t stats;
  EXPECT_EQ(l4re_ds_info(ds, &stats), kIpcNotExistent) << "the slot is empty";
  // The slot stays allocated: it can receive a new dataspace.
  EXPECT_EQ(l4re_ma_alloc(4096, ds, 0), 0);
}

TEST_F(MemAllocTest, FreeOfAnEmptySlotOrANonDataspaceIsEInval) {
  EXPECT_EQ(l4re_ma_free(NewCap()), -L4_EINVAL);
  EXPECT_EQ(l4re_ma_free(L4_INVALID_CAP), -L4_EINVAL);
  EXPECT_EQ(l4re_ma_free(l4re_env()->rm), -L4_EINVAL);
}

TEST_F(MemAllocTest, FreeOfAnotherAllocatorsDataspaceIsEPerm) {
  // A second, independent allocator in a slot of its own.
  auto pool = PhysPool::Create("buddy", 16 << 20);
  ASSERT_TRUE(pool.ok()) << pool.status();
  auto storage = Storage::Create((*pool)->range(), "second");
  ASSERT_TRUE(storage.ok()) << storage.status();
  l4_cap_idx_t other = NewCap();
  Runtime::Get().caps().Install(other >> L4_CAP_SHIFT,
                                LocalAllocator::CreateRoot(*pool, *storage, 16 << 20));
  l4re_ds_t ds = NewCap();
  ASSERT_EQ(l4re_ma_alloc_align_srv(other, 8192, ds, L4RE_MA_CONTINUOUS, 0), 0);
  EXPECT_EQ(l4re_ma_free(ds), -L4_EPERM);
  EXPECT_EQ(l4re_ds_size(ds), 8192u) << "nothing happened to it";
  EXPECT_EQ(l4re_ma_free_srv(other, ds), 0);
}

TEST_F(MemAllocTest, FreeThenCapFreeLeaksNothing) {
  l4re_ds_t ds = l4re_util_cap_alloc();
  ASSERT_EQ(l4re_ma_alloc(1 << 16, ds, 0), 0);
  char* p = Attach(ds, 1 << 16);
  std::memset(p, 1, 1 << 16);
  l4re_ds_t back;
  ASSERT_EQ(l4re_rm_detach_ds(p, &back), 0);
  ASSERT_EQ(l4re_ma_free(back), 0);
  l4re_util_cap_free(ds);
  EXPECT_EQ(PoolFree(), free_at_start_);
}

TEST_F(MemAllocTest, ReleasingTheLastCapabilityFreesTheDataspace) {
  l4re_ds_t ds = l4re_util_cap_alloc();
  ASSERT_EQ(l4re_ma_alloc(3 << 20, ds, L4RE_MA_CONTINUOUS), 0);
  EXPECT_LT(PoolFree(), free_at_start_);
  l4re_util_cap_free_um(ds);
  EXPECT_EQ(PoolFree(), free_at_start_);
}

using MemAllocDeathTest = ApiTest;

TEST_F(MemAllocDeathTest, MappingsOfAFreedDataspaceFault) {
  GTEST_FLAG_SET(death_test_style, "threadsafe");
  EXPECT_DEATH(
      {
        l4re_ds_t ds = l4re_util_cap_alloc();
        if (l4re_ma_alloc(8192, ds, 0) != 0) _exit(2);
        void* addr = nullptr;
        if (l4re_rm_attach(&addr, 8192, L4RE_RM_F_SEARCH_ADDR | L4RE_RM_F_RW, ds, 0, 12) != 0)
          _exit(3);
        static_cast<volatile char*>(addr)[0] = 1;
        l4re_util_cap_free_um(ds);
        fprintf(stderr, "touching revoked mapping\n");
        static_cast<volatile char*>(addr)[0] = 2;
        _exit(0);
      },
      "touching revoked mapping");
}

}  // namespace
}  // namespace l4re_ma::testing
