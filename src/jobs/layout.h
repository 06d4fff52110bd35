#pragma once
/// @file
/// Where a job's files live, locally and in S3 (the layout of the backend songd replaces).
/// The render pipeline writes it, storage uploads it, retention deletes it; all three read
/// the names here.
///
///   jobs::LocalSong(config, id)                      // {OUTPUT_DIR}/{id}/output_fixed.wav
///   jobs::LocalPreview(config, id)                   // {OUTPUT_DIR}/{id}/preview.mp3
///   jobs::WorkDir(config, id)                        // {OUTPUT_DIR}/{id}/work (engine scratch)
///   jobs::ObjectKey(config, id, jobs::kSongFile)     // {S3_PREFIX}{id}/output_fixed.wav

#include <array>
#include <filesystem>
#include <string>

#include "core/config.h"

namespace songd::jobs {

constexpr const char* kSongFile = "output_fixed.wav";
constexpr const char* kPreviewFile = "preview.mp3";
/// The engine's scratch folder inside a job folder; never delivered, never uploaded.
constexpr const char* kWorkFolder = "work";
/// Every file a job folder may hold, so deletions in S3 can name them without listing.
constexpr std::array<const char*, 4> kJobFiles = {"output_fixed.wav", "preview.mp3",
                                                  "output_fixed.flac", "output_fixed.mp3"};

inline std::filesystem::path JobDir(const core::Config& config, const std::string& job_id) {
    return config.output_dir / job_id;
}
inline std::filesystem::path LocalSong(const core::Config& config, const std::string& job_id) {
    return JobDir(config, job_id) / kSongFile;
}
inline std::filesystem::path LocalPreview(const core::Config& config, const std::string& job_id) {
    return JobDir(config, job_id) / kPreviewFile;
}
inline std::filesystem::path WorkDir(const core::Config& config, const std::string& job_id) {
    return JobDir(config, job_id) / kWorkFolder;
}
/// The song as the store records it (`output_file`): relative to OUTPUT_DIR.
inline std::string SongOutputFile(const std::string& job_id) { return job_id + "/" + kSongFile; }
inline std::string ObjectKey(const core::Config& config, const std::string& job_id,
                             const std::string& file) {
    return config.s3_prefix + job_id + "/" + file;
}

// Uploaded reference songs: {OUTPUT_DIR}/uploads/{id}/reference.{format} and
// {S3_PREFIX}uploads/{id}/reference.{format}.
constexpr const char* kUploadsFolder = "uploads";
inline std::filesystem::path UploadsDir(const core::Config& config) {
    return config.output_dir / kUploadsFolder;
}
inline std::filesystem::path UploadDir(const core::Config& config, const std::string& upload_id) {
    return UploadsDir(config) / upload_id;
}
/// The upload's file as the store records it: relative to OUTPUT_DIR.
inline std::string UploadFile(const std::string& upload_id, const std::string& format) {
    return std::string(kUploadsFolder) + "/" + upload_id + "/reference." + format;
}
inline std::string UploadObjectKey(const core::Config& config, const std::string& upload_id,
                                   const std::string& format) {
    return config.s3_prefix + UploadFile(upload_id, format);
}

}  // namespace songd::jobs
