/*
 * l4/re/c/util/cap_alloc.h: the capability-slot allocator (L4Re's names).
 *
 * Slots are handed out lowest first as indices (slot << L4_CAP_SHIFT), from
 * l4re_global_env->first_free_cap up to l4re_util_cap_last(). Thread-safe.
 */
#ifndef L4_RE_C_UTIL_CAP_ALLOC_H__
#define L4_RE_C_UTIL_CAP_ALLOC_H__

#include <l4/sys/types.h>

EXTERN_C_BEGIN

/* A free capability index, or L4_INVALID_CAP when all are in use. */
L4_CV l4_cap_idx_t
l4re_util_cap_alloc(void) L4_NOTHROW;

/* Returns the index to the allocator and drops what the slot held (the last
 * capability to a dataspace frees it). */
L4_CV void
l4re_util_cap_free(l4_cap_idx_t cap) L4_NOTHROW;

/* The same as l4re_util_cap_free (L4Re: free and unmap the object). */
L4_CV void
l4re_util_cap_free_um(l4_cap_idx_t cap) L4_NOTHROW;

/* The last (largest) index l4re_util_cap_alloc can return. */
L4_CV long
l4re_util_cap_last(void) L4_NOTHROW;

EXTERN_C_END

#endif /* L4_RE_C_UTIL_CAP_ALLOC_H__ */
