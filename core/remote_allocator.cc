#include "core/remote_allocator.h"

#include <pthread.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <utility>

#include "absl/base/call_once.h"
#include "absl/strings/str_cat.h"
#include "core/wire/transport.h"

namespace l4re_ma {
namespace {

// Incremented in every child after fork(): a connection made before belongs
// to the parent.
std::atomic<uint64_t> g_fork_generation{0};
absl::once_flag g_atfork_once;

void OnForkChild() { g_fork_generation.fetch_add(1, std::memory_order_relaxed); }

timeval TimeoutValue(absl::Duration d) {
  if (d <= absl::ZeroDuration()) return timeval{0, 0};  // no timeout
  return absl::ToTimeval(d);
}

wire::Handle H(uint32_t v) { return wire::Handle{v}; }

}  // namespace

// ---- RemoteConnection ----

// Locks unless the connection belongs to a parent process (then status()
// says so and callers leave). The analysis cannot follow the condition.
RemoteConnection::Lock::Lock(RemoteConnection& c) ABSL_NO_THREAD_SAFETY_ANALYSIS : c_(c) {
  if (c.fork_generation_ != g_fork_generation.load(std::memory_order_relaxed)) {
    status_ = IpcError(IpcCode::kNotExistent,
                       absl::StrCat("the connection to memd at '", c.path_,
                                    "' belongs to the parent process; a child must connect itself"));
    return;
  }
  c.mu_.Lock();
}

RemoteConnection::Lock::~Lock() ABSL_NO_THREAD_SAFETY_ANALYSIS {
  if (status_.ok()) c_.mu_.Unlock();
}

RemoteConnection::RemoteConnection(std::string path, int fd, uint64_t fork_generation)
    : path_(std::move(path)), fd_(fd), fork_generation_(fork_generation) {}

RemoteConnection::~RemoteConnection() {
  close(fd_);
  if (storage_fd_ >= 0) close(storage_fd_);
}

absl::StatusOr<std::shared_ptr<RemoteConnection>> RemoteConnection::Connect(
    absl::string_view path, const Options& options) {
  absl::call_once(g_atfork_once, [] { pthread_atfork(nullptr, nullptr, &OnForkChild); });
  absl::StatusOr<wire::UnixAddress> addr = wire::ParseSocketPath(path);
  if (!addr.ok()) return IpcError(IpcCode::kNotExistent, addr.status().message());
  const int fd = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0);
  if (fd < 0) {
    return IpcError(IpcCode::kNotExistent, absl::StrCat("socket: ", std::strerror(errno)));
  }
  std::shared_ptr<RemoteConnection> c(
      new RemoteConnection(std::string(path), fd, g_fork_generation.load()));
  const timeval tv = TimeoutValue(options.timeout);
  setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
  setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
  int r;
  do {
    r = connect(fd, reinterpret_cast<const sockaddr*>(&addr->addr), addr->len);
  } while (r != 0 && errno == EINTR);
  if (r != 0) {
    return IpcError(IpcCode::kNotExistent, absl::StrCat("cannot reach memd at '", path,
                                                        "': connect: ", std::strerror(errno)));
  }
  // Handshake. A server that refuses (too many clients) may have closed
  // already: still read its reply, which says why.
  wire::Hello hello;
  hello.role = options.role;
  uint8_t out[wire::kMaxRequestBytes];
  const size_t n = wire::EncodeRequest(hello, absl::MakeSpan(out));
  const int send_err = wire::SendPacket(fd, out, n);
  int storage_fd = -1;
  const ssize_t got = wire::RecvPacket(fd, c->recv_buf_, sizeof(c->recv_buf_), &storage_fd);
  auto fail = [&](const absl::Status& s) {
    if (storage_fd >= 0) close(storage_fd);
    return s;
  };
  if (got <= 0) {
    const int err = got < 0 ? static_cast<int>(-got) : send_err;
    return fail(IpcError(err == EAGAIN ? IpcCode::kRecvTimeout : IpcCode::kRecvAborted,
                         absl::StrCat("memd at '", path, "' closed the connection during the "
                                      "handshake",
                                      err != 0 ? absl::StrCat(": ", std::strerror(err)) : "")));
  }
  absl::StatusOr<wire::Reply> reply = wire::DecodeReply(
      absl::MakeConstSpan(c->recv_buf_, std::min<size_t>(got, sizeof(c->recv_buf_))));
  if (!reply.ok() || reply->op != wire::Op::kHello) {
    return fail(L4Error(L4Errno::kBadProto,
                        absl::StrCat("memd at '", path, "' sent a bad handshake reply: ",
                                     reply.ok() ? "another op" : reply.status().message())));
  }
  if (reply->result < 0) {
    return fail(FromL4Result(reply->result, absl::StrCat("memd at '", path,
                                                         "' refused the connection: ",
                                                         reply->text)));
  }
  const auto& hr = std::get<wire::HelloReply>(reply->payload);
  if (hr.role != options.role) {
    return fail(L4Error(L4Errno::kBadProto, "memd answered for another role"));
  }
  if (options.role == wire::Role::kClient) {
    struct stat st;
    if (storage_fd < 0 || fstat(storage_fd, &st) != 0 ||
        static_cast<uint64_t>(st.st_size) != hr.storage_bytes) {
      return fail(L4Error(L4Errno::kBadProto,
                          absl::StrCat("memd at '", path, "' passed no usable storage file")));
    }
  } else if (storage_fd >= 0) {
    close(storage_fd);
    storage_fd = -1;
  }
  c->storage_fd_ = storage_fd;
  c->storage_bytes_ = hr.storage_bytes;
  c->client_id_ = hr.client_id;
  c->role_ = hr.role;
  return c;
}

