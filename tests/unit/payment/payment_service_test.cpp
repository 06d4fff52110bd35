#include "payment/payment_service.h"

#include <gtest/gtest.h>

#include <condition_variable>
#include <functional>
#include <map>
#include <mutex>
#include <thread>

#include "fakes.h"

namespace songd::payment {
namespace {

using testing::FakeJobStore;
using testing::FakeStripe;
using testing::kJobA;
using testing::kJobB;
using testing::MakeJob;
using testing::PaymentConfig;
using testing::SucceededIntent;

constexpr int64_t kNow = 1'790'000'000'000;

std::map<std::string, std::string> Extras(const core::Error& error) {
    return {error.extra().begin(), error.extra().end()};
}

class PaymentServiceTest : public ::testing::Test {
  protected:
    PaymentServiceTest() : config_(PaymentConfig()) {
        store_.Put(MakeJob(kJobA));
        store_.Put(MakeJob(kJobB));
    }

    PaymentService Service() { return PaymentService(config_, store_, stripe_); }

    /// Runs a download check expected to fail; returns the error.
    core::Error DownloadError(const std::string& job_id, const std::string& intent_id) {
        try {
            Service().AuthorizeDownload(store_.At(job_id), intent_id, kNow);
        } catch (const core::Error& error) {
            return error;
        }
        ADD_FAILURE() << "download of " << job_id << " with '" << intent_id << "' was allowed";
        return core::Error(core::ErrorCode::kInternal, "allowed");
    }

