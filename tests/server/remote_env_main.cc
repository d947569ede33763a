// A gtest main that runs the test binary's suites against a real memd:
// unless L4RE_MA_SERVER is set already (a death test's child re-executed,
// say), it starts memd on an abstract socket with the settings the
// in-process allocator would take from L4RE_MA_BACKEND, L4RE_MA_POOL_SIZE
// and L4RE_MA_QUOTA, points L4RE_MA_SERVER at it before any C API call,
// and stops it (SIGTERM, which must exit 0) at the end.
#include <signal.h>

#include <cstdio>
#include <cstdlib>
#include <memory>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "gtest/gtest.h"
#include "tests/server/memd_process.h"

int main(int argc, char** argv) {
  ::testing::InitGoogleTest(&argc, argv);
  std::unique_ptr<l4re_ma::testing::MemdProcess> memd;
  if (std::getenv("L4RE_MA_SERVER") == nullptr) {
    std::vector<std::string> args;
    if (const char* v = std::getenv("L4RE_MA_BACKEND")) args.push_back(absl::StrCat("--backend=", v));
    if (const char* v = std::getenv("L4RE_MA_POOL_SIZE")) {
      args.push_back(absl::StrCat("--pool_size=", v));
    }
    if (const char* v = std::getenv("L4RE_MA_QUOTA")) {
      args.push_back(absl::StrCat("--client_quota=", v));
    }
    auto started = l4re_ma::testing::MemdProcess::Start(
        args, l4re_ma::testing::UniqueSocketName("api"));
    if (!started.ok()) {
      std::fprintf(stderr, "cannot start memd: %s\n", started.status().ToString().c_str());
      return 1;
    }
    memd = *std::move(started);
    setenv("L4RE_MA_SERVER", memd->socket().c_str(), 1);
    std::fprintf(stderr, "running against memd at %s\n", memd->socket().c_str());
  }
  int rc = RUN_ALL_TESTS();
  if (memd != nullptr) {
    const int status = memd->Stop(SIGTERM);
    if (status != 0) {
      std::fprintf(stderr, "memd did not stop cleanly on SIGTERM: status %d\n", status);
      if (rc == 0) rc = 1;
    }
  }
  return rc;
}
