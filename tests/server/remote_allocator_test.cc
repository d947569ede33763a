// The client transport (core/remote_allocator.h) against a server embedded
// in this process, and against a fake server that misbehaves on purpose:
// every call, lifetime (revocation before the server frees), continuations,
// and the IPC errors of a server that is gone, stopped or lying.
#include "core/remote_allocator.h"

#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <cstring>
#include <functional>
#include <thread>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "core/errors.h"
#include "core/local_allocator.h"
#include "core/phys_pool.h"
#include "core/storage.h"
#include "core/wire/transport.h"
#include "gtest/gtest.h"
#include "server/server.h"
#include "tests/server/memd_process.h"
#include "tests/server/raw_client.h"

namespace l4re_ma::testing {
namespace {

constexpr uint64_t kPool = 64 << 20;
constexpr long kIpcNotExistent = -2004, kRecvTimeout = -2003, kSendAborted = -2014;

bool InIpcRange(long r) { return r <= -2000 && r >= -2031; }

// Records revocations; optionally runs a probe at that moment.
class TestRevoker : public MappingRevoker {
 public:
  void RevokeMappingsOf(const Dataspace&) override {
    ++count;
    if (probe) probe();
  }
  int count = 0;
  std::function<void()> probe;
};

class RemoteAllocatorTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ServerOptions o;
    o.pool_bytes = kPool;
    o.socket_path = UniqueSocketName("remote");
    absl::StatusOr<std::unique_ptr<Server>> s = Server::Start(o);
    ASSERT_TRUE(s.ok()) << s.status();
    server_ = *std::move(s);
    root_ = Connect();
  }

  std::shared_ptr<RemoteAllocator> Connect() {
    absl::StatusOr<std::shared_ptr<RemoteAllocator>> a =
        RemoteAllocator::Connect(server_->options().socket_path);
    EXPECT_TRUE(a.ok()) << a.status();
    return a.ok() ? *a : nullptr;
  }

  uint64_t PoolFree() { return server_->pool().free_bytes(); }

  std::shared_ptr<Dataspace> Alloc(MemAllocator& a, long size, unsigned long flags = 0) {
    absl::StatusOr<std::shared_ptr<Dataspace>> ds = a.Alloc(size, flags, 0);
    EXPECT_TRUE(ds.ok()) << ds.status();
    return ds.ok() ? *ds : nullptr;
  }

