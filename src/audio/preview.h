#pragma once
/// @file
/// The free preview: the opening of the finished song as MP3, fading out at its end.
///
///   audio::MakePreview(job_dir / "output_fixed.wav", job_dir / "preview.mp3",
///                      config.preview_seconds);   // when preview_seconds > 0
///
/// The file names belong to the storage layout (jobs/layout.h).
///
/// Made once when a job completes; written atomically like every delivered file.

#include <filesystem>

namespace songd::audio {

/// Fade-out at the end of a preview, shortened for very short previews (a third of it).
constexpr double kPreviewFadeSeconds = 3.0;
/// Preview MP3 bitrate: plenty to judge a song, small to serve for free.
constexpr int kPreviewKbps = 128;
/// A preview is at most 1/kPreviewMaxFractionDivisor of the song.
constexpr int kPreviewMaxFractionDivisor = 3;

/// Writes the first `seconds` of `finished_wav`, but never more than a third of the song, to
/// `out_mp3`.
/// Throws core::Error: kInvalidInput when `seconds` < 1, kNotFound when the WAV is missing,
/// kInternal when it cannot be read or `out_mp3` cannot be written. On error `out_mp3` is
/// left as it was.
void MakePreview(const std::filesystem::path& finished_wav, const std::filesystem::path& out_mp3,
                 int seconds);

}  // namespace songd::audio
