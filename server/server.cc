#include "server/server.h"

#include <poll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <limits>
#include <system_error>
#include <utility>

#include "absl/container/inlined_vector.h"
#include "absl/strings/str_cat.h"
#include "core/byte_size.h"
#include "core/errors.h"
#include "core/wire/transport.h"
#include "server/session.h"

namespace l4re_ma {
namespace {

absl::Status Errno(absl::string_view what, int err) {
  return absl::InternalError(absl::StrCat(what, ": ", std::strerror(err)));
}

void Wake(int fd) {
  const uint64_t one = 1;
  ssize_t r;
  do {
    r = write(fd, &one, sizeof(one));
  } while (r < 0 && errno == EINTR);
}

// Closes a connection that got an error reply so that the reply arrives:
// closing with unread data (the client's Hello) would make the client's
// receive fail with ECONNRESET instead. Shutting down first stops more data
// from coming; then what came is drained.
void CloseRefused(int fd) {
  shutdown(fd, SHUT_RDWR);
  char buf[256];
  while (recv(fd, buf, sizeof(buf), MSG_DONTWAIT) > 0) {
  }
  close(fd);
}

}  // namespace

absl::StatusOr<std::unique_ptr<Server>> Server::Start(ServerOptions options) {
  if (absl::StatusOr<wire::UnixAddress> a = wire::ParseSocketPath(options.socket_path); !a.ok()) {
    return a.status();
  }
  if (options.max_clients == 0) {
    return absl::InvalidArgumentError("max_clients must be at least 1");
  }
  std::shared_ptr<PhysPool> pool = options.pool;
  if (pool == nullptr) {
    absl::StatusOr<std::shared_ptr<PhysPool>> p =
        PhysPool::Create(options.backend, options.pool_bytes);
    if (!p.ok()) return p.status();
    pool = *std::move(p);
  }
  const uint64_t quota =
      options.client_quota != 0 ? options.client_quota : pool->range().pages.bytes();
  std::unique_ptr<Server> server(new Server(std::move(options), std::move(pool), quota));
  if (absl::Status s = server->Listen(); !s.ok()) return s;
  server->accept_thread_ = std::thread(&Server::AcceptLoop, server.get());
  return server;
}

Server::Server(ServerOptions options, std::shared_ptr<PhysPool> pool, uint64_t client_quota)
    : options_(std::move(options)), pool_(std::move(pool)), client_quota_(client_quota) {}

Server::~Server() {
  Shutdown();
  if (listen_fd_ >= 0) close(listen_fd_);
  if (wake_fd_ >= 0) close(wake_fd_);
}

absl::Status Server::Listen() {
  absl::StatusOr<wire::UnixAddress> addr = wire::ParseSocketPath(options_.socket_path);
  if (!addr.ok()) return addr.status();
  wake_fd_ = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
  if (wake_fd_ < 0) return Errno("eventfd", errno);
  listen_fd_ = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0);
  if (listen_fd_ < 0) return Errno("socket", errno);
  const sockaddr* sa = reinterpret_cast<const sockaddr*>(&addr->addr);
  if (bind(listen_fd_, sa, addr->len) != 0) {
    int err = errno;
    // A socket file left behind by a memd that died: take it over, unless
    // something still listens there.
    struct stat st;
    if (err == EADDRINUSE && !addr->abstract && lstat(addr->addr.sun_path, &st) == 0 &&
        S_ISSOCK(st.st_mode)) {
      const int probe = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0);
      const bool alive = probe >= 0 && connect(probe, sa, addr->len) == 0;
      const int probe_err = errno;
      if (probe >= 0) close(probe);
      if (alive) {
        return absl::AlreadyExistsError(
            absl::StrCat("another server is listening at '", options_.socket_path, "'"));
      }
      if (probe_err == ECONNREFUSED && unlink(addr->addr.sun_path) == 0 &&
          bind(listen_fd_, sa, addr->len) == 0) {
        err = 0;
      } else {
        err = EADDRINUSE;
      }
    }
    if (err != 0) {
      return absl::UnavailableError(absl::StrCat("cannot bind to '", options_.socket_path,
                                                 "': ", std::strerror(err)));
    }
  }
  bound_ = true;
  if (listen(listen_fd_, SOMAXCONN) != 0) return Errno("listen", errno);
  return absl::OkStatus();
}

