// The memd wire codec (core/wire/protocol.h): every message round-trips;
// every malformed input is rejected with an error, never a crash; decoding
// is canonical (what decodes re-encodes to the same bytes).
#include "core/wire/protocol.h"

#include <cstdint>
#include <random>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "core/errors.h"
#include "core/wire/transport.h"
#include "gtest/gtest.h"

namespace l4re_ma::wire {
namespace {

using Bytes = std::vector<uint8_t>;

template <typename Req>
Bytes Encode(const Req& m) {
  Bytes b(kMaxMessageBytes);
  const size_t n = EncodeRequest(m, absl::MakeSpan(b));
  EXPECT_GT(n, 0u) << OpName(Req::kOp);
  b.resize(n);
  return b;
}

template <typename Req>
Bytes EncodeOk(const typename Req::ReplyType& r) {
  Bytes b(kMaxMessageBytes);
  const size_t n = EncodeReply<Req>(r, absl::MakeSpan(b));
  EXPECT_GT(n, 0u) << OpName(Req::kOp);
  b.resize(n);
  return b;
}

Bytes ReEncode(const Request& r) {
  return std::visit([](const auto& m) { return Encode(m); }, r);
}

// One valid example of every request.
std::vector<Bytes> AllRequests() {
  return {
      Encode(Hello{}),
      Encode(Hello{kMagic, kVersion, Role::kObserver}),
      Encode(AllocRequest{Handle{1}, -12345, 0x7, 63}),
      Encode(FreeRequest{Handle{1}, Handle{65535}}),
      Encode(CreateSubRequest{Handle{7}, 1 << 20}),
      Encode(AllocStatsRequest{Handle{2}}),
      Encode(PoolInfoRequest{Handle{2}}),
      Encode(ReleaseRequest{Handle{9}}),
      Encode(DsInfoRequest{Handle{3}}),
      Encode(DsPhysRequest{Handle{3}, 4096}),
      Encode(DsAllocateRequest{Handle{3}, 1, ~uint64_t{0}}),
      Encode(DsClearRequest{Handle{3}, 2, 3}),
      Encode(DsCopyInRequest{Handle{3}, Handle{4}, 5, 6, 7}),
      Encode(DsMapRequest{Handle{3}, 8192, 4096}),
      Encode(DsMapMoreRequest{}),
      Encode(DsUnmapNotice{Handle{3}}),
      Encode(ServerStatsRequest{17}),
  };
}

std::vector<MapRun> SomeRuns(size_t n) {
  std::vector<MapRun> runs;
  uint64_t ds = 4096;
  for (size_t i = 0; i < n; ++i) {
    runs.push_back(MapRun{ds, (i * 7 % 13) * 8192, 4096 * (1 + i % 3)});
    ds += runs.back().length;
  }
  return runs;
}

std::vector<ClientStats> SomeSessions(size_t n) {
  std::vector<ClientStats> s;
  for (size_t i = 0; i < n; ++i) {
    ClientStats c;
    c.client_id = static_cast<uint32_t>(3 + 2 * i);
    c.pid = static_cast<int32_t>(1000 + i);
    c.uid = 42;
    c.role = i % 2 ? Role::kObserver : Role::kClient;
    c.handles = static_cast<uint32_t>(i);
    c.quota = 1 << 30;
    c.quota_used = i;
    c.mem_used = 2 * i;
    c.storage_resident = 3 * i;
    c.requests = 4 * i;
    c.protocol_errors = i % 3;
    s.push_back(c);
  }
  return s;
}

// One valid example of every reply, success and error.
std::vector<Bytes> AllReplies(std::vector<MapRun>* runs, std::vector<ClientStats>* sessions) {
  *runs = SomeRuns(5);
  *sessions = SomeSessions(4);
  HelloReply hello;
  hello.client_id = 5;
  hello.pool_base = 1 << 30;
  hello.storage_bytes = 256 << 20;
  PoolInfoReply pool;
  pool.backend.Set("buddy");
  pool.base = 1 << 30;
  pool.size = 1 << 28;
  pool.free_bytes = 1 << 27;
  pool.largest_free_run = 1 << 26;
  ServerStatsReply stats;
  stats.pool = pool;
  stats.free_runs = 3;
  stats.clients = 4;
  stats.next_client = 100;
  stats.sessions = Array<ClientStats>(*sessions);
  Bytes err(kMaxMessageBytes);
  err.resize(EncodeErrorReply(Op::kAlloc, -12, "quota exhausted", absl::MakeSpan(err)));
  return {
      EncodeOk<Hello>(hello),
      EncodeOk<AllocRequest>(HandleReply{Handle{2}}),
      EncodeOk<FreeRequest>(EmptyReply{}),
      EncodeOk<AllocStatsRequest>(AllocStatsReply{1, 2, 3, 4, 5}),
      EncodeOk<PoolInfoRequest>(pool),
      EncodeOk<DsInfoRequest>(DsInfoReply{5000, kRightsRWX, true, 21}),
      EncodeOk<DsPhysRequest>(DsPhysReply{1 << 30, 4096}),
      EncodeOk<DsMapRequest>(DsMapReply{true, Array<MapRun>(*runs)}),
      EncodeOk<DsMapMoreRequest>(DsMapReply{false, Array<MapRun>()}),
      EncodeOk<ServerStatsRequest>(stats),
      err,
  };
}

// Encodes `p` as the reply to the request op `op`.
template <size_t I = 0>
size_t EncodeReplyFor(Op op, const ReplyPayload& p, absl::Span<uint8_t> out) {
  if constexpr (I == std::variant_size_v<Request>) {
    return 0;
  } else {
    using Req = std::variant_alternative_t<I, Request>;
    if (Req::kOp != op) return EncodeReplyFor<I + 1>(op, p, out);
    const auto* r = std::get_if<typename Req::ReplyType>(&p);
    return r == nullptr ? 0 : EncodeReply<Req>(*r, out);
  }
}

Bytes ReEncodeReply(const Reply& r) {
  Bytes b(kMaxMessageBytes);
  const size_t n = r.result < 0 ? EncodeErrorReply(r.op, r.result, r.text, absl::MakeSpan(b))
                                : EncodeReplyFor(r.op, r.payload, absl::MakeSpan(b));
  b.resize(n);
  return b;
}

void SetLE(Bytes& b, size_t at, uint64_t v, size_t n) { StoreLE(b.data() + at, v, n); }

// ---- Round trips ----

TEST(WireTest, EveryRequestRoundTrips) {
  for (const Bytes& b : AllRequests()) {
    absl::StatusOr<Request> r = DecodeRequest(b);
    ASSERT_TRUE(r.ok()) << r.status();
    EXPECT_EQ(ReEncode(*r), b) << "op " << PeekOp(b);
  }
}

TEST(WireTest, RequestFieldsSurviveTheTrip) {
  absl::StatusOr<Request> r = DecodeRequest(Encode(DsCopyInRequest{Handle{3}, Handle{4}, 5, 6, 7}));
  ASSERT_TRUE(r.ok());
  const auto& m = std::get<DsCopyInRequest>(*r);
  EXPECT_EQ(m.dst.value, 3u);
  EXPECT_EQ(m.src.value, 4u);
  EXPECT_EQ(m.dst_offset, 5u);
  EXPECT_EQ(m.src_offset, 6u);
  EXPECT_EQ(m.size, 7u);
  r = DecodeRequest(Encode(AllocRequest{Handle{1}, -12345, 0x7, 63}));
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(std::get<AllocRequest>(*r).size, -12345);
  EXPECT_EQ(std::get<AllocRequest>(*r).align, 63u);
}

TEST(WireTest, EveryReplyRoundTrips) {
  std::vector<MapRun> runs;
  std::vector<ClientStats> sessions;
  for (const Bytes& b : AllReplies(&runs, &sessions)) {
    absl::StatusOr<Reply> r = DecodeReply(b);
    ASSERT_TRUE(r.ok()) << r.status();
    EXPECT_EQ(ReEncodeReply(*r), b) << "op " << PeekOp(b);
  }
}

TEST(WireTest, ReplyFieldsSurviveTheTrip) {
  std::vector<MapRun> runs;
  std::vector<ClientStats> sessions;
  const std::vector<Bytes> all = AllReplies(&runs, &sessions);
  absl::StatusOr<Reply> map = DecodeReply(all[7]);
  ASSERT_TRUE(map.ok());
  const auto& m = std::get<DsMapReply>(map->payload);
  EXPECT_TRUE(m.more);
  ASSERT_EQ(m.runs.size(), runs.size());
  for (size_t i = 0; i < runs.size(); ++i) {
    EXPECT_EQ(m.runs[i].ds_offset, runs[i].ds_offset);
    EXPECT_EQ(m.runs[i].file_offset, runs[i].file_offset);
    EXPECT_EQ(m.runs[i].length, runs[i].length);
  }
  absl::StatusOr<Reply> stats = DecodeReply(all[9]);
  ASSERT_TRUE(stats.ok());
  const auto& s = std::get<ServerStatsReply>(stats->payload);
  EXPECT_EQ(s.pool.backend.view(), "buddy");
  ASSERT_EQ(s.sessions.size(), sessions.size());
  EXPECT_EQ(s.sessions[3].client_id, sessions[3].client_id);
  EXPECT_EQ(s.sessions[3].pid, sessions[3].pid);
  EXPECT_EQ(s.sessions[3].role, Role::kObserver);
  EXPECT_EQ(s.sessions[2].protocol_errors, sessions[2].protocol_errors);
  EXPECT_EQ(s.next_client, 100u);
  absl::StatusOr<Reply> err = DecodeReply(all[10]);
  ASSERT_TRUE(err.ok());
  EXPECT_EQ(err->op, Op::kAlloc);
  EXPECT_EQ(err->result, -12);
  EXPECT_EQ(err->text, "quota exhausted");
}

TEST(WireTest, TheLargestMapReplyFitsAndOneMoreRunDoesNot) {
  const std::vector<MapRun> runs = SomeRuns(kMaxMapRuns + 1);
  Bytes b(kMaxMessageBytes);
  const size_t n = EncodeReply<DsMapRequest>(
      DsMapReply{false, Array<MapRun>(absl::MakeConstSpan(runs).first(kMaxMapRuns))},
      absl::MakeSpan(b));
  ASSERT_GT(n, 0u);
  EXPECT_LE(n, kMaxMessageBytes);
  b.resize(n);
  ASSERT_TRUE(DecodeReply(b).ok());
  Bytes big(2 * kMaxMessageBytes);
  EXPECT_EQ(EncodeReply<DsMapRequest>(DsMapReply{false, Array<MapRun>(runs)}, absl::MakeSpan(big)),
            0u)
      << "a reply never exceeds kMaxMessageBytes";
}

TEST(WireTest, TheLargestStatsPageFits) {
  const std::vector<ClientStats> s = SomeSessions(MaxClientStatsPerReply());
  ServerStatsReply r;
  r.sessions = Array<ClientStats>(s);
  Bytes b(kMaxMessageBytes);
  const size_t n = EncodeReply<ServerStatsRequest>(r, absl::MakeSpan(b));
  ASSERT_GT(n, 0u);
  b.resize(n);
  EXPECT_TRUE(DecodeReply(b).ok());
}

TEST(WireTest, RequestsFitTheirBuffer) {
  for (const Bytes& b : AllRequests()) EXPECT_LE(b.size(), kMaxRequestBytes);
  EXPECT_EQ(FixedRequestBytes<AllocRequest>(), 8u + 4 + 8 + 8 + 8);
}

TEST(WireTest, ErrorTextIsTruncatedAndSanitized) {
  Bytes b(kMaxMessageBytes);
  const std::string text = std::string("bad\x01\xff") + std::string(1000, 'x');
  b.resize(EncodeErrorReply(Op::kDsClear, -22, text, absl::MakeSpan(b)));
  absl::StatusOr<Reply> r = DecodeReply(b);
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->text.size(), kMaxErrorText);
  EXPECT_EQ(r->text.substr(0, 6), "bad??x");
  EXPECT_EQ(r->result, -22);
}

// ---- Rejections ----

TEST(WireTest, EveryTruncationAndExtensionOfARequestIsRejected) {
  for (const Bytes& b : AllRequests()) {
    for (size_t len = 0; len < b.size(); ++len) {
      Bytes cut(b.begin(), b.begin() + len);
      EXPECT_FALSE(DecodeRequest(cut).ok()) << "op " << PeekOp(b) << " cut to " << len;
      // Even with a header claiming the shorter size.
      if (len >= kHeaderBytes) {
        SetLE(cut, 4, len, 4);
        EXPECT_FALSE(DecodeRequest(cut).ok()) << "op " << PeekOp(b) << " truncated to " << len;
      }
    }
    Bytes longer = b;
    longer.push_back(0);
    EXPECT_FALSE(DecodeRequest(longer).ok()) << "packet longer than its header says";
    SetLE(longer, 4, longer.size(), 4);
    EXPECT_FALSE(DecodeRequest(longer).ok()) << "op " << PeekOp(b) << " with a trailing byte";
  }
}

TEST(WireTest, EveryTruncationAndExtensionOfAReplyIsRejected) {
  std::vector<MapRun> runs;
  std::vector<ClientStats> sessions;
  for (const Bytes& b : AllReplies(&runs, &sessions)) {
    for (size_t len = kHeaderBytes; len < b.size(); ++len) {
      Bytes cut(b.begin(), b.begin() + len);
      SetLE(cut, 4, len, 4);
      EXPECT_FALSE(DecodeReply(cut).ok()) << "op " << PeekOp(b) << " truncated to " << len;
    }
    Bytes longer = b;
    longer.push_back(0);
    SetLE(longer, 4, longer.size(), 4);
    EXPECT_FALSE(DecodeReply(longer).ok()) << "op " << PeekOp(b) << " with a trailing byte";
  }
}

TEST(WireTest, BadHeadersAreRejected) {
  const Bytes good = Encode(DsInfoRequest{Handle{3}});
  for (uint16_t op : {0, 17, 100, 0x7fff}) {
    Bytes b = good;
    SetLE(b, 0, op, 2);
    absl::StatusOr<Request> r = DecodeRequest(b);
    EXPECT_FALSE(r.ok()) << op;
    EXPECT_NE(r.status().message().find("unknown operation"), absl::string_view::npos);
  }
  Bytes flags = good;
  SetLE(flags, 2, 1, 2);
  EXPECT_FALSE(DecodeRequest(flags).ok()) << "reserved flags";
  Bytes reply_bit = good;
  SetLE(reply_bit, 0, static_cast<uint16_t>(Op::kDsInfo) | kReplyBit, 2);
  EXPECT_FALSE(DecodeRequest(reply_bit).ok()) << "a reply is not a request";
  EXPECT_FALSE(DecodeReply(good).ok()) << "a request is not a reply";
  Bytes size = good;
  SetLE(size, 4, 1000, 4);
  EXPECT_FALSE(DecodeRequest(size).ok()) << "size field disagrees with the packet";
  EXPECT_FALSE(DecodeRequest(Bytes(kMaxMessageBytes + 8, 0)).ok()) << "oversized";
  EXPECT_FALSE(DecodeRequest(Bytes()).ok());
}

TEST(WireTest, AnUnknownRequestIsAnsweredWithAnErrorToOpNone) {
  Bytes req = Encode(DsInfoRequest{Handle{3}});
  SetLE(req, 0, 77, 2);
  EXPECT_EQ(ReplyOpFor(req), Op::kNone);
  EXPECT_EQ(ReplyOpFor(Encode(DsInfoRequest{Handle{3}})), Op::kDsInfo);
  EXPECT_EQ(ReplyOpFor(Bytes{1}), Op::kNone);
  EXPECT_EQ(ReplyOpFor(Encode(DsUnmapNotice{Handle{3}})), Op::kNone) << "notices have no reply";
  Bytes err(kMaxMessageBytes);
  err.resize(EncodeErrorReply(Op::kNone, -39, "unknown operation 77", absl::MakeSpan(err)));
  absl::StatusOr<Reply> r = DecodeReply(err);
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->op, Op::kNone);
  EXPECT_EQ(r->result, -39);
  Bytes ok = EncodeOk<FreeRequest>(EmptyReply{});
  SetLE(ok, 0, kReplyBit, 2);
  EXPECT_FALSE(DecodeReply(ok).ok()) << "only errors answer an unknown operation";
}

