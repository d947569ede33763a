// bench/capi_cycle.h: the canonical C API client cycle, shared by layers 2
// (in process) and 3 (through memd) of //bench:latency.
#ifndef L4RE_MA_BENCH_CAPI_CYCLE_H_
#define L4RE_MA_BENCH_CAPI_CYCLE_H_

#include <l4/sys/types.h>

#include <cstdint>
#include <memory>

#include "absl/status/statusor.h"
#include "core/object.h"

namespace l4re_ma {
namespace bench {

// Writes one byte to every page of [p, p + bytes).
void TouchPages(void* p, uint64_t bytes);

// Puts `object` (an allocator) into a fresh capability slot of this
// process's table and returns the slot's capability index.
absl::StatusOr<l4_cap_idx_t> InstallAllocator(std::shared_ptr<Object> object);

// cap_alloc, l4re_ma_alloc_align_srv(srv, bytes, flags), rm_attach, a write
// to every page, rm_detach, cap_free_um. 0, or the first failing call's
// negative result.
long CApiCycle(l4_cap_idx_t srv, uint64_t bytes, unsigned long flags);

}  // namespace bench
}  // namespace l4re_ma

#endif  // L4RE_MA_BENCH_CAPI_CYCLE_H_
