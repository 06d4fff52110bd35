#pragma once
/// @file
/// The WebhookOutbox contract (src/jobs/webhook_outbox.h), written once and instantiated per
/// store: tests/unit/jobs/webhook_outbox_test.cpp for SQLite, and
/// tests/postgres/webhook_outbox_pgtest.cpp for PostgreSQL. Each test gets a fresh database.
///
///   INSTANTIATE_TEST_SUITE_P(Sqlite, WebhookOutboxContract,
///                            ::testing::Values(OutboxBackendKind{"sqlite", MakeSqlite}));

#include <gtest/gtest.h>

#include <boost/json.hpp>
#include <chrono>
#include <functional>
#include <map>
#include <memory>
#include <set>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include "jobs/job_store.h"

namespace songd::jobs::testing {

/// @brief A fresh database of one kind, and stores on it.
class OutboxBackend {
  public:
    virtual ~OutboxBackend() = default;
    virtual std::unique_ptr<JobStore> Open() = 0;
};

struct OutboxBackendKind {
    const char* name;
    std::function<std::unique_ptr<OutboxBackend>()> make;
};

inline void PrintTo(const OutboxBackendKind& kind, std::ostream* os) { *os << kind.name; }

inline Job HookedJob(const std::string& id, int64_t created_at, std::vector<std::string> events) {
    Job j;
    j.id = id;
    j.request.lyrics = "[00:01.00]hello";
    j.request.style_prompt = "pop";
    j.request.webhook_url = "https://hooks.example.com/songd?job=" + id;
    j.request.webhook_events = std::move(events);
    j.seed = 42;
    j.created_at = created_at;
    j.request_hash = "h";
    return j;
}

class WebhookOutboxContract : public ::testing::TestWithParam<OutboxBackendKind> {
  protected:
    static constexpr int64_t kNow = 1'700'000'000'000;

    void SetUp() override {
        backend_ = GetParam().make();
        store_ = backend_->Open();
    }
    void TearDown() override {
        store_.reset();
        backend_.reset();
    }