TEST(WireTest, HandlesOutOfRangeAreRejected) {
  for (uint32_t h : {0u, kHandleLimit, kHandleLimit + 1, ~0u}) {
    EXPECT_FALSE(DecodeRequest(Encode(DsInfoRequest{Handle{h}})).ok()) << h;
    EXPECT_FALSE(DecodeRequest(Encode(FreeRequest{Handle{1}, Handle{h}})).ok()) << h;
    EXPECT_FALSE(DecodeRequest(Encode(DsCopyInRequest{Handle{2}, Handle{h}, 0, 0, 0})).ok()) << h;
  }
  EXPECT_TRUE(DecodeRequest(Encode(DsInfoRequest{Handle{kHandleLimit - 1}})).ok());
}

TEST(WireTest, HelloWithAnotherMagicOrVersionIsRefusedClearly) {
  absl::StatusOr<Request> r = DecodeRequest(Encode(Hello{kMagic, kVersion + 1, Role::kClient}));
  ASSERT_FALSE(r.ok());
  EXPECT_TRUE(absl::IsFailedPrecondition(r.status()));
  EXPECT_NE(r.status().message().find("version"), absl::string_view::npos) << r.status();
  r = DecodeRequest(Encode(Hello{0x12345678, kVersion, Role::kClient}));
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.status().message().find("magic"), absl::string_view::npos) << r.status();
  // A hello of another version may be longer: the version is still reported.
  Bytes longer = Encode(Hello{kMagic, kVersion + 1, Role::kClient});
  longer.resize(longer.size() + 16);
  SetLE(longer, 4, longer.size(), 4);
  r = DecodeRequest(longer);
  EXPECT_NE(r.status().message().find("version"), absl::string_view::npos) << r.status();
}

