#include "tests/server/raw_client.h"

#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "core/wire/transport.h"

namespace l4re_ma::testing {

absl::StatusOr<std::unique_ptr<RawClient>> RawClient::Connect(const std::string& socket,
                                                              bool hello, wire::Role role) {
  absl::StatusOr<wire::UnixAddress> a = wire::ParseSocketPath(socket);
  if (!a.ok()) return a.status();
  const int fd = ::socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0);
  if (connect(fd, reinterpret_cast<const sockaddr*>(&a->addr), a->len) != 0) {
    close(fd);
    return absl::UnavailableError(absl::StrCat("connect ", socket));
  }
  std::unique_ptr<RawClient> c(new RawClient(fd));
  if (hello) {
    if (absl::Status s = c->Hello(role); !s.ok()) return s;
  }
  return c;
}

absl::Status RawClient::Hello(wire::Role role) {
  wire::Hello h;
  h.role = role;
  if (!Send(EncodeBytes(h))) return absl::UnavailableError("send hello");
  pollfd p{fd_, POLLIN, 0};
  if (poll(&p, 1, 5000) != 1) return absl::DeadlineExceededError("no hello reply");
  last_.resize(wire::kMaxMessageBytes);
  const ssize_t n = wire::RecvPacket(fd_, last_.data(), last_.size(), &storage_fd_);
  if (n <= 0) return absl::UnavailableError("closed during the handshake");
  last_.resize(n);
  absl::StatusOr<wire::Reply> r = wire::DecodeReply(last_);
  if (!r.ok()) return r.status();
  if (r->result != 0) return absl::UnavailableError(std::string(r->text));
  const auto& hr = std::get<wire::HelloReply>(r->payload);
  storage_bytes_ = hr.storage_bytes;
  client_id_ = hr.client_id;
  return absl::OkStatus();
}

RawClient::~RawClient() {
  close(fd_);
  if (storage_fd_ >= 0) close(storage_fd_);
}

bool RawClient::Send(const Bytes& packet) {
  return wire::SendPacket(fd_, packet.data(), packet.size()) == 0;
}

Bytes RawClient::Recv(absl::Duration timeout) {
  pollfd p{fd_, POLLIN, 0};
  if (poll(&p, 1, static_cast<int>(absl::ToInt64Milliseconds(timeout))) != 1) return {};
  Bytes b(wire::kMaxMessageBytes);
  const ssize_t n = wire::RecvPacket(fd_, b.data(), b.size());
  if (n <= 0) return {};
  b.resize(std::min<size_t>(n, b.size()));
  return b;
}

absl::StatusOr<wire::Reply> RawClient::RecvReply(absl::Duration timeout) {
  last_ = Recv(timeout);
  if (last_.empty()) return absl::UnavailableError("no reply (closed or timed out)");
  return wire::DecodeReply(last_);
}

bool RawClient::ClosedByServer(absl::Duration timeout) {
  const absl::Time deadline = absl::Now() + timeout;
  while (absl::Now() < deadline) {
    pollfd p{fd_, POLLIN, 0};
    if (poll(&p, 1, 50) != 1) continue;
    char buf[wire::kMaxMessageBytes];
    const ssize_t n = recv(fd_, buf, sizeof(buf), MSG_DONTWAIT);
    if (n == 0) return true;
    if (n < 0 && errno != EAGAIN) return true;
  }
  return false;
}

}  // namespace l4re_ma::testing
