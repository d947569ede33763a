// Helpers shared by the C API tests: capability slots that are released
// at the end of a test, and a view of the pool behind the environment's
// allocator.
#ifndef L4RE_MA_TESTS_API_API_TEST_UTIL_H_
#define L4RE_MA_TESTS_API_API_TEST_UTIL_H_

#include <l4/re/c/dataspace.h>
#include <l4/re/c/mem_alloc.h>
#include <l4/re/c/rm.h>
#include <l4/re/c/util/cap_alloc.h>
#include <l4/re/env.h>
#include <l4/sys/err.h>
#include <l4re_ma/mem_alloc_ext.h>

#include <cstdint>
#include <vector>

#include "gtest/gtest.h"

namespace l4re_ma::testing {

inline constexpr long kIpcNotExistent = -(L4_EIPC_LO + 4);

inline l4re_ma_pool_info_t PoolInfo(l4_cap_idx_t srv = l4re_env()->mem_alloc) {
  l4re_ma_pool_info_t info{};
  EXPECT_EQ(l4re_ma_pool_info_srv(srv, &info), 0);
  return info;
}

inline uint64_t PoolFree() { return PoolInfo().free; }

// Owns capability slots for one test; frees them (and what they hold).
class ApiTest : public ::testing::Test {
 protected:
  void SetUp() override { free_at_start_ = PoolFree(); }
  void TearDown() override {
    for (l4_cap_idx_t c : caps_) l4re_util_cap_free_um(c);
    caps_.clear();
    // Every test must give back all it took.
    EXPECT_EQ(PoolFree(), free_at_start_) << "the test leaked pool memory";
  }

  l4_cap_idx_t NewCap() {
    l4_cap_idx_t c = l4re_util_cap_alloc();
    EXPECT_FALSE(l4_is_invalid_cap(c));
    caps_.push_back(c);
    return c;
  }

  // A new dataspace in a new slot; fails the test if allocation fails.
  l4re_ds_t Alloc(long size, unsigned long flags = 0, unsigned long align = 0) {
    l4re_ds_t ds = NewCap();
    EXPECT_EQ(l4re_ma_alloc_align(size, ds, flags, align), 0)
        << "size " << size << " flags " << flags << " align " << align;
    return ds;
  }

  // Attaches the whole dataspace read-write at a searched address.
  char* Attach(l4re_ds_t ds, unsigned long size, unsigned char align = L4_PAGESHIFT,
               unsigned long rights = L4RE_RM_F_RW) {
    void* addr = nullptr;
    EXPECT_EQ(l4re_rm_attach(&addr, size, L4RE_RM_F_SEARCH_ADDR | rights, ds, 0, align), 0);
    return static_cast<char*>(addr);
  }

  uint64_t free_at_start_ = 0;
  std::vector<l4_cap_idx_t> caps_;
};

}  // namespace l4re_ma::testing

#endif  // L4RE_MA_TESTS_API_API_TEST_UTIL_H_
