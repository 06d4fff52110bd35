#pragma once
/// @file
/// Finishing: every engine's raw output becomes the delivered `output_fixed.wav`.
///
///   audio::FinishOptions opts{.auto_master = true, .master_preset = "balanced",
///                             .target_frames = engine::TargetFrames(95)};
///   audio::FinishResult r = audio::Finish(raw_path, out_path, opts);
///
/// Output: 44.1 kHz stereo 16-bit PCM, exactly `target_frames` long, written to a temporary
/// name, fsynced and renamed. A raw render with NaN/Inf or no signal throws
/// core::Error(kRenderFailed): a job fails rather than ship silence.

#include <cstdint>
#include <filesystem>
#include <string>

namespace songd::audio {

struct FinishOptions {
    bool auto_master = true;
    std::string master_preset = "balanced";  ///< subtle|balanced|loud|broadcast
    int64_t target_frames = 0;
};

struct FinishResult {
    int64_t frames = 0;
    int sample_rate = 44100;
    int channels = 2;
    double duration_seconds = 0;
};

FinishResult Finish(const std::filesystem::path& raw, const std::filesystem::path& out,
                    const FinishOptions& options);

/// Writes `data` to `path` through a temporary file, fsync and rename; readers never see
/// a partial file.
void WriteFileAtomic(const std::filesystem::path& path, const std::string& data);

/// fsyncs `tmp`, renames it to `path`, and fsyncs the directory.
void CommitFile(const std::filesystem::path& tmp, const std::filesystem::path& path);

}  // namespace songd::audio
