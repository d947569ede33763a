// bench/memd_benchmark.cc: layer 3 of //bench:latency, the C API through
// memd, beside a raw AF_UNIX SOCK_SEQPACKET ping-pong of the same message
// sizes measured in the same run.
//
// For every backend (but the yardstick, which memd does not link) a memd
// process is started on an abstract socket (--pool_size=256M) and its
// client root allocator (RemoteAllocator::Connect) is installed in a
// capability slot, so that the calls below take exactly the C API path of a
// program with L4RE_MA_SERVER set. The raw baseline is a forked echo server
// that answers each packet with a packet of the requested size, and with a
// file descriptor attached when asked (memd passes the client's storage
// file once, at the handshake). Both servers are other processes, as memd's
// clients are.
//
// Where the two ends run decides the round trip (a few us on one core, tens
// of us across the cores of these virtual machines, where waking an idle
// core is slow), and left to the scheduler it flips between the two from
// batch to batch. So every case runs twice with pinned CPUs: same_core
// (client and server threads on CPU 0) and cross_core (client on CPU 0,
// server threads on CPU 1); memd and its baseline are always measured in
// the same placement, interleaved batch by batch.
//
//   L3_Socket/pingpong/P    raw round trip, AllocStats sizes (12 -> 56 B)
//   L3_Socket/pingpong_fd/P the same with a descriptor in every reply
//   L3_Memd/stats/P/B       l4re_ma_stats_srv: one request/reply through
//                           memd's dispatcher; base = raw round trip of the
//                           same sizes, interleaved; x_socket = ns / base_ns
//   L3_Memd/alloc_free/P/B  cap_alloc + l4re_ma_alloc_align_srv(4 KiB) +
//                           cap_free_um: two round trips (Alloc, Release);
//                           base = the two raw round trips of those sizes
//   L3_Memd/cycle:4K/P/B    the whole C API cycle of layer 2 through memd
//                           (Alloc, Map, touch, Unmap notice, Release);
//                           x_inproc = ns / layer 2's cycle on B
//   L3_Memd/connect/P/B     connect + handshake (storage fd passed) + close;
//                           base = raw connect + a round trip with an fd +
//                           close, interleaved
// (P: same_core or cross_core.)
#include <dirent.h>
#include <sched.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include <l4/re/c/mem_alloc.h>
#include <l4/re/c/util/cap_alloc.h>
#include <l4re_ma/mem_alloc_ext.h>

#include <algorithm>
#include <cerrno>
#include <cstdint>
#include <cstring>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "bench/capi_cycle.h"
#include "bench/latency_common.h"
#include "benchmark/benchmark.h"
#include "core/remote_allocator.h"
#include "core/wire/protocol.h"
#include "core/wire/transport.h"

namespace l4re_ma {
namespace bench {
namespace {

constexpr int kBatch = 8;

// Encoded sizes of a request and of its successful reply.
template <typename Request>
std::pair<size_t, size_t> MessageSizes() {
  wire::Sizer req;
  Request r{};
  Request::Fields(r, req);
  wire::Sizer rep;
  typename Request::ReplyType reply{};
  Request::ReplyType::Fields(reply, rep);
  return {wire::kHeaderBytes + req.size(), wire::kHeaderBytes + sizeof(int64_t) + rep.size()};
}

std::string UniqueSocket(const std::string& what) {
  return absl::StrCat("@l4re_ma_bench.", getpid(), ".", what);
}

enum class Placement { kSameCore, kCrossCore };

const char* PlacementName(Placement p) {
  return p == Placement::kSameCore ? "same_core" : "cross_core";
}

bool PinThread(pid_t tid, int cpu) {
  cpu_set_t set;
  CPU_ZERO(&set);
  CPU_SET(cpu, &set);
  return sched_setaffinity(tid, sizeof(set), &set) == 0;
}

// Pins every thread of process `pid` (threads it creates later inherit the
// placement from their creator).
bool PinProcess(pid_t pid, int cpu) {
  const std::string dir = absl::StrCat("/proc/", pid, "/task");
  DIR* d = opendir(dir.c_str());
  if (d == nullptr) return false;
  bool ok = true;
  while (dirent* e = readdir(d)) {
    if (e->d_name[0] == '.') continue;
    // A thread that ended meanwhile (ESRCH) needs no placement.
    if (!PinThread(static_cast<pid_t>(std::strtol(e->d_name, nullptr, 10)), cpu) && errno != ESRCH) {
      ok = false;
    }
  }
  closedir(d);
  return ok;
}

// Puts this thread on CPU 0 and `server` on CPU 0 or 1; false (and a
// skipped benchmark) on a machine with one CPU or when refused.
bool Place(benchmark::State& state, pid_t server, Placement p) {
  if (p == Placement::kCrossCore && sysconf(_SC_NPROCESSORS_ONLN) < 2) {
    state.SkipWithError("one CPU: no cross-core placement");
    return false;
  }
  if (!PinThread(0, 0) || !PinProcess(server, p == Placement::kSameCore ? 0 : 1)) {
    state.SkipWithError("sched_setaffinity refused");
    return false;
  }
  return true;
}

// A raw echo server in a child process: each request packet starts with a
// u32 reply size and a u32 "attach a descriptor" flag; the reply is that
// many bytes, with a memfd attached when asked.
class EchoServer {
 public:
  static EchoServer& Get() {
    static EchoServer* server = new EchoServer();
    return *server;
  }
  ~EchoServer() = delete;
  const std::string& path() const { return path_; }
  pid_t pid() const { return pid_; }