  // Maps the whole dataspace the way the region map does.
  char* MapAll(Dataspace& ds, uint64_t size) {
    absl::StatusOr<MapResult> m = ds.Map(0, size);
    EXPECT_TRUE(m.ok()) << m.status();
    if (!m.ok()) return nullptr;
    void* base = mmap(nullptr, size, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    for (const MapRun& run : m->runs) {
      EXPECT_NE(mmap(static_cast<char*>(base) + run.ds_offset, run.length, PROT_READ | PROT_WRITE,
                     MAP_SHARED | MAP_FIXED, m->fd, run.file_offset),
                MAP_FAILED);
    }
    return static_cast<char*>(base);
  }

  std::unique_ptr<Server> server_;
  std::shared_ptr<RemoteAllocator> root_;
};

TEST_F(RemoteAllocatorTest, EveryCallWorksAsInProcess) {
  std::shared_ptr<Dataspace> c = Alloc(*root_, 5000, kMaContinuous);
  std::shared_ptr<Dataspace> n = Alloc(*root_, 3 * 4096);
  absl::StatusOr<DataspaceInfo> info = c->Info();
  ASSERT_TRUE(info.ok());
  EXPECT_EQ(info->size, 5000u);
  EXPECT_TRUE(info->contiguous);
  EXPECT_EQ(info->flags, kRightsRWX);
  absl::StatusOr<PhysExtent> phys = c->Phys(123);
  ASSERT_TRUE(phys.ok());
  EXPECT_EQ(phys->size, 5000u - 123);
  EXPECT_EQ(ToL4Result(n->Phys(0).status()), -22);
  EXPECT_EQ(ToL4Result(c->Phys(5000).status()), -34);
  char* p = MapAll(*c, 8192);
  std::strcpy(p, "through memd");
  ASSERT_TRUE(n->CopyIn(4096, *c, 0, 13).ok());
  char* q = MapAll(*n, 3 * 4096);
  EXPECT_STREQ(q + 4096, "through memd");
  ASSERT_TRUE(c->Clear(0, 5).ok());
  EXPECT_STREQ(p + 5, "gh memd");
  EXPECT_EQ(p[0], 0);
  EXPECT_TRUE(n->Allocate(0, 3 * 4096).ok());
  EXPECT_EQ(ToL4Result(n->Allocate(0, 3 * 4096 + 1)), -34);
  absl::StatusOr<AllocatorStats> stats = root_->Stats();
  ASSERT_TRUE(stats.ok());
  EXPECT_EQ(stats->quota, kPool);
  EXPECT_EQ(stats->mem_used, 8192u + 3 * 4096);
  absl::StatusOr<PoolInfo> pool = root_->Pool();
  ASSERT_TRUE(pool.ok());
  EXPECT_EQ(pool->backend, "buddy");
  EXPECT_EQ(pool->size, kPool);
  EXPECT_EQ(pool->free_bytes, PoolFree());
  absl::StatusOr<std::shared_ptr<MemAllocator>> sub = root_->CreateSubAllocator(1 << 20);
  ASSERT_TRUE(sub.ok());
  EXPECT_EQ((*sub)->Stats()->quota, 1u << 20);
  EXPECT_EQ(ToL4Result((*sub)->Alloc(2 << 20, kMaContinuous, 0).status()), -12);
  EXPECT_EQ(ToL4Result(root_->Alloc(0, 0, 0).status()), -34) << "the server's own checks";
  c->Unmap();
  n->Unmap();
  munmap(p, 8192);
  munmap(q, 3 * 4096);
}

TEST_F(RemoteAllocatorTest, FreeChecksOwnershipAndRevokesBeforeTheServerFrees) {
  const uint64_t free_before = PoolFree();
  std::shared_ptr<Dataspace> ds = Alloc(*root_, 1 << 20, kMaContinuous);
  std::shared_ptr<MemAllocator> sub = *root_->CreateSubAllocator(4 << 20);
  std::shared_ptr<RemoteAllocator> other = Connect();
  EXPECT_EQ(ToL4Result(sub->Free(*ds)), -1) << "a sub-allocator's Free";
  EXPECT_EQ(ToL4Result(other->Free(*ds)), -1) << "another connection's allocator";
  auto local_pool = *PhysPool::Create("buddy", 1 << 20);
  auto local = LocalAllocator::CreateRoot(local_pool, *Storage::Create(local_pool->range(), "t"),
                                          1 << 20);
  std::shared_ptr<Dataspace> local_ds = *local->Alloc(4096, 0, 0);
  EXPECT_EQ(ToL4Result(root_->Free(*local_ds)), -1) << "a local dataspace";
  EXPECT_EQ(ToL4Result(local->Free(*ds)), -1) << "and the other way round";
  EXPECT_TRUE(ds->Info().ok()) << "nothing happened to it";
  TestRevoker revoker;
  uint64_t pool_free_at_revocation = 0;
  revoker.probe = [&] { pool_free_at_revocation = PoolFree(); };
  ASSERT_TRUE(ds->AddRevoker(&revoker));
  ASSERT_TRUE(root_->Free(*ds).ok());
  EXPECT_EQ(revoker.count, 1);
  EXPECT_EQ(pool_free_at_revocation, free_before - (1 << 20))
      << "mappings are revoked while the server still holds the memory";
  EXPECT_EQ(PoolFree(), free_before);
  EXPECT_EQ(ToL4Result(ds->Info().status()), kIpcNotExistent);
  EXPECT_TRUE(root_->Free(*ds).ok()) << "freeing a dead dataspace again changes nothing";
}

TEST_F(RemoteAllocatorTest, ReleasingTheLastCapabilityRevokesThenFrees) {
  const uint64_t free_before = PoolFree();
  std::shared_ptr<Dataspace> ds = Alloc(*root_, 2 << 20, kMaContinuous);
  TestRevoker revoker;
  uint64_t at_revocation = 0;
  revoker.probe = [&] { at_revocation = PoolFree(); };
  ds->AddRevoker(&revoker);
  ds->AcquireCapability();
  ASSERT_TRUE(ds->ReleaseCapability());
  ds->OnLastCapabilityReleased();
  EXPECT_EQ(revoker.count, 1);
  EXPECT_EQ(at_revocation, free_before - (2 << 20));
  EXPECT_EQ(PoolFree(), free_before);
}

TEST_F(RemoteAllocatorTest, DestroyingASubAllocatorRevokesEverythingItCreated) {
  const uint64_t free_before = PoolFree();
  std::shared_ptr<MemAllocator> sub = *root_->CreateSubAllocator(8 << 20);
  std::shared_ptr<MemAllocator> nested = *sub->CreateSubAllocator(4 << 20);
  std::shared_ptr<Dataspace> a = Alloc(*sub, 1 << 20, kMaContinuous);
  std::shared_ptr<Dataspace> b = Alloc(*nested, 1 << 20);
  ASSERT_TRUE(b->Allocate(0, 1 << 20).ok());
  TestRevoker ra, rb;
  uint64_t at_revocation = 0;
  ra.probe = [&] { at_revocation = PoolFree(); };
  a->AddRevoker(&ra);
  b->AddRevoker(&rb);
  static_cast<RemoteAllocator&>(*sub).Destroy();
  EXPECT_EQ(ra.count, 1);
  EXPECT_EQ(rb.count, 1) << "and those of its sub-allocators";
  EXPECT_EQ(at_revocation, free_before - (2 << 20));
  EXPECT_EQ(PoolFree(), free_before);
  EXPECT_EQ(ToL4Result(a->Info().status()), kIpcNotExistent);
  EXPECT_EQ(ToL4Result(nested->Stats().status()), kIpcNotExistent);
  EXPECT_EQ(ToL4Result(sub->Alloc(4096, 0, 0).status()), kIpcNotExistent);
  EXPECT_EQ(root_->Stats()->quota_used, 0u) << "the reservation came back";
  // The dead proxies still release their server handles when they go.
  a.reset();
  b.reset();
  nested.reset();
  sub.reset();
  const auto stats = server_->Stats();
  ASSERT_EQ(stats.sessions.size(), 1u);
  EXPECT_EQ(stats.sessions[0].handles, 1u) << "only the root is left";
}

TEST_F(RemoteAllocatorTest, ABigFragmentedMapArrivesWholeAsOneMapping) {
  const uint64_t pages = 2 * wire::kMaxMapRuns + 10;
  std::shared_ptr<Dataspace> ds = Alloc(*root_, pages * 4096);
  std::shared_ptr<Dataspace> gaps = Alloc(*root_, pages * 4096);
  for (uint64_t i = 0; i < pages; ++i) {
    ASSERT_TRUE(ds->Allocate(i * 4096, 1).ok());
    ASSERT_TRUE(gaps->Allocate(i * 4096, 1).ok());
  }
  absl::StatusOr<MapResult> m = ds->Map(0, pages * 4096);
  ASSERT_TRUE(m.ok()) << m.status();
  ASSERT_EQ(m->runs.size(), pages) << "every page its own run, in three parts";
  for (uint64_t i = 0; i < pages; ++i) ASSERT_EQ(m->runs[i].ds_offset, i * 4096);
  const uint64_t used = root_->Stats()->mem_used;
  ASSERT_TRUE(ds->Clear(0, pages * 4096).ok());
  EXPECT_EQ(root_->Stats()->mem_used, used) << "still mapped: cleared in place";
  ds->Unmap();
  ASSERT_TRUE(ds->Clear(0, pages * 4096).ok());
  EXPECT_EQ(root_->Stats()->mem_used, used - pages * 4096) << "one unmap undid the one mapping";
}

TEST_F(RemoteAllocatorTest, ManyThreadsShareOneConnection) {
  std::atomic<int> errors{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < 150; ++i) {
        absl::StatusOr<std::shared_ptr<Dataspace>> ds =
            root_->Alloc(4096 * (1 + i % 5), i % 2 ? kMaContinuous : 0, 0);
        if (!ds.ok()) {
          ++errors;
          continue;
        }
        absl::StatusOr<MapResult> m = (*ds)->Map(0, 4096);
        if (!m.ok() || m->runs.size() != 1) ++errors;
        (*ds)->Unmap();
        if (!root_->Free(**ds).ok()) ++errors;
        (void)t;
      }
    });
  }
  for (auto& th : threads) th.join();
  EXPECT_EQ(errors.load(), 0);
  EXPECT_EQ(PoolFree(), kPool);
}

