#include "retention/cleanup.h"

#include <sys/stat.h>

#include <atomic>
#include <filesystem>
#include <mutex>
#include <thread>

#include "core/clock.h"
#include "core/ids.h"
#include "core/log.h"
#include "jobs/layout.h"

namespace songd::retention {

namespace fs = std::filesystem;

namespace {

/// A failed or canceled job leaves no tombstone (it never had a song to expire).
bool Gone(const jobs::ExpiringJob& job) {
    return job.status == jobs::JobStatus::kFailed || job.status == jobs::JobStatus::kCanceled;
}

/// Size and count of the regular files under `path` (a file or a folder).
void Measure(const fs::path& path, int64_t& files, int64_t& bytes) {
    std::error_code ec;
    if (fs::is_regular_file(path, ec)) {
        ++files;
        bytes += static_cast<int64_t>(fs::file_size(path, ec));
        return;
    }
    for (fs::recursive_directory_iterator it(path, ec), end; !ec && it != end; it.increment(ec)) {
        if (it->is_regular_file(ec)) {
            ++files;
            bytes += static_cast<int64_t>(it->file_size(ec));
        }
    }
}

/// Newest modification time of `path` and what it contains, in ms.
int64_t NewestMtime(const fs::path& path) {
    auto mtime = [](const fs::path& p) -> int64_t {
        struct stat st {};
        if (::lstat(p.c_str(), &st) != 0) return 0;
        return static_cast<int64_t>(st.st_mtim.tv_sec) * 1000 + st.st_mtim.tv_nsec / 1000000;
    };
    int64_t newest = mtime(path);
    std::error_code ec;
    if (fs::is_directory(path, ec)) {
        for (fs::recursive_directory_iterator it(path, ec), end; !ec && it != end;
             it.increment(ec)) {
            newest = std::max(newest, mtime(it->path()));
        }
    }
    return newest;
}

class Pass {
  public:
    Pass(const core::Config& config, jobs::RetentionStore& store, ObjectStore* objects,
         const CleanupOptions& options)
        : config_(config),
          store_(store),
          uploads_(options.uploads ? options.uploads : dynamic_cast<jobs::UploadStore*>(&store)),
          objects_(objects),
          options_(options),
          retention_ms_(config.file_retention_days * core::kMillisPerDay) {}

    CleanupReport Run() {
        ExpireDueJobs();
        if (!Cancelled()) ExpireUploads();
        // Cancelled (shutdown): not even one more listing request.
        if (!Cancelled()) SweepLocalOrphans();
        if (objects_ && !Cancelled()) SweepObjectOrphans();
        FlushObjects();
        return report_;
    }

  private:
    bool Cancelled() const {
        return (options_.cancel && options_.cancel->load()) ||
               (options_.lock_lost && options_.lock_lost->load());
    }

    void Item(const std::string& line) {
        if (options_.on_item) options_.on_item(line);
    }

    /// Deletes a local path; true when it is gone (or never existed).
    bool RemoveLocal(const fs::path& path) {
        std::error_code ec;
        if (!fs::exists(fs::symlink_status(path, ec))) return true;
        int64_t files = 0, bytes = 0;
        Measure(path, files, bytes);
        if (!options_.dry_run) {
            fs::remove_all(path, ec);
            if (ec) {
                std::lock_guard lock(report_mutex_);
                ++report_.errors;
                core::LogEvent("error", "cleanup_delete_failed",
                               {{"path", path.string()}, {"error", ec.message()}});
                return false;
            }
        }
        std::lock_guard lock(report_mutex_);
        report_.files_deleted += files;
        report_.bytes_deleted += bytes;
        return true;
    }

    void QueueObject(const std::string& key) {
        pending_keys_.push_back(key);
        if (pending_keys_.size() >= 1000) FlushObjects();
    }

    /// Sends queued S3 deletions; false when any failed (their jobs stay unexpired).
    bool FlushObjects() {
        if (pending_keys_.empty()) return true;
        bool ok = true;
        if (!options_.dry_run) {
            try {
                int failed = objects_->Delete(pending_keys_);
                if (failed > 0) {
                    report_.errors += failed;
                    ok = false;
                }
            } catch (const std::exception& e) {
                ++report_.errors;
                core::LogEvent("error", "cleanup_s3_delete_failed", {{"error", e.what()}});
                ok = false;
            }
        }
        if (ok) report_.objects_deleted += static_cast<int64_t>(pending_keys_.size());
        pending_keys_.clear();
        return ok;
    }

    /// Deletes the folders of a batch's jobs (valid ids only) on a few threads: each unlink
    /// and rmdir waits on the file system's journal, so they overlap well. All are done when
    /// this returns, before the batch's records change.
    std::vector<char> RemoveBatchFolders(const std::vector<jobs::ExpiringJob>& batch) {
        std::vector<char> removed(batch.size(), 0);
        std::atomic<size_t> next{0};
        auto work = [&] {
            for (size_t i = next++; i < batch.size(); i = next++) {
                if (!core::IsJobId(batch[i].id)) continue;
                removed[i] = RemoveLocal(jobs::JobDir(config_, batch[i].id)) ? 1 : 0;
            }
        };
        const size_t threads = std::min<size_t>(8, (batch.size() + 31) / 32);
        std::vector<std::thread> helpers;
        for (size_t t = 1; t < threads; ++t) helpers.emplace_back(work);
        work();
        for (auto& h : helpers) h.join();
        return removed;
    }

