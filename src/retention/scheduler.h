#pragma once
/// @file
/// CleanupScheduler: runs the retention pass every CLEANUP_INTERVAL_HOURS, and once soon
/// after start when the last recorded pass is older than the interval — a service restarted
/// more often than the interval still cleans. The last pass time is stored in the job
/// store, and a store lock lets one node at a time run a pass.
///
///   retention::CleanupScheduler scheduler(config, store, objects, stats, node_id);
///   scheduler.Start();
///   scheduler.Stop();

#include <atomic>
#include <condition_variable>
#include <mutex>
#include <string>
#include <thread>

#include "core/config.h"
#include "jobs/job_store.h"
#include "retention/cleanup.h"

namespace songd::retention {

/// Store keys and timing shared by the scheduler and `songd cleanup`.
constexpr const char* kLastRunKey = "cleanup.last_run_ms";
constexpr const char* kLockName = "cleanup";
/// Delay of the first pass after start, so start-up is not slowed by it.
constexpr int64_t kStartDelayMs = 5000;

/// Runs one pass under the cleanup lock and records it; nullopt when another node holds
/// the lock. Used by the scheduler and by `songd cleanup`.
std::optional<CleanupReport> RunLockedPass(const core::Config& config, jobs::JobStore& store,
                                           ObjectStore* objects, const CleanupOptions& options,
                                           const std::string& owner);

/// @brief The background scheduler of `songd serve`.
class CleanupScheduler {
public:
    CleanupScheduler(const core::Config& config, jobs::JobStore& store, ObjectStore* objects,
                     RetentionStats& stats, std::string node_id);
    ~CleanupScheduler();
    void Start();
    void Stop();

private:
    void Loop();

    const core::Config& config_;
    jobs::JobStore& store_;
    ObjectStore* objects_;
    RetentionStats& stats_;
    std::string node_id_;
    std::mutex mutex_;
    std::condition_variable wake_;
    std::atomic<bool> stopping_{false};
    std::thread thread_;
};

}  // namespace songd::retention
