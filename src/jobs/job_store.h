#pragma once
/// @file
/// JobStore: the durable home of every job. SQLite on one machine, PostgreSQL for many.
///
///   auto store = jobs::OpenJobStore(config);           // runs migrations
///   auto created = store->Create(new_job);             // durable before generate answers
///   auto job = store->Claim("node-a/w1", now, lease);  // a worker takes the oldest queued job
///   store->Complete(job->id, "node-a/w1", result);     // only the lease holder may finish it
///
/// Every mutation of a claimed job names the lease owner; a worker that lost its lease (it
/// stalled, another node requeued the job) gets `false` and must drop the job.
///
/// JobStore is the sum of narrow interfaces, one per concern: JobQueue (workers, generate,
/// S3 copies), PaymentLedger, RetentionStore and NodeCoordination (state and locks), each
/// with JobReader's Get. A consumer takes the narrowest one it needs.

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "core/config.h"
#include "jobs/job.h"
#include "jobs/webhook_outbox.h"

namespace songd::jobs {

/// @brief What `Create` did.
struct CreateResult {
    Job job;
    bool created = true;  ///< false: an earlier job with the same idempotency key
};

/// @brief Counts for the queue and health documents.
struct QueueStats {
    int64_t queued = 0;
    int64_t processing = 0;
    int64_t completed = 0;
    int64_t failed = 0;
    int64_t expired = 0;
    int64_t canceled = 0;

    /// Counts `n` jobs of `status` (a store's GROUP BY status rows).
    void Add(JobStatus status, int64_t n) {
        switch (status) {
            case JobStatus::kQueued:
                queued += n;
                break;
            case JobStatus::kProcessing:
                processing += n;
                break;
            case JobStatus::kCompleted:
                completed += n;
                break;
            case JobStatus::kFailed:
                failed += n;
                break;
            case JobStatus::kExpired:
                expired += n;
                break;
            case JobStatus::kCanceled:
                canceled += n;
                break;
        }
    }
};

/// @brief What a worker reports when a job finished.
struct Completion {
    std::string output_file;
    AudioInfo audio;
    bool has_preview = false;
    int64_t expires_at = 0;
};

/// @brief What the retention pass of jobs due for deletion needs.
struct ExpiringJob {
    std::string id;
    JobStatus status;
    std::string output_file;
    std::string s3_url;
    int64_t expires_at = 0;
};

/// @brief Where a retention pass is in the (expires_at, id) order: it asks for the jobs after
/// the last one it saw, so jobs it leaves in place (dry run, a failed deletion) are not
/// selected again and memory stays flat.
struct ExpiryCursor {
    int64_t expires_at = INT64_MIN;
    std::string id;
};

/// @brief Outcome of binding a PaymentIntent to a job.
enum class BindResult {
    kBound,
    kAlreadyBoundHere,
    kBoundToOtherJob,
    kJobAlreadyPaid,
    kNoSuchJob,
    kJobNotPayable,  ///< not completed, or past expires_at: nothing to deliver, nothing bound
};

/// @brief What a client's cancel did (JobQueue::RequestCancel).
enum class CancelOutcome {
    kCanceled,   ///< it was queued: canceled now
    kRequested,  ///< it is processing: cancel_requested is set; the worker holding it stops
    kFinished,   ///< already completed, failed, expired or canceled: nothing changed
    kNoSuchJob,
};

/// @brief Reads one job by id: what every part of the store's interface starts from.
class JobReader {
  public:
    virtual ~JobReader() = default;
    virtual std::optional<Job> Get(const std::string& id) = 0;
};

/// @brief The queue: jobs created by generate, claimed and finished by workers, and the S3
/// copy of finished songs.
class JobQueue : public virtual JobReader {
  public:
    /// Inserts a queued job. With an idempotency key already used for the same request hash,
    /// returns that job (created=false); with a different hash, throws kConflict.
    virtual CreateResult Create(const Job& job) = 0;

