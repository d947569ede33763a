#include "core/cap_table.h"

#include <memory>
#include <set>

#include "gtest/gtest.h"

namespace l4re_ma {
namespace {

class CountingObject : public Object {
 public:
  explicit CountingObject(int* released) : released_(released) {}
  ObjectKind kind() const override { return ObjectKind::kDataspace; }
  void OnLastCapabilityReleased() override { ++*released_; }

 private:
  int* released_;
};

TEST(CapTableTest, SlotOfDecodesL4Indices) {
  CapTable t(128, 16);
  EXPECT_EQ(*t.SlotOf(0x5000), 5u);
  EXPECT_EQ(*t.SlotOf(0x5000 | 0x7), 5u) << "low bits carry rights";
  EXPECT_FALSE(t.SlotOf(0x5800).ok()) << "bit 11 marks an invalid index";
  EXPECT_FALSE(t.SlotOf(~0UL << 11).ok());
  EXPECT_FALSE(t.SlotOf(uint64_t{128} << 12).ok());
  EXPECT_EQ(CapTable::IndexOf(7), 0x7000u);
}

TEST(CapTableTest, AllocatesLowestFirstFromFirstAllocatable) {
  CapTable t(200, 10);
  EXPECT_EQ(*t.AllocSlot(), 10u);
  EXPECT_EQ(*t.AllocSlot(), 11u);
  EXPECT_EQ(*t.AllocSlot(), 12u);
  t.FreeSlot(11);
  EXPECT_EQ(*t.AllocSlot(), 11u);
  std::set<uint32_t> seen;
  while (auto s = t.AllocSlot()) seen.insert(*s);
  EXPECT_EQ(seen.size(), 200u - 13u);
  EXPECT_EQ(*seen.rbegin(), 199u);
  t.FreeSlot(150);
  EXPECT_EQ(*t.AllocSlot(), 150u);
}

TEST(CapTableTest, OccupiedSlotsAreNotHandedOut) {
  CapTable t(70, 0);
  int released = 0;
  t.Install(0, std::make_shared<CountingObject>(&released));
  EXPECT_EQ(*t.AllocSlot(), 1u);
}

TEST(CapTableTest, TheLastCapabilityReleaseCallsTheObjectOnce) {
  CapTable t(64, 0);
  int released = 0;
  auto obj = std::make_shared<CountingObject>(&released);
  t.Install(3, obj);
  t.Install(4, obj);
  EXPECT_TRUE(t.Clear(3));
  EXPECT_EQ(released, 0);
  t.Install(4, nullptr);
  EXPECT_EQ(released, 1);
  EXPECT_FALSE(t.Clear(4));
  EXPECT_EQ(t.occupied(), 0u);
}

TEST(CapTableTest, ClearWithExpectedOnlyRemovesThatObject) {
  CapTable t(64, 0);
  int a_released = 0, b_released = 0;
  auto a = std::make_shared<CountingObject>(&a_released);
  auto b = std::make_shared<CountingObject>(&b_released);
  t.Install(5, a);
  EXPECT_FALSE(t.Clear(5, b.get()));
  EXPECT_EQ(t.Get(5), a);
  EXPECT_TRUE(t.Clear(5, a.get()));
  EXPECT_EQ(a_released, 1);
}

TEST(CapTableTest, FreeSlotAndClearAllReleaseObjects) {
  CapTable t(64, 0);
  int released = 0;
  t.Install(1, std::make_shared<CountingObject>(&released));
  t.Install(2, std::make_shared<CountingObject>(&released));
  t.FreeSlot(1);
  EXPECT_EQ(released, 1);
  t.ClearAll();
  EXPECT_EQ(released, 2);
}

}  // namespace
}  // namespace l4re_ma
