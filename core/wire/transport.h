// core/wire/transport.h: the socket calls both ends of the memd protocol
// use: addresses, and sending and receiving one SOCK_SEQPACKET packet with
// an optional file descriptor.
//
// Socket paths: a leading '@' names the Linux abstract namespace ("@memd"
// is "\0memd"); anything else is a file system path. Either must fit in
// sockaddr_un::sun_path (107 bytes); longer paths are refused, never cut.
//
// Every send uses MSG_NOSIGNAL: a vanished peer is an error return, never a
// SIGPIPE for the process. EINTR is retried.
#ifndef L4RE_MA_CORE_WIRE_TRANSPORT_H_
#define L4RE_MA_CORE_WIRE_TRANSPORT_H_

#include <sys/socket.h>
#include <sys/types.h>
#include <sys/un.h>

#include <cstddef>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace l4re_ma::wire {

struct UnixAddress {
  sockaddr_un addr{};
  socklen_t len = 0;
  bool abstract = false;
};

// The address of `path`; InvalidArgument naming the path if it is empty or
// does not fit.
absl::StatusOr<UnixAddress> ParseSocketPath(absl::string_view path);

// Sends one packet; passes `pass_fd` along with it when >= 0. Returns 0 or
// an errno value.
int SendPacket(int fd, const void* data, size_t size, int pass_fd = -1);

// Receives one packet into `buf`. Returns the packet's full length (larger
// than `capacity` when it was cut: the rest is lost), 0 at end of stream,
// or -errno. With `received_fd`, accepts one descriptor (close-on-exec) and
// stores it there (-1 if none came); extra descriptors are closed.
ssize_t RecvPacket(int fd, void* buf, size_t capacity, int* received_fd = nullptr);

}  // namespace l4re_ma::wire

#endif  // L4RE_MA_CORE_WIRE_TRANSPORT_H_
