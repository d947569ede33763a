// api/c_result.h: the one place that turns core statuses into the C API's
// negative L4 result codes.
#ifndef L4RE_MA_API_C_RESULT_H_
#define L4RE_MA_API_C_RESULT_H_

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "core/errors.h"

namespace l4re_ma {

inline long CResult(const absl::Status& s) { return ToL4Result(s); }

template <typename T>
long CResult(const absl::StatusOr<T>& s) {
  return ToL4Result(s.status());
}

}  // namespace l4re_ma

#endif  // L4RE_MA_API_C_RESULT_H_
