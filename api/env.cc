// The initial environment: valid from program start (constant
// initialization), so the inline C functions may read it at any time.
#include <l4/re/env.h>

#include "api/runtime.h"

namespace {

constexpr l4_cap_idx_t Index(uint32_t slot) {
  return static_cast<l4_cap_idx_t>(slot) << L4_CAP_SHIFT;
}

l4re_env_t g_env = {
    /*parent=*/L4_INVALID_CAP,
    /*rm=*/Index(l4re_ma::kEnvRmSlot),
    /*mem_alloc=*/Index(l4re_ma::kEnvMemAllocSlot),
    /*log=*/L4_INVALID_CAP,
    /*main_thread=*/L4_BASE_THREAD_CAP,
    /*factory=*/Index(l4re_ma::kEnvMemAllocSlot),
    /*scheduler=*/L4_INVALID_CAP,
    /*first_free_cap=*/Index(l4re_ma::kEnvFirstFreeSlot),
    /*utcb_area=*/{0},
    /*first_free_utcb=*/0,
    /*caps=*/nullptr,
};

}  // namespace

// C linkage comes from the declaration in l4/re/env.h.
l4re_env_t* l4re_global_env = &g_env;
