// StripeClient, PaymentService and the webhook against the local Stripe stand-in
// (tests/stripe_mock/stripe_mock.py, started per test suite as a child process).

#include "payment/stripe_client.h"

#include <gtest/gtest.h>
#include <spdlog/sinks/ostream_sink.h>
#include <spdlog/spdlog.h>

#include <memory>
#include <sstream>
#include <string>

#include "core/clock.h"
#include "fakes.h"
#include "payment/payment_service.h"
#include "payment/webhook.h"
#include "stripe_mock_process.h"

namespace songd::payment {
namespace {

namespace json = boost::json;
using testing::FakeJobStore;
using testing::kJobA;
using testing::kJobB;
using testing::MakeJob;
using testing::StripeMockProcess;

constexpr const char* kKey = "sk_test_clienttest0123456789";
constexpr int kAttempts = 3;
constexpr int kDefaultRetryAfter = 9;

/// Short backoff for quick tests; a generous timeout so a loaded machine never turns a normal
/// answer into a timeout. The hang cases use `ShortTimeout`.
StripeClientOptions FastOptions(const std::string& base, const std::string& key = kKey) {
    StripeClientOptions options;
    options.api_base = base;
    options.secret_key = key;
    options.connect_timeout = std::chrono::milliseconds(5000);
    options.request_timeout = std::chrono::milliseconds(10000);
    options.retry = {.max_attempts = kAttempts,
                     .base_delay = std::chrono::milliseconds(5),
                     .max_delay = std::chrono::milliseconds(20)};
    options.retry_after_seconds = kDefaultRetryAfter;
    return options;
}

StripeClientOptions ShortTimeout(StripeClientOptions options) {
    options.request_timeout = std::chrono::milliseconds(300);
    return options;
}

/// Runs `call`, which must throw core::Error; returns it.
template <typename F>
core::Error ErrorOf(F&& call) {
    try {
        call();
    } catch (const core::Error& error) {
        return error;
    }
    ADD_FAILURE() << "no error";
    return core::Error(core::ErrorCode::kInternal, "no error");
}

class StripeClientTest : public ::testing::Test {
  protected:
    static void SetUpTestSuite() { mock_ = std::make_unique<StripeMockProcess>(); }
    static void TearDownTestSuite() { mock_.reset(); }

    void SetUp() override {
        mock_->Control("POST", "/_mock/reset");
        client_ = std::make_unique<StripeClient>(FastOptions(mock_->base_url()));
    }

    /// An intent made through the client for `job_id`.
    PaymentIntent Create(const std::string& job_id) {
        return client_->CreatePaymentIntent(
            {.amount = 99,
             .currency = "usd",
             .job_id = job_id,
             .idempotency_key = IntentIdempotencyKey(job_id, 99, "usd")});
    }

    void Fault(const std::string& spec) { mock_->Control("POST", "/_mock/faults", spec); }

