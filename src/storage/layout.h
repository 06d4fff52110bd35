#pragma once
/// @file
/// Where a job's files live, locally and in S3 (the layout of the backend songd replaces).
///
///   storage::LocalSong(config, id)      // {OUTPUT_DIR}/{id}/output_fixed.wav
///   storage::ObjectKey(config, id, storage::kSongFile)   // {S3_PREFIX}{id}/output_fixed.wav

#include <array>
#include <filesystem>
#include <string>

#include "core/config.h"

namespace songd::storage {

constexpr const char* kSongFile = "output_fixed.wav";
constexpr const char* kPreviewFile = "preview.mp3";
/// Every file a job folder may hold, so deletions in S3 can name them without listing.
constexpr std::array<const char*, 4> kJobFiles = {"output_fixed.wav", "preview.mp3",
                                                  "output_fixed.flac", "output_fixed.mp3"};

inline std::filesystem::path JobDir(const core::Config& config, const std::string& job_id) {
    return config.output_dir / job_id;
}
inline std::filesystem::path LocalSong(const core::Config& config, const std::string& job_id) {
    return JobDir(config, job_id) / kSongFile;
}
inline std::string ObjectKey(const core::Config& config, const std::string& job_id,
                             const std::string& file) {
    return config.s3_prefix + job_id + "/" + file;
}

}  // namespace songd::storage
