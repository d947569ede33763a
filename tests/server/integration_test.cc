// memd with real processes: the memd binary, and forked clients that set
// L4RE_MA_SERVER before their first C API call. Several clients sharing
// nothing; a client killed mid-way and its memory reclaimed; the server
// killed or stopped under a client; per-client quotas; malformed traffic;
// 100 clients at once; flags, config file, --stats and the SIGUSR1 dump.
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <l4/re/c/dataspace.h>
#include <l4/re/c/mem_alloc.h>
#include <l4/re/c/rm.h>
#include <l4/re/c/util/cap_alloc.h>
#include <l4/re/env.h>
#include <l4/sys/err.h>
#include <l4/sys/factory.h>
#include <l4re_ma/mem_alloc_ext.h>

#include <algorithm>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <functional>
#include <sstream>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "core/remote_allocator.h"
#include "gtest/gtest.h"
#include "tests/server/memd_process.h"
#include "tests/server/raw_client.h"

namespace l4re_ma::testing {
namespace {

constexpr int kOk = 0;

bool IsIpcError(long r) { return r <= -L4_EIPC_LO && r >= -L4_EIPC_HI; }

// Parent side of a start line: children report "ready", then wait for "go".
class Barrier {
 public:
  Barrier() {
    EXPECT_EQ(pipe2(ready_, O_CLOEXEC), 0);
    EXPECT_EQ(pipe2(go_, O_CLOEXEC), 0);
  }
  ~Barrier() {
    for (int fd : {ready_[0], ready_[1], go_[0], go_[1]}) {
      if (fd >= 0) close(fd);
    }
  }
  // In a child, first thing.
  void ChildInit() {
    close(ready_[0]);
    close(go_[1]);
    ready_[0] = go_[1] = -1;
  }
  void ChildReady() { (void)!write(ready_[1], "r", 1); }
  void ChildWaitGo() {
    char c;
    while (read(go_[0], &c, 1) > 0) {
    }
  }
  // Parent: waits for n "ready"s; false on timeout or when one of
  // `children` has exited (its status is reported).
  bool WaitReady(int n, const std::vector<pid_t>& children = {},
                 absl::Duration timeout = absl::Seconds(30)) {
    const absl::Time deadline = absl::Now() + timeout;
    int got = 0;
    while (got < n && absl::Now() < deadline) {
      for (pid_t pid : children) {
        siginfo_t info{};
        if (waitid(P_PID, pid, &info, WEXITED | WNOHANG | WNOWAIT) == 0 && info.si_pid == pid) {
          ADD_FAILURE() << "child " << pid << " ended early with status " << info.si_status;
          return false;
        }
      }
      pollfd p{ready_[0], POLLIN, 0};
      if (poll(&p, 1, 100) == 1) {
        char buf[128];
        const ssize_t r = read(ready_[0], buf, sizeof(buf));
        if (r > 0) got += static_cast<int>(r);
      }
    }
    return got == n;
  }
  void Go() {
    close(go_[1]);
    go_[1] = -1;
  }