TEST(WireTest, EnumAndBooleanValuesOutOfRangeAreRejected) {
  for (uint16_t role : {0, 3, 0xffff}) {
    Bytes b = Encode(Hello{});
    SetLE(b, kHeaderBytes + 6, role, 2);
    EXPECT_FALSE(DecodeRequest(b).ok()) << role;
  }
  Bytes info = EncodeOk<DsInfoRequest>(DsInfoReply{1, kRightsRWX, true, 12});
  Bytes b = info;
  SetLE(b, kHeaderBytes + 8 + 16, 2, 1);  // contiguous = 2
  EXPECT_FALSE(DecodeReply(b).ok());
  b = info;
  SetLE(b, kHeaderBytes + 8 + 17, 11, 1);  // page shift 11
  EXPECT_FALSE(DecodeReply(b).ok());
  b = info;
  SetLE(b, kHeaderBytes + 8 + 17, 64, 1);
  EXPECT_FALSE(DecodeReply(b).ok());
  b = info;
  SetLE(b, kHeaderBytes + 8 + 8, 8, 8);  // rights beyond RWX
  EXPECT_FALSE(DecodeReply(b).ok());
  Bytes map = EncodeOk<DsMapRequest>(DsMapReply{false, Array<MapRun>()});
  SetLE(map, kHeaderBytes + 8, 2, 1);  // more = 2
  EXPECT_FALSE(DecodeReply(map).ok());
}

