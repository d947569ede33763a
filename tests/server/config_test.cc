// memd's settings: config file syntax, precedence of the command line,
// and every bad value refused with a message naming the flag and value.
#include "server/config.h"

#include <string>

#include "gtest/gtest.h"

namespace l4re_ma {
namespace {

SettingMap Cmd(std::initializer_list<std::pair<std::string, std::string>> kv) {
  SettingMap m;
  for (const auto& [k, v] : kv) m[k] = Setting{v, ""};
  return m;
}

TEST(ConfigTest, EveryLineFormAndCommentIsUnderstood) {
  absl::StatusOr<SettingMap> m = ParseConfig(
      "# memd settings\n"
      "\n"
      "backend = buddy\n"
      "  pool_size=64M   # trailing comment\n"
      "--max_clients=7\n"
      "socket = \"@memd#1\"\n"
      "client_quota = 1G\n",
      "memd.conf");
  ASSERT_TRUE(m.ok()) << m.status();
  EXPECT_EQ(m->at("backend").value, "buddy");
  EXPECT_EQ(m->at("pool_size").value, "64M");
  EXPECT_EQ(m->at("pool_size").origin, "memd.conf:4");
  EXPECT_EQ(m->at("max_clients").value, "7");
  EXPECT_EQ(m->at("socket").value, "@memd#1") << "'#' inside a value is no comment";
  EXPECT_EQ(m->at("client_quota").value, "1G");
}

TEST(ConfigTest, BadLinesAreRefusedNamingFileAndLine) {
  for (const char* text : {"pool_size 64M\n", "\n\nfrobnicate = 3\n", "backend =\n"}) {
    absl::StatusOr<SettingMap> m = ParseConfig(text, "x.conf");
    ASSERT_FALSE(m.ok()) << text;
    EXPECT_NE(m.status().message().find("x.conf:"), absl::string_view::npos) << m.status();
  }
  EXPECT_NE(ParseConfig("frobnicate = 3", "f").status().message().find("pool_size"),
            absl::string_view::npos)
      << "lists the known settings";
}

TEST(ConfigTest, DefaultsApplyAndTheCommandLineOverridesTheFile) {
  absl::StatusOr<ServerOptions> o = ResolveSettings(Cmd({{"socket", "@s"}}), {});
  ASSERT_TRUE(o.ok()) << o.status();
  EXPECT_EQ(o->backend, "buddy");
  EXPECT_EQ(o->pool_bytes, 256u << 20);
  EXPECT_EQ(o->client_quota, 256u << 20) << "the pool size";
  EXPECT_EQ(o->max_clients, 128u);
  absl::StatusOr<SettingMap> file =
      ParseConfig("pool_size = 64M\nmax_clients = 3\nsocket = @file\n", "f");
  ASSERT_TRUE(file.ok());
  o = ResolveSettings(Cmd({{"pool_size", "32M"}}), *file);
  ASSERT_TRUE(o.ok()) << o.status();
  EXPECT_EQ(o->pool_bytes, 32u << 20) << "command line wins";
  EXPECT_EQ(o->client_quota, 32u << 20);
  EXPECT_EQ(o->max_clients, 3u) << "from the file";
  EXPECT_EQ(o->socket_path, "@file");
}

TEST(ConfigTest, EveryBadValueIsRefusedNamingTheFlagAndTheValue) {
  struct Case {
    std::string name, value, expect;
  } cases[] = {
      {"pool_size", "12abc", "--pool_size=12abc"},
      {"pool_size", "1000", "--pool_size=1000"},
      {"pool_size", "0", "--pool_size=0"},
      {"pool_size", "9T", "--pool_size=9T"},
      {"backend", "nosuch", "buddy"},  // lists the registered ones
      {"backend", "nosuch", "--backend=nosuch"},
      {"socket", "/" + std::string(200, 'p'), "--socket=/ppp"},
      {"client_quota", "-1", "--client_quota=-1"},
      {"client_quota", "lots", "--client_quota=lots"},
      {"max_clients", "0", "--max_clients=0"},
      {"max_clients", "many", "--max_clients=many"},
      {"max_clients", "1000000", "--max_clients=1000000"},
  };
  for (const Case& c : cases) {
    SettingMap cmd = Cmd({{"socket", "@s"}});
    cmd[c.name] = Setting{c.value, ""};
    absl::StatusOr<ServerOptions> o = ResolveSettings(cmd, {});
    ASSERT_FALSE(o.ok()) << c.name << "=" << c.value;
    EXPECT_NE(o.status().message().find(c.expect), absl::string_view::npos) << o.status();
  }
  absl::StatusOr<ServerOptions> o = ResolveSettings({}, {});
  ASSERT_FALSE(o.ok());
  EXPECT_NE(o.status().message().find("--socket"), absl::string_view::npos) << o.status();
  // A bad value from the file says where it came from.
  absl::StatusOr<SettingMap> file = ParseConfig("\nmax_clients = -5\n", "memd.conf");
  ASSERT_TRUE(file.ok());
  o = ResolveSettings(Cmd({{"socket", "@s"}}), *file);
  ASSERT_FALSE(o.ok());
  EXPECT_NE(o.status().message().find("memd.conf:2"), absl::string_view::npos) << o.status();
}

TEST(ConfigTest, StatisticsReportsReadAsTextAndJson) {
  wire::ServerStatsSnapshot s;
  s.pool.backend = "buddy";
  s.pool.size = 256 << 20;
  s.pool.free_bytes = 128 << 20;
  s.clients = 1;
  s.max_clients = 128;
  wire::ClientStats c;
  c.client_id = 4;
  c.pid = 1234;
  c.quota = 256 << 20;
  c.mem_used = 3 << 20;
  s.sessions.push_back(c);
  const std::string text = FormatServerStats(s, false);
  EXPECT_NE(text.find("256 MiB"), std::string::npos) << text;
  EXPECT_NE(text.find("1234"), std::string::npos) << text;
  const std::string json = FormatServerStats(s, true);
  EXPECT_NE(json.find("\"backend\": \"buddy\""), std::string::npos) << json;
  EXPECT_NE(json.find("\"pid\": 1234"), std::string::npos) << json;
  EXPECT_NE(json.find("\"mem_used\": 3145728"), std::string::npos) << json;
}

}  // namespace
}  // namespace l4re_ma
