/*
 * l4/re/c/mem_alloc.h: the memory allocator C interface, exactly as L4Re
 * declares it.
 *
 * Return values: 0 on success, -L4_ERANGE for a size not supported (0, or
 * negative without CONTINUOUS), -L4_ENOMEM when memory or quota runs out,
 * -L4_EINVAL for unknown flag bits (Moe ignores them; rejected here) or
 * align >= 64, and -(L4_EIPC_LO + code) for IPC errors (-2004 for an empty
 * or invalid server capability).
 *
 * Beyond L4Re, where l4re_ma_free is an empty stub: it really frees the
 * dataspace in `mem` (its memory returns to the allocator and every mapping
 * of it is revoked); the slot becomes empty but stays allocated.
 */
#ifndef L4_RE_C_MEM_ALLOC_H__
#define L4_RE_C_MEM_ALLOC_H__

#include <l4/re/env.h>
#include <l4/sys/consts.h>
#include <l4/re/c/dataspace.h>

EXTERN_C_BEGIN

/* Flags for requesting memory at the memory allocator. */
enum l4re_ma_flags {
  L4RE_MA_CONTINUOUS  = 0x01,  /* one physically contiguous run */
  L4RE_MA_PINNED      = 0x02,  /* pinned; behaves as CONTINUOUS */
  L4RE_MA_SUPER_PAGES = 0x04,  /* 2 MiB pages */
};

/* Allocates a dataspace of `size` bytes into the slot `mem`. With a
 * negative size and CONTINUOUS: takes as much as possible, leaving at least
 * -size bytes allocatable. */
L4_CV L4_INLINE long
l4re_ma_alloc(long size, l4re_ds_t const mem, unsigned long flags) L4_NOTHROW;

/* As l4re_ma_alloc, with a log2 alignment (raised to at least L4_PAGESHIFT,
 * or L4_SUPERPAGESHIFT with SUPER_PAGES). */
L4_CV L4_INLINE long
l4re_ma_alloc_align(long size, l4re_ds_t const mem, unsigned long flags,
                    unsigned long align) L4_NOTHROW;

/* Frees the dataspace in `mem`. 0, -L4_EINVAL if the slot holds no
 * dataspace, -L4_EPERM if it belongs to another allocator. */
L4_CV L4_INLINE long
l4re_ma_free(l4re_ds_t const mem) L4_NOTHROW
L4_DEPRECATED("Deprecated in L4Re; releasing the dataspace capability frees it.");

L4_CV long
l4re_ma_alloc_align_srv(l4_cap_idx_t srv, long size, l4re_ds_t const mem,
                        unsigned long flags, unsigned long align) L4_NOTHROW;

L4_CV long
l4re_ma_free_srv(l4_cap_idx_t srv, l4re_ds_t const mem) L4_NOTHROW
L4_DEPRECATED("Deprecated in L4Re; releasing the dataspace capability frees it.");

/***************** Implementation *****************/

#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wdeprecated-declarations"

L4_CV L4_INLINE long
l4re_ma_alloc(long size, l4re_ds_t const mem, unsigned long flags) L4_NOTHROW
{
  return l4re_ma_alloc_align_srv(l4re_global_env->mem_alloc, size, mem, flags, 0);
}

L4_CV L4_INLINE long
l4re_ma_alloc_align(long size, l4re_ds_t const mem, unsigned long flags,
                    unsigned long align) L4_NOTHROW
{
  return l4re_ma_alloc_align_srv(l4re_global_env->mem_alloc, size, mem, flags, align);
}

L4_CV L4_INLINE long
l4re_ma_free(l4re_ds_t const mem) L4_NOTHROW
{
  return l4re_ma_free_srv(l4re_global_env->mem_alloc, mem);
}

#pragma GCC diagnostic pop

EXTERN_C_END

#endif /* L4_RE_C_MEM_ALLOC_H__ */