    core::Config config_;
    FakeJobStore store_;
    FakeStripe stripe_;
};

TEST_F(PaymentServiceTest, FreeWhenPaymentNotRequired) {
    config_.require_payment = false;
    EXPECT_EQ(Service().AuthorizeDownload(store_.At(kJobA), "", kNow), DownloadAccess::kFree);
    EXPECT_EQ(stripe_.retrieve_calls(), 0);
}

TEST_F(PaymentServiceTest, SucceededIntentUnlocksAndIsBound) {
    stripe_.Put(SucceededIntent("pi_good", kJobA));
    EXPECT_EQ(Service().AuthorizeDownload(store_.At(kJobA), "pi_good", kNow),
              DownloadAccess::kPaidNow);
    const jobs::Job job = store_.At(kJobA);
    EXPECT_TRUE(job.paid);
    EXPECT_EQ(job.paid_intent_id, "pi_good");
    EXPECT_EQ(job.paid_at, kNow);
    EXPECT_EQ(stripe_.retrieve_calls(), 1);
}

TEST_F(PaymentServiceTest, PaidJobNeverAsksStripeAgain) {
    stripe_.Put(SucceededIntent("pi_good", kJobA));
    Service().AuthorizeDownload(store_.At(kJobA), "pi_good", kNow);
    ASSERT_EQ(stripe_.retrieve_calls(), 1);
    // Even a Stripe outage does not matter to a paid job.
    stripe_.fail_with = core::Error(core::ErrorCode::kUpstreamUnavailable, "down");
    for (const char* given : {"", "pi_good", "pi_other", "garbage"}) {
        EXPECT_EQ(Service().AuthorizeDownload(store_.At(kJobA), given, kNow),
                  DownloadAccess::kAlreadyPaid)
            << given;
    }
    EXPECT_EQ(stripe_.retrieve_calls(), 1);
}

TEST_F(PaymentServiceTest, SummaryFollowsTheJob) {
    PaymentSummary before = Service().Summarize(store_.At(kJobA));
    EXPECT_TRUE(before.required);
    EXPECT_FALSE(before.paid);
    EXPECT_EQ(before.amount, 99);
    EXPECT_EQ(before.currency, "usd");
    EXPECT_EQ(before.paid_at, 0);
    stripe_.Put(SucceededIntent("pi_good", kJobA));
    Service().AuthorizeDownload(store_.At(kJobA), "pi_good", kNow);
    PaymentSummary after = Service().Summarize(store_.At(kJobA));
    EXPECT_TRUE(after.paid);
    EXPECT_EQ(after.paid_at, kNow);
}

TEST_F(PaymentServiceTest, IntentStoredAtGenerateIsUsed) {
    jobs::Job job = MakeJob(kJobA);
    job.request.payment_intent_id = "pi_atgenerate";
    store_.Put(job);
    stripe_.Put(SucceededIntent("pi_atgenerate", kJobA));
    EXPECT_EQ(Service().AuthorizeDownload(store_.At(kJobA), "", kNow), DownloadAccess::kPaidNow);
    EXPECT_EQ(store_.At(kJobA).paid_intent_id, "pi_atgenerate");
}

/// One attack on the download: the intent Stripe holds, the id presented, the 402 reason.
struct AttackCase {
    const char* id;
    std::function<void(FakeStripe&)> setup;
    const char* presented;
    const char* reason;
};

const AttackCase kAttacks[] = {
    {"A01_other_jobs_intent", [](FakeStripe& s) { s.Put(SucceededIntent("pi_b", kJobB)); }, "pi_b",
     "intent_for_other_job"},
    {"A02_one_cent_short",
     [](FakeStripe& s) {
         auto i = SucceededIntent("pi_short", kJobA);
         i.amount = i.amount_received = 98;
         s.Put(i);
     },
     "pi_short", "amount_short"},
    {"A03_other_currency",
     [](FakeStripe& s) {
         auto i = SucceededIntent("pi_eur", kJobA);
         i.currency = "eur";
         s.Put(i);
     },
     "pi_eur", "currency_mismatch"},
    {"A04_requires_payment_method",
     [](FakeStripe& s) {
         auto i = SucceededIntent("pi_rpm", kJobA);
         i.status = "requires_payment_method";
         i.amount_received = 0;
         s.Put(i);
     },
     "pi_rpm", "not_succeeded"},
    {"A05_processing",
     [](FakeStripe& s) {
         auto i = SucceededIntent("pi_proc", kJobA);
         i.status = "processing";
         i.amount_received = 0;
         s.Put(i);
     },
     "pi_proc", "not_succeeded"},
    {"A06_canceled",
     [](FakeStripe& s) {
         auto i = SucceededIntent("pi_cxl", kJobA);
         i.status = "canceled";
         i.amount_received = 0;
         s.Put(i);
     },
     "pi_cxl", "not_succeeded"},
    {"A07_nonexistent_id", [](FakeStripe&) {}, "pi_doesnotexist", "no_such_payment_intent"},
    {"A08_livemode_mismatch",
     [](FakeStripe& s) {
         auto i = SucceededIntent("pi_live", kJobA);
         i.livemode = true;  // the service runs on a test key
         s.Put(i);
     },
     "pi_live", "livemode_mismatch"},
    {"A09_pasted_client_secret", [](FakeStripe&) {}, "pi_abc_secret_def",
     "malformed_payment_intent_id"},
    {"A10_path_injection", [](FakeStripe&) {}, "pi_x/../../v1/charges",
     "malformed_payment_intent_id"},
    {"A11_no_payment_at_all", [](FakeStripe&) {}, "", "no_payment"},
    // Any unbound succeeded intent in the account, made by anyone for anything.
    {"A12_intent_without_job_id", [](FakeStripe& s) { s.Put(SucceededIntent("pi_anyone", "")); },
     "pi_anyone", "intent_without_job"},
};

class DownloadAttackTest : public PaymentServiceTest,
                           public ::testing::WithParamInterface<AttackCase> {};

TEST_P(DownloadAttackTest, Refused402AndNothingChanges) {
    const AttackCase& attack = GetParam();
    attack.setup(stripe_);
    const core::Error error = DownloadError(kJobA, attack.presented);
    EXPECT_EQ(error.code(), core::ErrorCode::kPaymentRequired) << error.what();
    const auto extra = Extras(error);
    EXPECT_EQ(extra.at("reason"), std::string("\"") + attack.reason + "\"") << error.what();
    EXPECT_EQ(extra.at("amount"), "99");
    EXPECT_EQ(extra.at("currency"), "\"usd\"");
    EXPECT_EQ(extra.at("intent_url"), std::string("\"/api/v1/payments/") + kJobA + "/intent\"");
    EXPECT_EQ(std::string(error.what()).find("_secret_"), std::string::npos) << error.what();
    EXPECT_FALSE(store_.At(kJobA).paid);
    EXPECT_EQ(store_.mutations(), 0);
}

INSTANTIATE_TEST_SUITE_P(Attacks, DownloadAttackTest, ::testing::ValuesIn(kAttacks),
                         [](const auto& info) { return std::string(info.param.id); });

TEST_F(PaymentServiceTest, LiveKeyRefusesTestModeIntent) {
    config_.stripe_secret_key = "sk_live_unitkey0123456789";
    stripe_.Put(SucceededIntent("pi_testmode", kJobA));  // livemode false
    const core::Error error = DownloadError(kJobA, "pi_testmode");
    EXPECT_EQ(error.code(), core::ErrorCode::kPaymentRequired);
    EXPECT_EQ(Extras(error).at("reason"), "\"livemode_mismatch\"");
    EXPECT_EQ(store_.mutations(), 0);
}

TEST_F(PaymentServiceTest, MalformedIdNeverReachesStripe) {
    DownloadError(kJobA, "pi_abc_secret_def");
    DownloadError(kJobA, "");
    EXPECT_EQ(stripe_.retrieve_calls(), 0);
}

/// Both jobs name `intent_id` at generate (the old clients' flow), so an intent without
/// metadata.job_id may pay for either of them.
void GivenAtGenerate(FakeJobStore& store, const char* intent_id) {
    for (const char* id : {kJobA, kJobB}) {
        jobs::Job job = store.At(id);
        job.request.payment_intent_id = intent_id;
        store.Put(job);
    }
}

TEST_F(PaymentServiceTest, OneIntentUnlocksOneJob) {
    // No metadata: the intent could pay for either job, but only for one of them.
    GivenAtGenerate(store_, "pi_shared");
    stripe_.Put(SucceededIntent("pi_shared", ""));
    EXPECT_EQ(Service().AuthorizeDownload(store_.At(kJobA), "pi_shared", kNow),
              DownloadAccess::kPaidNow);
    const core::Error error = DownloadError(kJobB, "pi_shared");
    EXPECT_EQ(error.code(), core::ErrorCode::kPaymentRequired);
    EXPECT_EQ(Extras(error).at("reason"), "\"intent_used_by_other_job\"");
    EXPECT_FALSE(store_.At(kJobB).paid);
    // The first job still downloads.
    EXPECT_EQ(Service().AuthorizeDownload(store_.At(kJobA), "pi_shared", kNow),
              DownloadAccess::kAlreadyPaid);
}

TEST_F(PaymentServiceTest, ConcurrentDownloadsWithOneIntentExactlyOneWins) {
    GivenAtGenerate(store_, "pi_race");
    stripe_.Put(SucceededIntent("pi_race", ""));
    const jobs::Job a = store_.At(kJobA);
    const jobs::Job b = store_.At(kJobB);
    std::atomic<int> unlocked{0};
    std::atomic<int> refused{0};
    auto attempt = [&](const jobs::Job& job) {
        try {
            Service().AuthorizeDownload(job, "pi_race", kNow);
            ++unlocked;
        } catch (const core::Error& error) {
            if (error.code() == core::ErrorCode::kPaymentRequired) ++refused;
        }
    };
    std::thread ta(attempt, std::cref(a));
    std::thread tb(attempt, std::cref(b));
    ta.join();
    tb.join();
    EXPECT_EQ(unlocked.load(), 1);
    EXPECT_EQ(refused.load(), 1);
    EXPECT_NE(store_.At(kJobA).paid, store_.At(kJobB).paid);
}

TEST_F(PaymentServiceTest, StripeOutageIs503NeverA402AndRecordsNothing) {
    stripe_.fail_with = core::Error(core::ErrorCode::kUpstreamUnavailable, "down");
    stripe_.fail_with->WithRetryAfter(7);
    const core::Error error = DownloadError(kJobA, "pi_good");
    EXPECT_EQ(error.code(), core::ErrorCode::kUpstreamUnavailable);
    EXPECT_EQ(error.retry_after(), 7);
    EXPECT_EQ(store_.mutations(), 0);
    // Stripe back: the same request succeeds.
    stripe_.fail_with.reset();
    stripe_.Put(SucceededIntent("pi_good", kJobA));
    EXPECT_EQ(Service().AuthorizeDownload(store_.At(kJobA), "pi_good", kNow),
              DownloadAccess::kPaidNow);
}

TEST_F(PaymentServiceTest, JobPaidMeanwhileByAnotherIntentStillDownloads) {
    stripe_.Put(SucceededIntent("pi_first", kJobA));
    stripe_.Put(SucceededIntent("pi_second", kJobA));
    const jobs::Job stale = store_.At(kJobA);  // read before the first payment was bound
    Service().AuthorizeDownload(store_.At(kJobA), "pi_first", kNow);
    EXPECT_EQ(Service().AuthorizeDownload(stale, "pi_second", kNow), DownloadAccess::kAlreadyPaid);
    EXPECT_EQ(store_.At(kJobA).paid_intent_id, "pi_first");
}

TEST_F(PaymentServiceTest, CreateIntentAtPriceWithIdempotencyKeyFromJob) {
    const IntentOffer offer = Service().CreateIntent(kJobA);
    EXPECT_EQ(offer.amount, 99);
    EXPECT_EQ(offer.currency, "usd");
    EXPECT_EQ(offer.publishable_key, config_.stripe_publishable_key);
    EXPECT_FALSE(offer.client_secret.empty());
    ASSERT_EQ(stripe_.created().size(), 1u);
    const CreateIntentParams params = stripe_.created().front();
    EXPECT_EQ(params.job_id, kJobA);
    EXPECT_EQ(params.amount, 99);
    EXPECT_EQ(params.currency, "usd");
    EXPECT_NE(params.idempotency_key.find(kJobA), std::string::npos);
    // Asking again gives the same intent (same key), another job another key.
    EXPECT_EQ(Service().CreateIntent(kJobA).payment_intent_id, offer.payment_intent_id);
    Service().CreateIntent(kJobB);
    const auto created = stripe_.created();
    EXPECT_EQ(created[1].idempotency_key, created[0].idempotency_key);
    EXPECT_NE(created[2].idempotency_key, created[0].idempotency_key);
}

TEST_F(PaymentServiceTest, CreateIntentPriceChangeGivesNewKey) {
    Service().CreateIntent(kJobA);
    config_.price_cents = 199;
    Service().CreateIntent(kJobA);
    const auto created = stripe_.created();
    ASSERT_EQ(created.size(), 2u);
    EXPECT_NE(created[0].idempotency_key, created[1].idempotency_key);
    EXPECT_EQ(created[1].amount, 199);
}

TEST_F(PaymentServiceTest, CreateIntentRenewsCanceledIntentsBounded) {
    stripe_.create_status = "canceled";
    try {
        Service().CreateIntent(kJobA);
        ADD_FAILURE() << "returned a canceled intent";
    } catch (const core::Error& error) {
        EXPECT_EQ(error.code(), core::ErrorCode::kConflict);
    }
    const auto created = stripe_.created();
    ASSERT_EQ(created.size(), 3u);
    EXPECT_NE(created[1].idempotency_key, created[0].idempotency_key);
    EXPECT_NE(created[2].idempotency_key, created[1].idempotency_key);
}

struct CreateRefusal {
    const char* id;
    std::function<void(FakeJobStore&, core::Config&)> setup;
    const char* job_id;
    core::ErrorCode code;
};

const CreateRefusal kCreateRefusals[] = {
    {"C01_unknown_job", [](FakeJobStore&, core::Config&) {}, testing::kJobMissing,
     core::ErrorCode::kNotFound},
    {"C02_not_a_job_id", [](FakeJobStore&, core::Config&) {}, "../etc/passwd",
     core::ErrorCode::kNotFound},
    {"C03_expired",
     [](FakeJobStore& s, core::Config&) { s.Put(MakeJob(kJobA, jobs::JobStatus::kExpired)); },
     kJobA, core::ErrorCode::kGone},
    {"C04_failed",
     [](FakeJobStore& s, core::Config&) { s.Put(MakeJob(kJobA, jobs::JobStatus::kFailed)); }, kJobA,
     core::ErrorCode::kConflict},
    {"C05_already_paid",
     [](FakeJobStore& s, core::Config&) { s.BindPayment(kJobA, "pi_paid", kNow, 0); }, kJobA,
     core::ErrorCode::kConflict},
    {"C06_payments_not_configured",
     [](FakeJobStore&, core::Config& c) { c.stripe_secret_key.clear(); }, kJobA,
     core::ErrorCode::kForbidden},
    // Never charge for a song that may still fail, or whose files are going.
    {"C07_queued",
     [](FakeJobStore& s, core::Config&) { s.Put(MakeJob(kJobA, jobs::JobStatus::kQueued)); }, kJobA,
     core::ErrorCode::kConflict},
    {"C08_processing",
     [](FakeJobStore& s, core::Config&) { s.Put(MakeJob(kJobA, jobs::JobStatus::kProcessing)); },
     kJobA, core::ErrorCode::kConflict},
    {"C09_completed_past_expiry",
     [](FakeJobStore& s, core::Config&) {
         jobs::Job job = MakeJob(kJobA);
         job.expires_at = 1;  // not deleted yet, but due
         s.Put(job);
     },
     kJobA, core::ErrorCode::kGone},
};

class CreateRefusalTest : public PaymentServiceTest,
                          public ::testing::WithParamInterface<CreateRefusal> {};

TEST_P(CreateRefusalTest, RefusedWithoutCallingStripe) {
    const CreateRefusal& c = GetParam();
    c.setup(store_, config_);
    try {
        Service().CreateIntent(c.job_id);
        ADD_FAILURE() << "created";
    } catch (const core::Error& error) {
        EXPECT_EQ(error.code(), c.code) << error.what();
        if (std::string(c.id) == "C05_already_paid") {
            EXPECT_EQ(Extras(error).at("download_url"),
                      std::string("\"/api/v1/download/") + kJobA + "\"");
        }
    }
    EXPECT_EQ(stripe_.create_calls(), 0);
}

INSTANTIATE_TEST_SUITE_P(Refusals, CreateRefusalTest, ::testing::ValuesIn(kCreateRefusals),
                         [](const auto& info) { return std::string(info.param.id); });

}  // namespace
}  // namespace songd::payment