    static std::unique_ptr<StripeMockProcess> mock_;
    std::unique_ptr<StripeClient> client_;
};

std::unique_ptr<StripeMockProcess> StripeClientTest::mock_;

TEST_F(StripeClientTest, CreateSendsStripesRequest) {
    const PaymentIntent intent = Create(kJobA);
    EXPECT_TRUE(IsPaymentIntentId(intent.id)) << intent.id;
    EXPECT_EQ(intent.client_secret.rfind(intent.id + "_secret_", 0), 0u);
    EXPECT_EQ(intent.amount, 99);
    EXPECT_EQ(intent.currency, "usd");
    EXPECT_EQ(intent.status, "requires_payment_method");
    EXPECT_EQ(intent.metadata_job_id, kJobA);
    EXPECT_FALSE(intent.livemode);

    const json::value report = mock_->Control("GET", "/_mock/requests");
    const json::object& sent = report.at("log").as_array().at(0).as_object();
    EXPECT_EQ(sent.at("method").as_string(), "POST");
    EXPECT_EQ(sent.at("path").as_string(), "/v1/payment_intents");
    EXPECT_TRUE(sent.at("bearer").as_bool());
    EXPECT_EQ(sent.at("content_type").as_string(), "application/x-www-form-urlencoded");
    EXPECT_EQ(sent.at("idempotency_key").as_string(), IntentIdempotencyKey(kJobA, 99, "usd"));
    const json::object& form = sent.at("form").as_object();
    EXPECT_EQ(form.at("amount").as_string(), "99");
    EXPECT_EQ(form.at("currency").as_string(), "usd");
    EXPECT_EQ(form.at("metadata[job_id]").as_string(), kJobA);
    // Cards only by default: automatic methods include ones (SEPA, ACH) that succeed days later.
    EXPECT_EQ(form.at("payment_method_types[]").as_string(), "card");
    EXPECT_FALSE(form.contains("automatic_payment_methods[enabled]"));
}

TEST_F(StripeClientTest, CreateSendsEveryPaymentMethodType) {
    client_->CreatePaymentIntent({.amount = 99,
                                  .currency = "usd",
                                  .job_id = kJobA,
                                  .idempotency_key = IntentIdempotencyKey(kJobA, 99, "usd"),
                                  .payment_method_types = {"card", "link"}});
    const json::value report = mock_->Control("GET", "/_mock/requests");
    const json::object& form = report.at("log").as_array().at(0).as_object().at("form").as_object();
    const json::array& types = form.at("payment_method_types[]").as_array();
    ASSERT_EQ(types.size(), 2u);
    EXPECT_EQ(types[0].as_string(), "card");
    EXPECT_EQ(types[1].as_string(), "link");
}

TEST_F(StripeClientTest, CreateWithSameKeyGivesSameIntent) {
    EXPECT_EQ(Create(kJobA).id, Create(kJobA).id);
    EXPECT_NE(Create(kJobA).id, Create(kJobB).id);
    EXPECT_EQ(mock_->Count("/v1/payment_intents"), 4);
}

TEST_F(StripeClientTest, RetrieveSeesStatusChanges) {
    const PaymentIntent created = Create(kJobA);
    mock_->Control("POST", "/_mock/payment_intents/" + created.id, R"({"status":"succeeded"})");
    const auto found = client_->RetrievePaymentIntent(created.id);
    ASSERT_TRUE(found.has_value());
    EXPECT_EQ(found->status, "succeeded");
    EXPECT_EQ(found->amount_received, 99);
    EXPECT_EQ(found->metadata_job_id, kJobA);
}

TEST_F(StripeClientTest, UnknownIntentIsNoSuchIntent) {
    EXPECT_FALSE(client_->RetrievePaymentIntent("pi_doesnotexist").has_value());
    EXPECT_EQ(mock_->Count("/v1/payment_intents/pi_doesnotexist"), 1);  // 404 is not retried
}

TEST_F(StripeClientTest, MalformedIdSendsNothing) {
    const core::Error error = ErrorOf([&] { client_->RetrievePaymentIntent("pi_x/../charges"); });
    EXPECT_EQ(error.code(), core::ErrorCode::kInvalidInput);
    EXPECT_EQ(mock_->Total(), 0);
}

TEST_F(StripeClientTest, ServerErrorsRetriedThenRecovered) {
    const PaymentIntent created = Create(kJobA);
    Fault(R"({"kind":"500","count":2})");
    EXPECT_TRUE(client_->RetrievePaymentIntent(created.id).has_value());
    EXPECT_EQ(mock_->Count("/v1/payment_intents/" + created.id), 3);
}

struct FaultCase {
    const char* id;
    const char* spec;  // applied to kAttempts requests
    int expected_retry_after;
    const char* problem;  // in the error detail
};

const FaultCase kFaults[] = {
    {"F01_500", R"({"kind":"500","count":3})", kDefaultRetryAfter, "HTTP 500"},
    {"F02_503", R"({"kind":"503","count":3})", kDefaultRetryAfter, "HTTP 503"},
    {"F03_429_with_retry_after", R"({"kind":"429","count":3,"retry_after":2})", 2, "HTTP 429"},
    {"F04_429_without_retry_after", R"({"kind":"429","count":3})", kDefaultRetryAfter, "HTTP 429"},
    {"F05_hang_past_timeout", R"({"kind":"hang","count":3,"seconds":10})", kDefaultRetryAfter,
     "timed out"},
    {"F06_answer_cut_short", R"({"kind":"truncate","count":3})", kDefaultRetryAfter,
     "connection broke"},
};

class StripeFaultTest : public StripeClientTest, public ::testing::WithParamInterface<FaultCase> {};

TEST_P(StripeFaultTest, BoundedRetriesThen503ThenRecovery) {
    const FaultCase& c = GetParam();
    const PaymentIntent created = Create(kJobA);
    const std::string path = "/v1/payment_intents/" + created.id;
    Fault(c.spec);
    // Only a hang needs the short timeout; everything else answers at once.
    StripeClient impatient(ShortTimeout(FastOptions(mock_->base_url())));
    const core::Error error = ErrorOf([&] { impatient.RetrievePaymentIntent(created.id); });
    EXPECT_EQ(error.code(), core::ErrorCode::kUpstreamUnavailable) << error.what();
    EXPECT_EQ(error.retry_after(), c.expected_retry_after);
    EXPECT_NE(std::string(error.what()).find(c.problem), std::string::npos) << error.what();
    EXPECT_EQ(std::string(error.what()).find("sk_"), std::string::npos) << error.what();
    EXPECT_EQ(mock_->Count(path), kAttempts);
    // The faults are used up: the same call now succeeds.
    EXPECT_TRUE(client_->RetrievePaymentIntent(created.id).has_value());
    EXPECT_EQ(mock_->Count(path), kAttempts + 1);
}

INSTANTIATE_TEST_SUITE_P(Faults, StripeFaultTest, ::testing::ValuesIn(kFaults),
                         [](const auto& info) { return std::string(info.param.id); });

TEST_F(StripeClientTest, ConnectionClosedWithoutAnswerIsRetried) {
    // libcurl itself resends once on a fresh connection when a reused one dies before any
    // answer, so only the outcome is asserted, not the request count.
    const PaymentIntent created = Create(kJobA);
    Fault(R"({"kind":"close","count":1})");
    EXPECT_TRUE(client_->RetrievePaymentIntent(created.id).has_value());
}

TEST_F(StripeClientTest, CreateIsRetriedWithTheSameIdempotencyKey) {
    Fault(R"({"kind":"500","count":1,"path":"/v1/payment_intents"})");
    const PaymentIntent intent = Create(kJobA);
    const json::value report = mock_->Control("GET", "/_mock/requests");
    const json::array& log = report.at("log").as_array();
    ASSERT_EQ(log.size(), 2u);
    EXPECT_EQ(log[0].at("idempotency_key"), log[1].at("idempotency_key"));
    EXPECT_EQ(Create(kJobA).id, intent.id);
}

TEST_F(StripeClientTest, OtherRefusalsAreNotRetried) {
    const core::Error error = ErrorOf([&] {
        client_->CreatePaymentIntent(
            {.amount = 0, .currency = "usd", .job_id = kJobA, .idempotency_key = "k-zero"});
    });
    EXPECT_EQ(error.code(), core::ErrorCode::kInternal);
    EXPECT_NE(std::string(error.what()).find("parameter_invalid_integer"), std::string::npos)
        << error.what();
    EXPECT_EQ(mock_->Count("/v1/payment_intents"), 1);
}

TEST(StripeClientStandaloneTest, DefaultsAreThreeAttemptsWithinTenSecondsEach) {
    const StripeClientOptions options;
    EXPECT_EQ(options.retry.max_attempts, 3);
    EXPECT_EQ(options.retry.Ceiling(0), std::chrono::milliseconds(250));
    EXPECT_EQ(options.retry.Ceiling(1), std::chrono::milliseconds(500));
    EXPECT_EQ(options.retry.Ceiling(5), std::chrono::milliseconds(2000));
    EXPECT_EQ(options.connect_timeout, std::chrono::milliseconds(3000));
    EXPECT_EQ(options.request_timeout, std::chrono::milliseconds(10000));
}

TEST(StripeClientStandaloneTest, WrongKeyIs503WithoutQuotingTheKey) {
    StripeMockProcess mock({"--api-key", "sk_test_therightkey"});
    StripeClient client(FastOptions(mock.base_url(), "sk_test_thewrongkey"));
    const core::Error error = ErrorOf([&] { client.RetrievePaymentIntent("pi_any"); });
    EXPECT_EQ(error.code(), core::ErrorCode::kUpstreamUnavailable);
    EXPECT_TRUE(error.retry_after().has_value());
    EXPECT_EQ(std::string(error.what()).find("sk_"), std::string::npos) << error.what();
    EXPECT_EQ(mock.Total(), 1);
}

TEST(StripeClientStandaloneTest, StripeDownIs503) {
    auto mock = std::make_unique<StripeMockProcess>();
    const std::string base = mock->base_url();
    mock->Stop();  // nothing listens on that port any more
    StripeClient client(FastOptions(base));
    const core::Error error = ErrorOf([&] { client.RetrievePaymentIntent("pi_any"); });
    EXPECT_EQ(error.code(), core::ErrorCode::kUpstreamUnavailable);
    EXPECT_NE(std::string(error.what()).find("could not connect"), std::string::npos)
        << error.what();
    EXPECT_EQ(error.retry_after(), kDefaultRetryAfter);
}

// ---- the payment flow over the wire -------------------------------------------------------

class PaymentFlowTest : public StripeClientTest {
  protected:
    PaymentFlowTest() {
        config_ = testing::PaymentConfig();
        config_.stripe_secret_key = kKey;
        store_.Put(MakeJob(kJobA));
        store_.Put(MakeJob(kJobB));
    }
    PaymentService Service() { return PaymentService(config_, store_, *client_); }

