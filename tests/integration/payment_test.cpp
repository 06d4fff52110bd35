// Payment at download (issue 4) on the real binary over HTTP, against the local Stripe
// stand-in (tests/stripe_mock): the old backend's scenarios, the attacks it let through, Stripe
// outages, the webhook path, and that no secret ever reaches a log or a response.
#include <gtest/gtest.h>

#include <atomic>
#include <boost/json.hpp>
#include <ctime>
#include <functional>
#include <latch>
#include <memory>
#include <regex>
#include <stdexcept>
#include <thread>

#include "core/clock.h"
#include "engine/engine.h"
#include "harness/http_client.h"
#include "harness/songd_process.h"
#include "harness/wav.h"
#include "unit/payment/stripe_mock_process.h"

namespace songd::test {
namespace {

namespace json = boost::json;
using payment::testing::StripeMockProcess;

// Distinctive values, so a grep of the logs cannot miss them or confuse them with anything else.
constexpr const char* kSecretKey = "sk_test_PaytestSecretKey4f8a2c91d7e3b605";
constexpr const char* kLiveSecretKey = "sk_live_PaytestLiveKey0b6e5d3a9f17c248";
constexpr const char* kWebhookSecret = "whsec_PaytestWebhookSecret7c2e9a4b1d8f36";
constexpr const char* kPublishableKey = "pk_test_PaytestPublishable3e1f";
constexpr int64_t kPrice = 150;
constexpr const char* kCurrency = "usd";
constexpr int kLength = 95;
const std::string kPrefix = "/api/v1";

/// An environment value that removes the variable instead of setting it.
constexpr const char* kUnset = "<unset>";

json::object ParseObject(const std::string& text) {
    boost::system::error_code ec;
    json::value value = json::parse(text, ec);
    if (ec || !value.is_object()) {
        ADD_FAILURE() << "not a JSON object: " << text;
        return {};
    }
    return value.as_object();
}

std::string Str(const json::object& doc, const char* name) {
    const auto* v = doc.if_contains(name);
    return v != nullptr && v->is_string() ? std::string(v->get_string()) : "";
}

/// Starts one local Stripe stand-in and any number of songd servers pointed at it; after each
/// test, checks that no secret reached a server log or a response.
class PaymentTest : public ::testing::Test {
  protected:
    PaymentTest() : mock_(std::make_unique<StripeMockProcess>()) {}

    void TearDown() override { ExpectNoSecretLeaked(); }

    Env PaymentEnv(const Env& overrides = {}) const {
        Env env{{"REQUIRE_PAYMENT_FOR_GENERATION", "true"},
                {"STRIPE_SECRET_KEY", kSecretKey},
                {"STRIPE_WEBHOOK_SECRET", kWebhookSecret},
                {"STRIPE_PUBLISHABLE_KEY", kPublishableKey},
                {"STRIPE_API_BASE", mock_->base_url()},
                {"PRICE_CENTS", std::to_string(kPrice)},
                {"PRICE_CURRENCY", kCurrency},
                {"LOG_LEVEL", "debug"},  // the most the service ever logs, for the secret grep
                {"WORKERS", "2"}};
        for (const auto& [name, value] : overrides) {
            if (value == kUnset) {
                env.erase(name);
            } else {
                env[name] = value;
            }
        }
        return env;
    }

    SongdProcess& StartSongd(const Env& overrides = {}) {
        servers_.push_back(std::make_unique<SongdProcess>(PaymentEnv(overrides)));
        SongdProcess& songd = *servers_.back();
        songd.Start();
        if (!songd.Running()) throw std::runtime_error("songd did not start");
        return songd;
    }

    /// Every request goes through here, so TearDown can check what the service answered.
    HttpResult Call(const std::string& method, const std::string& url,
                    const std::vector<std::string>& headers = {}, const std::string& body = "") {
        HttpResult r = Http(method, url, headers, body);
        std::string seen;
        for (const auto& [name, value] : r.headers)
            seen.append(name).append(": ").append(value) += '\n';
        seen += r.body;
        const bool is_intent = url.find("/payments/") != std::string::npos &&
                               url.find("/intent") != std::string::npos && r.status == 200;
        responses_.push_back({is_intent, std::move(seen)});
        return r;
    }

    json::object StatusOf(SongdProcess& s, const std::string& id) {
        auto r = Call("GET", s.Url(kPrefix + "/status/" + id));
        EXPECT_EQ(r.status, 200) << r.body;
        return ParseObject(r.body);
    }

    std::string StatusEtag(SongdProcess& s, const std::string& id) {
        return Call("GET", s.Url(kPrefix + "/status/" + id)).Header("etag");
    }

    bool Paid(SongdProcess& s, const std::string& id) {
        return StatusOf(s, id)["payment"].as_object()["paid"].as_bool();
    }

    std::string Submit(SongdProcess& s, const std::string& extra = "") {
        auto r = Call("POST", s.Url(kPrefix + "/generate"), {"Content-Type: application/json"},
                      GenerateBody(kLength, extra));
        if (r.status != 202) throw std::runtime_error("generate answered " + r.body);
        return Str(ParseObject(r.body), "job_id");
    }

    /// Waits (with a deadline) until the job is rendered.
    void WaitCompleted(SongdProcess& s, const std::string& id) {
        const bool done = WaitFor([&] {
            const std::string status = Str(StatusOf(s, id), "status");
            return status == "completed" || status == "failed";
        });
        if (!done || Str(StatusOf(s, id), "status") != "completed") {
            throw std::runtime_error("job " + id + " did not complete");
        }
    }

    /// A song submitted without any payment (202) and rendered.
    std::string CompletedJob(SongdProcess& s, const std::string& extra = "") {
        std::string id = Submit(s, extra);
        WaitCompleted(s, id);
        return id;
    }

    /// Several songs, submitted together so the workers render them in parallel.
    std::vector<std::string> CompletedJobs(SongdProcess& s, int n) {
        std::vector<std::string> ids;
        ids.reserve(static_cast<size_t>(n));
        for (int i = 0; i < n; ++i) ids.push_back(Submit(s));
        for (const auto& id : ids) WaitCompleted(s, id);
        return ids;
    }

    HttpResult Download(SongdProcess& s, const std::string& id, const std::string& intent = "") {
        std::string url = s.Url(kPrefix + "/download/" + id);
        if (!intent.empty()) url += "?payment_intent_id=" + intent;
        return Call("GET", url);
    }

    HttpResult PostIntent(SongdProcess& s, const std::string& id) {
        return Call("POST", s.Url(kPrefix + "/payments/" + id + "/intent"));
    }

    /// An intent made directly at the stand-in (as a client paying through Stripe would end up
    /// with); returns its id.
    std::string MockIntent(const json::object& fields) {
        auto doc = mock_->Control("POST", "/_mock/payment_intents", json::serialize(fields));
        client_secrets_.push_back(std::string(doc.at("client_secret").as_string()));
        return std::string(doc.at("id").as_string());
    }