 private:
  EchoServer() : path_(UniqueSocket("echo")) {
    absl::StatusOr<wire::UnixAddress> addr = wire::ParseSocketPath(path_);
    if (!addr.ok()) Fatal(addr.status().ToString());
    const int lfd = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0);
    if (lfd < 0 || bind(lfd, reinterpret_cast<const sockaddr*>(&addr->addr), addr->len) != 0 ||
        listen(lfd, 16) != 0) {
      Fatal(absl::StrCat("echo server socket: ", std::strerror(errno)));
    }
    const pid_t pid = fork();
    if (pid < 0) Fatal("fork failed");
    if (pid == 0) {
      prctl(PR_SET_PDEATHSIG, SIGKILL);  // even if we die without exit handlers
      Serve(lfd);                        // never returns
    }
    close(lfd);
    pid_ = pid;
    // The child dies with us.
    static pid_t child = pid;
    std::atexit([] {
      kill(child, SIGKILL);
      waitpid(child, nullptr, 0);
    });
  }

  [[noreturn]] static void Serve(int lfd) {
    const int memfd = memfd_create("echo", MFD_CLOEXEC);
    std::vector<uint8_t> buf(wire::kMaxMessageBytes);
    for (;;) {
      const int c = accept4(lfd, nullptr, nullptr, SOCK_CLOEXEC);
      if (c < 0) continue;
      for (;;) {
        const ssize_t n = recv(c, buf.data(), buf.size(), 0);
        if (n < 8) break;
        uint32_t reply_size;
        uint32_t with_fd;
        std::memcpy(&reply_size, buf.data(), 4);
        std::memcpy(&with_fd, buf.data() + 4, 4);
        if (wire::SendPacket(c, buf.data(), std::min<size_t>(reply_size, buf.size()),
                             with_fd != 0 ? memfd : -1) != 0) {
          break;
        }
      }
      close(c);
    }
  }

  std::string path_;
  pid_t pid_ = -1;
};

// A connection to the echo server.
class RawClient {
 public:
  RawClient() = default;
  RawClient(const RawClient&) = delete;
  RawClient& operator=(const RawClient&) = delete;
  ~RawClient() { Close(); }

  bool Connect(const std::string& path) {
    absl::StatusOr<wire::UnixAddress> addr = wire::ParseSocketPath(path);
    if (!addr.ok()) return false;
    fd_ = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0);
    return fd_ >= 0 &&
           connect(fd_, reinterpret_cast<const sockaddr*>(&addr->addr), addr->len) == 0;
  }
  void Close() {
    if (fd_ >= 0) close(fd_);
    fd_ = -1;
  }
  // One request of `request` bytes, one reply of `reply` bytes.
  bool RoundTrip(size_t request, size_t reply, bool with_fd = false) {
    uint8_t buf[wire::kMaxMessageBytes < 4096 ? wire::kMaxMessageBytes : 4096] = {};
    const uint32_t size = static_cast<uint32_t>(reply);
    const uint32_t flag = with_fd ? 1 : 0;
    std::memcpy(buf, &size, 4);
    std::memcpy(buf + 4, &flag, 4);
    if (wire::SendPacket(fd_, buf, std::max<size_t>(request, 8)) != 0) return false;
    int fd = -1;
    const ssize_t n = wire::RecvPacket(fd_, buf, sizeof(buf), with_fd ? &fd : nullptr);
    if (fd >= 0) close(fd);
    return n == static_cast<ssize_t>(reply) && (!with_fd || fd >= 0);
  }