namespace songd::payment {
namespace {

TEST_F(PaymentServiceTest, CreateIntentAtTheJobsOwnPriceForCardsOnly) {
    jobs::Job job = store_.At(kJobA);
    job.price_cents = 350;  // fixed at create; today's PRICE_CENTS is 99
    store_.Put(job);
    EXPECT_EQ(Service().CreateIntent(kJobA).amount, 350);
    const CreateIntentParams params = stripe_.created().back();
    EXPECT_EQ(params.amount, 350);
    EXPECT_EQ(params.payment_method_types, std::vector<std::string>{"card"});
    config_.stripe_payment_method_types = {"card", "link"};
    Service().CreateIntent(kJobB);
    EXPECT_EQ(stripe_.created().back().payment_method_types,
              (std::vector<std::string>{"card", "link"}));
}

TEST_F(PaymentServiceTest, AnIntentPaidAtTheCheaperTierDoesNotUnlockALongerSong) {
    config_.price_tiers = {{120, 200}, {240, 350}, {285, 500}};
    jobs::Job job = store_.At(kJobA);
    job.request.audio_length = 285;
    job.price_cents = 500;
    store_.Put(job);
    PaymentIntent cheap = SucceededIntent("pi_cheap", kJobA);
    cheap.amount = cheap.amount_received = 200;
    stripe_.Put(cheap);
    const core::Error error = DownloadError(kJobA, "pi_cheap");
    EXPECT_EQ(error.code(), core::ErrorCode::kPaymentRequired);
    EXPECT_EQ(Extras(error).at("reason"), "\"amount_short\"");
    EXPECT_EQ(Extras(error).at("amount"), "500");
    EXPECT_FALSE(store_.At(kJobA).paid);
    EXPECT_EQ(Service().Summarize(store_.At(kJobA)).amount, 500);
}

TEST_F(PaymentServiceTest, PayingKeepsTheFilesForThePaidRetention) {
    config_.paid_retention_days = 30;
    jobs::Job job = store_.At(kJobA);
    job.expires_at = kNow + 1000;
    store_.Put(job);
    stripe_.Put(SucceededIntent("pi_good", kJobA));
    Service().AuthorizeDownload(store_.At(kJobA), "pi_good", kNow);
    EXPECT_EQ(store_.At(kJobA).expires_at, kNow + 30LL * 24 * 3600 * 1000);
}

TEST_F(PaymentServiceTest, APaymentForAJobThatExpiredIsUnappliedNotBound) {
    jobs::Job job = store_.At(kJobA);
    job.expires_at = kNow;  // due: retention may be deleting the files right now
    store_.Put(job);
    stripe_.Put(SucceededIntent("pi_late", kJobA));
    PaymentService payments = Service();
    try {
        payments.AuthorizeDownload(job, "pi_late", kNow);
        ADD_FAILURE() << "downloaded";
    } catch (const core::Error& error) {
        EXPECT_EQ(error.code(), core::ErrorCode::kGone) << error.what();
        EXPECT_NE(std::string(error.what()).find("refunded"), std::string::npos);
    }
    EXPECT_FALSE(store_.At(kJobA).paid);
    EXPECT_EQ(payments.stats().Unapplied(), 1);
    EXPECT_NE(payments.Prometheus().find("songd_payments_unapplied_total 1"), std::string::npos);
}

/// One service for several downloads: the guard's memory lives in it.
class PaymentGuardTest : public PaymentServiceTest {
  protected:
    core::ErrorCode Attempt(PaymentService& payments, const std::string& intent,
                            const std::string& client, int64_t now = kNow,
                            const char* job_id = kJobA, int* retry_after = nullptr) {
        try {
            payments.AuthorizeDownload(store_.At(job_id), intent, now, client);
            return core::ErrorCode::kInternal;  // allowed: no test here expects that
        } catch (const core::Error& error) {
            if (retry_after) *retry_after = error.retry_after().value_or(-1);
            return error.code();
        }
    }
};

TEST_F(PaymentGuardTest, RepeatedBadIntentReachesStripeOnce) {
    PaymentService payments(config_, store_, stripe_);
    for (int i = 0; i < 20; ++i) {
        EXPECT_EQ(Attempt(payments, "pi_unknown", "10.0.0.1", kNow + i * 1000),
                  core::ErrorCode::kPaymentRequired);
    }
    EXPECT_EQ(stripe_.retrieve_calls(), 1);
    // Remembered for a minute, then Stripe is asked again.
    Attempt(payments, "pi_unknown", "10.0.0.1", kNow + 61'000);
    EXPECT_EQ(stripe_.retrieve_calls(), 2);
}

TEST_F(PaymentGuardTest, NotYetSucceededIsNotRemembered) {
    PaymentIntent pending = SucceededIntent("pi_pending", kJobA);
    pending.status = "processing";
    stripe_.Put(pending);
    PaymentService payments(config_, store_, stripe_);
    Attempt(payments, "pi_pending", "10.0.0.1");
    stripe_.Put(SucceededIntent("pi_pending", kJobA));  // the customer finished paying
    EXPECT_EQ(payments.AuthorizeDownload(store_.At(kJobA), "pi_pending", kNow + 1, "10.0.0.1"),
              DownloadAccess::kPaidNow);
    EXPECT_EQ(stripe_.retrieve_calls(), 2);
}

TEST_F(PaymentGuardTest, PerClientAndPerJobBudgetsGive429WithRetryAfter) {
    GuardLimits limits;
    limits.per_client_per_minute = 3;
    limits.per_job_per_minute = 5;
    PaymentService payments(config_, store_, stripe_, limits);
    for (int i = 0; i < 3; ++i) {
        EXPECT_EQ(Attempt(payments, "pi_c" + std::to_string(i), "10.0.0.1", kNow + i),
                  core::ErrorCode::kPaymentRequired);
    }
    int retry_after = 0;
    EXPECT_EQ(Attempt(payments, "pi_c9", "10.0.0.1", kNow + 10'000, kJobA, &retry_after),
              core::ErrorCode::kRateLimited);
    EXPECT_GE(retry_after, 49);
    EXPECT_LE(retry_after, 50);
    EXPECT_EQ(stripe_.retrieve_calls(), 3);
    // Another client may still check job A, until the job's own budget is used.
    EXPECT_EQ(Attempt(payments, "pi_d1", "10.0.0.2"), core::ErrorCode::kPaymentRequired);
    EXPECT_EQ(Attempt(payments, "pi_d2", "10.0.0.2"), core::ErrorCode::kPaymentRequired);
    EXPECT_EQ(Attempt(payments, "pi_d3", "10.0.0.3"), core::ErrorCode::kRateLimited);
    EXPECT_EQ(Attempt(payments, "pi_d4", "10.0.0.3", kNow, kJobB),
              core::ErrorCode::kPaymentRequired);
    // A minute later the budgets are back.
    EXPECT_EQ(Attempt(payments, "pi_c9", "10.0.0.1", kNow + 60'000),
              core::ErrorCode::kPaymentRequired);
    EXPECT_EQ(store_.mutations(), 0);
}

TEST_F(PaymentGuardTest, StripeCallsHaveTheirOwnBoundedConcurrency) {
    GuardLimits limits;
    limits.max_concurrent_calls = 1;
    PaymentService payments(config_, store_, stripe_, limits);
    std::mutex mutex;
    std::condition_variable cv;
    bool entered = false, release = false;
    stripe_.on_retrieve = [&] {
        std::unique_lock lock(mutex);
        entered = true;
        cv.notify_all();
        cv.wait(lock, [&] { return release; });
    };
    std::thread first([&] { Attempt(payments, "pi_slow", "10.0.0.1"); });
    {
        std::unique_lock lock(mutex);
        cv.wait(lock, [&] { return entered; });
    }
    // The one slot is taken: the next check answers 503 at once instead of waiting.
    int retry_after = 0;
    EXPECT_EQ(Attempt(payments, "pi_other", "10.0.0.2", kNow, kJobB, &retry_after),
              core::ErrorCode::kUpstreamUnavailable);
    EXPECT_GT(retry_after, 0);
    {
        std::lock_guard lock(mutex);
        release = true;
    }
    cv.notify_all();
    first.join();
    stripe_.on_retrieve = nullptr;
    EXPECT_EQ(Attempt(payments, "pi_other", "10.0.0.2", kNow, kJobB),
              core::ErrorCode::kPaymentRequired);  // the slot is free again
}

}  // namespace
}  // namespace songd::payment
