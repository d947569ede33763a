// server/server.h: memd, the allocator as a server process. The Server
// accepts clients on an AF_UNIX SOCK_SEQPACKET socket and gives each a
// Session (server/session.h) with its own storage file, capability table and
// root LocalAllocator over the one shared PhysPool. The wire protocol is in
// core/wire/protocol.h; the client side is core/remote_allocator.h.
//
// Embedding: Server::Start() binds, listens and returns; Shutdown() (or the
// destructor) stops it. server/memd_main.cc wraps it in a binary with flags
// and signal handling; tests embed it directly on an abstract socket.
//
// ## Threading model
//
// - One accept thread: poll()s the listening socket and an eventfd (the
//   stop signal), accepts, refuses connections beyond max_clients with an
//   error reply, and joins the threads of sessions that have ended.
// - One thread per client connection: blocking recv, decode, dispatch into
//   that client's LocalAllocator, encode, send. A request is served on the
//   thread that received it (no queue, no hand-off, no allocation in the
//   transport), which gives the lowest latency; max_clients bounds the
//   threads. A client's requests are strictly sequential.
// - Shared state, each with its own lock: the PhysPool (the backend; one
//   mutex), and the session registry below (mu_: membership, counters, the
//   condition variable sessions signal when they close). Everything else a
//   session touches (its CapTable, Storage, allocators, dataspaces) is its
//   own. Lock order: registry (mu_) -> a session's LocalAllocator ->
//   PhysPool. A session never holds mu_ while it calls into its allocator,
//   except to read statistics.
// - Client death: recv() returns 0 (or ECONNRESET); the session's thread
//   empties its CapTable and destroys its root allocator, which frees every
//   dataspace and sub-allocator and returns all frames to the pool at once.
//   Requests that report pool-wide numbers (PoolInfo, ServerStats) first wait
//   (bounded, 2 s) for the reclamation of sessions whose peers have already
//   hung up, so a client that saw another die (waitpid) sees its memory back.
//   Only sessions that are not inside a request are waited for (idle: their
//   last reply is sent; closing), and a session waits only inside a request,
//   so these waits never form a cycle.
// - Shutdown (SIGTERM/SIGINT in memd): stop accepting, shutdown(2) every
//   client socket (which wakes its thread out of recv or send), join all
//   threads, destroy the sessions, unlink the socket path.
//
// ## Threat model
//
// Trusted: the memd process and binary, its flags/config, the kernel.
// Untrusted: everything a client sends. Defended against:
// - malformed traffic: every packet is size-checked against its op's exact
//   layout and fully validated by core/wire before use (unknown ops, bad
//   handles, enum/boolean values, truncation, oversize); the answer is an
//   error reply, or a closed connection for a failed handshake. A client can
//   only harm its own session.
// - reaching others' memory: handles index the client's own CapTable, so
//   another client's handle numbers name nothing or the client's own
//   objects. Each client's bytes live in its own memfd over the whole pool
//   range; the only descriptor it ever receives is that memfd, which holds
//   nothing but its own dataspaces' bytes (other clients' frames are holes
//   reading zero). Frames move between clients only through the pool, and
//   are zeroed in the old owner's file when freed.
// - resource exhaustion: each client's root allocator has a quota; handles
//   are bounded (65536 per client); clients by max_clients; a client that
//   stops reading its replies only blocks its own thread, which gives up
//   after a send timeout; a connection that never says Hello times out.
// - a client dying at any moment: all it held is reclaimed at once.
// Known limitations:
// - A client can mmap its storage fd raw and touch pages it never attached
//   or that it freed: it sees and changes only its own bytes, but pages it
//   touches outside live dataspaces consume memory beyond its quota (up to
//   the pool size) and break zero-on-free for its own later allocations.
//   The server can audit this: ClientStats::storage_resident (the memfd's
//   allocated blocks, from fstat) against ClientStats::mem_used; a stricter
//   server could punch holes over free frames (or SEEK_DATA-walk the file
//   for data outside live dataspaces) and disconnect clients that exceed
//   their quota this way.
// - Statistics (ServerStats) are visible to every client: usage numbers and
//   peer pids of other clients, never their contents.
// - The Unmap notice is trusted for counting: a client that lies about its
//   mappings only changes whether clearing its own pages releases them.
//
// Thread-safety: Start/Shutdown/Stats may be called from any thread.
#ifndef L4RE_MA_SERVER_SERVER_H_
#define L4RE_MA_SERVER_SERVER_H_

#include <sys/types.h>

#include <atomic>
#include <cstdint>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/container/btree_map.h"
#include "absl/status/statusor.h"
#include "core/sync.h"
#include "absl/time/time.h"
#include "core/phys_pool.h"
#include "core/wire/protocol.h"

