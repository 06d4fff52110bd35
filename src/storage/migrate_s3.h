#pragma once
/// @file
/// `songd migrate-s3`: uploads the finished songs that S3 does not have yet (songs made
/// before S3 was switched on, or whose upload never succeeded).
///
///   storage::SongStorage songs(config, store);   // S3_ENABLED
///   storage::MigrateOptions options{.dry_run = true,
///                                   .on_item = [](const std::string& line) { ... }};
///   storage::MigrateReport report = storage::MigrateToS3(config, store, songs, options);
///   std::cout << report.Summary(options.dry_run);   // exit code 1 when report.failed > 0
///
/// A song already in S3 is not sent again; only its missing `s3_url` is recorded.

#include <cstdint>
#include <functional>
#include <string>

#include "core/config.h"
#include "jobs/job_store.h"
#include "storage/song_storage.h"

namespace songd::storage {

/// @brief How to run one migration.
struct MigrateOptions {
    bool dry_run = false;  ///< report what would be uploaded; change nothing
    /// One line per song uploaded (or that would be), or that cannot be uploaded.
    std::function<void(const std::string&)> on_item;
    /// After every page of songs: how many were checked so far.
    std::function<void(int64_t checked)> on_progress;
};

/// @brief What a migration found and did.
struct MigrateReport {
    int64_t seen = 0;           ///< completed songs checked
    int64_t present = 0;        ///< already in S3
    int64_t uploaded = 0;       ///< uploaded (dry run: would be)
    int64_t missing_local = 0;  ///< neither on this disk nor in S3
    int64_t failed = 0;         ///< uploads that failed

    std::string Summary(bool dry_run) const;
};

/// Walks every completed job and uploads those missing from S3. Throws core::Error when S3
/// is off or the store cannot be read; single failed uploads are counted, not thrown.
MigrateReport MigrateToS3(const core::Config& config, jobs::JobStore& store, SongStorage& songs,
                          const MigrateOptions& options);

}  // namespace songd::storage
