#include "storage/song_storage.h"

#include <chrono>
#include <regex>

#include "core/error.h"
#include "core/log.h"
#include "jobs/layout.h"
#include "storage/s3/s3_client.h"

namespace songd::storage {

namespace fs = std::filesystem;

namespace {

/// Retention's ObjectStore on the S3 client.
class S3Objects : public ObjectStore {
  public:
    explicit S3Objects(s3::S3Client& client) : client_(client) {}
    void List(const std::string& prefix,
              const std::function<bool(const StoredObject&)>& visit) override {
        client_.ForEachObject(prefix, [&](const s3::ObjectInfo& o) {
            return visit({o.key, o.size, o.last_modified_ms});
        });
    }
    int Delete(const std::vector<std::string>& keys) override {
        auto failures = client_.DeleteObjects(keys);
        for (const auto& f : failures) {
            core::LogEvent("error", "s3_delete_refused",
                           {{"key", f.key}, {"code", f.code}, {"message", f.message}});
        }
        return static_cast<int>(failures.size());
    }

  private:
    s3::S3Client& client_;
};

}  // namespace

SongStorage::SongStorage(const core::Config& config, jobs::JobStore& store)
    : SongStorage(config, store,
                  config.s3_enabled ? std::make_unique<s3::S3Client>(config) : nullptr) {}

SongStorage::SongStorage(const core::Config& config, jobs::JobStore& store,
                         std::unique_ptr<s3::S3Client> client)
    : config_(config), store_(store), client_(std::move(client)) {
    if (client_) objects_ = std::make_unique<S3Objects>(*client_);
}

SongStorage::~SongStorage() { Stop(); }

void SongStorage::CheckAtStart() {
    if (!client_) return;
    try {
        client_->CheckBucket();
    } catch (const core::Error& e) {
        if (e.code() == core::ErrorCode::kUpstreamUnavailable) {
            core::LogEvent(
                "warning", "s3_unreachable_at_start",
                {{"error", e.what()},
                 {"effect", "songs stay local until S3 answers; the reconciler uploads them"}});
            return;
        }
        throw;
    }
}

void SongStorage::LogOnce(const std::string& event, const std::string& message) {
    // The same cause for another song, or with S3's new request id, is not news: compare the
    // message without those.
    static const std::regex kVarying(R"(s3://\S+|\[request id [^\]]*\])");
    std::string cause = std::regex_replace(message, kVarying, "");
    {
        std::lock_guard lock(mutex_);
        if (cause == last_error_) {
            core::LogEvent("debug", event, {{"error", message}, {"repeated", "true"}});
            return;
        }
        last_error_ = cause;
    }
    core::LogEvent("error", event, {{"error", message}});
}

bool SongStorage::Upload(const jobs::Job& job) {
    return UploadOnce(job, /*unless_recorded=*/false) == UploadOutcome::kUploaded;
}

SongStorage::UploadOutcome SongStorage::UploadOnce(const jobs::Job& job, bool unless_recorded) {
    if (!client_) return UploadOutcome::kFailed;
    {
        std::lock_guard lock(mutex_);
        if (!uploading_.insert(job.id).second) return UploadOutcome::kSkipped;
    }
    struct Release {
        SongStorage& self;
        const std::string& id;
        ~Release() {
            std::lock_guard lock(self.mutex_);
            self.uploading_.erase(id);
        }
    } release{*this, job.id};
    const fs::path song = jobs::LocalSong(config_, job.id);
    try {
        // Another upload may have finished between the caller's read of the job and now.
        if (unless_recorded) {
            if (auto current = store_.Get(job.id); current && !current->s3_url.empty()) {
                return UploadOutcome::kSkipped;
            }
        }
        const std::string key = client_->JobObjectKey(job.id, jobs::kSongFile);
        client_->PutObjectFromFile(key, song,
                                   {.content_type = "audio/wav", .metadata = {{"job-id", job.id}}});
        const fs::path preview = jobs::LocalPreview(config_, job.id);
        std::error_code ec;
        if (fs::exists(preview, ec)) {
            client_->PutObjectFromFile(
                client_->JobObjectKey(job.id, jobs::kPreviewFile), preview,
                {.content_type = "audio/mpeg", .metadata = {{"job-id", job.id}}});
        }
        store_.SetS3Url(job.id, client_->S3Url(key));
        ++stats_.uploads;
        {
            std::lock_guard lock(mutex_);
            last_error_.clear();
        }
        core::LogEvent("info", "s3_uploaded", {{"job_id", job.id}, {"key", key}});
        return UploadOutcome::kUploaded;
    } catch (const std::exception& e) {
        ++stats_.upload_failures;
        LogOnce("s3_upload_failed",
                std::string(e.what()) + " (the song stays local; the reconciler retries)");
        return UploadOutcome::kFailed;
    }
}

std::optional<std::string> SongStorage::PresignedDownload(const jobs::Job& job) const {
    if (!client_ || job.s3_url.empty()) return std::nullopt;
    return client_->PresignGet(client_->JobObjectKey(job.id, jobs::kSongFile),
                               {.content_disposition = s3::DownloadDisposition(job.id, "wav")});
}

std::string SongStorage::PresignedPreview(const jobs::Job& job) const {
    return client_->PresignGet(
        client_->JobObjectKey(job.id, jobs::kPreviewFile),
        {.content_disposition = "inline; filename=\"preview-" + job.id + ".mp3\""});
}

bool SongStorage::RestoreLocal(const jobs::Job& job) {
    if (!client_ || job.s3_url.empty()) return false;
    std::error_code ec;
    fs::create_directories(jobs::JobDir(config_, job.id), ec);
    client_->GetObjectToFile(client_->JobObjectKey(job.id, jobs::kSongFile),
                             jobs::LocalSong(config_, job.id));
    return true;
}

void SongStorage::UploadSoon(const std::string& job_id) {
    if (!client_) return;
    {
        std::lock_guard lock(mutex_);
        fresh_.push_back(job_id);
    }
    wake_.notify_all();
}

void SongStorage::Start() {
    if (!client_ || reconciler_.joinable()) return;
    uploader_ = std::thread([this] { UploadLoop(); });
    reconciler_ = std::thread([this] { ReconcileLoop(); });
}

void SongStorage::Stop() {
    {
        std::lock_guard lock(mutex_);
        stopping_ = true;
    }
    wake_.notify_all();
    if (uploader_.joinable()) uploader_.join();
    if (reconciler_.joinable()) reconciler_.join();
}

void SongStorage::UploadLoop() {
    while (true) {
        std::string id;
        {
            std::unique_lock lock(mutex_);
            wake_.wait(lock, [this] { return stopping_ || !fresh_.empty(); });
            if (stopping_) return;  // what is left is the reconciler's, after the restart
            id = std::move(fresh_.front());
            fresh_.pop_front();
        }
        try {
            // The job as stored now: completed, with its preview flag (never throws out).
            if (auto job = store_.Get(id)) Upload(*job);
        } catch (const std::exception& e) {
            LogOnce("s3_upload_failed", e.what());
        }
    }
}

void SongStorage::ReconcileLoop() {
    // Every S3_RECONCILE_SECONDS while uploads succeed; backs off to 30 min while S3 keeps
    // failing, so a wrong key is not retried in a tight loop.
    const auto base = std::chrono::seconds(config_.s3_reconcile_seconds);
    auto delay = base;
    while (true) {
        {
            std::unique_lock lock(mutex_);
            if (wake_.wait_for(lock, delay, [this] { return stopping_; })) return;
        }
        bool failed = false;
        try {
            auto ids = store_.CompletedWithoutS3(100);
            stats_.pending = static_cast<int64_t>(ids.size());
            for (const auto& id : ids) {
                {
                    std::lock_guard lock(mutex_);
                    if (stopping_) return;
                }
                auto job = store_.Get(id);
                if (!job || job->status != jobs::JobStatus::kCompleted || !job->s3_url.empty()) {
                    continue;
                }
                std::error_code ec;
                if (!fs::exists(jobs::LocalSong(config_, id), ec))
                    continue;  // nothing to upload here
                switch (UploadOnce(*job, /*unless_recorded=*/true)) {
                    case UploadOutcome::kUploaded:
                        ++stats_.reconciled;
                        --stats_.pending;
                        break;
                    case UploadOutcome::kSkipped:
                        break;  // the worker uploaded it, or is on it
                    case UploadOutcome::kFailed:
                        failed = true;
                        break;
                }
                if (failed) break;
            }
        } catch (const std::exception& e) {
            LogOnce("s3_reconcile_failed", e.what());
            failed = true;
        }
        delay = failed ? std::max(base, std::min(delay * 2, std::chrono::seconds(1800))) : base;
    }
}

std::string SongStorage::Prometheus() const {
    if (!client_) return "";
    const auto& c = client_->stats();
    std::string out;
    auto line = [&](const char* name, const char* type, int64_t value) {
        out += std::string("# TYPE ") + name + " " + type + "\n" + name + " " +
               std::to_string(value) + "\n";
    };
    line("songd_s3_uploads_total", "counter", stats_.uploads);
    line("songd_s3_upload_failures_total", "counter", stats_.upload_failures);
    line("songd_s3_reconciled_total", "counter", stats_.reconciled);
    line("songd_s3_pending_uploads", "gauge", stats_.pending);
    line("songd_s3_requests_total", "counter", static_cast<int64_t>(c.requests.load()));
    line("songd_s3_retries_total", "counter", static_cast<int64_t>(c.retries.load()));
    line("songd_s3_failures_total", "counter", static_cast<int64_t>(c.failures.load()));
    line("songd_s3_bytes_uploaded_total", "counter", static_cast<int64_t>(c.bytes_uploaded.load()));
    return out;
}

}  // namespace songd::storage
