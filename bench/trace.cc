#include "bench/trace.h"

#include <cerrno>
#include <cstdint>
#include <cstring>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/ascii.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/strings/string_view.h"
#include "absl/strings/strip.h"

namespace l4re_ma {
namespace bench {
namespace {

// Decimal or 0x-hex, no sign, no suffix.
bool ParseNumber(absl::string_view s, uint64_t* out) {
  if (absl::ConsumePrefix(&s, "0x") || absl::ConsumePrefix(&s, "0X")) {
    if (s.empty() || s.size() > 16) return false;
    uint64_t v = 0;
    for (char c : s) {
      if (!absl::ascii_isxdigit(static_cast<unsigned char>(c))) return false;
      const int d = absl::ascii_isdigit(static_cast<unsigned char>(c))
                        ? c - '0'
                        : absl::ascii_tolower(static_cast<unsigned char>(c)) - 'a' + 10;
      v = v * 16 + static_cast<uint64_t>(d);
    }
    *out = v;
    return true;
  }
  if (s.empty()) return false;
  for (char c : s) {
    if (!absl::ascii_isdigit(static_cast<unsigned char>(c))) return false;
  }
  return absl::SimpleAtoi(s, out);
}

absl::string_view Basename(absl::string_view path) {
  const size_t slash = path.rfind('/');
  if (slash != absl::string_view::npos) path.remove_prefix(slash + 1);
  const size_t dot = path.find('.');
  if (dot != absl::string_view::npos && dot > 0) path = path.substr(0, dot);
  return path;
}

class Parser {
 public:
  explicit Parser(absl::string_view name) { trace_.name = std::string(name); }

  absl::Status Line(uint64_t number, absl::string_view raw) {
    absl::string_view text = raw;
    if (const size_t hash = text.find('#'); hash != absl::string_view::npos) {
      text = text.substr(0, hash);
    }
    std::vector<absl::string_view> f =
        absl::StrSplit(text, absl::ByAnyChar(" \t\r\v\f"), absl::SkipEmpty());
    if (f.empty()) return absl::OkStatus();
    auto error = [&](absl::string_view what) {
      return absl::InvalidArgumentError(absl::StrCat(trace_.name, " line ", number, ": '",
                                                     absl::StripAsciiWhitespace(raw), "': ", what));
    };
    if (f[0] == "a") {
      if (f.size() < 3) return error("an allocation needs an id and a size: a <id> <bytes> [<flags> [<align>]]");
      if (f.size() > 5) return error("too many fields: a <id> <bytes> [<flags> [<align>]]");
      TraceOp op;
      op.kind = TraceOp::Kind::kAlloc;
      if (!ParseNumber(f[2], &op.bytes) || op.bytes == 0 ||
          op.bytes > static_cast<uint64_t>(INT64_MAX)) {
        return error(absl::StrCat("size '", f[2], "' is not a number of bytes in 1..2^63-1"));
      }
      uint64_t v = 0;
      if (f.size() >= 4) {
        if (!ParseNumber(f[3], &v) || (v & ~uint64_t{kTraceFlagMask}) != 0) {
          return error(absl::StrCat("flags '", f[3],
                                    "' are not a combination of CONTINUOUS 1, PINNED 2, SUPER_PAGES 4"));
        }
        op.flags = static_cast<uint32_t>(v);
      }
      if (f.size() == 5) {
        if (!ParseNumber(f[4], &v) || v > 63) {
          return error(absl::StrCat("alignment '", f[4], "' is not a log2 in 0..63"));
        }
        op.align_log2 = static_cast<uint32_t>(v);
      }
      auto [it, inserted] = live_.try_emplace(std::string(f[1]), Live{});
      if (!inserted) {
        return error(absl::StrCat("id '", f[1], "' is still live (allocated at line ",
                                  it->second.line, ")"));
      }
      if (free_slots_.empty()) {
        it->second.slot = trace_.slots++;
      } else {
        it->second.slot = free_slots_.back();
        free_slots_.pop_back();
      }
      it->second.line = number;
      op.slot = it->second.slot;
      trace_.ops.push_back(op);
      ++trace_.allocs;
      return absl::OkStatus();
    }
    if (f[0] == "f") {
      if (f.size() != 2) return error("a free takes exactly one id: f <id>");
      auto it = live_.find(f[1]);
      if (it == live_.end()) {
        auto freed = freed_at_.find(f[1]);
        if (freed != freed_at_.end()) {
          return error(absl::StrCat("id '", f[1], "' is not live (freed at line ", freed->second, ")"));
        }
        return error(absl::StrCat("unknown id '", f[1], "'"));
      }
      TraceOp op;
      op.kind = TraceOp::Kind::kFree;
      op.slot = it->second.slot;
      free_slots_.push_back(it->second.slot);
      freed_at_[f[1]] = number;
      live_.erase(it);
      trace_.ops.push_back(op);
      ++trace_.frees;
      return absl::OkStatus();
    }
    return error(absl::StrCat("unknown operation '", f[0], "' (expected 'a' or 'f')"));
  }

  Trace Finish() && { return std::move(trace_); }

 private:
  struct Live {
    uint32_t slot = 0;
    uint64_t line = 0;
  };
  Trace trace_;
  absl::flat_hash_map<std::string, Live> live_;
  absl::flat_hash_map<std::string, uint64_t> freed_at_;  // id -> line of its last free
  std::vector<uint32_t> free_slots_;
};

}  // namespace

absl::StatusOr<Trace> ParseTrace(absl::string_view text, absl::string_view name) {
  Parser parser(name);
  uint64_t number = 0;
  while (!text.empty()) {
    ++number;
    const size_t nl = text.find('\n');
    const absl::string_view line = text.substr(0, nl);
    text.remove_prefix(nl == absl::string_view::npos ? text.size() : nl + 1);
    if (absl::Status s = parser.Line(number, line); !s.ok()) return s;
  }
  return std::move(parser).Finish();
}

absl::StatusOr<Trace> LoadTrace(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) {
    return absl::NotFoundError(absl::StrCat("cannot open trace '", path, "': ", std::strerror(errno)));
  }
  std::ostringstream buf;
  buf << in.rdbuf();
  return ParseTrace(buf.str(), Basename(path));
}

std::string FormatAlloc(absl::string_view id, uint64_t bytes, uint32_t flags, uint32_t align_log2) {
  if (align_log2 != 0) return absl::StrCat("a ", id, " ", bytes, " ", flags, " ", align_log2);
  if (flags != 0) return absl::StrCat("a ", id, " ", bytes, " ", flags);
  return absl::StrCat("a ", id, " ", bytes);
}

std::string FormatFree(absl::string_view id) { return absl::StrCat("f ", id); }

}  // namespace bench
}  // namespace l4re_ma
