#pragma once
/// @file
/// Finishing: every engine's raw output becomes the delivered `output_fixed.wav`.
///
///   audio::FinishOptions opts{.auto_master = true, .master_preset = "balanced",
///                             .target_frames = engine::TargetFrames(95)};
///   audio::FinishResult r = audio::Finish(raw_path, out_path, opts);
///   // r.integrated_lufs ≈ -14, r.true_peak_dbtp ≤ -1
///
/// Output: 44.1 kHz stereo 16-bit PCM with TPDF dither, exactly `target_frames` long, written
/// to a temporary name, fsynced and renamed. With `auto_master` the song is brought to its
/// preset's integrated loudness (EBU R128) under a true-peak ceiling of -1 dBTP by an
/// oversampled look-ahead limiter; without it, it is peak-normalised to -1 dBFS.
/// A raw render with NaN/Inf or no signal throws core::Error(kRenderFailed): a job fails
/// rather than ship silence. The same input and options give byte-identical output.

#include <cstdint>
#include <filesystem>
#include <optional>
#include <string>
#include <string_view>

namespace songd::audio {

/// True-peak ceiling of every auto-mastered song.
constexpr double kTruePeakCeilingDbtp = -1.0;
/// Sample peak of a song finished without auto-mastering.
constexpr double kPeakNormaliseDbfs = -1.0;

/// @brief How to finish one song.
struct FinishOptions {
    bool auto_master = true;
    std::string master_preset = "balanced";        ///< subtle|balanced|loud|broadcast
    int64_t target_frames = 0;                     ///< 0 keeps the raw length
    uint64_t dither_seed = 0x50a6d17e4a11ce5eULL;  ///< fixed, so output is reproducible
};

/// @brief What was delivered.
struct FinishResult {
    int64_t frames = 0;
    int sample_rate = 44100;
    int channels = 2;
    double duration_seconds = 0;
    double integrated_lufs = 0;  ///< libebur128, on the written samples
    double true_peak_dbtp = 0;   ///< 8× oversampled detector, gain and limiter applied
    double gain_db = 0;          ///< overall gain applied before limiting
    double max_limiting_db = 0;  ///< deepest gain reduction of the limiter (≥ 0)
    int mastering_passes = 0;    ///< loudness/limiter iterations it took
};

/// Integrated loudness target of a master preset in LUFS; nullopt for an unknown name.
std::optional<double> MasterPresetLufs(std::string_view preset);

/// Finishes `raw` (any libsndfile format, 44.1 kHz mono or stereo) into `out`.
/// Throws core::Error: kInvalidInput for bad options, kRenderFailed for a raw render that
/// is missing, unreadable, of the wrong rate, non-finite or silent, kInternal when `out`
/// cannot be written. On any error `out` is left as it was.
FinishResult Finish(const std::filesystem::path& raw, const std::filesystem::path& out,
                    const FinishOptions& options);

}  // namespace songd::audio
