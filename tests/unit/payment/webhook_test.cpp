#include "payment/webhook.h"

#include <gtest/gtest.h>

#include <functional>
#include <string>

#include "fakes.h"
#include "payment/payment_service.h"

namespace songd::payment {
namespace {

using testing::FakeJobStore;
using testing::FakeStripe;
using testing::kJobA;
using testing::kJobB;
using testing::MakeJob;
using testing::PaymentConfig;

constexpr int64_t kNowSeconds = 1'790'000'000;
constexpr int64_t kNowMs = kNowSeconds * 1000;
constexpr const char* kSecret = "whsec_unittestsecret0123";

TEST(SignatureTest, MatchesIndependentHmac) {
    // Expected value computed with Python's hmac module:
    //   hmac.new(b'whsec_unittestsecret0123', b'1790000000.{"id":"evt_1"}', sha256).hexdigest()
    EXPECT_EQ(SignStripePayload(R"({"id":"evt_1"})", kSecret, kNowSeconds),
              "t=1790000000,v1=d377913652ef457bd747e23e70af27de6c627b07cba3e85ece6c36240a36ff46");
}

struct SignatureCase {
    const char* id;
    std::function<std::string(const std::string& body)> header;  // built for kBody
    std::string body;                                            // what arrives
    bool valid;
};

const std::string kBody = R"({"id":"evt_sig","type":"payment_intent.succeeded"})";

std::string Signed(int64_t t, const std::string& secret = kSecret) {
    return SignStripePayload(kBody, secret, t);
}

std::string V1Of(const std::string& header) { return header.substr(header.find("v1=") + 3); }

const SignatureCase kSignatureCases[] = {
    {"S01_valid", [](auto&) { return Signed(kNowSeconds); }, kBody, true},
    {"S02_wrong_secret", [](auto&) { return Signed(kNowSeconds, "whsec_someoneelse"); }, kBody,
     false},
    {"S03_stale_301s", [](auto&) { return Signed(kNowSeconds - 301); }, kBody, false},
    {"S04_edge_300s", [](auto&) { return Signed(kNowSeconds - 300); }, kBody, true},
    {"S05_future_301s", [](auto&) { return Signed(kNowSeconds + 301); }, kBody, false},
    {"S06_body_changed", [](auto&) { return Signed(kNowSeconds); },
     R"({"id":"evt_sig","type":"payment_intent.succeeded" })", false},
    {"S07_missing_header", [](auto&) { return std::string(); }, kBody, false},
    {"S08_no_v1", [](auto&) { return "t=" + std::to_string(kNowSeconds); }, kBody, false},
    {"S09_no_timestamp", [](auto&) { return "v1=" + V1Of(Signed(kNowSeconds)); }, kBody, false},
    {"S10_timestamp_not_number", [](auto&) { return "t=17x,v1=" + V1Of(Signed(kNowSeconds)); },
     kBody, false},
    {"S11_second_v1_matches_rotation",
     [](auto&) {
         return "t=" + std::to_string(kNowSeconds) +
                ",v1=" + V1Of(Signed(kNowSeconds, "whsec_oldsecret")) +
                ",v1=" + V1Of(Signed(kNowSeconds));
     },
     kBody, true},
    {"S12_only_v0",
     [](auto&) { return "t=" + std::to_string(kNowSeconds) + ",v0=" + V1Of(Signed(kNowSeconds)); },
     kBody, false},
    {"S13_timestamp_changed_after_signing",
     [](auto&) {
         return "t=" + std::to_string(kNowSeconds + 1) + ",v1=" + V1Of(Signed(kNowSeconds));
     },
     kBody, false},
    {"S14_spaces_after_commas",
     [](auto&) { return "t=" + std::to_string(kNowSeconds) + ", v1=" + V1Of(Signed(kNowSeconds)); },
     kBody, true},
    {"S15_truncated_signature",
     [](auto&) { return Signed(kNowSeconds).substr(0, Signed(kNowSeconds).size() - 1); }, kBody,
     false},
};

class SignatureCaseTest : public ::testing::TestWithParam<SignatureCase> {};

TEST_P(SignatureCaseTest, AcceptsOnlyGenuineFreshSignatures) {
    const SignatureCase& c = GetParam();
    const std::string header = c.header(kBody);
    if (c.valid) {
        EXPECT_NO_THROW(VerifyStripeSignature(header, c.body, kSecret, kNowSeconds));
        return;
    }
    try {
        VerifyStripeSignature(header, c.body, kSecret, kNowSeconds);
        ADD_FAILURE() << "accepted";
    } catch (const core::Error& error) {
        EXPECT_EQ(error.code(), core::ErrorCode::kBadSignature);
        const std::string what = error.what();
        EXPECT_EQ(what.find("whsec_"), std::string::npos) << what;
        EXPECT_EQ(what.find(V1Of(Signed(kNowSeconds))), std::string::npos) << what;
    }
}

INSTANTIATE_TEST_SUITE_P(Cases, SignatureCaseTest, ::testing::ValuesIn(kSignatureCases),
                         [](const auto& info) { return std::string(info.param.id); });

/// A Stripe event document for a PaymentIntent, in the field order Stripe uses.
std::string EventJson(const std::string& event_id, const std::string& type,
                      const std::string& intent_id, const std::string& job_id,
                      const std::string& status = "succeeded", int64_t received = 99,
                      const std::string& currency = "usd", bool livemode = false) {
    const std::string metadata = job_id.empty() ? "{}" : R"({"job_id":")" + job_id + R"("})";
    return R"({"id":")" + event_id + R"(","object":"event","api_version":"2024-06-20",)" +
           R"("created":1790000000,"data":{"object":{"id":")" + intent_id +
           R"(","object":"payment_intent","amount":99,"amount_received":)" +
           std::to_string(received) + R"(,"client_secret":")" + intent_id +
           R"(_secret_abc","currency":")" + currency + R"(","livemode":)" +
           (livemode ? "true" : "false") + R"(,"metadata":)" + metadata + R"(,"status":")" +
           status + R"("}},"livemode":)" + (livemode ? "true" : "false") +
           R"(,"pending_webhooks":1,"type":")" + type + R"("})";
}

