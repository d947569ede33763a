#include "core/errors.h"

#include "gtest/gtest.h"

namespace l4re_ma {
namespace {

TEST(ErrorsTest, L4ErrorsKeepTheirExactNumber) {
  EXPECT_EQ(ToL4Result(absl::OkStatus()), 0);
  EXPECT_EQ(ToL4Result(L4Error(L4Errno::kPerm, "x")), -1);
  EXPECT_EQ(ToL4Result(L4Error(L4Errno::kAccess, "x")), -13);
  EXPECT_EQ(ToL4Result(L4Error(L4Errno::kNoMem, "x")), -12);
  EXPECT_EQ(ToL4Result(L4Error(L4Errno::kAddrNotAvail, "x")), -99);
  EXPECT_EQ(ToL4Result(L4Error(L4Errno::kBadProto, "x")), -39);
  EXPECT_EQ(ToL4Result(IpcError(IpcCode::kNotExistent, "x")), -2004);
  EXPECT_EQ(ToL4Result(IpcError(IpcCode::kRecvAborted, "x")), -2015);
}

TEST(ErrorsTest, MessagesAndCanonicalCodesSurvive) {
  absl::Status s = L4Error(L4Errno::kRange, "size 0 is not supported");
  EXPECT_TRUE(absl::IsOutOfRange(s));
  EXPECT_EQ(s.message(), "size 0 is not supported");
  EXPECT_TRUE(absl::IsUnavailable(IpcError(IpcCode::kNotExistent, "gone")));
}

TEST(ErrorsTest, PlainStatusesMapByCanonicalCode) {
  EXPECT_EQ(ToL4Result(absl::InvalidArgumentError("x")), -22);
  EXPECT_EQ(ToL4Result(absl::ResourceExhaustedError("x")), -12);
  EXPECT_EQ(ToL4Result(absl::OutOfRangeError("x")), -34);
  EXPECT_EQ(ToL4Result(absl::UnavailableError("x")), -2004);
}

TEST(ErrorsTest, FromL4ResultRoundTrips) {
  for (long r : {-1L, -2L, -12L, -13L, -22L, -34L, -39L, -99L, -2004L, -2003L}) {
    EXPECT_EQ(ToL4Result(FromL4Result(r, "m")), r);
  }
}

}  // namespace
}  // namespace l4re_ma
