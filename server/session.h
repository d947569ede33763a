// server/session.h: one client connection of memd (server/server.h).
//
// A Session owns what the client holds: a CapTable of server-side handles
// (handle = slot; kRootHandle is the root allocator, slots from 2 are handed
// out lowest first), the client's own Storage (a memfd over the whole pool
// frame range, passed to the client at the handshake), and the root
// LocalAllocator with the client quota. Every request is checked by the
// codec (core/wire), then by the LocalAllocator/LocalDataspace it reaches,
// exactly as in process.
//
// Its thread runs Run(): handshake, then recv/dispatch/send until the peer
// goes away or the server shuts the socket down, then teardown (everything
// the client held goes back to the pool). Receive and send buffers are part
// of the object: the transport allocates nothing per request.
//
// Thread-safety: Run() is the only code touching the session's objects,
// except Stats() (any thread, with the server's registry lock held) and
// ShutdownSocket().
#ifndef L4RE_MA_SERVER_SESSION_H_
#define L4RE_MA_SERVER_SESSION_H_

#include <sys/socket.h>

#include <atomic>
#include <cstdint>
#include <memory>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/types/span.h"
#include "core/cap_table.h"
#include "core/dataspace.h"
#include "core/local_allocator.h"
#include "core/storage.h"
#include "core/wire/protocol.h"

namespace l4re_ma {

class Server;

class Session {
 public:
  // Slots of a client's capability table.
  static constexpr uint32_t kSlots = wire::kHandleLimit;
  static constexpr uint32_t kFirstAllocatable = wire::kRootHandle + 1;

  enum class State : int { kHandshake, kIdle, kBusy, kClosing, kClosed };

  // Takes ownership of the connected socket `fd`.
  Session(Server& server, int fd, uint32_t id);
  Session(const Session&) = delete;
  Session& operator=(const Session&) = delete;
  ~Session();

  // Serves the connection to its end and tears down (the session's thread).
  void Run();
  // Wakes Run() out of recv/send for good (server shutdown).
  void ShutdownSocket();

  uint32_t id() const { return id_; }
  int fd() const { return fd_; }
  State state() const { return state_.load(std::memory_order_acquire); }
  void set_closed() { state_.store(State::kClosed, std::memory_order_release); }
  // REQUIRES: published by the server (the handshake is done).
  wire::ClientStats Stats() const;

 private:
  // Reads Hello and answers it; false if the connection is to be closed.
  bool Handshake();
  void Dispatch(size_t bytes);
  void Teardown();

  // Request handlers: each sends exactly one reply (or none for a notice).
  void Handle(const wire::Hello& m);
  void Handle(const wire::AllocRequest& m);
  void Handle(const wire::FreeRequest& m);
  void Handle(const wire::CreateSubRequest& m);
  void Handle(const wire::AllocStatsRequest& m);
  void Handle(const wire::PoolInfoRequest& m);
  void Handle(const wire::ReleaseRequest& m);
  void Handle(const wire::DsInfoRequest& m);
  void Handle(const wire::DsPhysRequest& m);
  void Handle(const wire::DsAllocateRequest& m);
  void Handle(const wire::DsClearRequest& m);
  void Handle(const wire::DsCopyInRequest& m);
  void Handle(const wire::DsMapRequest& m);
  void Handle(const wire::DsMapMoreRequest& m);
  void Handle(const wire::DsUnmapNotice& m);
  void Handle(const wire::ServerStatsRequest& m);

  // The object behind a handle: an IPC error (-2004) for an empty slot,
  // -L4_EBADPROTO for an object of another kind.
  absl::StatusOr<std::shared_ptr<MemAllocator>> AllocatorAt(wire::Handle h) const;
  absl::StatusOr<std::shared_ptr<Dataspace>> DataspaceAt(wire::Handle h) const;

  // Sends the reply to a request of type Req: its payload, or the error.
  template <typename Req>
  void Reply(const absl::StatusOr<typename Req::ReplyType>& result);
  void ReplyError(wire::Op op, const absl::Status& status);
  // Sends the next part of pending_runs_ as the reply to Req.
  template <typename Req>
  void SendMapPart();
  void Send(size_t bytes);

  Server& server_;
  const int fd_;
  const uint32_t id_;
  ucred peer_{};
  wire::Role role_ = wire::Role::kClient;
  std::atomic<State> state_{State::kHandshake};
  bool open_ = true;  // false once a send failed or the handshake was refused

  std::shared_ptr<Storage> storage_;
  std::shared_ptr<LocalAllocator> root_;
  std::unique_ptr<CapTable> caps_;

  // The runs of the last Map still to send (kDsMapMore).
  std::vector<MapRun> pending_runs_;
  size_t pending_pos_ = 0;
  std::vector<wire::ClientStats> stats_scratch_;

  std::atomic<uint64_t> requests_{0};
  std::atomic<uint64_t> protocol_errors_{0};

  alignas(8) uint8_t in_[wire::kMaxMessageBytes];
  alignas(8) uint8_t out_[wire::kMaxMessageBytes];
};

}  // namespace l4re_ma

#endif  // L4RE_MA_SERVER_SESSION_H_
