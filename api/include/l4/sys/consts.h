/*
 * l4/sys/consts.h: page sizes and capability-index constants of the L4Re
 * C API, with L4Re's names and amd64 values.
 *
 * A capability index is a slot number shifted left by L4_CAP_SHIFT (12); bit
 * 11 marks an invalid index, so L4_INVALID_CAP is ~0UL << 11.
 */
#ifndef L4_SYS_CONSTS_H__
#define L4_SYS_CONSTS_H__

#include <l4/sys/compiler.h>
#include <l4/sys/l4int.h>

#define L4_PAGESHIFT       12
#define L4_SUPERPAGESHIFT  21
#define L4_PAGESIZE        (1UL << L4_PAGESHIFT)
#define L4_PAGEMASK        (~(L4_PAGESIZE - 1))
#define L4_LOG2_PAGESIZE   L4_PAGESHIFT
#define L4_SUPERPAGESIZE   (1UL << L4_SUPERPAGESHIFT)
#define L4_SUPERPAGEMASK   (~(L4_SUPERPAGESIZE - 1))
#define L4_LOG2_SUPERPAGESIZE L4_SUPERPAGESHIFT

enum l4_cap_consts_t
{
  L4_CAP_SHIFT       = 12UL,
  L4_CAP_SIZE        = 1UL << L4_CAP_SHIFT,
  L4_CAP_OFFSET      = 1UL << L4_CAP_SHIFT,
  L4_CAP_MASK        = ~0UL << (L4_CAP_SHIFT - 1),
  L4_INVALID_CAP     = ~0UL << (L4_CAP_SHIFT - 1),
  L4_INVALID_CAP_BIT = 1UL << (L4_CAP_SHIFT - 1),
};

/* Capabilities every L4 task has (slots 1..11); reserved here. */
enum l4_default_caps_t
{
  L4_BASE_TASK_CAP      = 1UL << L4_CAP_SHIFT,
  L4_BASE_FACTORY_CAP   = 2UL << L4_CAP_SHIFT,
  L4_BASE_THREAD_CAP    = 3UL << L4_CAP_SHIFT,
  L4_BASE_PAGER_CAP     = 4UL << L4_CAP_SHIFT,
  L4_BASE_LOG_CAP       = 5UL << L4_CAP_SHIFT,
  L4_BASE_ICU_CAP       = 6UL << L4_CAP_SHIFT,
  L4_BASE_SCHEDULER_CAP = 7UL << L4_CAP_SHIFT,
  L4_BASE_IOMMU_CAP     = 8UL << L4_CAP_SHIFT,
  L4_BASE_DEBUGGER_CAP  = 10UL << L4_CAP_SHIFT,
  L4_BASE_ARM_SMCCC_CAP = 11UL << L4_CAP_SHIFT,
  L4_BASE_CAPS_LAST_P1,
  L4_BASE_CAPS_LAST = L4_BASE_CAPS_LAST_P1 - 1
};

enum l4_addr_consts_t
{
  L4_INVALID_ADDR = ~0UL
};
#define L4_INVALID_PTR ((void *)L4_INVALID_ADDR)

L4_INLINE l4_addr_t l4_trunc_page(l4_addr_t address) L4_NOTHROW
{ return address & L4_PAGEMASK; }

L4_INLINE l4_addr_t l4_trunc_size(l4_addr_t address, unsigned char bits) L4_NOTHROW
{ return address & (~0UL << bits); }

L4_INLINE l4_addr_t l4_round_page(l4_addr_t address) L4_NOTHROW
{ return (address + L4_PAGESIZE - 1) & L4_PAGEMASK; }

L4_INLINE l4_addr_t l4_round_size(l4_addr_t value, unsigned char bits) L4_NOTHROW
{ return (value + (1UL << bits) - 1) & (~0UL << bits); }

#endif /* L4_SYS_CONSTS_H__ */
