// The payment block of the configuration: PAID_RETENTION_DAYS, STRIPE_PAYMENT_METHOD_TYPES,
// PRICE_TIERS and the S3_PREFIX rule. Bad values stop the start with one line naming the
// variable, the value and what is allowed.
#include <gtest/gtest.h>

#include <string>

#include "core/config.h"

namespace songd::core {
namespace {

/// The ConfigError message for `env`, or "" when it loads.
std::string ErrorOf(const Environment& env) {
    try {
        LoadConfig(env);
    } catch (const ConfigError& error) {
        return error.what();
    }
    return "";
}

const Environment kS3{{"S3_ENABLED", "true"},
                      {"S3_BUCKET", "songs-bucket"},
                      {"S3_ACCESS_KEY", "AKIAEXAMPLE"},
                      {"S3_SECRET_KEY", "secretexample"}};

Environment With(Environment env, const std::string& name, const std::string& value) {
    env[name] = value;
    return env;
}

TEST(PaymentConfig, Defaults) {
    const Config c = LoadConfig({});
    EXPECT_EQ(c.paid_retention_days, 30);
    EXPECT_EQ(c.stripe_payment_method_types, std::vector<std::string>{"card"});
    EXPECT_TRUE(c.price_tiers.empty());
    EXPECT_EQ(c.PriceCentsFor(95), c.price_cents);
    EXPECT_EQ(c.PriceCentsFor(285), c.price_cents);
}

TEST(PaymentConfig, PriceTiersByLength) {
    const Config c = LoadConfig({{"PRICE_TIERS", " 120:200, 240:350,285:500 "}});
    ASSERT_EQ(c.price_tiers.size(), 3u);
    EXPECT_EQ(c.PriceCentsFor(95), 200);
    EXPECT_EQ(c.PriceCentsFor(120), 200);
    EXPECT_EQ(c.PriceCentsFor(121), 350);
    EXPECT_EQ(c.PriceCentsFor(240), 350);
    EXPECT_EQ(c.PriceCentsFor(285), 500);
    // One tier covering everything is a single price.
    EXPECT_EQ(LoadConfig({{"PRICE_TIERS", "285:700"}}).PriceCentsFor(95), 700);
    // Covering a lower MAX_AUDIO_LENGTH is enough.
    EXPECT_EQ(LoadConfig({{"MAX_AUDIO_LENGTH", "180"}, {"PRICE_TIERS", "120:200,180:300"}})
                  .PriceCentsFor(180),
              300);
    EXPECT_TRUE(LoadConfig({{"PRICE_TIERS", ""}}).price_tiers.empty());
}

TEST(PaymentConfig, BadPriceTiersNameTheVariableValueAndRule) {
    for (const char* bad : {"120:200,240:350",          // does not reach 285
                            "240:350,120:200,285:500",  // not ascending
                            "120:200,120:300,285:500",  // repeated
                            "120:20,285:500",           // below the 50 cent minimum
                            "120-200,285:500", "abc", "120:,285:500", ":200,285:500",
                            "120:200,,285:500", "0:200,285:500", "120:2.5,285:500"}) {
        const std::string message = ErrorOf({{"PRICE_TIERS", bad}});
        EXPECT_NE(message.find("PRICE_TIERS='" + std::string(bad) + "'"), std::string::npos)
            << bad << ": " << message;
        EXPECT_NE(message.find("ascending"), std::string::npos) << message;
        EXPECT_NE(message.find("MAX_AUDIO_LENGTH (285)"), std::string::npos) << message;
    }
}

TEST(PaymentConfig, PaymentMethodTypes) {
    EXPECT_EQ(
        LoadConfig({{"STRIPE_PAYMENT_METHOD_TYPES", "card, link"}}).stripe_payment_method_types,
        (std::vector<std::string>{"card", "link"}));
    EXPECT_EQ(LoadConfig({{"STRIPE_PAYMENT_METHOD_TYPES", "us_bank_account"}})
                  .stripe_payment_method_types,
              std::vector<std::string>{"us_bank_account"});
    for (const char* bad : {"", "Card", "card,,link", "card,card", "card;link", "1card", "ca rd"}) {
        const std::string message = ErrorOf({{"STRIPE_PAYMENT_METHOD_TYPES", bad}});
        EXPECT_NE(message.find("STRIPE_PAYMENT_METHOD_TYPES='"), std::string::npos)
            << bad << ": " << message;
        EXPECT_NE(message.find("payment method types"), std::string::npos) << message;
    }
}

TEST(PaymentConfig, PaidRetentionDays) {
    EXPECT_EQ(LoadConfig({{"PAID_RETENTION_DAYS", "90"}}).paid_retention_days, 90);
    for (const char* bad : {"0", "-1", "x", "36501"}) {
        EXPECT_NE(ErrorOf({{"PAID_RETENTION_DAYS", bad}}).find("PAID_RETENTION_DAYS='"),
                  std::string::npos)
            << bad;
    }
}

TEST(PaymentConfig, S3PrefixMustBeAFolderWhenS3IsOn) {
    // The orphan sweep deletes unowned objects under the prefix: never the whole bucket,
    // never "songs" matching "songs-backup/...".
    for (const char* bad : {"", "songs", "a/b"}) {
        const std::string message = ErrorOf(With(kS3, "S3_PREFIX", bad));
        EXPECT_NE(message.find("S3_PREFIX='" + std::string(bad) + "'"), std::string::npos)
            << bad << ": " << message;
        EXPECT_NE(message.find("ending in /"), std::string::npos) << message;
    }
    EXPECT_EQ(LoadConfig(With(kS3, "S3_PREFIX", "songs/")).s3_prefix, "songs/");
    EXPECT_EQ(LoadConfig(With(kS3, "S3_PREFIX", "env/prod/songs/")).s3_prefix, "env/prod/songs/");
    EXPECT_EQ(LoadConfig(kS3).s3_prefix, "songs/");  // the default is fine
    EXPECT_EQ(ErrorOf({{"S3_PREFIX", ""}}), "") << "S3 off: the prefix is never used";
}

}  // namespace
}  // namespace songd::core