    core::Config config_;
    FakeJobStore store_;
};

TEST_F(PaymentFlowTest, PaidDownloadsMakeNoStripeCall) {
    const IntentOffer offer = Service().CreateIntent(kJobA);
    mock_->Control("POST", "/_mock/payment_intents/" + offer.payment_intent_id,
                   R"({"status":"succeeded"})");
    const std::string path = "/v1/payment_intents/" + offer.payment_intent_id;
    EXPECT_EQ(Service().AuthorizeDownload(store_.At(kJobA), offer.payment_intent_id, 1),
              DownloadAccess::kPaidNow);
    EXPECT_EQ(mock_->Count(path), 1);
    const int64_t total = mock_->Total();
    for (int i = 0; i < 3; ++i) {
        EXPECT_EQ(Service().AuthorizeDownload(store_.At(kJobA), offer.payment_intent_id, 2),
                  DownloadAccess::kAlreadyPaid);
    }
    EXPECT_EQ(mock_->Total(), total);
}

TEST_F(PaymentFlowTest, OutageGives503RecordsNothingAndRecovers) {
    const IntentOffer offer = Service().CreateIntent(kJobA);
    mock_->Control("POST", "/_mock/payment_intents/" + offer.payment_intent_id,
                   R"({"status":"succeeded"})");
    Fault(R"({"kind":"500","count":3})");
    const core::Error error =
        ErrorOf([&] { Service().AuthorizeDownload(store_.At(kJobA), offer.payment_intent_id, 1); });
    EXPECT_EQ(error.code(), core::ErrorCode::kUpstreamUnavailable);
    EXPECT_TRUE(error.retry_after().has_value());
    EXPECT_EQ(store_.mutations(), 0);
    EXPECT_EQ(Service().AuthorizeDownload(store_.At(kJobA), offer.payment_intent_id, 1),
              DownloadAccess::kPaidNow);
}

TEST_F(PaymentFlowTest, TestModeIntentWithLiveKeyRefused) {
    const json::value made = mock_->Control(
        "POST", "/_mock/payment_intents",
        std::string(R"({"amount":99,"currency":"usd","status":"succeeded","livemode":false,)") +
            R"("metadata":{"job_id":")" + kJobA + R"("}})");
    config_.stripe_secret_key = "sk_live_clienttest0123456789";
    StripeClient live(FastOptions(mock_->base_url(), config_.stripe_secret_key));
    PaymentService service(config_, store_, live);
    const std::string id(made.at("id").as_string());
    const core::Error error = ErrorOf([&] { service.AuthorizeDownload(store_.At(kJobA), id, 1); });
    EXPECT_EQ(error.code(), core::ErrorCode::kPaymentRequired);
    EXPECT_EQ(std::string(error.what()).find("sk_live"), std::string::npos);
    EXPECT_FALSE(store_.At(kJobA).paid);
}

TEST_F(PaymentFlowTest, WebhookSignedByTheMockUnlocksWithoutStripeCalls) {
    const IntentOffer offer = Service().CreateIntent(kJobA);
    mock_->Control("POST", "/_mock/payment_intents/" + offer.payment_intent_id,
                   R"({"status":"succeeded"})");
    const json::value event = mock_->Control(
        "POST", "/_mock/events",
        R"({"type":"payment_intent.succeeded","intent_id":")" + offer.payment_intent_id + "\"}");
    const std::string body = json::serialize(event);
    json::object sign_request{{"payload", body},
                              {"secret", config_.stripe_webhook_secret},
                              {"timestamp", core::NowMillis() / 1000}};
    const std::string header(mock_->Control("POST", "/_mock/sign", json::serialize(sign_request))
                                 .at("header")
                                 .as_string());

