// Test helper: a memd client that speaks raw bytes, for feeding the server
// exactly what a test wants (valid requests, garbage, anything).
#ifndef L4RE_MA_TESTS_SERVER_RAW_CLIENT_H_
#define L4RE_MA_TESTS_SERVER_RAW_CLIENT_H_

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "core/wire/protocol.h"
#include "gtest/gtest.h"

namespace l4re_ma::testing {

using Bytes = std::vector<uint8_t>;

template <typename Req>
Bytes EncodeBytes(const Req& m) {
  Bytes b(wire::kMaxMessageBytes);
  b.resize(wire::EncodeRequest(m, absl::MakeSpan(b)));
  return b;
}

class RawClient {
 public:
  // Connects; with `hello`, shakes hands as `role` and fails unless the
  // server accepts.
  static absl::StatusOr<std::unique_ptr<RawClient>> Connect(
      const std::string& socket, bool hello = true, wire::Role role = wire::Role::kClient);
  ~RawClient();

  int fd() const { return fd_; }
  int storage_fd() const { return storage_fd_; }
  uint64_t storage_bytes() const { return storage_bytes_; }
  uint32_t client_id() const { return client_id_; }

  // Sends one packet; false if the send failed.
  bool Send(const Bytes& packet);
  // Receives one packet: its bytes, or an empty vector at end of stream or
  // after `timeout`.
  Bytes Recv(absl::Duration timeout = absl::Seconds(5));
  // The next reply, decoded (views point into an internal buffer valid
  // until the next call).
  absl::StatusOr<wire::Reply> RecvReply(absl::Duration timeout = absl::Seconds(5));
  // Sends and receives the reply.
  template <typename Req>
  absl::StatusOr<wire::Reply> Call(const Req& m) {
    if (!Send(EncodeBytes(m))) return absl::UnavailableError("send failed");
    return RecvReply();
  }
  // Calls and expects success: the payload.
  template <typename Req>
  typename Req::ReplyType CallOk(const Req& m);
  // Whether the server closed the connection (within `timeout`).
  bool ClosedByServer(absl::Duration timeout = absl::Seconds(5));
  // Shakes hands (when connected with hello = false).
  absl::Status Hello(wire::Role role = wire::Role::kClient);

 private:
  explicit RawClient(int fd) : fd_(fd) {}
  int fd_;
  int storage_fd_ = -1;
  uint64_t storage_bytes_ = 0;
  uint32_t client_id_ = 0;
  Bytes last_;
};

template <typename Req>
typename Req::ReplyType RawClient::CallOk(const Req& m) {
  absl::StatusOr<wire::Reply> r = Call(m);
  if (!r.ok() || r->result != 0 || r->op != Req::kOp) {
    ADD_FAILURE() << wire::OpName(Req::kOp) << " failed: "
                  << (r.ok() ? std::string(r->text) : r.status().ToString());
    return typename Req::ReplyType{};
  }
  return std::get<typename Req::ReplyType>(r->payload);
}

}  // namespace l4re_ma::testing

#endif  // L4RE_MA_TESTS_SERVER_RAW_CLIENT_H_
