/*
 * l4/re/c/dataspace.h: the dataspace C interface (L4Re's names).
 *
 * A dataspace is memory handed out by the memory allocator: a byte-granular
 * size, flags (rights), and pages that are either one physically contiguous
 * run (CONTINUOUS/PINNED) or backed page by page on first use.
 */
#ifndef L4_RE_C_DATASPACE_H__
#define L4_RE_C_DATASPACE_H__

#include <l4/sys/types.h>

EXTERN_C_BEGIN

typedef l4_cap_idx_t l4re_ds_t;
typedef l4_uint64_t l4re_ds_size_t;
typedef l4_uint64_t l4re_ds_offset_t;
typedef l4_uint64_t l4re_ds_map_addr_t;
typedef unsigned long l4re_ds_flags_t;

typedef struct {
  l4re_ds_size_t size;
  l4re_ds_flags_t flags;
} l4re_ds_stats_t;

enum l4re_ds_map_flags {
  L4RE_DS_F_R   = L4_FPAGE_RO,
  L4RE_DS_F_W   = L4_FPAGE_W,
  L4RE_DS_F_X   = L4_FPAGE_X,
  L4RE_DS_F_RW  = L4_FPAGE_RW,
  L4RE_DS_F_RX  = L4_FPAGE_RX,
  L4RE_DS_F_RWX = L4_FPAGE_RWX,

  L4RE_DS_F_RIGHTS_MASK = 0x0f,

  L4RE_DS_F_NORMAL        = 0x00,
  L4RE_DS_F_CACHEABLE     = L4RE_DS_F_NORMAL,
  L4RE_DS_F_BUFFERABLE    = 0x10,
  L4RE_DS_F_UNCACHEABLE   = 0x20,
  L4RE_DS_F_CACHING_MASK  = 0x30,
  L4RE_DS_F_CACHING_SHIFT = 4,
};

/* Zeroes [offset, offset + size), clamped to the size rounded up to a page.
 * 0, -L4_EACCESS without write rights, -L4_ERANGE if offset is beyond the
 * rounded size, <0 IPC error. Non-contiguous dataspaces release whole
 * pages that are not mapped. */
L4_CV long
l4re_ds_clear(l4re_ds_t ds, l4re_ds_offset_t offset, l4re_ds_size_t size) L4_NOTHROW;

/* Backs [offset, offset + size) with memory now. 0, -L4_ERANGE for a range
 * outside the dataspace, -L4_ENOMEM when quota or memory runs out. */
L4_CV long
l4re_ds_allocate(l4re_ds_t ds, l4re_ds_offset_t offset, l4re_ds_size_t size) L4_NOTHROW;

/* Copies min(size, dst size - dst_offs, src rounded size - src_offs) bytes
 * from src to ds as a snapshot. -L4_EACCESS without write rights on ds,
 * -L4_EINVAL if src is not a dataspace of the same allocator. */
L4_CV int
l4re_ds_copy_in(l4re_ds_t ds, l4re_ds_offset_t dst_offs, l4re_ds_t src,
                l4re_ds_offset_t src_offs, l4re_ds_size_t size) L4_NOTHROW;

/* The byte-granular size; 0 on error. */
L4_CV l4re_ds_size_t
l4re_ds_size(l4re_ds_t ds) L4_NOTHROW;

/* The rights (L4RE_DS_F_RWX for memory of the allocator); 0 on error. */
L4_CV l4re_ds_flags_t
l4re_ds_flags(l4re_ds_t ds) L4_NOTHROW;

/* Size and flags; 0 or <0 (IPC error for a stale capability). */
L4_CV int
l4re_ds_info(l4re_ds_t ds, l4re_ds_stats_t *stats) L4_NOTHROW;

/* The emulated physical address of `offset` and the number of bytes that
 * stay physically contiguous from there (byte-granular). 0, -L4_ERANGE when
 * offset >= size, -L4_EINVAL for a non-contiguous dataspace. (The seed-era
 * call; newer L4Re moved it to the DMA space.) */
L4_CV int
l4re_ds_phys(l4re_ds_t ds, l4_addr_t offset, l4_addr_t *phys_addr,
             l4_size_t *phys_size) L4_NOTHROW;

EXTERN_C_END

#endif /* L4_RE_C_DATASPACE_H__ */
