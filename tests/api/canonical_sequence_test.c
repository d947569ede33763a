/*
 * The canonical L4Re client sequence, written in C against the fixed API
 * and nothing else: cap_alloc -> ma_alloc -> rm_attach -> memset ->
 * rm_detach_ds -> cap_free_um, for flags 0, CONTINUOUS and SUPER_PAGES.
 * It also checks that memory is zero when handed out, that the dataspace
 * comes back from rm_detach_ds, and that freeing the capability returns
 * every page to the pool.
 */
#include <l4/re/c/dataspace.h>
#include <l4/re/c/mem_alloc.h>
#include <l4/re/c/rm.h>
#include <l4/re/c/util/cap_alloc.h>
#include <l4/re/env.h>
#include <l4/sys/err.h>
#include <l4re_ma/mem_alloc_ext.h>

#include <stdio.h>
#include <string.h>

static int failures;

#define CHECK(cond, ...)                                   \
  do {                                                     \
    if (!(cond)) {                                         \
      fprintf(stderr, "%s:%d: check failed: %s: ", __FILE__, __LINE__, #cond); \
      fprintf(stderr, __VA_ARGS__);                        \
      fputc('\n', stderr);                                 \
      ++failures;                                          \
      return;                                              \
    }                                                      \
  } while (0)

static l4_uint64_t pool_free(void)
{
  l4re_ma_pool_info_t info;
  long r = l4re_ma_pool_info_srv(l4re_env()->mem_alloc, &info);
  return r == 0 ? info.free : 0;
}

static void run_sequence(unsigned long flags, unsigned char align, long size)
{
  l4_uint64_t free_before = pool_free();
  l4re_ds_t ds = l4re_util_cap_alloc();
  CHECK(!l4_is_invalid_cap(ds), "no capability slot");

  long r = l4re_ma_alloc(size, ds, flags);
  CHECK(r == 0, "l4re_ma_alloc(%ld, flags %#lx) = %ld", size, flags, r);
  CHECK(l4re_ds_size(ds) == (l4re_ds_size_t)size, "size %llu",
        (unsigned long long)l4re_ds_size(ds));

  void *addr = 0;
  r = l4re_rm_attach(&addr, (unsigned long)size, L4RE_RM_F_SEARCH_ADDR | L4RE_RM_F_RW,
                     ds, 0, align);
  CHECK(r == 0, "l4re_rm_attach = %ld", r);
  CHECK(((l4_addr_t)addr & ((1UL << align) - 1)) == 0, "address %p not aligned to 2^%u",
        addr, align);

  unsigned char *p = (unsigned char *)addr;
  for (long i = 0; i < size; i += 4096)
    CHECK(p[i] == 0, "byte %ld is %u, not zero", i, p[i]);
  memset(p, 0x5a, (size_t)size);
  CHECK(p[0] == 0x5a && p[size - 1] == 0x5a, "memset did not stick");

  l4re_ds_t detached = L4_INVALID_CAP;
  r = l4re_rm_detach_ds(addr, &detached);
  CHECK(r == 0, "l4re_rm_detach_ds = %ld", r);
  CHECK(l4_capability_equal(detached, ds), "detach returned %#lx, expected %#lx",
        detached, ds);

  l4re_util_cap_free_um(ds);
  CHECK(l4re_ds_size(ds) == 0, "the dataspace survived cap_free_um");
  CHECK(pool_free() == free_before, "pool free %llu, was %llu",
        (unsigned long long)pool_free(), (unsigned long long)free_before);
}

int main(void)
{
  run_sequence(0, L4_PAGESHIFT, 3 * 4096 + 17);
  run_sequence(L4RE_MA_CONTINUOUS, L4_PAGESHIFT, 1 << 20);
  run_sequence(L4RE_MA_SUPER_PAGES, L4_SUPERPAGESHIFT, 4 << 20);
  run_sequence(L4RE_MA_CONTINUOUS | L4RE_MA_SUPER_PAGES, L4_SUPERPAGESHIFT, 2 << 20);
  if (failures)
    fprintf(stderr, "%d check(s) failed\n", failures);
  else
    printf("canonical sequence: all flags passed\n");
  return failures ? 1 : 0;
}
