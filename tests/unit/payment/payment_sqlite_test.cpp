// The payment logic on the real SQLite job store: the binding race and webhook deduplication
// end to end (Stripe replaced by the in-memory fake).

#include <gtest/gtest.h>
#include <unistd.h>

#include <atomic>
#include <filesystem>
#include <memory>
#include <thread>
#include <vector>

#include "core/ids.h"
#include "fakes.h"
#include "jobs/sqlite_store.h"
#include "payment/payment_service.h"
#include "payment/webhook.h"

namespace songd::payment {
namespace {

using testing::FakeStripe;
using testing::PaymentConfig;
using testing::SucceededIntent;

class PaymentSqliteTest : public ::testing::Test {
  protected:
    void SetUp() override {
        char tmpl[] = "/tmp/songd-payment-XXXXXX";
        dir_ = ::mkdtemp(tmpl);
        store_ = std::make_unique<jobs::SqliteJobStore>(dir_ / "songd.db");
        config_ = PaymentConfig();
    }
    void TearDown() override {
        store_.reset();
        std::filesystem::remove_all(dir_);
    }
    /// A job in the store: completed with its files kept far ahead, unless `completed` is
    /// false (then still queued). `generate_intent` is the intent id given at generate.
    std::string NewJob(bool completed = true, const std::string& generate_intent = "") {
        jobs::Job job;
        job.id = core::NewJobId();
        job.request.lyrics = "[00:01.00]hello";
        job.request.style_prompt = "pop";
        job.request.payment_intent_id = generate_intent;
        job.created_at = 1;
        job.request_hash = "h";
        store_->Create(job);
        if (completed) {
            EXPECT_TRUE(store_->Claim("w", 1, 1000));
            jobs::Completion c;
            c.output_file = job.id + "/output_fixed.wav";
            c.expires_at = testing::kFarFuture;
            EXPECT_TRUE(store_->Complete(job.id, "w", c, 2));
        }
        return job.id;
    }

    std::filesystem::path dir_;
    std::unique_ptr<jobs::SqliteJobStore> store_;
    core::Config config_;
    FakeStripe stripe_;
};

TEST_F(PaymentSqliteTest, ManyConcurrentDownloadsOfTwoJobsWithOneIntentUnlockOne) {
    // No metadata, and given at generate for both (the old clients' flow): valid for either.
    const std::string a = NewJob(true, "pi_race");
    const std::string b = NewJob(true, "pi_race");
    stripe_.Put(SucceededIntent("pi_race", ""));
    PaymentService payments(config_, *store_, stripe_);
    const jobs::Job job_a = *store_->Get(a);
    const jobs::Job job_b = *store_->Get(b);

    constexpr int kThreadsPerJob = 6;
    std::atomic<int> allowed_a{0}, allowed_b{0}, refused{0}, other{0};
    std::vector<std::thread> threads;
    for (int i = 0; i < 2 * kThreadsPerJob; ++i) {
        threads.emplace_back([&, i] {
            const bool for_a = i % 2 == 0;
            try {
                payments.AuthorizeDownload(for_a ? job_a : job_b, "pi_race", 5);
                ++(for_a ? allowed_a : allowed_b);
            } catch (const core::Error& error) {
                ++(error.code() == core::ErrorCode::kPaymentRequired ? refused : other);
            }
        });
    }
    for (auto& t : threads) t.join();

    EXPECT_EQ(other.load(), 0);
    // Every download of the winning job is allowed, every one of the other is refused.
    EXPECT_TRUE((allowed_a == kThreadsPerJob && allowed_b == 0) ||
                (allowed_b == kThreadsPerJob && allowed_a == 0))
        << allowed_a << " / " << allowed_b;
    EXPECT_EQ(refused.load(), kThreadsPerJob);
    const bool paid_a = store_->Get(a)->paid;
    const bool paid_b = store_->Get(b)->paid;
    EXPECT_NE(paid_a, paid_b);
    EXPECT_EQ(store_->Get(paid_a ? a : b)->paid_intent_id, "pi_race");
}

TEST_F(PaymentSqliteTest, WebhookPaysOnceAndReplaysAreDuplicates) {
    const std::string a = NewJob();
    const std::string body =
        R"({"id":"evt_sql","object":"event","type":"payment_intent.succeeded",)"
        R"("data":{"object":{"id":"pi_hook","object":"payment_intent",)"
        R"("amount":99,"amount_received":99,"currency":"usd",)"
        R"("livemode":false,"status":"succeeded","metadata":{"job_id":")" +
        a + R"("}}}})";
    const int64_t now_s = 1'790'000'000;
    const std::string header = SignStripePayload(body, config_.stripe_webhook_secret, now_s);
    WebhookHandler webhook(config_, *store_);
    EXPECT_EQ(webhook.Handle(header, body, now_s * 1000).outcome, WebhookOutcome::kPaid);
    EXPECT_EQ(webhook.Handle(header, body, now_s * 1000).outcome, WebhookOutcome::kDuplicate);
    const jobs::Job job = *store_->Get(a);
    EXPECT_TRUE(job.paid);
    EXPECT_EQ(job.paid_intent_id, "pi_hook");
    EXPECT_EQ(job.paid_at, now_s * 1000);

    // The webhook alone makes the job downloadable, without a Stripe call.
    PaymentService payments(config_, *store_, stripe_);
    EXPECT_EQ(payments.AuthorizeDownload(job, "", now_s * 1000), DownloadAccess::kAlreadyPaid);
    EXPECT_EQ(stripe_.retrieve_calls(), 0);

    // The same intent presented for another job is refused: it is bound.
    const std::string b = NewJob(true, "pi_hook");
    stripe_.Put(SucceededIntent("pi_hook", ""));
    try {
        payments.AuthorizeDownload(*store_->Get(b), "pi_hook", now_s * 1000);
        ADD_FAILURE() << "a bound intent unlocked a second job";
    } catch (const core::Error& error) {
        EXPECT_EQ(error.code(), core::ErrorCode::kPaymentRequired);
    }
    EXPECT_FALSE(store_->Get(b)->paid);
}