    /// 1-based position among queued jobs (oldest first), 0 if not queued.
    virtual int64_t QueuePosition(const std::string& id) = 0;
    virtual QueueStats Stats() = 0;

    /// Takes the oldest queued job: processing, attempts+1, lease until now+lease_ms.
    virtual std::optional<Job> Claim(const std::string& owner, int64_t now, int64_t lease_ms) = 0;
    virtual bool RenewLease(const std::string& id, const std::string& owner, int64_t until) = 0;
    virtual bool SetProgress(const std::string& id, const std::string& owner, int progress) = 0;
    /// Refused (false) once a cancel was requested: the worker then records it canceled.
    virtual bool Complete(const std::string& id, const std::string& owner, const Completion& c,
                          int64_t now) = 0;
    virtual bool Fail(const std::string& id, const std::string& owner, const std::string& code,
                      const std::string& message, int64_t now, int64_t expires_at) = 0;
    /// Gives a claimed job back to the queue without counting the attempt (graceful shutdown).
    virtual bool Release(const std::string& id, const std::string& owner) = 0;

    /// A client's cancel: a queued job becomes canceled at once (MarkCanceled); a processing
    /// one gets cancel_requested, which its worker sees (in this process at once, on other
    /// nodes through CancelRequested) and then calls MarkCanceled. `job` is the job after.
    virtual CancelOutcome RequestCancel(const std::string& id, int64_t now, int64_t expires_at,
                                        Job* job) = 0;
    /// The transition to `canceled`: with an empty `owner` from queued, else from processing
    /// under `owner`'s lease. Every way a job becomes canceled (this, RequestCancel's queued
    /// case, lease recovery of a job whose cancel was asked) runs one statement in each store,
    /// MarkCanceledWith: the one place to hook (e.g. a webhook outbox row in its transaction).
    /// Clears the lease and the file fields; expires_at = `expires_at` (retention then deletes the
    /// record). False when the job was in neither state.
    virtual bool MarkCanceled(const std::string& id, const std::string& owner, int64_t now,
                              int64_t expires_at) = 0;
    /// Which of `ids` (jobs this node processes) a client asked to cancel.
    virtual std::vector<std::string> CancelRequested(const std::vector<std::string>& ids) = 0;

    /// Jobs processing whose lease ended before `now` go back to queued, or fail once they
    /// used `max_attempts` (or become canceled when a cancel was requested). `all_processing`
    /// requeues every processing job regardless of its lease (a single-process store after a
    /// crash). Returns how many jobs it touched.
    virtual int RecoverExpiredLeases(int64_t now, int max_attempts, bool all_processing,
                                     int64_t fail_expires_at) = 0;