    /// A succeeded intent of the full price for `job_id` (no metadata when empty).
    std::string PaidIntent(const std::string& job_id, bool livemode = false) {
        json::object fields{{"amount", kPrice},
                            {"currency", kCurrency},
                            {"status", "succeeded"},
                            {"livemode", livemode}};
        if (!job_id.empty()) fields["metadata"] = json::object{{"job_id", job_id}};
        return MockIntent(fields);
    }

    void UpdateIntent(const std::string& intent_id, const json::object& fields) {
        mock_->Control("POST", "/_mock/payment_intents/" + intent_id, json::serialize(fields));
    }

    /// The job's intent from songd, then paid at the stand-in (the client's browser flow); its
    /// id, or "" (and a test failure) when songd offered none.
    std::string PaidJobIntent(SongdProcess& s, const std::string& id) {
        auto offered = PostIntent(s, id);
        EXPECT_EQ(offered.status, 200) << offered.body;
        if (offered.status != 200) return "";
        const std::string intent = Str(ParseObject(offered.body), "payment_intent_id");
        if (!intent.empty()) UpdateIntent(intent, {{"status", "succeeded"}});
        return intent;
    }

    /// A Stripe event document for the intent's current state, as the stand-in builds it.
    std::string EventFor(const std::string& intent_id, const std::string& event_id,
                         const std::string& type = "payment_intent.succeeded") {
        json::object request{{"type", type}, {"intent_id", intent_id}, {"id", event_id}};
        return json::serialize(mock_->Control("POST", "/_mock/events", json::serialize(request)));
    }

    /// Signed by the stand-in (Python's hmac), not by songd's own code.
    std::string Sign(const std::string& payload, const std::string& secret, int64_t timestamp) {
        json::object request{{"payload", payload}, {"secret", secret}, {"timestamp", timestamp}};
        auto doc = mock_->Control("POST", "/_mock/sign", json::serialize(request));
        return std::string(doc.at("header").as_string());
    }

    HttpResult PostWebhook(SongdProcess& s, const std::string& payload,
                           const std::string& signature) {
        std::vector<std::string> headers = {"Content-Type: application/json"};
        if (!signature.empty()) headers.push_back("Stripe-Signature: " + signature);
        return Call("POST", s.Url("/api/webhooks/stripe"), headers, payload);
    }

    HttpResult DeliverSigned(SongdProcess& s, const std::string& payload) {
        return PostWebhook(s, payload, Sign(payload, kWebhookSecret, std::time(nullptr)));
    }

    void ExpectPaymentRequired(const HttpResult& r, const std::string& job_id,
                               const std::string& reason) {
        EXPECT_EQ(r.status, 402) << r.body;
        EXPECT_EQ(r.Header("content-type"), "application/problem+json");
        auto doc = ParseObject(r.body);
        EXPECT_EQ(Str(doc, "reason"), reason) << r.body;
        ASSERT_TRUE(doc.contains("amount") && doc["amount"].is_int64()) << r.body;
        EXPECT_EQ(doc["amount"].as_int64(), kPrice);
        EXPECT_EQ(Str(doc, "currency"), kCurrency);
        EXPECT_EQ(Str(doc, "intent_url"), kPrefix + "/payments/" + job_id + "/intent");
        EXPECT_FALSE(Str(doc, "detail").empty());
        EXPECT_EQ(doc["status"].as_int64(), 402);
    }

    void ExpectWav(const HttpResult& r) {
        ASSERT_EQ(r.status, 200) << r.body.substr(0, 500);
        EXPECT_EQ(r.Header("content-type"), "audio/wav");
        WavInfo wav = ParseWav(r.body);
        ASSERT_TRUE(wav.valid);
        EXPECT_EQ(wav.sample_rate, 44100);
        EXPECT_EQ(wav.channels, 2);
        EXPECT_EQ(wav.frames, engine::TargetFrames(kLength));
    }

    void ExpectNoSecretLeaked() {
        static const std::regex kClientSecret("pi_[A-Za-z0-9]+_secret_[A-Za-z0-9]+");
        for (const auto& server : servers_) {
            const std::string log = server->Log();
            for (const char* secret : {kSecretKey, kLiveSecretKey, kWebhookSecret}) {
                EXPECT_EQ(log.find(secret), std::string::npos) << "secret in the log:\n" << log;
            }
            for (const auto& client_secret : client_secrets_) {
                EXPECT_EQ(log.find(client_secret), std::string::npos) << "client secret in the log";
            }
            EXPECT_FALSE(std::regex_search(log, kClientSecret)) << "client secret in the log";
        }
        for (const auto& [is_intent, text] : responses_) {
            for (const char* secret : {kSecretKey, kLiveSecretKey, kWebhookSecret}) {
                EXPECT_EQ(text.find(secret), std::string::npos) << "secret answered:\n" << text;
            }
            // The client secret goes to the client that creates the intent, and nowhere else.
            if (!is_intent) {
                EXPECT_FALSE(std::regex_search(text, kClientSecret)) << "client secret in:\n"
                                                                     << text;
            }
        }
    }

