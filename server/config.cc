#include "server/config.h"

#include <algorithm>
#include <cstdint>

#include "absl/strings/ascii.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "core/backend_registry.h"
#include "core/byte_size.h"
#include "core/phys_pool.h"
#include "core/types.h"
#include "core/wire/transport.h"

namespace l4re_ma {
namespace {

constexpr uint32_t kMaxMaxClients = 16384;

// "--name=value (from FILE:LINE)": how messages name a setting.
std::string Named(absl::string_view name, const Setting& s) {
  return absl::StrCat("--", name, "=", s.value, s.origin.empty() ? "" : " (from ", s.origin,
                      s.origin.empty() ? "" : ")");
}

absl::Status Bad(absl::string_view name, const Setting& s, absl::string_view why) {
  return absl::InvalidArgumentError(absl::StrCat(Named(name, s), ": ", why));
}

// Drops a comment: '#' at the start or after whitespace.
absl::string_view StripComment(absl::string_view line) {
  for (size_t i = 0; i < line.size(); ++i) {
    if (line[i] == '#' && (i == 0 || absl::ascii_isspace(static_cast<unsigned char>(line[i - 1])))) {
      return line.substr(0, i);
    }
  }
  return line;
}

std::string JsonString(absl::string_view s) {
  std::string out = "\"";
  for (char c : s) {
    if (c == '"' || c == '\\') {
      out.push_back('\\');
      out.push_back(c);
    } else if (static_cast<unsigned char>(c) < 0x20) {
      absl::StrAppendFormat(&out, "\\u%04x", c);
    } else {
      out.push_back(c);
    }
  }
  out.push_back('"');
  return out;
}

}  // namespace

const std::vector<std::string>& SettingNames() {
  static const auto* names = new std::vector<std::string>{"backend", "pool_size", "socket",
                                                          "client_quota", "max_clients"};
  return *names;
}

absl::StatusOr<SettingMap> ParseConfig(absl::string_view text, absl::string_view file) {
  SettingMap out;
  int line_no = 0;
  for (absl::string_view raw : absl::StrSplit(text, '\n')) {
    ++line_no;
    absl::string_view line = absl::StripAsciiWhitespace(StripComment(raw));
    if (line.empty()) continue;
    const std::string where = absl::StrCat(file, ":", line_no);
    if (absl::ConsumePrefix(&line, "--")) line = absl::StripLeadingAsciiWhitespace(line);
    const size_t eq = line.find('=');
    if (eq == absl::string_view::npos) {
      return absl::InvalidArgumentError(
          absl::StrCat(where, ": expected 'name = value', got '", line, "'"));
    }
    const std::string name(absl::StripAsciiWhitespace(line.substr(0, eq)));
    absl::string_view value = absl::StripAsciiWhitespace(line.substr(eq + 1));
    if (value.size() >= 2 && value.front() == '"' && value.back() == '"') {
      value = value.substr(1, value.size() - 2);
    }
    const auto& names = SettingNames();
    if (std::find(names.begin(), names.end(), name) == names.end()) {
      return absl::InvalidArgumentError(absl::StrCat(where, ": unknown setting '", name,
                                                     "' (known: ", absl::StrJoin(names, ", "),
                                                     ")"));
    }
    if (value.empty()) {
      return absl::InvalidArgumentError(absl::StrCat(where, ": '", name, "' has no value"));
    }
    out[name] = Setting{std::string(value), where};
  }
  return out;
}

absl::StatusOr<ServerOptions> ResolveSettings(const SettingMap& command_line,
                                              const SettingMap& file) {
  auto get = [&](const std::string& name, absl::string_view fallback) -> Setting {
    if (auto it = command_line.find(name); it != command_line.end()) return it->second;
    if (auto it = file.find(name); it != file.end()) return it->second;
    return Setting{std::string(fallback), "the default"};
  };
  ServerOptions o;

  const Setting backend = get("backend", "buddy");
  if (absl::Status s = BackendRegistry::Global().CheckName(backend.value); !s.ok()) {
    return Bad("backend", backend, s.message());
  }
  o.backend = backend.value;

  const Setting pool = get("pool_size", "256M");
  absl::StatusOr<uint64_t> pool_bytes = ParseByteSize(pool.value);
  if (!pool_bytes.ok()) return Bad("pool_size", pool, pool_bytes.status().message());
  if (*pool_bytes % kPageSize != 0) {
    return Bad("pool_size", pool, "not a multiple of the 4 KiB page size");
  }
  if (*pool_bytes > kMaxPoolBytes) {
    return Bad("pool_size", pool, absl::StrCat("more than the maximum of ", FormatBytes(kMaxPoolBytes)));
  }
  o.pool_bytes = *pool_bytes;

  const Setting socket = get("socket", "");
  if (socket.value.empty()) {
    return absl::InvalidArgumentError(
        "--socket=PATH is required (or 'socket = PATH' in the config file)");
  }
  if (absl::StatusOr<wire::UnixAddress> a = wire::ParseSocketPath(socket.value); !a.ok()) {
    return Bad("socket", socket, a.status().message());
  }
  o.socket_path = socket.value;

  const Setting quota = get("client_quota", "");
  if (!quota.value.empty()) {
    absl::StatusOr<uint64_t> q = ParseByteSize(quota.value);
    if (!q.ok()) return Bad("client_quota", quota, q.status().message());
    o.client_quota = *q;
  } else {
    o.client_quota = o.pool_bytes;
  }

  const Setting clients = get("max_clients", "128");
  uint32_t max_clients = 0;
  if (!absl::SimpleAtoi(clients.value, &max_clients) || max_clients < 1 ||
      max_clients > kMaxMaxClients) {
    return Bad("max_clients", clients,
               absl::StrCat("not a whole number from 1 to ", kMaxMaxClients));
  }
  o.max_clients = max_clients;
  return o;
}

std::string FormatServerStats(const wire::ServerStatsSnapshot& s, bool json) {
  std::string out;
  if (json) {
    absl::StrAppend(&out, "{\"pool\": {\"backend\": ", JsonString(s.pool.backend),
                    ", \"base\": ", s.pool.base, ", \"size\": ", s.pool.size,
                    ", \"free\": ", s.pool.free_bytes,
                    ", \"largest_free_run\": ", s.pool.largest_free_run,
                    ", \"free_runs\": ", s.free_runs, ", \"free_superpages\": ", s.free_superpages,
                    "},\n \"clients\": ", s.clients, ", \"max_clients\": ", s.max_clients,
                    ", \"clients_served\": ", s.clients_served,
                    ", \"clients_refused\": ", s.clients_refused,
                    ", \"protocol_errors\": ", s.protocol_errors, ",\n \"sessions\": [");
    for (size_t i = 0; i < s.sessions.size(); ++i) {
      const wire::ClientStats& c = s.sessions[i];
      absl::StrAppend(&out, i == 0 ? "\n  " : ",\n  ", "{\"id\": ", c.client_id,
                      ", \"pid\": ", c.pid, ", \"uid\": ", c.uid, ", \"role\": \"",
                      c.role == wire::Role::kClient ? "client" : "observer",
                      "\", \"quota\": ", c.quota, ", \"quota_used\": ", c.quota_used,
                      ", \"mem_used\": ", c.mem_used,
                      ", \"storage_resident\": ", c.storage_resident,
                      ", \"handles\": ", c.handles, ", \"requests\": ", c.requests,
                      ", \"protocol_errors\": ", c.protocol_errors, "}");
    }
    absl::StrAppend(&out, "]}\n");
    return out;
  }
  absl::StrAppendFormat(&out,
                        "memd pool: %s (%s at %#x): %s free, largest free run %s, %u free runs, "
                        "%u free superpages\n",
                        FormatBytes(s.pool.size), s.pool.backend, s.pool.base,
                        FormatBytes(s.pool.free_bytes), FormatBytes(s.pool.largest_free_run),
                        s.free_runs, s.free_superpages);
  absl::StrAppendFormat(&out,
                        "clients: %u live (at most %u), %u served, %u refused, %u protocol "
                        "errors\n",
                        s.clients, s.max_clients, s.clients_served, s.clients_refused,
                        s.protocol_errors);
  if (s.sessions.empty()) return out;
  absl::StrAppendFormat(&out, "%6s %8s %-8s %12s %12s %12s %12s %8s %10s %6s\n", "id", "pid",
                        "role", "quota", "quota used", "memory", "resident", "handles",
                        "requests", "errors");
  for (const wire::ClientStats& c : s.sessions) {
    absl::StrAppendFormat(&out, "%6u %8d %-8s %12s %12s %12s %12s %8u %10u %6u\n", c.client_id,
                          c.pid, c.role == wire::Role::kClient ? "client" : "observer",
                          FormatBytes(c.quota), FormatBytes(c.quota_used),
                          FormatBytes(c.mem_used), FormatBytes(c.storage_resident), c.handles,
                          c.requests, c.protocol_errors);
  }
  return out;
}

}  // namespace l4re_ma