TEST_F(RemoteAllocatorTest, AServerThatGoesAwayGivesIpcErrorsAtOnce) {
  std::shared_ptr<Dataspace> ds = Alloc(*root_, 4096);
  server_->Shutdown();
  const absl::Time start = absl::Now();
  const long first = ToL4Result(ds->Info().status());
  EXPECT_TRUE(InIpcRange(first)) << first;
  EXPECT_EQ(ToL4Result(root_->Stats().status()), kSendAborted) << "closed for good";
  EXPECT_EQ(ToL4Result(ds->Map(0, 4096).status()), kSendAborted);
  EXPECT_LT(absl::Now() - start, absl::Seconds(1));
  EXPECT_TRUE(root_->connection()->broken());
}

TEST(RemoteConnectionTest, NothingListeningIsIpcNotExistentNamingThePath) {
  const std::string path = UniqueSocketName("nobody");
  absl::StatusOr<std::shared_ptr<RemoteAllocator>> a = RemoteAllocator::Connect(path);
  ASSERT_FALSE(a.ok());
  EXPECT_EQ(ToL4Result(a.status()), kIpcNotExistent);
  EXPECT_NE(a.status().message().find(path), absl::string_view::npos) << a.status();
  a = RemoteAllocator::Connect("/" + std::string(300, 'y'));
  EXPECT_EQ(ToL4Result(a.status()), kIpcNotExistent);
}