    WebhookHandler webhook(config_, store_);
    // The same signature over a changed body is refused (cross-checks both signers).
    std::string tampered = body;
    tampered.replace(tampered.find(kJobA), std::string(kJobA).size(), kJobB);
    EXPECT_THROW(webhook.Handle(header, tampered, core::NowMillis()), core::Error);
    EXPECT_FALSE(store_.At(kJobB).paid);

    const int64_t total = mock_->Total();
    EXPECT_EQ(webhook.Handle(header, body, core::NowMillis()).outcome, WebhookOutcome::kPaid);
    EXPECT_EQ(Service().AuthorizeDownload(store_.At(kJobA), "", 1), DownloadAccess::kAlreadyPaid);
    EXPECT_EQ(mock_->Total(), total);
}

/// Sends every log line to a string for the lifetime of the object.
class CapturedLog {
  public:
    CapturedLog() : previous_(spdlog::default_logger()) {
        auto sink = std::make_shared<spdlog::sinks::ostream_sink_mt>(text_);
        auto logger = std::make_shared<spdlog::logger>("capture", sink);
        logger->set_level(spdlog::level::trace);
        spdlog::set_default_logger(logger);
    }
    ~CapturedLog() { spdlog::set_default_logger(previous_); }
    std::string text() const { return text_.str(); }

