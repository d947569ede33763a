#include "core/wire/transport.h"

#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"

namespace l4re_ma::wire {

absl::StatusOr<UnixAddress> ParseSocketPath(absl::string_view path) {
  UnixAddress a;
  a.addr.sun_family = AF_UNIX;
  constexpr size_t kRoom = sizeof(a.addr.sun_path) - 1;
  if (path.empty() || path == "@") {
    return absl::InvalidArgumentError(absl::StrCat("socket path '", path, "' is empty"));
  }
  a.abstract = path[0] == '@';
  absl::string_view name = a.abstract ? path.substr(1) : path;
  if (name.size() > kRoom) {
    return absl::InvalidArgumentError(absl::StrCat("socket path '", path, "' is ", name.size(),
                                                   " bytes long; at most ", kRoom,
                                                   " fit in sun_path"));
  }
  if (name.find('\0') != absl::string_view::npos) {
    return absl::InvalidArgumentError(absl::StrCat("socket path '", path, "' contains a NUL"));
  }
  if (a.abstract) {
    a.addr.sun_path[0] = '\0';
    std::memcpy(a.addr.sun_path + 1, name.data(), name.size());
    a.len = static_cast<socklen_t>(offsetof(sockaddr_un, sun_path) + 1 + name.size());
  } else {
    std::memcpy(a.addr.sun_path, name.data(), name.size());
    a.addr.sun_path[name.size()] = '\0';
    a.len = static_cast<socklen_t>(offsetof(sockaddr_un, sun_path) + name.size() + 1);
  }
  return a;
}

int SendPacket(int fd, const void* data, size_t size, int pass_fd) {
  ssize_t n;
  if (pass_fd < 0) {
    do {
      n = send(fd, data, size, MSG_NOSIGNAL);
    } while (n < 0 && errno == EINTR);
  } else {
    iovec iov{const_cast<void*>(data), size};
    alignas(cmsghdr) char control[CMSG_SPACE(sizeof(int))] = {};
    msghdr msg{};
    msg.msg_iov = &iov;
    msg.msg_iovlen = 1;
    msg.msg_control = control;
    msg.msg_controllen = sizeof(control);
    cmsghdr* c = CMSG_FIRSTHDR(&msg);
    c->cmsg_level = SOL_SOCKET;
    c->cmsg_type = SCM_RIGHTS;
    c->cmsg_len = CMSG_LEN(sizeof(int));
    std::memcpy(CMSG_DATA(c), &pass_fd, sizeof(int));
    do {
      n = sendmsg(fd, &msg, MSG_NOSIGNAL);
    } while (n < 0 && errno == EINTR);
  }
  if (n < 0) return errno;
  if (static_cast<size_t>(n) != size) return EMSGSIZE;
  return 0;
}

ssize_t RecvPacket(int fd, void* buf, size_t capacity, int* received_fd) {
  ssize_t n;
  if (received_fd == nullptr) {
    do {
      n = recv(fd, buf, capacity, MSG_TRUNC);
    } while (n < 0 && errno == EINTR);
    return n < 0 ? -errno : n;
  }
  *received_fd = -1;
  iovec iov{buf, capacity};
  // Room for a few descriptors, so that extra ones are seen and closed.
  alignas(cmsghdr) char control[CMSG_SPACE(4 * sizeof(int))] = {};
  msghdr msg{};
  msg.msg_iov = &iov;
  msg.msg_iovlen = 1;
  msg.msg_control = control;
  msg.msg_controllen = sizeof(control);
  do {
    n = recvmsg(fd, &msg, MSG_TRUNC | MSG_CMSG_CLOEXEC);
  } while (n < 0 && errno == EINTR);
  if (n < 0) return -errno;
  for (cmsghdr* c = CMSG_FIRSTHDR(&msg); c != nullptr; c = CMSG_NXTHDR(&msg, c)) {
    if (c->cmsg_level != SOL_SOCKET || c->cmsg_type != SCM_RIGHTS) continue;
    const size_t count = (c->cmsg_len - CMSG_LEN(0)) / sizeof(int);
    for (size_t i = 0; i < count; ++i) {
      int got;
      std::memcpy(&got, CMSG_DATA(c) + i * sizeof(int), sizeof(int));
      if (*received_fd < 0) {
        *received_fd = got;
      } else {
        close(got);
      }
    }
  }
  return n;
}

}  // namespace l4re_ma::wire