class WebhookHandlerTest : public ::testing::Test {
  protected:
    WebhookHandlerTest() : config_(PaymentConfig()) {
        store_.Put(MakeJob(kJobA));
        store_.Put(MakeJob(kJobB));
    }

    WebhookResult Deliver(const std::string& body) {
        WebhookHandler handler(config_, store_);
        return handler.Handle(SignStripePayload(body, kSecret, kNowSeconds), body, kNowMs);
    }

    core::Config config_;
    FakeJobStore store_;
};

TEST_F(WebhookHandlerTest, SucceededMarksJobPaid) {
    const auto result = Deliver(EventJson("evt_1", "payment_intent.succeeded", "pi_a", kJobA));
    EXPECT_EQ(result.outcome, WebhookOutcome::kPaid);
    EXPECT_EQ(result.job_id, kJobA);
    const jobs::Job job = store_.At(kJobA);
    EXPECT_TRUE(job.paid);
    EXPECT_EQ(job.paid_intent_id, "pi_a");
    EXPECT_FALSE(store_.At(kJobB).paid);
}

TEST_F(WebhookHandlerTest, WebhookAloneMakesJobDownloadable) {
    Deliver(EventJson("evt_1", "payment_intent.succeeded", "pi_a", kJobA));
    FakeStripe stripe;
    PaymentService payments(config_, store_, stripe);
    EXPECT_EQ(payments.AuthorizeDownload(store_.At(kJobA), "", kNowMs),
              DownloadAccess::kAlreadyPaid);
    EXPECT_EQ(stripe.retrieve_calls(), 0);
}

TEST_F(WebhookHandlerTest, ReplayedEventProcessedOnce) {
    const std::string body = EventJson("evt_replay", "payment_intent.succeeded", "pi_a", kJobA);
    EXPECT_EQ(Deliver(body).outcome, WebhookOutcome::kPaid);
    EXPECT_EQ(Deliver(body).outcome, WebhookOutcome::kDuplicate);
    EXPECT_EQ(Deliver(body).outcome, WebhookOutcome::kDuplicate);
    EXPECT_EQ(store_.bind_calls(), 1);
}

