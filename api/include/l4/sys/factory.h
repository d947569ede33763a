/*
 * l4/sys/factory.h: creating objects through a factory (L4Re's names).
 *
 * Here the factory is a memory allocator (l4re_global_env->mem_alloc or a
 * sub-allocator): l4_factory_create_factory creates a sub-allocator with a
 * quota of `limit` bytes, reserved from the parent at once, and puts it into
 * the slot `target_cap`. The sub-allocator serves l4re_ma_alloc_align_srv
 * like the root; releasing its last capability destroys every dataspace it
 * created. l4_error(tag) gives 0, -L4_EINVAL (limit <= 0 as a signed long,
 * or an invalid target slot), -L4_ENOMEM (the parent cannot reserve it),
 * -L4_EBADPROTO (not a factory) or an IPC error.
 */
#ifndef L4_SYS_FACTORY_H__
#define L4_SYS_FACTORY_H__

#include <l4/sys/ipc.h>
#include <l4/sys/types.h>
#include <l4/sys/utcb.h>

EXTERN_C_BEGIN

L4_CV l4_msgtag_t
l4_factory_create_factory_u(l4_cap_idx_t factory, l4_cap_idx_t target_cap,
                            unsigned long limit, l4_utcb_t *utcb) L4_NOTHROW;

L4_CV L4_INLINE l4_msgtag_t
l4_factory_create_factory(l4_cap_idx_t factory, l4_cap_idx_t target_cap,
                          unsigned long limit) L4_NOTHROW
{
  return l4_factory_create_factory_u(factory, target_cap, limit, l4_utcb());
}

EXTERN_C_END

#endif /* L4_SYS_FACTORY_H__ */