  private:
    std::shared_ptr<spdlog::logger> previous_;
    std::ostringstream text_;
};

TEST_F(PaymentFlowTest, SecretsNeverReachTheLogOrErrors) {
    std::string errors;
    auto expect_error = [&](auto&& call) { errors += std::string(ErrorOf(call).what()) + "\n"; };
    std::string client_secret;
    std::string logged;
    {
        CapturedLog log;
        const IntentOffer offer = Service().CreateIntent(kJobA);
        client_secret = offer.client_secret;
        // Retries, an outage, a refusal, a rejected payment, then the good path.
        Fault(R"({"kind":"500","count":3})");
        expect_error(
            [&] { Service().AuthorizeDownload(store_.At(kJobA), offer.payment_intent_id, 1); });
        expect_error([&] { Service().AuthorizeDownload(store_.At(kJobA), client_secret, 1); });
        expect_error(
            [&] { Service().AuthorizeDownload(store_.At(kJobA), offer.payment_intent_id, 1); });
        StripeMockProcess strict({"--api-key", "sk_test_onlythisone"});
        StripeClient wrong_key(FastOptions(strict.base_url(), kKey));
        expect_error([&] { wrong_key.RetrievePaymentIntent(offer.payment_intent_id); });
        WebhookHandler webhook(config_, store_);
        const std::string body = R"({"id":"evt_log","type":"payment_intent.succeeded"})";
        expect_error([&] {
            webhook.Handle(SignStripePayload(body, "whsec_wrongsecret", 1), body,
                           core::NowMillis());
        });
        mock_->Control("POST", "/_mock/payment_intents/" + offer.payment_intent_id,
                       R"({"status":"succeeded"})");
        EXPECT_EQ(Service().AuthorizeDownload(store_.At(kJobA), offer.payment_intent_id, 1),
                  DownloadAccess::kPaidNow);
        logged = log.text();
    }
    ASSERT_FALSE(client_secret.empty());
    // The capture worked: the retries and the outage were logged.
    EXPECT_NE(logged.find("stripe_retry"), std::string::npos) << logged;
    EXPECT_NE(logged.find("stripe_auth_failed"), std::string::npos) << logged;
    for (const std::string& secret :
         {std::string(kKey), std::string("sk_test_onlythisone"), config_.stripe_webhook_secret,
          client_secret, std::string("whsec_wrongsecret")}) {
        EXPECT_EQ(logged.find(secret), std::string::npos) << secret;
        EXPECT_EQ(errors.find(secret), std::string::npos) << secret;
    }
}

}  // namespace
}  // namespace songd::payment
