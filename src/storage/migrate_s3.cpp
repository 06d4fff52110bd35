#include "storage/migrate_s3.h"

#include <filesystem>

#include "core/error.h"
#include "jobs/layout.h"
#include "storage/s3/s3_client.h"

namespace songd::storage {

std::string MigrateReport::Summary(bool dry_run) const {
    return std::string(dry_run ? "dry run: " : "") + std::to_string(seen) + " completed songs, " +
           std::to_string(present) + " already in S3, " + std::to_string(uploaded) +
           (dry_run ? " would be uploaded, " : " uploaded, ") + std::to_string(missing_local) +
           " missing locally, " + std::to_string(failed) + " failed";
}

MigrateReport MigrateToS3(const core::Config& config, jobs::JobStore& store, SongStorage& songs,
                          const MigrateOptions& options) {
    if (songs.client() == nullptr) {
        throw core::Error(core::ErrorCode::kInvalidInput,
                          "migrate-s3 needs S3_ENABLED=true and the S3_* settings");
    }
    auto& client = *songs.client();
    auto item = [&](const std::string& line) {
        if (options.on_item) options.on_item(line);
    };
    MigrateReport report;
    std::string after;
    while (true) {
        auto page = store.ListByStatus(jobs::JobStatus::kCompleted, after, 200);
        if (page.empty()) break;
        after = page.back().id;
        for (const auto& job : page) {
            ++report.seen;
            const std::string key = client.JobObjectKey(job.id, jobs::kSongFile);
            if (client.HeadObject(key)) {
                ++report.present;
                if (job.s3_url.empty() && !options.dry_run) {
                    store.SetS3Url(job.id, client.S3Url(key));
                }
                continue;
            }
            std::error_code ec;
            if (!std::filesystem::exists(jobs::LocalSong(config, job.id), ec)) {
                ++report.missing_local;
                item("cannot upload " + job.id + ": no local file and none in S3");
                continue;
            }
            const std::string where = "s3://" + config.s3_bucket + "/" + key;
            if (options.dry_run) {
                item("would upload " + job.id + " to " + where);
                ++report.uploaded;
            } else if (songs.Upload(job)) {
                item("uploaded " + job.id + " to " + where);
                ++report.uploaded;
            } else {
                ++report.failed;
            }
        }
        if (options.on_progress) options.on_progress(report.seen);
    }
    return report;
}

}  // namespace songd::storage