bool RemoteConnection::broken() const {
  MutexLock lock(&mu_);
  return broken_;
}

absl::Status RemoteConnection::BreakLocked(IpcCode code, absl::string_view what, int err) {
  if (!broken_) {
    broken_ = true;
    broken_reason_ = absl::StrCat(what, err != 0 ? absl::StrCat(": ", std::strerror(err)) : "");
    shutdown(fd_, SHUT_RDWR);  // the descriptor stays ours until destruction
  }
  return IpcError(code, absl::StrCat("memd at '", path_, "': ", what,
                                     err != 0 ? absl::StrCat(": ", std::strerror(err)) : ""));
}

absl::StatusOr<wire::Reply> RemoteConnection::ExchangeBytesLocked(wire::Op op,
                                                                  size_t request_bytes) {
  if (broken_) {
    return IpcError(IpcCode::kSendAborted,
                    absl::StrCat("the connection to memd at '", path_, "' is closed (",
                                 broken_reason_, ")"));
  }
  if (const int err = wire::SendPacket(fd_, send_buf_, request_bytes); err != 0) {
    return BreakLocked(err == EAGAIN ? IpcCode::kSendTimeout : IpcCode::kSendAborted,
                       "send failed", err);
  }
  const ssize_t n = wire::RecvPacket(fd_, recv_buf_, sizeof(recv_buf_));
  if (n == 0) return BreakLocked(IpcCode::kRecvAborted, "the server closed the connection", 0);
  if (n < 0) {
    const int err = static_cast<int>(-n);
    return BreakLocked(err == EAGAIN ? IpcCode::kRecvTimeout : IpcCode::kRecvAborted,
                       err == EAGAIN ? "no reply in time" : "receive failed", err);
  }
  if (static_cast<size_t>(n) > sizeof(recv_buf_)) {
    return BreakLocked(IpcCode::kRecvAborted, "oversized reply", 0);
  }
  absl::StatusOr<wire::Reply> reply = wire::DecodeReply(absl::MakeConstSpan(recv_buf_, n));
  if (!reply.ok()) {
    return BreakLocked(IpcCode::kRecvAborted,
                       absl::StrCat("malformed reply: ", reply.status().message()), 0);
  }
  if (reply->op != op) {
    return BreakLocked(IpcCode::kRecvAborted,
                       absl::StrCat("a reply to ", wire::OpName(reply->op), " where one to ",
                                    wire::OpName(op), " was due"),
                       0);
  }
  return reply;
}

void RemoteConnection::NotifyLocked(const wire::DsUnmapNotice& notice) {
  if (broken_) return;
  const size_t n = wire::EncodeRequest(notice, absl::MakeSpan(send_buf_));
  if (const int err = wire::SendPacket(fd_, send_buf_, n); err != 0) {
    (void)BreakLocked(IpcCode::kSendAborted, "send failed", err);
  }
}

