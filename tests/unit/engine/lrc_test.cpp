#include "engine/lrc.h"

#include <gtest/gtest.h>

#include <random>

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
    auto lines = ParseLrc(
        "[ti:Song]\n[ar:Someone]\n\n[00:01]a\n[00:02.5]b\n[00:03.25]c\n[00:04.125]d\n", 95);
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

/// Either valid lines that keep every promise, or a clear validation error: nothing else.
void CheckParseOutcome(const std::string& input, int length) {
    try {
        auto lines = ParseLrc(input, length);
        ASSERT_FALSE(lines.empty());
        ASSERT_LE(lines.size(), kMaxLrcLines);
        for (size_t i = 0; i < lines.size(); ++i) {
            EXPECT_GE(lines[i].time_ms, 0);
            EXPECT_LT(lines[i].time_ms, length * 1000LL);
            EXPECT_TRUE(HasLetter(lines[i].text));
            EXPECT_GE(Utf8Length(lines[i].text), 1);
            EXPECT_LE(Utf8Length(lines[i].text), static_cast<int64_t>(kMaxLineChars));
            if (i > 0) {
                EXPECT_LE(lines[i - 1].time_ms, lines[i].time_ms);
            }
        }
    } catch (const core::Error& e) {
        EXPECT_EQ(e.code(), core::ErrorCode::kInvalidInput);
        ASSERT_FALSE(e.fields().empty());
        EXPECT_FALSE(e.fields().front().msg.empty());
    }
}

TEST(Lrc, TenThousandRandomByteStringsGetAnAnswerOrAClearError) {
    std::mt19937_64 rng(20261126);  // fixed: a failure reproduces
    std::uniform_int_distribution<int> byte(0, 255), size(0, 400);
    for (int i = 0; i < 10000; ++i) {
        std::string input(static_cast<size_t>(size(rng)), '\0');
        for (auto& c : input) c = static_cast<char>(byte(rng));
        SCOPED_TRACE(i);
        CheckParseOutcome(input, 95);
    }
}

TEST(Lrc, TenThousandMutatedLyricsGetAnAnswerOrAClearError) {
    // Random bytes rarely look like LRC; mutations of a valid file reach the deeper rules.
    const std::string seed_lrc =
        "[ti:Song]\n[00:05.00]Morning light on the water\n[00:12.5]We sing along\n"
        "[01:20.125][01:30]你好 chorus\n\n[00:30]Привет\n";
    const std::string alphabet = "[]:.0123456789 \n\r\tab\xe4\xbd\xa0\xff";
    std::mt19937_64 rng(7);
    std::uniform_int_distribution<size_t> pick(0, alphabet.size() - 1);
    std::uniform_int_distribution<int> edits(1, 8), op(0, 2), length(95, 285);
    for (int i = 0; i < 10000; ++i) {
        std::string input = seed_lrc;
        for (int e = edits(rng); e > 0; --e) {
            size_t at = std::uniform_int_distribution<size_t>(0, input.size())(rng);
            switch (op(rng)) {
                case 0:
                    input.insert(at, 1, alphabet[pick(rng)]);
                    break;
                case 1:
                    if (at < input.size()) input.erase(at, 1);
                    break;
                default:
                    if (at < input.size()) input[at] = alphabet[pick(rng)];
                    break;
            }
        }
        SCOPED_TRACE(i);
        CheckParseOutcome(input, length(rng));
    }
}

}  // namespace
}  // namespace songd::engine