    /// Sets the S3 location of a completed job.
    virtual bool SetS3Url(const std::string& id, const std::string& s3_url) = 0;
    /// Completed jobs not yet in S3, oldest first (the upload reconciler).
    virtual std::vector<std::string> CompletedWithoutS3(int limit) = 0;
    /// Jobs with `status`, ordered by id, after `after_id`: a page for commands that walk
    /// every finished song (migrate-s3).
    virtual std::vector<Job> ListByStatus(JobStatus status, const std::string& after_id,
                                          int limit) = 0;
};

/// @brief Payments: which PaymentIntent paid for which job, and the webhook events seen.
class PaymentLedger : public virtual JobReader {
  public:
    /// Binds `intent_id` to the job, only while it is `completed` with expires_at > now (in
    /// the same statement, so retention cannot delete the files in between), and keeps its
    /// files until at least `keep_files_until`: expires_at = max(expires_at, keep_files_until).
    virtual BindResult BindPayment(const std::string& id, const std::string& intent_id, int64_t now,
                                   int64_t keep_files_until) = 0;
    virtual bool SetPaymentStatus(const std::string& id, const std::string& status) = 0;
    /// Records a webhook event id; false when it was already recorded (a replay).
    virtual bool RecordEvent(const std::string& event_id, int64_t now) = 0;
    /// Takes a recorded event back when applying it failed, so Stripe's redelivery applies it.
    virtual void ForgetEvent(const std::string& event_id) = 0;
    /// Whether a webhook event id was recorded (the webhook applies first, then records).
    virtual bool HasEvent(const std::string& event_id) = 0;
};

/// @brief What a retention pass reads and changes.
class RetentionStore : public virtual JobReader {
  public:
    /// Completed, failed and canceled jobs with expires_at ≤ now after `after` in (expires_at, id)
    /// order, at most `limit`.
    virtual std::vector<ExpiringJob> DueForExpiry(int64_t now, const ExpiryCursor& after,
                                                  int limit) = 0;
    virtual bool MarkExpired(const std::string& id, int64_t now) = 0;
    /// Removes a job record (failed jobs past their expiry leave no tombstone).
    virtual bool DeleteJob(const std::string& id) = 0;
    /// A retention batch in one transaction (one commit, not one per job): MarkExpired for
    /// `expire`, DeleteJob for `remove`. The default does them one by one.
    virtual void ExpireBatch(const std::vector<std::string>& expire,
                             const std::vector<std::string>& remove, int64_t now) {
        for (const auto& id : expire) MarkExpired(id, now);
        for (const auto& id : remove) DeleteJob(id);
    }
    /// Whether a job with this id exists (any status), for the orphan sweep.
    virtual bool Exists(const std::string& id) = 0;
};

/// @brief State shared by the nodes of a cluster: values that survive restarts and named
/// locks with an expiry.
class NodeCoordination {
  public:
    virtual ~NodeCoordination() = default;
    /// Key-value state that must survive restarts (e.g. "cleanup.last_run").
    virtual std::optional<std::string> GetState(const std::string& key) = 0;
    virtual void SetState(const std::string& key, const std::string& value) = 0;
    /// Takes a named lock until `until` (several nodes: one cleanup pass at a time).
    virtual bool TryLock(const std::string& name, const std::string& owner, int64_t now,
                         int64_t until) = 0;
    virtual void Unlock(const std::string& name, const std::string& owner) = 0;
};

/// @brief A reference song a client uploaded (`POST {p}/uploads`), with its analysis.
struct Upload {
    std::string id;
    std::string file;    ///< relative to OUTPUT_DIR: "uploads/{id}/reference.mp3"
    std::string format;  ///< wav, flac, mp3, ogg (as decoded)
    std::string s3_key;  ///< the S3 copy's key; empty without S3
    int64_t size_bytes = 0;
    double duration_seconds = 0;
    int sample_rate = 0;
    int channels = 0;
    double tempo_bpm = 0;  ///< 0 when no beat was found
    std::string key;       ///< "A minor"
    int64_t created_at = 0;
    int64_t expires_at = 0;  ///< created_at + FILE_RETENTION_DAYS
};

/// @brief Uploaded reference songs: recorded once their file is safe, found from any node,
/// deleted by retention after expires_at.
class UploadStore {
  public:
    virtual ~UploadStore() = default;
    virtual void PutUpload(const Upload& upload) = 0;
    /// The upload, expired or not (callers compare expires_at with their clock).
    virtual std::optional<Upload> GetUpload(const std::string& id) = 0;
    /// Uploads with expires_at ≤ now, oldest first, at most `limit`.
    virtual std::vector<Upload> UploadsDueForExpiry(int64_t now, int limit) = 0;
    virtual bool DeleteUpload(const std::string& id) = 0;
};

/// @brief The durable job store: every interface above, on one database. Code that needs
/// one concern takes that interface, so a test fake implements only it.
class JobStore : public JobQueue,
                 public PaymentLedger,
                 public RetentionStore,
                 public NodeCoordination,
                 public WebhookOutbox,
                 public UploadStore {};

/// Opens the store named by DATABASE_URL and brings its schema up to date.
std::unique_ptr<JobStore> OpenJobStore(const core::Config& config);

}  // namespace songd::jobs