void Server::AcceptLoop() {
  pollfd fds[2] = {{listen_fd_, POLLIN, 0}, {wake_fd_, POLLIN, 0}};
  while (!stopping_.load(std::memory_order_acquire)) {
    if (poll(fds, 2, -1) < 0) {
      if (errno == EINTR) continue;
      std::fprintf(stderr, "memd: poll: %s\n", std::strerror(errno));
      return;
    }
    if (fds[1].revents != 0) {
      uint64_t count;
      (void)!read(wake_fd_, &count, sizeof(count));
      if (stopping_.load(std::memory_order_acquire)) break;
      ReapClosed();
    }
    if ((fds[0].revents & POLLIN) != 0) {
      const int fd = accept4(listen_fd_, nullptr, nullptr, SOCK_CLOEXEC);
      if (fd >= 0) {
        Accept(fd);
      } else if (errno == EMFILE || errno == ENFILE || errno == ENOBUFS || errno == ENOMEM) {
        // Out of descriptors: wait for sessions to end rather than spin.
        std::fprintf(stderr, "memd: accept: %s\n", std::strerror(errno));
        poll(&fds[1], 1, 100);
      }
    }
  }
}

void Server::Accept(int fd) {
  MutexLock lock(&mu_);
  if (live_ >= options_.max_clients) {
    ++refused_;
    uint8_t out[wire::kHeaderBytes + 8 + 2 + wire::kMaxErrorText];
    const size_t n = wire::EncodeErrorReply(
        wire::Op::kHello, -static_cast<int64_t>(L4Errno::kNoMem),
        absl::StrCat("memd serves ", live_, " clients already (max_clients ",
                     options_.max_clients, ")"),
        absl::MakeSpan(out));
    // A fresh socket's buffer is empty: this does not block.
    (void)wire::SendPacket(fd, out, n);
    CloseRefused(fd);
    return;
  }
  // Ids ascend (ServerStats pages by them); after a wrap, skip 0 ("from
  // the start") and ids still in use.
  uint32_t id = next_id_++;
  while (id == 0 || sessions_.contains(id)) id = next_id_++;
  Entry& e = sessions_[id];
  e.session = std::make_unique<Session>(*this, fd, id);
  try {
    e.thread = std::thread(&Session::Run, e.session.get());
  } catch (const std::system_error& err) {
    std::fprintf(stderr, "memd: cannot start a session thread: %s\n", err.what());
    sessions_.erase(id);  // closes fd
    ++refused_;
    return;
  }
  ++served_;
  ++live_;
}

void Server::Publish(Session* session) {
  MutexLock lock(&mu_);
  auto it = sessions_.find(session->id());
  if (it != sessions_.end()) it->second.published = true;
}

void Server::OnSessionClosed(Session* session) {
  {
    MutexLock lock(&mu_);
    auto it = sessions_.find(session->id());
    if (it != sessions_.end() && !it->second.closed) {
      it->second.closed = true;
      --live_;
    }
    session->set_closed();
    closed_cv_.SignalAll();
  }
  if (!stopping_.load(std::memory_order_acquire)) Wake(wake_fd_);
}

void Server::ReapClosed() {
  std::vector<Entry> done;
  {
    MutexLock lock(&mu_);
    for (auto it = sessions_.begin(); it != sessions_.end();) {
      if (it->second.closed) {
        done.push_back(std::move(it->second));
        it = sessions_.erase(it);
      } else {
        ++it;
      }
    }
  }
  for (Entry& e : done) {
    if (e.thread.joinable()) e.thread.join();
  }
}

void Server::Shutdown() {
  MutexLock shutdown_lock(&shutdown_mu_);
  if (shut_down_) return;
  shut_down_ = true;
  stopping_.store(true, std::memory_order_release);
  if (accept_thread_.joinable()) {
    Wake(wake_fd_);
    accept_thread_.join();
  }
  std::vector<std::thread*> threads;
  {
    MutexLock lock(&mu_);
    for (auto& [id, e] : sessions_) {
      e.session->ShutdownSocket();
      threads.push_back(&e.thread);
    }
  }
  // Only this thread changes the registry's membership now.
  for (std::thread* t : threads) {
    if (t->joinable()) t->join();
  }
  std::vector<Entry> all;
  {
    MutexLock lock(&mu_);
    for (auto& [id, e] : sessions_) all.push_back(std::move(e));
    sessions_.clear();
  }
  all.clear();  // destroys the sessions: every frame is back in the pool
  if (listen_fd_ >= 0) {
    close(listen_fd_);
    listen_fd_ = -1;
    if (bound_ && options_.socket_path[0] != '@') {
      unlink(options_.socket_path.c_str());
    }
  }
}

