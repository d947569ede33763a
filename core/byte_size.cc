#include "core/byte_size.h"

#include <cctype>
#include <cmath>

#include "absl/status/status.h"
#include "absl/strings/ascii.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"

namespace l4re_ma {

absl::StatusOr<uint64_t> ParseByteSize(absl::string_view text) {
  absl::string_view t = absl::StripAsciiWhitespace(text);
  auto bad = [&](absl::string_view why) {
    return absl::InvalidArgumentError(absl::StrCat("bad size '", text, "': ", why));
  };
  if (t.empty()) return bad("empty");
  size_t digits = 0;
  while (digits < t.size() && (std::isdigit(static_cast<unsigned char>(t[digits])) || t[digits] == '.')) {
    ++digits;
  }
  absl::string_view number = t.substr(0, digits);
  std::string suffix = absl::AsciiStrToUpper(absl::StripAsciiWhitespace(t.substr(digits)));
  if (number.empty()) return bad("expected a number, optionally followed by K, M, G or T");
  int shift = 0;
  if (suffix.empty() || suffix == "B") {
    shift = 0;
  } else {
    static constexpr struct { char letter; int shift; } kUnits[] = {
        {'K', 10}, {'M', 20}, {'G', 30}, {'T', 40}};
    bool found = false;
    for (const auto& u : kUnits) {
      if (suffix[0] != u.letter) continue;
      absl::string_view rest = absl::string_view(suffix).substr(1);
      if (rest.empty() || rest == "B" || rest == "IB") {
        shift = u.shift;
        found = true;
      }
    }
    if (!found) return bad(absl::StrCat("unknown suffix '", suffix, "' (use K, M, G or T)"));
  }
  uint64_t value = 0;
  if (number.find('.') == absl::string_view::npos) {
    if (!absl::SimpleAtoi(number, &value)) return bad("number out of range");
    if (shift > 0 && value > (UINT64_MAX >> shift)) return bad("too large");
    value <<= shift;
  } else {
    double d = 0;
    if (!absl::SimpleAtod(number, &d) || !std::isfinite(d)) return bad("not a number");
    double bytes = std::ldexp(d, shift);
    if (bytes >= 18446744073709551615.0) return bad("too large");
    if (bytes != std::floor(bytes)) return bad("not a whole number of bytes");
    value = static_cast<uint64_t>(bytes);
  }
  if (value == 0) return bad("must be greater than zero");
  return value;
}

std::string FormatBytes(uint64_t bytes) {
  static constexpr const char* kUnits[] = {"B", "KiB", "MiB", "GiB", "TiB", "PiB", "EiB"};
  int unit = 0;
  double v = static_cast<double>(bytes);
  while (v >= 1024 && unit < 6) {
    v /= 1024;
    ++unit;
  }
  if (unit == 0) return absl::StrCat(bytes, " B");
  if (v == std::floor(v)) return absl::StrFormat("%.0f %s", v, kUnits[unit]);
  return absl::StrFormat("%.2f %s", v, kUnits[unit]);
}

}  // namespace l4re_ma
