// core/errors.h: the failures the core reports, as absl::Status values that
// carry the exact L4 error number.
//
// The core works with absl::Status; api/ turns a status into the negative
// L4Re return code with ToL4Result(). Each status keeps a message naming the
// bad value (for tools and logs) and its precise L4 error number (as a
// payload), so that -L4_EPERM and -L4_EACCESS, say, never collapse into one
// canonical code.
#ifndef L4RE_MA_CORE_ERRORS_H_
#define L4RE_MA_CORE_ERRORS_H_

#include "absl/status/status.h"
#include "absl/strings/string_view.h"

namespace l4re_ma {

// L4Re's error numbers (positive; the C API returns them negated).
enum class L4Errno : int {
  kPerm = 1,
  kNoEnt = 2,
  kNoMem = 12,
  kAccess = 13,
  kExist = 17,
  kInval = 22,
  kRange = 34,
  kNoSys = 38,
  kBadProto = 39,
  kAddrNotAvail = 99,
};

// IPC error codes (the C API returns -(2000 + code)).
enum class IpcCode : int {
  kSendTimeout = 0x02,
  kRecvTimeout = 0x03,
  kNotExistent = 0x04,
  kSendCanceled = 0x06,
  kRecvCanceled = 0x07,
  kSendAborted = 0x0e,
  kRecvAborted = 0x0f,
};

// A failure with L4 error number `e`.
absl::Status L4Error(L4Errno e, absl::string_view message);
// An IPC failure: the object or server cannot be reached.
absl::Status IpcError(IpcCode code, absl::string_view message);

// The negative L4 result for `status`: 0 for OK, -errno for L4Error(),
// -(2000 + code) for IpcError(); other statuses map by canonical code.
long ToL4Result(const absl::Status& status);

// Builds a status from a negative L4 result (the inverse of ToL4Result, used
// by the remote transport). REQUIRES: result < 0.
absl::Status FromL4Result(long result, absl::string_view message);

}  // namespace l4re_ma

#endif  // L4RE_MA_CORE_ERRORS_H_
