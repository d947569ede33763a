// server/config.h: memd's settings from the command line and a config
// file, validated into ServerOptions; and the statistics report.
//
// Settings: backend, pool_size, socket, client_quota, max_clients. A config
// file holds one per line, as `name = value`, `name=value` or
// `--name=value`; '#' starts a comment at the start of a line or after
// whitespace; blank lines are ignored. Values given on the command line
// override the file. Every bad value is refused with a message naming the
// flag, the value and where it came from.
#ifndef L4RE_MA_SERVER_CONFIG_H_
#define L4RE_MA_SERVER_CONFIG_H_

#include <map>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "core/wire/protocol.h"
#include "server/server.h"

namespace l4re_ma {

struct Setting {
  std::string value;
  std::string origin;  // "" for the command line, "FILE:LINE" for a config file
};
using SettingMap = std::map<std::string, Setting>;

// The names a config file and the command line may set.
const std::vector<std::string>& SettingNames();

// Parses a config file's text; errors name `file` and the line.
absl::StatusOr<SettingMap> ParseConfig(absl::string_view text, absl::string_view file);

// Command-line settings over file settings over the defaults (backend buddy,
// pool 256M, client quota = pool size, 128 clients); the socket is required.
absl::StatusOr<ServerOptions> ResolveSettings(const SettingMap& command_line,
                                              const SettingMap& file);

// A human-readable report (or JSON) of whole-server statistics.
std::string FormatServerStats(const wire::ServerStatsSnapshot& stats, bool json);

}  // namespace l4re_ma

#endif  // L4RE_MA_SERVER_CONFIG_H_
