// Log lines rendered for batch writers (the access log): the exact layout of LogEvent's text
// lines, escaping and redaction included.
#include "core/log.h"

#include <gtest/gtest.h>

namespace songd::core {
namespace {

TEST(LogLine, TextLineHasTimeLevelEventAndEscapedFields) {
    // 1700000000005 ms: 2023-11-14 22:13:20.005 UTC.
    const std::string line = RenderLogLine(
        "info", "request", {{"method", "GET"}, {"path", "/a\"b\\c\nd\x01"}, {"n", "42"}},
        1700000000005);
    EXPECT_EQ(line,
              "2023-11-14T22:13:20.005Z info  request method=GET path=/a\\\"b\\\\c\\nd\\x01 n=42");
}

TEST(LogLine, SecretsAreRedactedAndLevelsPadded) {
    const std::string line =
        RenderLogLine("warning", "x", {{"key", "was sk_test_abc123 here"}}, 1700000000999);
    EXPECT_EQ(line, "2023-11-14T22:13:20.999Z warn  x key=was [redacted] here");
}

TEST(LogLine, AppendKeepsWhatIsThereAndFollowsTheSecondAcrossCalls) {
    std::string out = "before|";
    const LogField fields[] = {{"a", "1"}};
    AppendLogLine(out, "error", "e", fields, 1700000000000);
    out += '|';
    AppendLogLine(out, "error", "e", fields, 1700000061250);  // a minute and a bit later
    EXPECT_EQ(out,
              "before|2023-11-14T22:13:20.000Z error e a=1|2023-11-14T22:14:21.250Z error e a=1");
}

TEST(LogLine, TextValueEscapesDeleteAndKeepsSpaces) {
    EXPECT_EQ(TextLogValue("a b\x7f"), "a b\\x7f");
}

}  // namespace
}  // namespace songd::core