absl::StatusOr<wire::ServerStatsSnapshot> RemoteConnection::ServerStats() {
  wire::ServerStatsSnapshot snap;
  Lock lock(*this);
  if (!lock.status().ok()) return lock.status();
  uint32_t next = 0;
  do {
    absl::StatusOr<wire::ServerStatsReply> r = CallLocked(wire::ServerStatsRequest{next});
    if (!r.ok()) return r.status();
    snap.pool.backend = std::string(r->pool.backend.view());
    snap.pool.base = r->pool.base;
    snap.pool.size = r->pool.size;
    snap.pool.free_bytes = r->pool.free_bytes;
    snap.pool.largest_free_run = r->pool.largest_free_run;
    snap.free_runs = r->free_runs;
    snap.free_superpages = r->free_superpages;
    snap.max_clients = r->max_clients;
    snap.clients = r->clients;
    snap.clients_served = r->clients_served;
    snap.clients_refused = r->clients_refused;
    snap.protocol_errors = r->protocol_errors;
    for (size_t i = 0; i < r->sessions.size(); ++i) snap.sessions.push_back(r->sessions[i]);
    if (r->next_client != 0 && r->next_client <= next) {
      return BreakLocked(IpcCode::kRecvAborted, "server stats paging goes backwards", 0);
    }
    next = r->next_client;
  } while (next != 0);
  return snap;
}

// ---- RemoteAllocator ----

absl::StatusOr<std::shared_ptr<RemoteAllocator>> RemoteAllocator::Connect(
    absl::string_view path, const RemoteConnection::Options& options) {
  RemoteConnection::Options o = options;
  o.role = wire::Role::kClient;
  absl::StatusOr<std::shared_ptr<RemoteConnection>> conn = RemoteConnection::Connect(path, o);
  if (!conn.ok()) return conn.status();
  return std::shared_ptr<RemoteAllocator>(
      new RemoteAllocator(*std::move(conn), H(wire::kRootHandle), nullptr));
}

RemoteAllocator::RemoteAllocator(std::shared_ptr<RemoteConnection> conn, wire::Handle handle,
                                 std::shared_ptr<RemoteAllocator> parent)
    : conn_(std::move(conn)), handle_{handle, false}, parent_(std::move(parent)) {}

RemoteAllocator::~RemoteAllocator() { ReleaseHandle(); }

absl::Status RemoteAllocator::DeadError() const {
  return IpcError(IpcCode::kNotExistent, "the memory allocator has been destroyed");
}

bool RemoteAllocator::dead() const {
  MutexLock lock(&mu_);
  return dead_;
}

void RemoteAllocator::ReleaseHandle() {
  RemoteConnection::Lock lock(*conn_);
  if (!lock.status().ok() || handle_.released) return;
  handle_.released = true;
  (void)conn_->CallLocked(wire::ReleaseRequest{handle_.handle});
}

absl::StatusOr<std::shared_ptr<Dataspace>> RemoteAllocator::Alloc(long size, unsigned long flags,
                                                                   unsigned long align) {
  if (dead()) return DeadError();
  absl::StatusOr<wire::HandleReply> reply;
  {
    RemoteConnection::Lock lock(*conn_);
    if (!lock.status().ok()) return lock.status();
    if (handle_.released) return DeadError();
    reply = conn_->CallLocked(wire::AllocRequest{handle_.handle, size, flags, align});
  }
  if (!reply.ok()) return reply.status();
  std::shared_ptr<RemoteDataspace> ds(
      new RemoteDataspace(conn_, shared_from_this(), reply->handle));
  {
    MutexLock lock(&mu_);
    if (!dead_) {
      dataspaces_.emplace(ds.get(), ds);
      return std::shared_ptr<Dataspace>(std::move(ds));
    }
  }
  // Destroyed meanwhile: the server destroyed the dataspace with us; the
  // proxy's destructor releases its handle.
  ds->DieLocally();
  return DeadError();
}

absl::Status RemoteAllocator::Free(Dataspace& ds) {
  if (dead()) return DeadError();
  auto* remote = dynamic_cast<RemoteDataspace*>(&ds);
  if (remote == nullptr || remote->conn_ != conn_ || remote->owner_.get() != this) {
    return L4Error(L4Errno::kPerm, "the dataspace belongs to another allocator");
  }
  // The mappings go first, as in process: once the server has the frames
  // back, another dataspace of this client may get them.
  remote->DieLocally();
  absl::Status status;
  {
    RemoteConnection::Lock lock(*conn_);
    if (!lock.status().ok()) return lock.status();
    if (handle_.released) return DeadError();
    if (remote->handle_.released) return absl::OkStatus();  // freed already
    absl::StatusOr<wire::EmptyReply> reply =
        conn_->CallLocked(wire::FreeRequest{handle_.handle, remote->handle_.handle});
    // On success the server released the dataspace's handle too.
    if (reply.ok()) remote->handle_.released = true;
    status = reply.status();
  }
  Forget(remote);
  return status;
}