TEST_F(PaymentSqliteTest, SucceededEventForAJobStillQueuedIsUnappliedAndBindsNothing) {
    const std::string other = NewJob();  // first: a claim takes the oldest queued job
    const std::string a = NewJob(/*completed=*/false);
    const std::string body =
        R"({"id":"evt_early","object":"event","type":"payment_intent.succeeded",)"
        R"("data":{"object":{"id":"pi_early","object":"payment_intent",)"
        R"("amount":99,"amount_received":99,"currency":"usd",)"
        R"("livemode":false,"status":"succeeded","metadata":{"job_id":")" +
        a + R"("}}}})";
    const int64_t now_s = 1'790'000'000;
    PaymentStats stats;
    WebhookHandler webhook(config_, *store_, &stats);
    const WebhookResult result = webhook.Handle(
        SignStripePayload(body, config_.stripe_webhook_secret, now_s), body, now_s * 1000);
    EXPECT_EQ(result.outcome, WebhookOutcome::kUnapplied) << result.detail;
    EXPECT_EQ(stats.Unapplied(), 1);
    const jobs::Job job = *store_->Get(a);
    EXPECT_FALSE(job.paid);
    EXPECT_EQ(job.paid_intent_id, "");
    // The intent is not used up: it was never bound (it is to be refunded).
    EXPECT_EQ(store_->BindPayment(other, "pi_early", now_s * 1000, 0), jobs::BindResult::kBound);
}

TEST_F(PaymentSqliteTest, FailureEventRecordedOnUnpaidJob) {
    const std::string a = NewJob();
    const std::string body =
        R"({"id":"evt_fail","type":"payment_intent.payment_failed","data":{"object":)"
        R"({"id":"pi_f","object":"payment_intent","amount":99,"amount_received":0,)"
        R"("currency":"usd","livemode":false,"status":"requires_payment_method",)"
        R"("metadata":{"job_id":")" +
        a + R"("}}}})";
    const int64_t now_s = 1'790'000'000;
    WebhookHandler webhook(config_, *store_);
    EXPECT_EQ(webhook
                  .Handle(SignStripePayload(body, config_.stripe_webhook_secret, now_s), body,
                          now_s * 1000)
                  .outcome,
              WebhookOutcome::kStatusRecorded);
    const jobs::Job job = *store_->Get(a);
    EXPECT_FALSE(job.paid);
    EXPECT_EQ(job.payment_status, "requires_payment_method");
}

}  // namespace
}  // namespace songd::payment