uint32_t Server::live_sessions() const {
  MutexLock lock(&mu_);
  return live_;
}

void Server::AwaitHungUpPeers(const Session* self) {
  MutexLock lock(&mu_);
  // Sessions whose peers have hung up but which may not have reclaimed yet:
  // closing ones, and idle ones whose socket shows the hang-up. Busy ones
  // are never waited for (they may be waiting themselves), so waits cannot
  // form a cycle.
  absl::InlinedVector<uint32_t, 8> waiting;
  absl::InlinedVector<pollfd, 16> fds;
  absl::InlinedVector<uint32_t, 16> polled;
  for (const auto& [id, e] : sessions_) {
    if (e.closed || e.session.get() == self) continue;
    switch (e.session->state()) {
      case Session::State::kClosing:
        waiting.push_back(id);
        break;
      case Session::State::kIdle:
        fds.push_back(pollfd{e.session->fd(), POLLRDHUP, 0});
        polled.push_back(id);
        break;
      default:
        break;
    }
  }
  if (!fds.empty() && poll(fds.data(), fds.size(), 0) > 0) {
    for (size_t i = 0; i < fds.size(); ++i) {
      if ((fds[i].revents & (POLLRDHUP | POLLHUP | POLLERR)) != 0) waiting.push_back(polled[i]);
    }
  }
  const absl::Time deadline = absl::Now() + absl::Seconds(2);
  for (uint32_t id : waiting) {
    for (;;) {
      auto it = sessions_.find(id);
      if (it == sessions_.end() || it->second.closed) break;
      if (closed_cv_.WaitWithDeadline(&mu_, deadline)) return;  // timed out: answer anyway
    }
  }
}

void Server::FillPoolLocked(wire::ServerStatsReply* reply) const {
  const BackendStats b = pool_->Stats();
  reply->pool.backend.Set(pool_->backend_name());
  reply->pool.base = pool_->range().first.addr().value();
  reply->pool.size = pool_->range().pages.bytes();
  reply->pool.free_bytes = b.free_pages.bytes();
  reply->pool.largest_free_run = b.largest_free_run.bytes();
  reply->free_runs = b.free_runs;
  reply->free_superpages = b.free_superpages;
  reply->max_clients = options_.max_clients;
  reply->clients = live_;
  reply->clients_served = served_;
  reply->clients_refused = refused_;
  reply->protocol_errors = protocol_errors_.load(std::memory_order_relaxed);
}

uint32_t Server::StatsPage(uint32_t first_client, size_t max, wire::ServerStatsReply* reply,
                           std::vector<wire::ClientStats>* sessions) {
  MutexLock lock(&mu_);
  FillPoolLocked(reply);
  sessions->clear();
  for (auto it = sessions_.lower_bound(first_client); it != sessions_.end(); ++it) {
    if (!it->second.published || it->second.closed) continue;
    if (sessions->size() == max) return it->first;
    sessions->push_back(it->second.session->Stats());
  }
  return 0;
}

wire::ServerStatsSnapshot Server::Stats() {
  wire::ServerStatsSnapshot snap;
  wire::ServerStatsReply reply;
  StatsPage(0, std::numeric_limits<size_t>::max(), &reply, &snap.sessions);
  snap.pool.backend = std::string(reply.pool.backend.view());
  snap.pool.base = reply.pool.base;
  snap.pool.size = reply.pool.size;
  snap.pool.free_bytes = reply.pool.free_bytes;
  snap.pool.largest_free_run = reply.pool.largest_free_run;
  snap.free_runs = reply.free_runs;
  snap.free_superpages = reply.free_superpages;
  snap.max_clients = reply.max_clients;
  snap.clients = reply.clients;
  snap.clients_served = reply.clients_served;
  snap.clients_refused = reply.clients_refused;
  snap.protocol_errors = reply.protocol_errors;
  return snap;
}

}  // namespace l4re_ma
