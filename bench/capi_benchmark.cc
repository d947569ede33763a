// bench/capi_benchmark.cc: layer 2 of //bench:latency, the whole C API in
// process, beside what a Linux program would do instead.
//
// One cycle is the canonical client sequence: l4re_util_cap_alloc,
// l4re_ma_alloc_align_srv, l4re_rm_attach, a write to every page,
// l4re_rm_detach, l4re_util_cap_free_um (releasing the capability frees
// the dataspace). The environment allocator uses one backend per process,
// so each backend gets a root LocalAllocator of its own (PhysPool +
// Storage + LocalAllocator::CreateRoot) installed in a capability slot:
// that slot is the `srv` of every call, the whole C API path.
//
//   L2_Mmap/size:S          baseline: mmap + a write to every page + munmap
//   L2_CApi/size:S[/cont]/B the C API cycle on backend B (cont: CONTINUOUS)
// Counters: ns (median of batch means); base_ns, the mmap cycle of the same
// size timed in batches interleaved with the C API's (so both see the same
// load on a shared machine); x_mmap = ns / base_ns.
#include <sys/mman.h>

#include <l4/re/c/mem_alloc.h>
#include <l4/re/c/util/cap_alloc.h>

#include <cstdint>
#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "absl/strings/str_cat.h"
#include "bench/capi_cycle.h"
#include "bench/latency_common.h"
#include "bench/timing.h"
#include "benchmark/benchmark.h"
#include "core/local_allocator.h"
#include "core/phys_pool.h"
#include "core/storage.h"

namespace l4re_ma {
namespace bench {
namespace {

constexpr int kBatch = 8;
constexpr uint64_t kPoolBytes = uint64_t{256} << 20;

std::string SizeName(uint64_t bytes) {
  return bytes >= (1u << 20) ? absl::StrCat(bytes >> 20, "M") : absl::StrCat(bytes >> 10, "K");
}

bool MmapCycle(uint64_t bytes) {
  void* p = mmap(nullptr, bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (p == MAP_FAILED) return false;
  TouchPages(p, bytes);
  return munmap(p, bytes) == 0;
}

void BM_Mmap(benchmark::State& state, uint64_t bytes) {
  state.SetLabel("mmap");
  // Against itself: base_ns is a second, interleaved series of the same.
  TimeInterleaved(
      state, kBatch, [bytes] { return MmapCycle(bytes); }, [bytes] { return MmapCycle(bytes); },
      "x_mmap");
}

void BM_CApi(benchmark::State& state, std::string backend, uint64_t bytes, unsigned long flags) {
  state.SetLabel(backend);
  absl::StatusOr<std::shared_ptr<PhysPool>> pool = PhysPool::Create(backend, kPoolBytes);
  if (!pool.ok()) Fatal(absl::StrCat("PhysPool ", backend, ": ", pool.status().ToString()));
  absl::StatusOr<std::shared_ptr<Storage>> storage =
      Storage::Create((*pool)->range(), absl::StrCat("bench-", backend));
  if (!storage.ok()) Fatal(absl::StrCat("Storage: ", storage.status().ToString()));
  std::shared_ptr<LocalAllocator> allocator =
      LocalAllocator::CreateRoot(*pool, *storage, kPoolBytes);
  absl::StatusOr<l4_cap_idx_t> srv = InstallAllocator(allocator);
  if (!srv.ok()) Fatal(srv.status().ToString());
  allocator.reset();  // the capability slot holds it now
  const double ns = TimeInterleaved(
      state, kBatch, [&] { return CApiCycle(*srv, bytes, flags) == 0; },
      [bytes] { return MmapCycle(bytes); }, "x_mmap");
  l4re_util_cap_free_um(*srv);
  // Layer 3 compares memd's cycle with this one.
  Baselines::Set(absl::StrCat("capi/", backend, "/", bytes, "/", flags), ns);
}

}  // namespace

void RegisterCApiBenchmarks(const LatencyOptions& o) {
  struct Case {
    uint64_t bytes;
    unsigned long flags;
  };
  const Case cases[] = {{4096, 0}, {1u << 20, 0}, {1u << 20, L4RE_MA_CONTINUOUS}};
  for (const Case& c : cases) {
    const uint64_t batches = Scaled(o, c.bytes > 4096 ? 150 : 3000, 20);
    if (c.flags == 0) {
      benchmark::RegisterBenchmark(absl::StrCat("L2_Mmap/size:", SizeName(c.bytes)).c_str(),
                                   BM_Mmap, c.bytes)
          ->Iterations(static_cast<benchmark::IterationCount>(batches));
    }
    for (const std::string& name : o.backends) {
      if (name == kYardstick) continue;  // the baseline of layer 1 only
      benchmark::RegisterBenchmark(
          absl::StrCat("L2_CApi/size:", SizeName(c.bytes), c.flags != 0 ? "/cont/" : "/", name)
              .c_str(),
          BM_CApi, name, c.bytes, c.flags)
          ->Iterations(static_cast<benchmark::IterationCount>(batches));
    }
  }
}

}  // namespace bench
}  // namespace l4re_ma
