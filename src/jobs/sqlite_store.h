#pragma once
/// @file
/// SqliteJobStore: the embedded default store (`DATABASE_URL=sqlite:./data/songd.db`).
///
///   SqliteJobStore store("./data/songd.db");   // creates, migrates, WAL on
///
/// WAL journal, a busy timeout, versioned migrations, one connection per concurrent caller
/// (a core::ResourcePool keeping up to 16 idle) with cached prepared statements. Writes use
/// BEGIN IMMEDIATE so two writers never deadlock on a lock upgrade.

#include <filesystem>

#include "core/resource_pool.h"
#include "jobs/job_store.h"

namespace songd::jobs {

class SqliteConnection;

/// @brief JobStore on one SQLite file.
class SqliteJobStore : public JobStore {
  public:
    explicit SqliteJobStore(const std::filesystem::path& path);
    ~SqliteJobStore() override;

    CreateResult Create(const Job& job) override;
    std::optional<Job> Get(const std::string& id) override;
    int64_t QueuePosition(const std::string& id) override;
    QueueStats Stats() override;
    std::optional<Job> Claim(const std::string& owner, int64_t now, int64_t lease_ms) override;
    bool RenewLease(const std::string& id, const std::string& owner, int64_t until) override;
    bool SetProgress(const std::string& id, const std::string& owner, int progress) override;
    bool Complete(const std::string& id, const std::string& owner, const Completion& c,
                  int64_t now) override;
    bool Fail(const std::string& id, const std::string& owner, const std::string& code,
              const std::string& message, int64_t now, int64_t expires_at) override;
    bool Release(const std::string& id, const std::string& owner) override;
    CancelOutcome RequestCancel(const std::string& id, int64_t now, int64_t expires_at,
                                Job* job) override;
    bool MarkCanceled(const std::string& id, const std::string& owner, int64_t now,
                      int64_t expires_at) override;
    std::vector<std::string> CancelRequested(const std::vector<std::string>& ids) override;
    int RecoverExpiredLeases(int64_t now, int max_attempts, bool all_processing,
                             int64_t fail_expires_at) override;
    bool SetS3Url(const std::string& id, const std::string& s3_url) override;
    BindResult BindPayment(const std::string& id, const std::string& intent_id, int64_t now,
                           int64_t keep_files_until) override;
    bool SetPaymentStatus(const std::string& id, const std::string& status) override;
    bool RecordEvent(const std::string& event_id, int64_t now) override;
    void ForgetEvent(const std::string& event_id) override;
    bool HasEvent(const std::string& event_id) override;
    std::vector<ExpiringJob> DueForExpiry(int64_t now, const ExpiryCursor& after,
                                          int limit) override;
    bool MarkExpired(const std::string& id, int64_t now) override;
    bool DeleteJob(const std::string& id) override;
    void ExpireBatch(const std::vector<std::string>& expire, const std::vector<std::string>& remove,
                     int64_t now) override;
    std::vector<std::string> CompletedWithoutS3(int limit) override;
    std::vector<Job> ListByStatus(JobStatus status, const std::string& after_id,
                                  int limit) override;
    bool Exists(const std::string& id) override;
    std::optional<std::string> GetState(const std::string& key) override;
    void SetState(const std::string& key, const std::string& value) override;
    bool TryLock(const std::string& name, const std::string& owner, int64_t now,
                 int64_t until) override;
    void Unlock(const std::string& name, const std::string& owner) override;
    void SetWebhookRenderer(BodyRenderer renderer) override;
    std::vector<WebhookDelivery> ClaimWebhooks(const std::string& owner, int64_t now,
                                               int64_t lease_ms, int limit) override;
    bool FinishWebhook(const std::string& id, const std::string& owner) override;
    bool RetryWebhook(const std::string& id, const std::string& owner, int64_t next_attempt_at,
                      const std::string& error) override;
    bool ReleaseWebhook(const std::string& id, const std::string& owner,
                        int64_t next_attempt_at) override;
    int64_t WebhookOutboxDepth() override;
    void PutUpload(const Upload& upload) override;
    std::optional<Upload> GetUpload(const std::string& id) override;
    std::vector<Upload> UploadsDueForExpiry(int64_t now, int limit) override;
    bool DeleteUpload(const std::string& id) override;

    /// Current schema version (for tests of migrations).
    int SchemaVersion();

  private:
    /// The outbox row of a state change, when the job's webhook wants `event`: called by
    /// every transition inside its own transaction (the one place a row is written).
    void EnqueueWebhook(SqliteConnection& conn, const Job& job, const char* event, int64_t now);
    void EnqueueWebhookFor(SqliteConnection& conn, const std::string& id, const char* event,
                           int64_t now);

    const std::filesystem::path path_;
    BodyRenderer renderer_;
    core::ResourcePool<SqliteConnection> pool_;
};

}  // namespace songd::jobs
