// core/remote_allocator.h: the client side of memd. MemAllocator and
// Dataspace proxies that forward every call over a socket to the server,
// where a LocalAllocator per client does the work (server/server.h).
//
// A RemoteConnection is one SOCK_SEQPACKET connection (core/wire/): the
// handshake gives the client its id and its storage file (a memfd holding
// only this client's bytes), which region maps mmap exactly as in process.
// One request is in flight per connection (a mutex): calls from many threads
// are served one after the other, each a blocking send and recv with no
// hand-off between threads.
//
// Failures of the transport are IPC errors (core/errors.h), never hangs:
//   - the server cannot be reached at connect: -2004 (kNotExistent);
//   - the server went away (closed or reset): -2014 on send (kSendAborted),
//     -2015 on receive (kRecvAborted), at once;
//   - the server does not answer within Options::timeout (stopped, say):
//     -2002 / -2003 (kSendTimeout / kRecvTimeout).
// After any transport failure the connection is closed for good: every later
// call fails at once with -2014. A connection inherited through fork() is
// refused in the child (-2004): replies would interleave with the parent's.
// Errors the server reports travel as their negative L4 result plus a short
// message, so a remote call fails exactly as a local one would.
//
// Lifetime mirrors the local objects: releasing the last capability to a
// RemoteDataspace revokes its local mappings, then releases its server
// handle (which kills the server's LocalDataspace). Releasing a
// RemoteAllocator revokes the mappings of every dataspace created through it
// or its sub-allocators, then releases it on the server (which destroys them
// all). Each server handle is owned by exactly one proxy and released once;
// a handle's release and every request naming it are ordered by the
// connection's mutex, so a request never names a slot the server has reused.
//
// Thread-safe. Lock order: region map -> RemoteDataspace/RemoteAllocator
// state -> RemoteConnection::mu_ (innermost; nothing is called under it).
#ifndef L4RE_MA_CORE_REMOTE_ALLOCATOR_H_
#define L4RE_MA_CORE_REMOTE_ALLOCATOR_H_

#include <atomic>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/container/flat_hash_map.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "core/sync.h"
#include "absl/time/time.h"
#include "core/dataspace.h"
#include "core/errors.h"
#include "core/mem_allocator.h"
#include "core/wire/protocol.h"

namespace l4re_ma {

class RemoteAllocator;
class RemoteDataspace;

class RemoteConnection {
 public:
  struct Options {
    // How long one send or receive may take before the call fails with an
    // IPC timeout (and the connection closes).
    absl::Duration timeout = absl::Seconds(5);
    wire::Role role = wire::Role::kClient;
  };

  // Connects to memd at `path` ('@name': abstract namespace) and shakes
  // hands. Errors name the path: an IPC error (-2004) when nothing listens
  // there; the server's own error when it refuses (full, other version).
  static absl::StatusOr<std::shared_ptr<RemoteConnection>> Connect(absl::string_view path,
                                                                   const Options& options);
  static absl::StatusOr<std::shared_ptr<RemoteConnection>> Connect(absl::string_view path) {
    return Connect(path, Options());
  }

  RemoteConnection(const RemoteConnection&) = delete;
  RemoteConnection& operator=(const RemoteConnection&) = delete;
  ~RemoteConnection();

  const std::string& path() const { return path_; }
  uint32_t client_id() const { return client_id_; }
  wire::Role role() const { return role_; }
  // The client's storage file (-1 for an observer); owned by the connection.
  int storage_fd() const { return storage_fd_; }
  uint64_t storage_bytes() const { return storage_bytes_; }
  int socket_fd() const { return fd_; }

  // Whole-server statistics (any role).
  absl::StatusOr<wire::ServerStatsSnapshot> ServerStats() ABSL_LOCKS_EXCLUDED(mu_);

  // Whether a transport failure closed the connection.
  bool broken() const ABSL_LOCKS_EXCLUDED(mu_);

 private:
  friend class RemoteAllocator;
  friend class RemoteDataspace;

  // Holds mu_ for one exchange (or several that belong together), after
  // checking that this process may use the connection.
  class ABSL_SCOPED_LOCKABLE Lock {
   public:
    explicit Lock(RemoteConnection& c) ABSL_EXCLUSIVE_LOCK_FUNCTION(c.mu_);
    ~Lock() ABSL_UNLOCK_FUNCTION();
    const absl::Status& status() const { return status_; }

   private:
    RemoteConnection& c_;
    absl::Status status_;
  };

  RemoteConnection(std::string path, int fd, uint64_t fork_generation);

  // Sends the request and waits for its reply. The reply may refer into
  // recv_buf_: valid until the next exchange.
  template <typename Req>
  absl::StatusOr<wire::Reply> ExchangeLocked(const Req& request)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    const size_t n = wire::EncodeRequest(request, absl::MakeSpan(send_buf_));
    return ExchangeBytesLocked(Req::kOp, n);
  }
  // ExchangeLocked, turning an error reply into its status.
  template <typename Req>
  absl::StatusOr<typename Req::ReplyType> CallLocked(const Req& request)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    absl::StatusOr<wire::Reply> reply = ExchangeLocked(request);
    if (!reply.ok()) return reply.status();
    if (reply->result < 0) return FromL4Result(reply->result, reply->text);
    return std::get<typename Req::ReplyType>(reply->payload);
  }
  absl::StatusOr<wire::Reply> ExchangeBytesLocked(wire::Op op, size_t request_bytes)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Sends a notice (no reply).
  void NotifyLocked(const wire::DsUnmapNotice& notice) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Closes the connection for good after a transport failure; returns the
  // IPC error describing it.
  absl::Status BreakLocked(IpcCode code, absl::string_view what, int err)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  const std::string path_;
  const int fd_;
  const uint64_t fork_generation_;
  int storage_fd_ = -1;
  uint64_t storage_bytes_ = 0;
  uint32_t client_id_ = 0;
  wire::Role role_ = wire::Role::kClient;

  mutable Mutex mu_;
  bool broken_ ABSL_GUARDED_BY(mu_) = false;
  std::string broken_reason_ ABSL_GUARDED_BY(mu_);
  alignas(8) uint8_t send_buf_[wire::kMaxRequestBytes] ABSL_GUARDED_BY(mu_);
  alignas(8) uint8_t recv_buf_[wire::kMaxMessageBytes] ABSL_GUARDED_BY(mu_);
};

