// core/byte_size.h: parsing and printing byte sizes for flags and
// environment variables ("4096", "256M", "4G", "1.5G", "64KiB").
#ifndef L4RE_MA_CORE_BYTE_SIZE_H_
#define L4RE_MA_CORE_BYTE_SIZE_H_

#include <cstdint>
#include <string>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace l4re_ma {

// Parses a size: a decimal number (fractions allowed with a suffix), then an
// optional binary suffix K, M, G, T (also KB/KiB/...; case-insensitive;
// powers of 1024). Errors name the text and say what is wrong (empty, not a
// number, unknown suffix, zero, overflow, not a whole number of bytes).
absl::StatusOr<uint64_t> ParseByteSize(absl::string_view text);

// "256 MiB", "4 GiB", "1.5 KiB", "12 B": for messages and reports.
std::string FormatBytes(uint64_t bytes);

}  // namespace l4re_ma

#endif  // L4RE_MA_CORE_BYTE_SIZE_H_
