// l4_factory_create_factory: sub-allocators with their own quota.
#include <l4/sys/factory.h>

#include "api/c_result.h"
#include "api/runtime.h"
#include "core/mem_allocator.h"

using l4re_ma::CResult;
using l4re_ma::L4Errno;
using l4re_ma::MemAllocator;
using l4re_ma::Runtime;

namespace {

l4_msgtag_t Tag(long result) {
  const bool ipc_error = result <= -L4_EIPC_LO && result >= -L4_EIPC_HI;
  return l4_msgtag(result, 0, 0, ipc_error ? L4_MSGTAG_ERROR : 0);
}

}  // namespace

extern "C" l4_msgtag_t l4_factory_create_factory_u(l4_cap_idx_t factory, l4_cap_idx_t target_cap,
                                                   unsigned long limit,
                                                   l4_utcb_t* /*utcb*/) noexcept {
  Runtime& rt = Runtime::Get();
  auto parent = rt.LookupAs<MemAllocator>(factory);
  if (!parent.ok()) return Tag(CResult(parent));
  absl::StatusOr<uint32_t> slot = rt.caps().SlotOf(target_cap);
  if (!slot.ok()) {
    return Tag(CResult(l4re_ma::L4Error(L4Errno::kInval, "invalid target capability slot")));
  }
  auto child = (*parent)->CreateSubAllocator(static_cast<long>(limit));
  if (!child.ok()) return Tag(CResult(child));
  rt.caps().Install(*slot, *std::move(child));
  return Tag(0);
}
