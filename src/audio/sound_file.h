#pragma once
/// @file
/// Small building blocks shared by finishing, encoding and previews: an owned libsndfile
/// handle; files are written through core::TempFile (core/atomic_file.h).
///
///   core::TempFile tmp(out_path);                     // ".out.wav.tmp-<pid>-<n>" beside it
///   auto file = audio::SoundFile::Create(tmp.path(), SF_FORMAT_WAV | SF_FORMAT_PCM_16);
///   file.WriteShorts(samples, frames);
///   file.Close();                                     // flushes; throws on error
///   tmp.Commit();                                     // fsync, rename, fsync directory
///
/// Errors throw core::Error; a core::TempFile not committed is removed by its destructor, so a
/// failed write never leaves a partial file behind.

#include <sndfile.h>

#include <cstdint>
#include <filesystem>
#include <string>

#include "core/atomic_file.h"
#include "core/error.h"

namespace songd::audio {

constexpr int kSampleRate = 44100;
constexpr int kChannels = 2;

/// @brief Owns one SNDFILE handle (read or write); closes it on destruction.
class SoundFile {
  public:
    /// Opens `path` for reading. A missing file throws `missing_code`, an unreadable one
    /// `unreadable_code`; `what` names the file in messages ("the finished song").
    static SoundFile Open(const std::filesystem::path& path, const std::string& what,
                          core::ErrorCode missing_code, core::ErrorCode unreadable_code);
    /// Creates `path` (44.1 kHz stereo) in `format` (SF_FORMAT_* major | subtype).
    static SoundFile Create(const std::filesystem::path& path, int format);

    SoundFile(SoundFile&& other) noexcept;
    SoundFile& operator=(SoundFile&& other) noexcept;
    SoundFile(const SoundFile&) = delete;
    SoundFile& operator=(const SoundFile&) = delete;
    ~SoundFile();

    const SF_INFO& info() const { return info_; }
    SNDFILE* handle() const { return file_; }

    /// Reads up to `frames` frames; returns how many were read (0 at the end).
    int64_t ReadFloats(float* data, int64_t frames);
    int64_t ReadShorts(int16_t* data, int64_t frames);
    /// Writes exactly `frames` frames or throws.
    void WriteShorts(const int16_t* data, int64_t frames);
    void WriteFloats(const float* data, int64_t frames);
    /// MP3 only: constant bitrate in kbit/s (32..320).
    void SetMp3Bitrate(int kbps);
    /// Closes and reports a failed flush (e.g. an encoder error or a full disk).
    void Close();

  private:
    SoundFile(SNDFILE* file, const SF_INFO& info, std::filesystem::path path)
        : file_(file), info_(info), path_(std::move(path)) {}

    SNDFILE* file_ = nullptr;
    SF_INFO info_{};
    std::filesystem::path path_;
};

}  // namespace songd::audio
