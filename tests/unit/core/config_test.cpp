#include "core/config.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <fstream>
#include <set>

namespace songd::core {
namespace {

TEST(ConfigUnit, DefaultsMatchTheOldBackend) {
    Config c = LoadConfig({});
    EXPECT_EQ(c.port, 8000);
    EXPECT_EQ(c.api_prefix, "/api/v1");
    EXPECT_EQ(c.metrics_path, "/api/v1/metrics");
    EXPECT_EQ(c.default_audio_length, 95);
    EXPECT_EQ(c.max_audio_length, 285);
    EXPECT_EQ(c.s3_prefix, "songs/");
    EXPECT_EQ(c.file_retention_days, 30);
    EXPECT_EQ(c.cleanup_interval_hours, 24);
    EXPECT_EQ(c.s3_presign_expires, 3600);
    EXPECT_EQ(c.preview_seconds, 30);
    EXPECT_EQ(c.SqlitePath(), "./data/songd.db");
    EXPECT_FALSE(c.require_payment);
}

TEST(ConfigUnit, MetricsPathFollowsThePrefixUnlessSet) {
    EXPECT_EQ(LoadConfig({{"API_PREFIX", "/v2"}}).metrics_path, "/v2/metrics");
    EXPECT_EQ(LoadConfig({{"API_PREFIX", "/v2"}, {"METRICS_PATH", "/m"}}).metrics_path, "/m");
}

TEST(ConfigUnit, ParsesValues) {
    Config c = LoadConfig({{"PORT", " 9000 "},
                           {"ENABLE_RATE_LIMIT", "FALSE"},
                           {"CORS_ORIGINS", "https://a.example, http://localhost:5173"},
                           {"DATABASE_URL", "/var/lib/songd/jobs.db"},
                           {"DIFFRHYTHM_GPUS", "0, 1"},
                           {"PRICE_CURRENCY", "EUR"},
                           {"S3_ENDPOINT", "http://127.0.0.1:9000/"}});
    EXPECT_EQ(c.port, 9000);
    EXPECT_FALSE(c.enable_rate_limit);
    EXPECT_EQ(c.cors_origins,
              (std::vector<std::string>{"https://a.example", "http://localhost:5173"}));
    EXPECT_EQ(c.SqlitePath(), "/var/lib/songd/jobs.db");
    EXPECT_EQ(c.diffrhythm_gpus, (std::vector<int>{0, 1}));
    EXPECT_EQ(c.price_currency, "eur");
    EXPECT_EQ(c.s3_endpoint, "http://127.0.0.1:9000");
    EXPECT_TRUE(LoadConfig({{"DATABASE_URL", "postgresql://u@h/db"}}).IsPostgres());
}

TEST(ConfigUnit, EnvFileSyntax) {
    char tmpl[] = "/tmp/songd-env-XXXXXX";
    int fd = ::mkstemp(tmpl);
    ::close(fd);
    {
        std::ofstream f(tmpl);
        f << "# a comment\n\nexport PORT=9001\nAPI_KEY=\"quoted value\"\nS3_PREFIX='x/' # "
             "trailing\n"
             "LOG_LEVEL=debug # comment\n";
    }
    Environment env = ReadEnvFile(tmpl);
    EXPECT_EQ(env["PORT"], "9001");
    EXPECT_EQ(env["API_KEY"], "quoted value");
    EXPECT_EQ(env["S3_PREFIX"], "x/");
    EXPECT_EQ(env["LOG_LEVEL"], "debug");
    {
        std::ofstream f(tmpl);
        f << "PORT=1\nAPI_KEY=\"unterminated\n";
    }
    try {
        ReadEnvFile(tmpl);
        FAIL();
    } catch (const ConfigError& e) {
        EXPECT_NE(std::string(e.what()).find(":2: unterminated quote"), std::string::npos)
            << e.what();
    }
    ::unlink(tmpl);
}

TEST(ConfigUnit, ErrorLinesShowUnprintableBytesEscaped) {
    // A binary file passed as .env, or a value with control characters, must still give one
    // readable line: no raw bytes that could hide the message or upset a terminal.
    char tmpl[] = "/tmp/songd-env-XXXXXX";
    int fd = ::mkstemp(tmpl);
    ::close(fd);
    {
        std::ofstream f(tmpl, std::ios::binary);
        f << "\xff\xfe\x1b[2Jgarbage=1\n";
    }
    try {
        ReadEnvFile(tmpl);
        FAIL() << "a binary line was accepted";
    } catch (const ConfigError& e) {
        const std::string what = e.what();
        EXPECT_NE(what.find(":1: '\\xff\\xfe\\x1b[2Jgarbage' is not a variable name"),
                  std::string::npos)
            << what;
        for (unsigned char c : what) EXPECT_TRUE(c >= 0x20 && c < 0x7f) << what;
    }
    ::unlink(tmpl);
    try {
        LoadConfig({{"LOG_LEVEL", "debug\n\x1b[31mok"}});
        FAIL() << "a bad LOG_LEVEL was accepted";
    } catch (const ConfigError& e) {
        EXPECT_EQ(std::string(e.what()).find('\n'), std::string::npos) << e.what();
        EXPECT_NE(std::string(e.what()).find("'debug\\x0a\\x1b[31mok'"), std::string::npos)
            << e.what();
    }
}

TEST(ConfigUnit, SoundFontMustBeASoundFont) {
    char tmpl[] = "/tmp/songd-sf-XXXXXX";
    int fd = ::mkstemp(tmpl);
    ::close(fd);
    {
        std::ofstream f(tmpl, std::ios::binary);
        f << "RIFF" << std::string(4, '\0') << "WAVEfmt ";  // a WAV file is RIFF too
    }
    try {
        LoadConfig({{"SOUNDFONT", tmpl}});
        FAIL() << "a WAV file was accepted as SoundFont";
    } catch (const ConfigError& e) {
        EXPECT_NE(std::string(e.what()).find("SOUNDFONT="), std::string::npos) << e.what();
        EXPECT_NE(std::string(e.what()).find("must be a SoundFont file"), std::string::npos)
            << e.what();
    }
    {
        std::ofstream f(tmpl, std::ios::binary);
        f << "RIFF" << std::string(4, '\0') << "sfbkLIST";
    }
    EXPECT_EQ(LoadConfig({{"SOUNDFONT", tmpl}}).soundfont, tmpl);
    ::unlink(tmpl);
}

// The list of known variables is recorded by the section loaders as they read: every section
// shows up, each name once, and a value read from the environment is one of them.
TEST(ConfigUnit, KnownVariablesAreTheOnesTheLoadersRead) {
    const auto& names = ConfigVariableNames();
    std::set<std::string> unique(names.begin(), names.end());
    EXPECT_EQ(unique.size(), names.size());
    for (const char* name :
         {"HOST", "STRIPE_TIMEOUT", "LOG_FORMAT", "WORKERS", "DIFFRHYTHM_GPUS", "TONE_FAULT",
          "DATABASE_URL", "PRICE_CURRENCY", "S3_RECONCILE_SECONDS", "CLEANUP_INTERVAL_HOURS"}) {
        EXPECT_TRUE(unique.count(name)) << name;
    }
    EXPECT_FALSE(unique.count("PATH"));
    // Every known variable with a value that fails its check is refused under its own name.
    for (const auto& name : names) {
        // Free-form paths and prefixes accept any text without a NUL.
        if (name == "DIFFRHYTHM_PYTHON" || name == "S3_PREFIX" || name == "OUTPUT_DIR" ||
            name == "DATABASE_URL") {
            continue;
        }
        try {
            LoadConfig({{name, "\x01"}});
            ADD_FAILURE() << name << "=\\x01 was accepted";
        } catch (const ConfigError& e) {
            EXPECT_NE(std::string(e.what()).find(" " + name + "="), std::string::npos) << e.what();
        }
    }
}

TEST(ConfigUnit, SecretsAreMarkedWhereTheyAreRead) {
    for (const char* name : {"API_KEY", "STRIPE_SECRET_KEY", "STRIPE_WEBHOOK_SECRET",
                             "S3_SECRET_KEY", "S3_SESSION_TOKEN", "DATABASE_URL"}) {
        EXPECT_TRUE(IsSecretVariable(name)) << name;
    }
    for (const char* name : {"HOST", "STRIPE_PUBLISHABLE_KEY", "S3_ACCESS_KEY", "NOT_A_VARIABLE"}) {
        EXPECT_FALSE(IsSecretVariable(name)) << name;
    }
    try {
        LoadConfig({{"DATABASE_URL", "mysql://root:hunter2@db/x"}});
        FAIL() << "mysql was accepted";
    } catch (const ConfigError& e) {
        EXPECT_EQ(std::string(e.what()).find("hunter2"), std::string::npos) << e.what();
        EXPECT_NE(std::string(e.what()).find("DATABASE_URL=<hidden>"), std::string::npos)
            << e.what();
    }
}

}  // namespace
}  // namespace songd::core

