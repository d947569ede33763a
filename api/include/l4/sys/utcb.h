/*
 * l4/sys/utcb.h: the user thread control block type. There is no UTCB on
 * Linux; the _u variants of calls accept and ignore it.
 */
#ifndef L4_SYS_UTCB_H__
#define L4_SYS_UTCB_H__

#include <l4/sys/compiler.h>

typedef struct l4_utcb_t l4_utcb_t;

L4_INLINE l4_utcb_t *l4_utcb(void) L4_NOTHROW
{ return (l4_utcb_t *)0; }

#endif /* L4_SYS_UTCB_H__ */
