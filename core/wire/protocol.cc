#include "core/wire/protocol.h"

#include <type_traits>

#include "absl/strings/str_cat.h"
#include "core/errors.h"
#include "core/types.h"

namespace l4re_ma::wire {
namespace {

bool Printable(char c) { return c >= 0x20 && c <= 0x7e; }

bool PageAligned(uint64_t v) { return (v & (kPageSize - 1)) == 0; }

// Cross-field checks after the fields decoded; OK by default.
template <typename T>
absl::Status Validate(const T&) {
  return absl::OkStatus();
}

absl::Status Validate(const HelloReply& m) {
  if (m.magic != kMagic) {
    return absl::InvalidArgumentError(
        absl::StrCat("hello reply: bad magic 0x", absl::Hex(m.magic), " (not memd)"));
  }
  if (m.version != kVersion) {
    return absl::FailedPreconditionError(absl::StrCat(
        "memd speaks protocol version ", m.version, ", this client version ", kVersion));
  }
  if (!PageAligned(m.storage_bytes) || !PageAligned(m.pool_base)) {
    return absl::InvalidArgumentError("hello reply: storage size or pool base not page-aligned");
  }
  if ((m.role == Role::kClient) != (m.storage_bytes != 0)) {
    return absl::InvalidArgumentError("hello reply: storage size does not fit the role");
  }
  return absl::OkStatus();
}

absl::Status Validate(const DsInfoReply& m) {
  if (m.flags > kRightsRWX) {
    return absl::InvalidArgumentError(absl::StrCat("dataspace rights 0x", absl::Hex(m.flags)));
  }
  if (m.page_shift < kPageShift || m.page_shift > 63) {
    return absl::InvalidArgumentError(absl::StrCat("dataspace page shift ", m.page_shift));
  }
  return absl::OkStatus();
}

absl::Status Validate(const DsMapReply& m) {
  // Each run was checked alone (alignment, overflow); here: ascending and
  // gapless.
  for (size_t i = 1; i < m.runs.size(); ++i) {
    const MapRun prev = m.runs[i - 1], cur = m.runs[i];
    if (cur.ds_offset != prev.ds_offset + prev.length) {
      return absl::InvalidArgumentError(absl::StrCat("map run ", i, " at dataspace offset ",
                                                     cur.ds_offset, " does not follow run ",
                                                     i - 1));
    }
  }
  if (m.more && m.runs.empty()) {
    return absl::InvalidArgumentError("an empty map reply that announces more");
  }
  return absl::OkStatus();
}

absl::Status Validate(const ServerStatsReply& m) {
  for (size_t i = 1; i < m.sessions.size(); ++i) {
    if (m.sessions[i].client_id <= m.sessions[i - 1].client_id) {
      return absl::InvalidArgumentError("server stats: client ids not ascending");
    }
  }
  if (m.next_client != 0 && !m.sessions.empty() &&
      m.next_client <= m.sessions[m.sessions.size() - 1].client_id) {
    return absl::InvalidArgumentError("server stats: next client id goes backwards");
  }
  return absl::OkStatus();
}

struct Header {
  uint16_t op;
  uint16_t flags;
  uint32_t size;
};

absl::StatusOr<Header> DecodeHeader(absl::Span<const uint8_t> bytes) {
  if (bytes.size() < kHeaderBytes) {
    return absl::InvalidArgumentError(
        absl::StrCat("packet of ", bytes.size(), " bytes is shorter than the 8-byte header"));
  }
  if (bytes.size() > kMaxMessageBytes) {
    return absl::InvalidArgumentError(
        absl::StrCat("packet of ", bytes.size(), " bytes exceeds ", kMaxMessageBytes));
  }
  Header h;
  h.op = static_cast<uint16_t>(LoadLE(bytes.data(), 2));
  h.flags = static_cast<uint16_t>(LoadLE(bytes.data() + 2, 2));
  h.size = static_cast<uint32_t>(LoadLE(bytes.data() + 4, 4));
  if (h.size != bytes.size()) {
    return absl::InvalidArgumentError(
        absl::StrCat("header says ", h.size, " bytes, the packet has ", bytes.size()));
  }
  if (h.flags != 0) {
    return absl::InvalidArgumentError(
        absl::StrCat("reserved header flags 0x", absl::Hex(h.flags), " are set"));
  }
  const uint16_t base = h.op & ~kReplyBit;
  const bool none_reply = base == static_cast<uint16_t>(Op::kNone) && (h.op & kReplyBit) != 0;
  if ((base < kFirstOp || base > kLastOp) && !none_reply) {
    return absl::InvalidArgumentError(absl::StrCat("unknown operation ", base));
  }
  return h;
}

// Decodes the fields of M from all of `payload`.
template <typename M>
absl::StatusOr<M> DecodeFields(absl::Span<const uint8_t> payload, const char* what, Op op) {
  M m{};
  Reader r(payload.data(), payload.size());
  M::Fields(m, r);
  if (r.ok() && r.remaining() != 0) r.Fail("trailing bytes", r.remaining());
  if (!r.ok()) return r.Error(absl::StrCat(OpName(op), " ", what));
  if (absl::Status s = Validate(m); !s.ok()) return s;
  return m;
}

template <size_t I = 0>
absl::StatusOr<Request> DecodeRequestAs(Op op, absl::Span<const uint8_t> payload) {
  if constexpr (I == std::variant_size_v<Request>) {
    return absl::InvalidArgumentError(absl::StrCat("unknown operation ", static_cast<int>(op)));
  } else {
    using M = std::variant_alternative_t<I, Request>;
    if (M::kOp != op) return DecodeRequestAs<I + 1>(op, payload);
    absl::StatusOr<M> m = DecodeFields<M>(payload, "request", op);
    if (!m.ok()) return m.status();
    return Request(std::in_place_index<I>, *std::move(m));
  }
}

template <size_t I = 0>
absl::StatusOr<ReplyPayload> DecodeReplyAs(Op op, absl::Span<const uint8_t> payload) {
  if constexpr (I == std::variant_size_v<Request>) {
    return absl::InvalidArgumentError(absl::StrCat("unknown operation ", static_cast<int>(op)));
  } else {
    using M = std::variant_alternative_t<I, Request>;
    if (M::kOp != op) return DecodeReplyAs<I + 1>(op, payload);
    using R = typename M::ReplyType;
    absl::StatusOr<R> r = DecodeFields<R>(payload, "reply", op);
    if (!r.ok()) return r.status();
    return ReplyPayload(*std::move(r));
  }
}

}  // namespace

void FixedString::Set(absl::string_view s) {
  bytes.fill(0);
  const size_t n = std::min(s.size(), bytes.size() - 1);
  for (size_t i = 0; i < n; ++i) bytes[i] = Printable(s[i]) ? s[i] : '?';
}

size_t MaxClientStatsPerReply() {
  return (kMaxMessageBytes - FixedReplyBytes<ServerStatsReply>()) / kClientStatsBytes;
}

void Writer::operator()(const FixedString& s) {
  for (char c : s.bytes) Put(static_cast<uint8_t>(c), 1);
}

void Writer::Bytes(const void* data, size_t n) {
  if (!ok_ || cap_ - n_ < n) {
    ok_ = false;
    return;
  }
  std::memcpy(p_ + n_, data, n);
  n_ += n;
}

void Reader::operator()(bool& v) {
  const uint64_t b = Get(1);
  if (b > 1) Fail("boolean out of range", b);
  v = b == 1;
}

void Reader::operator()(Handle& h) {
  const uint64_t v = Get(4);
  if (ok_ && (v == 0 || v >= kHandleLimit)) Fail("handle out of range", v);
  h.value = static_cast<uint32_t>(v);
}

void Reader::operator()(Role& r) {
  const uint64_t v = Get(2);
  if (ok_ && v != static_cast<uint16_t>(Role::kClient) &&
      v != static_cast<uint16_t>(Role::kObserver)) {
    Fail("unknown role", v);
  }
  r = static_cast<Role>(v);
}

void Reader::operator()(FixedString& s) {
  if (!ok_) return;
  if (remaining() < s.bytes.size()) {
    Fail("truncated", n_);
    return;
  }
  std::memcpy(s.bytes.data(), here(), s.bytes.size());
  Skip(s.bytes.size());
  size_t len = 0;
  while (len < s.bytes.size() && s.bytes[len] != 0) {
    if (!Printable(s.bytes[len])) {
      Fail("non-printable byte in a name", static_cast<uint8_t>(s.bytes[len]));
      return;
    }
    ++len;
  }
  if (len == s.bytes.size()) {
    Fail("name is not NUL-terminated", len);
    return;
  }
  for (size_t i = len; i < s.bytes.size(); ++i) {
    if (s.bytes[i] != 0) {
      Fail("bytes after a name's NUL", i);
      return;
    }
  }
}

void Reader::operator()(MapRun& r) {
  r.ds_offset = Get(8);
  r.file_offset = Get(8);
  r.length = Get(8);
  if (!ok_) return;
  if (r.length == 0) Fail("empty map run", 0);
  if (!PageAligned(r.ds_offset) || !PageAligned(r.file_offset) || !PageAligned(r.length)) {
    Fail("map run not page-aligned", r.ds_offset | r.file_offset | r.length);
  }
  if (r.ds_offset + r.length < r.ds_offset || r.file_offset + r.length < r.file_offset) {
    Fail("map run overflows", r.length);
  }
}

absl::Status Reader::Error(absl::string_view message) const {
  return absl::InvalidArgumentError(absl::StrCat(message, ": ", what_, " (", value_, ")"));
}

void WriteHeader(uint8_t* p, uint16_t op, size_t size) {
  StoreLE(p, op, 2);
  StoreLE(p + 2, 0, 2);
  StoreLE(p + 4, size, 4);
}

size_t EncodeErrorReply(Op op, int64_t result, absl::string_view text, absl::Span<uint8_t> out) {
  if (result >= 0) result = -static_cast<int64_t>(L4Errno::kInval);
  const size_t len = std::min(text.size(), kMaxErrorText);
  const size_t size = kHeaderBytes + 8 + 2 + len;
  if (out.size() < size) return 0;
  WriteHeader(out.data(), static_cast<uint16_t>(op) | kReplyBit, size);
  StoreLE(out.data() + kHeaderBytes, static_cast<uint64_t>(result), 8);
  StoreLE(out.data() + kHeaderBytes + 8, len, 2);
  for (size_t i = 0; i < len; ++i) {
    out[kHeaderBytes + 10 + i] = static_cast<uint8_t>(Printable(text[i]) ? text[i] : '?');
  }
  return size;
}

Op ReplyOpFor(absl::Span<const uint8_t> request) {
  const uint16_t op = PeekOp(request);
  // A notice has no reply of its own: a malformed one is answered as kNone.
  if (op < kFirstOp || op > kLastOp || op == static_cast<uint16_t>(Op::kDsUnmap)) return Op::kNone;
  return static_cast<Op>(op);
}

uint16_t PeekOp(absl::Span<const uint8_t> bytes) {
  if (bytes.size() < 2) return 0;
  return static_cast<uint16_t>(LoadLE(bytes.data(), 2)) & ~kReplyBit;
}

absl::StatusOr<Request> DecodeRequest(absl::Span<const uint8_t> bytes) {
  absl::StatusOr<Header> h = DecodeHeader(bytes);
  if (!h.ok()) return h.status();
  if ((h->op & kReplyBit) != 0) {
    return absl::InvalidArgumentError("a reply where a request was expected");
  }
  const Op op = static_cast<Op>(h->op);
  absl::Span<const uint8_t> payload = bytes.subspan(kHeaderBytes);
  if (op == Op::kHello && payload.size() >= 6) {
    // Magic and version come first and never move: a client of another
    // version learns why it is refused.
    const uint32_t magic = static_cast<uint32_t>(LoadLE(payload.data(), 4));
    const uint16_t version = static_cast<uint16_t>(LoadLE(payload.data() + 4, 2));
    if (magic != kMagic) {
      return absl::FailedPreconditionError(
          absl::StrCat("bad magic 0x", absl::Hex(magic), ": not an l4re_ma client"));
    }
    if (version != kVersion) {
      return absl::FailedPreconditionError(absl::StrCat(
          "client speaks protocol version ", version, ", memd version ", kVersion));
    }
  }
  return DecodeRequestAs(op, payload);
}

absl::StatusOr<Reply> DecodeReply(absl::Span<const uint8_t> bytes) {
  absl::StatusOr<Header> h = DecodeHeader(bytes);
  if (!h.ok()) return h.status();
  if ((h->op & kReplyBit) == 0) {
    return absl::InvalidArgumentError("a request where a reply was expected");
  }
  Reply reply;
  reply.op = static_cast<Op>(h->op & ~kReplyBit);
  if (reply.op == Op::kDsUnmap) {
    return absl::InvalidArgumentError("a reply to an unmap notice, which has none");
  }
  Reader r(bytes.data() + kHeaderBytes, bytes.size() - kHeaderBytes);
  r(reply.result);
  if (!r.ok()) return r.Error(absl::StrCat(OpName(reply.op), " reply"));
  if (reply.result > 0) {
    return absl::InvalidArgumentError(absl::StrCat("positive result ", reply.result));
  }
  if (reply.result < 0) {
    uint16_t len = 0;
    r(len);
    if (r.ok() && len > kMaxErrorText) r.Fail("error text too long", len);
    if (r.ok() && r.remaining() != len) r.Fail("error text length does not match", len);
    if (!r.ok()) return r.Error(absl::StrCat(OpName(reply.op), " error reply"));
    const char* text = reinterpret_cast<const char*>(r.here());
    for (size_t i = 0; i < len; ++i) {
      if (!Printable(text[i])) {
        return absl::InvalidArgumentError("non-printable byte in an error text");
      }
    }
    reply.text = absl::string_view(text, len);
    reply.payload = EmptyReply{};
    return reply;
  }
  if (reply.op == Op::kNone) {
    return absl::InvalidArgumentError("a success reply to an unknown operation");
  }
  absl::StatusOr<ReplyPayload> payload =
      DecodeReplyAs(reply.op, bytes.subspan(kHeaderBytes + 8));
  if (!payload.ok()) return payload.status();
  reply.payload = *std::move(payload);
  return reply;
}

const char* OpName(Op op) {
  switch (op) {
    case Op::kNone: return "None";
    case Op::kHello: return "Hello";
    case Op::kAlloc: return "Alloc";
    case Op::kFree: return "Free";
    case Op::kCreateSub: return "CreateSub";
    case Op::kAllocStats: return "AllocStats";
    case Op::kPoolInfo: return "PoolInfo";
    case Op::kRelease: return "Release";
    case Op::kDsInfo: return "DsInfo";
    case Op::kDsPhys: return "DsPhys";
    case Op::kDsAllocate: return "DsAllocate";
    case Op::kDsClear: return "DsClear";
    case Op::kDsCopyIn: return "DsCopyIn";
    case Op::kDsMap: return "DsMap";
    case Op::kDsMapMore: return "DsMapMore";
    case Op::kDsUnmap: return "DsUnmap";
    case Op::kServerStats: return "ServerStats";
  }
  return "unknown";
}

}  // namespace l4re_ma::wire
