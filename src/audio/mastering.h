#pragma once
/// @file
/// The signal processing behind auto-mastering: an oversampled true-peak detector, a
/// look-ahead limiter gain curve, and EBU R128 loudness through libebur128.
///
///   std::vector<float> tp(frames), env(frames);
///   audio::TruePeakEnvelope(stereo, frames, tp.data());          // once per song
///   audio::LimiterEnvelope(tp.data(), frames, gain, ceiling, env.data());
///   double lufs = audio::IntegratedLoudness(stereo, frames, gain, env.data());
///
/// Audio is interleaved stereo float at 44.1 kHz. Everything is deterministic.

#include <cstdint>
#include <memory>

namespace songd::audio {

/// @brief Streaming EBU R128 meter over 44.1 kHz stereo: integrated loudness and, when
/// asked, true peak (libebur128's own oversampling, independent of TruePeakEnvelope).
class LoudnessMeter {
  public:
    explicit LoudnessMeter(bool true_peak);
    ~LoudnessMeter();
    LoudnessMeter(const LoudnessMeter&) = delete;
    LoudnessMeter& operator=(const LoudnessMeter&) = delete;

    void Add(const float* stereo, int64_t frames);
    void Add(const int16_t* stereo, int64_t frames);
    /// LUFS, or -infinity when everything is below the absolute gate (-70 LUFS).
    double IntegratedLufs() const;
    /// dBTP of the louder channel; needs `true_peak`.
    double TruePeakDb() const;

  private:
    struct State;
    std::unique_ptr<State> state_;
};

/// True-peak oversampling factor: inter-sample peaks are looked for at 1/8-sample steps,
/// which underestimates a full-scale 20 kHz tone by at most 0.14 dB.
constexpr int kTruePeakOversampling = 8;

/// Look-ahead of the limiter: gain reduction ramps in over this many frames before a peak.
constexpr int kLimiterLookaheadFrames = 220;  // 5 ms
/// Release time constant of the limiter.
constexpr double kLimiterReleaseSeconds = 0.08;

/// out[n] = the largest absolute value of either channel on [n, n+1), interpolated with a
/// windowed-sinc polyphase filter. `out` holds `frames` floats.
void TruePeakEnvelope(const float* stereo, int64_t frames, float* out);

/// Computes the limiter's gain curve for a song scaled by `gain`: env[n] ≤ 1 and
/// gain × env[n] × tp[n] ≤ ceiling for every n, with a smooth attack over the look-ahead
/// and an exponential release. Returns the smallest value of env (1 when nothing is limited).
/// `tp` is TruePeakEnvelope of the unscaled song; `env` holds `frames` floats.
float LimiterEnvelope(const float* tp, int64_t frames, double gain, double ceiling, float* env);

/// Integrated loudness (LUFS, EBU R128) of stereo × gain × env[n] (`env` may be null), or
/// -infinity when everything is below the absolute gate (-70 LUFS).
double IntegratedLoudness(const float* stereo, int64_t frames, double gain, const float* env);

/// Converts between decibels and linear amplitude.
double DbToGain(double db);
double GainToDb(double gain);

}  // namespace songd::audio