 private:
  int ready_[2] = {-1, -1};
  int go_[2] = {-1, -1};
};

// Forks a client that talks to memd at `socket` through the C API.
pid_t SpawnClient(const std::string& socket, const std::function<int()>& body,
                  Barrier* barrier = nullptr, int stderr_fd = -1) {
  const pid_t pid = fork();
  if (pid != 0) return pid;
  if (barrier != nullptr) barrier->ChildInit();
  if (stderr_fd >= 0) dup2(stderr_fd, STDERR_FILENO);
  setenv("L4RE_MA_SERVER", socket.c_str(), 1);
  _exit(body());
}

// Whole-server statistics through an observer connection.
wire::ServerStatsSnapshot Stats(const std::string& socket) {
  RemoteConnection::Options o;
  o.role = wire::Role::kObserver;
  auto c = RemoteConnection::Connect(socket, o);
  EXPECT_TRUE(c.ok()) << c.status();
  if (!c.ok()) return {};
  absl::StatusOr<wire::ServerStatsSnapshot> s = (*c)->ServerStats();
  EXPECT_TRUE(s.ok()) << s.status();
  return s.ok() ? *s : wire::ServerStatsSnapshot{};
}

std::string ReadFile(const std::string& path) {
  std::ifstream in(path);
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

// A dataspace attached read-write, in the child.
struct Mapped {
  l4re_ds_t ds = L4_INVALID_CAP;
  char* p = nullptr;
};
Mapped AllocAttach(long size, unsigned long flags) {
  Mapped m;
  m.ds = l4re_util_cap_alloc();
  if (l4re_ma_alloc(size, m.ds, flags) != 0) return Mapped{};
  void* addr = nullptr;
  if (l4re_rm_attach(&addr, size, L4RE_RM_F_SEARCH_ADDR | L4RE_RM_F_RW, m.ds, 0, L4_PAGESHIFT) != 0) {
    return Mapped{};
  }
  m.p = static_cast<char*>(addr);
  return m;
}

char Pattern(int client, long i) { return static_cast<char>(client * 31 + i * 7 + (i >> 12)); }

class IntegrationTest : public ::testing::Test {
 protected:
  void SetUp() override { memd_ = StartMemd({"--pool_size=128M"}); }

  std::unique_ptr<MemdProcess> StartMemd(std::vector<std::string> args, std::string socket = "",
                                         std::string stderr_file = "") {
    auto m = MemdProcess::Start(std::move(args), socket.empty() ? UniqueSocketName("it") : socket,
                                std::move(stderr_file));
    EXPECT_TRUE(m.ok()) << m.status();
    return m.ok() ? *std::move(m) : nullptr;
  }

  std::unique_ptr<MemdProcess> memd_;
};

TEST_F(IntegrationTest, SeveralClientsAllocateAndShareNothing) {
  ASSERT_NE(memd_, nullptr);
  const uint64_t free_before = Stats(memd_->socket()).pool.free_bytes;
  constexpr int kClients = 6;
  Barrier barrier;
  std::vector<pid_t> pids;
  for (int id = 1; id <= kClients; ++id) {
    pids.push_back(SpawnClient(memd_->socket(), [&barrier, id] {
      std::vector<std::pair<Mapped, long>> mine;
      for (int k = 0; k < 4; ++k) {
        const long size = (k + 1) * 300 * 1000 + id * 4096 + 17;
        Mapped m = AllocAttach(size, k % 2 ? L4RE_MA_CONTINUOUS : 0);
        if (m.p == nullptr) return 10;
        for (long i = 0; i < size; ++i) {
          if (m.p[i] != 0) return 11;  // fresh memory is zero
          m.p[i] = Pattern(id, i);
        }
        mine.emplace_back(m, size);
      }
      barrier.ChildReady();
      barrier.ChildWaitGo();  // everybody has written everything
      for (auto& [m, size] : mine) {
        for (long i = 0; i < size; ++i) {
          if (m.p[i] != Pattern(id, i)) return 12;
        }
        if (l4re_rm_detach(m.p) != 0) return 13;
        l4re_util_cap_free_um(m.ds);
      }
      l4re_ma_stats_t s;
      if (l4re_ma_stats_srv(l4re_env()->mem_alloc, &s) != 0 || s.mem_used != 0) return 14;
      return kOk;
    }, &barrier));
  }
  ASSERT_TRUE(barrier.WaitReady(kClients, pids));
  EXPECT_EQ(Stats(memd_->socket()).clients, static_cast<uint32_t>(kClients + 1));
  barrier.Go();
  for (pid_t pid : pids) EXPECT_EQ(WaitFor(pid, absl::Seconds(30)), kOk);
  EXPECT_EQ(Stats(memd_->socket()).pool.free_bytes, free_before);
}

TEST_F(IntegrationTest, AClientKilledMidWayHasItsMemoryReclaimed) {
  ASSERT_NE(memd_, nullptr);
  const uint64_t free_before = Stats(memd_->socket()).pool.free_bytes;
  Barrier barrier;
  const pid_t pid = SpawnClient(memd_->socket(), [&barrier] {
    Mapped big = AllocAttach(16 << 20, L4RE_MA_CONTINUOUS);
    Mapped lazy = AllocAttach(8 << 20, 0);
    if (big.p == nullptr || lazy.p == nullptr) return 10;
    std::memset(big.p, 1, 16 << 20);
    std::memset(lazy.p, 2, 8 << 20);
    l4_cap_idx_t sub = l4re_util_cap_alloc();
    if (l4_error(l4_factory_create_factory(l4re_env()->mem_alloc, sub, 8 << 20)) != 0) return 11;
    l4re_ds_t ds = l4re_util_cap_alloc();
    if (l4re_ma_alloc_align_srv(sub, 4 << 20, ds, L4RE_MA_CONTINUOUS, 0) != 0) return 12;
    barrier.ChildReady();
    for (;;) pause();  // killed here, holding everything
  }, &barrier);
  ASSERT_TRUE(barrier.WaitReady(1, {pid}));
  const wire::ServerStatsSnapshot during = Stats(memd_->socket());
  EXPECT_EQ(during.pool.free_bytes, free_before - (28 << 20));
  ASSERT_EQ(during.sessions.size(), 2u);
  EXPECT_EQ(during.sessions[0].pid, pid);
  EXPECT_EQ(during.sessions[0].mem_used, 24u << 20) << "the sub-allocator's 4 MiB are its own";
  EXPECT_GE(during.sessions[0].storage_resident, 24u << 20) << "the pages were touched";
  kill(pid, SIGKILL);
  EXPECT_EQ(WaitFor(pid, absl::Seconds(10)), 128 + SIGKILL);
  const wire::ServerStatsSnapshot after = Stats(memd_->socket());
  EXPECT_EQ(after.pool.free_bytes, free_before) << "reclaimed before the next answer";
  ASSERT_EQ(after.sessions.size(), 1u) << "only the observer is left";
  EXPECT_EQ(after.sessions[0].role, wire::Role::kObserver);
}

TEST_F(IntegrationTest, TheServerKilledUnderAClientGivesIpcErrorsPromptly) {
  std::unique_ptr<MemdProcess> victim = StartMemd({"--pool_size=32M"});
  ASSERT_NE(victim, nullptr);
  Barrier barrier;
  const pid_t pid = SpawnClient(victim->socket(), [&barrier] {
    Mapped m = AllocAttach(1 << 20, 0);
    if (m.p == nullptr) return 10;
    std::memset(m.p, 3, 1 << 20);
    barrier.ChildReady();
    barrier.ChildWaitGo();
    const absl::Time start = absl::Now();
    l4re_ds_t ds = l4re_util_cap_alloc();
    const long alloc = l4re_ma_alloc(4096, ds, 0);
    l4re_ds_stats_t st;
    const long info = l4re_ds_info(m.ds, &st);
    const long size = static_cast<long>(l4re_ds_size(m.ds));
    l4re_ma_stats_t ms;
    const long stats = l4re_ma_stats_srv(l4re_env()->mem_alloc, &ms);
    if (absl::Now() - start > absl::Seconds(2)) return 20;  // not prompt
    if (!IsIpcError(alloc) || !IsIpcError(info) || !IsIpcError(stats)) return 21;
    if (size != 0) return 22;
    if (m.p[12345] != 3) return 23;  // the client's own bytes stay readable
    return kOk;
  }, &barrier);
  ASSERT_TRUE(barrier.WaitReady(1, {pid}));
  EXPECT_EQ(victim->Stop(SIGKILL), 128 + SIGKILL);
  barrier.Go();
  EXPECT_EQ(WaitFor(pid, absl::Seconds(20)), kOk);
}

TEST_F(IntegrationTest, SigtermStopsTheServerCleanlyUnderConnectedClients) {
  const std::string path = absl::StrCat("/tmp/memd-it-", getpid(), "-", absl::ToUnixMicros(absl::Now()) % 100000, ".sock");
  std::unique_ptr<MemdProcess> server = StartMemd({"--pool_size=32M"}, path);
  ASSERT_NE(server, nullptr);
  Barrier barrier;
  const pid_t pid = SpawnClient(path, [&barrier] {
    Mapped m = AllocAttach(1 << 20, L4RE_MA_CONTINUOUS);
    if (m.p == nullptr) return 10;
    barrier.ChildReady();
    barrier.ChildWaitGo();
    l4re_ds_t ds = l4re_util_cap_alloc();
    return IsIpcError(l4re_ma_alloc(4096, ds, 0)) ? kOk : 21;
  }, &barrier);
  ASSERT_TRUE(barrier.WaitReady(1, {pid}));
  EXPECT_EQ(server->Stop(SIGTERM, absl::Seconds(5)), 0) << "exit 0, promptly";
  EXPECT_NE(access(path.c_str(), F_OK), 0) << "the socket file is removed";
  barrier.Go();
  EXPECT_EQ(WaitFor(pid, absl::Seconds(20)), kOk);
}

TEST_F(IntegrationTest, QuotaExhaustionIsPerClient) {
  std::unique_ptr<MemdProcess> server = StartMemd({"--pool_size=32M", "--client_quota=4M"});
  ASSERT_NE(server, nullptr);
  Barrier barrier;
  const pid_t greedy = SpawnClient(server->socket(), [&barrier] {
    l4re_ds_t lazy = l4re_util_cap_alloc();
    if (l4re_ma_alloc(1 << 20, lazy, 0) != 0) return 10;  // 512 bytes of bookkeeping
    int got = 0;
    for (;; ++got) {
      l4re_ds_t ds = l4re_util_cap_alloc();
      const long r = l4re_ma_alloc(1 << 20, ds, L4RE_MA_CONTINUOUS);
      if (r == -L4_ENOMEM) break;
      if (r != 0 || got > 4) return 11;
    }
    if (got != 3) return 12;  // the fourth MiB does not fit beside the bookkeeping
    if (l4re_ds_allocate(lazy, 0, 1 << 20) != -L4_ENOMEM) return 13;
    if (l4re_ds_allocate(lazy, 0, 4096) != 0) return 14;  // what fits still works
    barrier.ChildReady();
    barrier.ChildWaitGo();  // holds its memory while the other allocates
    return kOk;
  }, &barrier);
  ASSERT_TRUE(barrier.WaitReady(1, {greedy}));
  const pid_t modest = SpawnClient(server->socket(), [] {
    Mapped m = AllocAttach(4 << 20, L4RE_MA_CONTINUOUS);
    if (m.p == nullptr) return 10;
    std::memset(m.p, 1, 4 << 20);
    l4re_ma_stats_t s;
    if (l4re_ma_stats_srv(l4re_env()->mem_alloc, &s) != 0) return 11;
    return s.quota == (4u << 20) && s.mem_used == (4u << 20) ? kOk : 12;
  });
  EXPECT_EQ(WaitFor(modest, absl::Seconds(20)), kOk);
  barrier.Go();
  EXPECT_EQ(WaitFor(greedy, absl::Seconds(20)), kOk);
}

TEST_F(IntegrationTest, MalformedMessagesDoNotHurtTheServer) {
  ASSERT_NE(memd_, nullptr);
  {
    auto raw = RawClient::Connect(memd_->socket());
    ASSERT_TRUE(raw.ok());
    for (const Bytes& b : {Bytes{1}, Bytes(100, 0xff), Bytes(70000, 0x42),
                           EncodeBytes(wire::DsInfoRequest{wire::Handle{999}})}) {
      ASSERT_TRUE((*raw)->Send(b));
      absl::StatusOr<wire::Reply> r = (*raw)->RecvReply();
      ASSERT_TRUE(r.ok()) << r.status();
      EXPECT_LT(r->result, 0);
    }
    auto half = RawClient::Connect(memd_->socket(), /*hello=*/false);
    ASSERT_TRUE(half.ok());
    ASSERT_TRUE((*half)->Send(Bytes{1, 0, 0, 0}));  // a broken hello, then gone
  }
  const pid_t pid = SpawnClient(memd_->socket(), [] {
    Mapped m = AllocAttach(1 << 20, 0);
    return m.p != nullptr ? kOk : 10;
  });
  EXPECT_EQ(WaitFor(pid, absl::Seconds(20)), kOk);
  EXPECT_EQ(kill(memd_->pid(), 0), 0) << "memd is alive";
  // Three garbage packets, and the broken hello if its session got to it.
  EXPECT_GE(Stats(memd_->socket()).protocol_errors, 3u);
}

TEST_F(IntegrationTest, AHundredClientsAtOnce) {
  ASSERT_NE(memd_, nullptr);
  const uint64_t free_before = Stats(memd_->socket()).pool.free_bytes;
  constexpr int kClients = 100;
  Barrier barrier;
  std::vector<pid_t> pids;
  for (int id = 0; id < kClients; ++id) {
    pids.push_back(SpawnClient(memd_->socket(), [&barrier, id] {
      Mapped m = AllocAttach(256 << 10, id % 2 ? L4RE_MA_CONTINUOUS : 0);
      if (m.p == nullptr) return 10;
      barrier.ChildReady();  // connected and holding memory
      barrier.ChildWaitGo();
      for (long i = 0; i < (256 << 10); i += 512) m.p[i] = Pattern(id, i);
      for (long i = 0; i < (256 << 10); i += 512) {
        if (m.p[i] != Pattern(id, i)) return 11;
      }
      l4re_util_cap_free_um(m.ds);
      return kOk;
    }, &barrier));
  }
  ASSERT_TRUE(barrier.WaitReady(kClients, pids, absl::Seconds(60)));
  const wire::ServerStatsSnapshot during = Stats(memd_->socket());
  EXPECT_EQ(during.clients, static_cast<uint32_t>(kClients + 1));
  EXPECT_EQ(during.pool.free_bytes, free_before - kClients * (256u << 10));
  barrier.Go();
  int ok = 0;
  for (pid_t pid : pids) ok += WaitFor(pid, absl::Seconds(60)) == kOk;
  EXPECT_EQ(ok, kClients);
  EXPECT_EQ(Stats(memd_->socket()).pool.free_bytes, free_before);
}

TEST_F(IntegrationTest, AnUnreachableServerIsOneClearMessageAndIpcErrors) {
  const std::string nowhere = UniqueSocketName("nowhere");
  int err_pipe[2];
  ASSERT_EQ(pipe(err_pipe), 0);
  const pid_t pid = SpawnClient(nowhere, [] {
    l4re_ds_t ds = l4re_util_cap_alloc();
    if (l4re_ma_alloc(4096, ds, 0) != -(L4_EIPC_LO + 4)) return 10;
    if (l4re_ma_alloc(4096, ds, 0) != -(L4_EIPC_LO + 4)) return 11;
    l4re_ma_stats_t s;
    if (l4re_ma_stats_srv(l4re_env()->mem_alloc, &s) != -(L4_EIPC_LO + 4)) return 12;
    return kOk;
  }, nullptr, err_pipe[1]);
  close(err_pipe[1]);
  std::string err;
  char buf[512];
  ssize_t n;
  while ((n = read(err_pipe[0], buf, sizeof(buf))) > 0) err.append(buf, n);
  close(err_pipe[0]);
  EXPECT_EQ(WaitFor(pid, absl::Seconds(10)), kOk);
  EXPECT_NE(err.find(nowhere), std::string::npos) << err;
  EXPECT_EQ(std::count(err.begin(), err.end(), '\n'), 1) << "one message: " << err;
}

// ---- The binary's flags, config file and reports ----

TEST(MemdBinaryTest, BadValuesExitWith2NamingTheFlagAndTheValue) {
  const std::string s = "--socket=" + UniqueSocketName("flags");
  struct Case {
    std::vector<std::string> args;
    std::string expect;
  } cases[] = {
      {{s, "--pool_size=12abc"}, "--pool_size=12abc"},
      {{s, "--pool_size=1000"}, "--pool_size=1000"},
      {{s, "--backend=nosuch"}, "--backend=nosuch"},
      {{s, "--backend=nosuch"}, "buddy"},
      {{"--socket=/" + std::string(150, 'q')}, "sun_path"},
      {{s, "--max_clients=0"}, "--max_clients=0"},
      {{s, "--client_quota=-1"}, "--client_quota=-1"},
      {{}, "--socket"},
      {{s, "--config=/nonexistent/memd.conf"}, "/nonexistent/memd.conf"},
      {{s, "stray"}, "stray"},
  };
  for (const Case& c : cases) {
    RunResult r = RunMemd(c.args);
    EXPECT_EQ(r.exit_code, 2) << c.args.back() << ": " << r.err;
    EXPECT_NE(r.err.find(c.expect), std::string::npos) << c.args.back() << ": " << r.err;
  }
}

TEST(MemdBinaryTest, HelpListsTheFlagsAndBackends) {
  RunResult r = RunMemd({"--help"});
  const std::string all = r.out + r.err;
  for (const char* flag : {"--backend", "--pool_size", "--socket", "--client_quota",
                           "--max_clients", "--config", "--stats"}) {
    EXPECT_NE(all.find(flag + 2), std::string::npos) << flag << " in " << all;
  }
  EXPECT_NE(all.find("buddy"), std::string::npos);
  EXPECT_TRUE(r.exit_code == 0 || r.exit_code == 1) << r.exit_code;
}

TEST(MemdBinaryTest, AConfigFileIsReadAndTheCommandLineOverridesIt) {
  const std::string socket = UniqueSocketName("conf");
  const std::string conf = absl::StrCat("/tmp/memd-conf-", getpid(), ".conf");
  {
    std::ofstream out(conf);
    out << "# test\npool_size = 64M\nmax_clients = 3\nsocket = " << socket << "\n";
  }
  auto m = MemdProcess::Start({"--config=" + conf, "--pool_size=16M"}, socket);
  ASSERT_TRUE(m.ok()) << m.status();
  const wire::ServerStatsSnapshot s = Stats(socket);
  EXPECT_EQ(s.pool.size, 16u << 20) << "the command line wins";
  EXPECT_EQ(s.max_clients, 3u) << "from the file";
  EXPECT_EQ((*m)->Stop(SIGTERM), 0);
  {
    std::ofstream out(conf);
    out << "pool_size = 64M\nwhatever = 1\n";
  }
  RunResult bad = RunMemd({"--config=" + conf, "--socket=" + socket});
  EXPECT_EQ(bad.exit_code, 2);
  EXPECT_NE(bad.err.find(conf + ":2"), std::string::npos) << bad.err;
  unlink(conf.c_str());
}

TEST(MemdBinaryTest, StatsCommandAndSigusr1DumpReport) {
  const std::string log = absl::StrCat("/tmp/memd-log-", getpid(), ".txt");
  auto m = MemdProcess::Start({"--pool_size=32M", "--backend=buddy"}, UniqueSocketName("stats"), log);
  ASSERT_TRUE(m.ok()) << m.status();
  Barrier barrier;
  const pid_t pid = SpawnClient((*m)->socket(), [&barrier] {
    Mapped mm = AllocAttach(3 << 20, L4RE_MA_CONTINUOUS);
    if (mm.p == nullptr) return 10;
    barrier.ChildReady();
    barrier.ChildWaitGo();
    return kOk;
  }, &barrier);
  ASSERT_TRUE(barrier.WaitReady(1, {pid}));
  RunResult text = RunMemd({"--stats", "--socket=" + (*m)->socket()});
  EXPECT_EQ(text.exit_code, 0) << text.err;
  EXPECT_NE(text.out.find("29 MiB free"), std::string::npos) << text.out;
  EXPECT_NE(text.out.find(absl::StrCat(" ", pid, " ")), std::string::npos) << text.out;
  RunResult json = RunMemd({"--stats", "--json", "--socket=" + (*m)->socket()});
  EXPECT_EQ(json.exit_code, 0) << json.err;
  EXPECT_NE(json.out.find(absl::StrCat("\"pid\": ", pid)), std::string::npos) << json.out;
  EXPECT_NE(json.out.find("\"mem_used\": 3145728"), std::string::npos) << json.out;
  RunResult none = RunMemd({"--stats", "--socket=" + UniqueSocketName("none")});
  EXPECT_NE(none.exit_code, 0);
  kill((*m)->pid(), SIGUSR1);
  std::string dump;
  for (int i = 0; i < 500 && dump.find("quota used") == std::string::npos; ++i) {
    absl::SleepFor(absl::Milliseconds(10));
    dump = ReadFile(log);
  }
  EXPECT_NE(dump.find("memd pool"), std::string::npos) << dump;
  EXPECT_NE(dump.find(absl::StrCat(" ", pid, " ")), std::string::npos) << dump;
  barrier.Go();
  EXPECT_EQ(WaitFor(pid, absl::Seconds(10)), kOk);
  EXPECT_EQ((*m)->Stop(SIGTERM), 0);
  EXPECT_NE(ReadFile(log).find("memd: stopped"), std::string::npos);
  unlink(log.c_str());
}

}  // namespace
}  // namespace l4re_ma::testing
