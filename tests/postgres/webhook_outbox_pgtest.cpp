// The WebhookOutbox contract on PostgreSQL (tests/unit/jobs/webhook_outbox_contract.h), and
// what only a shared database has: two nodes claiming at once never get the same row.
#include <gtest/gtest.h>

#include <atomic>
#include <mutex>
#include <set>
#include <thread>

#include "jobs/pg_store.h"
#include "pg_test_support.h"
#include "unit/jobs/webhook_outbox_contract.h"

namespace songd::jobs::testing {
namespace {

class PgOutboxBackend : public OutboxBackend {
  public:
    std::unique_ptr<JobStore> Open() override { return std::make_unique<PgJobStore>(db_.url()); }
    const std::string& url() const { return db_.url(); }

  private:
    test::PgTestDatabase db_;
};

INSTANTIATE_TEST_SUITE_P(Postgres, WebhookOutboxContract,
                         ::testing::Values(OutboxBackendKind{
                             "postgres", [] {
                                 return std::unique_ptr<OutboxBackend>(new PgOutboxBackend());
                             }}));

TEST(PgWebhookOutbox, TwoNodesClaimingAtOnceNeverGetTheSameRow) {
    PgOutboxBackend backend;
    auto setup = backend.Open();
    constexpr int kJobs = 60;
    const int64_t now = 1'700'000'000'000;
    for (int i = 0; i < kJobs; ++i) {
        const std::string id = "job-" + std::to_string(i);
        setup->Create(HookedJob(id, now + i, {"start"}));
        ASSERT_TRUE(setup->Claim("w", now + i, 30'000));
    }
    ASSERT_EQ(setup->WebhookOutboxDepth(), kJobs);

    std::mutex mutex;
    std::multiset<std::string> claimed;
    auto node = [&](const std::string& name) {
        auto store = backend.Open();
        for (int round = 0;; ++round) {
            auto rows =
                store->ClaimWebhooks(name + "/" + std::to_string(round), now + 1000, 60'000, 3);
            if (rows.empty()) return;
            std::lock_guard lock(mutex);
            for (auto& r : rows) claimed.insert(r.id);
        }
    };
    std::thread a(node, "node-a"), b(node, "node-b"), c(node, "node-c");
    a.join();
    b.join();
    c.join();
    EXPECT_EQ(claimed.size(), static_cast<size_t>(kJobs));
    EXPECT_EQ(std::set<std::string>(claimed.begin(), claimed.end()).size(),
              static_cast<size_t>(kJobs))
        << "a row was claimed by two nodes";
}

}  // namespace
}  // namespace songd::jobs::testing
