// Entity tags, If-None-Match / If-Modified-Since / If-Range and single byte ranges.
#include "http/conditional.h"

#include <gtest/gtest.h>

namespace songd::http {
namespace {

Request With(std::vector<std::pair<std::string, std::string>> headers) {
    Request r;
    r.method = "GET";
    r.headers = std::move(headers);
    return r;
}

// 1994-11-06T08:49:37Z
constexpr int64_t kMs = 784111777000;

TEST(Conditional, EtagsAreQuotedAndChangeWithTheBytesOrTheVersion) {
    EXPECT_EQ(BodyEtag("abc"), BodyEtag("abc"));
    EXPECT_NE(BodyEtag("abc"), BodyEtag("abd"));
    EXPECT_EQ(BodyEtag("").front(), '"');
    EXPECT_EQ(FileEtag(0x1f40, 0x10), "\"1f40-10\"");
    EXPECT_NE(FileEtag(10, 1), FileEtag(10, 2));
}

TEST(Conditional, IfNoneMatchUsesTheWeakComparisonOverAList) {
    const std::string tag = "\"v1\"";
    struct Case {
        const char* header;
        bool match;
    } cases[] = {{"\"v1\"", true}, {"W/\"v1\"", true}, {" \"x\" , \"v1\" ", true},
                 {"*", true},      {"\"v2\"", false},  {"", false},
                 {"v1", false},    {",,", false},      {"\"v2\", W/\"v1\"", true}};
    for (const auto& c : cases) EXPECT_EQ(IfNoneMatchMatches(c.header, tag), c.match) << c.header;
}

TEST(Conditional, ParsesOnlyImfFixdate) {
    EXPECT_EQ(ParseHttpDate("Sun, 06 Nov 1994 08:49:37 GMT"), kMs);
    EXPECT_EQ(ParseHttpDate("Thu, 01 Jan 1970 00:00:00 GMT"), 0);
    EXPECT_FALSE(ParseHttpDate("Sunday, 06-Nov-94 08:49:37 GMT"));  // RFC 850: ignored
    EXPECT_FALSE(ParseHttpDate("Sun Nov  6 08:49:37 1994"));        // asctime: ignored
    EXPECT_FALSE(ParseHttpDate("Sun, 06 Foo 1994 08:49:37 GMT"));
    EXPECT_FALSE(ParseHttpDate("Sun, 06 Nov 1994 25:49:37 GMT"));
    EXPECT_FALSE(ParseHttpDate("Sun, 0x Nov 1994 08:49:37 GMT"));
    EXPECT_FALSE(ParseHttpDate(""));
}

TEST(Conditional, NotModifiedPrefersIfNoneMatchOverIfModifiedSince) {
    const Validators v{"\"v1\"", kMs + 500};  // sub-second part is not in HTTP dates
    EXPECT_FALSE(NotModified(With({}), v));
    EXPECT_TRUE(NotModified(With({{"If-None-Match", "\"v1\""}}), v));
    EXPECT_TRUE(NotModified(With({{"If-Modified-Since", "Sun, 06 Nov 1994 08:49:37 GMT"}}), v));
    EXPECT_TRUE(NotModified(With({{"If-Modified-Since", "Mon, 07 Nov 1994 08:49:37 GMT"}}), v));
    EXPECT_FALSE(NotModified(With({{"If-Modified-Since", "Sun, 06 Nov 1994 08:49:36 GMT"}}), v));
    EXPECT_FALSE(NotModified(With({{"If-Modified-Since", "yesterday"}}), v));
    // A non-matching If-None-Match wins over a satisfied If-Modified-Since (RFC 9110 §13.1.3).
    EXPECT_FALSE(NotModified(
        With({{"If-None-Match", "\"v0\""}, {"If-Modified-Since", "Mon, 07 Nov 1994 08:49:37 GMT"}}),
        v));
    // Without a known modification time If-Modified-Since is ignored.
    EXPECT_FALSE(NotModified(With({{"If-Modified-Since", "Mon, 07 Nov 1994 08:49:37 GMT"}}),
                             Validators{"\"v1\"", -1}));
}

TEST(Conditional, RangesTableDriven) {
    struct Case {
        const char* header;
        uint64_t size;
        RangePlan::Kind kind;
        uint64_t first, last;
        const char* content_range;
    } cases[] = {
        {"bytes=0-99", 1000, RangePlan::kPartial, 0, 99, "bytes 0-99/1000"},
        {"bytes=990-", 1000, RangePlan::kPartial, 990, 999, "bytes 990-999/1000"},
        {"bytes=-10", 1000, RangePlan::kPartial, 990, 999, "bytes 990-999/1000"},
        {"bytes=-5000", 1000, RangePlan::kPartial, 0, 999, "bytes 0-999/1000"},
        {"bytes=900-5000", 1000, RangePlan::kPartial, 900, 999, "bytes 900-999/1000"},
        {"bytes=999-999", 1000, RangePlan::kPartial, 999, 999, "bytes 999-999/1000"},
        {"bytes=1000-", 1000, RangePlan::kUnsatisfiable, 0, 0, "bytes */1000"},
        {"bytes=5000-6000", 1000, RangePlan::kUnsatisfiable, 0, 0, "bytes */1000"},
        {"bytes=-0", 1000, RangePlan::kUnsatisfiable, 0, 0, "bytes */1000"},
        {"bytes=0-", 0, RangePlan::kUnsatisfiable, 0, 0, "bytes */0"},
        {"bytes=-1", 0, RangePlan::kUnsatisfiable, 0, 0, "bytes */0"},
        // Not understood or invalid: the whole file (RFC 9110 allows ignoring Range).
        {"bytes=0-10,20-30", 1000, RangePlan::kFull, 0, 0, nullptr},
        {"items=0-10", 1000, RangePlan::kFull, 0, 0, nullptr},
        {"bytes=10-5", 1000, RangePlan::kFull, 0, 0, nullptr},
        {"bytes=a-b", 1000, RangePlan::kFull, 0, 0, nullptr},
        {"bytes=5", 1000, RangePlan::kFull, 0, 0, nullptr},
        {"bytes=-", 1000, RangePlan::kFull, 0, 0, nullptr},
        {"bytes=99999999999999999999-", 1000, RangePlan::kFull, 0, 0, nullptr},
    };
    for (const auto& c : cases) {
        SCOPED_TRACE(c.header);
        RangePlan plan = ParseRange(c.header, c.size);
        EXPECT_EQ(plan.kind, c.kind);
        if (c.kind == RangePlan::kPartial) {
            EXPECT_EQ(plan.range.first, c.first);
            EXPECT_EQ(plan.range.last, c.last);
            EXPECT_EQ(plan.range.length(), c.last - c.first + 1);
        }
        if (c.content_range) {
            EXPECT_EQ(plan.ContentRange(), c.content_range);
        }
    }
}

TEST(Conditional, IfRangeNamesTheVersionByStrongTagOrExactDate) {
    const Validators v{"\"v1\"", kMs};
    auto plan = [&](std::vector<std::pair<std::string, std::string>> h) {
        h.emplace_back("Range", "bytes=0-9");
        return PlanRange(With(std::move(h)), v, 100).kind;
    };
    EXPECT_EQ(plan({}), RangePlan::kPartial);
    EXPECT_EQ(plan({{"If-Range", "\"v1\""}}), RangePlan::kPartial);
    EXPECT_EQ(plan({{"If-Range", "\"v0\""}}), RangePlan::kFull);
    EXPECT_EQ(plan({{"If-Range", "W/\"v1\""}}), RangePlan::kFull);  // weak never matches
    EXPECT_EQ(plan({{"If-Range", "Sun, 06 Nov 1994 08:49:37 GMT"}}), RangePlan::kPartial);
    EXPECT_EQ(plan({{"If-Range", "Sun, 06 Nov 1994 08:49:38 GMT"}}), RangePlan::kFull);
    EXPECT_EQ(plan({{"If-Range", "garbage"}}), RangePlan::kFull);
    EXPECT_EQ(PlanRange(With({}), v, 100).kind, RangePlan::kFull);
}

}  // namespace
}  // namespace songd::http
