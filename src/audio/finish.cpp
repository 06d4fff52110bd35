#include "audio/finish.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <limits>
#include <vector>

#include "audio/mastering.h"
#include "audio/sound_file.h"
#include "core/error.h"
#include "core/log.h"

namespace songd::audio {
namespace {

// The limiter aims a little under the promised -1 dBTP: the detector interpolates at 1/8
// sample and other meters interpolate differently, so a few tenths of a dB keep every
// meter at or under the ceiling.
constexpr double kLimiterCeilingDbtp = kTruePeakCeilingDbtp - 0.3;
// Loudness is iterated to this tolerance; the promise is ±0.5 LU.
constexpr double kLoudnessToleranceLu = 0.05;
constexpr int kMaxMasteringPasses = 12;
// More limiting than this would flatten any music; better miss the loudness target.
constexpr double kMaxLimitingDb = 24.0;
// An all-zero render, or one whose peak stays under -100 dBFS, is silence.
constexpr double kSilencePeak = 1e-5;
// When the raw render is cut or padded to the target length, its last 10 ms fade out so
// the song never ends on a click.
constexpr int64_t kEdgeFadeFrames = 441;
constexpr int64_t kChunkFrames = 65536;

[[noreturn]] void RenderFailed(const std::string& msg) {
    throw core::Error(core::ErrorCode::kRenderFailed, msg);
}

std::string Fixed(double value, int decimals) {
    char buf[64];
    std::snprintf(buf, sizeof buf, "%.*f", decimals, value);
    return buf;
}

/// The raw render as interleaved stereo float, exactly `frames` long.
struct RawAudio {
    std::vector<float> samples;
    int64_t frames = 0;
    int64_t raw_frames = 0;  ///< length of the render before cutting or padding
    double peak = 0;
};

RawAudio ReadRaw(const std::filesystem::path& raw, int64_t target_frames) {
    SoundFile in = SoundFile::Open(raw, "the engine's output", core::ErrorCode::kRenderFailed,
                                   core::ErrorCode::kRenderFailed);
    const SF_INFO& info = in.info();
    if (info.samplerate != kSampleRate) {
        RenderFailed("the engine's output is " + std::to_string(info.samplerate) +
                     " Hz; 44100 Hz is required");
    }
    if (info.channels < 1 || info.channels > 2) {
        RenderFailed("the engine's output has " + std::to_string(info.channels) +
                     " channels; mono or stereo is required");
    }
    RawAudio audio;
    audio.frames = target_frames > 0 ? target_frames : info.frames;
    if (audio.frames <= 0) RenderFailed("the engine produced no audio");
    audio.samples.assign(static_cast<size_t>(audio.frames) * 2, 0.0f);

    // Read everything, also past the target length: a NaN anywhere means the engine is
    // broken, even where the song is cut.
    const int channels = info.channels;
    std::vector<float> chunk(static_cast<size_t>(kChunkFrames) * static_cast<size_t>(channels));
    int64_t pos = 0;
    double peak = 0;
    for (;;) {
        const int64_t got = in.ReadFloats(chunk.data(), kChunkFrames);
        if (got <= 0) break;
        for (int64_t i = 0; i < got; ++i) {
            const float l = chunk[static_cast<size_t>(i * channels)];
            const float r = channels == 2 ? chunk[static_cast<size_t>(i * 2 + 1)] : l;
            if (!std::isfinite(l) || !std::isfinite(r)) {
                RenderFailed("the engine produced invalid samples (NaN or infinity) at " +
                             Fixed(static_cast<double>(pos + i) / kSampleRate, 3) + " s");
            }
            if (pos + i < audio.frames) {
                audio.samples[static_cast<size_t>(pos + i) * 2] = l;
                audio.samples[static_cast<size_t>(pos + i) * 2 + 1] = r;
                peak = std::max(
                    {peak, static_cast<double>(std::fabs(l)), static_cast<double>(std::fabs(r))});
            }
        }
        pos += got;
    }
    audio.raw_frames = pos;
    audio.peak = peak;
    if (pos == 0) RenderFailed("the engine produced no audio");
    if (peak < kSilencePeak) {
        RenderFailed("the engine produced silence (peak " +
                     (peak > 0 ? Fixed(GainToDb(peak), 1) + " dBFS" : std::string("zero")) +
                     "); a silent song is never delivered");
    }
    if (audio.raw_frames != audio.frames) {
        const int64_t end = std::min(audio.raw_frames, audio.frames);
        const int64_t fade = std::min(kEdgeFadeFrames, end);
        for (int64_t i = 0; i < fade; ++i) {
            const auto g = static_cast<float>(fade - 1 - i) / static_cast<float>(fade);
            audio.samples[static_cast<size_t>(end - fade + i) * 2] *= g;
            audio.samples[static_cast<size_t>(end - fade + i) * 2 + 1] *= g;
        }
    }
    return audio;
}

/// @brief Gain (and limiter curve) that brings a song to its loudness target.
struct MasterPlan {
    double gain = 1;
    std::vector<float> envelope;  ///< empty when nothing is limited
    double max_limiting_db = 0;
    int passes = 0;
    double true_peak = 0;  ///< of the output, from the oversampled detector
};

/// The output's true peak: the detector's envelope scaled by the gain actually applied.
double OutputTruePeak(const std::vector<float>& tp, double gain, const std::vector<float>& env) {
    double peak = 0;
    for (size_t i = 0; i < tp.size(); ++i) {
        peak = std::max(peak, static_cast<double>(tp[i]) * (env.empty() ? 1.0 : env[i]));
    }
    return peak * gain;
}

MasterPlan PlanLoudness(const RawAudio& audio, double start_lufs, double target_lufs) {
    const float* x = audio.samples.data();
    const int64_t frames = audio.frames;
    std::vector<float> tp(static_cast<size_t>(frames));
    TruePeakEnvelope(x, frames, tp.data());
    const double max_tp = *std::max_element(tp.begin(), tp.end());
    const double ceiling = DbToGain(kLimiterCeilingDbtp);
    const double max_gain_db = target_lufs - start_lufs + kMaxLimitingDb;

    MasterPlan plan;
    std::vector<float> env;
    double gain_db = target_lufs - start_lufs;
    double best_gain_db = gain_db;
    double best_error = std::numeric_limits<double>::infinity();
    double prev_gain_db = std::numeric_limits<double>::quiet_NaN();
    double prev_lufs = 0;
    bool env_is_best = false;
    // Limiting lowers loudness, so raise the gain and limit again until the target holds;
    // loudness grows monotonically with gain, and a secant step converges in a few passes.
    for (int pass = 1; pass <= kMaxMasteringPasses; ++pass) {
        plan.passes = pass;
        const double gain = DbToGain(gain_db);
        double lufs = start_lufs + gain_db;
        const bool limited = gain * max_tp > ceiling;
        if (limited) {
            env.resize(static_cast<size_t>(frames));
            LimiterEnvelope(tp.data(), frames, gain, ceiling, env.data());
            lufs = IntegratedLoudness(x, frames, gain, env.data());
        }
        const double error = target_lufs - lufs;
        env_is_best = false;
        if (std::fabs(error) < best_error) {
            best_error = std::fabs(error);
            best_gain_db = gain_db;
            env_is_best = true;
        }
        if (std::fabs(error) <= kLoudnessToleranceLu) break;
        double slope = 1.0;
        if (!std::isnan(prev_gain_db) && gain_db != prev_gain_db) {
            slope = std::clamp((lufs - prev_lufs) / (gain_db - prev_gain_db), 0.05, 1.0);
        }
        prev_gain_db = gain_db;
        prev_lufs = lufs;
        const double next = std::min(gain_db + error / slope, max_gain_db);
        if (next == gain_db) break;
        gain_db = next;
    }
    plan.gain = DbToGain(best_gain_db);
    if (plan.gain * max_tp > ceiling) {
        if (!env_is_best) {
            env.resize(static_cast<size_t>(frames));
            LimiterEnvelope(tp.data(), frames, plan.gain, ceiling, env.data());
        }
        plan.envelope = std::move(env);
        const float deepest = *std::min_element(plan.envelope.begin(), plan.envelope.end());
        plan.max_limiting_db = -GainToDb(deepest);
    }
    plan.true_peak = OutputTruePeak(tp, plan.gain, plan.envelope);
    return plan;
}

/// splitmix64: tiny, fast, and the same sequence everywhere for a given seed.
class DitherNoise {
  public:
    explicit DitherNoise(uint64_t seed) : state_(seed) {}
    /// Triangular noise on (-1, 1) LSB: the difference of two uniform variables.
    float Next() {
        uint64_t z = (state_ += 0x9e3779b97f4a7c15ULL);
        z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
        z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
        z ^= z >> 31;
        const auto a = static_cast<float>(static_cast<uint32_t>(z >> 32)) * 0x1p-32f;
        const auto b = static_cast<float>(static_cast<uint32_t>(z)) * 0x1p-32f;
        return a - b;
    }

