// The in-process default: L4RE_MA_BACKEND, L4RE_MA_POOL_SIZE and
// L4RE_MA_QUOTA are read on the first allocator call. Each case runs in a
// fresh child process (the environment is set up once per process), and the
// parent never touches the allocator.
#include <sys/wait.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <functional>
#include <string>
#include <utility>
#include <vector>

#include "tests/api/api_test_util.h"

namespace l4re_ma::testing {
namespace {

struct ChildResult {
  int exit_code = -1;
  std::string stderr_text;
};

// Runs `body` in a child with the given environment; its return value is
// the exit code, its stderr is captured.
ChildResult RunInChild(std::vector<std::pair<const char*, const char*>> env,
                       const std::function<int()>& body) {
  int pipe_fds[2];
  if (pipe(pipe_fds) != 0) return {};
  fflush(nullptr);
  pid_t pid = fork();
  if (pid == 0) {
    dup2(pipe_fds[1], STDERR_FILENO);
    close(pipe_fds[0]);
    for (const char* name : {"L4RE_MA_BACKEND", "L4RE_MA_POOL_SIZE", "L4RE_MA_QUOTA",
                             "L4RE_MA_SERVER"}) {
      unsetenv(name);
    }
    for (auto& [name, value] : env) setenv(name, value, 1);
    _exit(body());
  }
  close(pipe_fds[1]);
  ChildResult result;
  char buf[4096];
  ssize_t n;
  while ((n = read(pipe_fds[0], buf, sizeof buf)) > 0) result.stderr_text.append(buf, n);
  close(pipe_fds[0]);
  int status = 0;
  waitpid(pid, &status, 0);
  result.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
  return result;
}

// Exit codes of the child bodies.
constexpr int kOk = 0, kWrongResult = 10, kWrongPool = 11;

int AllocMustFailWithEInvalTwice() {
  l4re_ds_t ds = l4re_util_cap_alloc();
  if (l4re_ma_alloc(4096, ds, 0) != -L4_EINVAL) return kWrongResult;
  if (l4re_ma_alloc(4096, ds, 0) != -L4_EINVAL) return kWrongResult;
  return kOk;
}

TEST(EnvTest, TheDefaultIsBuddyOver256MiB) {
  ChildResult r = RunInChild({}, [] {
    l4re_ma_pool_info_t info{};
    if (l4re_ma_pool_info_srv(l4re_env()->mem_alloc, &info) != 0) return kWrongResult;
    if (std::strcmp(info.backend, "buddy") != 0 || info.size != (256u << 20)) return kWrongPool;
    return kOk;
  });
  EXPECT_EQ(r.exit_code, kOk) << r.stderr_text;
}

TEST(EnvTest, PoolSizeAcceptsSuffixes) {
  ChildResult r = RunInChild({{"L4RE_MA_POOL_SIZE", "64M"}}, [] {
    l4re_ma_pool_info_t info{};
    if (l4re_ma_pool_info_srv(l4re_env()->mem_alloc, &info) != 0) return kWrongResult;
    if (info.size != (64u << 20)) return kWrongPool;
    l4re_ds_t ds = l4re_util_cap_alloc();
    if (l4re_ma_alloc(65L << 20, ds, L4RE_MA_CONTINUOUS) != -L4_ENOMEM) return kWrongResult;
    return kOk;
  });
  EXPECT_EQ(r.exit_code, kOk) << r.stderr_text;
}

TEST(EnvTest, TheBackendIsChosenByName) {
  ChildResult r = RunInChild({{"L4RE_MA_BACKEND", "buddy"}, {"L4RE_MA_POOL_SIZE", "1G"}}, [] {
    l4re_ma_pool_info_t info{};
    if (l4re_ma_pool_info_srv(l4re_env()->mem_alloc, &info) != 0) return kWrongResult;
    return std::strcmp(info.backend, "buddy") == 0 && info.size == (1u << 30) ? kOk : kWrongPool;
  });
  EXPECT_EQ(r.exit_code, kOk) << r.stderr_text;
}

TEST(EnvTest, ABadPoolSizeGivesAClearMessageAndEInval) {
  for (const char* bad : {"12Q", "abc", "0", "-5M", "1000", "99999999999T"}) {
    ChildResult r = RunInChild({{"L4RE_MA_POOL_SIZE", bad}}, AllocMustFailWithEInvalTwice);
    EXPECT_EQ(r.exit_code, kOk) << bad << ": " << r.stderr_text;
    EXPECT_NE(r.stderr_text.find("L4RE_MA_POOL_SIZE"), std::string::npos) << r.stderr_text;
    EXPECT_NE(r.stderr_text.find(bad), std::string::npos) << "names the value: " << r.stderr_text;
    EXPECT_EQ(r.stderr_text.find("l4re_ma:"), r.stderr_text.rfind("l4re_ma:"))
        << "said once: " << r.stderr_text;
  }
}

TEST(EnvTest, AnUnknownBackendListsTheKnownOnes) {
  ChildResult r = RunInChild({{"L4RE_MA_BACKEND", "nonesuch"}}, AllocMustFailWithEInvalTwice);
  EXPECT_EQ(r.exit_code, kOk) << r.stderr_text;
  EXPECT_NE(r.stderr_text.find("nonesuch"), std::string::npos) << r.stderr_text;
  EXPECT_NE(r.stderr_text.find("buddy"), std::string::npos) << "lists the known backends: "
                                                             << r.stderr_text;
}

TEST(EnvTest, ABadQuotaGivesAClearMessage) {
  ChildResult r = RunInChild({{"L4RE_MA_QUOTA", "lots"}}, AllocMustFailWithEInvalTwice);
  EXPECT_EQ(r.exit_code, kOk) << r.stderr_text;
  EXPECT_NE(r.stderr_text.find("L4RE_MA_QUOTA"), std::string::npos) << r.stderr_text;
}

TEST(EnvTest, TheQuotaLimitsWhatCanBeAllocated) {
  ChildResult r = RunInChild({{"L4RE_MA_QUOTA", "1M"}}, [] {
    l4re_ds_t ds = l4re_util_cap_alloc();
    if (l4re_ma_alloc(1 << 20, ds, L4RE_MA_CONTINUOUS) != 0) return kWrongResult;
    l4re_ds_t more = l4re_util_cap_alloc();
    if (l4re_ma_alloc(4096, more, L4RE_MA_CONTINUOUS) != -L4_ENOMEM) return kWrongResult;
    return kOk;
  });
  EXPECT_EQ(r.exit_code, kOk) << r.stderr_text;
}

TEST(EnvTest, OtherCallsWorkWithoutAnAllocator) {
  ChildResult r = RunInChild({{"L4RE_MA_POOL_SIZE", "bad"}}, [] {
    l4_cap_idx_t c = l4re_util_cap_alloc();
    if (l4_is_invalid_cap(c)) return kWrongResult;
    int local;
    if (l4re_rm_detach(&local) != -L4_ENOENT) return kWrongResult;
    return kOk;
  });
  EXPECT_EQ(r.exit_code, kOk) << r.stderr_text;
}

}  // namespace
}  // namespace l4re_ma::testing
