// Test helpers: run the real memd binary (a data dependency of the test) as
// a child process, and find it in the runfiles.
#ifndef L4RE_MA_TESTS_SERVER_MEMD_PROCESS_H_
#define L4RE_MA_TESTS_SERVER_MEMD_PROCESS_H_

#include <sys/types.h>

#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"

namespace l4re_ma::testing {

// The memd binary in the test's runfiles ($TEST_SRCDIR or argv0.runfiles).
std::string MemdPath();

// A socket name unique to this call: "@l4re_ma-<tag>-<pid>-<random>-<n>"
// (abstract namespace: nothing to clean up, no sun_path length trouble).
std::string UniqueSocketName(absl::string_view tag);

// Whether something accepts connections at `socket`.
bool Connectable(const std::string& socket);

class MemdProcess {
 public:
  // Starts memd with `args` plus --socket=`socket` and waits until it
  // accepts connections. With `stderr_file`, memd's stderr goes there.
  static absl::StatusOr<std::unique_ptr<MemdProcess>> Start(std::vector<std::string> args,
                                                            std::string socket,
                                                            std::string stderr_file = "");
  ~MemdProcess();  // SIGKILLs it if still running

  pid_t pid() const { return pid_; }
  const std::string& socket() const { return socket_; }
  // Sends `sig` and waits: the exit status as a shell would report it
  // (128 + signal when killed), or -1 if it does not end within `timeout`.
  int Stop(int sig, absl::Duration timeout = absl::Seconds(10));

 private:
  MemdProcess(pid_t pid, std::string socket) : pid_(pid), socket_(std::move(socket)) {}
  pid_t pid_;
  std::string socket_;
};

struct RunResult {
  int exit_code = -1;
  std::string out;
  std::string err;
};

// Runs memd with `args` to completion (at most `timeout`).
RunResult RunMemd(const std::vector<std::string>& args,
                  absl::Duration timeout = absl::Seconds(10));

// Waits for `pid` at most `timeout`: its status as a shell reports it, or -1.
int WaitFor(pid_t pid, absl::Duration timeout);

}  // namespace l4re_ma::testing

#endif  // L4RE_MA_TESTS_SERVER_MEMD_PROCESS_H_
