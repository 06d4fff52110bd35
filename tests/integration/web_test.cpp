// The page at / and Swagger UI at /docs, as the real binary serves them.
#include <gtest/gtest.h>

#include "harness/http_client.h"
#include "harness/songd_process.h"

namespace songd::test {
namespace {

TEST(Web, PageAssetsAndDocsAreServedWithCaching) {
    SongdProcess songd;
    songd.Start();
    auto page = Http("GET", songd.Url("/"));
    ASSERT_EQ(page.status, 200);
    EXPECT_EQ(page.Header("content-type"), "text/html; charset=utf-8");
    EXPECT_NE(page.body.find("<textarea id=\"lyrics\""), std::string::npos);
    // The configuration the page reads, with nothing secret in it.
    EXPECT_NE(page.body.find("&quot;api_prefix&quot;:&quot;/api/v1&quot;"), std::string::npos);
    EXPECT_EQ(page.body.find("%CONFIG%"), std::string::npos);
    EXPECT_EQ(page.body.find("%VERSION%"), std::string::npos);
    const std::string csp = page.Header("content-security-policy");
    EXPECT_NE(csp.find("default-src 'self'"), std::string::npos) << csp;
    EXPECT_EQ(csp.find("stripe"), std::string::npos) << csp;  // payments are off
    EXPECT_EQ(page.Header("cache-control"), "no-cache");
    const std::string etag = page.Header("etag");
    ASSERT_FALSE(etag.empty());
    EXPECT_EQ(Http("GET", songd.Url("/"), {"If-None-Match: " + etag}).status, 304);

    auto script = Http("GET", songd.Url("/static/app.js"));
    ASSERT_EQ(script.status, 200);
    EXPECT_EQ(script.Header("content-type"), "text/javascript; charset=utf-8");
    EXPECT_NE(script.Header("cache-control").find("max-age"), std::string::npos);
    auto again =
        Http("GET", songd.Url("/static/app.js"), {"If-None-Match: " + script.Header("etag")});
    EXPECT_EQ(again.status, 304);
    EXPECT_TRUE(again.body.empty());
    EXPECT_EQ(Http("GET", songd.Url("/static/nothing.js")).status, 404);
    EXPECT_EQ(Http("GET", songd.Url("/static/../CMakeLists.txt")).status, 404);
    EXPECT_EQ(Http("POST", songd.Url("/")).status, 405);

    auto docs = Http("GET", songd.Url("/docs"));
    ASSERT_EQ(docs.status, 200);
    EXPECT_NE(docs.body.find("swagger-ui-bundle.js"), std::string::npos);
    EXPECT_EQ(docs.body.find("//cdn"), std::string::npos);
    EXPECT_EQ(docs.body.find("https://"), std::string::npos);  // nothing from elsewhere
    auto bundle = Http("GET", songd.Url("/static/swagger-ui-bundle.js"));
    EXPECT_EQ(bundle.status, 200);
    EXPECT_GT(bundle.body.size(), 100000u);
}

TEST(Web, WebEnabledFalseLeavesOnlyTheApiAndDocs) {
    SongdProcess songd(Env{{"WEB_ENABLED", "false"}});
    songd.Start();
    EXPECT_EQ(Http("GET", songd.Url("/")).status, 404);
    EXPECT_EQ(Http("GET", songd.Url("/static/app.js")).status, 404);
    EXPECT_EQ(Http("GET", songd.Url("/docs")).status, 200);
    EXPECT_EQ(Http("GET", songd.Url("/api/v1/health")).status, 200);
}

TEST(Web, WithAnApiKeyThePageSaysItCannotGenerateAndCarriesNoKey) {
    SongdProcess songd(Env{{"API_KEY", "secret-key-for-the-api"}});
    songd.Start();
    auto page = Http("GET", songd.Url("/"));
    ASSERT_EQ(page.status, 200);
    EXPECT_NE(page.body.find("&quot;api_key_required&quot;:true"), std::string::npos);
    EXPECT_EQ(page.body.find("secret-key-for-the-api"), std::string::npos);
}

TEST(Web, PaymentsOnLetThePageLoadStripeJsFromItsUrl) {
    SongdProcess songd(Env{{"REQUIRE_PAYMENT_FOR_GENERATION", "true"},
                           {"STRIPE_SECRET_KEY", "sk_test_web"},
                           {"STRIPE_PUBLISHABLE_KEY", "pk_test_web"},
                           {"STRIPE_JS_URL", "http://127.0.0.1:9/v3/"}});
    songd.Start();
    auto page = Http("GET", songd.Url("/"));
    ASSERT_EQ(page.status, 200);
    EXPECT_NE(page.body.find("http://127.0.0.1:9/v3/"), std::string::npos);
    EXPECT_NE(page.body.find("pk_test_web"), std::string::npos);
    EXPECT_EQ(page.body.find("sk_test_web"), std::string::npos);
    const std::string csp = page.Header("content-security-policy");
    EXPECT_NE(csp.find("script-src 'self' http://127.0.0.1:9;"), std::string::npos) << csp;
}

}  // namespace
}  // namespace songd::test