TEST(WireTest, BadMapRunsAreRejected) {
  auto decode = [](std::vector<MapRun> runs, bool more = false) {
    Bytes b(kMaxMessageBytes);
    b.resize(EncodeReply<DsMapRequest>(DsMapReply{more, Array<MapRun>(runs)}, absl::MakeSpan(b)));
    return DecodeReply(b).status();
  };
  EXPECT_TRUE(decode({{0, 0, 4096}, {4096, 1 << 20, 8192}}).ok());
  EXPECT_FALSE(decode({{0, 0, 0}}).ok()) << "empty run";
  EXPECT_FALSE(decode({{1, 0, 4096}}).ok()) << "unaligned dataspace offset";
  EXPECT_FALSE(decode({{0, 100, 4096}}).ok()) << "unaligned file offset";
  EXPECT_FALSE(decode({{0, 0, 4097}}).ok()) << "unaligned length";
  EXPECT_FALSE(decode({{~uint64_t{0} & ~uint64_t{4095}, 0, 8192}}).ok()) << "overflow";
  EXPECT_FALSE(decode({{0, 0, 4096}, {8192, 0, 4096}}).ok()) << "gap";
  EXPECT_FALSE(decode({{4096, 0, 4096}, {0, 0, 4096}}).ok()) << "descending";
  EXPECT_FALSE(decode({}, true).ok()) << "nothing, yet more";
  // An array count that disagrees with the packet.
  Bytes b(kMaxMessageBytes);
  std::vector<MapRun> two = {{0, 0, 4096}, {4096, 0, 4096}};
  b.resize(EncodeReply<DsMapRequest>(DsMapReply{false, Array<MapRun>(two)}, absl::MakeSpan(b)));
  SetLE(b, kHeaderBytes + 8 + 1, 3, 4);
  EXPECT_FALSE(DecodeReply(b).ok());
  SetLE(b, kHeaderBytes + 8 + 1, 0xffffffff, 4);
  EXPECT_FALSE(DecodeReply(b).ok());
}

