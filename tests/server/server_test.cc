// The server embedded in process on an abstract socket, driven with raw
// bytes: the handshake, every kind of malformed or hostile message (error
// replies or a closed connection; the server keeps serving everyone else),
// isolation between clients, reclamation of a dead client's memory, limits,
// map continuations, statistics and shutdown.
#include "server/server.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstring>
#include <random>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "core/errors.h"
#include "core/phys_pool.h"
#include "core/wire/protocol.h"
#include "core/wire/transport.h"
#include "gtest/gtest.h"
#include "server/session.h"
#include "tests/server/memd_process.h"
#include "tests/server/raw_client.h"

namespace l4re_ma::testing {
namespace {

using wire::Handle;
using wire::Op;

constexpr uint64_t kPool = 64 << 20;
constexpr long kBadProto = -39, kInval = -22, kPerm = -1, kNoMem = -12, kIpcNotExistent = -2004;

class ServerTest : public ::testing::Test {
 protected:
  void SetUp() override { server_ = Start(); }

  std::unique_ptr<Server> Start(ServerOptions o = {}) {
    o.backend = "buddy";
    o.pool_bytes = kPool;
    if (o.socket_path.empty()) o.socket_path = UniqueSocketName("srv");
    absl::StatusOr<std::unique_ptr<Server>> s = Server::Start(o);
    EXPECT_TRUE(s.ok()) << s.status();
    return s.ok() ? *std::move(s) : nullptr;
  }

  std::unique_ptr<RawClient> Client(Server* server = nullptr) {
    auto c = RawClient::Connect((server ? server : server_.get())->options().socket_path);
    EXPECT_TRUE(c.ok()) << c.status();
    return c.ok() ? *std::move(c) : nullptr;
  }

  // The pool's free bytes as a client sees them (after reclamation of
  // clients that are gone).
  uint64_t PoolFree(RawClient& c) {
    return c.CallOk(wire::ServerStatsRequest{0}).pool.free_bytes;
  }

