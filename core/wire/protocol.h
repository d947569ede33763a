// core/wire/protocol.h: the memd wire protocol, shared by the server
// (server/) and its client transport (core/remote_allocator.h).
//
// Transport: one AF_UNIX SOCK_SEQPACKET connection per client; every
// message is one packet of at most kMaxMessageBytes, little-endian, with no
// padding. A message is an 8-byte header followed by a fixed layout per
// operation:
//
//   header   u16 op | u16 flags (0) | u32 size (the whole packet, header included)
//   request  the fields of the operation's request struct below
//   reply    op = request op | kReplyBit (kNone for a request whose op is
//            unknown, which only gets an error), then i64 result:
//              result == 0: the fields of the operation's reply struct
//              result  < 0: the negative L4 result (core/errors.h), then
//                           u16 length and that many bytes of printable
//                           ASCII explaining it (at most kMaxErrorText)
//
// Two layouts carry a trailing array (u32 count, then count elements):
// DsMapReply and ServerStatsReply; the packet size must then match the count
// exactly. Nothing else varies in size.
//
// Session: the client's first message is Hello (magic + version + role);
// the server answers with HelloReply and, for a client, passes the client's
// storage file descriptor (SCM_RIGHTS) with it. A magic or version mismatch
// gets an error reply and a closed connection. The layouts of Hello, of
// HelloReply's first 8 bytes and of error replies never change between
// versions, so a mismatch is always reported clearly.
//
// Handles: a server-side capability slot of the client's session, 1 to
// kHandleLimit - 1; kRootHandle names the client's root allocator.
//
// Every decode function here is pure (bytes in, value or error out, no
// I/O, no global state) and validates everything structural: sizes, op
// codes, reserved bits, handle ranges, enum and boolean values, text,
// alignment and ordering of map runs. Semantic checks (flags, sizes,
// quotas, whether a handle holds an object) stay with the server's
// LocalAllocator, so remote calls fail exactly as local ones do.
//
// Decoded values may refer into the decoded bytes (Text, Array): they are
// valid as long as those bytes are.
#ifndef L4RE_MA_CORE_WIRE_PROTOCOL_H_
#define L4RE_MA_CORE_WIRE_PROTOCOL_H_

#include <algorithm>
#include <array>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <variant>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/types/span.h"
#include "core/dataspace.h"
#include "core/mem_allocator.h"

namespace l4re_ma::wire {

inline constexpr uint32_t kMagic = 0x414d344c;  // the bytes "L4MA"
inline constexpr uint16_t kVersion = 1;
inline constexpr size_t kMaxMessageBytes = 64 * 1024;
inline constexpr size_t kHeaderBytes = 8;
inline constexpr uint32_t kHandleLimit = uint32_t{1} << 16;
inline constexpr uint32_t kRootHandle = 1;
inline constexpr size_t kMaxErrorText = 240;
inline constexpr size_t kBackendNameBytes = 32;

enum class Op : uint16_t {
  kNone = 0,          // only in error replies to a request whose op is unknown
  kHello = 1,
  kAlloc = 2,         // MemAllocator::Alloc
  kFree = 3,          // MemAllocator::Free; also releases the dataspace's handle
  kCreateSub = 4,     // MemAllocator::CreateSubAllocator
  kAllocStats = 5,    // MemAllocator::Stats
  kPoolInfo = 6,      // MemAllocator::Pool
  kRelease = 7,       // drop a handle (the client's last capability went)
  kDsInfo = 8,        // Dataspace::Info
  kDsPhys = 9,        // Dataspace::Phys
  kDsAllocate = 10,   // Dataspace::Allocate
  kDsClear = 11,      // Dataspace::Clear
  kDsCopyIn = 12,     // Dataspace::CopyIn
  kDsMap = 13,        // Dataspace::Map: first part of the runs
  kDsMapMore = 14,    // the next part of the runs of the preceding kDsMap
  kDsUnmap = 15,      // Dataspace::Unmap: a notice, never answered
  kServerStats = 16,  // whole-server statistics
};
inline constexpr uint16_t kFirstOp = 1;
inline constexpr uint16_t kLastOp = 16;
inline constexpr uint16_t kReplyBit = 0x8000;

// What a connection is for: a client gets a storage file and a root
// allocator; an observer (memd --stats) may only ask for statistics.
enum class Role : uint16_t { kClient = 1, kObserver = 2 };

// A server-side handle: a capability slot of the session.
struct Handle {
  uint32_t value = 0;
  friend bool operator==(Handle a, Handle b) { return a.value == b.value; }
  friend bool operator!=(Handle a, Handle b) { return a.value != b.value; }
};

// A NUL-terminated, NUL-padded printable string of a fixed size.
struct FixedString {
  std::array<char, kBackendNameBytes> bytes{};
  void Set(absl::string_view s);  // truncates to kBackendNameBytes - 1
  absl::string_view view() const { return absl::string_view(bytes.data(), ::strnlen(bytes.data(), bytes.size())); }
};

// A trailing array of elements of type T. On the encode side it views the
// caller's elements; a decoded one views the packet and decodes element i
// on access.
template <typename T>
class Array {
 public:
  Array() = default;
  explicit Array(absl::Span<const T> items) : items_(items), count_(items.size()) {}

