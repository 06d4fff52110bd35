#pragma once
/// @file
/// NotifyingJobStore: a JobStore that tells listeners after every change this process makes
/// to a job: each transition (claim, progress, complete, fail, release, lease recovery),
/// the S3 copy, payments, expiry and deletion by retention. Caches of what a job looks like
/// (the status cache) subscribe here, so one place sees every local change.
///
///   auto store = std::make_unique<jobs::NotifyingJobStore>(jobs::OpenJobStore(config));
///   store->OnChange([&cache](const std::string& id) { cache.Invalidate(id); });
///
/// A new mutating method of JobStore must be forwarded here and call Changed(id) after the
/// inner store returns (the method is pure virtual, so forgetting it does not compile).

#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "jobs/job_store.h"

namespace songd::jobs {

/// @brief A JobStore decorator that announces every local change of a job.
class NotifyingJobStore : public JobStore {
  public:
    /// `id` is the changed job; empty when any job may have changed. Every call also means
    /// "queue positions may have moved".
    using Listener = std::function<void(const std::string& id)>;

    explicit NotifyingJobStore(std::unique_ptr<JobStore> inner);
    /// Adds a listener; call before serving (listeners are not removed).
    void OnChange(Listener listener);
    /// Tells every listener that `id` changed (empty: any job). Public so that a change made
    /// outside this store (another node's, seen through the database) can be announced too.
    void Changed(const std::string& id);

    JobStore& inner() { return *inner_; }

    std::optional<Job> Get(const std::string& id) override;
    CreateResult Create(const Job& job) override;
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
    int RecoverExpiredLeases(int64_t now, int max_attempts, bool all_processing,
                             int64_t fail_expires_at) override;
    bool SetS3Url(const std::string& id, const std::string& s3_url) override;
    std::vector<std::string> CompletedWithoutS3(int limit) override;
    std::vector<Job> ListByStatus(JobStatus status, const std::string& after_id,
                                  int limit) override;
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
    bool Exists(const std::string& id) override;
    std::optional<std::string> GetState(const std::string& key) override;
    void SetState(const std::string& key, const std::string& value) override;
    bool TryLock(const std::string& name, const std::string& owner, int64_t now,
                 int64_t until) override;
    void Unlock(const std::string& name, const std::string& owner) override;

    // Client cancel (each transition announced), the webhook outbox and uploads (no job
    // changes: forwarded as they are).
    CancelOutcome RequestCancel(const std::string& id, int64_t now, int64_t expires_at,
                                Job* job) override;
    bool MarkCanceled(const std::string& id, const std::string& owner, int64_t now,
                      int64_t expires_at) override;
    std::vector<std::string> CancelRequested(const std::vector<std::string>& ids) override;
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

  private:
    /// Runs `f` and announces `id` afterwards, also when `f` throws (it may have committed).
    template <class F>
    auto Announce(const std::string& id, F&& f) {
        struct After {
            NotifyingJobStore* self;
            const std::string& id;
            ~After() { self->Changed(id); }
        } after{this, id};
        return f();
    }

    std::unique_ptr<JobStore> inner_;
    std::vector<Listener> listeners_;
};

}  // namespace songd::jobs
