// Many client processes work against one memd at once while some are
// killed at random (SIGKILL, mid-operation). Every client checks each byte it
// wrote until it frees it. At the end the pool is 100 % free and memd holds
// no more file descriptors or mappings than before the clients came.
// The test process itself never calls the C API: each client is a fresh
// fork that points L4RE_MA_SERVER at memd before its first call.
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <map>
#include <random>

#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "core/remote_allocator.h"
#include "gtest/gtest.h"
#include "tests/server/memd_process.h"
#include "tests/stress/stress_util.h"

namespace l4re_ma::stress {
namespace {

constexpr int kCorrupted = 3, kErrors = 4;

pid_t SpawnClient(const std::string& socket, uint64_t seed, long ops) {
  fflush(nullptr);
  pid_t pid = fork();
  if (pid != 0) return pid;
  setenv("L4RE_MA_SERVER", socket.c_str(), 1);
  WorkloadResult r = RunWorkload(seed, ops);
  if (r.corrupted != 0 || r.not_zero != 0) {
    std::fprintf(stderr, "client %d: %s\n", getpid(), r.first_problem.c_str());
    _exit(kCorrupted);
  }
  if (r.unexpected_errors != 0) {
    std::fprintf(stderr, "client %d: %s\n", getpid(), r.first_problem.c_str());
    _exit(kErrors);
  }
  _exit(0);
}

// memd reclaims a dead client's memory as soon as it notices the hang-up;
// its accept thread then joins the session's thread and closes its socket
// and storage file. Waits until the pool is entirely free, only the observer
// is connected and memd holds `fds` descriptors again (10 s at most).
bool WaitUntilReclaimed(RemoteConnection& observer, uint64_t pool_size, pid_t server, int fds) {
  const absl::Time deadline = absl::Now() + absl::Seconds(10);
  while (absl::Now() < deadline) {
    auto stats = observer.ServerStats();
    if (!stats.ok()) return false;
    if (stats->pool.free_bytes == pool_size && stats->clients == 1 && CountFds(server) == fds) {
      return true;
    }
    absl::SleepFor(absl::Milliseconds(20));
  }
  return false;
}

TEST(MemdStressTest, ClientsKilledAtRandomLoseNothingAndLeakNothing) {
  auto memd = l4re_ma::testing::MemdProcess::Start(
      {"--pool_size=256M", "--client_quota=24M", "--max_clients=64"},
      l4re_ma::testing::UniqueSocketName("stress"));
  ASSERT_TRUE(memd.ok()) << memd.status();
  const pid_t server = (*memd)->pid();
  auto observer = RemoteConnection::Connect((*memd)->socket());
  ASSERT_TRUE(observer.ok()) << observer.status();
  auto stats = (*observer)->ServerStats();
  ASSERT_TRUE(stats.ok()) << stats.status();
  const uint64_t pool_size = stats->pool.size;
  ASSERT_EQ(stats->pool.free_bytes, pool_size);
  // Starting memd probed it with a connection of its own; let memd finish
  // closing that one before taking the baseline.
  int fds_before = CountFds(server);
  for (int quiet = 0; quiet < 5;) {
    absl::SleepFor(absl::Milliseconds(20));
    const int now = CountFds(server);
    quiet = now == fds_before ? quiet + 1 : 0;
    fds_before = now;
  }
  const std::string fds_before_text = DescribeFds(server);

  // Two rounds: the first also warms up what the C library keeps for memd's
  // threads (stacks, malloc arenas); the second must not add a mapping.
  int spawned = 0, killed = 0, finished = 0, maps_after_one = 0;
  std::mt19937_64 rng(20261128);
  for (int round = 1; round <= 2; ++round) {
    constexpr int kConcurrent = 10, kPerRound = 20;
    std::map<pid_t, bool> running;  // pid -> killed by us
    int started = 0;
    while (started < kConcurrent) running[SpawnClient((*memd)->socket(), spawned + started++, kSanitized ? 300 : 1500)] = false;
    while (!running.empty()) {
      absl::SleepFor(absl::Milliseconds(20 + rng() % 60));
      // Kill one at random now and then, mid-way through whatever it does.
      if (rng() % 3 == 0) {
        auto it = std::next(running.begin(), rng() % running.size());
        if (!it->second) {
          kill(it->first, SIGKILL);
          it->second = true;
          ++killed;
        }
      }
      int status;
      pid_t done;
      while ((done = waitpid(-1, &status, WNOHANG)) > 0) {
        auto it = running.find(done);
        ASSERT_NE(it, running.end());
        if (!it->second) {
          ASSERT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0)
              << "client " << done << " failed: status " << status;
          ++finished;
        }
        running.erase(it);
        if (started < kPerRound) {
          running[SpawnClient((*memd)->socket(), spawned + started++, kSanitized ? 300 : 1500)] = false;
        }
      }
    }
    spawned += started;
    if (!WaitUntilReclaimed(**observer, pool_size, server, fds_before)) break;
    if (round == 1) maps_after_one = CountMappings(server);
  }
  stats = (*observer)->ServerStats();
  ASSERT_TRUE(stats.ok()) << stats.status();
  EXPECT_EQ(stats->pool.free_bytes, pool_size) << "the pool is not 100 % free again";
  EXPECT_EQ(stats->clients, 1u) << "only the observer is left";
  EXPECT_EQ(CountFds(server), fds_before)
      << "memd leaked file descriptors; before:\n" << fds_before_text << "after:\n"
      << DescribeFds(server);
  if (!kSanitized) EXPECT_LE(CountMappings(server), maps_after_one) << "memd leaked mappings";
  std::printf("%d clients: %d finished with every byte intact, %d killed at random; "
              "memd reclaimed everything\n", spawned, finished, killed);
  EXPECT_EQ(finished + killed, spawned);
  EXPECT_GT(killed, 0);
  EXPECT_GT(finished, 0);
}

}  // namespace
}  // namespace l4re_ma::stress
