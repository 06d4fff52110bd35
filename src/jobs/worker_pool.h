#pragma once
/// @file
/// WorkerPool: WORKERS threads that claim queued jobs with a lease, run the render pipeline
/// (jobs/render_pipeline.h) on them and record the outcome.
///
///   jobs::WorkerPool pool(config, store, engine, "node-1", &listener);
///   pool.Start(exclusive);  // recovers jobs whose worker died, then claims (engine ready)
///   pool.Notify();          // a job was just queued: wake an idle worker now
///   pool.Stop();            // in-flight renders are cancelled and their jobs requeued
///
/// A heartbeat renews the leases of in-flight jobs; a job whose lease cannot be renewed
/// (another node requeued it) is abandoned, never completed twice.
///
/// A store outage is never a render failure. Once a song is finished, recording `completed`
/// is retried with backoff for as long as the lease holds; if the lease is lost (or the
/// service stops) the finished files stay, and the next attempt completes the job without
/// rendering again. `failed` is only for a job that cannot be made (engine or finishing
/// error, timeout), and nothing here deletes the files of a completed job.

#include <atomic>
#include <condition_variable>
#include <filesystem>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "core/config.h"
#include "engine/engine.h"
#include "jobs/job_changes.h"
#include "jobs/job_store.h"

namespace songd::jobs {

/// Lease a worker holds on a job; renewed every third of it.
constexpr int64_t kLeaseMillis = 30'000;
/// How often in-flight jobs are checked for a cancel asked on another node (PostgreSQL).
constexpr int64_t kCancelPollMillis = 500;
/// Attempts before a job whose worker keeps dying fails for good.
constexpr int kMaxAttempts = 3;

/// First and longest wait between attempts to record a finished job while the store fails.
constexpr int64_t kCompletionRetryFirstMillis = 100;
constexpr int64_t kCompletionRetryMaxMillis = 5'000;
/// Waits between renders of a job while OUTPUT_DIR has no room for it.
constexpr int64_t kDiskFullRetryFirstMillis = 2'000;
constexpr int64_t kDiskFullRetryMaxMillis = 30'000;

/// @brief Told about every job this pool completed (the service uploads it to S3). Called on
/// a worker thread right after the store recorded `completed`; it must return quickly (an
/// exception is logged, the job stays completed).
class CompletionListener {
  public:
    virtual ~CompletionListener() = default;
    virtual void OnCompleted(const std::string& job_id) = 0;
};

/// @brief Counters the metrics endpoint reads.
struct WorkerStats {
    std::atomic<int64_t> completed{0};
    std::atomic<int64_t> failed{0};
    std::atomic<int64_t> requeued{0};
    std::atomic<int64_t> canceled{0};
    std::atomic<int64_t> render_millis{0};
};

/// @brief The pool of generation workers of one node.
class WorkerPool {
  public:
    WorkerPool(const core::Config& config, JobQueue& store, engine::Engine& engine,
               std::string node_id, CompletionListener* listener = nullptr);
    ~WorkerPool();
    WorkerPool(const WorkerPool&) = delete;
    WorkerPool& operator=(const WorkerPool&) = delete;

    /// `exclusive_store`: this process is the only user of the store (SQLite), so every
    /// job still marked processing belongs to a dead process and is recovered at once.
    void Start(bool exclusive_store);
    /// Where a job's reference song (`ref_audio_id`) is on this node: a local path, fetched
    /// first when it is elsewhere; throws when the upload is gone. Set before Start.
    using ReferenceResolver = std::function<std::filesystem::path(const std::string& upload_id)>;
    void SetReferenceResolver(ReferenceResolver resolver) {
        resolve_reference_ = std::move(resolver);
    }
    void Notify();
    void Stop();
    /// Every change the workers make to a job is published here (set before Start).
    void PublishChangesTo(JobChanges* changes) { changes_ = changes; }
    /// A client canceled `job_id` (the store has cancel_requested): if a worker here renders
    /// it, its engine is stopped now and the job recorded canceled. False when not here.
    bool CancelLocal(const std::string& job_id);

    int Active() const { return active_.load(); }
    const WorkerStats& stats() const { return stats_; }
    /// The engine the workers render with (its readiness is the service's).
    const engine::Engine& engine() const { return engine_; }

  private:
    struct InFlight {
        std::string job_id;
        std::shared_ptr<engine::CancelToken> cancel;
        std::atomic<bool> lease_lost{false};
    };

    enum class Recorded { kCompleted, kLeaseLost, kStopped, kCanceled };

    void WorkerLoop(int index);
    void Process(const Job& job, const std::string& owner);
    /// Records a finished job as completed, retrying while the store fails and the lease
    /// holds. Never throws.
    Recorded RecordCompletion(const Job& job, const std::string& owner, Completion completion,
                              const InFlight& flight);
    /// Records a job that cannot be made as failed; returns the outcome name.
    std::string RecordFailure(const Job& job, const std::string& owner, const std::exception& e,
                              const InFlight& flight);
    /// Records a job a client canceled; removes its files and work folder. Never throws.
    std::string RecordCanceled(const Job& job, const std::string& owner);
    void Published(const std::string& job_id);
    /// Waits up to `millis` or until Stop.
    void Pause(int64_t millis);
    void HeartbeatLoop();

    const core::Config& config_;
    JobQueue& store_;
    engine::Engine& engine_;
    std::string node_id_;
    CompletionListener* listener_;
    JobChanges* changes_ = nullptr;
    ReferenceResolver resolve_reference_;
    WorkerStats stats_;

    std::atomic<bool> stopping_{false};
    std::atomic<int> active_{0};
    std::mutex mutex_;
    std::condition_variable wake_;
    std::condition_variable stop_wake_;  ///< only Stop: ends the completion retries' pauses
    bool pending_ = false;
    std::map<std::string, std::shared_ptr<InFlight>> in_flight_;  // by owner
    std::vector<std::thread> threads_;
};

}  // namespace songd::jobs
