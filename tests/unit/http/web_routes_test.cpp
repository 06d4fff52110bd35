// The page's Content-Security-Policy and its configuration (WEB_ENABLED, STRIPE_JS_URL).
#include <gtest/gtest.h>

#include "core/config.h"
#include "http/handlers/handlers.h"
#include "http/web_assets.h"

namespace songd::http {
namespace {

core::Config Payments(const std::string& js_url) {
    core::Config c = core::LoadConfig({{"REQUIRE_PAYMENT_FOR_GENERATION", "true"},
                                       {"STRIPE_SECRET_KEY", "sk_test_x"},
                                       {"STRIPE_PUBLISHABLE_KEY", "pk_test_x"},
                                       {"STRIPE_JS_URL", js_url}});
    return c;
}

TEST(WebRoutesUnit, PaymentsOffAllowNothingForeign) {
    const std::string csp = PageContentSecurityPolicy(core::LoadConfig({}));
    EXPECT_NE(csp.find("script-src 'self';"), std::string::npos) << csp;
    EXPECT_NE(csp.find("connect-src 'self';"), std::string::npos) << csp;
    EXPECT_NE(csp.find("frame-src 'none'"), std::string::npos) << csp;
    EXPECT_EQ(csp.find("stripe"), std::string::npos) << csp;
    EXPECT_EQ(csp.find("unsafe"), std::string::npos) << csp;
    EXPECT_EQ(csp.find("http"), std::string::npos) << csp;
}

TEST(WebRoutesUnit, DefaultStripeGetsStripesOrigins) {
    const core::Config c = core::LoadConfig(
        {{"REQUIRE_PAYMENT_FOR_GENERATION", "true"}, {"STRIPE_SECRET_KEY", "sk_test_x"}});
    EXPECT_EQ(c.stripe_js_url, "https://js.stripe.com/v3/");
    const std::string csp = PageContentSecurityPolicy(c);
    EXPECT_NE(csp.find("script-src 'self' https://js.stripe.com https://*.js.stripe.com;"),
              std::string::npos)
        << csp;
    EXPECT_NE(csp.find("frame-src https://js.stripe.com https://*.js.stripe.com "
                       "https://hooks.stripe.com;"),
              std::string::npos)
        << csp;
    EXPECT_NE(csp.find("connect-src 'self' https://js.stripe.com https://api.stripe.com;"),
              std::string::npos)
        << csp;
}

TEST(WebRoutesUnit, AnotherStripeJsUrlAllowsOnlyItsOrigin) {
    const std::string csp = PageContentSecurityPolicy(Payments("http://127.0.0.1:4100/v3/"));
    EXPECT_NE(csp.find("script-src 'self' http://127.0.0.1:4100;"), std::string::npos) << csp;
    EXPECT_NE(csp.find("connect-src 'self' http://127.0.0.1:4100;"), std::string::npos) << csp;
    EXPECT_EQ(csp.find("stripe.com"), std::string::npos) << csp;
}

TEST(WebRoutesUnit, UrlOrigin) {
    EXPECT_EQ(UrlOrigin("https://js.stripe.com/v3/"), "https://js.stripe.com");
    EXPECT_EQ(UrlOrigin("http://127.0.0.1:9/x?y#z"), "http://127.0.0.1:9");
    EXPECT_EQ(UrlOrigin("https://h.example"), "https://h.example");
    EXPECT_EQ(UrlOrigin("/relative"), "");
}

TEST(WebRoutesUnit, ConfigChecksTheWebVariables) {
    EXPECT_TRUE(core::LoadConfig({}).web_enabled);
    EXPECT_FALSE(core::LoadConfig({{"WEB_ENABLED", "false"}}).web_enabled);
    for (const char* bad : {"js.stripe.com/v3/", "ftp://x/y", "https://x/;script-src *",
                            "https://x/a,b", "https://x/'unsafe-inline'"}) {
        try {
            core::LoadConfig({{"STRIPE_JS_URL", bad}});
            ADD_FAILURE() << "accepted STRIPE_JS_URL=" << bad;
        } catch (const core::ConfigError& e) {
            EXPECT_NE(std::string(e.what()).find("STRIPE_JS_URL"), std::string::npos) << e.what();
        }
    }
    EXPECT_THROW(core::LoadConfig({{"WEB_ENABLED", "maybe"}}), core::ConfigError);
}

TEST(WebRoutesUnit, EveryPageFileIsEmbeddedWithTypeAndEtag) {
    for (const char* name : {"index.html", "app.js", "lyrics.js", "style.css", "docs.html",
                             "docs.js", "swagger-ui-bundle.js", "swagger-ui.css"}) {
        bool found = false;
        for (const WebAsset& a : WebAssets()) {
            if (a.name != name) continue;
            found = true;
            EXPECT_FALSE(a.bytes.empty()) << name;
            EXPECT_FALSE(a.content_type.empty()) << name;
            EXPECT_EQ(a.etag.size(), 22u) << name;  // "\"" + 20 hex + "\""
        }
        EXPECT_TRUE(found) << name;
    }
}

}  // namespace
}  // namespace songd::http
