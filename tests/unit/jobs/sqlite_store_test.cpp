#include "jobs/sqlite_store.h"

#include <gtest/gtest.h>
#include <sqlite3.h>
#include <unistd.h>

#include <set>
#include <thread>

#include "core/error.h"
#include "core/ids.h"

namespace songd::jobs {
namespace {

class SqliteStoreTest : public ::testing::Test {
  protected:
    void SetUp() override {
        char tmpl[] = "/tmp/songd-store-XXXXXX";
        dir_ = ::mkdtemp(tmpl);
        store_ = std::make_unique<SqliteJobStore>(dir_ / "db" / "songd.db");
    }
    void TearDown() override {
        store_.reset();
        std::filesystem::remove_all(dir_);
    }
    Job NewJob(int64_t created_at, const std::string& key = "") {
        Job j;
        j.id = core::NewJobId();
        j.request.lyrics = "[00:01.00]hello";
        j.request.style_prompt = "pop";
        j.seed = 42;
        j.created_at = created_at;
        j.idempotency_key = key;
        j.request_hash = "h";
        return j;
    }
    std::filesystem::path dir_;
    std::unique_ptr<SqliteJobStore> store_;
};

TEST_F(SqliteStoreTest, CreatesMigratesAndRoundTripsTheRequest) {
    EXPECT_EQ(store_->SchemaVersion(), 6);
    Job job = NewJob(1000);
    job.request.steps = 32;
    job.request.cfg_strength = 4.5;
    job.request.seed = 7;
    job.request.payment_intent_id = "pi_123";
    job.request.webhook_url = "https://example.com/hook?a=1";
    job.request.webhook_events = {"start", "completed"};
    auto created = store_->Create(job);
    EXPECT_TRUE(created.created);
    auto got = store_->Get(job.id);
    ASSERT_TRUE(got);
    EXPECT_EQ(got->status, JobStatus::kQueued);
    EXPECT_EQ(got->request.steps, 32);
    EXPECT_DOUBLE_EQ(*got->request.cfg_strength, 4.5);
    EXPECT_EQ(got->request.seed, 7u);
    EXPECT_EQ(got->request.payment_intent_id, "pi_123");
    EXPECT_EQ(got->request.webhook_url, "https://example.com/hook?a=1");
    EXPECT_EQ(got->request.webhook_events, (std::vector<std::string>{"start", "completed"}));
    EXPECT_EQ(got->seed, 42u);
    EXPECT_FALSE(store_->Get("missing"));
    // Reopening keeps everything and does not migrate twice.
    store_ = std::make_unique<SqliteJobStore>(dir_ / "db" / "songd.db");
    EXPECT_TRUE(store_->Get(job.id));
    EXPECT_EQ(store_->SchemaVersion(), 6);
}

TEST_F(SqliteStoreTest, IdempotencyKeyReturnsTheFirstJobOrConflicts) {
    Job a = NewJob(1, "key");
    store_->Create(a);
    Job b = NewJob(2, "key");
    auto again = store_->Create(b);
    EXPECT_FALSE(again.created);
    EXPECT_EQ(again.job.id, a.id);
    Job c = NewJob(3, "key");
    c.request_hash = "different";
    try {
        store_->Create(c);
        FAIL() << "expected a conflict";
    } catch (const core::Error& e) {
        EXPECT_EQ(e.code(), core::ErrorCode::kConflict);
    }
    EXPECT_EQ(store_->Stats().queued, 1);
}

TEST_F(SqliteStoreTest, ClaimsOldestFirstAndOnlyTheLeaseHolderFinishes) {
    Job first = NewJob(100), second = NewJob(200);
    store_->Create(second);
    store_->Create(first);
    EXPECT_EQ(store_->QueuePosition(first.id), 1);
    EXPECT_EQ(store_->QueuePosition(second.id), 2);
    auto claimed = store_->Claim("w1", 1000, 30000);
    ASSERT_TRUE(claimed);
    EXPECT_EQ(claimed->id, first.id);
    EXPECT_EQ(claimed->attempts, 1);
    EXPECT_EQ(claimed->status, JobStatus::kProcessing);
    EXPECT_EQ(store_->QueuePosition(second.id), 1);
    EXPECT_FALSE(store_->SetProgress(first.id, "intruder", 50));
    EXPECT_TRUE(store_->SetProgress(first.id, "w1", 50));
    EXPECT_EQ(store_->Get(first.id)->progress, 50);
    Completion c;
    c.output_file = first.id + "/output_fixed.wav";
    c.expires_at = 5000;
    EXPECT_FALSE(store_->Complete(first.id, "intruder", c, 2000));
    EXPECT_TRUE(store_->Complete(first.id, "w1", c, 2000));
    EXPECT_FALSE(store_->Complete(first.id, "w1", c, 2001)) << "completed twice";
    auto done = store_->Get(first.id);
    EXPECT_EQ(done->status, JobStatus::kCompleted);
    EXPECT_EQ(done->progress, 100);
    EXPECT_EQ(done->expires_at, 5000);
}

TEST_F(SqliteStoreTest, ExpiredLeasesRequeueThenFailAfterMaxAttempts) {
    Job job = NewJob(1);
    store_->Create(job);
    for (int attempt = 1; attempt <= 3; ++attempt) {
        auto claimed = store_->Claim("w", attempt * 1000, 100);
        ASSERT_TRUE(claimed);
        EXPECT_EQ(claimed->attempts, attempt);
        // Lease still valid: nothing happens.
        EXPECT_EQ(store_->RecoverExpiredLeases(attempt * 1000 + 50, 3, false, 0), 0);
        EXPECT_EQ(store_->RecoverExpiredLeases(attempt * 1000 + 200, 3, false, 99), 1);
    }
    auto failed = store_->Get(job.id);
    EXPECT_EQ(failed->status, JobStatus::kFailed);
    EXPECT_EQ(failed->error_code, "worker_lost");
    EXPECT_EQ(failed->expires_at, 99);
}

TEST_F(SqliteStoreTest, ReleaseDoesNotCountTheAttempt) {
    Job job = NewJob(1);
    store_->Create(job);
    store_->Claim("w", 10, 1000);
    EXPECT_TRUE(store_->Release(job.id, "w"));
    auto back = store_->Get(job.id);
    EXPECT_EQ(back->status, JobStatus::kQueued);
    EXPECT_EQ(back->attempts, 0);
}

TEST_F(SqliteStoreTest, APaymentIntentUnlocksExactlyOneJobEvenUnderRace) {
    Job a = NewJob(1), b = NewJob(2);
    for (const Job& job : {a, b}) {  // only a completed, unexpired job can be paid
        store_->Create(job);
        store_->Claim("w", 1, 1000);
        Completion c;
        c.expires_at = 1000;
        ASSERT_TRUE(store_->Complete(job.id, "w", c, 2));
    }
    std::vector<BindResult> results(2);
    std::thread ta([&] { results[0] = store_->BindPayment(a.id, "pi_same", 10, 0); });
    std::thread tb([&] { results[1] = store_->BindPayment(b.id, "pi_same", 10, 0); });
    ta.join();
    tb.join();
    std::multiset<BindResult> got(results.begin(), results.end());
    EXPECT_EQ(got.count(BindResult::kBound), 1u);
    EXPECT_EQ(got.count(BindResult::kBoundToOtherJob), 1u);
    const std::string winner = results[0] == BindResult::kBound ? a.id : b.id;
    EXPECT_EQ(store_->BindPayment(winner, "pi_same", 11, 0), BindResult::kAlreadyBoundHere);
    EXPECT_EQ(store_->BindPayment(winner, "pi_other", 11, 0), BindResult::kJobAlreadyPaid);
    EXPECT_EQ(store_->BindPayment("nope", "pi_x", 11, 0), BindResult::kNoSuchJob);
    EXPECT_TRUE(store_->Get(winner)->paid);
}

TEST_F(SqliteStoreTest, EventsAreRecordedOnce) {
    EXPECT_TRUE(store_->RecordEvent("evt_1", 1));
    EXPECT_FALSE(store_->RecordEvent("evt_1", 2));
}

TEST_F(SqliteStoreTest, ExpiryStateAndLocks) {
    Job job = NewJob(1);
    store_->Create(job);
    store_->Claim("w", 1, 1000);
    Completion c;
    c.output_file = "x";
    c.expires_at = 500;
    store_->Complete(job.id, "w", c, 2);
    EXPECT_TRUE(store_->DueForExpiry(499, {}, 10).empty());
    auto due = store_->DueForExpiry(500, {}, 10);
    ASSERT_EQ(due.size(), 1u);
    EXPECT_TRUE(store_->MarkExpired(job.id, 600));
    EXPECT_EQ(store_->Get(job.id)->status, JobStatus::kExpired);
    EXPECT_TRUE(store_->DueForExpiry(10000, {}, 10).empty());

    EXPECT_FALSE(store_->GetState("k"));
    store_->SetState("k", "v1");
    store_->SetState("k", "v2");
    EXPECT_EQ(store_->GetState("k"), "v2");

    EXPECT_TRUE(store_->TryLock("cleanup", "a", 0, 100));
    EXPECT_FALSE(store_->TryLock("cleanup", "b", 50, 150));
    EXPECT_TRUE(store_->TryLock("cleanup", "b", 101, 200));  // a's lock ran out
    store_->Unlock("cleanup", "b");
    EXPECT_TRUE(store_->TryLock("cleanup", "a", 102, 300));
}

TEST_F(SqliteStoreTest, RefusesADatabaseFromANewerVersion) {
    store_.reset();
    { SqliteJobStore s(dir_ / "db" / "songd.db"); }
    // Simulate a database written by a newer songd.
    sqlite3* db = nullptr;
    ASSERT_EQ(sqlite3_open((dir_ / "db" / "songd.db").c_str(), &db), SQLITE_OK);
    ASSERT_EQ(sqlite3_exec(db, "UPDATE schema_version SET version = 99", nullptr, nullptr, nullptr),
              SQLITE_OK);
    sqlite3_close(db);
    EXPECT_THROW(SqliteJobStore(dir_ / "db" / "songd.db"), core::Error);
}

}  // namespace
}  // namespace songd::jobs