  std::unique_ptr<Server> server_;
};

// Maps [offset, offset + size) of dataspace `ds` of client `c` through its
// storage file, as a region map would.
char* MapRaw(RawClient& c, Handle ds, uint64_t size) {
  wire::DsMapReply r = c.CallOk(wire::DsMapRequest{ds, 0, size});
  EXPECT_FALSE(r.more);
  void* base = mmap(nullptr, size, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  for (size_t i = 0; i < r.runs.size(); ++i) {
    const MapRun run = r.runs[i];
    void* p = mmap(static_cast<char*>(base) + run.ds_offset, run.length, PROT_READ | PROT_WRITE,
                   MAP_SHARED | MAP_FIXED, c.storage_fd(), run.file_offset);
    EXPECT_NE(p, MAP_FAILED);
  }
  return static_cast<char*>(base);
}

long Result(const absl::StatusOr<wire::Reply>& r) {
  EXPECT_TRUE(r.ok()) << r.status();
  return r.ok() ? r->result : 1;
}

// ---- Handshake ----

TEST_F(ServerTest, TheHandshakeGivesTheClientAStorageFileOverThePool) {
  auto c = Client();
  ASSERT_NE(c, nullptr);
  EXPECT_GT(c->client_id(), 0u);
  EXPECT_EQ(c->storage_bytes(), kPool);
  struct stat st;
  ASSERT_EQ(fstat(c->storage_fd(), &st), 0);
  EXPECT_EQ(static_cast<uint64_t>(st.st_size), kPool);
  EXPECT_EQ(st.st_blocks, 0) << "sparse: nothing is backed yet";
  EXPECT_NE(ftruncate(c->storage_fd(), 2 * kPool), 0) << "sealed against growing";
}

TEST_F(ServerTest, AClientOfAnotherVersionIsToldWhyAndDisconnected) {
  auto c = RawClient::Connect(server_->options().socket_path, /*hello=*/false);
  ASSERT_TRUE(c.ok());
  ASSERT_TRUE((*c)->Send(EncodeBytes(wire::Hello{wire::kMagic, wire::kVersion + 1,
                                                 wire::Role::kClient})));
  absl::StatusOr<wire::Reply> r = (*c)->RecvReply();
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->op, Op::kHello);
  EXPECT_EQ(r->result, kBadProto);
  EXPECT_NE(r->text.find("version"), absl::string_view::npos) << r->text;
  EXPECT_TRUE((*c)->ClosedByServer());
}

TEST_F(ServerTest, ABadMagicOrAFirstMessageThatIsNoHelloIsRefused) {
  for (const Bytes& first :
       {EncodeBytes(wire::Hello{0xdeadbeef, wire::kVersion, wire::Role::kClient}),
        EncodeBytes(wire::DsInfoRequest{Handle{1}}), Bytes{1, 2, 3}}) {
    auto c = RawClient::Connect(server_->options().socket_path, /*hello=*/false);
    ASSERT_TRUE(c.ok());
    ASSERT_TRUE((*c)->Send(first));
    absl::StatusOr<wire::Reply> r = (*c)->RecvReply();
    ASSERT_TRUE(r.ok()) << r.status();
    EXPECT_EQ(r->result, kBadProto) << r->text;
    EXPECT_TRUE((*c)->ClosedByServer());
  }
  EXPECT_NE(Client(), nullptr) << "the server still serves";
}

TEST_F(ServerTest, ASilentConnectionIsClosedAfterTheHandshakeTimeout) {
  ServerOptions o;
  o.handshake_timeout = absl::Milliseconds(200);
  std::unique_ptr<Server> s = Start(o);
  auto c = RawClient::Connect(s->options().socket_path, /*hello=*/false);
  ASSERT_TRUE(c.ok());
  EXPECT_TRUE((*c)->ClosedByServer(absl::Seconds(5)));
}

// ---- Malformed traffic ----

TEST_F(ServerTest, MalformedMessagesGetErrorRepliesAndTheSessionKeepsServing) {
  auto c = Client();
  Bytes alloc = EncodeBytes(wire::AllocRequest{Handle{1}, 4096, 0, 0});
  Bytes truncated(alloc.begin(), alloc.end() - 1);
  wire::StoreLE(truncated.data() + 4, truncated.size(), 4);
  Bytes trailing = alloc;
  trailing.push_back(0);
  wire::StoreLE(trailing.data() + 4, trailing.size(), 4);
  Bytes wrong_size = alloc;
  wire::StoreLE(wrong_size.data() + 4, 9999, 4);
  Bytes unknown = alloc;
  wire::StoreLE(unknown.data(), 99, 2);
  Bytes flags = alloc;
  wire::StoreLE(flags.data() + 2, 1, 2);
  Bytes reply = alloc;
  wire::StoreLE(reply.data(), static_cast<uint16_t>(Op::kAlloc) | wire::kReplyBit, 2);
  Bytes oversized(wire::kMaxMessageBytes + 4096, 0xab);
  wire::StoreLE(oversized.data(), static_cast<uint16_t>(Op::kAlloc), 2);
  const std::vector<Bytes> garbage = {Bytes{7},    Bytes{1, 0, 0}, truncated, trailing,
                                      wrong_size, unknown,         flags,     reply,
                                      oversized,  EncodeBytes(wire::Hello{})};
  for (size_t i = 0; i < garbage.size(); ++i) {
    ASSERT_TRUE(c->Send(garbage[i])) << i;
    absl::StatusOr<wire::Reply> r = c->RecvReply();
    ASSERT_TRUE(r.ok()) << i << ": " << r.status();
    EXPECT_EQ(r->result, kBadProto) << i << ": " << r->text;
    EXPECT_FALSE(r->text.empty()) << "says why";
  }
  // Still serving, with the same state.
  wire::HandleReply ds = c->CallOk(wire::AllocRequest{Handle{1}, 4096, 0, 0});
  EXPECT_GE(ds.handle.value, Session::kFirstAllocatable);
  const auto stats = server_->Stats();
  ASSERT_EQ(stats.sessions.size(), 1u);
  EXPECT_EQ(stats.sessions[0].protocol_errors, garbage.size());
  EXPECT_EQ(stats.protocol_errors, garbage.size());
}

TEST_F(ServerTest, BadHandlesGetTheErrorsOfTheLocalApi) {
  auto c = Client();
  const Handle ds = c->CallOk(wire::AllocRequest{Handle{1}, 4096, 0, 0}).handle;
  const Handle empty{4000}, root{1};
  EXPECT_EQ(Result(c->Call(wire::DsInfoRequest{empty})), kIpcNotExistent);
  EXPECT_EQ(Result(c->Call(wire::DsInfoRequest{root})), kBadProto) << "an allocator";
  EXPECT_EQ(Result(c->Call(wire::AllocRequest{ds, 4096, 0, 0})), kBadProto) << "a dataspace";
  EXPECT_EQ(Result(c->Call(wire::AllocRequest{empty, 4096, 0, 0})), kIpcNotExistent);
  EXPECT_EQ(Result(c->Call(wire::ReleaseRequest{empty})), kIpcNotExistent);
  EXPECT_EQ(Result(c->Call(wire::FreeRequest{root, empty})), kInval);
  EXPECT_EQ(Result(c->Call(wire::FreeRequest{root, root})), kInval);
  EXPECT_EQ(Result(c->Call(wire::DsCopyInRequest{ds, empty, 0, 0, 1})), kInval);
  EXPECT_EQ(Result(c->Call(wire::DsCopyInRequest{empty, ds, 0, 0, 1})), kIpcNotExistent);
  EXPECT_EQ(Result(c->Call(wire::DsMapMoreRequest{})), kInval) << "no map in progress";
  EXPECT_EQ(Result(c->Call(wire::DsMapRequest{ds, 100, 4096})), kInval) << "unaligned";
  EXPECT_EQ(Result(c->Call(wire::DsMapRequest{ds, 0, 100})), kInval) << "unaligned";
  // A notice with a bad handle gets no answer: the next reply is the next
  // request's.
  ASSERT_TRUE(c->Send(EncodeBytes(wire::DsUnmapNotice{empty})));
  absl::StatusOr<wire::Reply> r = c->Call(wire::DsInfoRequest{ds});
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->op, Op::kDsInfo);
  EXPECT_EQ(r->result, 0);
  // Semantic errors come from the LocalAllocator, as in process.
  EXPECT_EQ(Result(c->Call(wire::AllocRequest{root, 0, 0, 0})), -34);
  EXPECT_EQ(Result(c->Call(wire::AllocRequest{root, 4096, 0x08, 0})), kInval);
  EXPECT_EQ(Result(c->Call(wire::AllocRequest{root, 4096, 0, 64})), kInval);
}

TEST_F(ServerTest, AnObserverMayOnlyAskForStatistics) {
  auto client = Client();
  auto o = RawClient::Connect(server_->options().socket_path, true, wire::Role::kObserver);
  ASSERT_TRUE(o.ok()) << o.status();
  EXPECT_EQ((*o)->storage_fd(), -1) << "no storage for an observer";
  EXPECT_EQ(Result((*o)->Call(wire::AllocRequest{Handle{1}, 4096, 0, 0})), kPerm);
  EXPECT_EQ(Result((*o)->Call(wire::PoolInfoRequest{Handle{1}})), kPerm);
  const wire::ServerStatsReply s = (*o)->CallOk(wire::ServerStatsRequest{0});
  EXPECT_EQ(s.clients, 2u);
  ASSERT_EQ(s.sessions.size(), 2u);
  EXPECT_EQ(s.sessions[0].role, wire::Role::kClient);
  EXPECT_EQ(s.sessions[1].role, wire::Role::kObserver);
  EXPECT_EQ(s.sessions[0].pid, getpid());
  EXPECT_EQ(s.pool.size, kPool);
  EXPECT_EQ(s.pool.backend.view(), "buddy");
}

// ---- Isolation ----

TEST_F(ServerTest, AnotherClientsHandleNumbersAndFileOffsetsReachNothingOfItsMemory) {
  auto a = Client();
  auto b = Client();
  const Handle ds = a->CallOk(wire::AllocRequest{Handle{1}, 8192, kMaContinuous, 0}).handle;
  char* pa = MapRaw(*a, ds, 8192);
  std::memset(pa, 0x5a, 8192);
  const wire::DsMapReply where = a->CallOk(wire::DsMapRequest{ds, 0, 8192});
  a->Send(EncodeBytes(wire::DsUnmapNotice{ds}));
  const uint64_t file_offset = where.runs[0].file_offset;
  // B names A's handle: in B's table it is empty.
  EXPECT_EQ(Result(b->Call(wire::DsInfoRequest{ds})), kIpcNotExistent);
  EXPECT_EQ(Result(b->Call(wire::DsClearRequest{ds, 0, 8192})), kIpcNotExistent);
  EXPECT_EQ(Result(b->Call(wire::ReleaseRequest{ds})), kIpcNotExistent);
  EXPECT_EQ(Result(b->Call(wire::FreeRequest{Handle{1}, ds})), kInval);
  // B maps its own storage file where A's bytes are in A's: zeros.
  void* pb = mmap(nullptr, 8192, PROT_READ | PROT_WRITE, MAP_SHARED, b->storage_fd(), file_offset);
  ASSERT_NE(pb, MAP_FAILED);
  for (int i = 0; i < 8192; ++i) ASSERT_EQ(static_cast<char*>(pb)[i], 0) << i;
  std::memset(pb, 0x11, 8192);  // B scribbles over its own file only
  // B allocates: it gets the same handle number, its own dataspace.
  const Handle mine = b->CallOk(wire::AllocRequest{Handle{1}, 8192, 0, 0}).handle;
  EXPECT_EQ(mine.value, ds.value);
  EXPECT_EQ(b->CallOk(wire::DsInfoRequest{mine}).contiguous, false);
  for (int i = 0; i < 8192; ++i) ASSERT_EQ(pa[i], 0x5a) << "A's bytes are intact at " << i;
  EXPECT_EQ(a->CallOk(wire::DsInfoRequest{ds}).contiguous, true);
  munmap(pb, 8192);
  munmap(pa, 8192);
}

TEST_F(ServerTest, RandomTrafficFromOneClientHarmsNoOther) {
  auto victim = Client();
  const Handle vds = victim->CallOk(wire::AllocRequest{Handle{1}, 16384, 0, 0}).handle;
  char* vp = MapRaw(*victim, vds, 16384);
  for (int i = 0; i < 16384; ++i) vp[i] = static_cast<char>(i * 13);
  const uint32_t seed = ::testing::UnitTest::GetInstance()->random_seed();
  std::mt19937 rng(seed);
  auto attacker = Client();
  std::vector<Bytes> seeds = {
      EncodeBytes(wire::AllocRequest{Handle{1}, 1 << 20, 0, 0}),
      EncodeBytes(wire::AllocRequest{Handle{1}, 8192, 1, 13}),
      EncodeBytes(wire::FreeRequest{Handle{1}, Handle{2}}),
      EncodeBytes(wire::CreateSubRequest{Handle{1}, 1 << 20}),
      EncodeBytes(wire::ReleaseRequest{Handle{3}}),
      EncodeBytes(wire::DsMapRequest{Handle{2}, 0, 1 << 20}),
      EncodeBytes(wire::DsMapMoreRequest{}),
      EncodeBytes(wire::DsCopyInRequest{Handle{2}, Handle{3}, 0, 0, 4096}),
      EncodeBytes(wire::DsClearRequest{Handle{2}, 0, ~uint64_t{0}}),
      EncodeBytes(wire::DsUnmapNotice{Handle{2}}),
      EncodeBytes(wire::DsPhysRequest{Handle{2}, 0}),
  };
  const Bytes sync = EncodeBytes(wire::ServerStatsRequest{0});
  for (int iter = 0; iter < 1500; ++iter) {
    Bytes b = seeds[rng() % seeds.size()];
    const int kind = rng() % 3;
    if (kind == 0) {
      for (int k = rng() % 3 + 1; k > 0; --k) b[rng() % b.size()] ^= 1 << (rng() % 8);
    } else if (kind == 1 && b.size() > wire::kHeaderBytes) {
      // Keep the header, randomize a field: handles, sizes, offsets.
      b[wire::kHeaderBytes + rng() % (b.size() - wire::kHeaderBytes)] = static_cast<uint8_t>(rng());
    }
    ASSERT_TRUE(attacker->Send(b)) << "seed " << seed << " iteration " << iter;
    // Drain until the sync reply: the garbage got at most one answer.
    ASSERT_TRUE(attacker->Send(sync));
    for (int replies = 0;; ++replies) {
      absl::StatusOr<wire::Reply> r = attacker->RecvReply();
      ASSERT_TRUE(r.ok()) << "seed " << seed << " iteration " << iter << ": " << r.status();
      if (r->op == Op::kServerStats && r->result == 0) break;
      ASSERT_LT(replies, 1) << "more than one answer to one message";
    }
  }
  for (int i = 0; i < 16384; ++i) ASSERT_EQ(vp[i], static_cast<char>(i * 13)) << i;
  EXPECT_EQ(victim->CallOk(wire::DsInfoRequest{vds}).size, 16384u);
  EXPECT_NE(Client(), nullptr) << "new clients are served";
  munmap(vp, 16384);
}

// ---- Reclamation and limits ----

TEST_F(ServerTest, ADeadClientsMemoryIsBackBeforeTheNextPoolAnswer) {
  auto watcher = Client();
  const uint64_t before = PoolFree(*watcher);
  {
    auto c = Client();
    c->CallOk(wire::AllocRequest{Handle{1}, 8 << 20, kMaContinuous, 0});
    const Handle lazy = c->CallOk(wire::AllocRequest{Handle{1}, 4 << 20, 0, 0}).handle;
    c->CallOk(wire::DsAllocateRequest{lazy, 0, 4 << 20});
    const Handle sub = c->CallOk(wire::CreateSubRequest{Handle{1}, 8 << 20}).handle;
    c->CallOk(wire::AllocRequest{sub, 2 << 20, kMaContinuous, 0});
    EXPECT_EQ(PoolFree(*watcher), before - (14 << 20));
  }  // the connection closes: the client is gone
  EXPECT_EQ(PoolFree(*watcher), before) << "no waiting, no polling";
  EXPECT_EQ(watcher->CallOk(wire::PoolInfoRequest{Handle{1}}).free_bytes, before);
}

TEST_F(ServerTest, QuotaIsPerClient) {
  ServerOptions o;
  o.client_quota = 1 << 20;
  std::unique_ptr<Server> s = Start(o);
  auto a = Client(s.get());
  auto b = Client(s.get());
  a->CallOk(wire::AllocRequest{Handle{1}, 1 << 20, kMaContinuous, 0});
  EXPECT_EQ(Result(a->Call(wire::AllocRequest{Handle{1}, 4096, kMaContinuous, 0})),
            kNoMem);
  b->CallOk(wire::AllocRequest{Handle{1}, 1 << 20, kMaContinuous, 0});
  EXPECT_EQ(b->CallOk(wire::AllocStatsRequest{Handle{1}}).quota, 1u << 20);
}

TEST_F(ServerTest, ConnectionsBeyondMaxClientsAreRefusedWithAReason) {
  ServerOptions o;
  o.max_clients = 2;
  std::unique_ptr<Server> s = Start(o);
  auto a = Client(s.get());
  auto b = Client(s.get());
  auto c = RawClient::Connect(s->options().socket_path, /*hello=*/false);
  ASSERT_TRUE(c.ok());
  absl::StatusOr<wire::Reply> r = (*c)->RecvReply();
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->op, Op::kHello);
  EXPECT_EQ(r->result, kNoMem);
  EXPECT_NE(r->text.find("max_clients"), absl::string_view::npos) << r->text;
  EXPECT_TRUE((*c)->ClosedByServer());
  a.reset();
  for (int i = 0; i < 500 && s->live_sessions() > 1; ++i) absl::SleepFor(absl::Milliseconds(2));
  EXPECT_NE(Client(s.get()), nullptr) << "a slot came free";
  EXPECT_EQ(s->Stats().clients_refused, 1u);
}