 private:
  int fd_ = -1;
};

// memd for one backend, started once and stopped at exit.
class Memd {
 public:
  static Memd* For(const std::string& backend, const std::string& binary) {
    static auto* servers = new std::map<std::string, Memd*>();
    auto it = servers->find(backend);
    if (it != servers->end()) return it->second;
    Memd* m = new Memd(backend, binary);
    (*servers)[backend] = m;
    static bool registered = false;
    if (!registered) {
      registered = true;
      std::atexit([] {
        for (auto& [name, memd] : *servers) memd->Stop();
      });
    }
    return m;
  }
  const std::string& path() const { return path_; }
  bool ok() const { return pid_ > 0; }
  pid_t pid() const { return pid_; }

 private:
  Memd(const std::string& backend, const std::string& binary) : path_(UniqueSocket(backend)) {
    std::vector<std::string> args = {binary, "--backend=" + backend, "--pool_size=256M",
                                     "--socket=" + path_};
    std::vector<char*> argv;
    for (std::string& a : args) argv.push_back(a.data());
    argv.push_back(nullptr);
    pid_ = fork();
    if (pid_ < 0) return;
    if (pid_ == 0) {
      prctl(PR_SET_PDEATHSIG, SIGTERM);  // memd stops with us, however we end
      execv(binary.c_str(), argv.data());
      _exit(127);
    }
    // Ready when a client can connect; give up after 10 s or if it exits.
    const absl::Time deadline = absl::Now() + absl::Seconds(10);
    while (absl::Now() < deadline) {
      if (waitpid(pid_, nullptr, WNOHANG) == pid_) {
        pid_ = -1;
        return;
      }
      RawClient probe;
      if (probe.Connect(path_)) return;
      absl::SleepFor(absl::Milliseconds(10));
    }
    Stop();
  }
  void Stop() {
    if (pid_ <= 0) return;
    kill(pid_, SIGTERM);
    waitpid(pid_, nullptr, 0);
    pid_ = -1;
  }

  std::string path_;
  pid_t pid_ = -1;
};

// Connects a client root allocator of the backend's memd and installs it in
// a capability slot; nullopt (and a skipped benchmark) when memd is not up.
std::optional<l4_cap_idx_t> ConnectAllocator(benchmark::State& state, const std::string& backend,
                                             const std::string& binary, Placement p) {
  Memd* memd = Memd::For(backend, binary);
  if (!memd->ok()) {
    state.SkipWithError(absl::StrCat("memd --backend=", backend, " did not start").c_str());
    return std::nullopt;
  }
  if (!Place(state, memd->pid(), p)) return std::nullopt;
  absl::StatusOr<std::shared_ptr<RemoteAllocator>> remote = RemoteAllocator::Connect(memd->path());
  if (!remote.ok()) {
    state.SkipWithError(remote.status().ToString().c_str());
    return std::nullopt;
  }
  absl::StatusOr<l4_cap_idx_t> srv = InstallAllocator(*std::move(remote));
  if (!srv.ok()) {
    state.SkipWithError(srv.status().ToString().c_str());
    return std::nullopt;
  }
  return *srv;
}

bool ConnectRaw(benchmark::State& state, RawClient& raw, Placement p) {
  if (!Place(state, EchoServer::Get().pid(), p)) return false;
  if (raw.Connect(EchoServer::Get().path())) return true;
  state.SkipWithError("cannot reach the raw echo server");
  return false;
}

void BM_PingPong(benchmark::State& state, bool with_fd, Placement p) {
  state.SetLabel("socket");
  RawClient raw;
  if (!ConnectRaw(state, raw, p)) return;
  const auto [req, rep] = MessageSizes<wire::AllocStatsRequest>();
  // Against itself: base_ns is a second, interleaved series of the same.
  const auto rt = [&, req = req, rep = rep] { return raw.RoundTrip(req, rep, with_fd); };
  TimeInterleaved(state, kBatch, rt, rt, "x_socket");
}

void BM_MemdStats(benchmark::State& state, std::string backend, std::string binary,
                  Placement p) {
  state.SetLabel(backend);
  RawClient raw;
  if (!ConnectRaw(state, raw, p)) return;
  std::optional<l4_cap_idx_t> srv = ConnectAllocator(state, backend, binary, p);
  if (!srv) return;
  const auto [req, rep] = MessageSizes<wire::AllocStatsRequest>();
  l4re_ma_stats_t stats;
  TimeInterleaved(
      state, kBatch, [&] { return l4re_ma_stats_srv(*srv, &stats) == 0; },
      [&, req = req, rep = rep] { return raw.RoundTrip(req, rep); }, "x_socket");
  l4re_util_cap_free_um(*srv);
}

void BM_MemdAllocFree(benchmark::State& state, std::string backend, std::string binary,
                  Placement p) {
  state.SetLabel(backend);
  RawClient raw;
  if (!ConnectRaw(state, raw, p)) return;
  std::optional<l4_cap_idx_t> srv = ConnectAllocator(state, backend, binary, p);
  if (!srv) return;
  const auto [alloc_req, alloc_rep] = MessageSizes<wire::AllocRequest>();
  const auto [rel_req, rel_rep] = MessageSizes<wire::ReleaseRequest>();
  TimeInterleaved(
      state, kBatch,
      [&] {
        const l4re_ds_t ds = l4re_util_cap_alloc();
        const long r = l4re_ma_alloc_align_srv(*srv, 4096, ds, 0, 0);
        l4re_util_cap_free_um(ds);
        return r == 0;
      },
      [&, a = alloc_req, b = alloc_rep, c = rel_req, d = rel_rep] {
        return raw.RoundTrip(a, b) && raw.RoundTrip(c, d);
      },
      "x_socket");
  l4re_util_cap_free_um(*srv);
}

void BM_MemdCycle(benchmark::State& state, std::string backend, std::string binary, Placement p) {
  state.SetLabel(backend);
  std::optional<l4_cap_idx_t> srv = ConnectAllocator(state, backend, binary, p);
  if (!srv) return;
  const CycleClock& clock = CycleClock::Get();
  std::vector<double> batch_ns;
  batch_ns.reserve(static_cast<size_t>(state.max_iterations));
  for (auto _ : state) {
    const uint64_t t0 = CycleClock::Now();
    for (int i = 0; i < kBatch; ++i) {
      if (CApiCycle(*srv, 4096, 0) != 0) {
        state.SkipWithError("a call of the cycle failed");
        break;
      }
    }
    batch_ns.push_back(clock.ToNsPerOp(CycleClock::Now() - t0, kBatch));
  }
  l4re_util_cap_free_um(*srv);
  const double ns = Median(batch_ns);
  state.counters["ns"] = ns;
  state.SetItemsProcessed(state.iterations() * kBatch);
  SetRatio(state, "x_inproc", absl::StrCat("capi/", backend, "/4096/0"), ns);
}

void BM_MemdConnect(benchmark::State& state, std::string backend, std::string binary,
                    Placement p) {
  state.SetLabel(backend);
  Memd* memd = Memd::For(backend, binary);
  if (!memd->ok()) {
    state.SkipWithError(absl::StrCat("memd --backend=", backend, " did not start").c_str());
    return;
  }
  if (!Place(state, memd->pid(), p) || !Place(state, EchoServer::Get().pid(), p)) return;
  const auto [req, rep] = MessageSizes<wire::Hello>();
  TimeInterleaved(
      state, 1, [&] { return RemoteAllocator::Connect(memd->path()).ok(); },
      [&, req = req, rep = rep] {
        RawClient raw;
        return raw.Connect(EchoServer::Get().path()) && raw.RoundTrip(req, rep, true);
      },
      "x_socket");
}

}  // namespace