TEST_F(WebhookHandlerTest, AnEventThatFailedToApplyIsAppliedWhenRedelivered) {
    // The store fails between recording the event and binding the payment: the webhook
    // answers an error, and Stripe's redelivery must pay the job, not be a "duplicate".
    const std::string body = EventJson("evt_retry", "payment_intent.succeeded", "pi_a", kJobA);
    store_.fail_binds = 1;
    EXPECT_THROW(Deliver(body), core::Error);
    EXPECT_FALSE(store_.At(kJobA).paid);
    EXPECT_EQ(Deliver(body).outcome, WebhookOutcome::kPaid);
    EXPECT_TRUE(store_.At(kJobA).paid);
    EXPECT_EQ(Deliver(body).outcome, WebhookOutcome::kDuplicate);
}

TEST_F(WebhookHandlerTest, ACrashBetweenReceivingAndApplyingNeverLosesTheEvent) {
    // The process dies while binding: nothing afterwards (not even taking a record back)
    // runs. Stripe redelivers after the restart, and the job must be paid.
    const std::string body = EventJson("evt_crash", "payment_intent.succeeded", "pi_a", kJobA);
    store_.crash_at_bind = true;
    EXPECT_THROW(Deliver(body), core::Error);
    store_.Restart();
    EXPECT_FALSE(store_.At(kJobA).paid);
    EXPECT_EQ(Deliver(body).outcome, WebhookOutcome::kPaid);
    EXPECT_TRUE(store_.At(kJobA).paid);
    EXPECT_EQ(Deliver(body).outcome, WebhookOutcome::kDuplicate);
}

TEST_F(WebhookHandlerTest, ACrashAfterApplyingBeforeRecordingIsHarmless) {
    const std::string body = EventJson("evt_crash2", "payment_intent.succeeded", "pi_a", kJobA);
    store_.crash_at_record = true;
    EXPECT_THROW(Deliver(body), core::Error);
    store_.Restart();
    EXPECT_TRUE(store_.At(kJobA).paid);
    // The redelivery applies again: the same intent on the same job changes nothing.
    const auto again = Deliver(body);
    EXPECT_EQ(again.outcome, WebhookOutcome::kAlreadyPaid);
    EXPECT_EQ(store_.At(kJobA).paid_intent_id, "pi_a");
    EXPECT_EQ(Deliver(body).outcome, WebhookOutcome::kDuplicate);
}

TEST_F(WebhookHandlerTest, PaymentForAJobThatCannotBeDeliveredIsUnappliedAndCounted) {
    struct Case {
        const char* name;
        jobs::Job job;
        const char* reason;
    };
    jobs::Job processing = MakeJob(kJobA, jobs::JobStatus::kProcessing);
    jobs::Job failed = MakeJob(kJobA, jobs::JobStatus::kFailed);
    jobs::Job late = MakeJob(kJobA);
    late.expires_at = kNowMs;  // retention may delete the files any moment
    const Case cases[] = {{"processing", processing, "job_processing"},
                          {"failed", failed, "job_failed"},
                          {"expired", late, "job_expired"}};
    int64_t counted = 0;
    for (const Case& c : cases) {
        store_.Put(c.job);
        PaymentStats stats;
        WebhookHandler handler(config_, store_, &stats);
        const std::string body =
            EventJson(std::string("evt_u_") + c.name, "payment_intent.succeeded",
                      std::string("pi_u") + c.name, kJobA);
        const WebhookResult result =
            handler.Handle(SignStripePayload(body, kSecret, kNowSeconds), body, kNowMs);
        EXPECT_EQ(result.outcome, WebhookOutcome::kUnapplied) << c.name;
        EXPECT_NE(result.detail.find(c.reason), std::string::npos) << result.detail;
        EXPECT_FALSE(store_.At(kJobA).paid) << c.name;
        EXPECT_EQ(stats.Unapplied(), 1) << c.name;
        EXPECT_NE(stats.Prometheus().find("songd_payments_unapplied_total 1"), std::string::npos);
        counted += stats.Unapplied();
    }
    EXPECT_EQ(counted, 3);
}

TEST_F(WebhookHandlerTest, APaidJobKeepsItsFilesForThePaidRetention) {
    config_.paid_retention_days = 30;
    jobs::Job soon = MakeJob(kJobA);
    soon.expires_at = kNowMs + 1000;  // a second left
    store_.Put(soon);
    Deliver(EventJson("evt_keep", "payment_intent.succeeded", "pi_a", kJobA));
    EXPECT_TRUE(store_.At(kJobA).paid);
    EXPECT_EQ(store_.At(kJobA).expires_at, kNowMs + 30LL * 24 * 3600 * 1000);
}