    void ExpireDueJobs() {
        // Each batch asks for the jobs after the last one seen, so a job left in place (dry
        // run, failed deletion) is not selected again in this pass and memory stays flat.
        jobs::ExpiryCursor cursor;
        while (!Cancelled()) {
            auto batch = store_.DueForExpiry(options_.now, cursor, options_.batch_size);
            if (batch.empty()) return;
            cursor = {batch.back().expires_at, batch.back().id};
            std::vector<const jobs::ExpiringJob*> local_ok;
            const std::vector<char> removed = RemoveBatchFolders(batch);
            for (size_t i = 0; i < batch.size(); ++i) {
                const auto& job = batch[i];
                if (!core::IsJobId(job.id)) {
                    // Never a path from a corrupt record.
                    ++report_.errors;
                    core::LogEvent("error", "cleanup_bad_job_id", {{"job_id", job.id}});
                    continue;
                }
                if (!removed[i]) {
                    continue;  // the job stays live, so it keeps its S3 copy too; next pass
                }
                local_ok.push_back(&job);
                if (objects_) {
                    for (const char* file : jobs::kJobFiles) {
                        pending_keys_.push_back(jobs::ObjectKey(config_, job.id, file));
                    }
                }
            }
            // One DeleteObjects call per batch of jobs (4 keys a job, at most 1000 keys).
            bool objects_ok = true;
            while (objects_ && !pending_keys_.empty()) {
                std::vector<std::string> rest;
                if (pending_keys_.size() > 1000) {
                    rest.assign(pending_keys_.begin() + 1000, pending_keys_.end());
                    pending_keys_.resize(1000);
                }
                objects_ok = FlushObjects() && objects_ok;
                pending_keys_ = std::move(rest);
            }
            // The batch's records change in one transaction, committed only after all of its
            // files are gone: a crash before the commit leaves live records without files
            // (the next pass finishes them), never an expired record whose files exist.
            std::vector<std::string> expire, remove;
            for (const auto* job : local_ok) {
                if (!objects_ok) continue;  // stays unexpired; the next pass retries
                (Gone(*job) ? remove : expire).push_back(job->id);
            }
            if (!options_.dry_run && (!expire.empty() || !remove.empty())) {
                store_.ExpireBatch(expire, remove, options_.now);
            }
            for (const auto* job : local_ok) {
                if (!objects_ok) continue;
                const bool is_failed = Gone(*job);
                Item(std::string(options_.dry_run ? "would expire " : "expired ") +
                     (is_failed ? "failed job " : "job ") + job->id);
                if (is_failed) {
                    ++report_.failed_jobs_removed;
                } else {
                    ++report_.jobs_expired;
                }
            }
        }
    }

    void ExpireUploads() {
        if (!uploads_) return;
        while (!Cancelled()) {
            auto batch = uploads_->UploadsDueForExpiry(options_.now, options_.batch_size);
            std::vector<const jobs::Upload*> local_ok;
            for (const auto& upload : batch) {
                if (!core::IsJobId(upload.id)) {
                    ++report_.errors;
                    core::LogEvent("error", "cleanup_bad_upload_id", {{"upload_id", upload.id}});
                    continue;
                }
                if (!RemoveLocal(jobs::UploadDir(config_, upload.id))) continue;
                local_ok.push_back(&upload);
                if (objects_ && !upload.s3_key.empty()) pending_keys_.push_back(upload.s3_key);
            }
            const bool objects_ok = !objects_ || FlushObjects();
            int64_t removed = 0;
            for (const auto* upload : local_ok) {
                if (!objects_ok) break;  // the record stays; the next pass retries
                Item(std::string(options_.dry_run ? "would expire " : "expired ") + "upload " +
                     upload->id);
                if (!options_.dry_run && uploads_->DeleteUpload(upload->id)) ++removed;
                ++report_.uploads_expired;
            }
            // A batch that removed nothing (dry run, failures) would come back unchanged.
            if (removed == 0 || static_cast<int>(batch.size()) < options_.batch_size) return;
        }
    }

    /// True when an upload that has not expired owns this folder or object name.
    bool OwnedUpload(const std::string& name) {
        if (!uploads_ || !core::IsJobId(name)) return false;
        auto upload = uploads_->GetUpload(name);
        return upload && upload->expires_at > options_.now;
    }

    /// Upload folders (and interrupted upload temporaries) that no upload owns.
    void SweepUploadOrphans(const fs::path& dir) {
        std::error_code ec;
        for (fs::directory_iterator it(dir, ec), end; !ec && it != end; it.increment(ec)) {
            if (Cancelled()) return;
            if (OwnedUpload(it->path().filename().string())) continue;
            if (options_.now - NewestMtime(it->path()) <= retention_ms_) continue;
            if (RemoveLocal(it->path())) {
                ++report_.orphan_folders;
                Item(std::string(options_.dry_run ? "would delete" : "deleted") + " orphan " +
                     it->path().string());
            }
        }
    }

