/*
 * l4/sys/types.h: basic types of the L4Re C API: capability indices,
 * flexpage rights, message tags.
 */
#ifndef L4_SYS_TYPES_H__
#define L4_SYS_TYPES_H__

#include <l4/sys/compiler.h>
#include <l4/sys/consts.h>
#include <l4/sys/l4int.h>

/* A capability index: slot << L4_CAP_SHIFT, low bits carry rights/flags. */
typedef l4_umword_t l4_cap_idx_t;

/* Memory rights of a flexpage (current L4Re values). */
enum l4_fpage_rights
{
  L4_FPAGE_X   = 1,
  L4_FPAGE_W   = 2,
  L4_FPAGE_RO  = 4,
  L4_FPAGE_R   = L4_FPAGE_RO,
  L4_FPAGE_RW  = L4_FPAGE_R | L4_FPAGE_W,
  L4_FPAGE_RX  = L4_FPAGE_R | L4_FPAGE_X,
  L4_FPAGE_RWX = L4_FPAGE_R | L4_FPAGE_W | L4_FPAGE_X,
};

/* Rights carried in the low bits of a capability index. */
enum l4_cap_fpage_rights
{
  L4_CAP_FPAGE_W    = 0x1,
  L4_CAP_FPAGE_S    = 0x2,
  L4_CAP_FPAGE_R    = 0x4,
  L4_CAP_FPAGE_RO   = 0x4,
  L4_CAP_FPAGE_D    = 0x8,
  L4_CAP_FPAGE_RW   = 0x5,
  L4_CAP_FPAGE_RS   = 0x6,
  L4_CAP_FPAGE_RWS  = 0x7,
  L4_CAP_FPAGE_RSD  = 0xe,
  L4_CAP_FPAGE_RWSD = 0xf,
};

/* A flexpage descriptor (only the raw word is used here). */
typedef union
{
  l4_umword_t raw;
} l4_fpage_t;

/* A message tag: the result of an invocation. The label (upper bits)
 * carries the return code; L4_MSGTAG_ERROR marks a failed IPC. */
typedef struct l4_msgtag_t
{
  l4_mword_t raw;
} l4_msgtag_t;

enum l4_msgtag_flags
{
  L4_MSGTAG_ERROR = 0x8000,
  L4_MSGTAG_FLAGS = 0xf000,
};

L4_INLINE l4_msgtag_t l4_msgtag(long label, unsigned words, unsigned items,
                                unsigned flags) L4_NOTHROW
{
  l4_msgtag_t t;
  t.raw = (l4_mword_t)(((l4_umword_t)label << 16) | (l4_umword_t)(words & 0x3f)
                       | ((l4_umword_t)(items & 0x3f) << 6) | (flags & L4_MSGTAG_FLAGS));
  return t;
}

L4_INLINE long l4_msgtag_label(l4_msgtag_t t) L4_NOTHROW
{ return t.raw >> 16; }

L4_INLINE unsigned l4_msgtag_has_error(l4_msgtag_t t) L4_NOTHROW
{ return (t.raw & L4_MSGTAG_ERROR) != 0; }

L4_INLINE unsigned l4_is_invalid_cap(l4_cap_idx_t c) L4_NOTHROW
{ return (c & L4_INVALID_CAP_BIT) != 0; }

L4_INLINE unsigned l4_is_valid_cap(l4_cap_idx_t c) L4_NOTHROW
{ return (c & L4_INVALID_CAP_BIT) == 0; }

L4_INLINE unsigned l4_capability_equal(l4_cap_idx_t a, l4_cap_idx_t b) L4_NOTHROW
{ return (a >> L4_CAP_SHIFT) == (b >> L4_CAP_SHIFT); }

#endif /* L4_SYS_TYPES_H__ */