TEST_F(ServerTest, HandlesRunOutCleanly) {
  auto c = Client();
  const Handle sub = c->CallOk(wire::CreateSubRequest{Handle{1}, 1 << 20}).handle;
  (void)sub;
  // Slots 2.. are handed out; one went to the sub-allocator.
  uint32_t allocated = 0;
  for (;;) {
    absl::StatusOr<wire::Reply> r = c->Call(wire::AllocRequest{Handle{1}, 4096, 0, 0});
    ASSERT_TRUE(r.ok());
    if (r->result != 0) {
      EXPECT_EQ(r->result, kNoMem) << r->text;
      break;
    }
    ++allocated;
    ASSERT_LT(allocated, Session::kSlots);
  }
  EXPECT_EQ(allocated, Session::kSlots - Session::kFirstAllocatable - 1);
  c->CallOk(wire::ReleaseRequest{Handle{100}});
  EXPECT_EQ(c->CallOk(wire::AllocRequest{Handle{1}, 4096, 0, 0}).handle.value, 100u)
      << "a released handle is reused, lowest first";
}

// ---- Map continuations ----

// A dataspace of `pages` pages none of which is physically next to another:
// every page is its own map run.
Handle FragmentedDataspace(RawClient& c, uint64_t pages) {
  const Handle ds = c.CallOk(wire::AllocRequest{Handle{1}, static_cast<long>(pages * 4096), 0, 0}).handle;
  const Handle gaps = c.CallOk(wire::AllocRequest{Handle{1}, static_cast<long>(pages * 4096), 0, 0}).handle;
  for (uint64_t i = 0; i < pages; ++i) {
    c.CallOk(wire::DsAllocateRequest{ds, i * 4096, 4096});
    c.CallOk(wire::DsAllocateRequest{gaps, i * 4096, 4096});
  }
  return ds;
}

