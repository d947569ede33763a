// l4re_ds_size, l4re_ds_flags, l4re_ds_info, l4re_ds_phys (and the
// client sequences that walk physical memory).
#include <cstring>

#include "tests/api/api_test_util.h"

namespace l4re_ma::testing {
namespace {

using DataspaceTest = ApiTest;

TEST_F(DataspaceTest, SizeFlagsAndInfoOfALiveDataspace) {
  for (unsigned long flags : {0UL, 1UL, 2UL, 4UL, 5UL}) {
    l4re_ds_t ds = Alloc(12345, flags);
    EXPECT_EQ(l4re_ds_size(ds), 12345u);
    EXPECT_EQ(l4re_ds_flags(ds), static_cast<l4re_ds_flags_t>(L4RE_DS_F_RWX));
    l4re_ds_stats_t stats{};
    ASSERT_EQ(l4re_ds_info(ds, &stats), 0);
    EXPECT_EQ(stats.size, 12345u);
    EXPECT_EQ(stats.flags, static_cast<l4re_ds_flags_t>(L4RE_DS_F_RWX));
  }
}

TEST_F(DataspaceTest, AStaleCapabilityGivesZeroOrAnIpcError) {
  l4re_ds_t ds = l4re_util_cap_alloc();
  ASSERT_EQ(l4re_ma_alloc(4096, ds, 0), 0);
  l4re_util_cap_free_um(ds);
  EXPECT_EQ(l4re_ds_size(ds), 0u);
  EXPECT_EQ(l4re_ds_flags(ds), 0u);
  l4re_ds_stats_t stats;
  EXPECT_EQ(l4re_ds_info(ds, &stats), kIpcNotExistent);
  l4_addr_t pa;
  l4_size_t ps;
  EXPECT_EQ(l4re_ds_phys(ds, 0, &pa, &ps), kIpcNotExistent);
  EXPECT_EQ(l4re_ds_info(L4_INVALID_CAP, &stats), kIpcNotExistent);
}

TEST_F(DataspaceTest, CallsOnAnObjectOfAnotherKindAreEBadProto) {
  l4re_ds_stats_t stats;
  EXPECT_EQ(l4re_ds_info(l4re_env()->mem_alloc, &stats), -L4_EBADPROTO);
  EXPECT_EQ(l4re_ds_size(l4re_env()->rm), 0u);
}

TEST_F(DataspaceTest, PhysOfAContiguousDataspaceIsBasePlusOffsetAndTheRestOfTheSize) {
  l4re_ds_t ds = Alloc(1024, L4RE_MA_CONTINUOUS);
  l4_addr_t base = 0, pa = 0;
  l4_size_t ps = 0;
  ASSERT_EQ(l4re_ds_phys(ds, 0, &base, &ps), 0);
  EXPECT_EQ(ps, 1024u);
  ASSERT_EQ(l4re_ds_phys(ds, 123, &pa, &ps), 0);
  EXPECT_EQ(pa, base + 123);
  EXPECT_EQ(ps, 901u);
  const l4re_ma_pool_info_t pool = PoolInfo();
  EXPECT_GE(base, pool.phys_base);
  EXPECT_LT(base, pool.phys_base + pool.size);
}

TEST_F(DataspaceTest, PhysAtOrBeyondTheSizeIsERange) {
  l4re_ds_t ds = Alloc(1024, L4RE_MA_CONTINUOUS);
  l4_addr_t pa;
  l4_size_t ps;
  EXPECT_EQ(l4re_ds_phys(ds, 1024, &pa, &ps), -L4_ERANGE);
  EXPECT_EQ(l4re_ds_phys(ds, 4096, &pa, &ps), -L4_ERANGE);
  EXPECT_EQ(l4re_ds_phys(ds, ~0UL, &pa, &ps), -L4_ERANGE);
}

TEST_F(DataspaceTest, PhysOfANoncontiguousDataspaceIsEInval) {
  l4re_ds_t ds = Alloc(8192, 0);
  l4_addr_t pa;
  l4_size_t ps;
  EXPECT_EQ(l4re_ds_phys(ds, 0, &pa, &ps), -L4_EINVAL);
  l4re_ds_t super = Alloc(4 << 20, L4RE_MA_SUPER_PAGES);
  EXPECT_EQ(l4re_ds_phys(super, 0, &pa, &ps), -L4_EINVAL);
}

TEST_F(DataspaceTest, DistinctContiguousDataspacesDoNotOverlapPhysically) {
  l4_addr_t pa[8], end[8];
  l4_size_t ps;
  for (int i = 0; i < 8; ++i) {
    const long size = 3 * 4096 + i;  // 3 pages, then 4 pages
    l4re_ds_t ds = Alloc(size, L4RE_MA_CONTINUOUS);
    ASSERT_EQ(l4re_ds_phys(ds, 0, &pa[i], &ps), 0);
    end[i] = pa[i] + l4_round_page(size);
    for (int j = 0; j < i; ++j) {
      EXPECT_TRUE(end[i] <= pa[j] || end[j] <= pa[i]) << i << " " << j;
    }
  }
}

// Client sequence 3 (L4Linux main memory): superpage-aligned contiguous
// pinned memory attached eagerly, then walked with ds_phys.
TEST_F(DataspaceTest, L4LinuxMainMemorySequence) {
  const long size = 16L << 20;
  l4re_ds_t ds = Alloc(size, L4RE_MA_CONTINUOUS | L4RE_MA_PINNED | L4RE_MA_SUPER_PAGES,
                       L4_SUPERPAGESHIFT);
  l4_addr_t pa = 0;
  l4_size_t ps = 0;
  ASSERT_EQ(l4re_ds_phys(ds, 0, &pa, &ps), 0);
  EXPECT_EQ(pa % L4_SUPERPAGESIZE, 0u);
  void* addr = nullptr;
  ASSERT_EQ(l4re_rm_attach(&addr, size,
                           L4RE_RM_F_SEARCH_ADDR | L4RE_RM_F_EAGER_MAP | L4RE_RM_F_RWX, ds, 0,
                           L4_SUPERPAGESHIFT),
            0);
  EXPECT_EQ(reinterpret_cast<l4_addr_t>(addr) % L4_SUPERPAGESIZE, 0u);
  l4_addr_t offset = 0;
  int runs = 0;
  while (offset < static_cast<l4_addr_t>(size)) {
    l4_addr_t p;
    l4_size_t s;
    ASSERT_EQ(l4re_ds_phys(ds, offset, &p, &s), 0);
    EXPECT_EQ(p, pa + offset);
    offset += s;
    ++runs;
  }
  EXPECT_EQ(runs, 1);
  std::memset(addr, 0x11, size);
  EXPECT_EQ(l4re_rm_detach(addr), 0);
}

// Client sequence 4 (framebuffer drivers): one contiguous run covering the
// whole buffer.
TEST_F(DataspaceTest, FramebufferSequence) {
  const long fb = 1280 * 1024 * 4;
  l4re_ds_t ds = Alloc(fb, L4RE_MA_CONTINUOUS | L4RE_MA_PINNED);
  char* p = Attach(ds, fb);
  ASSERT_NE(p, nullptr);
  l4_addr_t pa;
  l4_size_t ps;
  ASSERT_EQ(l4re_ds_phys(ds, 0, &pa, &ps), 0);
  EXPECT_EQ(ps, static_cast<l4_size_t>(fb));
  std::memset(p, 0x7f, fb);
  EXPECT_EQ(l4re_rm_detach(p), 0);
}

}  // namespace
}  // namespace l4re_ma::testing
