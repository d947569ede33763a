/*
 * l4/re/c/rm.h: the region map C interface (L4Re's names): attaching
 * dataspaces to the address space of this process.
 *
 * On Linux an attached region is a real mapping (mmap of the dataspace's
 * memory) made with exactly the rights given in `flags`. Attaching backs the
 * attached pages of a non-contiguous dataspace (its "first use"). A region
 * whose dataspace is freed stays in the map but is revoked: any access
 * faults, as on L4.
 */
#ifndef L4_RE_C_RM_H__
#define L4_RE_C_RM_H__

#include <l4/re/env.h>
#include <l4/re/c/dataspace.h>

EXTERN_C_BEGIN

enum l4re_rm_flags_values {
  L4RE_RM_F_R    = L4RE_DS_F_R,
  L4RE_RM_F_W    = L4RE_DS_F_W,
  L4RE_RM_F_X    = L4RE_DS_F_X,
  L4RE_RM_F_RX   = L4RE_DS_F_RX,
  L4RE_RM_F_RW   = L4RE_DS_F_RW,
  L4RE_RM_F_RWX  = L4RE_DS_F_RWX,

  L4RE_RM_F_NO_ALIAS     = 0x200,
  L4RE_RM_F_PAGER        = 0x400,
  L4RE_RM_F_RESERVED     = 0x800,

  L4RE_RM_CACHING_SHIFT    = 4,
  L4RE_RM_F_CACHING        = L4RE_DS_F_CACHING_MASK,
  L4RE_RM_REGION_FLAGS     = 0xffff,
  L4RE_RM_F_CACHE_NORMAL   = L4RE_DS_F_NORMAL,
  L4RE_RM_F_CACHE_BUFFERED = L4RE_DS_F_BUFFERABLE,
  L4RE_RM_F_CACHE_UNCACHED = L4RE_DS_F_UNCACHEABLE,

  L4RE_RM_F_SEARCH_ADDR  = 0x20000,  /* search a free range from *start up */
  L4RE_RM_F_IN_AREA      = 0x40000,  /* attach inside a reserved area */
  L4RE_RM_F_EAGER_MAP    = 0x80000,  /* map at once (always the case here) */
  L4RE_RM_F_NO_EAGER_MAP = 0x100000,
  L4RE_RM_F_ATTACH_FLAGS = 0x1f0000,
};

typedef l4_uint32_t l4re_rm_flags_t;
typedef l4_uint64_t l4re_rm_offset_t;

/* Reserves [*start, *start + size) (or searches one with SEARCH_ADDR,
 * aligned to 1 << align) so that only IN_AREA attaches use it. */
L4_CV L4_INLINE int
l4re_rm_reserve_area(l4_addr_t *start, unsigned long size,
                     l4re_rm_flags_t flags, unsigned char align) L4_NOTHROW;

/* Removes the area that starts at addr; regions inside it stay. */
L4_CV L4_INLINE int
l4re_rm_free_area(l4_addr_t addr) L4_NOTHROW;

/* Attaches `size` bytes (rounded up to a page) of dataspace `mem` from
 * offset `offs` at *start, or at a free address searched from *start with
 * SEARCH_ADDR, aligned to 1 << align. Returns 0, -L4_EINVAL (bad flags,
 * size 0, align out of 12..63 with SEARCH_ADDR), -L4_EADDRNOTAVAIL (no room
 * or overlap), -L4_ENOENT (no dataspace in `mem`), -L4_ENOMEM (backing the
 * pages failed) or an IPC error. */
L4_CV L4_INLINE int
l4re_rm_attach(void **start, unsigned long size, l4re_rm_flags_t flags,
               l4re_ds_t mem, l4re_rm_offset_t offs,
               unsigned char align) L4_NOTHROW;

/* Detaches the region containing addr. 0 or -L4_ENOENT. */
L4_CV L4_INLINE int
l4re_rm_detach(void *addr) L4_NOTHROW;

/* As l4re_rm_detach, and returns the region's dataspace in *ds
 * (L4_INVALID_CAP if there is no region). */
L4_CV L4_INLINE int
l4re_rm_detach_ds(void *addr, l4re_ds_t *ds) L4_NOTHROW;

L4_CV L4_INLINE int
l4re_rm_detach_unmap(l4_addr_t addr, l4_cap_idx_t task) L4_NOTHROW;

L4_CV L4_INLINE int
l4re_rm_detach_ds_unmap(void *addr, l4re_ds_t *ds, l4_cap_idx_t task) L4_NOTHROW;