    std::unique_ptr<StripeMockProcess> mock_;
    std::vector<std::unique_ptr<SongdProcess>> servers_;
    std::vector<std::string> client_secrets_;
    std::vector<std::pair<bool, std::string>> responses_;
};

// ---- the old backend's scenarios ----------------------------------------------------------

TEST_F(PaymentTest, GenerateIsFreeDownloadNeedsPaymentIntentUnlocksIt) {
    SongdProcess& songd = StartSongd();
    const std::string id = CompletedJob(songd);  // generate without any payment: 202

    auto status = StatusOf(songd, id);
    auto payment = status["payment"].as_object();
    EXPECT_TRUE(payment["required"].as_bool());
    EXPECT_FALSE(payment["paid"].as_bool());
    EXPECT_EQ(payment["amount"].as_int64(), kPrice);
    EXPECT_EQ(Str(payment, "currency"), kCurrency);
    EXPECT_TRUE(payment["paid_at"].is_null());

    ExpectPaymentRequired(Download(songd, id), id, "no_payment");
    // No way around it: not a byte range, not the headers, not a conditional request.
    ExpectPaymentRequired(
        Call("GET", songd.Url(kPrefix + "/download/" + id), {"Range: bytes=0-99"}), id,
        "no_payment");
    EXPECT_EQ(Call("HEAD", songd.Url(kPrefix + "/download/" + id)).status, 402);
    ExpectPaymentRequired(Call("GET", songd.Url(kPrefix + "/download/" + id), {"If-None-Match: *"}),
                          id, "no_payment");

    // The intent a client pays.
    auto offered = PostIntent(songd, id);
    ASSERT_EQ(offered.status, 200) << offered.body;
    EXPECT_EQ(offered.Header("cache-control"), "no-store");
    auto offer = ParseObject(offered.body);
    const std::string intent = Str(offer, "payment_intent_id");
    const std::string client_secret = Str(offer, "client_secret");
    client_secrets_.push_back(client_secret);
    EXPECT_EQ(intent.rfind("pi_", 0), 0u) << offered.body;
    EXPECT_EQ(client_secret.rfind(intent + "_secret_", 0), 0u);
    EXPECT_EQ(offer["amount"].as_int64(), kPrice);
    EXPECT_EQ(Str(offer, "currency"), kCurrency);
    EXPECT_EQ(Str(offer, "publishable_key"), kPublishableKey);

    // Stripe was asked for exactly that: price, currency, the job in metadata, idempotently.
    auto requests = mock_->Control("GET", "/_mock/requests").as_object();
    const auto& log = requests["log"].as_array();
    ASSERT_EQ(log.size(), 1u);
    const auto& create = log[0].as_object();
    EXPECT_EQ(create.at("method").as_string(), "POST");
    EXPECT_EQ(create.at("path").as_string(), "/v1/payment_intents");
    EXPECT_FALSE(create.at("idempotency_key").is_null());
    EXPECT_TRUE(create.at("bearer").as_bool());
    const auto& form = create.at("form").as_object();
    EXPECT_EQ(form.at("amount").as_string(), std::to_string(kPrice));
    EXPECT_EQ(form.at("currency").as_string(), kCurrency);
    EXPECT_EQ(form.at("metadata[job_id]").as_string(), id);
    // Cards only (STRIPE_PAYMENT_METHOD_TYPES' default): no method that succeeds days later.
    EXPECT_EQ(form.at("payment_method_types[]").as_string(), "card");
    EXPECT_FALSE(form.contains("automatic_payment_methods[enabled]"));

    // Asking again returns the same open intent.
    auto again = PostIntent(songd, id);
    ASSERT_EQ(again.status, 200);
    EXPECT_EQ(Str(ParseObject(again.body), "payment_intent_id"), intent);

    // Not paid yet: still 402, nothing bound.
    ExpectPaymentRequired(Download(songd, id, intent), id, "not_succeeded");
    EXPECT_FALSE(Paid(songd, id));

    UpdateIntent(intent, {{"status", "succeeded"}});
    ExpectWav(Download(songd, id, intent));

    auto paid = StatusOf(songd, id)["payment"].as_object();
    EXPECT_TRUE(paid["paid"].as_bool());
    ASSERT_TRUE(paid["paid_at"].is_string());
    EXPECT_EQ(std::string(paid["paid_at"].as_string()).back(), 'Z');

    // Paid: the intent endpoint says so and points at the download.
    auto conflict = PostIntent(songd, id);
    EXPECT_EQ(conflict.status, 409) << conflict.body;
    EXPECT_EQ(Str(ParseObject(conflict.body), "download_url"), kPrefix + "/download/" + id);
    // And the song downloads without presenting the intent again.
    ExpectWav(Download(songd, id));
}

TEST_F(PaymentTest, AMissingFileAnswersWithoutAskingStripeOrBindingThePayment) {
    SongdProcess& songd = StartSongd();
    const std::string id = CompletedJob(songd);
    const std::string intent = PaidJobIntent(songd, id);
    ASSERT_FALSE(intent.empty());
    const auto requests_before =
        mock_->Control("GET", "/_mock/requests").as_object()["log"].as_array().size();

    // The song is gone from disk (no S3 copy): never charge for a song we cannot deliver.
    const auto wav = songd.output_dir() / id / "output_fixed.wav";
    const auto kept = songd.dir() / "kept.wav";
    std::filesystem::rename(wav, kept);
    for (const char* format : {"wav", "mp3"}) {
        auto missing = Download(songd, id, intent + "&format=" + format);
        EXPECT_EQ(missing.status, 404) << format << ": " << missing.body;
    }
    EXPECT_FALSE(Paid(songd, id)) << "a payment was bound for a song that could not be sent";
    EXPECT_EQ(mock_->Control("GET", "/_mock/requests").as_object()["log"].as_array().size(),
              requests_before)
        << "Stripe was asked about a payment for a song that could not be sent";

    // Once the file is back, the same intent unlocks it: it was never spent.
    std::filesystem::rename(kept, wav);
    ExpectWav(Download(songd, id, intent));
    EXPECT_TRUE(Paid(songd, id));
}

TEST_F(PaymentTest, WithoutRequiredPaymentDownloadIsFree) {
    SongdProcess& songd = StartSongd({{"REQUIRE_PAYMENT_FOR_GENERATION", "false"}});
    const std::string id = CompletedJob(songd);
    ExpectWav(Download(songd, id));
    auto payment = StatusOf(songd, id)["payment"].as_object();
    EXPECT_FALSE(payment["required"].as_bool());
    EXPECT_EQ(mock_->Total(), 0);  // Stripe never asked
}

TEST_F(PaymentTest, IntentStoredAtGenerateUnlocksDownload) {
    SongdProcess& songd = StartSongd();
    // Paid before the job existed, so the intent names no job (the old backend's flow).
    const std::string intent = PaidIntent("");
    const std::string id = CompletedJob(songd, ",\"payment_intent_id\":\"" + intent + "\"");
    ExpectWav(Download(songd, id));
    EXPECT_TRUE(Paid(songd, id));
    // Bound now: later downloads do not ask Stripe again.
    const int64_t before = mock_->Total();
    ExpectWav(Download(songd, id));
    EXPECT_EQ(mock_->Total(), before);
}

TEST_F(PaymentTest, PriceEndpoint) {
    SongdProcess& songd = StartSongd({{"PRICE_CENTS", "375"}, {"PRICE_CURRENCY", "EUR"}});
    auto r = Call("GET", songd.Url(kPrefix + "/payments/price"));
    ASSERT_EQ(r.status, 200) << r.body;
    auto doc = ParseObject(r.body);
    EXPECT_EQ(doc["price_cents"].as_int64(), 375);
    EXPECT_EQ(Str(doc, "currency"), "eur");
}

TEST_F(PaymentTest, IntentForUnknownExpiredAndPaidJobs) {
    SongdProcess& songd = StartSongd({{"CLEANUP_ENABLED", "false"}});
    auto unknown = PostIntent(songd, "00000000-0000-4000-8000-000000000000");
    EXPECT_EQ(unknown.status, 404) << unknown.body;
    EXPECT_EQ(unknown.Header("content-type"), "application/problem+json");
    EXPECT_EQ(PostIntent(songd, "not-a-job").status, 404);

    const std::vector<std::string> ids = CompletedJobs(songd, 2);
    const std::string& paid = ids[0];
    ExpectWav(Download(songd, paid, PaidIntent(paid)));
    auto conflict = PostIntent(songd, paid);
    EXPECT_EQ(conflict.status, 409) << conflict.body;
    EXPECT_EQ(conflict.Header("content-type"), "application/problem+json");
    EXPECT_EQ(Str(ParseObject(conflict.body), "download_url"), kPrefix + "/download/" + paid);

    // Expire a job through the real retention pass, run as of a time past its retention.
    const std::string& expired = ids[1];
    Env env = PaymentEnv({{"CLEANUP_ENABLED", "false"}});
    env["ENGINE"] = "tone";
    env["OUTPUT_DIR"] = songd.output_dir().string();
    env["DATABASE_URL"] = "sqlite:" + (songd.dir() / "data" / "songd.db").string();
    const std::string later = core::FormatIso8601(core::NowMillis() + 400LL * 86400 * 1000);
    auto [code, output] = songd.RunCommand({"cleanup", "--as-of", later}, env);
    ASSERT_EQ(code, 0) << output;
    ASSERT_EQ(Str(StatusOf(songd, expired), "status"), "expired");
    const int64_t before = mock_->Total();
    auto gone = PostIntent(songd, expired);
    EXPECT_EQ(gone.status, 410) << gone.body;
    EXPECT_EQ(gone.Header("content-type"), "application/problem+json");
    EXPECT_EQ(Download(songd, expired, PaidIntent(expired)).status, 410);
    EXPECT_EQ(mock_->Total(), before);  // neither asks Stripe about a song that is gone
    for (const auto& secret : {std::string(kSecretKey), std::string(kWebhookSecret)}) {
        EXPECT_EQ(output.find(secret), std::string::npos);
    }
}

TEST_F(PaymentTest, WebhookWithoutSecretIsForbidden) {
    SongdProcess& songd = StartSongd({{"STRIPE_WEBHOOK_SECRET", kUnset}});
    const std::string id = CompletedJob(songd);
    const std::string intent = PaidIntent(id);
    auto r = DeliverSigned(songd, EventFor(intent, "evt_NoSecretConfigured01"));
    EXPECT_EQ(r.status, 403) << r.body;
    EXPECT_EQ(r.Header("content-type"), "application/problem+json");
    EXPECT_FALSE(Paid(songd, id));
}

// ---- attacks ------------------------------------------------------------------------------

TEST_F(PaymentTest, IntentOfOneJobDoesNotUnlockAnother) {
    SongdProcess& songd = StartSongd();
    const std::vector<std::string> ids = CompletedJobs(songd, 3);
    const std::string& a = ids[0];
    const std::string& b = ids[1];
    const std::string& c = ids[2];

    // An intent created for job A (metadata.job_id = A), then paid.
    auto offered = PostIntent(songd, a);
    ASSERT_EQ(offered.status, 200) << offered.body;
    const std::string intent = Str(ParseObject(offered.body), "payment_intent_id");
    UpdateIntent(intent, {{"status", "succeeded"}});

    const std::string b_etag = StatusEtag(songd, b);
    ExpectPaymentRequired(Download(songd, b, intent), b, "intent_for_other_job");
    EXPECT_FALSE(Paid(songd, b));
    EXPECT_EQ(StatusEtag(songd, b), b_etag);
    ExpectWav(Download(songd, a, intent));  // A still downloads with it
    EXPECT_TRUE(Paid(songd, a));
    ExpectPaymentRequired(Download(songd, b, intent), b, "intent_for_other_job");

    // Any succeeded intent in the account that names no job unlocks nothing: only the one
    // intent a client gave at generate may lack metadata.job_id.
    const std::string free_intent = PaidIntent("");
    ExpectPaymentRequired(Download(songd, c, free_intent), c, "intent_without_job");
    ExpectPaymentRequired(Download(songd, b, free_intent), b, "intent_without_job");
    EXPECT_FALSE(Paid(songd, b));
    EXPECT_FALSE(Paid(songd, c));
}

TEST_F(PaymentTest, SameIntentForTwoJobsConcurrentlyUnlocksExactlyOne) {
    SongdProcess& songd = StartSongd();
    // An intent without metadata, given at generate for two jobs (the old clients' flow):
    // it may pay for either, but only for one.
    std::vector<std::string> intents, all_jobs;
    for (int round = 0; round < 3; ++round) {
        intents.push_back(PaidIntent(""));
        for (int i = 0; i < 2; ++i) {
            all_jobs.push_back(Submit(songd, ",\"payment_intent_id\":\"" + intents.back() + "\""));
        }
    }
    for (const auto& id : all_jobs) WaitCompleted(songd, id);
    for (size_t round = 0; round < 3; ++round) {
        SCOPED_TRACE("round " + std::to_string(round));
        const std::string jobs[2] = {all_jobs[2 * round], all_jobs[2 * round + 1]};
        const std::string& intent = intents[round];
        // Stripe's answer is held back until both downloads are waiting for it, so both
        // pass verification before either binds: only the binding can decide.
        mock_->Control("POST", "/_mock/faults",
                       json::serialize(json::object{{"kind", "delay"},
                                                    {"count", 2},
                                                    {"seconds", 0.5},
                                                    {"path", "/v1/payment_intents/" + intent}}));
        HttpResult results[2];
        std::latch start(2);
        std::vector<std::thread> threads;
        threads.reserve(2);
        for (int i = 0; i < 2; ++i) {
            std::string url = songd.Url(kPrefix + "/download/" + jobs[i]);
            url.append("?payment_intent_id=").append(intent);
            threads.emplace_back([&start, &results, i, url] {
                start.arrive_and_wait();
                results[i] = Http("GET", url);
            });
        }
        for (auto& t : threads) t.join();
        for (const auto& r : results) responses_.push_back({false, r.body});
        const int winner = results[0].status == 200 ? 0 : 1;
        const int loser = 1 - winner;
        ExpectWav(results[winner]);
        ExpectPaymentRequired(results[loser], jobs[loser], "intent_used_by_other_job");
        EXPECT_TRUE(Paid(songd, jobs[winner]));
        EXPECT_FALSE(Paid(songd, jobs[loser]));
        // Both really asked Stripe: the race was at the binding, not settled before it.
        EXPECT_EQ(mock_->Count("/v1/payment_intents/" + intent), 2);
    }
}

/// One PaymentIntent that must not unlock a job; `reason` is the 402's `reason`.
struct RejectedIntentCase {
    std::string id;
    std::string reason;
    /// Adjusts a succeeded, full-price intent for the job; nullptr: no intent is created.
    std::function<void(json::object&)> adjust;
    std::string presented_id;  ///< when no intent is created, the id presented at download
    bool live_key = false;     ///< the server runs with a live secret key
};

std::vector<RejectedIntentCase> RejectedIntentCases() {
    return {
        {"amount_one_cent_short", "amount_short",
         [](json::object& f) { f["amount"] = kPrice - 1; }},
        {"received_one_cent_short", "amount_short",
         [](json::object& f) { f["amount_received"] = kPrice - 1; }},
        {"other_currency", "currency_mismatch", [](json::object& f) { f["currency"] = "eur"; }},
        {"requires_payment_method", "not_succeeded",
         [](json::object& f) { f["status"] = "requires_payment_method"; }},
        {"processing", "not_succeeded", [](json::object& f) { f["status"] = "processing"; }},
        {"canceled", "not_succeeded", [](json::object& f) { f["status"] = "canceled"; }},
        {"test_intent_live_key", "livemode_mismatch",
         [](json::object& f) { f["livemode"] = false; }, "", true},
        {"live_intent_test_key", "livemode_mismatch",
         [](json::object& f) { f["livemode"] = true; }},
        {"other_job_in_metadata", "intent_for_other_job",
         [](json::object& f) {
             f["metadata"] = json::object{{"job_id", "11111111-1111-4111-8111-111111111111"}};
         }},
        {"nonexistent_id", "no_such_payment_intent", nullptr, "pi_PaytestDoesNotExist0000001"},
        {"malformed_id", "malformed_payment_intent_id", nullptr, "card_4242"},
    };
}

class RejectedIntentTest : public PaymentTest,
                           public ::testing::WithParamInterface<RejectedIntentCase> {};

TEST_P(RejectedIntentTest, AnswersPaymentRequiredAndChangesNothing) {
    const RejectedIntentCase& c = GetParam();
    SongdProcess& songd =
        StartSongd(c.live_key ? Env{{"STRIPE_SECRET_KEY", kLiveSecretKey}} : Env{});
    const std::string id = CompletedJob(songd);
    std::string presented = c.presented_id;
    if (c.adjust) {
        json::object fields{{"amount", kPrice},
                            {"currency", kCurrency},
                            {"status", "succeeded"},
                            {"livemode", c.live_key},
                            {"metadata", json::object{{"job_id", id}}}};
        c.adjust(fields);
        presented = MockIntent(fields);
    }
    const std::string etag = StatusEtag(songd, id);
    for (int attempt = 0; attempt < 2; ++attempt) {  // a retry does not change the answer
        ExpectPaymentRequired(Download(songd, id, presented), id, c.reason);
    }
    EXPECT_FALSE(Paid(songd, id));
    EXPECT_EQ(StatusEtag(songd, id), etag);
    // The refused attempt left nothing behind: a payment that does pay still unlocks the job.
    ExpectWav(Download(songd, id, PaidIntent(id, c.live_key)));
}

INSTANTIATE_TEST_SUITE_P(Payment, RejectedIntentTest, ::testing::ValuesIn(RejectedIntentCases()),
                         [](const auto& info) { return info.param.id; });

/// Signs a payload with a secret at a timestamp (the stand-in's signer).
using Signer = std::function<std::string(const std::string& payload, const std::string& secret,
                                         int64_t timestamp)>;

/// A webhook delivery that must be refused with 400 before anything is read or recorded.
struct BadWebhookCase {
    std::string id;
    /// From the genuine payload (a succeeded event for the job's paid intent): the body sent
    /// and its Stripe-Signature header.
    std::function<std::pair<std::string, std::string>(const Signer&, const std::string&)> forge;
};

std::vector<BadWebhookCase> BadWebhookCases() {
    using Forged = std::pair<std::string, std::string>;
    const auto now = [] { return static_cast<int64_t>(std::time(nullptr)); };
    return {
        {"wrong_secret",
         [=](const Signer& sign, const std::string& p) {
             return Forged{p, sign(p, "whsec_SomebodyElsesSecret", now())};
         }},
        {"stale_timestamp",  // beyond the 300 s tolerance, with room for a slow machine
         [=](const Signer& sign, const std::string& p) {
             return Forged{p, sign(p, kWebhookSecret, now() - 400)};
         }},
        {"future_timestamp",
         [=](const Signer& sign, const std::string& p) {
             return Forged{p, sign(p, kWebhookSecret, now() + 400)};
         }},
        {"body_changed_after_signing",
         // Signed while the intent was unpaid, then the body "upgraded" to succeeded.
         [=](const Signer& sign, const std::string& p) {
             const std::string from = "\"succeeded\"";
             std::string original = p;
             original.replace(original.find(from), from.size(), "\"requires_payment_method\"");
             return Forged{p, sign(original, kWebhookSecret, now())};
         }},
        {"missing_signature",
         [](const Signer&, const std::string& p) {
             return Forged{p, ""};
         }},
        {"garbled_signature",
         [](const Signer&, const std::string& p) {
             return Forged{p, "t=abc,v1=zz"};
         }},
    };
}

class BadWebhookTest : public PaymentTest, public ::testing::WithParamInterface<BadWebhookCase> {};

TEST_P(BadWebhookTest, IsRefusedAndChangesNothing) {
    const BadWebhookCase& c = GetParam();
    SongdProcess& songd = StartSongd();
    const std::string id = CompletedJob(songd);
    const std::string intent = PaidIntent(id);
    const std::string event_id = "evt_PaytestBad" + std::to_string(std::time(nullptr));
    const std::string payload = EventFor(intent, event_id);
    ASSERT_NE(payload.find("\"succeeded\""), std::string::npos);

    const std::string etag = StatusEtag(songd, id);
    auto [body, signature] = c.forge([this](const std::string& p, const std::string& secret,
                                            int64_t t) { return Sign(p, secret, t); },
                                     payload);
    auto r = PostWebhook(songd, body, signature);
    EXPECT_EQ(r.status, 400) << r.body;
    EXPECT_EQ(r.Header("content-type"), "application/problem+json");
    EXPECT_FALSE(Paid(songd, id));
    EXPECT_EQ(StatusEtag(songd, id), etag);
    EXPECT_EQ(Download(songd, id).status, 402);

    // Not even the event id was recorded: the genuine delivery of the same event still acts.
    auto genuine = DeliverSigned(songd, payload);
    ASSERT_EQ(genuine.status, 200) << genuine.body;
    EXPECT_EQ(Str(ParseObject(genuine.body), "outcome"), "paid");
    EXPECT_TRUE(Paid(songd, id));
}

INSTANTIATE_TEST_SUITE_P(Payment, BadWebhookTest, ::testing::ValuesIn(BadWebhookCases()),
                         [](const auto& info) { return info.param.id; });

TEST_F(PaymentTest, ReplayedWebhookEventIsProcessedOnce) {
    SongdProcess& songd = StartSongd();
    const std::string id = CompletedJob(songd);
    const std::string intent = PaidIntent(id);
    const std::string payload = EventFor(intent, "evt_PaytestReplay0001");

    auto first = DeliverSigned(songd, payload);
    ASSERT_EQ(first.status, 200) << first.body;
    EXPECT_EQ(Str(ParseObject(first.body), "outcome"), "paid");
    const std::string etag = StatusEtag(songd, id);
    const std::string paid_at = Str(StatusOf(songd, id)["payment"].as_object(), "paid_at");
    ASSERT_FALSE(paid_at.empty());

    // Stripe redelivers: the same event, signed again later. Acknowledged, not re-applied.
    auto replay = DeliverSigned(songd, payload);
    ASSERT_EQ(replay.status, 200) << replay.body;
    EXPECT_EQ(Str(ParseObject(replay.body), "outcome"), "duplicate");
    EXPECT_EQ(StatusEtag(songd, id), etag);

    // Another event for the same intent is a new event, but the job is paid already.
    auto other = DeliverSigned(songd, EventFor(intent, "evt_PaytestReplay0002"));
    ASSERT_EQ(other.status, 200) << other.body;
    EXPECT_EQ(Str(ParseObject(other.body), "outcome"), "already_paid");
    EXPECT_EQ(StatusEtag(songd, id), etag);
    EXPECT_EQ(Str(StatusOf(songd, id)["payment"].as_object(), "paid_at"), paid_at);
}

// ---- faults -------------------------------------------------------------------------------

/// A way Stripe can fail us; the download must answer 503 with Retry-After, never 402/200.
struct FaultCase {
    std::string id;
    std::string fault;  ///< a stand-in fault kind, or "down" / "rejects_key" (a restart)
};

class StripeFaultTest : public PaymentTest, public ::testing::WithParamInterface<FaultCase> {
  protected:
    /// Restarts the stand-in on the same port (so songd's STRIPE_API_BASE stays right),
    /// carrying the intent over.
    void RestartMock(std::vector<std::string> args, const json::object& intent) {
        const int port = mock_->port();
        mock_->Stop();
        args.push_back("--port");
        args.push_back(std::to_string(port));
        mock_ = std::make_unique<StripeMockProcess>(args);
        mock_->Control("POST", "/_mock/payment_intents", json::serialize(intent));
    }
};

TEST_P(StripeFaultTest, DownloadAnswers503ThenSucceedsOnceStripeIsBack) {
    const FaultCase& c = GetParam();
    // A short per-attempt timeout keeps the hang case quick; the stand-in hangs far longer.
    SongdProcess& songd = StartSongd({{"STRIPE_TIMEOUT", "2"}});
    const std::string id = CompletedJob(songd);
    const std::string intent = PaidIntent(id);
    const json::object intent_fields{
        {"id", intent},          {"amount", kPrice},  {"currency", kCurrency},
        {"status", "succeeded"}, {"livemode", false}, {"metadata", json::object{{"job_id", id}}}};

    if (c.fault == "down") {
        mock_->Stop();
    } else if (c.fault == "rejects_key") {
        RestartMock({"--api-key", "sk_test_SomeOtherAccountKey"}, intent_fields);
    } else {
        json::object fault{{"kind", c.fault}, {"count", 1000}};
        if (c.fault == "hang") fault["seconds"] = 8;
        if (c.fault == "429") fault["retry_after"] = 1;
        mock_->Control("POST", "/_mock/faults", json::serialize(fault));
    }

    auto r = Download(songd, id, intent);
    EXPECT_EQ(r.status, 503) << r.body;
    EXPECT_EQ(r.Header("content-type"), "application/problem+json");
    const std::string retry_after = r.Header("retry-after");
    ASSERT_FALSE(retry_after.empty());
    EXPECT_GE(std::stoi(retry_after), 1);
    EXPECT_EQ(r.body.find("RIFF"), std::string::npos);
    // A 5xx tells the client nothing of the infrastructure: a generic detail and a correlation
    // id, also in X-Request-Id; the full story is in the log under that id.
    const std::string request_id = r.Header("x-request-id");
    ASSERT_FALSE(request_id.empty()) << r.body;
    auto problem = ParseObject(r.body);
    EXPECT_EQ(Str(problem, "request_id"), request_id) << r.body;
    EXPECT_EQ(r.body.find("Stripe"), std::string::npos) << r.body;
    EXPECT_EQ(r.body.find("payment provider"), std::string::npos) << r.body;
    std::string logged;
    ASSERT_TRUE(WaitFor([&] {
        const std::string log = songd.Log();
        const auto at = log.find("request_failed request_id=" + request_id);
        if (at == std::string::npos) return false;
        logged = log.substr(at, log.find('\n', at) - at);
        return true;
    })) << songd.Log();
    EXPECT_NE(logged.find("payment provider"), std::string::npos) << logged;
    if (c.fault == "hang") {
        // Our timeout fired, not the stand-in giving up: the log says so.
        EXPECT_NE(logged.find("timed out"), std::string::npos) << logged;
    }
    EXPECT_FALSE(Paid(songd, id));
    if (c.fault == "down" || c.fault == "rejects_key" || c.fault == "500") {
        // Creating an intent fails the same way while Stripe is out (the slow faults are
        // left out only to keep the run short: the same client code path).
        auto offer = PostIntent(songd, id);
        EXPECT_EQ(offer.status, 503) << offer.body;
        EXPECT_FALSE(offer.Header("retry-after").empty());
    }
    if (c.fault != "down" && c.fault != "rejects_key") {
        // Retried (network errors, 5xx and 429 are), and within bounds.
        const int64_t asked = mock_->Count("/v1/payment_intents/" + intent);
        EXPECT_GE(asked, 2);
        EXPECT_LE(asked, 5);
    }

    if (c.fault == "down" || c.fault == "rejects_key") {
        RestartMock({}, intent_fields);
    } else {
        mock_->Control("POST", "/_mock/faults/clear");
    }
    ExpectWav(Download(songd, id, intent));  // the very same request
    EXPECT_TRUE(Paid(songd, id));
}

INSTANTIATE_TEST_SUITE_P(Payment, StripeFaultTest,
                         ::testing::Values(FaultCase{"stripe_down", "down"},
                                           FaultCase{"slow_past_timeout", "hang"},
                                           FaultCase{"http_500", "500"},
                                           FaultCase{"http_429", "429"},
                                           FaultCase{"rejects_our_key", "rejects_key"}),
                         [](const auto& info) { return info.param.id; });

// ---- the webhook path, paid downloads, secrets --------------------------------------------

TEST_F(PaymentTest, WebhookAloneMakesJobDownloadableAndPaidDownloadsNeverAskStripe) {
    SongdProcess& songd = StartSongd();
    const std::string id = CompletedJob(songd);
    // The client pays the job's intent in the browser; songd only hears of it by webhook.
    const std::string intent = PaidJobIntent(songd, id);
    ASSERT_FALSE(intent.empty());

    auto delivered = DeliverSigned(songd, EventFor(intent, "evt_PaytestWebhookOnly01"));
    ASSERT_EQ(delivered.status, 200) << delivered.body;
    EXPECT_EQ(Str(ParseObject(delivered.body), "outcome"), "paid");
    auto payment = StatusOf(songd, id)["payment"].as_object();
    EXPECT_TRUE(payment["paid"].as_bool());
    EXPECT_TRUE(payment["paid_at"].is_string());

    const int64_t stripe_calls = mock_->Total();
    for (int i = 0; i < 3; ++i) ExpectWav(Download(songd, id));  // no payment_intent_id anywhere
    ExpectWav(Download(songd, id, intent));
    EXPECT_EQ(mock_->Total(), stripe_calls);
    EXPECT_EQ(mock_->Count("/v1/payment_intents/" + intent), 0);
}

TEST_F(PaymentTest, PaidDownloadsMakeNoStripeCall) {
    SongdProcess& songd = StartSongd();
    const std::string id = CompletedJob(songd);
    const std::string intent = PaidIntent(id);
    ExpectWav(Download(songd, id, intent));
    EXPECT_EQ(mock_->Count("/v1/payment_intents/" + intent), 1);
    const int64_t total = mock_->Total();
    for (int i = 0; i < 3; ++i) {
        ExpectWav(Download(songd, id, intent));
        ExpectWav(Download(songd, id));
    }
    EXPECT_EQ(Call("HEAD", songd.Url(kPrefix + "/download/" + id)).status, 200);
    EXPECT_EQ(mock_->Total(), total);
}

TEST_F(PaymentTest, AHangingStripeDoesNotDelayStatusOrGenerate) {
    // Downloads that wait on Stripe run on a pool of their own, and at most 8 of them wait on
    // Stripe at once: the rest are answered at once (503 / 429 with Retry-After) instead of
    // queueing, so status, generate and preview never wait behind Stripe.
    SongdProcess& songd = StartSongd();
    const std::string id = CompletedJobs(songd, 1).front();
    const std::string intent = PaidIntent(id);
    constexpr int kWaiting = 12;
    mock_->Control("POST", "/_mock/faults",
                   json::serialize(json::object{{"kind", "delay"},
                                                {"count", kWaiting},
                                                {"seconds", 8},
                                                {"path", "/v1/payment_intents/" + intent}}));
    std::atomic<int> paid_done{0}, turned_away{0};
    std::vector<std::thread> downloads;
    for (int i = 0; i < kWaiting; ++i) {
        downloads.emplace_back([&] {
            auto r = Http("GET",
                          songd.Url(kPrefix + "/download/" + id + "?payment_intent_id=" + intent));
            if (r.status == 200) {
                ++paid_done;
            } else if ((r.status == 503 || r.status == 429) && !r.Header("retry-after").empty()) {
                ++turned_away;
            }
        });
    }
    // The bound of concurrent Stripe calls is reached; the others were turned away at once.
    if (!WaitFor([&] {
            return mock_->Count("/v1/payment_intents/" + intent) >= 8 && turned_away.load() >= 4;
        })) {
        for (auto& t : downloads) t.join();
        FAIL() << mock_->Count("/v1/payment_intents/" + intent) << " downloads reached Stripe, "
               << turned_away.load() << " were turned away";
    }
    const auto status = Http("GET", songd.Url(kPrefix + "/status/" + id));
    const int done_after_status = paid_done.load();
    const auto generate = Http("POST", songd.Url(kPrefix + "/generate"),
                               {"Content-Type: application/json"}, GenerateBody(kLength));
    const int done_after_generate = paid_done.load();
    for (auto& t : downloads) t.join();
    EXPECT_EQ(status.status, 200) << status.body;
    EXPECT_EQ(generate.status, 202) << generate.body;
    EXPECT_EQ(done_after_status, 0) << "status waited for a Stripe call to end";
    EXPECT_EQ(done_after_generate, 0) << "generate waited for a Stripe call to end";
    EXPECT_EQ(mock_->Count("/v1/payment_intents/" + intent), 8) << "more than 8 at once";
    EXPECT_EQ(paid_done.load() + turned_away.load(), kWaiting);
    EXPECT_TRUE(Paid(songd, id));
}

TEST_F(PaymentTest, WebhookAppliesTheSameRulesAsDownload) {
    SongdProcess& songd = StartSongd();
    const std::vector<std::string> ids = CompletedJobs(songd, 2);
    const std::string& id = ids[0];
    const std::string& other = ids[1];
    const std::string short_intent = MockIntent({{"amount", kPrice - 1},
                                                 {"currency", kCurrency},
                                                 {"status", "succeeded"},
                                                 {"metadata", json::object{{"job_id", id}}}});
    auto r = DeliverSigned(songd, EventFor(short_intent, "evt_PaytestShort0001"));
    ASSERT_EQ(r.status, 200) << r.body;
    EXPECT_EQ(Str(ParseObject(r.body), "outcome"), "unapplied");  // money taken: a refund
    EXPECT_FALSE(Paid(songd, id));

    // An intent already bound to another job is not bound again by a webhook naming this one.
    const std::string intent = PaidIntent(other);
    ExpectWav(Download(songd, other, intent));
    UpdateIntent(intent, {{"metadata", json::object{{"job_id", id}}}});
    auto rebound = DeliverSigned(songd, EventFor(intent, "evt_PaytestRebind0001"));
    ASSERT_EQ(rebound.status, 200) << rebound.body;
    EXPECT_EQ(Str(ParseObject(rebound.body), "outcome"), "rejected");
    EXPECT_FALSE(Paid(songd, id));

    // Unknown event types are acknowledged and ignored.
    const std::string ignored_payload = EventFor(intent, "evt_PaytestOther0001", "charge.refunded");
    auto ignored = DeliverSigned(songd, ignored_payload);
    ASSERT_EQ(ignored.status, 200) << ignored.body;
    EXPECT_EQ(Str(ParseObject(ignored.body), "outcome"), "ignored");
}

// ---- never charge for a song we cannot deliver; amplification; pricing by length ----------

int64_t MetricValue(const std::string& text, const std::string& name) {
    const auto at = text.find("\n" + name + " ");
    if (at == std::string::npos) return -1;
    return std::stoll(text.substr(at + name.size() + 2));
}

TEST_F(PaymentTest, NoIntentAndNoBindingForASongStillRendering) {
    // The song takes a minute to render: it is processing for the whole test.
    SongdProcess& songd = StartSongd({{"TONE_RENDER_MS", "60000"}});
    const std::string id = Submit(songd);
    ASSERT_TRUE(WaitFor([&] { return Str(StatusOf(songd, id), "status") == "processing"; }));

    auto refused = PostIntent(songd, id);
    EXPECT_EQ(refused.status, 409) << refused.body;
    EXPECT_NE(Str(ParseObject(refused.body), "detail").find("completed"), std::string::npos)
        << refused.body;
    EXPECT_EQ(mock_->Total(), 0) << "Stripe was asked to charge for a song that may fail";

    // A payment that arrives anyway (an intent made elsewhere) is not bound: it is recorded
    // as unapplied, for a refund.
    const std::string intent = PaidIntent(id);
    auto delivered = DeliverSigned(songd, EventFor(intent, "evt_PaytestEarly0001"));
    ASSERT_EQ(delivered.status, 200) << delivered.body;
    EXPECT_EQ(Str(ParseObject(delivered.body), "outcome"), "unapplied");
    EXPECT_FALSE(Paid(songd, id));
    auto metrics = Call("GET", songd.Url(kPrefix + "/metrics"));
    EXPECT_EQ(MetricValue(metrics.body, "songd_payments_unapplied_total"), 1) << metrics.body;
    EXPECT_TRUE(WaitFor([&] {
        const std::string log = songd.Log();
        return log.find("payment_unapplied") != std::string::npos &&
               log.find(intent) != std::string::npos;
    }));
}

TEST_F(PaymentTest, RepeatedDownloadsWithOneBadIntentAskStripeOnce) {
    SongdProcess& songd = StartSongd();
    const std::string id = CompletedJob(songd);
    for (int i = 0; i < 6; ++i) {
        ExpectPaymentRequired(Download(songd, id, "pi_PaytestDoesNotExist"), id,
                              "no_such_payment_intent");
    }
    EXPECT_EQ(mock_->Count("/v1/payment_intents/pi_PaytestDoesNotExist"), 1);

    // New ids each time: the client's budget runs out, then 429 with Retry-After.
    int limited = 0;
    for (int i = 0; i < 12; ++i) {
        auto r = Download(songd, id, "pi_PaytestGuess" + std::to_string(i));
        if (r.status == 429) {
            ++limited;
            EXPECT_FALSE(r.Header("retry-after").empty());
        }
    }
    EXPECT_GT(limited, 0);
    EXPECT_LE(mock_->Total(), 10) << "every guessed id reached Stripe";
}

TEST_F(PaymentTest, PricesByLengthAreFixedOnTheJob) {
    SongdProcess& songd =
        StartSongd({{"PRICE_TIERS", "120:200,240:350,285:500"}, {"FILE_RETENTION_DAYS", "1"}});
    auto price = [&](const std::string& query) {
        return Call("GET", songd.Url(kPrefix + "/payments/price" + query));
    };
    EXPECT_EQ(ParseObject(price("?audio_length=95").body)["price_cents"].as_int64(), 200);
    EXPECT_EQ(ParseObject(price("?audio_length=121").body)["price_cents"].as_int64(), 350);
    EXPECT_EQ(ParseObject(price("?audio_length=285").body)["price_cents"].as_int64(), 500);
    for (const char* bad :
         {"?audio_length=abc", "?audio_length=10", "?audio_length=286", "?audio_length="}) {
        auto r = price(bad);
        EXPECT_EQ(r.status, 422) << bad << " " << r.body;
        EXPECT_EQ(r.Header("content-type"), "application/problem+json");
    }

    // A 95 s song costs the first tier, a 130 s one the second: in status, 402 and intent.
    const std::string short_id = CompletedJob(songd);
    auto long_submit = Call("POST", songd.Url(kPrefix + "/generate"),
                            {"Content-Type: application/json"}, GenerateBody(130));
    ASSERT_EQ(long_submit.status, 202) << long_submit.body;
    const std::string long_id = Str(ParseObject(long_submit.body), "job_id");
    WaitCompleted(songd, long_id);
    EXPECT_EQ(StatusOf(songd, short_id)["payment"].as_object()["amount"].as_int64(), 200);
    EXPECT_EQ(StatusOf(songd, long_id)["payment"].as_object()["amount"].as_int64(), 350);
    auto offer = PostIntent(songd, long_id);
    ASSERT_EQ(offer.status, 200) << offer.body;
    EXPECT_EQ(ParseObject(offer.body)["amount"].as_int64(), 350);

    // Paid at the cheaper tier, for the longer song: refused, and the 402 names its price.
    const std::string cheap = MockIntent({{"amount", 200},
                                          {"currency", kCurrency},
                                          {"status", "succeeded"},
                                          {"metadata", json::object{{"job_id", long_id}}}});
    auto refused = Download(songd, long_id, cheap);
    EXPECT_EQ(refused.status, 402) << refused.body;
    auto doc = ParseObject(refused.body);
    EXPECT_EQ(Str(doc, "reason"), "amount_short");
    EXPECT_EQ(doc["amount"].as_int64(), 350);
    EXPECT_FALSE(Paid(songd, long_id));

    // Paying keeps the files PAID_RETENTION_DAYS (30) after payment, past FILE_RETENTION_DAYS.
    const std::string full = MockIntent({{"amount", 350},
                                         {"currency", kCurrency},
                                         {"status", "succeeded"},
                                         {"metadata", json::object{{"job_id", long_id}}}});
    const auto wav = Download(songd, long_id, full);
    EXPECT_EQ(wav.status, 200);
    auto status = StatusOf(songd, long_id);
    const auto paid_at = core::ParseIso8601(Str(status["payment"].as_object(), "paid_at"));
    const auto expires_at = core::ParseIso8601(Str(status, "expires_at"));
    ASSERT_TRUE(paid_at && expires_at) << json::serialize(status);
    EXPECT_GE(*expires_at, *paid_at + 30LL * 86400 * 1000 - 1000);
}

TEST_F(PaymentTest, NoSecretInLogsOrAnswersAcrossEveryPath) {
    // Every path that handles a secret, with debug logging; TearDown greps the log and every
    // answer. The log must also show that it did record the payment activity.
    SongdProcess& songd = StartSongd();
    const std::string id = CompletedJob(songd);
    auto offered = PostIntent(songd, id);
    ASSERT_EQ(offered.status, 200);
    const std::string client_secret = Str(ParseObject(offered.body), "client_secret");
    ASSERT_FALSE(client_secret.empty());
    client_secrets_.push_back(client_secret);
    const std::string intent = Str(ParseObject(offered.body), "payment_intent_id");

    ExpectPaymentRequired(Download(songd, id, intent), id, "not_succeeded");
    auto bad = PostWebhook(songd, EventFor(intent, "evt_PaytestSecrets01"),
                           Sign("x", "whsec_SomebodyElsesSecret", std::time(nullptr)));
    EXPECT_EQ(bad.status, 400);
    mock_->Control("POST", "/_mock/faults", R"({"kind":"500","count":1000})");
    EXPECT_EQ(Download(songd, id, intent).status, 503);
    mock_->Control("POST", "/_mock/faults/clear");
    UpdateIntent(intent, {{"status", "succeeded"}});
    auto good = DeliverSigned(songd, EventFor(intent, "evt_PaytestSecrets02"));
    EXPECT_EQ(good.status, 200);
    ExpectWav(Download(songd, id));
    Call("GET", songd.Url(kPrefix + "/metrics"));
    Call("GET", songd.Url(kPrefix + "/health"));
    Call("GET", songd.Url("/openapi.json"));
    // Stopped, so everything it had to say is in the log.
    EXPECT_EQ(songd.Stop(), 0);

    const std::string log = songd.Log();
    EXPECT_NE(log.find(intent), std::string::npos) << "the log shows no payment activity";
    EXPECT_NE(log.find("evt_PaytestSecrets02"), std::string::npos);
    EXPECT_NE(log.find("stripe_unavailable"), std::string::npos);
}

}  // namespace
}  // namespace songd::test