    /// True when a live (not expired) job owns this id.
    bool Owned(const std::string& name) {
        if (!core::IsJobId(name)) return false;
        auto job = store_.Get(name);
        // A canceled job keeps no files: what is left of it (a dead node's) is an orphan.
        return job && job->status != jobs::JobStatus::kExpired &&
               job->status != jobs::JobStatus::kCanceled;
    }

    void SweepLocalOrphans() {
        std::error_code ec;
        if (!fs::is_directory(config_.output_dir, ec)) return;
        for (fs::directory_iterator it(config_.output_dir, ec), end; !ec && it != end;
             it.increment(ec)) {
            if (Cancelled()) return;
            const std::string name = it->path().filename().string();
            if (name == jobs::kUploadsFolder) {
                SweepUploadOrphans(it->path());
                continue;
            }
            if (Owned(name)) continue;
            const int64_t age = options_.now - NewestMtime(it->path());
            if (age <= retention_ms_) continue;  // young files are never touched
            if (RemoveLocal(it->path())) {
                ++report_.orphan_folders;
                Item(std::string(options_.dry_run ? "would delete" : "deleted") + " orphan " +
                     it->path().string());
            }
        }
    }

    void SweepObjectOrphans() {
        const std::string& prefix = config_.s3_prefix;
        try {
            objects_->List(prefix, [&](const StoredObject& object) {
                if (Cancelled()) return false;
                std::string rest = object.key.substr(prefix.size());
                std::string owner = rest.substr(0, rest.find('/'));
                if (owner == jobs::kUploadsFolder) {
                    std::string tail =
                        rest.size() > owner.size() ? rest.substr(owner.size() + 1) : "";
                    if (OwnedUpload(tail.substr(0, tail.find('/')))) return true;
                } else if (Owned(owner)) {
                    return true;
                }
                if (options_.now - object.last_modified_ms <= retention_ms_) return true;
                ++report_.orphan_objects;
                Item(std::string(options_.dry_run ? "would delete" : "deleted") + " orphan s3://" +
                     config_.s3_bucket + "/" + object.key);
                QueueObject(object.key);
                return true;
            });
        } catch (const std::exception& e) {
            ++report_.errors;
            core::LogEvent("error", "cleanup_s3_list_failed", {{"error", e.what()}});
        }
    }

    const core::Config& config_;
    std::mutex report_mutex_;  ///< RemoveLocal runs on several threads
    jobs::RetentionStore& store_;
    jobs::UploadStore* uploads_;
    ObjectStore* objects_;
    const CleanupOptions& options_;
    const int64_t retention_ms_;
    std::vector<std::string> pending_keys_;
    CleanupReport report_;
};

}  // namespace

std::string CleanupReport::Summary(bool dry_run) const {
    std::string verb = dry_run ? "would delete" : "deleted";
    return std::string(dry_run ? "dry run: " : "") + std::to_string(jobs_expired) +
           " jobs expired, " + std::to_string(failed_jobs_removed) + " failed jobs removed, " +
           verb + " " + std::to_string(files_deleted) + " files (" + std::to_string(bytes_deleted) +
           " bytes) and " + std::to_string(objects_deleted) + " S3 objects, " +
           std::to_string(orphan_folders) + " orphan folders, " + std::to_string(orphan_objects) +
           " orphan objects, " + std::to_string(uploads_expired) + " uploads expired, " +
           std::to_string(errors) + " errors";
}

void RetentionStats::Add(const CleanupReport& r, int64_t when) {
    last_pass_ms = when;
    ++passes;
    files_deleted += r.files_deleted;
    bytes_deleted += r.bytes_deleted;
    objects_deleted += r.objects_deleted;
    jobs_expired += r.jobs_expired;
    errors += r.errors;
}

std::string RetentionStats::Prometheus() const {
    std::string out;
    auto line = [&](const char* name, const char* type, int64_t value) {
        out += std::string("# TYPE ") + name + " " + type + "\n" + name + " " +
               std::to_string(value) + "\n";
    };
    line("songd_cleanup_last_pass_timestamp_seconds", "gauge", last_pass_ms / 1000);
    line("songd_cleanup_passes_total", "counter", passes);
    line("songd_cleanup_files_deleted_total", "counter", files_deleted);
    line("songd_cleanup_bytes_deleted_total", "counter", bytes_deleted);
    line("songd_cleanup_objects_deleted_total", "counter", objects_deleted);
    line("songd_cleanup_jobs_expired_total", "counter", jobs_expired);
    line("songd_cleanup_errors_total", "counter", errors);
    return out;
}

CleanupReport RunCleanup(const core::Config& config, jobs::RetentionStore& store,
                         ObjectStore* objects, const CleanupOptions& options) {
    return Pass(config, store, objects, options).Run();
}

}  // namespace songd::retention
