// Fuzzes memd's dispatcher through a real socket: one embedded server; each
// input is a client session of well-formed requests with fuzzed fields
// (handles, sizes, flags, offsets) and raw garbage packets. Whatever a
// client sends, the server must answer or close, keep serving other
// clients, and reclaim everything when the client goes away.
#include <cstdio>
#include <cstdlib>
#include <memory>
#include <string>

#include "absl/time/clock.h"
#include "server/server.h"
#include "tests/fuzz/fuzz_input.h"
#include "tests/server/raw_client.h"

namespace l4re_ma::fuzz {
namespace {

using testing::Bytes;
using testing::EncodeBytes;
using testing::RawClient;

constexpr uint64_t kPoolBytes = 32 << 20;

Server& TheServer() {
  static Server* server = [] {
    ServerOptions options;
    options.pool_bytes = kPoolBytes;
    options.client_quota = 16 << 20;
    options.socket_path = "@l4re_ma_server_fuzzer_" + std::to_string(getpid());
    options.handshake_timeout = absl::Seconds(2);
    options.send_timeout = absl::Seconds(2);
    auto s = Server::Start(options);
    if (!s.ok()) {
      std::fprintf(stderr, "server_fuzzer: %s\n", s.status().ToString().c_str());
      std::abort();
    }
    return s->release();
  }();
  return *server;
}

long sessions = 0, packets = 0, replies = 0, closed_by_server = 0;
struct Report {
  ~Report() {
    std::fprintf(stderr, "server_fuzzer: %ld sessions, %ld packets sent, %ld replies, %ld "
                 "connections closed by the server; memory reclaimed after each\n",
                 sessions, packets, replies, closed_by_server);
  }
} report;

wire::Handle AnyHandle(FuzzInput& in) {
  const uint8_t b = in.Byte();
  return wire::Handle{b < 128 ? 1u + b % 8 : (b < 250 ? static_cast<uint32_t>(in.Take<uint16_t>())
                                                     : in.Take<uint32_t>())};
}

Bytes NextPacket(FuzzInput& in) {
  switch (in.Byte() % 12) {
    case 0: return EncodeBytes(wire::AllocRequest{AnyHandle(in), in.Take<int32_t>(),
                                                  in.Byte() % 9u, in.Byte() % 70u});
    case 1: return EncodeBytes(wire::FreeRequest{AnyHandle(in), AnyHandle(in)});
    case 2: return EncodeBytes(wire::CreateSubRequest{AnyHandle(in), in.Take<int32_t>()});
    case 3: return EncodeBytes(wire::AllocStatsRequest{AnyHandle(in)});
    case 4: return EncodeBytes(wire::ReleaseRequest{AnyHandle(in)});
    case 5: return EncodeBytes(wire::DsInfoRequest{AnyHandle(in)});
    case 6: return EncodeBytes(wire::DsAllocateRequest{AnyHandle(in), in.Below(1 << 22),
                                                       in.Below(1 << 22)});
    case 7: return EncodeBytes(wire::DsClearRequest{AnyHandle(in), in.Below(1 << 22),
                                                    in.Take<uint64_t>()});
    case 8: return EncodeBytes(wire::DsCopyInRequest{AnyHandle(in), AnyHandle(in),
                                                     in.Below(1 << 22), in.Below(1 << 22),
                                                     in.Below(1 << 22)});
    case 9: return EncodeBytes(wire::DsMapRequest{AnyHandle(in), in.Below(64) << 12,
                                                  in.Below(1 << 22)});
    case 10: {  // a valid packet with bytes flipped
      Bytes b = EncodeBytes(wire::DsPhysRequest{AnyHandle(in), in.Take<uint32_t>()});
      b[in.Below(b.size())] ^= in.Byte() | 1;
      return b;
    }
    default: {  // garbage
      Bytes b(in.Byte());
      for (auto& x : b) x = in.Byte();
      return b;
    }
  }
}

uint64_t PoolFree() {
  auto observer = RawClient::Connect(std::string(TheServer().options().socket_path), true,
                                     wire::Role::kObserver);
  if (!observer.ok()) std::abort();
  auto stats = (*observer)->Call(wire::ServerStatsRequest{});
  if (!stats.ok() || stats->result != 0) std::abort();
  return std::get<wire::ServerStatsReply>(stats->payload).pool.free_bytes;
}

void Run(FuzzInput& in) {
  const std::string socket = TheServer().options().socket_path;
  {
    auto client = RawClient::Connect(socket);
    if (!client.ok()) {
      std::fprintf(stderr, "server_fuzzer: cannot connect: %s\n",
                   client.status().ToString().c_str());
      std::abort();
    }
    ++sessions;
    for (int i = 0; i < 48 && !in.empty(); ++i) {
      if (!(*client)->Send(NextPacket(in))) break;
      ++packets;
      const Bytes reply = (*client)->Recv(absl::Milliseconds(200));
      if (reply.empty()) {
        if ((*client)->ClosedByServer(absl::ZeroDuration())) {
          ++closed_by_server;
          break;
        }
        continue;  // a one-way message: no reply
      }
      ++replies;
    }
  }
  // Another client is served, and the fuzzed one's memory comes back.
  const absl::Time deadline = absl::Now() + absl::Seconds(5);
  while (PoolFree() != kPoolBytes) {
    if (absl::Now() > deadline) {
      std::fprintf(stderr, "server_fuzzer: memory of a closed session was not reclaimed\n");
      std::abort();
    }
    absl::SleepFor(absl::Milliseconds(2));
  }
}

}  // namespace
}  // namespace l4re_ma::fuzz

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  l4re_ma::fuzz::FuzzInput in(data, size);
  l4re_ma::fuzz::Run(in);
  return 0;
}
