// Fuzzes the C API in process: random sequences of allocator, dataspace,
// region-map, capability and factory calls with arbitrary arguments (sizes
// and alignments at every edge, unknown flags, invalid, empty, stale and
// wrong-kind capabilities). Each call must return one of its documented
// codes and never crash; memory it maps must be accessible as mapped; after
// the sequence is undone, the pool is exactly as free as before.
#include <l4/re/c/dataspace.h>
#include <l4/re/c/mem_alloc.h>
#include <l4/re/c/rm.h>
#include <l4/re/c/util/cap_alloc.h>
#include <l4/re/env.h>
#include <l4/sys/err.h>
#include <l4/sys/factory.h>
#include <l4re_ma/mem_alloc_ext.h>

#include <climits>
#include <cstdio>
#include <cstdlib>
#include <initializer_list>
#include <vector>

#include "tests/fuzz/fuzz_input.h"

#pragma GCC diagnostic ignored "-Wdeprecated-declarations"

namespace l4re_ma::fuzz {
namespace {

constexpr long kIpc = -(L4_EIPC_LO + 4);

// Calls made and calls that succeeded, printed at exit: the figures of a run.
struct Counters {
  long calls = 0, ok = 0;
  ~Counters() {
    std::fprintf(stderr, "c_api_fuzzer: %ld calls checked, %ld succeeded, %ld refused with a "
                 "documented error\n", calls, ok, calls - ok);
  }
} counters;

void Expect(const char* call, long r, std::initializer_list<long> allowed) {
  ++counters.calls;
  if (r == 0) ++counters.ok;
  for (long a : allowed) {
    if (r == a) return;
  }
  std::fprintf(stderr, "%s returned %ld, which it never documents\n", call, r);
  std::abort();
}

uint64_t PoolFree() {
  l4re_ma_pool_info_t info;
  if (l4re_ma_pool_info_srv(l4re_env()->mem_alloc, &info) != 0) std::abort();
  return info.free;
}

struct World {
  std::vector<l4_cap_idx_t> slots;  // ours: receive dataspaces and allocators
  std::vector<void*> regions;
};

World& TheWorld() {
  static World* w = [] {
    auto* w = new World;
    for (int i = 0; i < 8; ++i) w->slots.push_back(l4re_util_cap_alloc());
    return w;
  }();
  return *w;
}

long PickSize(FuzzInput& in) {
  static const long kSizes[] = {0, 1, 4095, 4096, 4097, 8192, 65536, (1 << 20) + 3, 2 << 20,
                                4 << 20, -1, -4096, -(1L << 20), LONG_MIN, LONG_MAX,
                                static_cast<long>(~0UL), INT_MAX - 1};
  const uint8_t b = in.Byte();
  return b < 200 ? kSizes[b % 17] : static_cast<long>(in.Take<uint32_t>() % (8 << 20));
}

void Run(FuzzInput& in) {
  World& w = TheWorld();
  const uint64_t free_before = PoolFree();
  // Capabilities an argument may name: ours, the environment's, invalid ones.
  auto any_cap = [&]() -> l4_cap_idx_t {
    const uint8_t b = in.Byte();
    if (b < 200) return w.slots[b % w.slots.size()];
    switch (b % 6) {
      case 0: return l4re_env()->mem_alloc;
      case 1: return l4re_env()->rm;
      case 2: return L4_INVALID_CAP;
      case 3: return 0;
      case 4: return static_cast<l4_cap_idx_t>(in.Take<uint32_t>()) << 12;
      default: return w.slots[b % w.slots.size()] | 0x7;
    }
  };
  auto own_slot = [&] { return w.slots[in.Byte() % w.slots.size()]; };
  for (int op = 0; op < 64 && !in.empty(); ++op) {
    switch (in.Byte() % 12) {
      case 0:
      case 1: {
        const unsigned long flags = in.Byte() < 240 ? in.Byte() % 8 : in.Take<uint32_t>();
        const uint8_t a = in.Byte();
        const unsigned long align = a < 200 ? a % 23 : a;
        const l4_cap_idx_t srv = in.Byte() < 200 ? l4re_env()->mem_alloc : any_cap();
        Expect("l4re_ma_alloc_align_srv",
               l4re_ma_alloc_align_srv(srv, PickSize(in), own_slot(), flags, align),
               {0, -L4_ERANGE, -L4_ENOMEM, -L4_EINVAL, kIpc, -L4_EBADPROTO});
        break;
      }
      case 2:
        Expect("l4re_ma_free_srv", l4re_ma_free_srv(any_cap(), any_cap()),
               {0, -L4_EINVAL, -L4_EPERM, kIpc, -L4_EBADPROTO});
        break;
      case 3: {
        const l4_cap_idx_t c = own_slot();
        l4re_util_cap_free_um(c);
        // Keep the slot ours: the allocator hands the lowest free one back.
        l4_cap_idx_t again = l4re_util_cap_alloc();
        if (again != c) {
          // Another slot came back; swap it in so we never lose track.
          for (auto& s : w.slots) if (s == c) s = again;
        }
        break;
      }
      case 4: {
        const l4re_ds_offset_t off = in.Byte() < 200 ? in.Below(16) * 4096 + in.Byte() : ~0ULL;
        const l4re_ds_size_t len = in.Byte() < 200 ? in.Below(1 << 20) : ~0ULL;
        Expect("l4re_ds_allocate", l4re_ds_allocate(any_cap(), off, len),
               {0, -L4_ERANGE, -L4_ENOMEM, kIpc, -L4_EBADPROTO});
        Expect("l4re_ds_clear", l4re_ds_clear(any_cap(), off, len),
               {0, -L4_ERANGE, -L4_ENOMEM, kIpc, -L4_EBADPROTO, -L4_EACCESS});
        break;
      }
      case 5: {
        const l4re_ds_offset_t d = in.Below(1 << 21), s = in.Below(1 << 21);
        const l4re_ds_size_t len = in.Byte() < 200 ? in.Below(1 << 20) : ~0ULL;
        Expect("l4re_ds_copy_in", l4re_ds_copy_in(any_cap(), d, any_cap(), s, len),
               {0, -L4_EINVAL, -L4_ENOMEM, kIpc, -L4_EBADPROTO, -L4_EACCESS});
        break;
      }
      case 6:
      case 7: {
        void* addr = nullptr;
        const uint8_t f = in.Byte();
        l4re_rm_flags_t flags =
            f < 220 ? (L4RE_RM_F_SEARCH_ADDR | (f % 8)) : static_cast<l4re_rm_flags_t>(in.Take<uint32_t>());
        const unsigned long size = in.Byte() < 230 ? 1 + in.Below(4 << 20) : 0;
        const l4re_rm_offset_t offs = in.Byte() < 230 ? in.Below(8) * 4096 : in.Take<uint32_t>();
        const uint8_t a = in.Byte();
        const unsigned char align = a < 200 ? 12 + a % 10 : a;
        if (!(flags & L4RE_RM_F_SEARCH_ADDR)) addr = reinterpret_cast<void*>(in.Take<uint64_t>() & ~0xfffULL);
        const l4re_ds_t ds = any_cap();
        const int r = l4re_rm_attach(&addr, size, flags, ds, offs, align);
        Expect("l4re_rm_attach", r,
               {0, -L4_EINVAL, -L4_EADDRNOTAVAIL, -L4_ENOENT, -L4_ENOMEM, kIpc, -L4_EBADPROTO});
        if (r == 0) {
          w.regions.push_back(addr);
          // The first page is mapped with the rights asked for if the
          // dataspace reaches it.
          if ((flags & L4RE_RM_F_RW) == L4RE_RM_F_RW && offs < l4re_ds_size(ds)) {
            static_cast<volatile char*>(addr)[0] = 1;
          }
        }
        break;
      }
      case 8:
        if (!w.regions.empty()) {
          const size_t i = in.Below(w.regions.size());
          l4re_ds_t back;
          Expect("l4re_rm_detach_ds", l4re_rm_detach_ds(w.regions[i], &back), {0});
          w.regions.erase(w.regions.begin() + i);
        } else {
          int local;
          Expect("l4re_rm_detach", l4re_rm_detach(&local), {-L4_ENOENT});
        }
        break;
      case 9: {
        l4_addr_t pa;
        l4_size_t ps;
        Expect("l4re_ds_phys", l4re_ds_phys(any_cap(), in.Below(1 << 22), &pa, &ps),
               {0, -L4_ERANGE, -L4_EINVAL, kIpc, -L4_EBADPROTO});
        l4re_ds_stats_t st;
        Expect("l4re_ds_info", l4re_ds_info(any_cap(), &st), {0, kIpc, -L4_EBADPROTO});
        break;
      }
      case 10: {
        const unsigned long limit = in.Byte() < 200 ? in.Below(32 << 20) : in.Take<uint64_t>();
        const l4_cap_idx_t parent = in.Byte() < 200 ? l4re_env()->mem_alloc : any_cap();
        Expect("l4_factory_create_factory",
               l4_error(l4_factory_create_factory(parent, own_slot(), limit)),
               {0, -L4_EINVAL, -L4_ENOMEM, kIpc, -L4_EBADPROTO});
        break;
      }
      default: {
        l4re_ma_stats_t s;
        Expect("l4re_ma_stats_srv", l4re_ma_stats_srv(any_cap(), &s), {0, kIpc, -L4_EBADPROTO});
        break;
      }
    }
  }
  // Undo everything; the pool must be as free as before.
  for (void* r : w.regions) Expect("l4re_rm_detach", l4re_rm_detach(r), {0});
  w.regions.clear();
  for (l4_cap_idx_t& c : w.slots) {
    l4re_util_cap_free_um(c);
    c = l4re_util_cap_alloc();
  }
  if (PoolFree() != free_before) {
    std::fprintf(stderr, "the pool lost %lld bytes\n",
                 static_cast<long long>(free_before) - static_cast<long long>(PoolFree()));
    std::abort();
  }
}

}  // namespace
}  // namespace l4re_ma::fuzz

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  l4re_ma::fuzz::FuzzInput in(data, size);
  l4re_ma::fuzz::Run(in);
  return 0;
}
