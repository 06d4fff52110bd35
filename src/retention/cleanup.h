#pragma once
/// @file
/// One retention pass: expired jobs lose their files locally and in S3 and read
/// `expired`; files no job owns that are older than the retention go too.
///
///   retention::CleanupOptions opts{.now = core::NowMillis(), .dry_run = false};
///   retention::CleanupReport r = retention::RunCleanup(config, store, s3_or_null, opts);
///
/// Jobs due are found through the expires_at index, in batches, so memory stays flat.
/// Files are deleted before the record is marked, so a crash halfway leaves no expired record
/// whose files still exist; the next pass finishes the work.

#include <atomic>
#include <cstdint>
#include <functional>
#include <string>

#include "core/config.h"
#include "jobs/job_store.h"
#include "storage/object_store.h"

namespace songd::retention {

// The bucket as retention sees it; declared by storage/, which implements it over S3.
using storage::ObjectStore;
using storage::StoredObject;

struct CleanupOptions {
    int64_t now = 0;       ///< the pass acts as if it were this time
    bool dry_run = false;  ///< report what would go; change nothing
    int batch_size = 500;
    /// Set from another thread to stop the pass between batches (shutdown).
    const std::atomic<bool>* cancel = nullptr;
    /// Set when the pass's lock was lost (it stops the same way).
    const std::atomic<bool>* lock_lost = nullptr;
    /// Called for every item deleted (or that would be): a line for `songd cleanup`.
    std::function<void(const std::string&)> on_item;
    /// Uploaded reference songs to expire too; null: the store's own when it keeps them.
    jobs::UploadStore* uploads = nullptr;
};

struct CleanupReport {
    int64_t jobs_expired = 0;         ///< completed jobs now `expired`
    int64_t failed_jobs_removed = 0;  ///< failed job records removed
    int64_t files_deleted = 0;        ///< local files
    int64_t bytes_deleted = 0;        ///< local bytes
    int64_t objects_deleted = 0;      ///< S3 keys sent for deletion
    int64_t orphan_folders = 0;
    int64_t orphan_objects = 0;
    int64_t uploads_expired = 0;  ///< reference songs deleted with their record
    int64_t errors = 0;

    std::string Summary(bool dry_run) const;
};

/// @brief Counters for the metrics endpoint, across passes.
struct RetentionStats {
    std::atomic<int64_t> last_pass_ms{0};
    std::atomic<int64_t> passes{0};
    std::atomic<int64_t> files_deleted{0};
    std::atomic<int64_t> bytes_deleted{0};
    std::atomic<int64_t> objects_deleted{0};
    std::atomic<int64_t> jobs_expired{0};
    std::atomic<int64_t> errors{0};

    void Add(const CleanupReport& report, int64_t when);
    std::string Prometheus() const;
};

CleanupReport RunCleanup(const core::Config& config, jobs::RetentionStore& store,
                         ObjectStore* objects, const CleanupOptions& options);

}  // namespace songd::retention
