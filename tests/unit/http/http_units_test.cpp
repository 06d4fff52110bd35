// Router, problem documents, message helpers, clock and generate-body validation.
#include <gtest/gtest.h>

#include <boost/json.hpp>

#include "core/clock.h"
#include "core/config.h"
#include "core/ids.h"
#include "http/handlers/handlers.h"
#include "http/problem.h"
#include "http/router.h"

namespace songd::http {
namespace {

namespace json = boost::json;

TEST(Router, MatchesParamsAndReports405With404) {
    Router router;
    router.Add(
        "GET", "/api/v1/status/{job_id}", [](Request&) { return Response::Empty(200); },
        Run::kBlocking);
    router.Add(
        "POST", "/api/v1/generate", [](Request&) { return Response::Empty(202); }, Run::kBlocking);
    Request r;
    r.method = "GET";
    r.path = "/api/v1/status/abc";
    auto m = router.Find(r);
    ASSERT_TRUE(m.route);
    EXPECT_EQ(r.params["job_id"], "abc");
    r.method = "HEAD";
    EXPECT_TRUE(router.Find(r).route);
    r.method = "GET";
    r.path = "/api/v1/generate";
    m = router.Find(r);
    EXPECT_FALSE(m.route);
    EXPECT_EQ(m.allowed, std::vector<std::string>{"POST"});
    r.path = "/api/v1/status/";
    EXPECT_FALSE(router.Find(r).route);
    r.path = "/api/v1/status/a/b";
    m = router.Find(r);
    EXPECT_FALSE(m.route);
    EXPECT_TRUE(m.allowed.empty());
}

TEST(Problem, EveryCodeMapsToAStatusAndRendersProblemJson) {
    using core::ErrorCode;
    const std::pair<ErrorCode, int> table[] = {{ErrorCode::kInvalidInput, 422},
                                               {ErrorCode::kNotFound, 404},
                                               {ErrorCode::kConflict, 409},
                                               {ErrorCode::kGone, 410},
                                               {ErrorCode::kPaymentRequired, 402},
                                               {ErrorCode::kRateLimited, 429},
                                               {ErrorCode::kUpstreamUnavailable, 503},
                                               {ErrorCode::kUnauthorized, 401},
                                               {ErrorCode::kForbidden, 403},
                                               {ErrorCode::kPayloadTooLarge, 413}};
    for (auto [code, status] : table) EXPECT_EQ(StatusFor(code), status);
    core::Error e(core::ErrorCode::kPaymentRequired, "pay first");
    e.WithExtra("amount", "99").WithExtra("currency", "\"usd\"").WithRetryAfter(5);
    Response r = ProblemResponse(e);
    EXPECT_EQ(r.status, 402);
    EXPECT_EQ(r.Header("Content-Type"), "application/problem+json");
    EXPECT_EQ(r.Header("Retry-After"), "5");
    auto doc = json::parse(r.body).as_object();
    EXPECT_EQ(doc["detail"].as_string(), "pay first");
    EXPECT_EQ(doc["amount"].as_int64(), 99);
    EXPECT_EQ(doc["currency"].as_string(), "usd");
}

TEST(Message, PercentDecodeAndLoggablePath) {
    EXPECT_EQ(PercentDecode("a%2Fb+c", true), "a/b c");
    EXPECT_EQ(PercentDecode("a+c", false), "a+c");
    EXPECT_FALSE(PercentDecode("%2", false));
    EXPECT_FALSE(PercentDecode("%zz", false));
    EXPECT_FALSE(PercentDecode("%00", false));
    Request r;
    r.path = "/d/x";
    r.query = {{"payment_intent_id", "pi_secret"}, {"format", "wav"}};
    EXPECT_EQ(r.LoggablePath(), "/d/x?payment_intent_id=…&format=…");
}

TEST(Clock, FormatsAndParsesIso8601) {
    EXPECT_EQ(core::FormatIso8601(0), "1970-01-01T00:00:00.000Z");
    EXPECT_EQ(core::FormatIso8601(1795676555123), "2026-11-26T07:02:35.123Z");
    EXPECT_EQ(core::ParseIso8601("2026-11-26T07:02:35.123Z"), 1795676555123);
    EXPECT_EQ(core::ParseIso8601("2026-11-26T08:02:35.123+01:00"), 1795676555123);
    EXPECT_EQ(core::ParseIso8601("2026-11-26"), 1795651200000);
    for (const char* bad : {"", "2026-13-01", "2026-02-30", "2026-11-26T07:02", "yesterday",
                            "2026-11-26T25:00:00Z", "2026-11-26T07:02:35Zjunk"}) {
        EXPECT_FALSE(core::ParseIso8601(bad)) << bad;
    }
}

TEST(Ids, JobIdsAreUuidsAndNothingElsePasses) {
    std::string id = core::NewJobId();
    EXPECT_TRUE(core::IsJobId(id));
    EXPECT_EQ(id[14], '4');
    EXPECT_FALSE(core::IsJobId("../../etc/passwd"));
    EXPECT_FALSE(core::IsJobId(std::string(36, 'a')));
    EXPECT_FALSE(core::IsJobId("ABCDEFAB-0000-4000-8000-000000000000"));
    EXPECT_NE(core::NewJobId(), core::NewJobId());
}

TEST(GenerateBody, AcceptsTheOldBackendsFieldsAndDefaults) {
    core::Config config;
    auto r = ParseGenerateBody(
        R"({"lyrics":"[00:01.00]hello world","style_prompt":"jazz","audio_length":120,"batch_size":2,"steps":32,"cfg_strength":4,"preset":"draft","auto_master":false,"master_preset":"loud","payment_intent_id":"pi_abc","seed":5,"unknown":1})",
        config);
    EXPECT_EQ(r.audio_length, 120);
    EXPECT_EQ(r.batch_size, 2);
    EXPECT_EQ(r.steps, 32);
    EXPECT_EQ(r.preset, "draft");
    EXPECT_FALSE(r.auto_master);
    EXPECT_EQ(r.master_preset, "loud");
    EXPECT_EQ(r.seed, 5u);
    auto d =
        ParseGenerateBody(R"({"lyrics":"[00:01.00]hello world","style_prompt":"jazz"})", config);
    EXPECT_EQ(d.audio_length, 95);
    EXPECT_EQ(d.preset, "high");
    EXPECT_TRUE(d.auto_master);
    EXPECT_FALSE(d.seed);
    config.default_audio_length = 180;
    EXPECT_EQ(
        ParseGenerateBody(R"({"lyrics":"[00:01.00]hello world","style_prompt":"jazz"})", config)
            .audio_length,
        180);
}

TEST(GenerateBody, RespectsMaxAudioLength) {
    core::Config config;
    config.max_audio_length = 150;
    EXPECT_THROW(
        ParseGenerateBody(
            R"({"lyrics":"[00:01.00]hello world","style_prompt":"jazz","audio_length":151})",
            config),
        core::Error);
    EXPECT_NO_THROW(ParseGenerateBody(
        R"({"lyrics":"[00:01.00]hello world","style_prompt":"jazz","audio_length":150})", config));
}

}  // namespace
}  // namespace songd::http
