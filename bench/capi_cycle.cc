#include "bench/capi_cycle.h"

#include <l4/re/c/mem_alloc.h>
#include <l4/re/c/rm.h>
#include <l4/re/c/util/cap_alloc.h>
#include <l4/sys/consts.h>
#include <l4/sys/err.h>

#include <cstdint>
#include <memory>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "api/runtime.h"
#include "core/cap_table.h"

namespace l4re_ma {
namespace bench {

void TouchPages(void* p, uint64_t bytes) {
  volatile char* c = static_cast<volatile char*>(p);
  for (uint64_t off = 0; off < bytes; off += L4_PAGESIZE) c[off] = 1;
}

absl::StatusOr<l4_cap_idx_t> InstallAllocator(std::shared_ptr<Object> object) {
  const l4_cap_idx_t cap = l4re_util_cap_alloc();
  if (l4_is_invalid_cap(cap)) return absl::ResourceExhaustedError("no free capability slot");
  absl::StatusOr<uint32_t> slot = Runtime::Get().caps().SlotOf(cap);
  if (!slot.ok()) return slot.status();
  Runtime::Get().caps().Install(*slot, std::move(object));
  return cap;
}

long CApiCycle(l4_cap_idx_t srv, uint64_t bytes, unsigned long flags) {
  const l4re_ds_t ds = l4re_util_cap_alloc();
  if (l4_is_invalid_cap(ds)) return -L4_ENOMEM;
  long r = l4re_ma_alloc_align_srv(srv, static_cast<long>(bytes), ds, flags, 0);
  if (r == 0) {
    void* addr = nullptr;
    r = l4re_rm_attach(&addr, bytes, L4RE_RM_F_SEARCH_ADDR | L4RE_RM_F_RW, ds, 0, L4_PAGESHIFT);
    if (r == 0) {
      TouchPages(addr, bytes);
      r = l4re_rm_detach(addr);
    }
  }
  l4re_util_cap_free_um(ds);
  return r;
}

}  // namespace bench
}  // namespace l4re_ma
