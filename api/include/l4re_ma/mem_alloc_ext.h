/*
 * l4re_ma/mem_alloc_ext.h: what this project adds to L4Re's C API.
 *
 * Allocator statistics as Moe computes them, and a description of the
 * physical pool behind an allocator. Valid C99 and C++.
 */
#ifndef L4RE_MA_MEM_ALLOC_EXT_H__
#define L4RE_MA_MEM_ALLOC_EXT_H__

#include <l4/sys/types.h>

EXTERN_C_BEGIN

/* Per-allocator statistics, in bytes. mem_free is
 * min(mem_limit - mem_used, quota - quota_used, free memory of the pool). */
typedef struct l4re_ma_stats_t {
  l4_uint64_t quota;       /* the allocator's limit, bookkeeping included */
  l4_uint64_t quota_used;  /* charged so far (pages, bookkeeping, sub-allocators) */
  l4_uint64_t mem_limit;   /* pool memory the allocator may use */
  l4_uint64_t mem_used;    /* pool memory backing its dataspaces */
  l4_uint64_t mem_free;    /* what it can still get */
} l4re_ma_stats_t;

/* The physical pool behind an allocator. */
typedef struct l4re_ma_pool_info_t {
  char backend[32];              /* registered backend name, NUL-terminated */
  l4_uint64_t phys_base;         /* first emulated physical address */
  l4_uint64_t size;              /* bytes */
  l4_uint64_t free;              /* bytes not handed out */
  l4_uint64_t largest_free_run;  /* bytes of the largest run available now */
} l4re_ma_pool_info_t;

/* 0, -L4_EINVAL for a null pointer, -2004 for an empty or invalid
 * capability, -L4_EBADPROTO if srv is not an allocator. */
L4_CV long
l4re_ma_stats_srv(l4_cap_idx_t srv, l4re_ma_stats_t *stats) L4_NOTHROW;

L4_CV long
l4re_ma_pool_info_srv(l4_cap_idx_t srv, l4re_ma_pool_info_t *info) L4_NOTHROW;

EXTERN_C_END

#endif /* L4RE_MA_MEM_ALLOC_EXT_H__ */
