#include "server/session.h"

#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <utility>
#include <variant>

#include "absl/strings/str_cat.h"
#include "absl/time/time.h"
#include "core/errors.h"
#include "core/wire/transport.h"
#include "server/server.h"

namespace l4re_ma {
namespace {

using wire::Op;

void SetTimeout(int fd, int option, absl::Duration d) {
  const timeval tv = d > absl::ZeroDuration() ? absl::ToTimeval(d) : timeval{0, 0};
  setsockopt(fd, SOL_SOCKET, option, &tv, sizeof(tv));
}

bool PageAligned(uint64_t v) { return (v & (kPageSize - 1)) == 0; }

}  // namespace

Session::Session(Server& server, int fd, uint32_t id) : server_(server), fd_(fd), id_(id) {}

Session::~Session() {
  // Objects first (they may still refer to the storage), then the socket.
  caps_.reset();
  root_.reset();
  storage_.reset();
  close(fd_);
}

void Session::ShutdownSocket() { shutdown(fd_, SHUT_RDWR); }

void Session::Run() {
  if (Handshake()) {
    while (open_) {
      state_.store(State::kIdle, std::memory_order_release);
      const ssize_t n = wire::RecvPacket(fd_, in_, sizeof(in_));
      state_.store(State::kBusy, std::memory_order_release);
      if (n <= 0) break;  // the peer went away (or the server shut us down)
      requests_.fetch_add(1, std::memory_order_relaxed);
      if (static_cast<size_t>(n) > sizeof(in_)) {
        protocol_errors_.fetch_add(1, std::memory_order_relaxed);
        server_.CountProtocolError();
        ReplyError(wire::ReplyOpFor(absl::MakeConstSpan(in_, sizeof(in_))),
                   L4Error(L4Errno::kBadProto,
                           absl::StrCat("packet of ", n, " bytes exceeds the maximum of ",
                                        wire::kMaxMessageBytes)));
        continue;
      }
      Dispatch(static_cast<size_t>(n));
    }
  }
  Teardown();
}

bool Session::Handshake() {
  socklen_t len = sizeof(peer_);
  if (getsockopt(fd_, SOL_SOCKET, SO_PEERCRED, &peer_, &len) != 0) peer_ = ucred{};
  SetTimeout(fd_, SO_RCVTIMEO, server_.options().handshake_timeout);
  SetTimeout(fd_, SO_SNDTIMEO, server_.options().send_timeout);
  const ssize_t n = wire::RecvPacket(fd_, in_, sizeof(in_));
  if (n <= 0) return false;  // gone, or silent past the timeout
  requests_.fetch_add(1, std::memory_order_relaxed);
  auto refuse = [&](const absl::Status& s) {
    protocol_errors_.fetch_add(1, std::memory_order_relaxed);
    server_.CountProtocolError();
    ReplyError(Op::kHello, s);
    return false;
  };
  if (static_cast<size_t>(n) > sizeof(in_)) {
    return refuse(L4Error(L4Errno::kBadProto, "oversized handshake"));
  }
  absl::StatusOr<wire::Request> req = wire::DecodeRequest(absl::MakeConstSpan(in_, n));
  if (!req.ok()) return refuse(L4Error(L4Errno::kBadProto, req.status().message()));
  const auto* hello = std::get_if<wire::Hello>(&*req);
  if (hello == nullptr) {
    return refuse(L4Error(L4Errno::kBadProto, "the first message must be Hello"));
  }
  role_ = hello->role;
  wire::HelloReply reply;
  reply.role = role_;
  reply.client_id = id_;
  reply.pool_base = server_.pool().range().first.addr().value();
  if (role_ == wire::Role::kClient) {
    absl::StatusOr<std::shared_ptr<Storage>> storage =
        Storage::Create(server_.pool().range(), absl::StrCat("l4re_ma-client-", id_));
    if (!storage.ok()) {
      ReplyError(Op::kHello, L4Error(L4Errno::kNoMem, storage.status().message()));
      return false;
    }
    storage_ = *std::move(storage);
    root_ = LocalAllocator::CreateRoot(server_.shared_pool(), storage_, server_.client_quota());
    caps_ = std::make_unique<CapTable>(kSlots, kFirstAllocatable);
    caps_->Install(wire::kRootHandle, root_);
    reply.storage_bytes = server_.pool().range().pages.bytes();
  }
  // Visible in the statistics before the client learns it is connected.
  server_.Publish(this);
  const size_t bytes = wire::EncodeReply<wire::Hello>(reply, absl::MakeSpan(out_));
  if (wire::SendPacket(fd_, out_, bytes, storage_ ? storage_->fd() : -1) != 0) return false;
  SetTimeout(fd_, SO_RCVTIMEO, absl::ZeroDuration());  // clients may idle for ever
  return true;
}

void Session::Teardown() {
  state_.store(State::kClosing, std::memory_order_release);
  open_ = false;
  // The peer sees the end at once, even if we closed on our side; draining
  // what it sent keeps a final error reply from turning into ECONNRESET.
  shutdown(fd_, SHUT_RDWR);
  while (recv(fd_, in_, sizeof(in_), MSG_DONTWAIT) > 0) {
  }
  pending_runs_.clear();
  pending_runs_.shrink_to_fit();
  // Everything the client held: dataspaces, sub-allocators, the root.
  if (caps_ != nullptr) caps_->ClearAll();
  if (root_ != nullptr) root_->Destroy();
  server_.OnSessionClosed(this);
}

void Session::Dispatch(size_t bytes) {
  absl::StatusOr<wire::Request> req = wire::DecodeRequest(absl::MakeConstSpan(in_, bytes));
  if (!req.ok()) {
    protocol_errors_.fetch_add(1, std::memory_order_relaxed);
    server_.CountProtocolError();
    ReplyError(wire::ReplyOpFor(absl::MakeConstSpan(in_, bytes)),
               L4Error(L4Errno::kBadProto, req.status().message()));
    return;
  }
  const Op op = std::visit([](const auto& m) { return std::decay_t<decltype(m)>::kOp; }, *req);
  if (op != Op::kDsMapMore && pending_pos_ < pending_runs_.size()) {
    // A map continuation was abandoned.
    pending_runs_.clear();
    pending_pos_ = 0;
  }
  if (role_ == wire::Role::kObserver && op != Op::kServerStats && op != Op::kHello) {
    if (op != Op::kDsUnmap) {
      ReplyError(op, L4Error(L4Errno::kPerm, "an observer connection may only ask for statistics"));
    }
    return;
  }
  std::visit([this](const auto& m) { Handle(m); }, *req);
}

// ---- Replies ----

template <typename Req>
void Session::Reply(const absl::StatusOr<typename Req::ReplyType>& result) {
  if (!result.ok()) {
    ReplyError(Req::kOp, result.status());
    return;
  }
  Send(wire::EncodeReply<Req>(*result, absl::MakeSpan(out_)));
}

void Session::ReplyError(Op op, const absl::Status& status) {
  long result = ToL4Result(status);
  if (result >= 0) result = -static_cast<long>(L4Errno::kInval);
  Send(wire::EncodeErrorReply(op, result, status.message(), absl::MakeSpan(out_)));
}

void Session::Send(size_t bytes) {
  // A reply is the last thing a request does: from here on this session
  // waits for nobody, so others may wait for it (AwaitHungUpPeers).
  if (state_.load(std::memory_order_relaxed) == State::kBusy) {
    state_.store(State::kIdle, std::memory_order_release);
  }
  if (!open_ || bytes == 0) return;
  if (wire::SendPacket(fd_, out_, bytes) != 0) open_ = false;  // the client is gone or stuck
}

// ---- Lookups ----

absl::StatusOr<std::shared_ptr<MemAllocator>> Session::AllocatorAt(wire::Handle h) const {
  std::shared_ptr<Object> o = caps_->Get(h.value);
  if (o == nullptr) {
    return IpcError(IpcCode::kNotExistent, absl::StrCat("handle ", h.value, " is empty"));
  }
  if (o->kind() != ObjectKind::kMemAllocator) {
    return L4Error(L4Errno::kBadProto,
                   absl::StrCat("handle ", h.value, " names an object of another kind"));
  }
  return std::static_pointer_cast<MemAllocator>(std::move(o));
}

absl::StatusOr<std::shared_ptr<Dataspace>> Session::DataspaceAt(wire::Handle h) const {
  std::shared_ptr<Object> o = caps_->Get(h.value);
  if (o == nullptr) {
    return IpcError(IpcCode::kNotExistent, absl::StrCat("handle ", h.value, " is empty"));
  }
  if (o->kind() != ObjectKind::kDataspace) {
    return L4Error(L4Errno::kBadProto,
                   absl::StrCat("handle ", h.value, " names an object of another kind"));
  }
  return std::static_pointer_cast<Dataspace>(std::move(o));
}

// ---- Handlers ----

void Session::Handle(const wire::Hello&) {
  protocol_errors_.fetch_add(1, std::memory_order_relaxed);
  server_.CountProtocolError();
  ReplyError(Op::kHello, L4Error(L4Errno::kBadProto, "the handshake is done already"));
}

void Session::Handle(const wire::AllocRequest& m) {
  using R = wire::AllocRequest;
  absl::StatusOr<std::shared_ptr<MemAllocator>> a = AllocatorAt(m.allocator);
  if (!a.ok()) return Reply<R>(a.status());
  const std::optional<uint32_t> slot = caps_->AllocSlot();
  if (!slot) {
    return Reply<R>(L4Error(L4Errno::kNoMem, absl::StrCat("the client holds ", kSlots - kFirstAllocatable,
                                                          " handles already")));
  }
  absl::StatusOr<std::shared_ptr<Dataspace>> ds = (*a)->Alloc(m.size, m.flags, m.align);
  if (!ds.ok()) {
    caps_->FreeSlot(*slot);
    return Reply<R>(ds.status());
  }
  caps_->Install(*slot, *std::move(ds));
  Reply<R>(wire::HandleReply{wire::Handle{*slot}});
}

void Session::Handle(const wire::FreeRequest& m) {
  using R = wire::FreeRequest;
  absl::StatusOr<std::shared_ptr<MemAllocator>> a = AllocatorAt(m.allocator);
  if (!a.ok()) return Reply<R>(a.status());
  absl::StatusOr<std::shared_ptr<Dataspace>> ds = DataspaceAt(m.dataspace);
  if (!ds.ok()) return Reply<R>(L4Error(L4Errno::kInval, "the handle holds no dataspace"));
  if (absl::Status s = (*a)->Free(**ds); !s.ok()) return Reply<R>(s);
  // The dataspace is dead; its handle goes with it (the client's proxy
  // forgets it on success).
  caps_->FreeSlot(m.dataspace.value);
  Reply<R>(wire::EmptyReply{});
}

void Session::Handle(const wire::CreateSubRequest& m) {
  using R = wire::CreateSubRequest;
  absl::StatusOr<std::shared_ptr<MemAllocator>> a = AllocatorAt(m.allocator);
  if (!a.ok()) return Reply<R>(a.status());
  const std::optional<uint32_t> slot = caps_->AllocSlot();
  if (!slot) return Reply<R>(L4Error(L4Errno::kNoMem, "the client holds too many handles"));
  absl::StatusOr<std::shared_ptr<MemAllocator>> child = (*a)->CreateSubAllocator(m.limit);
  if (!child.ok()) {
    caps_->FreeSlot(*slot);
    return Reply<R>(child.status());
  }
  caps_->Install(*slot, *std::move(child));
  Reply<R>(wire::HandleReply{wire::Handle{*slot}});
}

void Session::Handle(const wire::AllocStatsRequest& m) {
  using R = wire::AllocStatsRequest;
  absl::StatusOr<std::shared_ptr<MemAllocator>> a = AllocatorAt(m.allocator);
  if (!a.ok()) return Reply<R>(a.status());
  absl::StatusOr<AllocatorStats> s = (*a)->Stats();
  if (!s.ok()) return Reply<R>(s.status());
  Reply<R>(wire::AllocStatsReply{s->quota, s->quota_used, s->mem_limit, s->mem_used, s->mem_free});
}

void Session::Handle(const wire::PoolInfoRequest& m) {
  using R = wire::PoolInfoRequest;
  absl::StatusOr<std::shared_ptr<MemAllocator>> a = AllocatorAt(m.allocator);
  if (!a.ok()) return Reply<R>(a.status());
  server_.AwaitHungUpPeers(this);
  absl::StatusOr<PoolInfo> p = (*a)->Pool();
  if (!p.ok()) return Reply<R>(p.status());
  wire::PoolInfoReply r;
  r.backend.Set(p->backend);
  r.base = p->base;
  r.size = p->size;
  r.free_bytes = p->free_bytes;
  r.largest_free_run = p->largest_free_run;
  Reply<R>(r);
}

void Session::Handle(const wire::ReleaseRequest& m) {
  using R = wire::ReleaseRequest;
  if (caps_->Get(m.handle.value) == nullptr) {
    return Reply<R>(IpcError(IpcCode::kNotExistent, absl::StrCat("handle ", m.handle.value,
                                                                 " is empty")));
  }
  caps_->FreeSlot(m.handle.value);
  Reply<R>(wire::EmptyReply{});
}

void Session::Handle(const wire::DsInfoRequest& m) {
  using R = wire::DsInfoRequest;
  absl::StatusOr<std::shared_ptr<Dataspace>> ds = DataspaceAt(m.ds);
  if (!ds.ok()) return Reply<R>(ds.status());
  absl::StatusOr<DataspaceInfo> info = (*ds)->Info();
  if (!info.ok()) return Reply<R>(info.status());
  Reply<R>(wire::DsInfoReply{info->size, info->flags, info->contiguous,
                             static_cast<uint8_t>(info->page_shift)});
}

void Session::Handle(const wire::DsPhysRequest& m) {
  using R = wire::DsPhysRequest;
  absl::StatusOr<std::shared_ptr<Dataspace>> ds = DataspaceAt(m.ds);
  if (!ds.ok()) return Reply<R>(ds.status());
  absl::StatusOr<PhysExtent> e = (*ds)->Phys(m.offset);
  if (!e.ok()) return Reply<R>(e.status());
  Reply<R>(wire::DsPhysReply{e->addr.value(), e->size});
}

void Session::Handle(const wire::DsAllocateRequest& m) {
  using R = wire::DsAllocateRequest;
  absl::StatusOr<std::shared_ptr<Dataspace>> ds = DataspaceAt(m.ds);
  if (!ds.ok()) return Reply<R>(ds.status());
  if (absl::Status s = (*ds)->Allocate(m.offset, m.size); !s.ok()) return Reply<R>(s);
  Reply<R>(wire::EmptyReply{});
}

void Session::Handle(const wire::DsClearRequest& m) {
  using R = wire::DsClearRequest;
  absl::StatusOr<std::shared_ptr<Dataspace>> ds = DataspaceAt(m.ds);
  if (!ds.ok()) return Reply<R>(ds.status());
  if (absl::Status s = (*ds)->Clear(m.offset, m.size); !s.ok()) return Reply<R>(s);
  Reply<R>(wire::EmptyReply{});
}

void Session::Handle(const wire::DsCopyInRequest& m) {
  using R = wire::DsCopyInRequest;
  absl::StatusOr<std::shared_ptr<Dataspace>> dst = DataspaceAt(m.dst);
  if (!dst.ok()) return Reply<R>(dst.status());
  absl::StatusOr<std::shared_ptr<Dataspace>> src = DataspaceAt(m.src);
  if (!src.ok()) return Reply<R>(L4Error(L4Errno::kInval, "the source is not a dataspace"));
  if (absl::Status s = (*dst)->CopyIn(m.dst_offset, **src, m.src_offset, m.size); !s.ok()) {
    return Reply<R>(s);
  }
  Reply<R>(wire::EmptyReply{});
}

void Session::Handle(const wire::DsMapRequest& m) {
  using R = wire::DsMapRequest;
  if (!PageAligned(m.offset) || !PageAligned(m.size)) {
    return Reply<R>(L4Error(L4Errno::kInval, "map offset and size must be page-aligned"));
  }
  absl::StatusOr<std::shared_ptr<Dataspace>> ds = DataspaceAt(m.ds);
  if (!ds.ok()) return Reply<R>(ds.status());
  absl::StatusOr<MapResult> mapped = (*ds)->Map(m.offset, m.size);
  if (!mapped.ok()) return Reply<R>(mapped.status());
  if (mapped->runs.size() <= wire::kMaxMapRuns) {
    // The common case: one reply, straight from the result.
    Reply<R>(wire::DsMapReply{false, wire::Array<MapRun>(absl::MakeConstSpan(mapped->runs))});
    return;
  }
  pending_runs_ = std::move(mapped->runs);
  pending_pos_ = 0;
  SendMapPart<R>();
}

void Session::Handle(const wire::DsMapMoreRequest&) {
  using R = wire::DsMapMoreRequest;
  if (pending_pos_ >= pending_runs_.size()) {
    return Reply<R>(L4Error(L4Errno::kInval, "no map in progress"));
  }
  SendMapPart<R>();
}

template <typename Req>
void Session::SendMapPart() {
  const size_t count = std::min(wire::kMaxMapRuns, pending_runs_.size() - pending_pos_);
  const bool more = pending_pos_ + count < pending_runs_.size();
  Reply<Req>(wire::DsMapReply{
      more, wire::Array<MapRun>(absl::MakeConstSpan(pending_runs_).subspan(pending_pos_, count))});
  pending_pos_ += count;
  if (!more) {
    pending_pos_ = 0;
    pending_runs_.clear();
    if (pending_runs_.capacity() > 16 * wire::kMaxMapRuns) pending_runs_.shrink_to_fit();
  }
}

void Session::Handle(const wire::DsUnmapNotice& m) {
  absl::StatusOr<std::shared_ptr<Dataspace>> ds = DataspaceAt(m.ds);
  if (!ds.ok()) {
    // A notice gets no answer; count the stale or bad handle (our client
    // never sends one: handles are released under its connection lock).
    protocol_errors_.fetch_add(1, std::memory_order_relaxed);
    server_.CountProtocolError();
    return;
  }
  (*ds)->Unmap();
}

void Session::Handle(const wire::ServerStatsRequest& m) {
  server_.AwaitHungUpPeers(this);
  wire::ServerStatsReply reply;
  reply.next_client = server_.StatsPage(m.first_client, wire::MaxClientStatsPerReply(), &reply,
                                        &stats_scratch_);
  reply.sessions = wire::Array<wire::ClientStats>(absl::MakeConstSpan(stats_scratch_));
  Reply<wire::ServerStatsRequest>(reply);
}

// ---- Statistics ----

wire::ClientStats Session::Stats() const {
  wire::ClientStats s;
  s.client_id = id_;
  s.pid = peer_.pid;
  s.uid = peer_.uid;
  s.role = role_;
  s.requests = requests_.load(std::memory_order_relaxed);
  s.protocol_errors = protocol_errors_.load(std::memory_order_relaxed);
  if (caps_ != nullptr) s.handles = static_cast<uint32_t>(caps_->occupied());
  if (root_ != nullptr) {
    if (absl::StatusOr<AllocatorStats> a = root_->Stats(); a.ok()) {
      s.quota = a->quota;
      s.quota_used = a->quota_used;
      s.mem_used = a->mem_used;
    }
  }
  if (storage_ != nullptr) {
    struct stat st;
    if (fstat(storage_->fd(), &st) == 0) s.storage_resident = uint64_t(st.st_blocks) * 512;
  }
  return s;
}

}  // namespace l4re_ma
