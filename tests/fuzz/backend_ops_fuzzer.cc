// Fuzzes every registered backend with operation sequences checked against
// the shadow model (tests/testing/checked_backend.h): alignment, overlap,
// exact statistics, honest largest_free_run, rejected bad frees with no
// change, CheckInvariants, and full coalescing after freeing everything.
// Any contract violation aborts with the message.
#include <cstdio>
#include <cstdlib>
#include <memory>
#include <random>
#include <string>
#include <vector>

#include "core/backend_registry.h"
#include "tests/fuzz/fuzz_input.h"
#include "tests/testing/checked_backend.h"

namespace l4re_ma::fuzz {
namespace {

struct Counters {
  long sequences = 0, allocs = 0, allocs_ok = 0, frees = 0, bad_frees = 0, deep_checks = 0;
  ~Counters() {
    std::fprintf(stderr,
                 "backend_ops_fuzzer: %ld sequences, %ld allocations (%ld served), %ld frees, "
                 "%ld bad frees rejected, %ld deep checks: all within the contract\n",
                 sequences, allocs, allocs_ok, frees, bad_frees, deep_checks);
  }
} counters;

void Require(const absl::Status& s, const std::string& backend) {
  if (s.ok()) return;
  std::fprintf(stderr, "backend %s broke its contract: %s\n", backend.c_str(),
               std::string(s.message()).c_str());
  std::abort();
}

void Run(FuzzInput& in) {
  static const std::vector<std::string> names = BackendRegistry::Global().Names();
  const std::string& name = names[in.Byte() % names.size()];
  // A range of 1..~70000 frames at a first frame that may be unaligned or high.
  const uint64_t pages = 1 + in.Below(1 << 16) + (in.Byte() % 4 == 0 ? 4096 : 0);
  const uint64_t bases[] = {0, 1, 511, 0x40000, 0x40000 - 3, uint64_t{1} << 40};
  const uint64_t first = bases[in.Byte() % 6] + in.Byte() % 3;
  BackendOptions options;
  options.range = PageRun{FrameNumber(first), PageCount(pages)};
  auto backend = BackendRegistry::Global().Create(name, options);
  if (!backend.ok()) Require(backend.status(), name);
  CheckedBackend checked(backend->get());
  ++counters.sequences;
  Require(checked.CheckFresh(), name);
  std::mt19937_64 rng(in.Take<uint32_t>());
  for (int op = 0; op < 400 && !in.empty(); ++op) {
    const uint8_t kind = in.Byte();
    if (kind < 150) {
      static const uint64_t kSizes[] = {1, 2, 3, 4, 5, 7, 8, 16, 33, 64, 100, 511, 512, 513, 1024};
      const uint64_t n = kind % 3 == 0 ? 1 + in.Below(pages + 2) : kSizes[in.Byte() % 15];
      const uint8_t a = in.Byte();
      const unsigned align = a < 200 ? a % 4 : (a < 250 ? a % 13 : a % 64);
      auto got = checked.Allocate(PageCount(n), AlignOrder(align));
      Require(got.status(), name);
      ++counters.allocs;
      if (*got) ++counters.allocs_ok;
    } else if (kind < 230) {
      if (!checked.live_runs().empty()) {
        Require(checked.FreeLiveRun(in.Below(checked.live_runs().size())), name);
        ++counters.frees;
      }
    } else if (kind < 250) {
      // A run that is not live: shifted, shortened, lengthened, or random.
      PageRun bad{FrameNumber(first + in.Below(pages + 8)), PageCount(1 + in.Byte())};
      if (!checked.live_runs().empty()) {
        PageRun live = checked.live_runs()[in.Below(checked.live_runs().size())];
        switch (in.Byte() % 3) {
          case 0: bad = {live.first + PageCount(1), live.pages}; break;
          case 1: bad = {live.first, live.pages + PageCount(1)}; break;
          default:
            if (live.pages.value() > 1) bad = {live.first, live.pages - PageCount(1)};
        }
      }
      bool live_already = false;
      for (const PageRun& r : checked.live_runs()) live_already |= r == bad;
      if (!live_already && bad.pages.value() > 0) {
        Require(checked.ExpectFreeRejected(bad), name);
        ++counters.bad_frees;
      }
    } else {
      Require(checked.CheckDeep(), name);
      ++counters.deep_checks;
    }
  }
  Require(checked.FreeAll(rng), name);
  // Back to the state of a fresh backend.
  auto fresh = BackendRegistry::Global().Create(name, options);
  if (!((*backend)->Stats() == (*fresh)->Stats())) {
    std::fprintf(stderr, "backend %s did not coalesce fully after freeing everything\n",
                 name.c_str());
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
