// Fuzzes the memd wire codec (core/wire/protocol.h): decoding arbitrary
// bytes as a request and as a reply never crashes, and whatever decodes
// re-encodes to exactly the same bytes (the codec is canonical, so nothing a
// client sends can mean two things).
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <variant>
#include <vector>

#include "core/wire/protocol.h"

namespace {

long decoded = 0, rejected = 0;
struct Report {
  ~Report() {
    std::fprintf(stderr, "wire_fuzzer: %ld packets decoded and re-encoded identically, %ld "
                 "rejected\n", decoded, rejected);
  }
} report;

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace l4re_ma::wire;
  const absl::Span<const uint8_t> bytes(data, size);
  absl::StatusOr<Request> request = DecodeRequest(bytes);
  if (request.ok()) {
    std::vector<uint8_t> out(kMaxMessageBytes);
    const size_t n = std::visit(
        [&](const auto& m) { return EncodeRequest(m, absl::MakeSpan(out)); }, *request);
    if (n != size || std::memcmp(out.data(), data, size) != 0) {
      std::fprintf(stderr, "wire_fuzzer: a request of %zu bytes re-encodes differently\n", size);
      std::abort();
    }
    ++decoded;
  } else {
    ++rejected;
  }
  (void)DecodeReply(bytes);  // must not crash on anything
  return 0;
}