  private:
    uint64_t state_;
};

/// Scales, dithers and writes the song as 16-bit PCM, metering exactly what is written.
void WritePcm16(const std::filesystem::path& path, const RawAudio& audio, const MasterPlan& plan,
                uint64_t dither_seed, LoudnessMeter& meter) {
    SoundFile out = SoundFile::Create(path, SF_FORMAT_WAV | SF_FORMAT_PCM_16);
    DitherNoise noise(dither_seed);
    std::vector<int16_t> pcm(static_cast<size_t>(kChunkFrames) * 2);
    const auto gain = static_cast<float>(plan.gain);
    const bool limited = !plan.envelope.empty();
    for (int64_t begin = 0; begin < audio.frames; begin += kChunkFrames) {
        const int64_t n = std::min(kChunkFrames, audio.frames - begin);
        for (int64_t i = 0; i < n * 2; ++i) {
            const int64_t frame = begin + i / 2;
            const float g = limited ? gain * plan.envelope[static_cast<size_t>(frame)] : gain;
            const float v =
                audio.samples[static_cast<size_t>(begin * 2 + i)] * g * 32768.0f + noise.Next();
            const float q = std::clamp(std::floor(v + 0.5f), -32768.0f, 32767.0f);
            pcm[static_cast<size_t>(i)] = static_cast<int16_t>(q);
        }
        out.WriteShorts(pcm.data(), n);
        meter.Add(pcm.data(), n);
    }
    out.Close();
}

}  // namespace

std::optional<double> MasterPresetLufs(std::string_view preset) {
    if (preset == "subtle") return -16.0;
    if (preset == "balanced") return -14.0;
    if (preset == "loud") return -11.0;
    if (preset == "broadcast") return -23.0;
    return std::nullopt;
}

FinishResult Finish(const std::filesystem::path& raw, const std::filesystem::path& out,
                    const FinishOptions& options) {
    const std::optional<double> target_lufs = MasterPresetLufs(options.master_preset);
    if (!target_lufs) {
        throw core::Error(core::ErrorCode::kInvalidInput,
                          "unknown master_preset '" + options.master_preset +
                              "'; allowed: subtle, balanced, loud, broadcast");
    }
    if (options.target_frames < 0) {
        throw core::Error(
            core::ErrorCode::kInvalidInput,
            "target_frames must not be negative, got " + std::to_string(options.target_frames));
    }
    RawAudio audio = ReadRaw(raw, options.target_frames);
    // A render whose every 400 ms block is under the R128 absolute gate is as good as silent,
    // with or without mastering: either would only amplify noise.
    const double start_lufs = IntegratedLoudness(audio.samples.data(), audio.frames, 1.0, nullptr);
    if (!std::isfinite(start_lufs)) {
        RenderFailed("the engine produced near-silence (every 400 ms block is under -70 LUFS)");
    }

    MasterPlan plan;
    if (options.auto_master) {
        plan = PlanLoudness(audio, start_lufs, *target_lufs);
    } else {
        plan.gain = DbToGain(kPeakNormaliseDbfs) / audio.peak;
        std::vector<float> tp(static_cast<size_t>(audio.frames));
        TruePeakEnvelope(audio.samples.data(), audio.frames, tp.data());
        plan.true_peak = OutputTruePeak(tp, plan.gain, plan.envelope);
    }

    // Loudness is measured again on exactly the samples written; the true peak comes from the
    // planning, as libebur128's own true-peak meter would double the cost of finishing.
    LoudnessMeter meter(false);
    core::TempFile tmp(out);
    WritePcm16(tmp.path(), audio, plan, options.dither_seed, meter);
    tmp.Commit();

    FinishResult result;
    result.frames = audio.frames;
    result.duration_seconds = static_cast<double>(audio.frames) / kSampleRate;
    result.integrated_lufs = meter.IntegratedLufs();
    result.true_peak_dbtp = GainToDb(plan.true_peak);
    result.gain_db = GainToDb(plan.gain);
    result.max_limiting_db = plan.max_limiting_db;
    result.mastering_passes = plan.passes;
    core::LogEvent("info", "audio_finished",
                   {{"file", out.filename().string()},
                    {"frames", std::to_string(result.frames)},
                    {"auto_master", options.auto_master ? "true" : "false"},
                    {"master_preset", options.master_preset},
                    {"integrated_lufs", Fixed(result.integrated_lufs, 2)},
                    {"true_peak_dbtp", Fixed(result.true_peak_dbtp, 2)},
                    {"gain_db", Fixed(result.gain_db, 2)},
                    {"max_limiting_db", Fixed(result.max_limiting_db, 2)},
                    {"passes", std::to_string(result.mastering_passes)}});
    if (options.auto_master && std::fabs(result.integrated_lufs - *target_lufs) > 0.5) {
        core::LogEvent("warning", "loudness_target_missed",
                       {{"file", out.filename().string()},
                        {"target_lufs", Fixed(*target_lufs, 1)},
                        {"integrated_lufs", Fixed(result.integrated_lufs, 2)}});
    }
    return result;
}

}  // namespace songd::audio