TEST_F(ServerTest, ABigMapComesInPartsAndCountsAsOneMapping) {
  auto c = Client();
  const uint64_t pages = wire::kMaxMapRuns + 100;
  const Handle ds = FragmentedDataspace(*c, pages);
  absl::StatusOr<wire::Reply> r = c->Call(wire::DsMapRequest{ds, 0, pages * 4096});
  ASSERT_TRUE(r.ok());
  ASSERT_EQ(r->result, 0) << r->text;
  auto part = std::get<wire::DsMapReply>(r->payload);
  EXPECT_TRUE(part.more);
  EXPECT_EQ(part.runs.size(), wire::kMaxMapRuns);
  uint64_t next = part.runs[part.runs.size() - 1].ds_offset + 4096;
  r = c->Call(wire::DsMapMoreRequest{});
  ASSERT_TRUE(r.ok());
  ASSERT_EQ(r->result, 0) << r->text;
  part = std::get<wire::DsMapReply>(r->payload);
  EXPECT_FALSE(part.more);
  ASSERT_EQ(part.runs.size(), 100u);
  EXPECT_EQ(part.runs[0].ds_offset, next) << "the parts join";
  EXPECT_EQ(Result(c->Call(wire::DsMapMoreRequest{})), kInval) << "nothing left";
  // One mapping: clearing keeps the pages (they are mapped) until the
  // unmap notice.
  const uint64_t used = c->CallOk(wire::AllocStatsRequest{Handle{1}}).mem_used;
  c->CallOk(wire::DsClearRequest{ds, 0, pages * 4096});
  EXPECT_EQ(c->CallOk(wire::AllocStatsRequest{Handle{1}}).mem_used, used);
  ASSERT_TRUE(c->Send(EncodeBytes(wire::DsUnmapNotice{ds})));
  c->CallOk(wire::DsClearRequest{ds, 0, pages * 4096});
  EXPECT_EQ(c->CallOk(wire::AllocStatsRequest{Handle{1}}).mem_used, used - pages * 4096);
}

