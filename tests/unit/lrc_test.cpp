#include "engine/lrc.h"

#include <gtest/gtest.h>

#include "core/error.h"

namespace songd::engine {
namespace {

std::string RejectMessage(const std::string& lrc, int length = 95) {
    try {
        ParseLrc(lrc, length);
    } catch (const core::Error& e) {
        EXPECT_EQ(e.code(), core::ErrorCode::kInvalidInput);
        return e.what();
    }
    return "";
}

TEST(Lrc, ParsesEveryTimestampForm) {
    auto lines = ParseLrc("[ti:Song]\n[ar:Someone]\n\n[00:01]a\n[00:02.5]b\n[00:03.25]c\n[00:04.125]d\n", 95);
    ASSERT_EQ(lines.size(), 4u);
    EXPECT_EQ(lines[0].time_ms, 1000);
    EXPECT_EQ(lines[1].time_ms, 2500);
    EXPECT_EQ(lines[2].time_ms, 3250);
    EXPECT_EQ(lines[3].time_ms, 4125);
    EXPECT_EQ(lines[3].text, "d");
    EXPECT_EQ(lines[3].source_line, 7);
}

TEST(Lrc, SortsByTimeAndExpandsRepeatedTags) {
    auto lines = ParseLrc("[00:20.00]later\n[00:05.00][00:30.00]chorus\n", 95);
    ASSERT_EQ(lines.size(), 3u);
    EXPECT_EQ(lines[0].text, "chorus");
    EXPECT_EQ(lines[1].text, "later");
    EXPECT_EQ(lines[2].time_ms, 30000);
}

TEST(Lrc, AcceptsLettersOfAnyScript) {
    EXPECT_NO_THROW(ParseLrc("[00:01.00]你好世界\n[00:02.00]Привет\n[00:03.00]مرحبا\n", 95));
}

struct BadCase {
    const char* id;
    std::string lrc;
    const char* expect;
};

TEST(Lrc, RejectsBadLyricsNamingTheLine) {
    const std::vector<BadCase> cases = {
        {"timestamp-at-end", "[00:10.00]ok\n[01:35.00]too late", "line 2"},
        {"no-letter", "[00:10.00]ok\n[00:11.00]  123 !!", "line 2: a timed line needs words"},
        {"empty-line", "[00:10.00]", "line 1: a timed line needs words"},
        {"no-timestamp", "[00:10.00]ok\njust words", "line 2: expected a timestamp"},
        {"bad-seconds", "[00:61.00]words", "line 1: expected a timestamp"},
        {"empty", "", "at least one timed line"},
        {"only-metadata", "[ti:x]\n[ar:y]", "at least one timed line"},
        {"long-line", "[00:01.00]" + std::string(301, 'a'), "line 1: the line has 301"},
        {"invalid-utf8", "[00:01.00]\xff\xfe", "not valid UTF-8"},
    };
    for (const auto& c : cases) {
        SCOPED_TRACE(c.id);
        EXPECT_NE(RejectMessage(c.lrc).find(c.expect), std::string::npos) << RejectMessage(c.lrc);
    }
}

TEST(Lrc, RejectsTooManyLinesAndTooManyCharacters) {
    std::string many;
    for (int i = 0; i < 301; ++i) many += "[00:01.00]la\n";
    EXPECT_NE(RejectMessage(many).find("more than 300"), std::string::npos);
    std::string big = "[00:01.00]" + std::string(250, 'a') + "\n";
    std::string huge;
    while (huge.size() <= 20000) huge += big;
    EXPECT_NE(RejectMessage(huge).find("at most 20000"), std::string::npos);
}

TEST(Lrc, FormatsTime) { EXPECT_EQ(FormatLrcTime(83450), "[01:23.45]"); }

}  // namespace
}  // namespace songd::engine