// A server handle held by one proxy. `released` is read and written only
// with the connection's mutex held.
struct RemoteHandle {
  wire::Handle handle;
  bool released = false;
};

class RemoteAllocator final : public MemAllocator,
                              public std::enable_shared_from_this<RemoteAllocator> {
 public:
  // Connects to memd at `path`: the client's root allocator.
  static absl::StatusOr<std::shared_ptr<RemoteAllocator>> Connect(
      absl::string_view path, const RemoteConnection::Options& options);
  static absl::StatusOr<std::shared_ptr<RemoteAllocator>> Connect(absl::string_view path) {
    return Connect(path, RemoteConnection::Options());
  }
  ~RemoteAllocator() override;

  // MemAllocator:
  absl::StatusOr<std::shared_ptr<Dataspace>> Alloc(long size, unsigned long flags,
                                                    unsigned long align) override;
  // `ds` must be a dataspace this allocator created (-L4_EPERM otherwise);
  // its local mappings are revoked before the server frees it.
  absl::Status Free(Dataspace& ds) override;
  absl::StatusOr<std::shared_ptr<MemAllocator>> CreateSubAllocator(long limit) override;
  absl::StatusOr<AllocatorStats> Stats() override;
  absl::StatusOr<PoolInfo> Pool() override;
  void OnLastCapabilityReleased() override { Destroy(); }

  // Revokes the local mappings of everything created through this
  // allocator, then destroys it on the server. Idempotent.
  void Destroy();

  const std::shared_ptr<RemoteConnection>& connection() const { return conn_; }
  wire::Handle handle() const { return handle_.handle; }

 private:
  friend class RemoteDataspace;

  RemoteAllocator(std::shared_ptr<RemoteConnection> conn, wire::Handle handle,
                  std::shared_ptr<RemoteAllocator> parent);

  // Marks this allocator and everything it created dead and revokes their
  // local mappings, without telling the server. Returns false if it was
  // dead already.
  bool DieLocally() ABSL_LOCKS_EXCLUDED(mu_);
  void Forget(RemoteDataspace* ds) ABSL_LOCKS_EXCLUDED(mu_);
  void ReleaseHandle();
  absl::Status DeadError() const;
  bool dead() const ABSL_LOCKS_EXCLUDED(mu_);

  const std::shared_ptr<RemoteConnection> conn_;
  RemoteHandle handle_;
  const std::shared_ptr<RemoteAllocator> parent_;

  mutable Mutex mu_;
  bool dead_ ABSL_GUARDED_BY(mu_) = false;
  absl::flat_hash_map<RemoteDataspace*, std::weak_ptr<RemoteDataspace>> dataspaces_
      ABSL_GUARDED_BY(mu_);
  std::vector<std::weak_ptr<RemoteAllocator>> children_ ABSL_GUARDED_BY(mu_);
};

class RemoteDataspace final : public Dataspace {
 public:
  ~RemoteDataspace() override;

  // Dataspace:
  absl::StatusOr<DataspaceInfo> Info() override;
  absl::StatusOr<PhysExtent> Phys(uint64_t offset) override;
  absl::Status Allocate(uint64_t offset, uint64_t size) override;
  absl::Status Clear(uint64_t offset, uint64_t size) override;
  // `src` must be a dataspace of the same connection (-L4_EINVAL otherwise).
  absl::Status CopyIn(uint64_t dst_offset, Dataspace& src, uint64_t src_offset,
                      uint64_t size) override;
  // Runs in the connection's storage file; asks for continuations while the
  // server has more (one mapping is counted for the whole call).
  absl::StatusOr<MapResult> Map(uint64_t offset, uint64_t size) override;
  void Unmap() override;
  void OnLastCapabilityReleased() override;

  const RemoteAllocator& owner() const { return *owner_; }
  wire::Handle handle() const { return handle_.handle; }

 private:
  friend class RemoteAllocator;

  RemoteDataspace(std::shared_ptr<RemoteConnection> conn, std::shared_ptr<RemoteAllocator> owner,
                  wire::Handle handle);

  // Marks this dead and revokes its local mappings (no server call).
  void DieLocally();
  void ReleaseHandle();
  absl::Status DeadError() const;
  // One request about this dataspace, unless it is dead.
  template <typename Req>
  absl::StatusOr<typename Req::ReplyType> Call(const Req& request);

  const std::shared_ptr<RemoteConnection> conn_;
  const std::shared_ptr<RemoteAllocator> owner_;
  RemoteHandle handle_;
  std::atomic<bool> dead_{false};
};

}  // namespace l4re_ma

#endif  // L4RE_MA_CORE_REMOTE_ALLOCATOR_H_
