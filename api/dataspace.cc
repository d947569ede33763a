// The dataspace calls: look the capability up, forward to the Dataspace.
#include <l4/re/c/dataspace.h>

#include <l4/sys/err.h>

#include "api/c_result.h"
#include "api/runtime.h"
#include "core/dataspace.h"

using l4re_ma::CResult;
using l4re_ma::Dataspace;
using l4re_ma::DataspaceInfo;
using l4re_ma::L4Errno;
using l4re_ma::Runtime;

static_assert(L4RE_DS_F_RWX == l4re_ma::kRightsRWX, "rights values");

namespace {

absl::StatusOr<std::shared_ptr<Dataspace>> Ds(l4re_ds_t ds) {
  return Runtime::Get().LookupAs<Dataspace>(ds);
}

}  // namespace

extern "C" l4re_ds_size_t l4re_ds_size(l4re_ds_t ds) noexcept {
  auto d = Ds(ds);
  if (!d.ok()) return 0;
  absl::StatusOr<DataspaceInfo> info = (*d)->Info();
  return info.ok() ? info->size : 0;
}

extern "C" l4re_ds_flags_t l4re_ds_flags(l4re_ds_t ds) noexcept {
  auto d = Ds(ds);
  if (!d.ok()) return 0;
  absl::StatusOr<DataspaceInfo> info = (*d)->Info();
  return info.ok() ? info->flags : 0;
}

extern "C" int l4re_ds_info(l4re_ds_t ds, l4re_ds_stats_t* stats) noexcept {
  auto d = Ds(ds);
  if (!d.ok()) return CResult(d);
  if (stats == nullptr) return -L4_EINVAL;
  absl::StatusOr<DataspaceInfo> info = (*d)->Info();
  if (!info.ok()) return CResult(info);
  stats->size = info->size;
  stats->flags = info->flags;
  return 0;
}

extern "C" int l4re_ds_phys(l4re_ds_t ds, l4_addr_t offset, l4_addr_t* phys_addr,
                            l4_size_t* phys_size) noexcept {
  auto d = Ds(ds);
  if (!d.ok()) return CResult(d);
  if (phys_addr == nullptr || phys_size == nullptr) return -L4_EINVAL;
  absl::StatusOr<l4re_ma::PhysExtent> extent = (*d)->Phys(offset);
  if (!extent.ok()) return CResult(extent);
  *phys_addr = extent->addr.value();
  *phys_size = extent->size;
  return 0;
}

extern "C" long l4re_ds_allocate(l4re_ds_t ds, l4re_ds_offset_t offset,
                                 l4re_ds_size_t size) noexcept {
  auto d = Ds(ds);
  if (!d.ok()) return CResult(d);
  return CResult((*d)->Allocate(offset, size));
}

extern "C" long l4re_ds_clear(l4re_ds_t ds, l4re_ds_offset_t offset,
                              l4re_ds_size_t size) noexcept {
  auto d = Ds(ds);
  if (!d.ok()) return CResult(d);
  return CResult((*d)->Clear(offset, size));
}

extern "C" int l4re_ds_copy_in(l4re_ds_t ds, l4re_ds_offset_t dst_offs, l4re_ds_t src,
                               l4re_ds_offset_t src_offs, l4re_ds_size_t size) noexcept {
  auto d = Ds(ds);
  if (!d.ok()) return CResult(d);
  auto s = Ds(src);
  if (!s.ok()) {
    return CResult(l4re_ma::L4Error(L4Errno::kInval, "the source is not a dataspace"));
  }
  return CResult((*d)->CopyIn(dst_offs, **s, src_offs, size));
}