TEST_F(WebhookHandlerTest, ReplayedFailureCannotUndoAPayment) {
    const std::string failed = EventJson("evt_f", "payment_intent.payment_failed", "pi_a", kJobA,
                                         "requires_payment_method", 0);
    EXPECT_EQ(Deliver(failed).outcome, WebhookOutcome::kStatusRecorded);
    Deliver(EventJson("evt_s", "payment_intent.succeeded", "pi_a", kJobA));
    EXPECT_EQ(Deliver(failed).outcome, WebhookOutcome::kDuplicate);
    // Even a fresh failure event (another attempt) leaves the paid job paid.
    Deliver(EventJson("evt_f2", "payment_intent.payment_failed", "pi_a", kJobA,
                      "requires_payment_method", 0));
    EXPECT_TRUE(store_.At(kJobA).paid);
    EXPECT_EQ(store_.At(kJobA).payment_status, "succeeded");
}

/// A signed event and what it must do to job A.
struct EventCase {
    const char* id;
    std::function<void(FakeJobStore&)> setup;
    std::string body;
    WebhookOutcome outcome;
    bool job_a_paid;
    const char* job_a_payment_status;
};

const EventCase kEventCases[] = {
    // Money taken that does not pay for the song: recorded for a refund.
    {"E01_one_cent_short", [](FakeJobStore&) {},
     EventJson("evt_e1", "payment_intent.succeeded", "pi_a", kJobA, "succeeded", 98),
     WebhookOutcome::kUnapplied, false, ""},
    {"E02_other_currency", [](FakeJobStore&) {},
     EventJson("evt_e2", "payment_intent.succeeded", "pi_a", kJobA, "succeeded", 99, "eur"),
     WebhookOutcome::kUnapplied, false, ""},
    {"E03_livemode_mismatch", [](FakeJobStore&) {},
     EventJson("evt_e3", "payment_intent.succeeded", "pi_a", kJobA, "succeeded", 99, "usd", true),
     WebhookOutcome::kRejected, false, ""},
    {"E04_intent_bound_to_other_job",
     [](FakeJobStore& s) { s.BindPayment(kJobB, "pi_used", 1, 0); },
     EventJson("evt_e4", "payment_intent.succeeded", "pi_used", kJobA), WebhookOutcome::kRejected,
     false, ""},
    {"E05_payment_failed", [](FakeJobStore&) {},
     EventJson("evt_e5", "payment_intent.payment_failed", "pi_a", kJobA, "requires_payment_method",
               0),
     WebhookOutcome::kStatusRecorded, false, "requires_payment_method"},
    {"E06_canceled", [](FakeJobStore&) {},
     EventJson("evt_e6", "payment_intent.canceled", "pi_a", kJobA, "canceled", 0),
     WebhookOutcome::kStatusRecorded, false, "canceled"},
    {"E07_unknown_type", [](FakeJobStore&) {},
     EventJson("evt_e7", "payment_intent.created", "pi_a", kJobA), WebhookOutcome::kIgnored, false,
     ""},
    {"E08_no_job_metadata", [](FakeJobStore&) {},
     EventJson("evt_e8", "payment_intent.succeeded", "pi_a", ""), WebhookOutcome::kIgnored, false,
     ""},
    {"E09_unknown_job", [](FakeJobStore&) {},
     EventJson("evt_e9", "payment_intent.succeeded", "pi_a", testing::kJobMissing),
     WebhookOutcome::kUnapplied, false, ""},
    {"E10_job_id_not_an_id", [](FakeJobStore&) {},
     EventJson("evt_e10", "payment_intent.succeeded", "pi_a", "../x"), WebhookOutcome::kIgnored,
     false, ""},
    {"E11_already_paid_by_other_intent",
     [](FakeJobStore& s) { s.BindPayment(kJobA, "pi_earlier", 1, 0); },
     EventJson("evt_e11", "payment_intent.succeeded", "pi_a", kJobA), WebhookOutcome::kUnapplied,
     true, "succeeded"},  // paid twice: the second payment is to be refunded
    {"E12_other_job_event_leaves_a_alone", [](FakeJobStore&) {},
     EventJson("evt_e12", "payment_intent.succeeded", "pi_b", kJobB), WebhookOutcome::kPaid, false,
     ""},
};

