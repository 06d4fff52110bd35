#pragma once
/// @file
/// PgJobStore: the shared store of a cluster (`DATABASE_URL=postgresql://user:pw@host/db`).
///
///   PgJobStore store("postgresql://songd:secret@db.internal:5432/songd");  // migrates
///   auto job = store.Claim("node-a/w1", now, 30'000);  // never the same job on two nodes
///
/// Many `songd serve` processes share one database: a claim takes the oldest queued job with
/// FOR UPDATE SKIP LOCKED, unique constraints decide payment races, and migrations run under
/// an advisory lock so nodes starting together do not race. Semantics are those of
/// SqliteJobStore, method for method. A bounded pool of libpq connections (pg_connection.h),
/// opened on demand; a connection that broke is dropped and replaced, never handed out again.

#include <string>

#include "core/resource_pool.h"
#include "jobs/job_store.h"
#include "jobs/pg_connection.h"

namespace songd::jobs {

/// @brief JobStore on a PostgreSQL database shared by every node.
class PgJobStore : public JobStore {
  public:
    static constexpr int kDefaultPoolSize = 8;

    /// Whose clock lease times are on. kDatabase (what `songd` uses): leases are set, renewed
    /// and judged expired by PostgreSQL's clock, so a node whose clock runs ahead or behind
    /// never holds a job forever nor takes another node's job early; the `now` a caller passes
    /// then only stamps started_at/updated_at. kCaller: the times passed in, which lets
    /// tests drive leases with made-up times.
    enum class LeaseClock { kCaller, kDatabase };

    /// Connects (one connection, to fail early with a clear error) and migrates. Throws
    /// core::Error naming host, port, database and user (never the password) when the
    /// database cannot be reached.
    explicit PgJobStore(std::string url, int pool_size = kDefaultPoolSize,
                        LeaseClock lease_clock = LeaseClock::kCaller);
    ~PgJobStore() override;

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
    /// Connections open now, idle or in use (for tests of the pool).
    int OpenConnections();

  private:
    void Migrate();
    /// The outbox row of a state change, when the job's webhook wants `event`: called by
    /// every transition inside its own transaction (the one place a row is written).
    void EnqueueWebhook(PgConnection& conn, const Job& job, const char* event, int64_t now);
    void EnqueueWebhookFor(PgConnection& conn, const std::string& id, const char* event,
                           int64_t now);

    const PgTarget target_;
    const int pool_size_;
    const LeaseClock lease_clock_;
    BodyRenderer renderer_;
    core::ResourcePool<PgConnection> pool_;
};

}  // namespace songd::jobs
