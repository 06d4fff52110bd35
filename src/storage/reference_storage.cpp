#include "storage/reference_storage.h"

#include <fcntl.h>
#include <unistd.h>

#include <cstring>

#include "audio/reference.h"
#include "core/atomic_file.h"
#include "core/clock.h"
#include "core/error.h"
#include "core/ids.h"
#include "core/log.h"
#include "core/unique_fd.h"
#include "jobs/layout.h"
#include "storage/s3/s3_client.h"

namespace songd::storage {

namespace fs = std::filesystem;

namespace {

/// Removes what a failed save left: the temporary, the folder, the S3 object.
struct Rollback {
    fs::path temp;
    fs::path dir;
    s3::S3Client* client = nullptr;
    std::string key;
    bool done = false;
    ~Rollback() {
        if (done) return;
        std::error_code ec;
        if (!temp.empty()) fs::remove(temp, ec);
        if (!dir.empty()) fs::remove_all(dir, ec);
        if (client && !key.empty()) {
            try {
                client->DeleteObject(key);
            } catch (const std::exception& e) {
                core::LogEvent("error", "upload_rollback_failed",
                               {{"key", key}, {"error", e.what()}});
            }
        }
    }
};

void WriteAll(const fs::path& path, std::string_view bytes) {
    core::UniqueFd fd(::open(path.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644));
    if (!fd) {
        throw core::Error(core::ErrorCode::kInternal,
                          "cannot create " + path.string() + ": " + std::strerror(errno));
    }
    size_t done = 0;
    while (done < bytes.size()) {
        ssize_t n = ::write(fd.get(), bytes.data() + done, bytes.size() - done);
        if (n < 0 && errno == EINTR) continue;
        if (n <= 0) {
            throw core::Error(core::ErrorCode::kInternal,
                              "cannot write " + path.string() + ": " + std::strerror(errno));
        }
        done += static_cast<size_t>(n);
    }
}

const char* ContentType(const std::string& format) {
    if (format == "wav") return "audio/wav";
    if (format == "flac") return "audio/flac";
    if (format == "mp3") return "audio/mpeg";
    return "audio/ogg";
}

}  // namespace

jobs::Upload ReferenceStorage::Save(std::string_view bytes, int64_t now) {
    jobs::Upload upload;
    upload.id = core::NewJobId();
    const fs::path uploads = jobs::UploadsDir(config_);
    std::error_code ec;
    fs::create_directories(uploads, ec);
    if (ec) {
        throw core::Error(core::ErrorCode::kInternal,
                          "cannot create " + uploads.string() + ": " + ec.message());
    }
    Rollback rollback;
    rollback.temp = uploads / ("." + upload.id + ".incoming");
    WriteAll(rollback.temp, bytes);
    // Decoding decides what the file is; its name and content type never do.
    const audio::ReferenceAudio ref = audio::AnalyzeReference(rollback.temp);
    rollback.dir = jobs::UploadDir(config_, upload.id);
    fs::create_directories(rollback.dir, ec);
    if (ec) {
        throw core::Error(core::ErrorCode::kInternal,
                          "cannot create " + rollback.dir.string() + ": " + ec.message());
    }
    upload.format = ref.format;
    upload.file = jobs::UploadFile(upload.id, ref.format);
    const fs::path local = config_.output_dir / upload.file;
    core::CommitFile(rollback.temp, local);
    rollback.temp.clear();
    upload.size_bytes = static_cast<int64_t>(bytes.size());
    upload.duration_seconds = ref.duration_seconds;
    upload.sample_rate = ref.sample_rate;
    upload.channels = ref.channels;
    upload.tempo_bpm = ref.tempo_bpm;
    upload.key = ref.key.Name();
    upload.created_at = now;
    upload.expires_at =
        now + static_cast<int64_t>(config_.file_retention_days) * core::kMillisPerDay;
    if (client_) {
        const std::string key = jobs::UploadObjectKey(config_, upload.id, ref.format);
        try {
            client_->PutObjectFromFile(
                key, local,
                {.content_type = ContentType(ref.format), .metadata = {{"upload-id", upload.id}}});
        } catch (const core::Error& e) {
            throw core::Error(core::ErrorCode::kUpstreamUnavailable,
                              "cannot store the upload in S3: " + std::string(e.what()))
                .WithRetryAfter(5);
        }
        rollback.client = client_;
        rollback.key = key;
        upload.s3_key = key;
    }
    store_.PutUpload(upload);
    rollback.done = true;
    core::LogEvent("info", "upload_stored",
                   {{"upload_id", upload.id},
                    {"format", upload.format},
                    {"bytes", std::to_string(upload.size_bytes)},
                    {"tempo_bpm", std::to_string(upload.tempo_bpm)},
                    {"key", upload.key}});
    return upload;
}

std::optional<jobs::Upload> ReferenceStorage::Find(const std::string& upload_id, int64_t now) {
    if (!core::IsJobId(upload_id)) return std::nullopt;
    auto upload = store_.GetUpload(upload_id);
    if (!upload || upload->expires_at <= now) return std::nullopt;
    return upload;
}

fs::path ReferenceStorage::LocalPath(const std::string& upload_id, int64_t now) {
    auto upload = Find(upload_id, now);
    if (!upload) {
        throw core::Error(core::ErrorCode::kNotFound,
                          "the reference song " + upload_id + " is unknown or has expired");
    }
    fs::path local = config_.output_dir / upload->file;
    std::error_code ec;
    if (fs::is_regular_file(local, ec)) return local;
    if (!client_ || upload->s3_key.empty()) {
        throw core::Error(core::ErrorCode::kNotFound,
                          "the reference song " + upload_id + " is not on this node");
    }
    fs::create_directories(local.parent_path(), ec);
    client_->GetObjectToFile(upload->s3_key, local);
    return local;
}

}  // namespace songd::storage
