/*
 * l4/re/env.h: the initial environment of an L4Re program.
 *
 * l4re_global_env points at a valid environment from program start, so the
 * inline allocator calls (which read l4re_global_env->mem_alloc) work before
 * anything else runs. The objects behind its capabilities are created on
 * first use: the memory allocator is an in-process allocator (backend from
 * L4RE_MA_BACKEND, pool size from L4RE_MA_POOL_SIZE), or the memd server
 * named by L4RE_MA_SERVER.
 */
#ifndef L4_RE_ENV_H__
#define L4_RE_ENV_H__

#include <l4/sys/compiler.h>
#include <l4/sys/consts.h>
#include <l4/sys/types.h>

/* An entry of the named initial objects. */
typedef struct l4re_env_cap_entry_t
{
  l4_cap_idx_t cap;
  l4_umword_t flags;
  char name[16];
#ifdef __cplusplus
  l4re_env_cap_entry_t() L4_NOTHROW : cap(L4_INVALID_CAP), flags(~0UL), name() {}
  l4re_env_cap_entry_t(char const *n, l4_cap_idx_t c, l4_umword_t f = 0) L4_NOTHROW
  : cap(c), flags(f), name()
  {
    for (unsigned i = 0; n && i < sizeof(name); ++i, ++n)
      {
        name[i] = *n;
        if (!*n)
          break;
      }
  }
#endif
} l4re_env_cap_entry_t;

/* The initial environment; mem_alloc is its third word, as in L4Re. */
typedef struct l4re_env_t
{
  l4_cap_idx_t parent;         /* Parent object (invalid here: no parent) */
  l4_cap_idx_t rm;             /* Region map of this process */
  l4_cap_idx_t mem_alloc;      /* Memory allocator */
  l4_cap_idx_t log;            /* Log object (not provided) */
  l4_cap_idx_t main_thread;    /* First thread */
  l4_cap_idx_t factory;        /* Factory (the memory allocator) */
  l4_cap_idx_t scheduler;      /* Scheduler (not provided) */
  l4_cap_idx_t first_free_cap; /* First capability index for the application */
  l4_fpage_t utcb_area;        /* Unused on Linux */
  l4_addr_t first_free_utcb;   /* Unused on Linux */
  l4re_env_cap_entry_t *caps;  /* Named initial objects, terminated by flags == ~0UL */
} l4re_env_t;

EXTERN_C_BEGIN
extern l4re_env_t *l4re_global_env;
EXTERN_C_END

L4_INLINE l4re_env_t *l4re_env(void) L4_NOTHROW
{ return l4re_global_env; }

L4_INLINE l4re_env_cap_entry_t const *
l4re_env_get_cap_l(char const *name, unsigned l, l4re_env_t const *e) L4_NOTHROW
{
  l4re_env_cap_entry_t const *c = e->caps;
  for (; c && c->flags != ~0UL; ++c)
    {
      unsigned i;
      for (i = 0; i < sizeof(c->name) && i < l && c->name[i] && name[i]
                  && name[i] == c->name[i];
           ++i)
        ;
      if (i == l && (i == sizeof(c->name) || !c->name[i]))
        return c;
    }
  return 0;
}

L4_INLINE l4_cap_idx_t
l4re_env_get_cap_e(char const *name, l4re_env_t const *e) L4_NOTHROW
{
  unsigned l;
  l4re_env_cap_entry_t const *r;
  for (l = 0; name[l]; ++l)
    ;
  r = l4re_env_get_cap_l(name, l, e);
  return r ? r->cap : L4_INVALID_CAP;
}

L4_INLINE l4_cap_idx_t l4re_env_get_cap(char const *name) L4_NOTHROW
{ return l4re_env_get_cap_e(name, l4re_env()); }

#endif /* L4_RE_ENV_H__ */