TEST(WireTest, BadErrorRepliesAreRejected) {
  Bytes b(kMaxMessageBytes);
  b.resize(EncodeErrorReply(Op::kAlloc, -12, "no", absl::MakeSpan(b)));
  Bytes positive = b;
  SetLE(positive, kHeaderBytes, 5, 8);
  EXPECT_FALSE(DecodeReply(positive).ok()) << "positive result";
  Bytes len = b;
  SetLE(len, kHeaderBytes + 8, 3, 2);
  EXPECT_FALSE(DecodeReply(len).ok()) << "text length mismatch";
  Bytes np = b;
  np[kHeaderBytes + 10] = 0x07;
  EXPECT_FALSE(DecodeReply(np).ok()) << "non-printable text";
  Bytes unmap = b;
  SetLE(unmap, 0, static_cast<uint16_t>(Op::kDsUnmap) | kReplyBit, 2);
  EXPECT_FALSE(DecodeReply(unmap).ok()) << "notices have no reply";
  Bytes huge(kHeaderBytes + 10 + kMaxErrorText + 1, 'a');
  SetLE(huge, 0, static_cast<uint16_t>(Op::kAlloc) | kReplyBit, 2);
  SetLE(huge, 2, 0, 2);
  SetLE(huge, 4, huge.size(), 4);
  SetLE(huge, kHeaderBytes, static_cast<uint64_t>(-12), 8);
  SetLE(huge, kHeaderBytes + 8, kMaxErrorText + 1, 2);
  EXPECT_FALSE(DecodeReply(huge).ok()) << "text too long";
}

