// Many threads allocate, attach, write, verify and free through the
// in-process C API at once. At the end the pool is 100 % free, no file
// descriptor or mapping has leaked, and every byte written read back intact.
#include <l4re_ma/mem_alloc_ext.h>

#include <l4/re/c/rm.h>
#include <l4/re/env.h>

#include <cstdio>
#include <utility>
#include <thread>
#include <vector>

#include "gtest/gtest.h"
#include "tests/stress/stress_util.h"

namespace l4re_ma::stress {
namespace {

uint64_t PoolFree() {
  l4re_ma_pool_info_t info{};
  EXPECT_EQ(l4re_ma_pool_info_srv(l4re_env()->mem_alloc, &info), 0);
  return info.free;
}

// Runs kThreads workloads at once; returns operations and bytes verified.
std::pair<long, long> RunRound(int round) {
  constexpr int kThreads = 4;
  constexpr long kOps = kSanitized ? 600 : 3000;
  std::vector<WorkloadResult> results(kThreads);
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([t, round, &results] { results[t] = RunWorkload(1000 * round + t, kOps); });
  }
  for (auto& th : threads) th.join();
  long ops = 0, verified = 0;
  for (const WorkloadResult& r : results) {
    EXPECT_EQ(r.corrupted, 0) << r.first_problem;
    EXPECT_EQ(r.not_zero, 0) << r.first_problem;
    EXPECT_EQ(r.unexpected_errors, 0) << r.first_problem;
    ops += r.ops;
    verified += r.bytes_verified;
  }
  return {ops, verified};
}

TEST(InProcessStressTest, ManyThreadsLoseNothingAndCorruptNothing) {
  const uint64_t free_before = PoolFree();
  const int fds_before = CountFds();  // after PoolFree() made the pool's storage file
  // Round 1 also warms up what the C library keeps for threads (stacks,
  // malloc arenas); round 2 must then not add a single mapping.
  auto [ops1, verified1] = RunRound(1);
  EXPECT_EQ(PoolFree(), free_before) << "the pool is not 100 % free again";
  const int maps_after_one = CountMappings();
  auto [ops2, verified2] = RunRound(2);
  EXPECT_EQ(PoolFree(), free_before) << "the pool is not 100 % free again";
  EXPECT_EQ(CountFds(), fds_before) << "file descriptors leaked";
  if (!kSanitized) EXPECT_LE(CountMappings(), maps_after_one) << "mappings leaked";
  std::printf("8 workloads on 4 threads: %ld operations, %ld bytes written and read back intact\n",
              ops1 + ops2, verified1 + verified2);
}

}  // namespace
}  // namespace l4re_ma::stress
