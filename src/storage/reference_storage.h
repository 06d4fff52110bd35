#pragma once
/// @file
/// ReferenceStorage: uploaded reference songs, kept like songs — on local disk under
/// `{OUTPUT_DIR}/uploads/{id}/`, in S3 when S3_ENABLED, recorded in the store with their
/// analysis, deleted by retention after FILE_RETENTION_DAYS.
///
///   storage::ReferenceStorage refs(config, store, songs.client());   // client may be null
///   jobs::Upload u = refs.Save(bytes, core::NowMillis());   // checks, analyses, stores
///   std::filesystem::path p = refs.LocalPath(u.id, now);    // fetched from S3 if not here
///
/// Save leaves nothing behind when it throws: no file, no object, no record. Every call
/// blocks (disk, decoding, S3, the database): never on an I/O thread.

#include <cstdint>
#include <filesystem>
#include <string>
#include <string_view>

#include "core/config.h"
#include "jobs/job_store.h"

namespace songd::storage {

namespace s3 {
class S3Client;
}

/// @brief Reference songs on disk, in S3 and in the store.
class ReferenceStorage {
  public:
    ReferenceStorage(const core::Config& config, jobs::UploadStore& store, s3::S3Client* client)
        : config_(config), store_(store), client_(client) {}

    /// Decodes and checks `bytes` (audio::AnalyzeReference: 415 not audio, 422 too short or
    /// long), then stores the file and its record. kUpstreamUnavailable when S3 refuses it.
    jobs::Upload Save(std::string_view bytes, int64_t now);

    /// The upload if it exists and has not expired at `now`.
    std::optional<jobs::Upload> Find(const std::string& upload_id, int64_t now);

    /// A local path of the upload's file, downloaded from S3 when this node does not have it.
    /// Throws kNotFound when the upload is unknown or expired, or its file is gone.
    std::filesystem::path LocalPath(const std::string& upload_id, int64_t now);

  private:
    const core::Config& config_;
    jobs::UploadStore& store_;
    s3::S3Client* client_;
};

}  // namespace songd::storage