    /// Every row due at `now`, claimed by `owner`.
    std::vector<WebhookDelivery> ClaimAll(int64_t now, const std::string& owner = "node-a/1") {
        return store_->ClaimWebhooks(owner, now, 60'000, 100);
    }

    static std::string Status(const WebhookDelivery& d) {
        return std::string(boost::json::parse(d.body).at("status").as_string());
    }

    std::unique_ptr<OutboxBackend> backend_;
    std::unique_ptr<JobStore> store_;
};

TEST_P(WebhookOutboxContract, EachStateChangeTheFilterNamesWritesOneRowWithItsDocument) {
    store_->Create(HookedJob("job-1", kNow, {"start", "completed"}));
    EXPECT_EQ(store_->WebhookOutboxDepth(), 0);  // queued is no event
    ASSERT_TRUE(store_->Claim("w", kNow, 30'000));
    EXPECT_EQ(store_->WebhookOutboxDepth(), 1);
    Completion c;
    c.output_file = "job-1/output_fixed.wav";
    c.expires_at = kNow + 86'400'000;
    ASSERT_TRUE(store_->Complete("job-1", "w", c, kNow + 10));
    EXPECT_EQ(store_->WebhookOutboxDepth(), 2);

    auto rows = ClaimAll(kNow + 10);
    ASSERT_EQ(rows.size(), 2u);
    std::map<std::string, WebhookDelivery> by_event;
    for (auto& r : rows) by_event[r.event] = r;
    ASSERT_EQ(by_event.count("start"), 1u);
    ASSERT_EQ(by_event.count("completed"), 1u);
    // The body is the document at the change: processing for start, even though the job has
    // completed since.
    EXPECT_EQ(Status(by_event["start"]), "processing");
    EXPECT_EQ(Status(by_event["completed"]), "completed");
    auto completed_doc = boost::json::parse(by_event["completed"].body).as_object();
    EXPECT_EQ(completed_doc.at("job_id").as_string(), "job-1");
    EXPECT_EQ(completed_doc.at("progress").as_int64(), 100);
    for (auto& [event, r] : by_event) {
        EXPECT_EQ(r.job_id, "job-1");
        EXPECT_EQ(r.url, "https://hooks.example.com/songd?job=job-1");
        EXPECT_EQ(r.attempts, 1);
        EXPECT_EQ(r.id.rfind("msg_", 0), 0u) << r.id;
    }
    EXPECT_NE(by_event["start"].id, by_event["completed"].id);
}

TEST_P(WebhookOutboxContract, WithoutAFilterOnlyTheTerminalEventsAreWritten) {
    store_->Create(HookedJob("job-1", kNow, {}));
    ASSERT_TRUE(store_->Claim("w", kNow, 30'000));
    EXPECT_TRUE(store_->SetProgress("job-1", "w", 50));
    EXPECT_EQ(store_->WebhookOutboxDepth(), 0);  // start and progress are not in the default
    Completion c;
    c.expires_at = kNow + 1000;
    ASSERT_TRUE(store_->Complete("job-1", "w", c, kNow));
    ASSERT_TRUE(store_->MarkExpired("job-1", kNow + 2000));
    auto rows = ClaimAll(kNow + 2000);
    std::multiset<std::string> events;
    for (auto& r : rows) events.insert(r.event);
    EXPECT_EQ(events, (std::multiset<std::string>{"completed", "expired"}));
    for (auto& r : rows) EXPECT_EQ(Status(r), r.event);
}

// Every way a job becomes canceled (queued, processing by its owner, lease recovery of a job
// whose cancel was asked) writes its `canceled` row; a batched retention pass its `expired`.
TEST_P(WebhookOutboxContract, CancelsAndBatchedExpiryWriteTheirRows) {
    store_->Create(HookedJob("queued", kNow, {}));
    ASSERT_EQ(store_->RequestCancel("queued", kNow, kNow + 9'000, nullptr),
              CancelOutcome::kCanceled);
    store_->Create(HookedJob("owned", kNow + 1, {}));
    ASSERT_TRUE(store_->Claim("w", kNow, 30'000));
    ASSERT_EQ(store_->RequestCancel("owned", kNow, kNow + 9'000, nullptr),
              CancelOutcome::kRequested);
    EXPECT_EQ(store_->WebhookOutboxDepth(), 1) << "a cancel asked is not yet a change";
    ASSERT_TRUE(store_->MarkCanceled("owned", "w", kNow + 1, kNow + 9'000));
    store_->Create(HookedJob("lost", kNow + 2, {}));
    ASSERT_TRUE(store_->Claim("dead", kNow, 10));
    ASSERT_EQ(store_->RequestCancel("lost", kNow, kNow + 9'000, nullptr),
              CancelOutcome::kRequested);
    EXPECT_EQ(store_->RecoverExpiredLeases(kNow + 1'000, 3, false, kNow + 9'000), 1);
    store_->Create(HookedJob("done", kNow + 3, {}));
    ASSERT_TRUE(store_->Claim("w", kNow, 30'000));
    Completion c;
    c.expires_at = kNow + 1'000;
    ASSERT_TRUE(store_->Complete("done", "w", c, kNow));
    store_->ExpireBatch({"done"}, {}, kNow + 2'000);

    std::multiset<std::string> seen;
    for (auto& r : ClaimAll(kNow + 2'000)) {
        seen.insert(r.job_id + ":" + r.event);
        EXPECT_EQ(Status(r), r.event);
    }
    EXPECT_EQ(seen,
              (std::multiset<std::string>{"queued:canceled", "owned:canceled", "lost:canceled",
                                          "done:completed", "done:expired"}));
}

TEST_P(WebhookOutboxContract, JobsWithoutAWebhookWriteNothing) {
    Job plain = HookedJob("job-1", kNow, {"start", "progress", "completed"});
    plain.request.webhook_url.clear();
    store_->Create(plain);
    ASSERT_TRUE(store_->Claim("w", kNow, 30'000));
    EXPECT_TRUE(store_->SetProgress("job-1", "w", 50));
    ASSERT_TRUE(store_->Complete("job-1", "w", Completion{}, kNow));
    EXPECT_EQ(store_->WebhookOutboxDepth(), 0);
    EXPECT_TRUE(ClaimAll(kNow).empty());
}

TEST_P(WebhookOutboxContract, FailuresWriteFailedRowsWhetherReportedOrFromALostLease) {
    store_->Create(HookedJob("job-1", kNow, {"failed"}));
    ASSERT_TRUE(store_->Claim("w", kNow, 30'000));
    ASSERT_TRUE(store_->Fail("job-1", "w", "render_failed", "boom", kNow, kNow + 1000));
    store_->Create(HookedJob("job-2", kNow + 1, {"failed"}));
    ASSERT_TRUE(store_->Claim("w", kNow + 1, 10));
    // The lease ended and the job used its only attempt: the recovery fails it.
    EXPECT_EQ(store_->RecoverExpiredLeases(kNow + 1000, 1, false, kNow + 5000), 1);
    auto rows = ClaimAll(kNow + 1000);
    ASSERT_EQ(rows.size(), 2u);
    std::set<std::string> jobs;
    for (auto& r : rows) {
        EXPECT_EQ(r.event, "failed");
        EXPECT_EQ(Status(r), "failed");
        jobs.insert(r.job_id);
    }
    EXPECT_EQ(jobs, (std::set<std::string>{"job-1", "job-2"}));
}

TEST_P(WebhookOutboxContract, ProgressRowsAreAtLeastTheIntervalApart) {
    store_->Create(HookedJob("job-1", kNow, {"progress"}));
    ASSERT_TRUE(store_->Claim("w", kNow, 30'000));
    EXPECT_TRUE(store_->SetProgress("job-1", "w", 10));
    EXPECT_TRUE(store_->SetProgress("job-1", "w", 20));  // saved, but no second row yet
    EXPECT_TRUE(store_->SetProgress("job-1", "w", 30));
    EXPECT_EQ(store_->WebhookOutboxDepth(), 1);
    EXPECT_EQ(store_->Get("job-1")->progress, 30);
    // The interval is on the wall clock (progress carries no time): let it pass.
    std::this_thread::sleep_for(std::chrono::milliseconds(kProgressIntervalMs + 50));
    EXPECT_TRUE(store_->SetProgress("job-1", "w", 40));
    EXPECT_EQ(store_->WebhookOutboxDepth(), 2);
}

TEST_P(WebhookOutboxContract, AClaimHoldsARowForItsLeaseAndKeepsItsIdAcrossAttempts) {
    store_->Create(HookedJob("job-1", kNow, {"start"}));
    ASSERT_TRUE(store_->Claim("w", kNow, 30'000));
    auto first = store_->ClaimWebhooks("node-a/1", kNow, 60'000, 10);
    ASSERT_EQ(first.size(), 1u);
    EXPECT_TRUE(store_->ClaimWebhooks("node-b/1", kNow + 59'999, 60'000, 10).empty());
    // The lease ended (node-a died mid-delivery): another claim takes the same row, same id.
    auto second = store_->ClaimWebhooks("node-b/1", kNow + 60'000, 60'000, 10);
    ASSERT_EQ(second.size(), 1u);
    EXPECT_EQ(second[0].id, first[0].id);
    EXPECT_EQ(second[0].body, first[0].body);
    EXPECT_EQ(second[0].attempts, 2);
    // node-a's late outcome is refused: the row is node-b's now.
    EXPECT_FALSE(store_->FinishWebhook(first[0].id, "node-a/1"));
    EXPECT_FALSE(store_->RetryWebhook(first[0].id, "node-a/1", kNow, "late"));
    // A retry makes it due again at the given time, with the same id.
    EXPECT_TRUE(store_->RetryWebhook(second[0].id, "node-b/1", kNow + 65'000, "HTTP 503"));
    EXPECT_TRUE(store_->ClaimWebhooks("node-b/2", kNow + 64'999, 60'000, 10).empty());
    auto third = store_->ClaimWebhooks("node-b/2", kNow + 65'000, 60'000, 10);
    ASSERT_EQ(third.size(), 1u);
    EXPECT_EQ(third[0].id, first[0].id);
    EXPECT_EQ(third[0].attempts, 3);
    EXPECT_TRUE(store_->FinishWebhook(third[0].id, "node-b/2"));
    EXPECT_EQ(store_->WebhookOutboxDepth(), 0);
    EXPECT_TRUE(store_->ClaimWebhooks("node-c/1", kNow + 10'000'000, 60'000, 10).empty());
}

TEST_P(WebhookOutboxContract, AReleasedRowIsDueAgainWithoutCountingTheAttempt) {
    store_->Create(HookedJob("job-1", kNow, {"start"}));
    ASSERT_TRUE(store_->Claim("w", kNow, 30'000));
    auto first = store_->ClaimWebhooks("o/1", kNow, 60'000, 10);
    ASSERT_EQ(first.size(), 1u);
    EXPECT_FALSE(store_->ReleaseWebhook(first[0].id, "o/other", kNow + 1000));
    EXPECT_TRUE(store_->ReleaseWebhook(first[0].id, "o/1", kNow + 1000));
    EXPECT_TRUE(store_->ClaimWebhooks("o/2", kNow + 999, 60'000, 10).empty());
    auto again = store_->ClaimWebhooks("o/2", kNow + 1000, 60'000, 10);
    ASSERT_EQ(again.size(), 1u);
    EXPECT_EQ(again[0].id, first[0].id);
    EXPECT_EQ(again[0].attempts, 1);
}

TEST_P(WebhookOutboxContract, TheRowAndTheStateChangeCommitTogetherOrNotAtAll) {
    store_->Create(HookedJob("job-1", kNow, {"completed"}));
    ASSERT_TRUE(store_->Claim("w", kNow, 30'000));
    // Writing the row fails (here: its body cannot be rendered): the change is rolled back.
    store_->SetWebhookRenderer(
        [](const Job&) -> std::string { throw std::runtime_error("cannot render"); });
    Completion c;
    c.expires_at = kNow + 1000;
    EXPECT_THROW(store_->Complete("job-1", "w", c, kNow), std::runtime_error);
    EXPECT_EQ(store_->Get("job-1")->status, JobStatus::kProcessing);
    EXPECT_EQ(store_->WebhookOutboxDepth(), 0);
    // Once it can be written, both happen.
    store_->SetWebhookRenderer([](const Job& job) { return "{\"job_id\":\"" + job.id + "\"}"; });
    EXPECT_TRUE(store_->Complete("job-1", "w", c, kNow));
    EXPECT_EQ(store_->Get("job-1")->status, JobStatus::kCompleted);
    EXPECT_EQ(store_->WebhookOutboxDepth(), 1);
}

TEST_P(WebhookOutboxContract, ClaimsTakeTheOldestDueRowsUpToTheLimit) {
    for (int i = 0; i < 5; ++i) {
        const std::string id = "job-" + std::to_string(i);
        store_->Create(HookedJob(id, kNow + i, {"start"}));
        ASSERT_TRUE(store_->Claim("w", kNow + i, 30'000));
    }
    auto rows = store_->ClaimWebhooks("o/1", kNow + 100, 60'000, 3);
    ASSERT_EQ(rows.size(), 3u);
    std::set<std::string> jobs;
    for (auto& r : rows) jobs.insert(r.job_id);
    EXPECT_EQ(jobs, (std::set<std::string>{"job-0", "job-1", "job-2"}));
    EXPECT_EQ(store_->ClaimWebhooks("o/2", kNow + 100, 60'000, 10).size(), 2u);
}

}  // namespace songd::jobs::testing