TEST(RemoteConnectionTest, AFullServerRefusesWithItsReason) {
  ServerOptions o;
  o.pool_bytes = kPool;
  o.max_clients = 1;
  o.socket_path = UniqueSocketName("full");
  auto s = Server::Start(o);
  ASSERT_TRUE(s.ok());
  auto first = RemoteAllocator::Connect(o.socket_path);
  ASSERT_TRUE(first.ok());
  auto second = RemoteAllocator::Connect(o.socket_path);
  ASSERT_FALSE(second.ok());
  EXPECT_NE(second.status().message().find("max_clients"), absl::string_view::npos)
      << second.status();
}

TEST(RemoteConnectionTest, AConnectionInheritedThroughForkIsRefusedInTheChild) {
  ServerOptions o;
  o.pool_bytes = kPool;
  o.socket_path = UniqueSocketName("fork");
  auto s = Server::Start(o);
  ASSERT_TRUE(s.ok());
  auto a = RemoteAllocator::Connect(o.socket_path);
  ASSERT_TRUE(a.ok());
  const pid_t pid = fork();
  if (pid == 0) {
    const long r = ToL4Result((*a)->Stats().status());
    _exit(r == kIpcNotExistent ? 0 : 1);
  }
  EXPECT_EQ(WaitFor(pid, absl::Seconds(10)), 0);
  EXPECT_TRUE((*a)->Stats().ok()) << "the parent's connection is unharmed";
}

