// l4re_util_cap_alloc / _free / _free_um / _last.
#include <vector>

#include "tests/api/api_test_util.h"

namespace l4re_ma::testing {
namespace {

TEST(CapAllocTest, IndicesAreSlotNumbersShiftedByTwelveAndLowestFirst) {
  l4_cap_idx_t a = l4re_util_cap_alloc();
  l4_cap_idx_t b = l4re_util_cap_alloc();
  ASSERT_FALSE(l4_is_invalid_cap(a));
  EXPECT_EQ(a % L4_CAP_OFFSET, 0u);
  EXPECT_GE(a, l4re_env()->first_free_cap);
  EXPECT_LT(a, b);
  l4re_util_cap_free(a);
  EXPECT_EQ(l4re_util_cap_alloc(), a) << "the lowest free slot comes first";
  l4re_util_cap_free(a);
  l4re_util_cap_free(b);
}

TEST(CapAllocTest, ExhaustionGivesTheInvalidCapAndFreeingRecovers) {
  std::vector<l4_cap_idx_t> caps;
  for (;;) {
    l4_cap_idx_t c = l4re_util_cap_alloc();
    if (l4_is_invalid_cap(c)) break;
    ASSERT_LE(c, static_cast<l4_cap_idx_t>(l4re_util_cap_last()));
    caps.push_back(c);
    ASSERT_LT(caps.size(), 1u << 20) << "no end in sight";
  }
  EXPECT_EQ(caps.back(), static_cast<l4_cap_idx_t>(l4re_util_cap_last()));
  EXPECT_TRUE(l4_is_invalid_cap(l4re_util_cap_alloc()));
  l4re_util_cap_free(caps[caps.size() / 2]);
  EXPECT_EQ(l4re_util_cap_alloc(), caps[caps.size() / 2]);
  for (l4_cap_idx_t c : caps) l4re_util_cap_free(c);
}

TEST(CapAllocTest, FreeingAnInvalidIndexIsHarmless) {
  l4re_util_cap_free(L4_INVALID_CAP);
  l4re_util_cap_free_um(~0UL);
  l4re_util_cap_free(static_cast<l4_cap_idx_t>(l4re_util_cap_last()) + L4_CAP_OFFSET);
  l4_cap_idx_t a = l4re_util_cap_alloc();
  EXPECT_FALSE(l4_is_invalid_cap(a));
  l4re_util_cap_free(a);
}

TEST(CapAllocTest, TheEnvironmentsSlotsAreNeverHandedOut) {
  std::vector<l4_cap_idx_t> caps;
  for (int i = 0; i < 100; ++i) {
    l4_cap_idx_t c = l4re_util_cap_alloc();
    EXPECT_FALSE(l4_capability_equal(c, l4re_env()->mem_alloc));
    EXPECT_FALSE(l4_capability_equal(c, l4re_env()->rm));
    caps.push_back(c);
  }
  for (l4_cap_idx_t c : caps) l4re_util_cap_free(c);
}

}  // namespace
}  // namespace l4re_ma::testing
