#include "retention/scheduler.h"

#include <signal.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <condition_variable>
#include <mutex>
#include <thread>

#include "core/clock.h"
#include "core/log.h"

namespace songd::retention {

namespace {

std::string HostName() {
    char host[256] = {0};
    ::gethostname(host, sizeof host - 1);
    return host;
}

/// Frees the lock when its recorded holder is a process of this host that no longer
/// exists. Safe against races: Unlock only removes the dead owner's row, and TryLock lets
/// one contender win.
bool FreeLockOfDeadHolder(jobs::JobStore& store) {
    auto record = store.GetState(kLockHolderKey);
    if (!record) return false;
    const size_t a = record->find('\t');
    const size_t b = a == std::string::npos ? a : record->find('\t', a + 1);
    if (b == std::string::npos) return false;
    if (record->substr(0, a) != HostName()) return false;
    int pid = 0;
    try {
        pid = std::stoi(record->substr(a + 1, b - a - 1));
    } catch (const std::exception&) {
        return false;
    }
    if (pid <= 0 || pid == ::getpid() || ::kill(pid, 0) == 0 || errno != ESRCH) return false;
    const std::string owner = record->substr(b + 1);
    store.Unlock(kLockName, owner);
    core::LogEvent("warning", "cleanup_lock_taken_over",
                   {{"dead_owner", owner}, {"pid", std::to_string(pid)}});
    return true;
}

}  // namespace

std::string LockHolderRecord(const std::string& owner, int pid) {
    return HostName() + "\t" + std::to_string(pid) + "\t" + owner;
}

std::optional<CleanupReport> RunLockedPass(const core::Config& config, jobs::JobStore& store,
                                           ObjectStore* objects, const CleanupOptions& options,
                                           const std::string& owner, const LockLease& lease) {
    // A dry run deletes nothing, so it needs no lock and writes nothing, not even a lock row.
    if (options.dry_run) return RunCleanup(config, store, objects, options);
    auto take = [&] {
        const int64_t wall = core::NowMillis();
        return store.TryLock(kLockName, owner, wall, wall + lease.lease_ms);
    };
    bool locked = take();
    if (!locked && FreeLockOfDeadHolder(store)) locked = take();
    if (!locked) return std::nullopt;
    store.SetState(kLockHolderKey, LockHolderRecord(owner, ::getpid()));

    // Renews the lease while the pass runs; TryLock by the same owner extends it, and fails
    // only when the lease ran out and another node took the lock.
    std::atomic<bool> lost{false};
    std::mutex mutex;
    std::condition_variable wake;
    bool done = false;
    std::thread renewer([&] {
        std::unique_lock lock(mutex);
        while (
            !wake.wait_for(lock, std::chrono::milliseconds(lease.renew_ms), [&] { return done; })) {
            bool renewed = false;
            try {
                renewed = take();
            } catch (const std::exception& e) {
                core::LogEvent("error", "cleanup_lock_renew_failed", {{"error", e.what()}});
                continue;  // the store may answer next time; the lease has slack
            }
            if (!renewed) {
                core::LogEvent("warning", "cleanup_lock_lost", {{"owner", owner}});
                lost = true;
                return;
            }
        }
    });
    auto stop_renewer = [&] {
        {
            std::lock_guard lock(mutex);
            done = true;
        }
        wake.notify_all();
        renewer.join();
    };

    CleanupOptions locked_options = options;
    locked_options.lock_lost = &lost;
    CleanupReport report;
    try {
        report = RunCleanup(config, store, objects, locked_options);
    } catch (...) {
        stop_renewer();
        if (!lost) store.Unlock(kLockName, owner);
        throw;
    }
    stop_renewer();
    if (lost) return report;  // the pass stopped early; the node holding the lock goes on
    const bool cancelled = options.cancel && options.cancel->load();
    // The time the pass ran, or the as-of time when earlier: a pass "as of next month" must
    // not postpone the scheduled passes by a month.
    if (!cancelled) {
        store.SetState(kLastRunKey, std::to_string(std::min(options.now, core::NowMillis())));
    }
    store.Unlock(kLockName, owner);
    return report;
}

CleanupScheduler::CleanupScheduler(const core::Config& config, jobs::JobStore& store,
                                   ObjectStore* objects, RetentionStats& stats, std::string node_id)
    : config_(config),
      store_(store),
      objects_(objects),
      stats_(stats),
      node_id_(std::move(node_id)) {}

CleanupScheduler::~CleanupScheduler() { Stop(); }

void CleanupScheduler::Start() {
    if (!config_.cleanup_enabled || thread_.joinable()) return;
    thread_ = std::thread([this] { Loop(); });
}

void CleanupScheduler::Stop() {
    {
        std::lock_guard lock(mutex_);
        stopping_ = true;
    }
    wake_.notify_all();
    if (thread_.joinable()) thread_.join();
}

void CleanupScheduler::Loop() {
    const int64_t interval = config_.cleanup_interval_hours * core::kMillisPerHour;
    const int64_t started = core::NowMillis();
    while (true) {
        int64_t last = 0;
        try {
            if (auto value = store_.GetState(kLastRunKey)) last = std::stoll(*value);
        } catch (const std::exception& e) {
            core::LogEvent("error", "cleanup_state_unreadable", {{"error", e.what()}});
        }
        const int64_t now = core::NowMillis();
        // Due when the last pass is older than the interval, but never in the first seconds.
        int64_t next = std::max(last + interval, started + kStartDelayMs);
        if (next > now) {
            std::unique_lock lock(mutex_);
            // Wake at least hourly: another node may have run a pass meanwhile.
            auto wait =
                std::chrono::milliseconds(std::min<int64_t>(next - now, core::kMillisPerHour));
            if (wake_.wait_for(lock, wait, [this] { return stopping_.load(); })) return;
            continue;
        }
        if (stopping_) return;
        CleanupOptions options;
        options.now = now;
        options.cancel = &stopping_;
        try {
            auto report = RunLockedPass(config_, store_, objects_, options, node_id_);
            if (report) {
                stats_.Add(*report, now);
                core::LogEvent("info", "cleanup_pass", {{"summary", report->Summary(false)}});
            } else {
                // Another node is cleaning; look again in a minute.
                std::unique_lock lock(mutex_);
                if (wake_.wait_for(lock, std::chrono::minutes(1),
                                   [this] { return stopping_.load(); }))
                    return;
            }
        } catch (const std::exception& e) {
            ++stats_.errors;
            core::LogEvent("error", "cleanup_failed", {{"error", e.what()}});
            std::unique_lock lock(mutex_);
            if (wake_.wait_for(lock, std::chrono::minutes(5), [this] { return stopping_.load(); }))
                return;
        }
    }
}

}  // namespace songd::retention