  size_t size() const { return count_; }
  bool empty() const { return count_ == 0; }
  T operator[](size_t i) const;

 private:
  friend class Reader;
  friend class Writer;
  absl::Span<const T> items_;
  const uint8_t* bytes_ = nullptr;
  size_t count_ = 0;
};

// Statistics of one session, in ServerStatsReply.
struct ClientStats {
  uint32_t client_id = 0;
  int32_t pid = 0;             // of the peer (SO_PEERCRED), 0 if unknown
  uint32_t uid = 0;
  Role role = Role::kClient;
  uint32_t handles = 0;        // occupied capability slots
  uint64_t quota = 0;          // of the client's root allocator
  uint64_t quota_used = 0;
  uint64_t mem_used = 0;
  uint64_t storage_resident = 0;  // bytes of the client's storage file in memory
  uint64_t requests = 0;
  uint64_t protocol_errors = 0;
  template <class S, class V>
  static void Fields(S& m, V& v) {
    v(m.client_id); v(m.pid); v(m.uid); v(m.role); v(m.handles); v(m.quota);
    v(m.quota_used); v(m.mem_used); v(m.storage_resident); v(m.requests); v(m.protocol_errors);
  }
};

// ---- Reply payloads (after result == 0) ----

struct EmptyReply {
  template <class S, class V>
  static void Fields(S&, V&) {}
};

struct HandleReply {
  Handle handle;
  template <class S, class V>
  static void Fields(S& m, V& v) { v(m.handle); }
};

struct HelloReply {
  uint32_t magic = kMagic;
  uint16_t version = kVersion;
  Role role = Role::kClient;
  uint32_t client_id = 0;
  uint64_t pool_base = 0;      // emulated physical address of the pool's first frame
  uint64_t storage_bytes = 0;  // size of the storage file passed along (0 for an observer)
  template <class S, class V>
  static void Fields(S& m, V& v) {
    v(m.magic); v(m.version); v(m.role); v(m.client_id); v(m.pool_base); v(m.storage_bytes);
  }
};

struct AllocStatsReply {
  uint64_t quota = 0, quota_used = 0, mem_limit = 0, mem_used = 0, mem_free = 0;
  template <class S, class V>
  static void Fields(S& m, V& v) {
    v(m.quota); v(m.quota_used); v(m.mem_limit); v(m.mem_used); v(m.mem_free);
  }
};

struct PoolInfoReply {
  FixedString backend;
  uint64_t base = 0, size = 0, free_bytes = 0, largest_free_run = 0;
  template <class S, class V>
  static void Fields(S& m, V& v) {
    v(m.backend); v(m.base); v(m.size); v(m.free_bytes); v(m.largest_free_run);
  }
};

struct DsInfoReply {
  uint64_t size = 0;
  uint64_t flags = 0;       // rights, at most kRightsRWX
  bool contiguous = false;
  uint8_t page_shift = 12;  // 12 to 63
  template <class S, class V>
  static void Fields(S& m, V& v) { v(m.size); v(m.flags); v(m.contiguous); v(m.page_shift); }
};

struct DsPhysReply {
  uint64_t addr = 0, size = 0;
  template <class S, class V>
  static void Fields(S& m, V& v) { v(m.addr); v(m.size); }
};

// Runs of a mapping, in ascending and gapless ds_offset order, every offset
// and length page-aligned and nonzero. `more`: ask kDsMapMore for the rest.
struct DsMapReply {
  bool more = false;
  Array<MapRun> runs;
  template <class S, class V>
  static void Fields(S& m, V& v) { v(m.more); v(m.runs); }
};

struct ServerStatsReply {
  PoolInfoReply pool;
  uint64_t free_runs = 0;
  uint64_t free_superpages = 0;
  uint32_t max_clients = 0;
  uint32_t clients = 0;         // live sessions (observers included)
  uint64_t clients_served = 0;  // sessions ever accepted
  uint64_t clients_refused = 0;
  uint64_t protocol_errors = 0;
  uint32_t next_client = 0;     // client_id to ask from for the rest; 0: complete
  Array<ClientStats> sessions;  // ascending client_id
  template <class S, class V>
  static void Fields(S& m, V& v) {
    PoolInfoReply::Fields(m.pool, v);
    v(m.free_runs); v(m.free_superpages); v(m.max_clients); v(m.clients); v(m.clients_served);
    v(m.clients_refused); v(m.protocol_errors); v(m.next_client); v(m.sessions);
  }
};

// ---- Requests ----

struct Hello {
  static constexpr Op kOp = Op::kHello;
  using ReplyType = HelloReply;
  uint32_t magic = kMagic;
  uint16_t version = kVersion;
  Role role = Role::kClient;
  template <class S, class V>
  static void Fields(S& m, V& v) { v(m.magic); v(m.version); v(m.role); }
};

struct AllocRequest {
  static constexpr Op kOp = Op::kAlloc;
  using ReplyType = HandleReply;
  Handle allocator;
  int64_t size = 0;
  uint64_t flags = 0;
  uint64_t align = 0;
  template <class S, class V>
  static void Fields(S& m, V& v) { v(m.allocator); v(m.size); v(m.flags); v(m.align); }
};

struct FreeRequest {
  static constexpr Op kOp = Op::kFree;
  using ReplyType = EmptyReply;
  Handle allocator;
  Handle dataspace;
  template <class S, class V>
  static void Fields(S& m, V& v) { v(m.allocator); v(m.dataspace); }
};

struct CreateSubRequest {
  static constexpr Op kOp = Op::kCreateSub;
  using ReplyType = HandleReply;
  Handle allocator;
  int64_t limit = 0;
  template <class S, class V>
  static void Fields(S& m, V& v) { v(m.allocator); v(m.limit); }
};

struct AllocStatsRequest {
  static constexpr Op kOp = Op::kAllocStats;
  using ReplyType = AllocStatsReply;
  Handle allocator;
  template <class S, class V>
  static void Fields(S& m, V& v) { v(m.allocator); }
};

struct PoolInfoRequest {
  static constexpr Op kOp = Op::kPoolInfo;
  using ReplyType = PoolInfoReply;
  Handle allocator;
  template <class S, class V>
  static void Fields(S& m, V& v) { v(m.allocator); }
};

struct ReleaseRequest {
  static constexpr Op kOp = Op::kRelease;
  using ReplyType = EmptyReply;
  Handle handle;
  template <class S, class V>
  static void Fields(S& m, V& v) { v(m.handle); }
};

struct DsInfoRequest {
  static constexpr Op kOp = Op::kDsInfo;
  using ReplyType = DsInfoReply;
  Handle ds;
  template <class S, class V>
  static void Fields(S& m, V& v) { v(m.ds); }
};

struct DsPhysRequest {
  static constexpr Op kOp = Op::kDsPhys;
  using ReplyType = DsPhysReply;
  Handle ds;
  uint64_t offset = 0;
  template <class S, class V>
  static void Fields(S& m, V& v) { v(m.ds); v(m.offset); }
};

struct DsAllocateRequest {
  static constexpr Op kOp = Op::kDsAllocate;
  using ReplyType = EmptyReply;
  Handle ds;
  uint64_t offset = 0, size = 0;
  template <class S, class V>
  static void Fields(S& m, V& v) { v(m.ds); v(m.offset); v(m.size); }
};

struct DsClearRequest {
  static constexpr Op kOp = Op::kDsClear;
  using ReplyType = EmptyReply;
  Handle ds;
  uint64_t offset = 0, size = 0;
  template <class S, class V>
  static void Fields(S& m, V& v) { v(m.ds); v(m.offset); v(m.size); }
};

struct DsCopyInRequest {
  static constexpr Op kOp = Op::kDsCopyIn;
  using ReplyType = EmptyReply;
  Handle dst, src;
  uint64_t dst_offset = 0, src_offset = 0, size = 0;
  template <class S, class V>
  static void Fields(S& m, V& v) { v(m.dst); v(m.src); v(m.dst_offset); v(m.src_offset); v(m.size); }
};

// offset and size must be page-aligned (the server refuses others).
struct DsMapRequest {
  static constexpr Op kOp = Op::kDsMap;
  using ReplyType = DsMapReply;
  Handle ds;
  uint64_t offset = 0, size = 0;
  template <class S, class V>
  static void Fields(S& m, V& v) { v(m.ds); v(m.offset); v(m.size); }
};

struct DsMapMoreRequest {
  static constexpr Op kOp = Op::kDsMapMore;
  using ReplyType = DsMapReply;
  template <class S, class V>
  static void Fields(S&, V&) {}
};

// A notice: the server sends nothing back.
struct DsUnmapNotice {
  static constexpr Op kOp = Op::kDsUnmap;
  using ReplyType = EmptyReply;
  Handle ds;
  template <class S, class V>
  static void Fields(S& m, V& v) { v(m.ds); }
};

struct ServerStatsRequest {
  static constexpr Op kOp = Op::kServerStats;
  using ReplyType = ServerStatsReply;
  uint32_t first_client = 0;  // sessions with client_id >= this
  template <class S, class V>
  static void Fields(S& m, V& v) { v(m.first_client); }
};

// Whole-server statistics assembled from every page of ServerStatsReply
// (and what the server dumps on SIGUSR1).
struct ServerStatsSnapshot {
  PoolInfo pool;
  uint64_t free_runs = 0;
  uint64_t free_superpages = 0;
  uint32_t max_clients = 0;
  uint32_t clients = 0;
  uint64_t clients_served = 0;
  uint64_t clients_refused = 0;
  uint64_t protocol_errors = 0;
  std::vector<ClientStats> sessions;  // ascending client_id
};

using Request = std::variant<Hello, AllocRequest, FreeRequest, CreateSubRequest, AllocStatsRequest,
                             PoolInfoRequest, ReleaseRequest, DsInfoRequest, DsPhysRequest,
                             DsAllocateRequest, DsClearRequest, DsCopyInRequest, DsMapRequest,
                             DsMapMoreRequest, DsUnmapNotice, ServerStatsRequest>;

using ReplyPayload = std::variant<EmptyReply, HandleReply, HelloReply, AllocStatsReply,
                                  PoolInfoReply, DsInfoReply, DsPhysReply, DsMapReply,
                                  ServerStatsReply>;

struct Reply {
  Op op = Op::kHello;          // the op of the request answered
  int64_t result = 0;          // 0, or a negative L4 result
  absl::string_view text;      // why, when result < 0
  ReplyPayload payload;        // when result == 0: Req::ReplyType of the request
};

// ---- Sizes ----

// Bytes of a message without its trailing array (header and result included
// for replies).
template <typename M>
size_t FixedRequestBytes();
template <typename R>
size_t FixedReplyBytes();
inline constexpr size_t kMapRunBytes = 24;
inline constexpr size_t kClientStatsBytes = 4 * 3 + 2 + 4 + 8 * 6;
// The most runs one DsMapReply carries.
inline constexpr size_t kMaxMapRuns = (kMaxMessageBytes - kHeaderBytes - 8 - 1 - 4) / kMapRunBytes;
// The most sessions one ServerStatsReply carries.
size_t MaxClientStatsPerReply();
// The largest request of any op.
inline constexpr size_t kMaxRequestBytes = 64;

// ---- Encoding (sizes are checked; a message that does not fit `out`
// returns 0, which is a caller bug) ----

template <typename Req>
size_t EncodeRequest(const Req& request, absl::Span<uint8_t> out);

// A success reply to a request of type Req.
template <typename Req>
size_t EncodeReply(const typename Req::ReplyType& payload, absl::Span<uint8_t> out);

// An error reply to `op`: `result` < 0; `text` is truncated to
// kMaxErrorText and non-printable bytes become '?'.
size_t EncodeErrorReply(Op op, int64_t result, absl::string_view text, absl::Span<uint8_t> out);

// ---- Decoding (pure) ----

// A request from a client. Errors are InvalidArgument naming what is wrong;
// a Hello with the wrong magic or version is FailedPrecondition.
absl::StatusOr<Request> DecodeRequest(absl::Span<const uint8_t> bytes);

// A reply from the server.
absl::StatusOr<Reply> DecodeReply(absl::Span<const uint8_t> bytes);

// The op a packet claims in its header (reply bit cleared), or 0 if it is
// too short.
uint16_t PeekOp(absl::Span<const uint8_t> bytes);
// The op to answer an undecodable request with: its own if that is a known
// op that has replies, else Op::kNone.
Op ReplyOpFor(absl::Span<const uint8_t> request);

const char* OpName(Op op);

// ---- Implementation details ----

// Little-endian loads and stores.
inline void StoreLE(uint8_t* p, uint64_t v, size_t n) {
  for (size_t i = 0; i < n; ++i) p[i] = static_cast<uint8_t>(v >> (8 * i));
}
inline uint64_t LoadLE(const uint8_t* p, size_t n) {
  uint64_t v = 0;
  for (size_t i = 0; i < n; ++i) v |= uint64_t{p[i]} << (8 * i);
  return v;
}

// Field visitors: Sizer counts, Writer stores, Reader loads and validates.
class Sizer {
 public:
  template <typename T>
  void operator()(const T& v) { n_ += Bytes(v); }
  size_t size() const { return n_; }

