// The JobStore contract (src/jobs/job_store.h), run against both stores: SQLite, the
// reference, and PostgreSQL. Each test gets a fresh database. Expected values are worked out
// here from the inputs, never read back from a store.
#include <gtest/gtest.h>
#include <unistd.h>

#include <algorithm>
#include <climits>
#include <filesystem>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "core/error.h"
#include "jobs/pg_store.h"
#include "jobs/sqlite_store.h"
#include "pg_test_support.h"

namespace songd::jobs {
namespace {

using test::NewJob;

namespace fs = std::filesystem;

/// @brief One kind of store and how to make a fresh one (and reopen it).
class Backend {
  public:
    virtual ~Backend() = default;
    virtual std::unique_ptr<JobStore> Open() = 0;
};

class SqliteBackend : public Backend {
  public:
    SqliteBackend() {
        char tmpl[] = "/tmp/songd-contract-XXXXXX";
        dir_ = ::mkdtemp(tmpl);
    }
    ~SqliteBackend() override {
        std::error_code ec;
        fs::remove_all(dir_, ec);
    }
    std::unique_ptr<JobStore> Open() override {
        return std::make_unique<SqliteJobStore>(dir_ / "songd.db");
    }

  private:
    fs::path dir_;
};

class PgBackend : public Backend {
  public:
    std::unique_ptr<JobStore> Open() override { return std::make_unique<PgJobStore>(db_.url()); }

  private:
    test::PgTestDatabase db_;
};

struct BackendKind {
    const char* name;
    std::function<std::unique_ptr<Backend>()> make;
};

const BackendKind kBackends[] = {
    {"sqlite", [] { return std::unique_ptr<Backend>(new SqliteBackend()); }},
    {"postgres", [] { return std::unique_ptr<Backend>(new PgBackend()); }},
};

// Test names show the store, not the bytes of the struct.
void PrintTo(const BackendKind& kind, std::ostream* os) { *os << kind.name; }

class StoreContract : public ::testing::TestWithParam<BackendKind> {
  protected:
    void SetUp() override {
        backend_ = GetParam().make();
        store_ = backend_->Open();
    }
    void TearDown() override {
        store_.reset();
        backend_.reset();
    }

    /// Creates a job and claims it (it must be the only queued one).
    void CreateClaimed(const std::string& id, const std::string& owner, int64_t now,
                       int64_t lease_ms = 30'000) {
        store_->Create(NewJob(id, now));
        auto claimed = store_->Claim(owner, now, lease_ms);
        ASSERT_TRUE(claimed);
        ASSERT_EQ(claimed->id, id);
    }
    void CreateCompleted(const std::string& id, int64_t now, int64_t expires_at) {
        CreateClaimed(id, "w", now);
        Completion c;
        c.output_file = id + "/output_fixed.wav";
        c.expires_at = expires_at;
        ASSERT_TRUE(store_->Complete(id, "w", c, now));
    }
    void CreateFailed(const std::string& id, int64_t now, int64_t expires_at) {
        CreateClaimed(id, "w", now);
        ASSERT_TRUE(store_->Fail(id, "w", "render_failed", "boom", now, expires_at));
    }