class WebhookEventTest : public WebhookHandlerTest,
                         public ::testing::WithParamInterface<EventCase> {};

TEST_P(WebhookEventTest, AppliesTheRules) {
    const EventCase& c = GetParam();
    c.setup(store_);
    const WebhookResult result = Deliver(c.body);
    EXPECT_EQ(WebhookOutcomeName(result.outcome), std::string(WebhookOutcomeName(c.outcome)))
        << result.detail;
    const jobs::Job job = store_.At(kJobA);
    EXPECT_EQ(job.paid, c.job_a_paid);
    EXPECT_EQ(job.payment_status, c.job_a_payment_status);
    EXPECT_EQ(result.detail.find("_secret_"), std::string::npos) << result.detail;
}

INSTANTIATE_TEST_SUITE_P(Events, WebhookEventTest, ::testing::ValuesIn(kEventCases),
                         [](const auto& info) { return std::string(info.param.id); });

/// Deliveries that must be refused before any state is read or written.
struct RefusedDelivery {
    const char* id;
    bool configure_secret;
    std::function<std::string(const std::string& body)> header;
    std::string body;
    core::ErrorCode code;
};

const std::string kGoodEvent = EventJson("evt_r", "payment_intent.succeeded", "pi_a", kJobA);

const RefusedDelivery kRefused[] = {
    {"R01_webhooks_not_configured", false,
     [](const std::string& b) { return SignStripePayload(b, kSecret, kNowSeconds); }, kGoodEvent,
     core::ErrorCode::kForbidden},
    {"R02_wrong_secret", true,
     [](const std::string& b) { return SignStripePayload(b, "whsec_attacker", kNowSeconds); },
     kGoodEvent, core::ErrorCode::kBadSignature},
    {"R03_stale_timestamp", true,
     [](const std::string& b) { return SignStripePayload(b, kSecret, kNowSeconds - 301); },
     kGoodEvent, core::ErrorCode::kBadSignature},
    {"R04_body_changed_after_signing", true,
     [](const std::string&) { return SignStripePayload(kGoodEvent, kSecret, kNowSeconds); },
     EventJson("evt_r", "payment_intent.succeeded", "pi_a", kJobB), core::ErrorCode::kBadSignature},
    {"R05_missing_signature", true, [](const std::string&) { return std::string(); }, kGoodEvent,
     core::ErrorCode::kBadSignature},
    {"R06_signed_but_not_json", true,
     [](const std::string& b) { return SignStripePayload(b, kSecret, kNowSeconds); }, "{not json",
     core::ErrorCode::kMalformedRequest},
    {"R07_signed_intent_without_amount", true,
     [](const std::string& b) { return SignStripePayload(b, kSecret, kNowSeconds); },
     R"({"id":"evt_x","type":"payment_intent.succeeded","data":{"object":{"object":"payment_intent","id":"pi_a"}}})",
     core::ErrorCode::kMalformedRequest},
};

class RefusedDeliveryTest : public WebhookHandlerTest,
                            public ::testing::WithParamInterface<RefusedDelivery> {};

TEST_P(RefusedDeliveryTest, RefusedAndNothingTouched) {
    const RefusedDelivery& c = GetParam();
    if (!c.configure_secret) config_.stripe_webhook_secret.clear();
    WebhookHandler handler(config_, store_);
    try {
        handler.Handle(c.header(c.body), c.body, kNowMs);
        ADD_FAILURE() << "accepted";
    } catch (const core::Error& error) {
        EXPECT_EQ(error.code(), c.code) << error.what();
        EXPECT_EQ(std::string(error.what()).find("whsec_"), std::string::npos);
    }
    EXPECT_EQ(store_.mutations(), 0);
    EXPECT_FALSE(store_.At(kJobA).paid);
    EXPECT_FALSE(store_.At(kJobB).paid);
}

INSTANTIATE_TEST_SUITE_P(Refused, RefusedDeliveryTest, ::testing::ValuesIn(kRefused),
                         [](const auto& info) { return std::string(info.param.id); });

}  // namespace
}  // namespace songd::payment
