// The capability-slot allocator.
#include <l4/re/c/util/cap_alloc.h>

#include "api/runtime.h"

using l4re_ma::CapTable;
using l4re_ma::Runtime;

extern "C" l4_cap_idx_t l4re_util_cap_alloc(void) noexcept {
  std::optional<uint32_t> slot = Runtime::Get().caps().AllocSlot();
  return slot ? CapTable::IndexOf(*slot) : L4_INVALID_CAP;
}

extern "C" void l4re_util_cap_free(l4_cap_idx_t cap) noexcept {
  CapTable& caps = Runtime::Get().caps();
  absl::StatusOr<uint32_t> slot = caps.SlotOf(cap);
  if (slot.ok()) caps.FreeSlot(*slot);
}

extern "C" void l4re_util_cap_free_um(l4_cap_idx_t cap) noexcept { l4re_util_cap_free(cap); }

extern "C" long l4re_util_cap_last(void) noexcept {
  return static_cast<long>(CapTable::IndexOf(Runtime::Get().caps().slots() - 1));
}
