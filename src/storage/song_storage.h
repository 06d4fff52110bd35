#pragma once
/// @file
/// SongStorage: where finished songs live — always on local disk, and in S3 when
/// S3_ENABLED. Uploads after completion, a reconciler that retries failed uploads, and the
/// presigned redirect for downloads.
///
///   storage::SongStorage songs(config, store);      // S3 client built when S3_ENABLED
///   songs.Start();                                  // uploader and reconciler threads
///   songs.UploadSoon(job.id);                       // after the job is completed
///   songs.Upload(job);                              // the same, now, on this thread
///   if (auto url = songs.PresignedDownload(job)) ... // 302 to S3
///
/// A job is `completed` once its local file is safe; an upload that fails after its
/// retries leaves the job completed with local storage only (as the old backend did), and
/// the reconciler uploads it later. Fresh songs go up on an uploader thread of their own, so
/// a slow or silent S3 never holds a generation worker.

#include <atomic>
#include <condition_variable>
#include <deque>
#include <memory>
#include <mutex>
#include <optional>
#include <set>
#include <string>
#include <thread>

#include "core/config.h"
#include "jobs/job_store.h"
#include "storage/object_store.h"

namespace songd::storage {

namespace s3 {
class S3Client;
}

/// @brief Counters for metrics.
struct StorageStats {
    std::atomic<int64_t> uploads{0};
    std::atomic<int64_t> upload_failures{0};
    std::atomic<int64_t> reconciled{0};
    std::atomic<int64_t> pending{0};  ///< completed jobs without an S3 copy, last seen
};

/// @brief Local files plus the optional S3 copy.
class SongStorage {
  public:
    SongStorage(const core::Config& config, jobs::JobStore& store);
    /// For tests: a given client (or none).
    SongStorage(const core::Config& config, jobs::JobStore& store,
                std::unique_ptr<s3::S3Client> client);
    ~SongStorage();

    bool s3_enabled() const { return client_ != nullptr; }
    s3::S3Client* client() { return client_.get(); }

    /// Checks the bucket and the credentials. Wrong credentials or bucket throw (the
    /// service should not start); S3 being unreachable is only logged.
    void CheckAtStart();

    /// Uploads the song (and its preview, when there is one) and records `s3_url`.
    /// Returns false, after logging, when the upload failed; never throws.
    bool Upload(const jobs::Job& job);

    /// Queues the upload of a just-completed job for the uploader thread and returns at
    /// once. Jobs still queued at Stop are left to the reconciler (they are completed
    /// without an s3_url, which is what it looks for).
    void UploadSoon(const std::string& job_id);

    /// The presigned GET URL of the job's song when it is in S3, else nullopt.
    std::optional<std::string> PresignedDownload(const jobs::Job& job) const;

    /// The presigned GET URL of the job's preview in S3.
    std::string PresignedPreview(const jobs::Job& job) const;

    /// Restores the local copy of a song from S3 (another node made it, or the disk was
    /// replaced). False when there is no S3 copy.
    bool RestoreLocal(const jobs::Job& job);

    /// Starts the uploader and the reconciler (with S3 only).
    void Start();
    void Stop();

    /// Retention's view of the bucket, or null without S3.
    ObjectStore* objects() { return objects_.get(); }

    const StorageStats& stats() const { return stats_; }
    std::string Prometheus() const;

  private:
    enum class UploadOutcome { kUploaded, kFailed, kSkipped };
    /// One upload per job at a time: the worker's upload right after completion and the
    /// reconciler (which sees the job completed without s3_url meanwhile) must not both
    /// send the song. kSkipped: another upload is in flight or, with `unless_recorded`, the
    /// job has an s3_url by now.
    UploadOutcome UploadOnce(const jobs::Job& job, bool unless_recorded);
    void ReconcileLoop();
    void UploadLoop();
    /// Logs an error once until its text changes (a wrong key is reported once, clearly).
    void LogOnce(const std::string& event, const std::string& message);

    const core::Config& config_;
    jobs::JobStore& store_;
    std::unique_ptr<s3::S3Client> client_;
    std::unique_ptr<ObjectStore> objects_;
    StorageStats stats_;

    std::mutex mutex_;
    std::condition_variable wake_;
    bool stopping_ = false;
    std::string last_error_;
    std::set<std::string> uploading_;  ///< job ids with an upload in flight
    std::deque<std::string> fresh_;    ///< completed jobs waiting for the uploader
    std::thread uploader_;
    std::thread reconciler_;
};

}  // namespace songd::storage
