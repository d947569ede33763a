// Statistics and pool description (l4re_ma/mem_alloc_ext.h).
#include <l4re_ma/mem_alloc_ext.h>

#include <cstring>

#include <l4/sys/err.h>

#include "api/c_result.h"
#include "api/runtime.h"
#include "core/mem_allocator.h"

using l4re_ma::CResult;
using l4re_ma::MemAllocator;
using l4re_ma::Runtime;

extern "C" long l4re_ma_stats_srv(l4_cap_idx_t srv, l4re_ma_stats_t* stats) noexcept {
  auto allocator = Runtime::Get().LookupAs<MemAllocator>(srv);
  if (!allocator.ok()) return CResult(allocator);
  if (stats == nullptr) return -L4_EINVAL;
  absl::StatusOr<l4re_ma::AllocatorStats> s = (*allocator)->Stats();
  if (!s.ok()) return CResult(s);
  stats->quota = s->quota;
  stats->quota_used = s->quota_used;
  stats->mem_limit = s->mem_limit;
  stats->mem_used = s->mem_used;
  stats->mem_free = s->mem_free;
  return 0;
}

extern "C" long l4re_ma_pool_info_srv(l4_cap_idx_t srv, l4re_ma_pool_info_t* info) noexcept {
  auto allocator = Runtime::Get().LookupAs<MemAllocator>(srv);
  if (!allocator.ok()) return CResult(allocator);
  if (info == nullptr) return -L4_EINVAL;
  absl::StatusOr<l4re_ma::PoolInfo> p = (*allocator)->Pool();
  if (!p.ok()) return CResult(p);
  std::memset(info->backend, 0, sizeof(info->backend));
  std::strncpy(info->backend, p->backend.c_str(), sizeof(info->backend) - 1);
  info->phys_base = p->base;
  info->size = p->size;
  info->free = p->free_bytes;
  info->largest_free_run = p->largest_free_run;
  return 0;
}
