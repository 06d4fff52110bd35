#include "audio/sound_file.h"

#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <fstream>
#include <utility>

namespace songd::audio {
namespace {

[[noreturn]] void Fail(core::ErrorCode code, const std::string& msg) {
    throw core::Error(code, msg);
}

}  // namespace

SoundFile SoundFile::Open(const std::filesystem::path& path, const std::string& what,
                          core::ErrorCode missing_code, core::ErrorCode unreadable_code) {
    std::error_code ec;
    if (!std::filesystem::exists(path, ec)) {
        Fail(missing_code, what + " does not exist: " + path.string());
    }
    if (std::filesystem::is_directory(path, ec)) {
        Fail(unreadable_code, what + " is a directory, not an audio file: " + path.string());
    }
    SF_INFO info{};
    SNDFILE* file = sf_open(path.c_str(), SFM_READ, &info);
    if (file == nullptr) {
        Fail(unreadable_code,
             "cannot read " + what + " " + path.string() + ": " + sf_strerror(nullptr));
    }
    return SoundFile(file, info, path);
}

SoundFile SoundFile::Create(const std::filesystem::path& path, int format) {
    SF_INFO info{};
    info.samplerate = kSampleRate;
    info.channels = kChannels;
    info.format = format;
    SNDFILE* file = sf_open(path.c_str(), SFM_WRITE, &info);
    if (file == nullptr) {
        Fail(core::ErrorCode::kInternal,
             "cannot create " + path.string() + ": " + sf_strerror(nullptr));
    }
    return SoundFile(file, info, path);
}

SoundFile::SoundFile(SoundFile&& other) noexcept
    : file_(std::exchange(other.file_, nullptr)),
      info_(other.info_),
      path_(std::move(other.path_)) {}

SoundFile& SoundFile::operator=(SoundFile&& other) noexcept {
    if (this != &other) {
        if (file_ != nullptr) sf_close(file_);
        file_ = std::exchange(other.file_, nullptr);
        info_ = other.info_;
        path_ = std::move(other.path_);
    }
    return *this;
}

SoundFile::~SoundFile() {
    if (file_ != nullptr) sf_close(file_);
}

int64_t SoundFile::ReadFloats(float* data, int64_t frames) {
    return sf_readf_float(file_, data, frames);
}

int64_t SoundFile::ReadShorts(int16_t* data, int64_t frames) {
    return sf_readf_short(file_, data, frames);
}

void SoundFile::WriteShorts(const int16_t* data, int64_t frames) {
    if (sf_writef_short(file_, data, frames) != frames) {
        Fail(core::ErrorCode::kInternal,
             "cannot write " + path_.string() + ": " + sf_strerror(file_));
    }
}

void SoundFile::WriteFloats(const float* data, int64_t frames) {
    if (sf_writef_float(file_, data, frames) != frames) {
        Fail(core::ErrorCode::kInternal,
             "cannot write " + path_.string() + ": " + sf_strerror(file_));
    }
}

void SoundFile::SetMp3Bitrate(int kbps) {
    int mode = SF_BITRATE_MODE_CONSTANT;
    // libsndfile maps compression level 0..1 linearly onto 320..32 kbit/s for constant bitrate.
    double level = std::clamp((320.0 - kbps) / 288.0, 0.0, 1.0);
    // The return value of SFC_SET_BITRATE_MODE differs between libsndfile versions, so the
    // mode is read back instead.
    sf_command(file_, SFC_SET_BITRATE_MODE, &mode, sizeof mode);
    if (sf_command(file_, SFC_GET_BITRATE_MODE, nullptr, 0) != SF_BITRATE_MODE_CONSTANT ||
        sf_command(file_, SFC_SET_COMPRESSION_LEVEL, &level, sizeof level) != SF_TRUE) {
        Fail(core::ErrorCode::kInternal,
             "cannot set the MP3 bitrate of " + path_.string() + ": " + sf_strerror(file_));
    }
}

void SoundFile::Close() {
    SNDFILE* file = std::exchange(file_, nullptr);
    if (file == nullptr) return;
    // sf_close flushes the encoder (FLAC, MP3) and the header; its error is the last word.
    int rc = sf_close(file);
    if (rc != 0) {
        Fail(core::ErrorCode::kInternal,
             "cannot finish " + path_.string() + ": " + sf_error_number(rc));
    }
}

}  // namespace songd::audio