TEST_F(ServerTest, AnAbandonedMapContinuationIsDropped) {
  auto c = Client();
  const uint64_t pages = wire::kMaxMapRuns + 1;
  const Handle ds = FragmentedDataspace(*c, pages);
  absl::StatusOr<wire::Reply> r = c->Call(wire::DsMapRequest{ds, 0, pages * 4096});
  ASSERT_TRUE(r.ok());
  EXPECT_TRUE(std::get<wire::DsMapReply>(r->payload).more);
  c->CallOk(wire::DsInfoRequest{ds});
  EXPECT_EQ(Result(c->Call(wire::DsMapMoreRequest{})), kInval);
}

// ---- Statistics ----

TEST_F(ServerTest, StatisticsComeInPagesByClientId) {
  std::vector<std::unique_ptr<RawClient>> clients;
  for (int i = 0; i < 5; ++i) clients.push_back(Client());
  clients[1]->CallOk(wire::AllocRequest{Handle{1}, 1 << 20, kMaContinuous, 0});
  std::vector<uint32_t> ids;
  uint32_t next = 0;
  do {
    wire::ServerStatsReply page;
    std::vector<wire::ClientStats> sessions;
    next = server_->StatsPage(next, 2, &page, &sessions);
    EXPECT_LE(sessions.size(), 2u);
    for (const auto& s : sessions) ids.push_back(s.client_id);
  } while (next != 0);
  ASSERT_EQ(ids.size(), 5u);
  for (int i = 0; i < 5; ++i) EXPECT_EQ(ids[i], clients[i]->client_id());
  const auto all = server_->Stats();
  EXPECT_EQ(all.sessions[1].mem_used, 1u << 20);
  EXPECT_EQ(all.sessions[1].quota_used, 1u << 20);
  EXPECT_EQ(all.sessions[1].handles, 2u) << "the root and the dataspace";
  EXPECT_EQ(all.sessions[1].storage_resident, 0u) << "never touched";
  EXPECT_EQ(all.pool.free_bytes, kPool - (1 << 20));
  EXPECT_EQ(all.clients_served, 5u);
}

