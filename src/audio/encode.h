#pragma once
/// @file
/// Download formats: the finished WAV transcoded once through libsndfile and cached beside it.
///
///   auto path = audio::Transcode(job_dir / "output_fixed.wav", "mp3", job_dir);
///   // job_dir / "output_fixed.mp3", made on the first call, reused afterwards
///
/// Writes are atomic (unique temporary name, fsync, rename), so concurrent callers are safe:
/// callers in one process wait for the first encoder; separate processes encode the same
/// bytes under distinct temporary names and the last rename wins.

#include <filesystem>
#include <string>
#include <string_view>

namespace songd::audio {

/// @brief A download format.
enum class Format { kWav, kFlac, kMp3 };

/// Parses `wav`, `flac` or `mp3` (lower case, as the API spells them); anything else throws
/// core::Error(kInvalidInput) listing the allowed names.
Format ParseFormat(std::string_view name);
const char* FormatName(Format format);
/// MIME type for downloads: audio/wav, audio/flac, audio/mpeg.
const char* FormatMimeType(Format format);

/// Encodes a finished 16-bit WAV into `out` (any format; WAV is a plain copy) atomically.
/// `mp3_kbps` sets the MP3 constant bitrate.
void EncodeFile(const std::filesystem::path& finished_wav, const std::filesystem::path& out,
                Format format, int mp3_kbps = 320);

/// The finished song in `format`: `finished_wav` itself for wav, else
/// `cache_dir / (stem + ".flac" | ".mp3")`, encoded on first use and whenever the WAV is newer.
/// Throws core::Error: kInvalidInput for an unknown format, kNotFound when the WAV is missing,
/// kInternal when it cannot be read or the cache cannot be written.
std::filesystem::path Transcode(const std::filesystem::path& finished_wav,
                                const std::string& format, const std::filesystem::path& cache_dir);

}  // namespace songd::audio