 private:
  static size_t Bytes(uint8_t) { return 1; }
  static size_t Bytes(bool) { return 1; }
  static size_t Bytes(uint16_t) { return 2; }
  static size_t Bytes(uint32_t) { return 4; }
  static size_t Bytes(int32_t) { return 4; }
  static size_t Bytes(uint64_t) { return 8; }
  static size_t Bytes(int64_t) { return 8; }
  static size_t Bytes(Handle) { return 4; }
  static size_t Bytes(Role) { return 2; }
  static size_t Bytes(const FixedString&) { return kBackendNameBytes; }
  template <typename T>
  static size_t Bytes(const Array<T>&) { return 4; }  // the count; elements vary
  size_t n_ = 0;
};

class Writer {
 public:
  Writer(uint8_t* p, size_t capacity) : p_(p), cap_(capacity) {}
  void operator()(uint8_t v) { Put(v, 1); }
  void operator()(bool v) { Put(v ? 1 : 0, 1); }
  void operator()(uint16_t v) { Put(v, 2); }
  void operator()(uint32_t v) { Put(v, 4); }
  void operator()(int32_t v) { Put(static_cast<uint32_t>(v), 4); }
  void operator()(uint64_t v) { Put(v, 8); }
  void operator()(int64_t v) { Put(static_cast<uint64_t>(v), 8); }
  void operator()(Handle h) { Put(h.value, 4); }
  void operator()(Role r) { Put(static_cast<uint16_t>(r), 2); }
  void operator()(const FixedString& s);
  void operator()(const MapRun& r) { Put(r.ds_offset, 8); Put(r.file_offset, 8); Put(r.length, 8); }
  void operator()(const ClientStats& c) { ClientStats::Fields(c, *this); }
  template <typename T>
  void operator()(const Array<T>& a) {
    Put(a.size(), 4);
    for (size_t i = 0; i < a.size(); ++i) (*this)(a[i]);
  }
  void Bytes(const void* data, size_t n);
  bool ok() const { return ok_; }
  size_t size() const { return n_; }

