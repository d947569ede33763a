#include "core/errors.h"

#include <string>

#include "absl/strings/cord.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"

namespace l4re_ma {
namespace {

constexpr absl::string_view kL4ResultUrl = "l4re_ma/l4_result";
constexpr long kIpcBase = 2000;

absl::StatusCode CanonicalFor(long result) {
  switch (-result) {
    case static_cast<int>(L4Errno::kPerm): return absl::StatusCode::kFailedPrecondition;
    case static_cast<int>(L4Errno::kNoEnt): return absl::StatusCode::kNotFound;
    case static_cast<int>(L4Errno::kNoMem): return absl::StatusCode::kResourceExhausted;
    case static_cast<int>(L4Errno::kAccess): return absl::StatusCode::kPermissionDenied;
    case static_cast<int>(L4Errno::kExist): return absl::StatusCode::kAlreadyExists;
    case static_cast<int>(L4Errno::kInval): return absl::StatusCode::kInvalidArgument;
    case static_cast<int>(L4Errno::kRange): return absl::StatusCode::kOutOfRange;
    case static_cast<int>(L4Errno::kNoSys): return absl::StatusCode::kUnimplemented;
    case static_cast<int>(L4Errno::kBadProto): return absl::StatusCode::kInvalidArgument;
    case static_cast<int>(L4Errno::kAddrNotAvail): return absl::StatusCode::kResourceExhausted;
    default: break;
  }
  if (-result >= kIpcBase && -result < kIpcBase + 0x20) return absl::StatusCode::kUnavailable;
  return absl::StatusCode::kUnknown;
}

}  // namespace

absl::Status FromL4Result(long result, absl::string_view message) {
  absl::Status s(CanonicalFor(result), message);
  s.SetPayload(kL4ResultUrl, absl::Cord(absl::StrCat(result)));
  return s;
}

absl::Status L4Error(L4Errno e, absl::string_view message) {
  return FromL4Result(-static_cast<long>(e), message);
}

absl::Status IpcError(IpcCode code, absl::string_view message) {
  return FromL4Result(-(kIpcBase + static_cast<long>(code)), message);
}

long ToL4Result(const absl::Status& status) {
  if (status.ok()) return 0;
  if (auto payload = status.GetPayload(kL4ResultUrl)) {
    long result = 0;
    if (absl::SimpleAtoi(std::string(*payload), &result) && result < 0) return result;
  }
  switch (status.code()) {
    case absl::StatusCode::kInvalidArgument: return -static_cast<long>(L4Errno::kInval);
    case absl::StatusCode::kOutOfRange: return -static_cast<long>(L4Errno::kRange);
    case absl::StatusCode::kResourceExhausted: return -static_cast<long>(L4Errno::kNoMem);
    case absl::StatusCode::kNotFound: return -static_cast<long>(L4Errno::kNoEnt);
    case absl::StatusCode::kPermissionDenied: return -static_cast<long>(L4Errno::kAccess);
    case absl::StatusCode::kFailedPrecondition: return -static_cast<long>(L4Errno::kPerm);
    case absl::StatusCode::kAlreadyExists: return -static_cast<long>(L4Errno::kExist);
    case absl::StatusCode::kUnimplemented: return -static_cast<long>(L4Errno::kNoSys);
    case absl::StatusCode::kUnavailable:
      return -(kIpcBase + static_cast<long>(IpcCode::kNotExistent));
    default: return -static_cast<long>(L4Errno::kInval);
  }
}

}  // namespace l4re_ma
