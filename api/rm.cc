// The region map calls: look up the region map and the dataspace, forward.
#include <l4/re/c/rm.h>

#include <cstdio>
#include <string>

#include <l4/sys/err.h>

#include "api/c_result.h"
#include "api/region_map.h"
#include "api/runtime.h"
#include "core/dataspace.h"

using l4re_ma::CResult;
using l4re_ma::Dataspace;
using l4re_ma::L4Errno;
using l4re_ma::RegionMap;
using l4re_ma::Runtime;

static_assert(L4RE_RM_F_SEARCH_ADDR == l4re_ma::kRmSearchAddr, "flag values");
static_assert(L4RE_RM_F_IN_AREA == l4re_ma::kRmInArea, "flag values");
static_assert(L4RE_RM_F_EAGER_MAP == l4re_ma::kRmEagerMap, "flag values");
static_assert(L4RE_RM_F_NO_EAGER_MAP == l4re_ma::kRmNoEagerMap, "flag values");
static_assert(L4RE_RM_F_RESERVED == l4re_ma::kRmReserved, "flag values");

extern "C" int l4re_rm_attach_srv(l4_cap_idx_t rm, void** start, unsigned long size,
                                  l4re_rm_flags_t flags, l4re_ds_t mem, l4re_rm_offset_t offs,
                                  unsigned char align) noexcept {
  Runtime& rt = Runtime::Get();
  auto map = rt.LookupAs<RegionMap>(rm);
  if (!map.ok()) return CResult(map);
  if (start == nullptr) return -L4_EINVAL;
  absl::StatusOr<std::shared_ptr<Dataspace>> ds = rt.LookupAs<Dataspace>(mem);
  if (!ds.ok()) {
    if (absl::IsUnavailable(ds.status())) {
      return CResult(l4re_ma::L4Error(L4Errno::kNoEnt, "no dataspace in the capability slot"));
    }
    return CResult(ds);
  }
  uint64_t addr = reinterpret_cast<uint64_t>(*start);
  const uint64_t cap = mem & ~static_cast<l4_cap_idx_t>(L4_CAP_SIZE - 1);
  absl::Status s = (*map)->Attach(&addr, size, flags, *ds, cap, offs, align);
  if (!s.ok()) return CResult(s);
  *start = reinterpret_cast<void*>(addr);
  return 0;
}

extern "C" int l4re_rm_detach_srv(l4_cap_idx_t rm, l4_addr_t addr, l4re_ds_t* ds,
                                  l4_cap_idx_t /*task*/) noexcept {
  auto map = Runtime::Get().LookupAs<RegionMap>(rm);
  if (!map.ok()) return CResult(map);
  absl::StatusOr<RegionMap::Region> region = (*map)->Detach(addr);
  if (ds != nullptr) *ds = region.ok() ? region->ds_cap : L4_INVALID_CAP;
  return CResult(region);
}

extern "C" int l4re_rm_find_srv(l4_cap_idx_t rm, l4_addr_t* addr, unsigned long* size,
                                l4re_rm_offset_t* offset, l4re_rm_flags_t* flags,
                                l4re_ds_t* m) noexcept {
  auto map = Runtime::Get().LookupAs<RegionMap>(rm);
  if (!map.ok()) return CResult(map);
  if (addr == nullptr || size == nullptr || offset == nullptr || flags == nullptr ||
      m == nullptr) {
    return -L4_EINVAL;
  }
  absl::StatusOr<RegionMap::Region> region = (*map)->Find(*addr, *size);
  if (!region.ok()) return CResult(region);
  *addr = region->start;
  *size = region->size;
  *offset = region->offset;
  *flags = region->flags;
  *m = region->ds_cap;
  return 0;
}

extern "C" int l4re_rm_reserve_area_srv(l4_cap_idx_t rm, l4_addr_t* start, unsigned long size,
                                        l4re_rm_flags_t flags, unsigned char align) noexcept {
  auto map = Runtime::Get().LookupAs<RegionMap>(rm);
  if (!map.ok()) return CResult(map);
  if (start == nullptr) return -L4_EINVAL;
  uint64_t addr = *start;
  absl::Status s = (*map)->ReserveArea(&addr, size, flags, align);
  if (!s.ok()) return CResult(s);
  *start = addr;
  return 0;
}

extern "C" int l4re_rm_free_area_srv(l4_cap_idx_t rm, l4_addr_t addr) noexcept {
  auto map = Runtime::Get().LookupAs<RegionMap>(rm);
  if (!map.ok()) return CResult(map);
  return CResult((*map)->FreeArea(addr));
}

extern "C" void l4re_rm_show_lists_srv(l4_cap_idx_t rm) noexcept {
  auto map = Runtime::Get().LookupAs<RegionMap>(rm);
  if (!map.ok()) return;
  std::fputs((*map)->DebugString().c_str(), stderr);
}
