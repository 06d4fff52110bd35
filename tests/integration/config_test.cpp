// A bad configuration value stops `songd serve` with one line naming the variable
// (acceptance 5 of the service core). Every variable has a case; a new variable without
// one fails the test.
#include "core/config.h"

#include <gtest/gtest.h>

#include <fstream>
#include <set>

#include "harness/songd_process.h"

namespace songd::test {
namespace {

struct BadValue {
    std::string variable;
    std::string value;
    Env extra;  ///< other variables the case needs
};

const std::vector<BadValue>& Cases() {
    static const std::vector<BadValue> cases = {
        {"HOST", "not a host", {}},
        {"PORT", "abc", {}},
        {"PORT", "70000", {}},
        {"API_PREFIX", "api/v1", {}},
        {"DEBUG", "maybe", {}},
        {"DEVICE", "tpu", {}},
        {"LOG_LEVEL", "loud", {}},
        {"LOG_FORMAT", "xml", {}},
        {"ACCESS_LOG", "sometimes", {}},
        {"ACCESS_LOG_BUFFER", "0", {}},
        {"STATUS_CACHE_ENTRIES", "-1", {}},
        {"STATUS_CACHE_MAX_AGE_MS", "soon", {}},
        {"ENABLE_RATE_LIMIT", "sometimes", {}},
        {"RATE_LIMIT_PER_HOUR", "0", {}},
        {"API_KEY", "has space", {}},
        {"CORS_ORIGINS", "not-an-origin", {}},
        {"ENABLE_METRICS", "2", {}},
        {"METRICS_PATH", "metrics", {}},
        {"STRIPE_SECRET_KEY", "pk_test_wrong", {}},
        {"STRIPE_PUBLISHABLE_KEY", "sk_test_wrong", {}},
        {"STRIPE_WEBHOOK_SECRET", "secret", {}},
        {"REQUIRE_PAYMENT_FOR_GENERATION", "true", {}},  // without STRIPE_SECRET_KEY
        {"S3_ENABLED", "yes please", {}},
        {"S3_BUCKET", "Bad_Bucket", {}},
        {"S3_BUCKET", "", {{"S3_ENABLED", "true"}}},
        {"S3_REGION", "US EAST", {}},
        {"S3_ACCESS_KEY", "a b", {}},
        {"S3_ACCESS_KEY", "", {{"S3_ENABLED", "true"}, {"S3_BUCKET", "songs"}}},
        {"S3_SECRET_KEY", "a b", {}},
        {"S3_PREFIX", "/songs/", {}},
        {"FILE_RETENTION_DAYS", "0", {}},
        {"CLEANUP_ENABLED", "nope", {}},
        {"CLEANUP_INTERVAL_HOURS", "-1", {}},
        {"GENERATION_TIMEOUT", "soon", {}},
        {"MAX_BATCH_SIZE", "9", {}},
        {"DEFAULT_AUDIO_LENGTH", "500", {}},
        {"DEFAULT_AUDIO_LENGTH", "200", {{"MAX_AUDIO_LENGTH", "150"}}},
        {"MAX_AUDIO_LENGTH", "300", {}},
        {"OUTPUT_DIR", "", {}},
        {"DATABASE_URL", "mysql://x", {}},
        {"WORKERS", "0", {}},
        {"ENGINE", "magic", {}},
        {"PRICE_CENTS", "1.99", {}},
        {"PRICE_CURRENCY", "dollars", {}},
        {"STRIPE_API_BASE", "ftp://stripe", {}},
        {"S3_ENDPOINT", "localhost:9000", {}},
        {"S3_FORCE_PATH_STYLE", "perhaps", {}},
        {"S3_PRESIGN_EXPIRES", "604801", {}},
        {"S3_SESSION_TOKEN", "a b", {}},
        {"PREVIEW_SECONDS", "-5", {}},
        {"SOUNDFONT", "/nonexistent/font.sf2", {}},
        {"SOUNDFONT", "/etc/passwd", {}},
        {"DIFFRHYTHM_HOME", "/nonexistent/diffrhythm", {}},
        {"DIFFRHYTHM_HOME", "", {{"ENGINE", "diffrhythm"}}},
        {"DIFFRHYTHM_PYTHON", "", {}},
        {"DIFFRHYTHM_MODE", "batch", {}},
        {"DIFFRHYTHM_GPUS", "0,x", {}},
        {"DIFFRHYTHM_PRELOAD", "120", {}},
        {"DIFFRHYTHM_LOAD_TIMEOUT", "0", {}},
        {"DIFFRHYTHM_CHUNKED", "sometimes", {}},
        {"IO_THREADS", "0", {}},
        {"TONE_RENDER_MS", "fast", {}},
        {"TONE_FAULT", "explode", {}},
        {"HTTP_READ_TIMEOUT", "0", {}},
        {"S3_RECONCILE_SECONDS", "0", {}},
        {"STRIPE_TIMEOUT", "0", {}},
        {"PAID_RETENTION_DAYS", "0", {}},
        {"STRIPE_PAYMENT_METHOD_TYPES", "Card!", {}},
        {"PRICE_TIERS", "120:200", {}},  // does not reach MAX_AUDIO_LENGTH
        {"S3_PREFIX",
         "songs",  // the orphan sweep would match songs-backup/...
         {{"S3_ENABLED", "true"},
          {"S3_BUCKET", "songs"},
          {"S3_ACCESS_KEY", "a"},
          {"S3_SECRET_KEY", "b"}}},
        {"MAX_CONNECTIONS", "-1", {}},
        {"MAX_CONNECTIONS_PER_IP", "lots", {}},
        {"HTTP_KEEPALIVE_MAX_REQUESTS", "0", {}},
        {"HTTP_KEEPALIVE_MAX_SECONDS", "0", {}},
        {"MAX_EVENT_STREAMS", "-1", {}},
        {"MAX_EVENT_STREAMS", "many", {}},
        {"TRUSTED_PROXIES", "10.0.0.0/33", {}},
        {"TRUSTED_PROXIES", "10.0.0.1, proxy.example.com", {}},
        {"TRUSTED_PROXIES", "fd00::/129", {}},
        {"WEBHOOK_SECRET", "whsec_c2hvcnQ=", {}},  // a 5-byte key
        {"WEBHOOK_ALLOW_PRIVATE", "sometimes", {}},
        {"WEBHOOK_TIMEOUT_SECONDS", "0", {}},
        {"WEBHOOK_RETRY_BASE_MS", "0", {}},
        {"WEBHOOK_CONCURRENCY", "0", {}},
        {"WEB_ENABLED", "sometimes", {}},
        {"STRIPE_JS_URL", "https://js.stripe.com/v3/'; script-src *", {}},
        {"STRIPE_JS_URL", "js.stripe.com/v3", {}},
    };
    return cases;
}

TEST(Config, EveryVariableHasABadValueCase) {
    std::set<std::string> covered;
    for (const auto& c : Cases()) covered.insert(c.variable);
    for (const auto& name : core::ConfigVariableNames()) {
        EXPECT_TRUE(covered.count(name)) << name << " has no bad-value case";
    }
}

TEST(Config, ServeRefusesEachBadValueWithOneLineNamingTheVariable) {
    SongdProcess dir;  // only for its temporary folder; never started
    for (const auto& c : Cases()) {
        SCOPED_TRACE(c.variable + "=" + c.value);
        Env env = c.extra;
        env[c.variable] = c.value;
        env["PORT"] = env.count("PORT") ? env["PORT"] : "1";  // never reached: config fails first
        if (c.variable == "PORT") env["PORT"] = c.value;
        env.try_emplace("OUTPUT_DIR", (dir.dir() / "output").string());
        env.try_emplace("DATABASE_URL", "sqlite:" + (dir.dir() / "songd.db").string());
        auto [code, output] = dir.RunCommand({"serve"}, env);
        EXPECT_EQ(code, 2) << output;
        ASSERT_FALSE(output.empty());
        EXPECT_EQ(std::count(output.begin(), output.end(), '\n'), 1) << output;
        EXPECT_NE(output.find(c.variable), std::string::npos) << output;
        EXPECT_NE(output.find("must"), std::string::npos) << output;
        // Nothing was created: a refused start changes nothing.
        EXPECT_FALSE(std::filesystem::exists(dir.dir() / "songd.db"));
        EXPECT_FALSE(std::filesystem::exists(dir.dir() / "output"));
    }
}

TEST(Config, SecretsAreNeverEchoed) {
    SongdProcess dir;
    auto [code, output] = dir.RunCommand({"serve"}, {{"STRIPE_SECRET_KEY", "sk_live abc"}});
    EXPECT_EQ(code, 2);
    EXPECT_EQ(output.find("sk_live"), std::string::npos) << output;
    EXPECT_NE(output.find("<hidden>"), std::string::npos) << output;
}

TEST(Config, EnvFileIsReadAndTheEnvironmentWins) {
    SongdProcess dir;
    {
        std::ofstream env(dir.dir() / "custom.env");
        env << "# comment\nexport WORKERS=0\n";
    }
    auto [code, output] = dir.RunCommand({"--env-file", "custom.env", "serve"}, {});
    EXPECT_EQ(code, 2);
    EXPECT_NE(output.find("WORKERS='0'"), std::string::npos) << output;
    // The real environment overrides the file; the next error is then PORT.
    auto [code2, output2] =
        dir.RunCommand({"--env-file", "custom.env", "serve"}, {{"WORKERS", "1"}, {"PORT", "x"}});
    EXPECT_EQ(code2, 2);
    EXPECT_NE(output2.find("PORT='x'"), std::string::npos) << output2;
    auto [code3, output3] = dir.RunCommand({"--env-file", "missing.env", "serve"}, {});
    EXPECT_EQ(code3, 2);
    EXPECT_NE(output3.find("missing.env does not exist"), std::string::npos) << output3;
    {
        std::ofstream env(dir.dir() / "broken.env");
        env << "WORKERS=2\nthis line is wrong\n";
    }
    auto [code4, output4] = dir.RunCommand({"--env-file", "broken.env", "serve"}, {});
    EXPECT_EQ(code4, 2);
    EXPECT_NE(output4.find("broken.env:2"), std::string::npos) << output4;
}

}  // namespace
}  // namespace songd::test
