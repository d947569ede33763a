// bench/trace.h: allocation traces, the input of the fragmentation harness.
//
// A trace is a text file with one operation per line; `#` starts a comment,
// blank lines are ignored:
//
//   # a <id> <bytes> [<flags> [<align>]]   allocate, keep under <id>
//   # f <id>                               free what <id> holds
//   a stack1 65536
//   a dma0 1048576 1 20        # CONTINUOUS, aligned to 2^20 bytes
//   a guest 67108864 4         # SUPER_PAGES
//   f stack1
//
// <id> is any token without white space; it names one live allocation at a
// time and may be reused after it is freed. <bytes> is a positive number
// (decimal or 0x-hex) that fits in a C `long`; <flags> is the l4re_ma_flags
// number (bits CONTINUOUS 1, PINNED 2, SUPER_PAGES 4); <align> is log2 of the
// byte alignment (0..63), as l4re_ma_alloc_align takes it.
//
// ParseTrace checks the whole file before anything is replayed: a malformed
// line, a free of an id that is not live, or an allocation under an id that
// is still live is an error naming the line number and its text.
//
//   absl::StatusOr<l4re_ma::bench::Trace> t = l4re_ma::bench::LoadTrace(path);
//   if (!t.ok()) { std::cerr << t.status() << "\n"; return 2; }
//   for (const l4re_ma::bench::TraceOp& op : t->ops) ...
#ifndef L4RE_MA_BENCH_TRACE_H_
#define L4RE_MA_BENCH_TRACE_H_

#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace l4re_ma {
namespace bench {

// The l4re_ma_flags bits a trace may carry.
inline constexpr uint32_t kTraceFlagContinuous = 0x1;
inline constexpr uint32_t kTraceFlagPinned = 0x2;
inline constexpr uint32_t kTraceFlagSuperPages = 0x4;
inline constexpr uint32_t kTraceFlagMask = 0x7;

// One operation. Ids are replaced by dense slot numbers: an allocation and
// the free of the same id share a slot, and a slot is reused only after the
// free, so a replay keeps one live run per slot in a flat array.
struct TraceOp {
  enum class Kind : uint8_t { kAlloc, kFree };
  Kind kind = Kind::kAlloc;
  uint32_t slot = 0;
  uint32_t flags = 0;      // kAlloc: l4re_ma_flags
  uint32_t align_log2 = 0; // kAlloc: log2 of the byte alignment, 0 for none
  uint64_t bytes = 0;      // kAlloc: requested size
};

struct Trace {
  std::string name;  // for labels: the file name without folder and extension
  std::vector<TraceOp> ops;
  uint32_t slots = 0;  // slots used (the most ids live at once)
  uint64_t allocs = 0;
  uint64_t frees = 0;
};

// Parses a whole trace; `name` labels it in results and in error messages
// ("<name> line <n>: '<text>': <what is wrong>").
absl::StatusOr<Trace> ParseTrace(absl::string_view text, absl::string_view name);

// Reads and parses the file at `path`; the trace is named after the file.
absl::StatusOr<Trace> LoadTrace(const std::string& path);

// "a <id> <bytes> [<flags> [<align>]]" / "f <id>" for trace writers.
std::string FormatAlloc(absl::string_view id, uint64_t bytes, uint32_t flags = 0,
                        uint32_t align_log2 = 0);
std::string FormatFree(absl::string_view id);

}  // namespace bench
}  // namespace l4re_ma

#endif  // L4RE_MA_BENCH_TRACE_H_
