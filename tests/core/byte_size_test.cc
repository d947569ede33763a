#include "core/byte_size.h"

#include "gtest/gtest.h"

namespace l4re_ma {
namespace {

TEST(ParseByteSizeTest, AcceptsPlainNumbersAndBinarySuffixes) {
  EXPECT_EQ(*ParseByteSize("4096"), 4096u);
  EXPECT_EQ(*ParseByteSize("4K"), 4096u);
  EXPECT_EQ(*ParseByteSize("4k"), 4096u);
  EXPECT_EQ(*ParseByteSize("256M"), 256u << 20);
  EXPECT_EQ(*ParseByteSize("256MiB"), 256u << 20);
  EXPECT_EQ(*ParseByteSize("256mb"), 256u << 20);
  EXPECT_EQ(*ParseByteSize("4G"), uint64_t{4} << 30);
  EXPECT_EQ(*ParseByteSize("2T"), uint64_t{2} << 40);
  EXPECT_EQ(*ParseByteSize(" 1.5G "), uint64_t{3} << 29);
  EXPECT_EQ(*ParseByteSize("12B"), 12u);
}

TEST(ParseByteSizeTest, RejectsBadTextNamingIt) {
  for (const char* bad : {"", "M", "12Q", "1.5", "0", "0K", "-1", "1e3", "4 GB extra",
                          "99999999999999999999", "20000000T", "0.3K"}) {
    absl::StatusOr<uint64_t> r = ParseByteSize(bad);
    ASSERT_FALSE(r.ok()) << "'" << bad << "' parsed as " << *r;
    EXPECT_TRUE(absl::IsInvalidArgument(r.status()));
    EXPECT_NE(r.status().message().find(std::string("'") + bad + "'"), absl::string_view::npos)
        << r.status();
  }
}

TEST(FormatBytesTest, UsesBinaryUnits) {
  EXPECT_EQ(FormatBytes(12), "12 B");
  EXPECT_EQ(FormatBytes(4096), "4 KiB");
  EXPECT_EQ(FormatBytes(256u << 20), "256 MiB");
  EXPECT_EQ(FormatBytes(uint64_t{3} << 29), "1.50 GiB");
}

}  // namespace
}  // namespace l4re_ma