 private:
  void Put(uint64_t v, size_t n) {
    if (!ok_ || cap_ - n_ < n) { ok_ = false; return; }
    StoreLE(p_ + n_, v, n);
    n_ += n;
  }
  uint8_t* p_;
  size_t cap_;
  size_t n_ = 0;
  bool ok_ = true;
};

class Reader {
 public:
  Reader(const uint8_t* p, size_t n) : p_(p), n_(n) {}
  void operator()(uint8_t& v) { v = static_cast<uint8_t>(Get(1)); }
  void operator()(bool& v);
  void operator()(uint16_t& v) { v = static_cast<uint16_t>(Get(2)); }
  void operator()(uint32_t& v) { v = static_cast<uint32_t>(Get(4)); }
  void operator()(int32_t& v) { v = static_cast<int32_t>(static_cast<uint32_t>(Get(4))); }
  void operator()(uint64_t& v) { v = Get(8); }
  void operator()(int64_t& v) { v = static_cast<int64_t>(Get(8)); }
  void operator()(Handle& h);
  void operator()(Role& r);
  void operator()(FixedString& s);
  void operator()(MapRun& r);
  void operator()(ClientStats& c) { ClientStats::Fields(c, *this); }
  template <typename T>
  void operator()(Array<T>& a);

  uint64_t Get(size_t n) {
    if (!ok_) return 0;
    if (n_ - pos_ < n) { Fail("truncated", n_); return 0; }
    const uint64_t v = LoadLE(p_ + pos_, n);
    pos_ += n;
    return v;
  }
  void Fail(const char* what, uint64_t value) {
    if (!ok_) return;
    ok_ = false;
    what_ = what;
    value_ = value;
  }
  bool ok() const { return ok_; }
  size_t remaining() const { return n_ - pos_; }
  const uint8_t* here() const { return p_ + pos_; }
  void Skip(size_t n) { pos_ += n; }
  // InvalidArgument naming the first problem.
  absl::Status Error(absl::string_view message) const;

