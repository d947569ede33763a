// memd: the l4re_ma allocator server (see server/server.h).
//
//   memd --socket=PATH [--backend=NAME] [--pool_size=SIZE] [--client_quota=SIZE]
//        [--max_clients=N] [--config=FILE]
//   memd --stats --socket=PATH [--json]
//
// Serves until SIGTERM or SIGINT (clean shutdown, exit 0); SIGUSR1 dumps the
// statistics to stderr. Bad settings exit with status 2 and a message naming
// the flag and the value; a failure to start (say, the socket is taken)
// exits with 1.
#include <signal.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include "absl/flags/flag.h"
#include "absl/flags/parse.h"
#include "absl/flags/usage.h"
#include "absl/strings/str_cat.h"
#include "core/backend_registry.h"
#include "core/byte_size.h"
#include "core/remote_allocator.h"
#include "server/config.h"
#include "server/server.h"

ABSL_FLAG(std::string, backend, "",
          "page backend, one of the registered names (default: buddy)");
ABSL_FLAG(std::string, pool_size, "",
          "bytes of emulated physical memory, with K/M/G/T suffixes (default: 256M)");
ABSL_FLAG(std::string, socket, "",
          "the AF_UNIX socket to listen on; '@name' is the abstract namespace (required)");
ABSL_FLAG(std::string, client_quota, "",
          "quota of each client's root allocator, with suffixes (default: the pool size)");
ABSL_FLAG(std::string, max_clients, "",
          "connections served at once; more are refused (default: 128)");
ABSL_FLAG(std::string, config, "",
          "a file of settings, one 'name = value' per line; command-line flags override it");
ABSL_FLAG(bool, stats, false,
          "connect to the memd at --socket, print its statistics and exit");
ABSL_FLAG(bool, json, false, "with --stats: print JSON");

namespace l4re_ma {
namespace {

constexpr int kExitBadSetting = 2;

int RunStats(const std::string& socket, bool json) {
  RemoteConnection::Options options;
  options.role = wire::Role::kObserver;
  absl::StatusOr<std::shared_ptr<RemoteConnection>> conn =
      RemoteConnection::Connect(socket, options);
  if (!conn.ok()) {
    std::fprintf(stderr, "memd --stats: %s\n", std::string(conn.status().message()).c_str());
    return 1;
  }
  absl::StatusOr<wire::ServerStatsSnapshot> stats = (*conn)->ServerStats();
  if (!stats.ok()) {
    std::fprintf(stderr, "memd --stats: %s\n", std::string(stats.status().message()).c_str());
    return 1;
  }
  std::fputs(FormatServerStats(*stats, json).c_str(), stdout);
  return 0;
}

int Main(int argc, char** argv) {
  absl::SetProgramUsageMessage(absl::StrCat(
      "the l4re_ma allocator server.\n\n"
      "  memd --socket=PATH [--backend=NAME] [--pool_size=SIZE] [--client_quota=SIZE]\n"
      "       [--max_clients=N] [--config=FILE]\n"
      "  memd --stats --socket=PATH [--json]\n\n"
      "Clients reach it with L4RE_MA_SERVER=PATH. SIGTERM/SIGINT stop it cleanly;\n"
      "SIGUSR1 prints statistics to stderr.\n\nBackends:\n",
      BackendRegistry::Global().Describe()));
  std::vector<char*> rest = absl::ParseCommandLine(argc, argv);
  if (rest.size() > 1) {
    std::fprintf(stderr, "memd: unexpected argument '%s' (see --help)\n", rest[1]);
    return kExitBadSetting;
  }
  SettingMap command_line;
  const std::string values[] = {absl::GetFlag(FLAGS_backend), absl::GetFlag(FLAGS_pool_size),
                                absl::GetFlag(FLAGS_socket), absl::GetFlag(FLAGS_client_quota),
                                absl::GetFlag(FLAGS_max_clients)};
  for (size_t i = 0; i < SettingNames().size(); ++i) {
    if (!values[i].empty()) command_line[SettingNames()[i]] = Setting{values[i], ""};
  }
  SettingMap file;
  if (const std::string config = absl::GetFlag(FLAGS_config); !config.empty()) {
    std::ifstream in(config);
    if (!in) {
      std::fprintf(stderr, "memd: --config=%s: cannot read it: %s\n", config.c_str(),
                   std::strerror(errno));
      return kExitBadSetting;
    }
    std::stringstream text;
    text << in.rdbuf();
    absl::StatusOr<SettingMap> parsed = ParseConfig(text.str(), config);
    if (!parsed.ok()) {
      std::fprintf(stderr, "memd: --config=%s: %s\n", config.c_str(),
                   std::string(parsed.status().message()).c_str());
      return kExitBadSetting;
    }
    file = *std::move(parsed);
  }

  if (absl::GetFlag(FLAGS_stats)) {
    std::string socket = absl::GetFlag(FLAGS_socket);
    if (socket.empty() && file.count("socket") != 0) socket = file["socket"].value;
    if (socket.empty()) {
      std::fprintf(stderr, "memd: --stats needs --socket=PATH\n");
      return kExitBadSetting;
    }
    return RunStats(socket, absl::GetFlag(FLAGS_json));
  }

  absl::StatusOr<ServerOptions> options = ResolveSettings(command_line, file);
  if (!options.ok()) {
    std::fprintf(stderr, "memd: %s\n", std::string(options.status().message()).c_str());
    return kExitBadSetting;
  }

  // Signals are taken synchronously by this thread; every thread the server
  // starts inherits the mask.
  sigset_t signals;
  sigemptyset(&signals);
  sigaddset(&signals, SIGTERM);
  sigaddset(&signals, SIGINT);
  sigaddset(&signals, SIGUSR1);
  pthread_sigmask(SIG_BLOCK, &signals, nullptr);
  signal(SIGPIPE, SIG_IGN);

  absl::StatusOr<std::unique_ptr<Server>> server = Server::Start(*options);
  if (!server.ok()) {
    std::fprintf(stderr, "memd: cannot start: %s\n",
                 std::string(server.status().message()).c_str());
    return 1;
  }
  std::fprintf(stderr,
               "memd: serving %s of %s on '%s'; client quota %s; at most %u clients\n",
               FormatBytes((*server)->pool().range().pages.bytes()).c_str(),
               (*server)->pool().backend_name().c_str(), options->socket_path.c_str(),
               FormatBytes((*server)->client_quota()).c_str(), options->max_clients);
  for (;;) {
    int sig = 0;
    if (sigwait(&signals, &sig) != 0) continue;
    if (sig == SIGUSR1) {
      std::fputs(FormatServerStats((*server)->Stats(), false).c_str(), stderr);
      continue;
    }
    break;
  }
  (*server)->Shutdown();
  std::fprintf(stderr, "memd: stopped\n");
  return 0;
}

}  // namespace
}  // namespace l4re_ma

int main(int argc, char** argv) { return l4re_ma::Main(argc, argv); }
