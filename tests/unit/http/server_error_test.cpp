// 5xx answers carry a generic detail and a correlation id; 4xx answers are left alone.
#include <gtest/gtest.h>

#include <boost/json.hpp>

#include "core/log.h"
#include "http/api.h"
#include "http/problem.h"

namespace songd::http {
namespace {

namespace json = boost::json;

TEST(ServerError, FiveHundredsLoseTheirDetailButKeepTypeAndGainARequestId) {
    Request request;
    request.method = "GET";
    request.path = "/api/v1/download/x";
    request.id = NewRequestId();
    const std::pair<core::ErrorCode, const char*> cases[] = {
        {core::ErrorCode::kUpstreamUnavailable,
         "S3 HeadObject s3://songs-prod/songs/abc/output_fixed.wav: x-amz-request-id "
         "4442587FB7D0A2F9"},
        {core::ErrorCode::kInternal, "connection to postgresql://db.internal:5432 lost"},
        {core::ErrorCode::kTimeout, "S3 GetObject at http://10.0.0.7:9000 timed out"},
    };
    for (const auto& [code, message] : cases) {
        Response r = ProblemResponse(core::Error(code, message).WithRetryAfter(3));
        SanitizeServerError(request, r);
        SCOPED_TRACE(message);
        EXPECT_EQ(r.body.find("s3://"), std::string::npos) << r.body;
        EXPECT_EQ(r.body.find("postgresql"), std::string::npos) << r.body;
        EXPECT_EQ(r.body.find("10.0.0.7"), std::string::npos) << r.body;
        EXPECT_EQ(r.body.find("4442587FB7D0A2F9"), std::string::npos) << r.body;
        auto doc = json::parse(r.body).as_object();
        EXPECT_EQ(doc.at("request_id").as_string(), request.id);
        EXPECT_NE(std::string(doc.at("detail").as_string()).find(request.id), std::string::npos);
        EXPECT_EQ(doc.at("status").as_int64(), StatusFor(code));
        EXPECT_EQ(std::string(doc.at("type").as_string()),
                  std::string("urn:songd:error:") + core::ErrorCodeName(code));
        EXPECT_EQ(r.Header("Retry-After"), "3");
    }
}

TEST(ServerError, FourHundredsAreUnchanged) {
    Request request;
    request.id = NewRequestId();
    Response r = ProblemResponse(core::Error(core::ErrorCode::kNotFound, "job abc not found"));
    const std::string before = r.body;
    SanitizeServerError(request, r);
    EXPECT_EQ(r.body, before);
}

TEST(ServerError, RequestIdsAreDistinct) {
    const std::string a = NewRequestId(), b = NewRequestId();
    EXPECT_NE(a, b);
    EXPECT_EQ(a.size(), 20u);
}

TEST(TextLog, ControlCharactersQuotesAndBackslashesAreEscaped) {
    EXPECT_EQ(core::TextLogValue("plain"), "plain");
    EXPECT_EQ(core::TextLogValue(""), "");
    EXPECT_EQ(core::TextLogValue("a b"), "a b");
    EXPECT_EQ(core::TextLogValue("/x\nINFO fake line"), "/x\\nINFO fake line");
    EXPECT_EQ(core::TextLogValue("\x1b[2J"), "\\x1b[2J");
    EXPECT_EQ(core::TextLogValue("q\"uote"), "q\\\"uote");
    EXPECT_EQ(core::TextLogValue("back\\slash"), "back\\\\slash");
    EXPECT_EQ(core::TextLogValue(std::string("nul\0x", 5)), "nul\\x00x");
    EXPECT_EQ(core::TextLogValue("\x7f\r\t"), "\\x7f\\r\\t");
    const std::string line =
        core::TextLogLine("request", {{"path", "/a\n2026 ERROR forged"}, {"client", "1.2.3.4"}});
    EXPECT_EQ(line.find('\n'), std::string::npos);
    EXPECT_EQ(line, "request path=/a\\n2026 ERROR forged client=1.2.3.4");
}

}  // namespace
}  // namespace songd::http
