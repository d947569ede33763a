/*
 * demo: the canonical L4Re client sequence on Linux, once per allocation
 * flag, printing what the allocator handed out.
 *
 *   cap_alloc -> ma_alloc -> rm_attach -> memset -> ds_phys
 *             -> rm_detach_ds -> cap_free_um
 *
 * Plain L4Re C code: it includes L4Re's headers and nothing of ours except
 * l4re_ma/mem_alloc_ext.h, to name the backend. Choose the backend and pool
 * with L4RE_MA_BACKEND and L4RE_MA_POOL_SIZE.
 */
#define _POSIX_C_SOURCE 200809L

#include <l4/re/c/dataspace.h>
#include <l4/re/c/mem_alloc.h>
#include <l4/re/c/rm.h>
#include <l4/re/c/util/cap_alloc.h>
#include <l4/re/env.h>
#include <l4/sys/err.h>
#include <l4re_ma/mem_alloc_ext.h>

#include <stdio.h>
#include <string.h>
#include <time.h>

struct request {
  const char *name;
  long size;
  unsigned long flags;
  unsigned char align;
};

static double now_us(void)
{
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return ts.tv_sec * 1e6 + ts.tv_nsec / 1e3;
}

static int run(const struct request *r)
{
  double t0 = now_us();
  l4re_ds_t ds = l4re_util_cap_alloc();
  if (l4_is_invalid_cap(ds))
    return fprintf(stderr, "demo: out of capability slots\n"), 1;

  long err = l4re_ma_alloc(r->size, ds, r->flags);
  if (err < 0)
    {
      fprintf(stderr, "demo: l4re_ma_alloc(%ld, %s): %s (%ld)\n", r->size, r->name,
              l4sys_errtostr(err), err);
      l4re_util_cap_free(ds);
      return 1;
    }

  void *addr = 0;
  err = l4re_rm_attach(&addr, (unsigned long)r->size, L4RE_RM_F_SEARCH_ADDR | L4RE_RM_F_RW,
                       ds, 0, r->align);
  if (err < 0)
    {
      fprintf(stderr, "demo: l4re_rm_attach: %s (%ld)\n", l4sys_errtostr(err), err);
      l4re_util_cap_free_um(ds);
      return 1;
    }
  memset(addr, 0xa5, (size_t)r->size);
  l4re_ds_size_t size = l4re_ds_size(ds);

  char runs[96];
  l4_addr_t offset = 0, pa = 0;
  l4_size_t ps = 0;
  int nruns = 0;
  err = l4re_ds_phys(ds, 0, &pa, &ps);
  if (err == -L4_EINVAL)
    snprintf(runs, sizeof runs, "not contiguous (backed page by page)");
  else
    {
      l4_addr_t first = pa;
      while (offset < (l4_addr_t)r->size && l4re_ds_phys(ds, offset, &pa, &ps) == 0)
        {
          offset += ps;
          ++nruns;
        }
      snprintf(runs, sizeof runs, "%d run at %#lx..%#lx", nruns, first,
               first + (l4_addr_t)r->size);
    }

  l4re_ds_t back = L4_INVALID_CAP;
  err = l4re_rm_detach_ds(addr, &back);
  l4re_util_cap_free_um(back);
  printf("  %-24s %10llu B  at %-16p %s  (%.0f us)\n", r->name, (unsigned long long)size,
         addr, runs, now_us() - t0);
  return err < 0;
}

int main(void)
{
  l4re_ma_pool_info_t pool;
  long err = l4re_ma_pool_info_srv(l4re_env()->mem_alloc, &pool);
  if (err < 0)
    {
      fprintf(stderr, "demo: no memory allocator: %s (%ld)\n", l4sys_errtostr(err), err);
      return 1;
    }
  printf("l4re_ma demo: backend '%s', pool of %lu MiB at physical %#llx\n", pool.backend,
         (unsigned long)(pool.size >> 20), (unsigned long long)pool.phys_base);
  printf("  %-24s %12s     %-16s %s\n", "flags", "size", "address", "physical memory");

  static const struct request requests[] = {
    {"0 (lazily backed)", 3 * 4096 + 100, 0, L4_PAGESHIFT},
    {"CONTINUOUS", 1 << 20, L4RE_MA_CONTINUOUS, L4_PAGESHIFT},
    {"PINNED", 256 << 10, L4RE_MA_PINNED, L4_PAGESHIFT},
    {"SUPER_PAGES", 4 << 20, L4RE_MA_SUPER_PAGES, L4_SUPERPAGESHIFT},
    {"CONTINUOUS|SUPER_PAGES", 8 << 20, L4RE_MA_CONTINUOUS | L4RE_MA_SUPER_PAGES,
     L4_SUPERPAGESHIFT},
  };
  int failures = 0;
  for (unsigned i = 0; i < sizeof requests / sizeof requests[0]; ++i)
    failures += run(&requests[i]);

  err = l4re_ma_pool_info_srv(l4re_env()->mem_alloc, &pool);
  printf("after releasing everything: %lu of %lu MiB free\n", (unsigned long)(pool.free >> 20),
         (unsigned long)(pool.size >> 20));
  return failures ? 1 : 0;
}
