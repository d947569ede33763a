// l4re_rm_attach, l4re_rm_detach, l4re_rm_detach_ds, l4re_rm_find,
// l4re_rm_reserve_area: return codes and the real mappings behind them.
#include <sys/mman.h>
#include <unistd.h>

#include <cstring>

#include "tests/api/api_test_util.h"

namespace l4re_ma::testing {
namespace {

using RmTest = ApiTest;

TEST_F(RmTest, AttachedMemoryIsReadableAndWritable) {
  l4re_ds_t ds = Alloc(5 * 4096 + 1);
  char* p = Attach(ds, 5 * 4096 + 1);
  ASSERT_NE(p, nullptr);
  std::memset(p, 0xab, 6 * 4096);  // mapping reaches the rounded size
  EXPECT_EQ(static_cast<unsigned char>(p[6 * 4096 - 1]), 0xab);
  EXPECT_EQ(l4re_rm_detach(p), 0);
}

TEST_F(RmTest, TwoAttachesOfOneDataspaceSeeTheSameBytes) {
  for (unsigned long flags : {0UL, static_cast<unsigned long>(L4RE_MA_CONTINUOUS)}) {
    l4re_ds_t ds = Alloc(64 << 10, flags);
    char* a = Attach(ds, 64 << 10);
    char* b = Attach(ds, 64 << 10);
    ASSERT_NE(a, b);
    std::strcpy(a + 5000, "shared bytes");
    EXPECT_STREQ(b + 5000, "shared bytes");
    b[60000] = 42;
    EXPECT_EQ(a[60000], 42);
    EXPECT_EQ(l4re_rm_detach(a), 0);
    EXPECT_EQ(l4re_rm_detach(b), 0);
  }
}

TEST_F(RmTest, AttachAtAnOffsetShowsThatPartOfTheDataspace) {
  l4re_ds_t ds = Alloc(4 * 4096);
  char* whole = Attach(ds, 4 * 4096);
  whole[2 * 4096 + 7] = 'x';
  void* part = nullptr;
  ASSERT_EQ(l4re_rm_attach(&part, 4096, L4RE_RM_F_SEARCH_ADDR | L4RE_RM_F_R, ds, 2 * 4096,
                           L4_PAGESHIFT),
            0);
  EXPECT_EQ(static_cast<char*>(part)[7], 'x');
  EXPECT_EQ(l4re_rm_detach(part), 0);
  EXPECT_EQ(l4re_rm_detach(whole), 0);
}

TEST_F(RmTest, SearchedAttachesAreAlignedAsAsked) {
  l4re_ds_t ds = Alloc(4 << 20);
  for (unsigned char align : {12, 16, 21, 22}) {
    char* p = Attach(ds, 4096, align);
    EXPECT_EQ(reinterpret_cast<uintptr_t>(p) % (1UL << align), 0u) << int(align);
    EXPECT_EQ(l4re_rm_detach(p), 0);
  }
}

TEST_F(RmTest, BadArgumentsAreEInval) {
  l4re_ds_t ds = Alloc(4096);
  void* addr = nullptr;
  const l4re_rm_flags_t search = L4RE_RM_F_SEARCH_ADDR | L4RE_RM_F_RW;
  EXPECT_EQ(l4re_rm_attach(&addr, 0, search, ds, 0, 12), -L4_EINVAL) << "size 0";
  EXPECT_EQ(l4re_rm_attach(&addr, 4096, search | 0x1000, ds, 0, 12), -L4_EINVAL)
      << "unknown flag bit";
  EXPECT_EQ(l4re_rm_attach(&addr, 4096, search | 0x80000000u, ds, 0, 12), -L4_EINVAL);
  EXPECT_EQ(l4re_rm_attach(&addr, 4096, search, ds, 0, 11), -L4_EINVAL) << "align < 12";
  EXPECT_EQ(l4re_rm_attach(&addr, 4096, search, ds, 0, 64), -L4_EINVAL) << "align > 63";
  EXPECT_EQ(l4re_rm_attach(&addr, 4096, search, ds, 100, 12), -L4_EINVAL) << "offset";
  EXPECT_EQ(l4re_rm_attach_srv(l4re_env()->rm, nullptr, 4096, search, ds, 0, 12), -L4_EINVAL);
}

TEST_F(RmTest, AMissingDataspaceIsENoEnt) {
  void* addr = nullptr;
  const l4re_rm_flags_t search = L4RE_RM_F_SEARCH_ADDR | L4RE_RM_F_RW;
  EXPECT_EQ(l4re_rm_attach(&addr, 4096, search, NewCap(), 0, 12), -L4_ENOENT);
  EXPECT_EQ(l4re_rm_attach(&addr, 4096, search, L4_INVALID_CAP, 0, 12), -L4_ENOENT);
  l4re_ds_t ds = l4re_util_cap_alloc();
  ASSERT_EQ(l4re_ma_alloc(4096, ds, 0), 0);
  l4re_util_cap_free_um(ds);
  EXPECT_EQ(l4re_rm_attach(&addr, 4096, search, ds, 0, 12), -L4_ENOENT);
}

TEST_F(RmTest, OverlapsAreEAddrNotAvail) {
  l4re_ds_t ds = Alloc(2 * 4096);
  char* p = Attach(ds, 2 * 4096);
  void* at = p + 4096;
  EXPECT_EQ(l4re_rm_attach(&at, 4096, L4RE_RM_F_RW, ds, 0, 0), -L4_EADDRNOTAVAIL);
  // A fixed address over memory this process uses for something else is
  // refused, and that memory is left alone.
  long page = sysconf(_SC_PAGESIZE);
  void* foreign = mmap(nullptr, page, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  ASSERT_NE(foreign, MAP_FAILED);
  static_cast<char*>(foreign)[0] = 'f';
  void* target = foreign;
  EXPECT_EQ(l4re_rm_attach(&target, 4096, L4RE_RM_F_RW, ds, 0, 0), -L4_EADDRNOTAVAIL);
  EXPECT_EQ(static_cast<char*>(foreign)[0], 'f');
  munmap(foreign, page);
  EXPECT_EQ(l4re_rm_detach(p), 0);
}

TEST_F(RmTest, AttachAtAFixedFreeAddressUsesExactlyThatAddress) {
  l4re_ds_t ds = Alloc(4096);
  char* p = Attach(ds, 4096);
  ASSERT_EQ(l4re_rm_detach(p), 0);
  void* at = p;
  ASSERT_EQ(l4re_rm_attach(&at, 4096, L4RE_RM_F_RW, ds, 0, 0), 0);
  EXPECT_EQ(at, p);
  p[1] = 1;
  EXPECT_EQ(l4re_rm_detach(p), 0);
}

TEST_F(RmTest, DetachAnywhereInsideARegionRemovesTheWholeRegion) {
  l4re_ds_t ds = Alloc(3 * 4096);
  char* p = Attach(ds, 3 * 4096);
  l4re_ds_t back = L4_INVALID_CAP;
  ASSERT_EQ(l4re_rm_detach_ds(p + 2 * 4096 + 5, &back), 0);
  EXPECT_TRUE(l4_capability_equal(back, ds));
  EXPECT_EQ(l4re_rm_detach(p), -L4_ENOENT);
  EXPECT_EQ(l4re_ds_size(ds), 3u * 4096) << "detach does not free the dataspace";
}

TEST_F(RmTest, DetachWithoutARegionIsENoEntAndReturnsAnInvalidCap) {
  int local = 0;
  l4re_ds_t back = 0;
  EXPECT_EQ(l4re_rm_detach_ds(&local, &back), -L4_ENOENT);
  EXPECT_TRUE(l4_is_invalid_cap(back));
  EXPECT_EQ(l4re_rm_detach(nullptr), -L4_ENOENT);
}

TEST_F(RmTest, FindReturnsTheOverlappingRegion) {
  l4re_ds_t ds = Alloc(8 * 4096);
  void* addr = nullptr;
  ASSERT_EQ(l4re_rm_attach(&addr, 4 * 4096, L4RE_RM_F_SEARCH_ADDR | L4RE_RM_F_R, ds, 4096, 12),
            0);
  l4_addr_t a = reinterpret_cast<l4_addr_t>(addr) + 100;
  unsigned long size = 1;
  l4re_rm_offset_t offset = 0;
  l4re_rm_flags_t flags = 0;
  l4re_ds_t m = 0;
  ASSERT_EQ(l4re_rm_find(&a, &size, &offset, &flags, &m), 0);
  EXPECT_EQ(a, reinterpret_cast<l4_addr_t>(addr));
  EXPECT_EQ(size, 4u * 4096);
  EXPECT_EQ(offset, 4096u);
  EXPECT_EQ(flags & L4RE_RM_F_RWX, static_cast<l4re_rm_flags_t>(L4RE_RM_F_R));
  EXPECT_TRUE(l4_capability_equal(m, ds));
  EXPECT_EQ(l4re_rm_detach(addr), 0);
}

TEST_F(RmTest, FindWithoutARegionIsENoEntAndSizeZeroIsEInval) {
  int local;
  l4_addr_t a = reinterpret_cast<l4_addr_t>(&local);
  unsigned long size = 16;
  l4re_rm_offset_t offset;
  l4re_rm_flags_t flags;
  l4re_ds_t m;
  EXPECT_EQ(l4re_rm_find(&a, &size, &offset, &flags, &m), -L4_ENOENT);
  size = 0;
  EXPECT_EQ(l4re_rm_find(&a, &size, &offset, &flags, &m), -L4_EINVAL);
}

// Client sequence 6 (L4Linux): one dataspace attached read-only a thousand
// times at fixed addresses inside a reserved area.
TEST_F(RmTest, OneDataspaceAttachedReadOnlyAThousandTimes) {
  constexpr int kCount = 1000;
  l4re_ds_t ds = Alloc(4096);
  char* w = Attach(ds, 4096);
  std::strcpy(w, "kernel text");
  l4_addr_t area = 0;
  ASSERT_EQ(l4re_rm_reserve_area(&area, kCount * 4096UL, L4RE_RM_F_SEARCH_ADDR, L4_PAGESHIFT), 0);
  for (int i = 0; i < kCount; ++i) {
    void* at = reinterpret_cast<void*>(area + i * 4096UL);
    ASSERT_EQ(l4re_rm_attach(&at, 4096, L4RE_RM_F_R | L4RE_RM_F_IN_AREA, ds, 0, 0), 0) << i;
    ASSERT_EQ(at, reinterpret_cast<void*>(area + i * 4096UL));
  }
  for (int i = 0; i < kCount; ++i) {
    ASSERT_STREQ(reinterpret_cast<char*>(area + i * 4096UL), "kernel text") << i;
  }
  for (int i = 0; i < kCount; ++i) {
    ASSERT_EQ(l4re_rm_detach(reinterpret_cast<void*>(area + i * 4096UL)), 0);
  }
  EXPECT_EQ(l4re_rm_free_area(area), 0);
  EXPECT_EQ(l4re_rm_detach(w), 0);
}

TEST_F(RmTest, AttachesOutsideAnAreaMayNotEnterItAndInAreaMustStayInside) {
  l4re_ds_t ds = Alloc(4096);
  l4_addr_t area = 0;
  ASSERT_EQ(l4re_rm_reserve_area(&area, 4 * 4096, L4RE_RM_F_SEARCH_ADDR, 14), 0);
  EXPECT_EQ(area % (1 << 14), 0u);
  void* at = reinterpret_cast<void*>(area);
  EXPECT_EQ(l4re_rm_attach(&at, 4096, L4RE_RM_F_RW, ds, 0, 0), -L4_EADDRNOTAVAIL);
  at = reinterpret_cast<void*>(area + 3 * 4096);
  EXPECT_EQ(l4re_rm_attach(&at, 2 * 4096, L4RE_RM_F_RW | L4RE_RM_F_IN_AREA, ds, 0, 0),
            -L4_EADDRNOTAVAIL);
  EXPECT_EQ(l4re_rm_free_area(area), 0);
  EXPECT_EQ(l4re_rm_free_area(area), -L4_ENOENT);
}

using RmDeathTest = ApiTest;

TEST_F(RmDeathTest, AReadOnlyAttachMapsReadOnly) {
  GTEST_FLAG_SET(death_test_style, "threadsafe");
  EXPECT_DEATH(
      {
        l4re_ds_t ds = l4re_util_cap_alloc();
        if (l4re_ma_alloc(4096, ds, 0) != 0) _exit(2);
        void* addr = nullptr;
        if (l4re_rm_attach(&addr, 4096, L4RE_RM_F_SEARCH_ADDR | L4RE_RM_F_R, ds, 0, 12) != 0)
          _exit(3);
        if (static_cast<volatile char*>(addr)[0] != 0) _exit(4);
        fprintf(stderr, "writing through a read-only attach\n");
        static_cast<volatile char*>(addr)[0] = 1;
        _exit(0);
      },
      "writing through a read-only attach");
}

TEST_F(RmDeathTest, AnAttachWithoutRightsIsNotAccessible) {
  GTEST_FLAG_SET(death_test_style, "threadsafe");
  EXPECT_DEATH(
      {
        l4re_ds_t ds = l4re_util_cap_alloc();
        if (l4re_ma_alloc(4096, ds, 0) != 0) _exit(2);
        void* addr = nullptr;
        if (l4re_rm_attach(&addr, 4096, L4RE_RM_F_SEARCH_ADDR, ds, 0, 12) != 0) _exit(3);
        fprintf(stderr, "reading without rights\n");
        (void)static_cast<volatile char*>(addr)[0];
        _exit(0);
      },
      "reading without rights");
}

TEST_F(RmDeathTest, ADetachedRegionIsNoLongerMapped) {
  GTEST_FLAG_SET(death_test_style, "threadsafe");
  EXPECT_DEATH(
      {
        l4re_ds_t ds = l4re_util_cap_alloc();
        if (l4re_ma_alloc(4096, ds, 0) != 0) _exit(2);
        void* addr = nullptr;
        if (l4re_rm_attach(&addr, 4096, L4RE_RM_F_SEARCH_ADDR | L4RE_RM_F_RW, ds, 0, 12) != 0)
          _exit(3);
        if (l4re_rm_detach(addr) != 0) _exit(4);
        fprintf(stderr, "touching a detached region\n");
        static_cast<volatile char*>(addr)[0] = 1;
        _exit(0);
      },
      "touching a detached region");
}

}  // namespace
}  // namespace l4re_ma::testing