TEST(RemoteConnectionTest, AnObserverSeesTheWholeServer) {
  ServerOptions o;
  o.pool_bytes = kPool;
  o.socket_path = UniqueSocketName("observer");
  auto s = Server::Start(o);
  ASSERT_TRUE(s.ok());
  auto client = RemoteAllocator::Connect(o.socket_path);
  ASSERT_TRUE(client.ok());
  auto ds = (*client)->Alloc(1 << 20, kMaContinuous, 0);
  ASSERT_TRUE(ds.ok());
  RemoteConnection::Options opts;
  opts.role = wire::Role::kObserver;
  auto observer = RemoteConnection::Connect(o.socket_path, opts);
  ASSERT_TRUE(observer.ok()) << observer.status();
  EXPECT_EQ((*observer)->storage_fd(), -1);
  absl::StatusOr<wire::ServerStatsSnapshot> stats = (*observer)->ServerStats();
  ASSERT_TRUE(stats.ok()) << stats.status();
  EXPECT_EQ(stats->pool.free_bytes, kPool - (1 << 20));
  ASSERT_EQ(stats->sessions.size(), 2u);
  EXPECT_EQ(stats->sessions[0].client_id, (*client)->connection()->client_id());
  EXPECT_EQ(stats->sessions[0].mem_used, 1u << 20);
}

// ---- A fake server that misbehaves ----

// Listens on `socket`; answers one connection's Hello properly (with a
// memfd of kPool bytes), then each request with what `answer` returns
// (nothing: no reply).
class FakeServer {
 public:
  FakeServer(std::string socket, std::function<Bytes(const Bytes&)> answer)
      : socket_(std::move(socket)), answer_(std::move(answer)) {
    auto a = wire::ParseSocketPath(socket_);
    listen_fd_ = ::socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0);
    EXPECT_EQ(bind(listen_fd_, reinterpret_cast<const sockaddr*>(&a->addr), a->len), 0);
    EXPECT_EQ(listen(listen_fd_, 4), 0);
    thread_ = std::thread([this] { Serve(); });
  }
  ~FakeServer() {
    shutdown(listen_fd_, SHUT_RDWR);
    if (conn_fd_ >= 0) shutdown(conn_fd_, SHUT_RDWR);
    thread_.join();
    close(listen_fd_);
    if (conn_fd_ >= 0) close(conn_fd_);
  }

 private:
  void Serve() {
    const int fd = accept4(listen_fd_, nullptr, nullptr, SOCK_CLOEXEC);
    if (fd < 0) return;
    conn_fd_ = fd;
    Bytes in(wire::kMaxMessageBytes);
    if (wire::RecvPacket(fd, in.data(), in.size()) <= 0) return;
    wire::HelloReply h;
    h.client_id = 1;
    h.storage_bytes = kPool;
    Bytes out(wire::kMaxMessageBytes);
    out.resize(wire::EncodeReply<wire::Hello>(h, absl::MakeSpan(out)));
    const int memfd = memfd_create("fake", MFD_CLOEXEC);
    EXPECT_EQ(ftruncate(memfd, kPool), 0);
    wire::SendPacket(fd, out.data(), out.size(), memfd);
    close(memfd);
    for (;;) {
      in.resize(wire::kMaxMessageBytes);
      const ssize_t n = wire::RecvPacket(fd, in.data(), in.size());
      if (n <= 0) return;
      in.resize(n);
      const Bytes reply = answer_(in);
      if (!reply.empty()) wire::SendPacket(fd, reply.data(), reply.size());
    }
  }

  std::string socket_;
  std::function<Bytes(const Bytes&)> answer_;
  int listen_fd_ = -1;
  std::atomic<int> conn_fd_{-1};
  std::thread thread_;
};