void RegisterMemdBenchmarks(const LatencyOptions& o) {
  const uint64_t batches = Scaled(o, 300, 20);
  for (Placement p : {Placement::kSameCore, Placement::kCrossCore}) {
    const std::string where = PlacementName(p);
    benchmark::RegisterBenchmark(absl::StrCat("L3_Socket/pingpong/", where).c_str(), BM_PingPong,
                                 false, p)
        ->Iterations(static_cast<benchmark::IterationCount>(batches));
    benchmark::RegisterBenchmark(absl::StrCat("L3_Socket/pingpong_fd/", where).c_str(),
                                 BM_PingPong, true, p)
        ->Iterations(static_cast<benchmark::IterationCount>(batches));
    for (const std::string& name : o.backends) {
      if (name == kYardstick) continue;  // memd links //backends:all only
      benchmark::RegisterBenchmark(absl::StrCat("L3_Memd/stats/", where, "/", name).c_str(),
                                   BM_MemdStats, name, o.memd_path, p)
          ->Iterations(static_cast<benchmark::IterationCount>(batches));
      benchmark::RegisterBenchmark(absl::StrCat("L3_Memd/alloc_free/", where, "/", name).c_str(),
                                   BM_MemdAllocFree, name, o.memd_path, p)
          ->Iterations(static_cast<benchmark::IterationCount>(batches));
      benchmark::RegisterBenchmark(absl::StrCat("L3_Memd/cycle:4K/", where, "/", name).c_str(),
                                   BM_MemdCycle, name, o.memd_path, p)
          ->Iterations(static_cast<benchmark::IterationCount>(Scaled(o, 200, 10)));
      benchmark::RegisterBenchmark(absl::StrCat("L3_Memd/connect/", where, "/", name).c_str(),
                                   BM_MemdConnect, name, o.memd_path, p)
          ->Iterations(static_cast<benchmark::IterationCount>(Scaled(o, 100, 10)));
    }
  }
}

}  // namespace bench
}  // namespace l4re_ma