absl::StatusOr<std::shared_ptr<MemAllocator>> RemoteAllocator::CreateSubAllocator(long limit) {
  if (dead()) return DeadError();
  absl::StatusOr<wire::HandleReply> reply;
  {
    RemoteConnection::Lock lock(*conn_);
    if (!lock.status().ok()) return lock.status();
    if (handle_.released) return DeadError();
    reply = conn_->CallLocked(wire::CreateSubRequest{handle_.handle, limit});
  }
  if (!reply.ok()) return reply.status();
  std::shared_ptr<RemoteAllocator> child(
      new RemoteAllocator(conn_, reply->handle, shared_from_this()));
  {
    MutexLock lock(&mu_);
    if (!dead_) {
      children_.push_back(child);
      return std::shared_ptr<MemAllocator>(std::move(child));
    }
  }
  child->DieLocally();
  return DeadError();
}

absl::StatusOr<AllocatorStats> RemoteAllocator::Stats() {
  if (dead()) return DeadError();
  absl::StatusOr<wire::AllocStatsReply> r;
  {
    RemoteConnection::Lock lock(*conn_);
    if (!lock.status().ok()) return lock.status();
    if (handle_.released) return DeadError();
    r = conn_->CallLocked(wire::AllocStatsRequest{handle_.handle});
  }
  if (!r.ok()) return r.status();
  AllocatorStats s;
  s.quota = r->quota;
  s.quota_used = r->quota_used;
  s.mem_limit = r->mem_limit;
  s.mem_used = r->mem_used;
  s.mem_free = r->mem_free;
  return s;
}

absl::StatusOr<PoolInfo> RemoteAllocator::Pool() {
  if (dead()) return DeadError();
  PoolInfo info;
  RemoteConnection::Lock lock(*conn_);
  if (!lock.status().ok()) return lock.status();
  if (handle_.released) return DeadError();
  absl::StatusOr<wire::PoolInfoReply> r =
      conn_->CallLocked(wire::PoolInfoRequest{handle_.handle});
  if (!r.ok()) return r.status();
  info.backend = std::string(r->backend.view());
  info.base = r->base;
  info.size = r->size;
  info.free_bytes = r->free_bytes;
  info.largest_free_run = r->largest_free_run;
  return info;
}

bool RemoteAllocator::DieLocally() {
  absl::flat_hash_map<RemoteDataspace*, std::weak_ptr<RemoteDataspace>> dataspaces;
  std::vector<std::weak_ptr<RemoteAllocator>> children;
  {
    MutexLock lock(&mu_);
    if (dead_) return false;
    dead_ = true;
    dataspaces.swap(dataspaces_);
    children.swap(children_);
  }
  for (auto& [ptr, weak] : dataspaces) {
    if (std::shared_ptr<RemoteDataspace> ds = weak.lock()) ds->DieLocally();
  }
  for (auto& weak : children) {
    if (std::shared_ptr<RemoteAllocator> child = weak.lock()) child->DieLocally();
  }
  return true;
}

void RemoteAllocator::Destroy() {
  // Local mappings first; then the server destroys the allocator and, with
  // it, every dataspace and sub-allocator it created. Their proxies keep
  // their (now dead) handles until their own capabilities go.
  DieLocally();
  ReleaseHandle();
}

void RemoteAllocator::Forget(RemoteDataspace* ds) {
  MutexLock lock(&mu_);
  dataspaces_.erase(ds);
}

// ---- RemoteDataspace ----

RemoteDataspace::RemoteDataspace(std::shared_ptr<RemoteConnection> conn,
                                 std::shared_ptr<RemoteAllocator> owner, wire::Handle handle)
    : conn_(std::move(conn)), owner_(std::move(owner)), handle_{handle, false} {}

RemoteDataspace::~RemoteDataspace() {
  DieLocally();
  ReleaseHandle();
}

absl::Status RemoteDataspace::DeadError() const {
  return IpcError(IpcCode::kNotExistent, "the dataspace has been freed");
}

void RemoteDataspace::DieLocally() {
  if (dead_.exchange(true)) return;
  RevokeAllMappings();
  owner_->Forget(this);
}

void RemoteDataspace::ReleaseHandle() {
  RemoteConnection::Lock lock(*conn_);
  if (!lock.status().ok() || handle_.released) return;
  handle_.released = true;
  (void)conn_->CallLocked(wire::ReleaseRequest{handle_.handle});
}

void RemoteDataspace::OnLastCapabilityReleased() {
  DieLocally();
  ReleaseHandle();
}

template <typename Req>
absl::StatusOr<typename Req::ReplyType> RemoteDataspace::Call(const Req& request) {
  if (dead_.load(std::memory_order_acquire)) return DeadError();
  RemoteConnection::Lock lock(*conn_);
  if (!lock.status().ok()) return lock.status();
  if (handle_.released) return DeadError();
  return conn_->CallLocked(request);
}