    std::unique_ptr<Backend> backend_;
    std::unique_ptr<JobStore> store_;
};

TEST_P(StoreContract, CreateStoresEveryFieldAndGetReadsItBack) {
    Job job = NewJob("job-1", 1'700'000'000'123, "key-1", "hash-1");
    job.request.lyrics = "[00:05.00]Grüße, 世界 — \"quoted\" 'single' \\ back\n[00:09.00]two";
    job.request.steps = 32;
    job.request.cfg_strength = 4.25;
    job.request.seed = 7;
    job.request.payment_intent_id = "pi_123";
    job.request.audio_length = 180;
    job.seed = 0xFEDCBA9876543210ULL;  // above INT64_MAX: stored through the signed column
    job.price_cents = 350;             // fixed when the job is created
    auto created = store_->Create(job);
    EXPECT_TRUE(created.created);
    EXPECT_EQ(created.job.id, "job-1");

    auto got = store_->Get("job-1");
    ASSERT_TRUE(got);
    EXPECT_EQ(got->status, JobStatus::kQueued);
    EXPECT_EQ(got->request.lyrics, job.request.lyrics);
    EXPECT_EQ(got->request.style_prompt, "pop");
    EXPECT_EQ(got->request.audio_length, 180);
    EXPECT_EQ(got->request.steps, 32);
    EXPECT_DOUBLE_EQ(*got->request.cfg_strength, 4.25);
    EXPECT_EQ(got->request.seed, 7u);
    EXPECT_EQ(got->request.payment_intent_id, "pi_123");
    EXPECT_EQ(got->seed, 0xFEDCBA9876543210ULL);
    EXPECT_EQ(got->created_at, 1'700'000'000'123);
    EXPECT_EQ(got->updated_at, 1'700'000'000'123);
    EXPECT_EQ(got->started_at, 0);
    EXPECT_EQ(got->attempts, 0);
    EXPECT_EQ(got->version, 1);
    EXPECT_FALSE(got->paid);
    EXPECT_EQ(got->paid_intent_id, "");
    EXPECT_EQ(got->idempotency_key, "key-1");
    EXPECT_EQ(got->request_hash, "hash-1");
    EXPECT_EQ(got->price_cents, 350);
    EXPECT_EQ(got->lease_owner, "");
    EXPECT_FALSE(store_->Get("job-2"));
    EXPECT_FALSE(store_->Get(""));
}

TEST_P(StoreContract, IdempotencyKeyReturnsTheFirstJobOrConflicts) {
    ASSERT_TRUE(store_->Create(NewJob("a", 100, "k", "h1")).created);
    auto again = store_->Create(NewJob("b", 200, "k", "h1"));
    EXPECT_FALSE(again.created);
    EXPECT_EQ(again.job.id, "a");
    EXPECT_EQ(again.job.created_at, 100);
    EXPECT_FALSE(store_->Exists("b"));

    try {
        store_->Create(NewJob("c", 300, "k", "h2"));
        FAIL() << "a different request under the same key must conflict";
    } catch (const core::Error& e) {
        EXPECT_EQ(e.code(), core::ErrorCode::kConflict);
    }
    EXPECT_FALSE(store_->Exists("c"));
    EXPECT_EQ(store_->Stats().queued, 1);

    // No key: every request is its own job, even with equal hashes.
    EXPECT_TRUE(store_->Create(NewJob("d", 400, "", "h1")).created);
    EXPECT_TRUE(store_->Create(NewJob("e", 400, "", "h1")).created);
    EXPECT_EQ(store_->Stats().queued, 3);
    EXPECT_EQ(store_->Get("d")->idempotency_key, "");
}

// Queue order: created_at, then insertion order (ids are random and do not count).
TEST_P(StoreContract, QueuePositionAndClaimFollowCreationThenInsertionOrder) {
    const std::vector<std::pair<std::string, int64_t>> inserted = {
        {"zz", 200}, {"yy", 100}, {"aa", 200}, {"bb", 100}, {"mm", 50}};
    for (const auto& [id, at] : inserted) store_->Create(NewJob(id, at));
    // Independent order: stable sort of the insertion list by created_at.
    auto order = inserted;
    std::stable_sort(order.begin(), order.end(),
                     [](const auto& a, const auto& b) { return a.second < b.second; });
    for (size_t i = 0; i < order.size(); ++i) {
        EXPECT_EQ(store_->QueuePosition(order[i].first), static_cast<int64_t>(i + 1))
            << order[i].first;
    }
    EXPECT_EQ(store_->QueuePosition("missing"), 0);

    const int64_t now = 5000;
    for (size_t i = 0; i < order.size(); ++i) {
        auto job = store_->Claim("w" + std::to_string(i), now + static_cast<int64_t>(i), 1000);
        ASSERT_TRUE(job);
        EXPECT_EQ(job->id, order[i].first);
        EXPECT_EQ(job->status, JobStatus::kProcessing);
        EXPECT_EQ(job->attempts, 1);
        EXPECT_EQ(job->lease_owner, "w" + std::to_string(i));
        EXPECT_EQ(job->lease_expires_at, now + static_cast<int64_t>(i) + 1000);
        EXPECT_EQ(job->started_at, now + static_cast<int64_t>(i));
        EXPECT_EQ(job->updated_at, now + static_cast<int64_t>(i));
        EXPECT_EQ(job->progress, 0);
        EXPECT_EQ(job->version, 2);
        EXPECT_EQ(store_->QueuePosition(order[i].first), 0) << "claimed is not queued";
        for (size_t k = i + 1; k < order.size(); ++k) {
            EXPECT_EQ(store_->QueuePosition(order[k].first), static_cast<int64_t>(k - i));
        }
    }
    EXPECT_FALSE(store_->Claim("w", now, 1000));
}

TEST_P(StoreContract, StatsCountEveryStatus) {
    EXPECT_EQ(store_->Stats().queued, 0);
    CreateCompleted("c1", 10, 1000);
    CreateCompleted("c2", 11, 1000);
    CreateCompleted("x1", 12, 1000);
    ASSERT_TRUE(store_->MarkExpired("x1", 13));
    CreateFailed("f1", 14, 1000);
    CreateClaimed("p1", "w", 15);
    store_->Create(NewJob("q1", 16));
    store_->Create(NewJob("q2", 17));
    store_->Create(NewJob("q3", 18));
    auto s = store_->Stats();
    EXPECT_EQ(s.queued, 3);
    EXPECT_EQ(s.processing, 1);
    EXPECT_EQ(s.completed, 2);
    EXPECT_EQ(s.failed, 1);
    EXPECT_EQ(s.expired, 1);
}

TEST_P(StoreContract, OnlyTheLeaseOwnerRenewsProgressesAndCompletes) {
    CreateClaimed("j", "owner", 1000, 500);
    EXPECT_FALSE(store_->RenewLease("j", "other", 9999));
    EXPECT_TRUE(store_->RenewLease("j", "owner", 7777));
    EXPECT_EQ(store_->Get("j")->lease_expires_at, 7777);
    EXPECT_FALSE(store_->RenewLease("missing", "owner", 9999));

    const int64_t version = store_->Get("j")->version;
    EXPECT_FALSE(store_->SetProgress("j", "other", 40));
    EXPECT_TRUE(store_->SetProgress("j", "owner", 40));
    EXPECT_FALSE(store_->SetProgress("j", "owner", 40)) << "unchanged progress is no change";
    auto mid = store_->Get("j");
    EXPECT_EQ(mid->progress, 40);
    EXPECT_EQ(mid->version, version + 1);

    Completion c;
    c.output_file = "j/output_fixed.wav";
    c.audio = {95.5, 44100, 2};
    c.has_preview = true;
    c.expires_at = 99'000;
    EXPECT_FALSE(store_->Complete("j", "other", c, 2000));
    EXPECT_FALSE(store_->Fail("j", "other", "x", "y", 2000, 5));
    EXPECT_FALSE(store_->Release("j", "other"));
    EXPECT_EQ(store_->Get("j")->status, JobStatus::kProcessing);

    EXPECT_TRUE(store_->Complete("j", "owner", c, 2000));
    auto done = store_->Get("j");
    EXPECT_EQ(done->status, JobStatus::kCompleted);
    EXPECT_EQ(done->progress, 100);
    EXPECT_EQ(done->completed_at, 2000);
    EXPECT_EQ(done->updated_at, 2000);
    EXPECT_EQ(done->expires_at, 99'000);
    EXPECT_EQ(done->output_file, "j/output_fixed.wav");
    EXPECT_DOUBLE_EQ(done->audio.duration_seconds, 95.5);
    EXPECT_EQ(done->audio.sample_rate, 44100);
    EXPECT_EQ(done->audio.channels, 2);
    EXPECT_TRUE(done->has_preview);
    EXPECT_EQ(done->lease_owner, "");
    EXPECT_EQ(done->lease_expires_at, 0);
    EXPECT_EQ(done->version, version + 2);

    // Finished: nobody can touch it through the lease any more.
    EXPECT_FALSE(store_->Complete("j", "owner", c, 3000));
    EXPECT_FALSE(store_->Fail("j", "owner", "x", "y", 3000, 5));
    EXPECT_FALSE(store_->RenewLease("j", "owner", 9999));
    EXPECT_FALSE(store_->SetProgress("j", "owner", 50));
    EXPECT_FALSE(store_->Release("j", "owner"));
    EXPECT_EQ(store_->Get("j")->completed_at, 2000);
}

TEST_P(StoreContract, FailRecordsTheErrorAndEndsTheLease) {
    CreateClaimed("j", "owner", 1000);
    EXPECT_TRUE(store_->Fail("j", "owner", "timeout", "took too long", 4000, 8000));
    auto j = store_->Get("j");
    EXPECT_EQ(j->status, JobStatus::kFailed);
    EXPECT_EQ(j->error_code, "timeout");
    EXPECT_EQ(j->error, "took too long");
    EXPECT_EQ(j->completed_at, 4000);
    EXPECT_EQ(j->updated_at, 4000);
    EXPECT_EQ(j->expires_at, 8000);
    EXPECT_EQ(j->lease_owner, "");
    EXPECT_EQ(j->lease_expires_at, 0);
    EXPECT_EQ(j->version, 3);
}

TEST_P(StoreContract, ReleaseRequeuesWithoutCountingTheAttempt) {
    CreateClaimed("j", "owner", 1000);
    ASSERT_TRUE(store_->SetProgress("j", "owner", 30));
    EXPECT_TRUE(store_->Release("j", "owner"));
    auto j = store_->Get("j");
    EXPECT_EQ(j->status, JobStatus::kQueued);
    EXPECT_EQ(j->attempts, 0);
    EXPECT_EQ(j->progress, 0);
    EXPECT_EQ(j->started_at, 0);
    EXPECT_EQ(j->lease_owner, "");
    EXPECT_EQ(j->lease_expires_at, 0);
    EXPECT_EQ(store_->QueuePosition("j"), 1);
    auto again = store_->Claim("next", 2000, 1000);
    ASSERT_TRUE(again);
    EXPECT_EQ(again->attempts, 1);
}

TEST_P(StoreContract, RecoverExpiredLeasesRequeuesOrFailsAfterMaxAttempts) {
    const int kMax = 3;
    // "tired" dies three times: claim, lease runs out, recovered; its third claim is live.
    store_->Create(NewJob("tired", 1));
    for (int round = 0; round < kMax; ++round) {
        auto c = store_->Claim("w", 10 + round, 5);
        ASSERT_TRUE(c);
        ASSERT_EQ(c->attempts, round + 1);
        if (round + 1 < kMax) {
            ASSERT_EQ(store_->RecoverExpiredLeases(100 + round, kMax, false, 0), 1);
        }
    }
    // "tired" now has attempts 3, lease until 12+5 = 17.
    CreateClaimed("expired", "w", 20, 100);  // lease until 120
    CreateClaimed("live", "w", 30, 10'000);  // lease until 10 030
    store_->Create(NewJob("waiting", 40));

    EXPECT_EQ(store_->RecoverExpiredLeases(500, kMax, false, 77'000), 2);
    auto tired = store_->Get("tired");
    EXPECT_EQ(tired->status, JobStatus::kFailed);
    EXPECT_EQ(tired->error_code, "worker_lost");
    EXPECT_EQ(tired->error, "the worker processing this job stopped 3 times; giving up");
    EXPECT_EQ(tired->completed_at, 500);
    EXPECT_EQ(tired->expires_at, 77'000);
    EXPECT_EQ(tired->lease_owner, "");
    auto expired = store_->Get("expired");
    EXPECT_EQ(expired->status, JobStatus::kQueued);
    EXPECT_EQ(expired->attempts, 1);
    EXPECT_EQ(expired->started_at, 0);
    EXPECT_EQ(expired->updated_at, 500);
    EXPECT_EQ(expired->lease_owner, "");
    EXPECT_EQ(expired->lease_expires_at, 0);
    EXPECT_EQ(store_->Get("live")->status, JobStatus::kProcessing);
    EXPECT_EQ(store_->Get("waiting")->status, JobStatus::kQueued);
    EXPECT_EQ(store_->Get("waiting")->updated_at, 40);

    // A lease ending exactly now has not expired yet.
    EXPECT_EQ(store_->RecoverExpiredLeases(10'030, kMax, false, 0), 0);
    // all_processing: the live lease is taken back too.
    EXPECT_EQ(store_->RecoverExpiredLeases(600, kMax, true, 0), 1);
    EXPECT_EQ(store_->Get("live")->status, JobStatus::kQueued);
    EXPECT_EQ(store_->Get("live")->attempts, 1);
    EXPECT_EQ(store_->RecoverExpiredLeases(700, kMax, true, 0), 0);
    auto s = store_->Stats();
    EXPECT_EQ(s.queued, 3);
    EXPECT_EQ(s.failed, 1);
    EXPECT_EQ(s.processing, 0);
}

TEST_P(StoreContract, SetS3UrlAndCompletedWithoutS3) {
    CreateCompleted("late", 300, 0);
    CreateCompleted("early", 100, 0);
    CreateCompleted("middle", 200, 0);
    store_->Create(NewJob("queued", 50));
    std::vector<std::string> expected = {"early", "middle", "late"};  // by completed_at
    EXPECT_EQ(store_->CompletedWithoutS3(10), expected);
    EXPECT_EQ(store_->CompletedWithoutS3(2),
              std::vector<std::string>(expected.begin(), expected.begin() + 2));

    const int64_t version = store_->Get("middle")->version;
    EXPECT_TRUE(store_->SetS3Url("middle", "s3://b/p/middle/output_fixed.wav"));
    EXPECT_EQ(store_->Get("middle")->s3_url, "s3://b/p/middle/output_fixed.wav");
    EXPECT_EQ(store_->Get("middle")->version, version + 1);
    EXPECT_FALSE(store_->SetS3Url("missing", "s3://b/x"));
    EXPECT_EQ(store_->CompletedWithoutS3(10), (std::vector<std::string>{"early", "late"}));
}

TEST_P(StoreContract, BindPaymentGivesEachOfTheFiveResults) {
    CreateCompleted("a", 1, 10'000);
    CreateCompleted("b", 2, 10'000);
    const int64_t a_version = store_->Get("a")->version;
    const int64_t b_version = store_->Get("b")->version;
    EXPECT_EQ(store_->BindPayment("a", "pi_1", 1234, 0), BindResult::kBound);
    auto a = store_->Get("a");
    EXPECT_TRUE(a->paid);
    EXPECT_EQ(a->paid_intent_id, "pi_1");
    EXPECT_EQ(a->paid_at, 1234);
    EXPECT_EQ(a->payment_status, "succeeded");
    EXPECT_EQ(a->expires_at, 10'000);  // nothing to extend to
    EXPECT_EQ(a->version, a_version + 1);

    EXPECT_EQ(store_->BindPayment("a", "pi_1", 2000, 0), BindResult::kAlreadyBoundHere);
    EXPECT_EQ(store_->BindPayment("b", "pi_1", 2000, 0), BindResult::kBoundToOtherJob);
    EXPECT_EQ(store_->BindPayment("a", "pi_2", 2000, 0), BindResult::kJobAlreadyPaid);
    EXPECT_EQ(store_->BindPayment("missing", "pi_3", 2000, 0), BindResult::kNoSuchJob);

    EXPECT_EQ(store_->Get("a")->paid_at, 1234) << "a refused bind changes nothing";
    EXPECT_EQ(store_->Get("a")->version, a_version + 1);
    auto b = store_->Get("b");
    EXPECT_FALSE(b->paid);
    EXPECT_EQ(b->paid_intent_id, "");
    EXPECT_EQ(b->version, b_version);
    // pi_3 was never bound, so it still binds to b.
    EXPECT_EQ(store_->BindPayment("b", "pi_3", 3000, 0), BindResult::kBound);
}

TEST_P(StoreContract, BindPaymentOnlyToACompletedUnexpiredJob) {
    // One job per state; claimed ones first (a claim takes the oldest queued job).
    CreateClaimed("processing", "w", 1);
    CreateFailed("failed", 2, 50'000);
    CreateCompleted("due", 3, 5'000);  // completed, but its files may go any moment
    CreateCompleted("soon", 4, 6'000);
    CreateCompleted("late", 5, 900'000);
    store_->Create(NewJob("queued", 6));
    const std::pair<const char*, JobStatus> refused[] = {{"queued", JobStatus::kQueued},
                                                         {"processing", JobStatus::kProcessing},
                                                         {"failed", JobStatus::kFailed},
                                                         {"due", JobStatus::kCompleted}};
    for (const auto& [id, status] : refused) {
        const int64_t version = store_->Get(id)->version;
        const int64_t expires_at = store_->Get(id)->expires_at;
        EXPECT_EQ(store_->BindPayment(id, "pi_x", 5'000, 90'000), BindResult::kJobNotPayable) << id;
        auto after = store_->Get(id);
        EXPECT_FALSE(after->paid) << id;
        EXPECT_EQ(after->paid_intent_id, "") << id;
        EXPECT_EQ(after->version, version) << id << ": a refused bind changes nothing";
        EXPECT_EQ(after->status, status) << id;
        EXPECT_EQ(after->expires_at, expires_at) << id;
    }
    // Paying keeps the files until keep_files_until, and never shortens their life.
    EXPECT_EQ(store_->BindPayment("soon", "pi_x", 5'000, 90'000), BindResult::kBound)
        << "pi_x was not used up by the refusals";
    EXPECT_EQ(store_->Get("soon")->expires_at, 90'000);
    EXPECT_EQ(store_->BindPayment("late", "pi_y", 5'000, 90'000), BindResult::kBound);
    EXPECT_EQ(store_->Get("late")->expires_at, 900'000);
}

TEST_P(StoreContract, SetPaymentStatusOnlyBeforePayment) {
    CreateCompleted("b", 2, 10'000);
    store_->Create(NewJob("a", 1));
    const int64_t a_version = store_->Get("a")->version;
    EXPECT_TRUE(store_->SetPaymentStatus("a", "requires_payment_method"));
    EXPECT_EQ(store_->Get("a")->payment_status, "requires_payment_method");
    EXPECT_EQ(store_->Get("a")->version, a_version + 1);
    ASSERT_EQ(store_->BindPayment("b", "pi", 5, 0), BindResult::kBound);
    EXPECT_FALSE(store_->SetPaymentStatus("b", "canceled"));
    EXPECT_EQ(store_->Get("b")->payment_status, "succeeded");
    EXPECT_FALSE(store_->SetPaymentStatus("missing", "x"));
}

TEST_P(StoreContract, WebhookEventsAreRecordedOnceAndCanBeTakenBack) {
    EXPECT_FALSE(store_->HasEvent("evt_1"));
    EXPECT_TRUE(store_->RecordEvent("evt_1", 10));
    EXPECT_TRUE(store_->HasEvent("evt_1"));
    EXPECT_FALSE(store_->RecordEvent("evt_1", 11));
    EXPECT_TRUE(store_->RecordEvent("evt_2", 12));
    store_->ForgetEvent("evt_1");
    EXPECT_FALSE(store_->HasEvent("evt_1"));
    EXPECT_TRUE(store_->RecordEvent("evt_1", 13));
    EXPECT_FALSE(store_->RecordEvent("evt_2", 14));
    store_->ForgetEvent("never-recorded");  // no error
}

// Mixed-case ids: bytewise order ("B" < "a"), as SQLite compares text, whatever the
// PostgreSQL server's locale would say.
TEST_P(StoreContract, DueForExpiryPagesInExpiryThenIdOrderWithTheCursor) {
    struct Seed {
        std::string id;
        int64_t expires_at;
        bool failed;
    };
    const std::vector<Seed> seeds = {
        {"b-job", 300, false}, {"A-job", 300, true},  {"a-job", 300, false}, {"Z-job", 100, false},
        {"c-job", 200, true},  {"d-job", 999, false}, {"e-job", 300, false}, {"_job", 200, false},
    };
    int64_t t = 1;
    for (const auto& s : seeds) {
        if (s.failed)
            CreateFailed(s.id, t++, s.expires_at);
        else
            CreateCompleted(s.id, t++, s.expires_at);
    }
    // Not completed or failed: never due, whatever their expires_at.
    CreateCompleted("expired-already", t++, 50);
    ASSERT_TRUE(store_->MarkExpired("expired-already", t));
    store_->Create(NewJob("queued", t++));

    const int64_t now = 300;
    std::vector<std::pair<int64_t, std::string>> expected;
    for (const auto& s : seeds) {
        if (s.expires_at <= now) expected.emplace_back(s.expires_at, s.id);
    }
    std::sort(expected.begin(), expected.end());  // std::string compares bytes

    for (int limit : {1, 2, 3, 100}) {
        std::vector<std::pair<int64_t, std::string>> seen;
        ExpiryCursor cursor;
        for (int pages = 0; pages < 100; ++pages) {
            auto page = store_->DueForExpiry(now, cursor, limit);
            ASSERT_LE(static_cast<int>(page.size()), limit);
            if (page.empty()) break;
            for (const auto& j : page) seen.emplace_back(j.expires_at, j.id);
            cursor = {page.back().expires_at, page.back().id};
        }
        EXPECT_EQ(seen, expected) << "limit " << limit;
    }
    auto first = store_->DueForExpiry(now, {}, 1);
    ASSERT_EQ(first.size(), 1u);
    EXPECT_EQ(first[0].id, expected[0].second);
    EXPECT_EQ(first[0].status, JobStatus::kCompleted);
    EXPECT_EQ(first[0].output_file, expected[0].second + "/output_fixed.wav");
    auto failed = store_->DueForExpiry(now, {300, "A"}, 1);  // "A" < "A-job"
    ASSERT_EQ(failed.size(), 1u);
    EXPECT_EQ(failed[0].id, "A-job");
    EXPECT_EQ(failed[0].status, JobStatus::kFailed);
    EXPECT_TRUE(store_->DueForExpiry(99, {}, 10).empty());
}

TEST_P(StoreContract, MarkExpiredOnlyFromCompletedOrFailed) {
    CreateCompleted("c", 1, 10);
    CreateFailed("f", 2, 10);
    CreateClaimed("p", "w", 3);
    store_->Create(NewJob("q", 4));
    EXPECT_TRUE(store_->MarkExpired("c", 500));
    auto c = store_->Get("c");
    EXPECT_EQ(c->status, JobStatus::kExpired);
    EXPECT_EQ(c->updated_at, 500);
    EXPECT_EQ(c->version, 4);
    EXPECT_FALSE(store_->MarkExpired("c", 600));
    EXPECT_TRUE(store_->MarkExpired("f", 500));
    EXPECT_FALSE(store_->MarkExpired("p", 500));
    EXPECT_FALSE(store_->MarkExpired("q", 500));
    EXPECT_FALSE(store_->MarkExpired("missing", 500));
    EXPECT_EQ(store_->Get("p")->status, JobStatus::kProcessing);
    EXPECT_EQ(store_->Get("q")->status, JobStatus::kQueued);
}

TEST_P(StoreContract, DeleteJobAndExists) {
    store_->Create(NewJob("a", 1, "key-a"));
    store_->Create(NewJob("b", 2));
    EXPECT_TRUE(store_->Exists("a"));
    EXPECT_FALSE(store_->Exists("A"));
    EXPECT_TRUE(store_->DeleteJob("a"));
    EXPECT_FALSE(store_->DeleteJob("a"));
    EXPECT_FALSE(store_->Exists("a"));
    EXPECT_FALSE(store_->Get("a"));
    EXPECT_TRUE(store_->Exists("b"));
    // The key is free again once its job is gone.
    EXPECT_TRUE(store_->Create(NewJob("a2", 3, "key-a")).created);
}

TEST_P(StoreContract, ListByStatusPagesInIdOrder) {
    const std::vector<std::string> completed = {"m", "B", "a", "Z", "b", "0"};
    int64_t t = 1;
    for (const auto& id : completed) CreateCompleted(id, t++, 0);
    CreateFailed("f", t++, 0);
    store_->Create(NewJob("q", t++));
    auto expected = completed;
    std::sort(expected.begin(), expected.end());

    for (int limit : {1, 4, 50}) {
        std::vector<std::string> seen;
        std::string after;
        for (int pages = 0; pages < 100; ++pages) {
            auto page = store_->ListByStatus(JobStatus::kCompleted, after, limit);
            ASSERT_LE(static_cast<int>(page.size()), limit);
            if (page.empty()) break;
            for (const auto& j : page) {
                EXPECT_EQ(j.status, JobStatus::kCompleted);
                EXPECT_EQ(j.output_file, j.id + "/output_fixed.wav");
                seen.push_back(j.id);
            }
            after = page.back().id;
        }
        EXPECT_EQ(seen, expected) << "limit " << limit;
    }
    auto failed = store_->ListByStatus(JobStatus::kFailed, "", 10);
    ASSERT_EQ(failed.size(), 1u);
    EXPECT_EQ(failed[0].id, "f");
    EXPECT_TRUE(store_->ListByStatus(JobStatus::kExpired, "", 10).empty());
}

TEST_P(StoreContract, StateSurvivesAndOverwrites) {
    EXPECT_FALSE(store_->GetState("cleanup.last_run"));
    store_->SetState("cleanup.last_run", "100");
    EXPECT_EQ(store_->GetState("cleanup.last_run"), "100");
    store_->SetState("cleanup.last_run", "200");
    EXPECT_EQ(store_->GetState("cleanup.last_run"), "200");
    store_->SetState("empty", "");
    EXPECT_EQ(store_->GetState("empty"), "");
    store_.reset();
    store_ = backend_->Open();
    EXPECT_EQ(store_->GetState("cleanup.last_run"), "200");
}

TEST_P(StoreContract, LocksExpireAndTheOwnerRenews) {
    EXPECT_TRUE(store_->TryLock("cleanup", "a", 100, 200));
    EXPECT_FALSE(store_->TryLock("cleanup", "b", 150, 250));
    EXPECT_FALSE(store_->TryLock("cleanup", "b", 200, 250)) << "until 200 is held at 200";
    EXPECT_TRUE(store_->TryLock("cleanup", "a", 150, 300)) << "the owner renews";
    EXPECT_FALSE(store_->TryLock("cleanup", "b", 250, 400)) << "renewed until 300";
    EXPECT_TRUE(store_->TryLock("other", "b", 250, 400)) << "names are independent";
    EXPECT_TRUE(store_->TryLock("cleanup", "b", 301, 500)) << "expired: taken over";
    store_->Unlock("cleanup", "a");  // no longer a's: no effect
    EXPECT_FALSE(store_->TryLock("cleanup", "a", 302, 600));
    store_->Unlock("cleanup", "b");
    EXPECT_TRUE(store_->TryLock("cleanup", "a", 303, 600));
}

// Client API: cancel. A queued job is canceled in RequestCancel itself; a processing one gets
// cancel_requested, refuses Complete, and MarkCanceled (its lease owner only) ends it.
TEST_P(StoreContract, CancelQueuedAtOnceProcessingOnRequestThenByItsOwner) {
    store_->Create(NewJob("q", 10));
    Job after;
    EXPECT_EQ(store_->RequestCancel("q", 20, 9'000, &after), CancelOutcome::kCanceled);
    EXPECT_EQ(after.status, JobStatus::kCanceled);
    auto q = store_->Get("q");
    EXPECT_EQ(q->status, JobStatus::kCanceled);
    EXPECT_EQ(q->completed_at, 20);
    EXPECT_EQ(q->expires_at, 9'000);
    EXPECT_EQ(q->version, 2);
    EXPECT_EQ(store_->QueuePosition("q"), 0);
    EXPECT_FALSE(store_->Claim("w", 30, 1000)) << "a canceled job is never claimed";
    EXPECT_EQ(store_->RequestCancel("q", 40, 9'000, &after), CancelOutcome::kFinished);
    EXPECT_EQ(store_->Get("q")->version, 2) << "nothing changed";

    CreateClaimed("p", "owner", 50);
    const int64_t v = store_->Get("p")->version;
    EXPECT_EQ(store_->CancelRequested({"p", "q", "missing"}), std::vector<std::string>{});
    EXPECT_EQ(store_->RequestCancel("p", 60, 9'000, &after), CancelOutcome::kRequested);
    EXPECT_EQ(after.status, JobStatus::kProcessing);
    EXPECT_TRUE(after.cancel_requested);
    EXPECT_EQ(store_->Get("p")->version, v + 1);
    EXPECT_EQ(store_->RequestCancel("p", 61, 9'000, &after), CancelOutcome::kRequested);
    EXPECT_EQ(store_->Get("p")->version, v + 1) << "asking twice is one change";
    EXPECT_EQ(store_->CancelRequested({"p", "q", "missing"}), std::vector<std::string>{"p"});

    Completion c;
    c.output_file = "p/output_fixed.wav";
    c.expires_at = 99'000;
    EXPECT_FALSE(store_->Complete("p", "owner", c, 70)) << "the cancel wins";
    EXPECT_FALSE(store_->MarkCanceled("p", "other", 70, 9'000));
    EXPECT_FALSE(store_->MarkCanceled("p", "", 70, 9'000)) << "empty owner: queued jobs only";
    EXPECT_TRUE(store_->MarkCanceled("p", "owner", 80, 9'500));
    auto p = store_->Get("p");
    EXPECT_EQ(p->status, JobStatus::kCanceled);
    EXPECT_EQ(p->completed_at, 80);
    EXPECT_EQ(p->expires_at, 9'500);
    EXPECT_EQ(p->lease_owner, "");
    EXPECT_EQ(p->output_file, "");
    EXPECT_FALSE(store_->RenewLease("p", "owner", 99'999));
    EXPECT_FALSE(store_->MarkCanceled("p", "owner", 90, 9'500));

    Job none;
    EXPECT_EQ(store_->RequestCancel("missing", 100, 0, &none), CancelOutcome::kNoSuchJob);
    CreateCompleted("done", 110, 5'000);
    EXPECT_EQ(store_->RequestCancel("done", 120, 0, &after), CancelOutcome::kFinished);
    EXPECT_EQ(after.status, JobStatus::kCompleted);
    EXPECT_FALSE(store_->MarkCanceled("done", "", 130, 0));
    EXPECT_FALSE(store_->MarkCanceled("done", "w", 130, 0));
    // Canceled jobs cannot be paid for.
    EXPECT_EQ(store_->BindPayment("q", "pi_1", 130, 0), BindResult::kJobNotPayable);

    auto s = store_->Stats();
    EXPECT_EQ(s.canceled, 2);
    EXPECT_EQ(s.completed, 1);
    // Canceled jobs come due like failed ones (retention deletes their records).
    auto due = store_->DueForExpiry(9'600, {}, 10);
    ASSERT_EQ(due.size(), 3u);
    EXPECT_EQ(due[0].id, "done");
    EXPECT_EQ(due[1].id, "q");
    EXPECT_EQ(due[1].status, JobStatus::kCanceled);
    EXPECT_EQ(due[2].id, "p");
}

TEST_P(StoreContract, RecoverExpiredLeasesCancelsAJobWhoseCancelWasAsked) {
    CreateClaimed("asked", "dead-node/w0", 10, 100);  // lease until 110
    Job after;
    ASSERT_EQ(store_->RequestCancel("asked", 20, 5'000, &after), CancelOutcome::kRequested);
    EXPECT_EQ(store_->RecoverExpiredLeases(500, 3, false, 7'000), 1);
    auto j = store_->Get("asked");
    EXPECT_EQ(j->status, JobStatus::kCanceled) << "not run again";
    EXPECT_EQ(j->expires_at, 7'000);
    EXPECT_FALSE(store_->Claim("w", 600, 100));
}

TEST_P(StoreContract, UploadsRoundTripExpireInOrderAndSurviveReopening) {
    auto upload = [](const std::string& id, int64_t created, int64_t expires) {
        Upload u;
        u.id = id;
        u.file = "uploads/" + id + "/reference.mp3";
        u.format = "mp3";
        u.s3_key = "songs/uploads/" + id + "/reference.mp3";
        u.size_bytes = 3'456'789;
        u.duration_seconds = 183.25;
        u.sample_rate = 48000;
        u.channels = 2;
        u.tempo_bpm = 100.53972;
        u.key = "A minor";
        u.created_at = created;
        u.expires_at = expires;
        return u;
    };
    store_->PutUpload(upload("u-late", 100, 900));
    store_->PutUpload(upload("u-early", 200, 500));
    store_->PutUpload(upload("u-kept", 300, 5000));
    EXPECT_THROW(store_->PutUpload(upload("u-kept", 1, 2)), core::Error);  // ids are unique
    EXPECT_FALSE(store_->GetUpload("nope"));

    store_ = backend_->Open();  // another process, or a restart
    auto got = store_->GetUpload("u-late");
    ASSERT_TRUE(got);
    EXPECT_EQ(got->file, "uploads/u-late/reference.mp3");
    EXPECT_EQ(got->format, "mp3");
    EXPECT_EQ(got->s3_key, "songs/uploads/u-late/reference.mp3");
    EXPECT_EQ(got->size_bytes, 3'456'789);
    EXPECT_DOUBLE_EQ(got->duration_seconds, 183.25);
    EXPECT_EQ(got->sample_rate, 48000);
    EXPECT_EQ(got->channels, 2);
    EXPECT_DOUBLE_EQ(got->tempo_bpm, 100.53972);
    EXPECT_EQ(got->key, "A minor");
    EXPECT_EQ(got->created_at, 100);
    EXPECT_EQ(got->expires_at, 900);

    auto ids = [](const std::vector<Upload>& v) {
        std::vector<std::string> out;
        for (const auto& u : v) out.push_back(u.id);
        return out;
    };
    EXPECT_EQ(ids(store_->UploadsDueForExpiry(499, 10)), std::vector<std::string>{});
    EXPECT_EQ(ids(store_->UploadsDueForExpiry(900, 10)),
              (std::vector<std::string>{"u-early", "u-late"}));
    EXPECT_EQ(ids(store_->UploadsDueForExpiry(900, 1)), std::vector<std::string>{"u-early"});
    EXPECT_TRUE(store_->DeleteUpload("u-early"));
    EXPECT_FALSE(store_->DeleteUpload("u-early"));
    EXPECT_FALSE(store_->GetUpload("u-early"));
    EXPECT_EQ(ids(store_->UploadsDueForExpiry(900, 10)), std::vector<std::string>{"u-late"});
}

TEST_P(StoreContract, AJobKeepsItsReferenceSong) {
    Job job = NewJob("job-ref", 1000);
    job.request.ref_audio_id = "3f2b1c4d-5e6f-4a7b-8c9d-0e1f2a3b4c5d";
    store_->Create(job);
    EXPECT_EQ(store_->Get("job-ref")->request.ref_audio_id, job.request.ref_audio_id);
    store_->Create(NewJob("job-plain", 1001));
    EXPECT_EQ(store_->Get("job-plain")->request.ref_audio_id, "");
}

INSTANTIATE_TEST_SUITE_P(Stores, StoreContract, ::testing::ValuesIn(kBackends),
                         [](const auto& info) { return std::string(info.param.name); });

}  // namespace
}  // namespace songd::jobs
