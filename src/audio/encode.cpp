#include "audio/encode.h"

#include <array>
#include <functional>
#include <memory>
#include <mutex>
#include <vector>

#include "audio/mp3.h"
#include "audio/sound_file.h"
#include "core/error.h"

namespace songd::audio {
namespace {

constexpr int64_t kChunkFrames = 65536;

// Striped locks: one encoder per cache file at a time in this process, without a map that
// grows with every song ever served.
std::mutex& LockFor(const std::filesystem::path& target) {
    static std::array<std::mutex, 64> locks;
    return locks[std::hash<std::string>{}(target.string()) % locks.size()];
}

int MajorFormat(Format format) {
    switch (format) {
        case Format::kWav:
            return SF_FORMAT_WAV | SF_FORMAT_PCM_16;
        case Format::kFlac:
            return SF_FORMAT_FLAC | SF_FORMAT_PCM_16;
        case Format::kMp3:
            return SF_FORMAT_MPEG | SF_FORMAT_MPEG_LAYER_III;
    }
    return 0;
}

}  // namespace

Format ParseFormat(std::string_view name) {
    if (name == "wav") return Format::kWav;
    if (name == "flac") return Format::kFlac;
    if (name == "mp3") return Format::kMp3;
    throw core::Error(core::ErrorCode::kInvalidInput,
                      "unknown format '" + std::string(name) + "'; allowed: wav, flac, mp3");
}

const char* FormatName(Format format) {
    switch (format) {
        case Format::kWav:
            return "wav";
        case Format::kFlac:
            return "flac";
        case Format::kMp3:
            return "mp3";
    }
    return "?";
}

const char* FormatMimeType(Format format) {
    switch (format) {
        case Format::kWav:
            return "audio/wav";
        case Format::kFlac:
            return "audio/flac";
        case Format::kMp3:
            return "audio/mpeg";
    }
    return "application/octet-stream";
}

void EncodeFile(const std::filesystem::path& finished_wav, const std::filesystem::path& out,
                Format format, int mp3_kbps) {
    SoundFile in = SoundFile::Open(finished_wav, "the finished song", core::ErrorCode::kNotFound,
                                   core::ErrorCode::kInternal);
    if (in.info().samplerate != kSampleRate || in.info().channels != kChannels) {
        throw core::Error(core::ErrorCode::kInternal,
                          finished_wav.string() + " is not a finished song (44.1 kHz stereo)");
    }
    if (format == Format::kMp3) {
        auto make_source = [&]() -> FrameSource {
            auto file = std::make_shared<SoundFile>(
                SoundFile::Open(finished_wav, "the finished song", core::ErrorCode::kNotFound,
                                core::ErrorCode::kInternal));
            return [file](float* data, int64_t frames) { return file->ReadFloats(data, frames); };
        };
        WriteMp3UnderCeiling(out, mp3_kbps, make_source);
        return;
    }
    core::TempFile tmp(out);
    SoundFile file = SoundFile::Create(tmp.path(), MajorFormat(format));
    // Samples pass through as 16-bit integers: FLAC and WAV stay bit-exact copies.
    std::vector<int16_t> chunk(static_cast<size_t>(kChunkFrames) * kChannels);
    for (;;) {
        const int64_t got = in.ReadShorts(chunk.data(), kChunkFrames);
        if (got <= 0) break;
        file.WriteShorts(chunk.data(), got);
    }
    file.Close();
    tmp.Commit();
}

std::filesystem::path Transcode(const std::filesystem::path& finished_wav,
                                const std::string& format, const std::filesystem::path& cache_dir) {
    const Format f = ParseFormat(format);
    std::error_code ec;
    const auto wav_time = std::filesystem::last_write_time(finished_wav, ec);
    if (ec) {
        throw core::Error(core::ErrorCode::kNotFound,
                          "the finished song does not exist: " + finished_wav.string());
    }
    if (f == Format::kWav) return finished_wav;
    auto target = cache_dir / finished_wav.stem();
    target += std::string(".") + FormatName(f);
    std::lock_guard lock(LockFor(target));
    const auto cached_time = std::filesystem::last_write_time(target, ec);
    if (!ec && cached_time >= wav_time) return target;
    EncodeFile(finished_wav, target, f);
    return target;
}

}  // namespace songd::audio
