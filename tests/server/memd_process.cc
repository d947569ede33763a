#include "tests/server/memd_process.h"

#include <fcntl.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/random.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <sstream>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "core/wire/transport.h"

namespace l4re_ma::testing {
namespace {

std::string ReadFile(const std::string& path) {
  std::ifstream in(path);
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

std::string SelfPath() {
  char buf[4096];
  const ssize_t n = readlink("/proc/self/exe", buf, sizeof(buf) - 1);
  return n > 0 ? std::string(buf, n) : std::string();
}

bool Exists(const std::string& path) { return access(path.c_str(), X_OK) == 0; }

// fork + exec memd; stdout/stderr to the given fds (-1: inherit).
pid_t Spawn(const std::vector<std::string>& args, int out_fd, int err_fd) {
  const std::string path = MemdPath();
  std::vector<std::string> argv_s = {path};
  argv_s.insert(argv_s.end(), args.begin(), args.end());
  std::vector<char*> argv;
  for (std::string& a : argv_s) argv.push_back(a.data());
  argv.push_back(nullptr);
  const pid_t parent = getpid();
  const pid_t pid = fork();
  if (pid != 0) return pid;
  // Child: die with the test.
  prctl(PR_SET_PDEATHSIG, SIGKILL);
  if (getppid() != parent) _exit(127);
  if (out_fd >= 0) dup2(out_fd, STDOUT_FILENO);
  if (err_fd >= 0) dup2(err_fd, STDERR_FILENO);
  // A client environment must not leak into the server.
  unsetenv("L4RE_MA_SERVER");
  execv(path.c_str(), argv.data());
  std::fprintf(stderr, "exec %s: %s\n", path.c_str(), std::strerror(errno));
  _exit(127);
}

}  // namespace

std::string MemdPath() {
  const std::string rel = "l4re_ma/server/memd";
  for (const char* var : {"TEST_SRCDIR", "RUNFILES_DIR"}) {
    if (const char* dir = std::getenv(var)) {
      const std::string p = absl::StrCat(dir, "/", rel);
      if (Exists(p)) return p;
    }
  }
  const std::string self = SelfPath();
  if (std::string p = absl::StrCat(self, ".runfiles/", rel); Exists(p)) return p;
  return rel;
}

std::string UniqueSocketName(absl::string_view tag) {
  // Bazel runs tests in parallel sandboxes that share the abstract
  // namespace but not pid numbers (each test may be pid 12): add a random
  // part.
  static std::atomic<int> counter{0};
  uint64_t nonce = 0;
  if (getrandom(&nonce, sizeof(nonce), 0) != sizeof(nonce)) nonce = absl::ToUnixNanos(absl::Now());
  return absl::StrCat("@l4re_ma-", tag, "-", getpid(), "-", absl::Hex(nonce), "-",
                      counter.fetch_add(1));
}

bool Connectable(const std::string& socket_path) {
  absl::StatusOr<wire::UnixAddress> a = wire::ParseSocketPath(socket_path);
  if (!a.ok()) return false;
  const int fd = ::socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0);
  const bool ok = connect(fd, reinterpret_cast<const sockaddr*>(&a->addr), a->len) == 0;
  close(fd);
  return ok;
}

int WaitFor(pid_t pid, absl::Duration timeout) {
  const absl::Time deadline = absl::Now() + timeout;
  for (;;) {
    int status = 0;
    const pid_t r = waitpid(pid, &status, WNOHANG);
    if (r == pid) {
      if (WIFEXITED(status)) return WEXITSTATUS(status);
      if (WIFSIGNALED(status)) return 128 + WTERMSIG(status);
      return -1;
    }
    if (r < 0 || absl::Now() > deadline) return -1;
    absl::SleepFor(absl::Milliseconds(2));
  }
}

absl::StatusOr<std::unique_ptr<MemdProcess>> MemdProcess::Start(std::vector<std::string> args,
                                                                std::string socket,
                                                                std::string stderr_file) {
  args.push_back(absl::StrCat("--socket=", socket));
  int err_fd = -1;
  if (!stderr_file.empty()) {
    err_fd = open(stderr_file.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  }
  const pid_t pid = Spawn(args, -1, err_fd);
  if (err_fd >= 0) close(err_fd);
  if (pid < 0) return absl::InternalError(absl::StrCat("fork: ", std::strerror(errno)));
  std::unique_ptr<MemdProcess> p(new MemdProcess(pid, socket));
  const absl::Time deadline = absl::Now() + absl::Seconds(15);
  while (!Connectable(socket)) {
    int status;
    if (waitpid(pid, &status, WNOHANG) == pid) {
      p->pid_ = -1;
      return absl::InternalError(absl::StrCat("memd (", MemdPath(), ") exited with status ",
                                              status, " before listening"));
    }
    if (absl::Now() > deadline) return absl::DeadlineExceededError("memd did not start");
    absl::SleepFor(absl::Milliseconds(5));
  }
  return p;
}

MemdProcess::~MemdProcess() {
  if (pid_ > 0) {
    kill(pid_, SIGKILL);
    WaitFor(pid_, absl::Seconds(10));
  }
}

int MemdProcess::Stop(int sig, absl::Duration timeout) {
  if (pid_ <= 0) return -1;
  kill(pid_, sig);
  const int status = WaitFor(pid_, timeout);
  if (status >= 0) pid_ = -1;
  return status;
}

RunResult RunMemd(const std::vector<std::string>& args, absl::Duration timeout) {
  RunResult result;
  char out_tmpl[] = "/tmp/memd-out-XXXXXX";
  char err_tmpl[] = "/tmp/memd-err-XXXXXX";
  const int out_fd = mkstemp(out_tmpl);
  const int err_fd = mkstemp(err_tmpl);
  const pid_t pid = Spawn(args, out_fd, err_fd);
  close(out_fd);
  close(err_fd);
  result.exit_code = WaitFor(pid, timeout);
  if (result.exit_code < 0) {
    kill(pid, SIGKILL);
    WaitFor(pid, absl::Seconds(5));
  }
  result.out = ReadFile(out_tmpl);
  result.err = ReadFile(err_tmpl);
  unlink(out_tmpl);
  unlink(err_tmpl);
  return result;
}

}  // namespace l4re_ma::testing