namespace l4re_ma {

class Session;

struct ServerOptions {
  // Registered backend name and pool size (ignored when `pool` is given).
  std::string backend = "buddy";
  uint64_t pool_bytes = kDefaultPoolBytes;
  // An existing pool to serve (embedding, tests).
  std::shared_ptr<PhysPool> pool;
  // Where to listen; '@name' is the abstract namespace.
  std::string socket_path;
  // Quota of each client's root allocator; 0: the pool size.
  uint64_t client_quota = 0;
  // Live connections at most (clients and observers); more are refused.
  uint32_t max_clients = 128;
  // A new connection must say Hello within this; a client must accept a
  // reply within this.
  absl::Duration handshake_timeout = absl::Seconds(10);
  absl::Duration send_timeout = absl::Seconds(10);
};

class Server {
 public:
  // Creates the pool, binds and listens, and starts accepting. Errors name
  // the bad value (backend, pool size, socket path) or the failing call.
  static absl::StatusOr<std::unique_ptr<Server>> Start(ServerOptions options);

  Server(const Server&) = delete;
  Server& operator=(const Server&) = delete;
  ~Server();

  // Stops accepting, disconnects every client, reclaims everything and
  // removes the socket path. Idempotent.
  void Shutdown() ABSL_LOCKS_EXCLUDED(mu_);

  // The pool and every live session (all pages of the ServerStats op).
  wire::ServerStatsSnapshot Stats() ABSL_LOCKS_EXCLUDED(mu_);

  const ServerOptions& options() const { return options_; }
  PhysPool& pool() const { return *pool_; }
  const std::shared_ptr<PhysPool>& shared_pool() const { return pool_; }
  uint64_t client_quota() const { return client_quota_; }
  // Live sessions (handshaking, serving or closing).
  uint32_t live_sessions() const ABSL_LOCKS_EXCLUDED(mu_);

  // ---- For sessions ----

  // One page of whole-server statistics: sessions with id >= first_client,
  // at most `max` of them, into *sessions; returns the id to continue from
  // (0 when complete).
  uint32_t StatsPage(uint32_t first_client, size_t max, wire::ServerStatsReply* reply,
                     std::vector<wire::ClientStats>* sessions) ABSL_LOCKS_EXCLUDED(mu_);
  // Waits (briefly, bounded) until every other session whose peer has hung
  // up has reclaimed its memory.
  void AwaitHungUpPeers(const Session* self) ABSL_LOCKS_EXCLUDED(mu_);
  // A session's thread is done with its teardown.
  void OnSessionClosed(Session* session) ABSL_LOCKS_EXCLUDED(mu_);
  // Makes a session's statistics readable by others.
  void Publish(Session* session) ABSL_LOCKS_EXCLUDED(mu_);
  void CountProtocolError() { protocol_errors_.fetch_add(1, std::memory_order_relaxed); }

 private:
  struct Entry {
    std::unique_ptr<Session> session;
    std::thread thread;
    bool published = false;
    bool closed = false;
  };

  Server(ServerOptions options, std::shared_ptr<PhysPool> pool, uint64_t client_quota);
  absl::Status Listen();
  void AcceptLoop();
  void Accept(int fd);
  // Joins the threads of closed sessions and destroys them.
  void ReapClosed() ABSL_LOCKS_EXCLUDED(mu_);
  void FillPoolLocked(wire::ServerStatsReply* reply) const ABSL_SHARED_LOCKS_REQUIRED(mu_);

  const ServerOptions options_;
  const std::shared_ptr<PhysPool> pool_;
  const uint64_t client_quota_;
  int listen_fd_ = -1;
  bool bound_ = false;  // the socket path is ours to unlink
  int wake_fd_ = -1;
  std::thread accept_thread_;
  Mutex shutdown_mu_;
  bool shut_down_ ABSL_GUARDED_BY(shutdown_mu_) = false;
  std::atomic<bool> stopping_{false};

  mutable Mutex mu_;
  CondVar closed_cv_;
  absl::btree_map<uint32_t, Entry> sessions_ ABSL_GUARDED_BY(mu_);
  uint32_t live_ ABSL_GUARDED_BY(mu_) = 0;
  uint32_t next_id_ ABSL_GUARDED_BY(mu_) = 1;
  uint64_t served_ ABSL_GUARDED_BY(mu_) = 0;
  uint64_t refused_ ABSL_GUARDED_BY(mu_) = 0;
  std::atomic<uint64_t> protocol_errors_{0};
};

}  // namespace l4re_ma

#endif  // L4RE_MA_SERVER_SERVER_H_