TEST(WireTest, BadNamesAreRejected) {
  PoolInfoReply p;
  p.backend.Set("buddy");
  const Bytes good = EncodeOk<PoolInfoRequest>(p);
  const size_t at = kHeaderBytes + 8;
  Bytes full = good;
  for (size_t i = 0; i < kBackendNameBytes; ++i) full[at + i] = 'a';
  EXPECT_FALSE(DecodeReply(full).ok()) << "not NUL-terminated";
  Bytes after = good;
  after[at + 10] = 'x';
  EXPECT_FALSE(DecodeReply(after).ok()) << "bytes after the NUL";
  Bytes np = good;
  np[at + 1] = '\n';
  EXPECT_FALSE(DecodeReply(np).ok()) << "non-printable";
}

TEST(WireTest, BadHelloRepliesAreRejected) {
  HelloReply h;
  h.storage_bytes = 1 << 20;
  const Bytes good = EncodeOk<Hello>(h);
  ASSERT_TRUE(DecodeReply(good).ok());
  Bytes v = good;
  SetLE(v, kHeaderBytes + 8 + 4, kVersion + 1, 2);
  EXPECT_FALSE(DecodeReply(v).ok());
  Bytes odd = good;
  SetLE(odd, kHeaderBytes + 8 + 20, 1000, 8);  // storage size not page-aligned
  EXPECT_FALSE(DecodeReply(odd).ok());
  h.role = Role::kObserver;  // an observer gets no storage
  EXPECT_FALSE(DecodeReply(EncodeOk<Hello>(h)).ok());
}