template <typename Req>
Bytes ReplyTo(const typename Req::ReplyType& r) {
  Bytes b(wire::kMaxMessageBytes);
  b.resize(wire::EncodeReply<Req>(r, absl::MakeSpan(b)));
  return b;
}

TEST(FakeServerTest, AStoppedServerTimesOutThenTheConnectionIsClosed) {
  const std::string socket = UniqueSocketName("silent");
  FakeServer fake(socket, [](const Bytes&) { return Bytes(); });  // never answers
  RemoteConnection::Options o;
  o.timeout = absl::Milliseconds(200);
  auto a = RemoteAllocator::Connect(socket, o);
  ASSERT_TRUE(a.ok()) << a.status();
  const absl::Time start = absl::Now();
  EXPECT_EQ(ToL4Result((*a)->Stats().status()), kRecvTimeout);
  const absl::Duration took = absl::Now() - start;
  EXPECT_GE(took, absl::Milliseconds(150));
  EXPECT_LT(took, absl::Seconds(3));
  EXPECT_EQ(ToL4Result((*a)->Stats().status()), kSendAborted) << "a late reply cannot be mistaken";
}

TEST(FakeServerTest, MapRunsOutsideTheRequestOrTheStorageAreRefused) {
  for (const MapRun bad : {MapRun{8192, 0, 4096}, MapRun{0, 0, 8192},
                           MapRun{0, kPool, 4096}, MapRun{0, kPool - 4096, 8192}}) {
    const std::string socket = UniqueSocketName("liar");
    FakeServer fake(socket, [bad](const Bytes& req) {
      switch (static_cast<wire::Op>(wire::PeekOp(req))) {
        case wire::Op::kAlloc:
          return ReplyTo<wire::AllocRequest>(wire::HandleReply{wire::Handle{2}});
        case wire::Op::kDsMap: {
          std::vector<MapRun> runs = {bad};
          return ReplyTo<wire::DsMapRequest>(wire::DsMapReply{false, wire::Array<MapRun>(runs)});
        }
        default:
          return ReplyTo<wire::ReleaseRequest>(wire::EmptyReply{});
      }
    });
    auto a = RemoteAllocator::Connect(socket);
    ASSERT_TRUE(a.ok()) << a.status();
    auto ds = (*a)->Alloc(4096, 0, 0);
    ASSERT_TRUE(ds.ok()) << ds.status();
    absl::StatusOr<MapResult> m = (*ds)->Map(0, 4096);
    EXPECT_TRUE(InIpcRange(ToL4Result(m.status()))) << m.status();
    EXPECT_TRUE((*a)->connection()->broken()) << "a lying server is not trusted again";
  }
}

TEST(FakeServerTest, GarbageRepliesCloseTheConnection) {
  const std::string socket = UniqueSocketName("garbage");
  FakeServer fake(socket, [](const Bytes&) { return Bytes{1, 2, 3, 4, 5, 6, 7, 8, 9}; });
  auto a = RemoteAllocator::Connect(socket);
  ASSERT_TRUE(a.ok());
  EXPECT_EQ(ToL4Result((*a)->Stats().status()), -2015);
  EXPECT_EQ(ToL4Result((*a)->Stats().status()), kSendAborted);
}

TEST(FakeServerTest, AReplyToAnotherRequestClosesTheConnection) {
  const std::string socket = UniqueSocketName("mixup");
  FakeServer fake(socket, [](const Bytes&) {
    return ReplyTo<wire::DsInfoRequest>(wire::DsInfoReply{4096, kRightsRWX, false, 12});
  });
  auto a = RemoteAllocator::Connect(socket);
  ASSERT_TRUE(a.ok());
  EXPECT_EQ(ToL4Result((*a)->Stats().status()), -2015);
}

}  // namespace
}  // namespace l4re_ma::testing
