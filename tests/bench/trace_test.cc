// tests/bench/trace_test.cc: the trace parser accepts the documented format
// and rejects every malformed line with a message naming its number and
// text.
#include "bench/trace.h"

#include <string>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace l4re_ma {
namespace bench {
namespace {

using ::testing::HasSubstr;

TEST(TraceTest, ParsesTheDocumentedFormat) {
  absl::StatusOr<Trace> t = ParseTrace(
      "# a comment line\n"
      "\n"
      "a stack1 65536\n"
      "a dma0 0x100000 1 20   # CONTINUOUS, 1 MiB aligned\n"
      "\ta guest 67108864 4\r\n"
      "f stack1\n"
      "a stack1 4096 0 0\n"
      "f dma0\n"
      "f guest\n"
      "f stack1",
      "example");
  ASSERT_TRUE(t.ok()) << t.status();
  EXPECT_EQ(t->name, "example");
  ASSERT_EQ(t->ops.size(), 8u);
  EXPECT_EQ(t->allocs, 4u);
  EXPECT_EQ(t->frees, 4u);
  EXPECT_EQ(t->slots, 3u) << "at most three ids are live at once";
  const TraceOp& dma = t->ops[1];
  EXPECT_EQ(dma.kind, TraceOp::Kind::kAlloc);
  EXPECT_EQ(dma.bytes, 0x100000u);
  EXPECT_EQ(dma.flags, kTraceFlagContinuous);
  EXPECT_EQ(dma.align_log2, 20u);
  EXPECT_EQ(t->ops[2].flags, kTraceFlagSuperPages);
  // The free of stack1 and its reuse share the slot of the first stack1.
  EXPECT_EQ(t->ops[3].kind, TraceOp::Kind::kFree);
  EXPECT_EQ(t->ops[3].slot, t->ops[0].slot);
  EXPECT_EQ(t->ops[4].slot, t->ops[0].slot);
  EXPECT_EQ(t->ops[7].slot, t->ops[0].slot);
  EXPECT_EQ(t->ops[5].slot, dma.slot);
}

TEST(TraceTest, EmptyTraceIsValid) {
  absl::StatusOr<Trace> t = ParseTrace("# nothing\n\n", "empty");
  ASSERT_TRUE(t.ok()) << t.status();
  EXPECT_TRUE(t->ops.empty());
}

struct BadLine {
  const char* text;     // the whole trace; the bad line is the last one
  int line;
  const char* bad;      // the line's text as quoted in the message
  const char* reason;   // a part of the reason
};

TEST(TraceTest, RejectsBadLinesNamingThem) {
  const BadLine cases[] = {
      {"x 1 2", 1, "x 1 2", "unknown operation 'x'"},
      {"a 1", 1, "a 1", "needs an id and a size"},
      {"a 1 2 3 4 5", 1, "a 1 2 3 4 5", "too many fields"},
      {"a id 12x", 1, "a id 12x", "size '12x'"},
      {"a id 0", 1, "a id 0", "size '0'"},
      {"a id -5", 1, "a id -5", "size '-5'"},
      {"a id 9223372036854775808", 1, "a id 9223372036854775808", "size"},
      {"a id 4096 8", 1, "a id 4096 8", "flags '8'"},
      {"a id 4096 one", 1, "a id 4096 one", "flags 'one'"},
      {"a id 4096 0 64", 1, "a id 4096 0 64", "alignment '64'"},
      {"f", 1, "f", "exactly one id"},
      {"a x 1\nf x y", 2, "f x y", "exactly one id"},
      {"# c\na x 4096\nf y", 3, "f y", "unknown id 'y'"},
      {"a x 4096\n\na x 8192", 3, "a x 8192", "id 'x' is still live (allocated at line 1)"},
      {"a x 4096\nf x\nf x", 3, "f x", "id 'x' is not live (freed at line 2)"},
  };
  for (const BadLine& c : cases) {
    SCOPED_TRACE(c.text);
    absl::StatusOr<Trace> t = ParseTrace(c.text, "bad");
    ASSERT_FALSE(t.ok());
    EXPECT_EQ(t.status().code(), absl::StatusCode::kInvalidArgument);
    const std::string msg(t.status().message());
    EXPECT_THAT(msg, HasSubstr(absl::StrCat("bad line ", c.line, ": '", c.bad, "'")));
    EXPECT_THAT(msg, HasSubstr(c.reason));
  }
}

TEST(TraceTest, MissingFileIsNotFound) {
  absl::StatusOr<Trace> t = LoadTrace("/nonexistent/trace.txt");
  ASSERT_FALSE(t.ok());
  EXPECT_EQ(t.status().code(), absl::StatusCode::kNotFound);
  EXPECT_THAT(std::string(t.status().message()), HasSubstr("/nonexistent/trace.txt"));
}

TEST(TraceTest, WriterOutputParses) {
  const std::string text = absl::StrCat(FormatAlloc("p", 4096), "\n", FormatAlloc("q", 5000, 1), "\n",
                                        FormatAlloc("r", 1, 4, 22), "\n", FormatFree("q"), "\n");
  EXPECT_EQ(text, "a p 4096\na q 5000 1\na r 1 4 22\nf q\n");
  absl::StatusOr<Trace> t = ParseTrace(text, "w");
  ASSERT_TRUE(t.ok()) << t.status();
  EXPECT_EQ(t->ops[2].align_log2, 22u);
}

}  // namespace
}  // namespace bench
}  // namespace l4re_ma