 private:
  const uint8_t* p_;
  size_t n_;
  size_t pos_ = 0;
  bool ok_ = true;
  const char* what_ = "";
  uint64_t value_ = 0;
};

template <typename T>
size_t ElementBytes();
template <>
inline size_t ElementBytes<MapRun>() { return kMapRunBytes; }
template <>
inline size_t ElementBytes<ClientStats>() { return kClientStatsBytes; }

template <typename T>
T Array<T>::operator[](size_t i) const {
  if (bytes_ == nullptr) return items_[i];
  T value{};
  Reader r(bytes_ + i * ElementBytes<T>(), ElementBytes<T>());
  r(value);  // validated when the array was decoded
  return value;
}

template <typename T>
void Reader::operator()(Array<T>& a) {
  const uint64_t count = Get(4);
  if (!ok_) return;
  // The array is the last field: the rest of the packet is its elements.
  if (count * ElementBytes<T>() != remaining()) {
    Fail("array count does not match the packet size", count);
    return;
  }
  a.bytes_ = here();
  a.count_ = count;
  a.items_ = {};
  for (uint64_t i = 0; i < count && ok_; ++i) {
    T element{};
    (*this)(element);
  }
}

template <typename M>
size_t FixedRequestBytes() {
  Sizer s;
  M m{};
  M::Fields(m, s);
  return kHeaderBytes + s.size();
}

template <typename R>
size_t FixedReplyBytes() {
  Sizer s;
  R r{};
  R::Fields(r, s);
  return kHeaderBytes + 8 + s.size();
}

void WriteHeader(uint8_t* p, uint16_t op, size_t size);

template <typename Req>
size_t EncodeRequest(const Req& request, absl::Span<uint8_t> out) {
  if (out.size() < kHeaderBytes) return 0;
  Writer w(out.data() + kHeaderBytes, out.size() - kHeaderBytes);
  Req::Fields(request, w);
  if (!w.ok()) return 0;
  WriteHeader(out.data(), static_cast<uint16_t>(Req::kOp), kHeaderBytes + w.size());
  return kHeaderBytes + w.size();
}

template <typename Req>
size_t EncodeReply(const typename Req::ReplyType& payload, absl::Span<uint8_t> out) {
  if (out.size() < kHeaderBytes + 8) return 0;
  Writer w(out.data() + kHeaderBytes, std::min(out.size(), kMaxMessageBytes) - kHeaderBytes);
  w(uint64_t{0});
  Req::ReplyType::Fields(payload, w);
  if (!w.ok()) return 0;
  WriteHeader(out.data(), static_cast<uint16_t>(Req::kOp) | kReplyBit, kHeaderBytes + w.size());
  return kHeaderBytes + w.size();
}

}  // namespace l4re_ma::wire

#endif  // L4RE_MA_CORE_WIRE_PROTOCOL_H_
