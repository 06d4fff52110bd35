#include "payment/verify.h"

#include <gtest/gtest.h>

#include <map>
#include <optional>

#include "fakes.h"
#include "payment/payment_intent.h"

namespace songd::payment {
namespace {

using testing::kJobA;
using testing::kJobB;
using testing::SucceededIntent;

PaymentTarget Target(const char* job_id = kJobA, int64_t price = 99,
                     const char* generate_intent = "") {
    return {job_id, price, generate_intent};
}

PaymentPolicy TestPolicy(bool live_key = false) {
    PaymentPolicy policy;
    policy.price_cents = 99;
    policy.currency = "usd";
    policy.live_key = live_key;
    policy.api_prefix = "/api/v1";
    return policy;
}

struct CheckCase {
    const char* id;
    void (*mutate)(PaymentIntent&);
    bool live_key;
    std::optional<RejectReason> expected;  // nullopt: the intent pays for job A
};

const CheckCase kCheckCases[] = {
    {"V01_exact_price", [](PaymentIntent&) {}, false, std::nullopt},
    {"V02_overpaid", [](PaymentIntent& i) { i.amount_received = 150; }, false, std::nullopt},
    {"V03_one_cent_short", [](PaymentIntent& i) { i.amount_received = 98; }, false,
     RejectReason::kAmountShort},
    {"V04_nothing_received", [](PaymentIntent& i) { i.amount_received = 0; }, false,
     RejectReason::kAmountShort},
    {"V05_other_currency", [](PaymentIntent& i) { i.currency = "eur"; }, false,
     RejectReason::kCurrencyMismatch},
    {"V06_currency_case_ignored", [](PaymentIntent& i) { i.currency = "USD"; }, false,
     std::nullopt},
    {"V07_requires_payment_method", [](PaymentIntent& i) { i.status = "requires_payment_method"; },
     false, RejectReason::kNotSucceeded},
    {"V08_processing", [](PaymentIntent& i) { i.status = "processing"; }, false,
     RejectReason::kNotSucceeded},
    {"V09_canceled", [](PaymentIntent& i) { i.status = "canceled"; }, false,
     RejectReason::kNotSucceeded},
    {"V10_requires_action", [](PaymentIntent& i) { i.status = "requires_action"; }, false,
     RejectReason::kNotSucceeded},
    {"V11_requires_capture", [](PaymentIntent& i) { i.status = "requires_capture"; }, false,
     RejectReason::kNotSucceeded},
    {"V12_metadata_other_job", [](PaymentIntent& i) { i.metadata_job_id = kJobB; }, false,
     RejectReason::kOtherJob},
    // Any unbound succeeded intent in the account must not unlock a song.
    {"V13_metadata_absent", [](PaymentIntent& i) { i.metadata_job_id.clear(); }, false,
     RejectReason::kNoJobInMetadata},
    {"V14_test_intent_live_key", [](PaymentIntent&) {}, true, RejectReason::kLivemodeMismatch},
    {"V15_live_intent_test_key", [](PaymentIntent& i) { i.livemode = true; }, false,
     RejectReason::kLivemodeMismatch},
    {"V16_live_intent_live_key", [](PaymentIntent& i) { i.livemode = true; }, true, std::nullopt},
    {"V17_other_job_wins_over_status",
     [](PaymentIntent& i) {
         i.metadata_job_id = kJobB;
         i.status = "processing";
     },
     false, RejectReason::kOtherJob},
};

class CheckIntentTest : public ::testing::TestWithParam<CheckCase> {};

TEST_P(CheckIntentTest, DecidesAsTheRulesSay) {
    const CheckCase& c = GetParam();
    PaymentIntent intent = SucceededIntent("pi_case123", kJobA);
    c.mutate(intent);
    const auto rejection = CheckIntent(intent, Target(), TestPolicy(c.live_key));
    ASSERT_EQ(rejection.has_value(), c.expected.has_value())
        << (rejection ? rejection->detail : "accepted");
    if (rejection) {
        EXPECT_EQ(rejection->reason, *c.expected) << rejection->detail;
        // A sentence naming the intent, never its client secret.
        EXPECT_NE(rejection->detail.find("pi_case123"), std::string::npos) << rejection->detail;
        EXPECT_EQ(rejection->detail.back(), '.');
        EXPECT_EQ(rejection->detail.find("_secret_"), std::string::npos);
    }
}

INSTANTIATE_TEST_SUITE_P(Cases, CheckIntentTest, ::testing::ValuesIn(kCheckCases),
                         [](const auto& info) { return std::string(info.param.id); });

TEST(VerifyTest, StatusSentencesDifferPerStatus) {
    PaymentIntent a = SucceededIntent("pi_x1", kJobA);
    PaymentIntent b = a;
    a.status = "processing";
    b.status = "canceled";
    EXPECT_NE(CheckIntent(a, Target(), TestPolicy())->detail,
              CheckIntent(b, Target(), TestPolicy())->detail);
}

TEST(VerifyTest, OnlyTheIntentGivenAtGenerateMayLackTheJobId) {
    PaymentIntent intent = SucceededIntent("pi_oldclient1", kJobA);
    intent.metadata_job_id.clear();
    EXPECT_FALSE(CheckIntent(intent, Target(kJobA, 99, "pi_oldclient1"), TestPolicy()));
    const auto other = CheckIntent(intent, Target(kJobA, 99, "pi_someother"), TestPolicy());
    ASSERT_TRUE(other);
    EXPECT_EQ(other->reason, RejectReason::kNoJobInMetadata);
    EXPECT_STREQ(RejectReasonName(other->reason), "intent_without_job");
    // Given at generate for job A, it still does not pay for job B.
    EXPECT_TRUE(CheckIntent(intent, Target(kJobB, 99, ""), TestPolicy()));
}

TEST(VerifyTest, TheJobsOwnPriceDecides) {
    PaymentIntent intent = SucceededIntent("pi_cheaptier1", kJobA);
    intent.amount = intent.amount_received = 200;  // the 120-second tier
    EXPECT_FALSE(CheckIntent(intent, Target(kJobA, 200), TestPolicy()));
    const auto longer = CheckIntent(intent, Target(kJobA, 350), TestPolicy());
    ASSERT_TRUE(longer);
    EXPECT_EQ(longer->reason, RejectReason::kAmountShort);
    EXPECT_NE(longer->detail.find("350"), std::string::npos) << longer->detail;
}

TEST(VerifyTest, PriceTiersAndTheJobsFixedPrice) {
    PaymentPolicy policy = TestPolicy();
    policy.price_tiers = {{120, 200}, {240, 350}, {285, 500}};
    EXPECT_EQ(policy.PriceFor(95), 200);
    EXPECT_EQ(policy.PriceFor(120), 200);
    EXPECT_EQ(policy.PriceFor(121), 350);
    EXPECT_EQ(policy.PriceFor(285), 500);
    jobs::Job job = testing::MakeJob(kJobA);
    job.request.audio_length = 285;
    EXPECT_EQ(policy.PriceOf(job), 500) << "no stored price: today's for its length";
    job.price_cents = 350;
    EXPECT_EQ(policy.PriceOf(job), 350) << "the price fixed at create wins";
    EXPECT_EQ(PaymentTarget::Of(job, policy).price_cents, 350);
    policy.price_tiers.clear();
    EXPECT_EQ(policy.PriceFor(285), 99);
}

TEST(VerifyTest, NotPayableReasons) {
    jobs::Job job = testing::MakeJob(kJobA);
    EXPECT_EQ(NotPayableReason(job, 1000), "");
    job.expires_at = 1000;
    EXPECT_EQ(NotPayableReason(job, 1000), "job_expired");
    job.status = jobs::JobStatus::kProcessing;
    EXPECT_EQ(NotPayableReason(job, 0), "job_processing");
}

TEST(VerifyTest, LiveKeysAreRecognised) {
    EXPECT_TRUE(IsLiveKey("sk_live_abc"));
    EXPECT_TRUE(IsLiveKey("rk_live_abc"));
    EXPECT_FALSE(IsLiveKey("sk_test_abc"));
    EXPECT_FALSE(IsLiveKey(""));
    EXPECT_FALSE(IsLiveKey("pk_live_abc"));
}

TEST(VerifyTest, PaymentRequiredCarriesHowToPay) {
    const core::Error error =
        PaymentRequired(MakeRejection(RejectReason::kNoPayment), TestPolicy(), Target(kJobA, 350));
    EXPECT_EQ(error.code(), core::ErrorCode::kPaymentRequired);
    std::map<std::string, std::string> extra(error.extra().begin(), error.extra().end());
    EXPECT_EQ(extra.at("reason"), "\"no_payment\"");
    EXPECT_EQ(extra.at("amount"), "350") << "the job's own price";
    EXPECT_EQ(extra.at("currency"), "\"usd\"");
    EXPECT_EQ(extra.at("intent_url"), std::string("\"/api/v1/payments/") + kJobA + "/intent\"");
}

TEST(VerifyTest, RejectionsNeverQuoteMalformedIds) {
    // A client secret pasted as the id must not be echoed back.
    const Rejection r = MakeRejection(RejectReason::kNoSuchIntent, "pi_abc_secret_def");
    EXPECT_EQ(r.detail.find("secret"), std::string::npos) << r.detail;
}

TEST(PaymentIntentTest, ParsesStripeDocument) {
    const PaymentIntent intent = ParsePaymentIntent(R"({
        "id": "pi_3Abc", "object": "payment_intent", "amount": 99, "amount_received": 99,
        "currency": "usd", "status": "succeeded", "livemode": false,
        "client_secret": "pi_3Abc_secret_Xyz", "metadata": {"job_id": "j-1"}})");
    EXPECT_EQ(intent.id, "pi_3Abc");
    EXPECT_EQ(intent.amount_received, 99);
    EXPECT_EQ(intent.currency, "usd");
    EXPECT_EQ(intent.status, "succeeded");
    EXPECT_EQ(intent.client_secret, "pi_3Abc_secret_Xyz");
    EXPECT_EQ(intent.metadata_job_id, "j-1");
    EXPECT_FALSE(intent.livemode);
}

TEST(PaymentIntentTest, RejectsBrokenDocumentsWithoutEchoingThem) {
    const char* broken[] = {
        "not json",
        "[]",
        R"({"id":"pi_1","object":"charge","amount":1,"currency":"usd","status":"x","livemode":false})",
        R"({"id":"pi_1","amount":"99","currency":"usd","status":"succeeded","livemode":false})",
        R"({"id":"pi_1","amount":99,"currency":"usd","livemode":false,"client_secret":"pi_1_secret_s"})",
        R"({"id":"pi_1","amount":99,"currency":"usd","status":"succeeded","livemode":"no"})",
    };
    for (const char* doc : broken) {
        try {
            ParsePaymentIntent(doc);
            ADD_FAILURE() << "accepted: " << doc;
        } catch (const std::invalid_argument& error) {
            EXPECT_EQ(std::string(error.what()).find("_secret_"), std::string::npos);
        }
    }
}

TEST(PaymentIntentTest, IdShape) {
    EXPECT_TRUE(IsPaymentIntentId("pi_3MtwBwLkdIwHu7ix28a3tqPa"));
    EXPECT_FALSE(IsPaymentIntentId("pi_"));
    EXPECT_FALSE(IsPaymentIntentId("pi_abc_secret_def"));
    EXPECT_FALSE(IsPaymentIntentId("pi_../../v1/charges"));
    EXPECT_FALSE(IsPaymentIntentId("ch_123"));
    EXPECT_FALSE(IsPaymentIntentId(""));
}

}  // namespace
}  // namespace songd::payment