namespace songd::core {
namespace {

TEST(ConfigUnit, WebhookSecretMustBeWhsecBase64OfAtLeast24Bytes) {
    const std::string good = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSwc2VjcmV0";  // 33 bytes
    EXPECT_EQ(LoadConfig({{"WEBHOOK_SECRET", good}}).webhook_secret, good);
    EXPECT_TRUE(IsSecretVariable("WEBHOOK_SECRET"));
    for (const std::string& bad :
         {std::string("MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"), std::string("whsec_%%%%"),
          std::string("whsec_c2hvcnQ="), std::string("whsec_====")}) {
        try {
            LoadConfig({{"WEBHOOK_SECRET", bad}});
            ADD_FAILURE() << bad << " was accepted";
        } catch (const ConfigError& e) {
            const std::string what = e.what();
            EXPECT_NE(what.find("WEBHOOK_SECRET=<hidden>"), std::string::npos) << what;
            EXPECT_EQ(what.find(bad), std::string::npos) << "the secret was printed: " << what;
        }
    }
    const Config defaults = LoadConfig({});
    EXPECT_FALSE(defaults.webhook_allow_private);
    EXPECT_EQ(defaults.webhook_timeout_seconds, 5);
    EXPECT_EQ(defaults.webhook_retry_base_ms, 5000);
    EXPECT_EQ(LoadConfig({{"WEBHOOK_ALLOW_PRIVATE", "true"}}).webhook_allow_private, true);
}

}  // namespace
}  // namespace songd::core
