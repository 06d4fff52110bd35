#pragma once
/// @file
/// WorkerPool: WORKERS threads that claim queued jobs with a lease, render them, finish the
/// audio and record the outcome.
///
///   jobs::WorkerPool pool(config, store, engine, "node-1");
///   pool.Start();          // recovers jobs whose worker died, then starts claiming
///   pool.Notify();         // a job was just queued: wake an idle worker now
///   pool.Stop();           // in-flight renders are cancelled and their jobs requeued
///
/// A heartbeat renews the leases of in-flight jobs; a job whose lease cannot be renewed
/// (another node requeued it) is abandoned, never completed twice.

#include <atomic>
#include <condition_variable>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "core/config.h"
#include "engine/engine.h"
#include "jobs/job_store.h"

namespace songd::jobs {

/// Lease a worker holds on a job; renewed every third of it.
constexpr int64_t kLeaseMillis = 30'000;
/// Attempts before a job whose worker keeps dying fails for good.
constexpr int kMaxAttempts = 3;

/// @brief Optional steps around a finished render (preview, upload), set by the service.
struct JobHooks {
    /// After output_fixed.wav is safe, before the job is marked completed (e.g. the preview).
    std::function<void(const Job&, Completion&)> before_complete;
    /// After the job is marked completed (e.g. the S3 upload). Failures are logged only.
    std::function<void(const Job&)> after_complete;
};

/// @brief Counters the metrics endpoint reads.
struct WorkerStats {
    std::atomic<int64_t> completed{0};
    std::atomic<int64_t> failed{0};
    std::atomic<int64_t> requeued{0};
    std::atomic<int64_t> render_millis{0};
};

/// @brief The pool of generation workers of one node.
class WorkerPool {
  public:
    WorkerPool(const core::Config& config, JobStore& store, engine::Engine& engine,
               std::string node_id, JobHooks hooks = {});
    ~WorkerPool();
    WorkerPool(const WorkerPool&) = delete;
    WorkerPool& operator=(const WorkerPool&) = delete;

    /// `exclusive_store`: this process is the only user of the store (SQLite), so every
    /// job still marked processing belongs to a dead process and is recovered at once.
    void Start(bool exclusive_store);
    void Notify();
    void Stop();

    int Active() const { return active_.load(); }
    const WorkerStats& stats() const { return stats_; }

  private:
    struct InFlight {
        std::string job_id;
        std::shared_ptr<engine::CancelToken> cancel;
        std::atomic<bool> lease_lost{false};
    };

    void WorkerLoop(int index);
    void Process(const Job& job, const std::string& owner);
    void HeartbeatLoop();

    const core::Config& config_;
    JobStore& store_;
    engine::Engine& engine_;
    std::string node_id_;
    JobHooks hooks_;
    WorkerStats stats_;

    std::atomic<bool> stopping_{false};
    std::atomic<int> active_{0};
    std::mutex mutex_;
    std::condition_variable wake_;
    bool pending_ = false;
    std::map<std::string, std::shared_ptr<InFlight>> in_flight_;  // by owner
    std::vector<std::thread> threads_;
};

}  // namespace songd::jobs
