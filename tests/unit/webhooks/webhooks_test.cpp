// Client webhooks, the pure parts: Standard Webhooks signatures, the URL and address policy,
// the retry schedule; and core's base64 they rest on.
#include <gtest/gtest.h>

#include <chrono>

#include "core/crypto.h"
#include "webhooks/signature.h"
#include "webhooks/url_policy.h"
#include "webhooks/webhook_sender.h"

namespace songd::webhooks {
namespace {

using namespace std::chrono_literals;

TEST(WebhookSignature, MatchesTheStandardWebhooksReferenceVector) {
    // The example of the Standard Webhooks specification and its reference libraries.
    auto key = DecodeWebhookSecret("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw");
    ASSERT_TRUE(key);
    EXPECT_EQ(
        SignWebhook(*key, "msg_p5jXN8AQM9LWM0D4loKWxJek", 1614265330, R"({"test": 2432232314})"),
        "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=");
}

TEST(WebhookSignature, ChangesWithEveryPartOfTheSignedContent) {
    const std::string key = "0123456789abcdef01234567";
    const std::string base = SignWebhook(key, "msg_1", 100, "{}");
    EXPECT_NE(SignWebhook(key, "msg_2", 100, "{}"), base);
    EXPECT_NE(SignWebhook(key, "msg_1", 101, "{}"), base);
    EXPECT_NE(SignWebhook(key, "msg_1", 100, "{ }"), base);
    EXPECT_NE(SignWebhook(key + "x", "msg_1", 100, "{}"), base);
}

TEST(WebhookSignature, SecretsMustBeWhsecAndBase64) {
    EXPECT_FALSE(DecodeWebhookSecret("MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"));  // no prefix
    EXPECT_FALSE(DecodeWebhookSecret("whsec_not base64!"));
    EXPECT_FALSE(DecodeWebhookSecret("whsec_abc"));  // not a multiple of 4
    EXPECT_EQ(DecodeWebhookSecret("whsec_aGVsbG8="), "hello");
}

TEST(Base64, RoundTripsAndRefusesMalformedText) {
    for (std::string bytes : {std::string(""), std::string("f"), std::string("fo"),
                              std::string("foo"), std::string("\0\xff\x10 binary", 10)}) {
        auto decoded = core::Base64Decode(core::Base64Encode(bytes));
        ASSERT_TRUE(decoded);
        EXPECT_EQ(*decoded, bytes);
    }
    EXPECT_EQ(core::Base64Encode("foob"), "Zm9vYg==");
    EXPECT_FALSE(core::Base64Decode("Zm9vYg="));    // length
    EXPECT_FALSE(core::Base64Decode("Zm9v=mFy"));   // padding inside
    EXPECT_FALSE(core::Base64Decode("Zm9-YmFy"));   // URL-safe alphabet is not base64
    EXPECT_FALSE(core::Base64Decode("Zm9vYmF\n"));  // a newline
}

TEST(WebhookAddress, OnlyPublicAddressesArePublic) {
    struct Case {
        const char* address;
        bool is_public;
    };
    const Case cases[] = {
        {"8.8.8.8", true},
        {"93.184.216.34", true},
        {"2606:4700::1111", true},
        {"127.0.0.1", false},
        {"127.255.0.9", false},
        {"10.1.2.3", false},
        {"172.16.0.1", false},
        {"172.31.255.255", false},
        {"172.32.0.1", true},
        {"192.168.1.1", false},
        {"169.254.169.254", false},
        {"100.64.0.1", false},
        {"0.0.0.0", false},
        {"224.0.0.1", false},
        {"255.255.255.255", false},
        {"::1", false},
        {"::", false},
        {"fe80::1", false},
        {"fd00::1", false},
        {"ff02::1", false},
        {"::ffff:127.0.0.1", false},
        {"::ffff:10.0.0.1", false},
        {"::ffff:8.8.8.8", true},
        {"64:ff9b::a00:1", false},
        {"not an address", false},
    };
    for (const auto& c : cases) {
        EXPECT_EQ(IsPublicAddress(c.address), c.is_public) << c.address;
    }
}

TEST(WebhookUrl, AcceptsPublicHttpAndHttpsUrls) {
    for (const char* url :
         {"https://example.com/hook", "http://example.com", "https://example.com:8443/a?b=c",
          "https://[2606:4700::1111]/x", "HTTPS://Example.COM/Path", "https://8.8.8.8/h"}) {
        EXPECT_EQ(CheckWebhookUrl(url, false), std::nullopt) << url;
    }
}

TEST(WebhookUrl, RefusesOtherSchemesCredentialsAndMalformedUrls) {
    for (const std::string url :
         {"", "ftp://example.com/x", "file:///etc/passwd", "gopher://example.com",
          "example.com/hook", "https://", "https:///path", "https://user:pw@example.com/",
          "https://example.com/a#frag", "https://exa mple.com/", "https://example.com:0/",
          "https://example.com:99999/", "https://example.com:/", "https://[::1/",
          "https://[zz::1]/", "https://ex%61mple.com/", "https://example.com/\xc3\xa9"}) {
        EXPECT_NE(CheckWebhookUrl(url, true), std::nullopt) << url;
    }
    EXPECT_NE(
        CheckWebhookUrl("https://example.com/" + std::string(kMaxWebhookUrlLength, 'a'), true),
        std::nullopt);
}

TEST(WebhookUrl, RefusesPrivateHostsUnlessAllowed) {
    for (const char* url :
         {"http://127.0.0.1:8000/hook", "http://localhost/hook", "http://LOCALHOST./x",
          "http://api.localhost/x", "http://10.0.0.7/x", "http://169.254.169.254/latest",
          "http://[::1]:9000/x", "http://[fe80::1]/x", "http://[::ffff:127.0.0.1]/x",
          "http://2130706433/x", "http://0x7f.1/x", "http://127.1/x", "http://0/x"}) {
        auto problem = CheckWebhookUrl(url, false);
        ASSERT_NE(problem, std::nullopt) << url;
        EXPECT_NE(problem->find("WEBHOOK_ALLOW_PRIVATE"), std::string::npos) << *problem;
        EXPECT_EQ(CheckWebhookUrl(url, true), std::nullopt) << url;
    }
}

TEST(WebhookRetry, DelaysDoubleFromTheBaseUpToTenMinutes) {
    EXPECT_EQ(RetryDelay(1, 5000ms), 5000ms);
    EXPECT_EQ(RetryDelay(2, 5000ms), 10000ms);
    EXPECT_EQ(RetryDelay(3, 5000ms), 20000ms);
    EXPECT_EQ(RetryDelay(7, 5000ms), 320000ms);
    EXPECT_EQ(RetryDelay(8, 5000ms), 600000ms);  // 640 s capped
    EXPECT_EQ(RetryDelay(500, 5000ms), 600000ms);
    EXPECT_EQ(RetryDelay(2, 200ms), 400ms);
}

TEST(WebhookRetry, OriginsGroupUrlsByReceiver) {
    EXPECT_EQ(UrlOrigin("https://Example.com:8443/a/b?c"), "https://example.com:8443");
    EXPECT_EQ(UrlOrigin("http://h/x"), "http://h");
    EXPECT_EQ(UrlOrigin("http://h"), "http://h");
}

}  // namespace
}  // namespace songd::webhooks