// ---- Shutdown ----

TEST(ServerLifecycleTest, ShutdownDisconnectsClientsReclaimsAllAndRemovesTheSocketFile) {
  const std::string path = absl::StrCat("/tmp/memd-test-", getpid(), ".sock");
  ServerOptions o;
  o.pool_bytes = kPool;
  o.socket_path = path;
  absl::StatusOr<std::unique_ptr<Server>> s = Server::Start(o);
  ASSERT_TRUE(s.ok()) << s.status();
  auto c = RawClient::Connect(path);
  ASSERT_TRUE(c.ok());
  (*c)->CallOk(wire::AllocRequest{Handle{1}, 4 << 20, kMaContinuous, 0});
  std::shared_ptr<PhysPool> pool = (*s)->shared_pool();
  (*s)->Shutdown();
  EXPECT_TRUE((*c)->ClosedByServer(absl::Seconds(1)));
  EXPECT_NE(access(path.c_str(), F_OK), 0) << "the socket file is gone";
  EXPECT_EQ(pool->free_bytes(), kPool) << "every frame is back";
  (*s)->Shutdown();  // idempotent
}

TEST(ServerLifecycleTest, AStaleSocketFileIsTakenOverButALiveServerOrAPlainFileIsNot) {
  const std::string path = absl::StrCat("/tmp/memd-stale-", getpid(), ".sock");
  {  // a socket file nobody listens on
    absl::StatusOr<wire::UnixAddress> a = wire::ParseSocketPath(path);
    const int fd = socket(AF_UNIX, SOCK_SEQPACKET, 0);
    ASSERT_EQ(bind(fd, reinterpret_cast<const sockaddr*>(&a->addr), a->len), 0);
    close(fd);
  }
  ServerOptions o;
  o.pool_bytes = kPool;
  o.socket_path = path;
  absl::StatusOr<std::unique_ptr<Server>> s = Server::Start(o);
  ASSERT_TRUE(s.ok()) << s.status();
  absl::StatusOr<std::unique_ptr<Server>> second = Server::Start(o);
  ASSERT_FALSE(second.ok());
  EXPECT_NE(second.status().message().find(path), absl::string_view::npos) << second.status();
  EXPECT_TRUE(RawClient::Connect(path).ok()) << "the first one still serves";
  s->reset();
  const std::string plain = absl::StrCat("/tmp/memd-plain-", getpid());
  close(open(plain.c_str(), O_CREAT | O_WRONLY, 0600));
  o.socket_path = plain;
  EXPECT_FALSE(Server::Start(o).ok());
  EXPECT_EQ(access(plain.c_str(), F_OK), 0) << "a plain file is never removed";
  unlink(plain.c_str());
}

TEST(ServerLifecycleTest, BadOptionsAreRefusedByName) {
  ServerOptions o;
  o.socket_path = "/" + std::string(200, 'x');
  absl::StatusOr<std::unique_ptr<Server>> s = Server::Start(o);
  ASSERT_FALSE(s.ok());
  EXPECT_NE(s.status().message().find("sun_path"), absl::string_view::npos) << s.status();
  o.socket_path = UniqueSocketName("bad");
  o.backend = "no-such-backend";
  s = Server::Start(o);
  ASSERT_FALSE(s.ok());
  EXPECT_NE(s.status().message().find("buddy"), absl::string_view::npos)
      << "lists the known backends: " << s.status();
}

}  // namespace
}  // namespace l4re_ma::testing
