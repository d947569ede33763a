// l4re_ma_alloc_align_srv and l4re_ma_free_srv: validate the capabilities,
// dispatch to the allocator object, deliver the dataspace capability.
#include <l4/re/c/mem_alloc.h>

#include "api/c_result.h"
#include "api/runtime.h"
#include "core/mem_allocator.h"

using l4re_ma::CResult;
using l4re_ma::Dataspace;
using l4re_ma::L4Errno;
using l4re_ma::MemAllocator;
using l4re_ma::Runtime;

static_assert(L4RE_MA_CONTINUOUS == l4re_ma::kMaContinuous, "flag values");
static_assert(L4RE_MA_PINNED == l4re_ma::kMaPinned, "flag values");
static_assert(L4RE_MA_SUPER_PAGES == l4re_ma::kMaSuperPages, "flag values");

extern "C" long l4re_ma_alloc_align_srv(l4_cap_idx_t srv, long size, l4re_ds_t const mem,
                                        unsigned long flags, unsigned long align) noexcept {
  Runtime& rt = Runtime::Get();
  absl::StatusOr<std::shared_ptr<MemAllocator>> allocator = rt.LookupAs<MemAllocator>(srv);
  if (!allocator.ok()) return CResult(allocator);
  absl::StatusOr<uint32_t> slot = rt.caps().SlotOf(mem);
  if (!slot.ok()) {
    return CResult(l4re_ma::L4Error(L4Errno::kInval, "invalid capability slot for the dataspace"));
  }
  absl::StatusOr<std::shared_ptr<Dataspace>> ds = (*allocator)->Alloc(size, flags, align);
  if (!ds.ok()) return CResult(ds);
  rt.caps().Install(*slot, *std::move(ds));
  return 0;
}

extern "C" long l4re_ma_free_srv(l4_cap_idx_t srv, l4re_ds_t const mem) noexcept {
  Runtime& rt = Runtime::Get();
  absl::StatusOr<std::shared_ptr<MemAllocator>> allocator = rt.LookupAs<MemAllocator>(srv);
  if (!allocator.ok()) return CResult(allocator);
  absl::StatusOr<uint32_t> slot = rt.caps().SlotOf(mem);
  std::shared_ptr<Dataspace> ds;
  if (slot.ok()) ds = std::dynamic_pointer_cast<Dataspace>(rt.caps().Get(*slot));
  if (ds == nullptr) {
    return CResult(l4re_ma::L4Error(L4Errno::kInval, "the slot holds no dataspace"));
  }
  if (absl::Status s = (*allocator)->Free(*ds); !s.ok()) return CResult(s);
  rt.caps().Clear(*slot, ds.get());
  return 0;
}