absl::StatusOr<DataspaceInfo> RemoteDataspace::Info() {
  absl::StatusOr<wire::DsInfoReply> r = Call(wire::DsInfoRequest{handle_.handle});
  if (!r.ok()) return r.status();
  return DataspaceInfo{r->size, static_cast<unsigned long>(r->flags), r->contiguous,
                       r->page_shift};
}

absl::StatusOr<PhysExtent> RemoteDataspace::Phys(uint64_t offset) {
  absl::StatusOr<wire::DsPhysReply> r = Call(wire::DsPhysRequest{handle_.handle, offset});
  if (!r.ok()) return r.status();
  return PhysExtent{PhysAddr(r->addr), r->size};
}

absl::Status RemoteDataspace::Allocate(uint64_t offset, uint64_t size) {
  return Call(wire::DsAllocateRequest{handle_.handle, offset, size}).status();
}

absl::Status RemoteDataspace::Clear(uint64_t offset, uint64_t size) {
  return Call(wire::DsClearRequest{handle_.handle, offset, size}).status();
}

absl::Status RemoteDataspace::CopyIn(uint64_t dst_offset, Dataspace& src_ds, uint64_t src_offset,
                                     uint64_t size) {
  auto* src = dynamic_cast<RemoteDataspace*>(&src_ds);
  if (src == nullptr || src->conn_ != conn_) {
    return L4Error(L4Errno::kInval, "the source is not a dataspace of this allocator");
  }
  if (dead_.load(std::memory_order_acquire)) return DeadError();
  if (src->dead_.load(std::memory_order_acquire)) {
    return L4Error(L4Errno::kInval, "the source dataspace has been freed");
  }
  RemoteConnection::Lock lock(*conn_);
  if (!lock.status().ok()) return lock.status();
  if (handle_.released) return DeadError();
  if (src->handle_.released) return L4Error(L4Errno::kInval, "the source dataspace has been freed");
  return conn_
      ->CallLocked(wire::DsCopyInRequest{handle_.handle, src->handle_.handle, dst_offset,
                                         src_offset, size})
      .status();
}

absl::StatusOr<MapResult> RemoteDataspace::Map(uint64_t offset, uint64_t size) {
  if (dead_.load(std::memory_order_acquire)) return DeadError();
  const uint64_t end = offset + size < offset ? UINT64_MAX : offset + size;
  MapResult result;
  result.fd = conn_->storage_fd();
  RemoteConnection::Lock lock(*conn_);
  if (!lock.status().ok()) return lock.status();
  if (handle_.released) return DeadError();
  absl::StatusOr<wire::Reply> reply = conn_->ExchangeLocked(
      wire::DsMapRequest{handle_.handle, offset, size});
  bool counted = false;  // whether the server counts a mapping now
  uint64_t expect = offset;
  for (;;) {
    if (!reply.ok()) break;
    if (reply->result < 0) {
      reply = FromL4Result(reply->result, reply->text);
      break;
    }
    counted = true;
    const auto& m = std::get<wire::DsMapReply>(reply->payload);
    // The runs must be exactly where asked: the region map mmaps them with
    // MAP_FIXED, so a run outside the request would clobber other memory.
    absl::Status bad;
    for (size_t i = 0; i < m.runs.size(); ++i) {
      const MapRun run = m.runs[i];
      if (run.ds_offset != expect || run.length > end - run.ds_offset ||
          run.file_offset > conn_->storage_bytes() ||
          run.length > conn_->storage_bytes() - run.file_offset) {
        bad = conn_->BreakLocked(IpcCode::kRecvAborted,
                                 absl::StrCat("a map run outside the request or the storage "
                                              "file: dataspace offset ",
                                              run.ds_offset, ", file offset ", run.file_offset,
                                              ", length ", run.length),
                                 0);
        break;
      }
      expect += run.length;
      result.runs.push_back(run);
    }
    if (!bad.ok()) {
      reply = bad;
      break;
    }
    if (!m.more) return result;
    reply = conn_->ExchangeLocked(wire::DsMapMoreRequest{});
  }
  // Failed part-way: the server must not keep counting this mapping.
  if (counted) conn_->NotifyLocked(wire::DsUnmapNotice{handle_.handle});
  return reply.status();
}

void RemoteDataspace::Unmap() {
  if (dead_.load(std::memory_order_acquire)) return;
  RemoteConnection::Lock lock(*conn_);
  if (!lock.status().ok() || handle_.released) return;
  conn_->NotifyLocked(wire::DsUnmapNotice{handle_.handle});
}

}  // namespace l4re_ma