// Seeded mutations and random bytes: decoding never crashes, and whatever
// decodes is canonical.
TEST(WireTest, RandomMutationsNeverCrashAndDecodeCanonically) {
  const uint32_t seed = ::testing::UnitTest::GetInstance()->random_seed();
  std::mt19937 rng(seed);
  std::vector<MapRun> runs;
  std::vector<ClientStats> sessions;
  const std::vector<Bytes> requests = AllRequests();
  const std::vector<Bytes> replies = AllReplies(&runs, &sessions);
  int decoded = 0;
  for (int iter = 0; iter < 60000; ++iter) {
    const bool request = iter % 2 == 0;
    Bytes b = request ? requests[rng() % requests.size()] : replies[rng() % replies.size()];
    switch (rng() % 4) {
      case 0:  // flip bits
        for (int k = rng() % 4 + 1; k > 0; --k) b[rng() % b.size()] ^= 1 << (rng() % 8);
        break;
      case 1:  // overwrite bytes past the header (the header stays consistent)
        for (int k = rng() % 4 + 1; k > 0 && b.size() > kHeaderBytes; --k) {
          b[kHeaderBytes + rng() % (b.size() - kHeaderBytes)] = static_cast<uint8_t>(rng());
        }
        break;
      case 2: {  // resize, fixing the header's size
        b.resize(rng() % (b.size() + 16) + 1);
        if (b.size() >= kHeaderBytes) SetLE(b, 4, b.size(), 4);
        break;
      }
      default: {  // random bytes with a plausible header
        b.resize(rng() % 120 + kHeaderBytes);
        for (auto& x : b) x = static_cast<uint8_t>(rng());
        SetLE(b, 0, (rng() % 18) | (request ? 0 : kReplyBit), 2);
        SetLE(b, 2, 0, 2);
        SetLE(b, 4, b.size(), 4);
      }
    }
    if (request) {
      absl::StatusOr<Request> r = DecodeRequest(b);
      if (r.ok()) {
        ++decoded;
        ASSERT_EQ(ReEncode(*r), b) << "seed " << seed << " iteration " << iter;
      }
    } else {
      absl::StatusOr<Reply> r = DecodeReply(b);
      if (r.ok()) {
        ++decoded;
        ASSERT_EQ(ReEncodeReply(*r), b) << "seed " << seed << " iteration " << iter;
      }
    }
  }
  EXPECT_GT(decoded, 100) << "the mutations should leave some messages valid";
}

// ---- Socket paths ----

TEST(TransportTest, SocketPathsFitSunPathOrAreRefusedByName) {
  absl::StatusOr<UnixAddress> a = ParseSocketPath("@memd");
  ASSERT_TRUE(a.ok());
  EXPECT_TRUE(a->abstract);
  EXPECT_EQ(a->addr.sun_path[0], '\0');
  EXPECT_EQ(std::string(a->addr.sun_path + 1, 4), "memd");
  a = ParseSocketPath("/tmp/memd.sock");
  ASSERT_TRUE(a.ok());
  EXPECT_FALSE(a->abstract);
  EXPECT_STREQ(a->addr.sun_path, "/tmp/memd.sock");
  EXPECT_TRUE(ParseSocketPath("/" + std::string(106, 'x')).ok()) << "107 bytes fit";
  const std::string too_long = "/" + std::string(107, 'x');
  absl::StatusOr<UnixAddress> bad = ParseSocketPath(too_long);
  ASSERT_FALSE(bad.ok());
  EXPECT_NE(bad.status().message().find(too_long), absl::string_view::npos) << "names the path";
  EXPECT_TRUE(ParseSocketPath("@" + std::string(107, 'x')).ok());
  EXPECT_FALSE(ParseSocketPath("@" + std::string(108, 'x')).ok());
  EXPECT_FALSE(ParseSocketPath("").ok());
  EXPECT_FALSE(ParseSocketPath("@").ok());
}

}  // namespace
}  // namespace l4re_ma::wire
