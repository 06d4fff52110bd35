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
#include <optional>
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

/// Who holds the cleanup lock: "<host>\t<pid>\t<owner>", so a pass on the same host can
/// take over a lock left by a process that died mid-pass (kill -9) at once instead of
/// waiting for its lease to run out.
constexpr const char* kLockHolderKey = "cleanup.lock_holder";
std::string LockHolderRecord(const std::string& owner, int pid);

/// The cleanup lock is a lease: taken for `lease_ms` and renewed every `renew_ms` while the
/// pass runs, so a node that dies anywhere (another host included) holds it at most one
/// lease. A holder that cannot renew in time (stalled longer than the lease) loses it and
/// stops after its current batch. Two passes overlapping for that moment do no harm — each
/// step of a pass is idempotent — so the lock saves work, it does not guard correctness.
struct LockLease {
    int64_t lease_ms = 2 * 60 * 1000;
    int64_t renew_ms = 20 * 1000;
};

/// Runs one pass under the cleanup lock and records it; nullopt when another node holds
/// the lock. Used by the scheduler and by `songd cleanup`.
std::optional<CleanupReport> RunLockedPass(const core::Config& config, jobs::JobStore& store,
                                           ObjectStore* objects, const CleanupOptions& options,
                                           const std::string& owner, const LockLease& lease = {});

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