/* Finds the region overlapping [*addr, *addr + *size): its start, size,
 * dataspace offset, flags and dataspace. -L4_ENOENT if none, -L4_EINVAL for
 * size 0. */
L4_CV L4_INLINE int
l4re_rm_find(l4_addr_t *addr, unsigned long *size, l4re_rm_offset_t *offset,
             l4re_rm_flags_t *flags, l4re_ds_t *m) L4_NOTHROW;

/* Prints the regions and areas to stderr. */
L4_CV L4_INLINE void
l4re_rm_show_lists(void) L4_NOTHROW;

L4_CV int
l4re_rm_reserve_area_srv(l4_cap_idx_t rm, l4_addr_t *start, unsigned long size,
                         l4re_rm_flags_t flags, unsigned char align) L4_NOTHROW;

L4_CV int
l4re_rm_free_area_srv(l4_cap_idx_t rm, l4_addr_t addr) L4_NOTHROW;

L4_CV int
l4re_rm_attach_srv(l4_cap_idx_t rm, void **start, unsigned long size,
                   l4re_rm_flags_t flags, l4re_ds_t mem,
                   l4re_rm_offset_t offs, unsigned char align) L4_NOTHROW;

L4_CV int
l4re_rm_detach_srv(l4_cap_idx_t rm, l4_addr_t addr, l4re_ds_t *ds,
                   l4_cap_idx_t task) L4_NOTHROW;

L4_CV int
l4re_rm_find_srv(l4_cap_idx_t rm, l4_addr_t *addr, unsigned long *size,
                 l4re_rm_offset_t *offset, l4re_rm_flags_t *flags,
                 l4re_ds_t *m) L4_NOTHROW;

L4_CV void
l4re_rm_show_lists_srv(l4_cap_idx_t rm) L4_NOTHROW;

/********** Implementations ***************************/

L4_CV L4_INLINE int
l4re_rm_reserve_area(l4_addr_t *start, unsigned long size,
                     l4re_rm_flags_t flags, unsigned char align) L4_NOTHROW
{
  return l4re_rm_reserve_area_srv(l4re_global_env->rm, start, size, flags, align);
}

L4_CV L4_INLINE int
l4re_rm_free_area(l4_addr_t addr) L4_NOTHROW
{
  return l4re_rm_free_area_srv(l4re_global_env->rm, addr);
}

L4_CV L4_INLINE int
l4re_rm_attach(void **start, unsigned long size, l4re_rm_flags_t flags,
               l4re_ds_t mem, l4re_rm_offset_t offs, unsigned char align) L4_NOTHROW
{
  return l4re_rm_attach_srv(l4re_global_env->rm, start, size, flags, mem, offs, align);
}

L4_CV L4_INLINE int
l4re_rm_detach(void *addr) L4_NOTHROW
{
  return l4re_rm_detach_srv(l4re_global_env->rm, (l4_addr_t)addr, 0, L4_BASE_TASK_CAP);
}

L4_CV L4_INLINE int
l4re_rm_detach_unmap(l4_addr_t addr, l4_cap_idx_t task) L4_NOTHROW
{
  return l4re_rm_detach_srv(l4re_global_env->rm, addr, 0, task);
}

L4_CV L4_INLINE int
l4re_rm_detach_ds(void *addr, l4re_ds_t *ds) L4_NOTHROW
{
  return l4re_rm_detach_srv(l4re_global_env->rm, (l4_addr_t)addr, ds, L4_BASE_TASK_CAP);
}

L4_CV L4_INLINE int
l4re_rm_detach_ds_unmap(void *addr, l4re_ds_t *ds, l4_cap_idx_t task) L4_NOTHROW
{
  return l4re_rm_detach_srv(l4re_global_env->rm, (l4_addr_t)addr, ds, task);
}

L4_CV L4_INLINE int
l4re_rm_find(l4_addr_t *addr, unsigned long *size, l4re_rm_offset_t *offset,
             l4re_rm_flags_t *flags, l4re_ds_t *m) L4_NOTHROW
{
  return l4re_rm_find_srv(l4re_global_env->rm, addr, size, offset, flags, m);
}

L4_CV L4_INLINE void
l4re_rm_show_lists(void) L4_NOTHROW
{
  l4re_rm_show_lists_srv(l4re_global_env->rm);
}

EXTERN_C_END

#endif /* L4_RE_C_RM_H__ */
