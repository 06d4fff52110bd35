#include "audio/mastering.h"

#include <ebur128.h>

#include <algorithm>
#include <array>
#include <cmath>
#include <deque>
#include <utility>
#include <vector>

#include "core/error.h"

namespace songd::audio {
namespace {

constexpr int kTaps = 32;  // per phase; the filter spans samples n-15 .. n+16
constexpr int kTapsBefore = 15;
constexpr double kKaiserBeta = 8.0;

double BesselI0(double x) {
    double sum = 1, term = 1;
    for (int k = 1; k < 50; ++k) {
        term *= (x / (2 * k)) * (x / (2 * k));
        sum += term;
        if (term < sum * 1e-17) break;
    }
    return sum;
}

using PhaseTable = std::array<std::array<float, kTaps>, kTruePeakOversampling>;

// Windowed-sinc fractional-delay filters, one per 1/8-sample offset, each normalised to unit
// DC gain so a constant signal reads the same between samples as on them.
const PhaseTable& Phases() {
    static const PhaseTable table = [] {
        PhaseTable t{};
        const double half_width = kTaps / 2.0;
        for (int ph = 1; ph < kTruePeakOversampling; ++ph) {
            const double frac = static_cast<double>(ph) / kTruePeakOversampling;
            double sum = 0;
            std::array<double, kTaps> h{};
            for (int j = 0; j < kTaps; ++j) {
                const double x = (j - kTapsBefore) - frac;
                const double sinc = x == 0 ? 1.0 : std::sin(M_PI * x) / (M_PI * x);
                const double r = x / half_width;
                const double window =
                    std::fabs(r) >= 1
                        ? 0.0
                        : BesselI0(kKaiserBeta * std::sqrt(1 - r * r)) / BesselI0(kKaiserBeta);
                h[static_cast<size_t>(j)] = sinc * window;
                sum += h[static_cast<size_t>(j)];
            }
            for (int j = 0; j < kTaps; ++j) {
                t[static_cast<size_t>(ph)][static_cast<size_t>(j)] =
                    static_cast<float>(h[static_cast<size_t>(j)] / sum);
            }
        }
        return t;
    }();
    return table;
}

}  // namespace

double DbToGain(double db) { return std::pow(10.0, db / 20.0); }
double GainToDb(double gain) { return 20.0 * std::log10(gain); }

__attribute__((target_clones("avx2", "default"))) void TruePeakEnvelope(const float* stereo,
                                                                        int64_t frames,
                                                                        float* out) {
    const PhaseTable& phases = Phases();
    constexpr int64_t kBlock = 4096;
    constexpr int kLanes = 16;
    // Planar copies of one block plus the filter's reach on both sides. Every block is
    // processed at full length (zero-padded past the end) with unaliased pointers, so the
    // inner loops have a fixed trip count and the compiler vectorises them.
    std::vector<float> left_buf(kBlock + kTaps), right_buf(kBlock + kTaps);
    std::vector<float> peak_buf(kBlock);
    const float* __restrict left = left_buf.data();
    const float* __restrict right = right_buf.data();
    float* __restrict peak = peak_buf.data();
    for (int64_t begin = 0; begin < frames; begin += kBlock) {
        const int64_t n = std::min(kBlock, frames - begin);
        for (int64_t i = 0; i < kBlock + kTaps - 1; ++i) {
            const int64_t src = begin + i - kTapsBefore;
            const bool inside = src >= 0 && src < frames;
            left_buf[static_cast<size_t>(i)] = inside ? stereo[src * 2] : 0.0f;
            right_buf[static_cast<size_t>(i)] = inside ? stereo[src * 2 + 1] : 0.0f;
        }
        for (int64_t i = 0; i < kBlock; ++i) {
            peak[i] = std::max(std::fabs(left[i + kTapsBefore]), std::fabs(right[i + kTapsBefore]));
        }
        for (int ph = 1; ph < kTruePeakOversampling; ++ph) {
            const auto& h = phases[static_cast<size_t>(ph)];
            // 16 outputs at a time stay in registers across all taps.
            for (int64_t i = 0; i < kBlock; i += kLanes) {
                float al[kLanes] = {};
                float ar[kLanes] = {};
                for (int j = 0; j < kTaps; ++j) {
                    const float c = h[static_cast<size_t>(j)];
                    for (int k = 0; k < kLanes; ++k) {
                        al[k] += c * left[i + j + k];
                        ar[k] += c * right[i + j + k];
                    }
                }
                for (int k = 0; k < kLanes; ++k) {
                    peak[i + k] =
                        std::max(peak[i + k], std::max(std::fabs(al[k]), std::fabs(ar[k])));
                }
            }
        }
        std::copy(peak, peak + n, out + begin);
    }
}

float LimiterEnvelope(const float* tp, int64_t frames, double gain, double ceiling, float* env) {
    if (frames <= 0) return 1.0f;
    const int64_t look = kLimiterLookaheadFrames;
    auto reduction = [&](int64_t n) {
        const double peak = gain * tp[n];
        return peak > ceiling ? static_cast<float>(ceiling / peak) : 1.0f;
    };
    // 1) env[n] = the smallest reduction needed anywhere in [n, n + look): a sliding minimum,
    //    scanned backwards with a monotonic queue.
    std::deque<std::pair<int64_t, float>> window;
    for (int64_t n = frames - 1; n >= 0; --n) {
        const float v = reduction(n);
        while (!window.empty() && window.back().second >= v) window.pop_back();
        window.emplace_back(n, v);
        while (window.front().first > n + look - 1) window.pop_front();
        env[n] = window.front().second;
    }
    // 2) A moving average over the look-ahead turns each step into a ramp. Every value it
    //    averages at a peak already includes that peak's reduction, so the ramp reaches it
    //    in time. Values before the start repeat env[0], which also covers the first peaks.
    // 3) Release: the gain falls with the ramp and recovers exponentially. Recovery only
    //    ever lags the ramp, so it never lets a peak through.
    const float release =
        static_cast<float>(1.0 - std::exp(-1.0 / (kLimiterReleaseSeconds * 44100.0)));
    std::vector<float> ring(static_cast<size_t>(look), env[0]);
    double sum = static_cast<double>(env[0]) * static_cast<double>(look);
    float current = env[0];
    float smallest = 1.0f;
    for (int64_t n = 0; n < frames; ++n) {
        float& slot = ring[static_cast<size_t>(n % look)];
        sum += static_cast<double>(env[n]) - static_cast<double>(slot);
        slot = env[n];
        const float ramp = std::min(1.0f, static_cast<float>(sum / static_cast<double>(look)));
        current = ramp < current ? ramp : current + (ramp - current) * release;
        env[n] = current;
        smallest = std::min(smallest, current);
    }
    return smallest;
}

struct LoudnessMeter::State {
    ebur128_state* st = nullptr;
    ~State() {
        if (st != nullptr) ebur128_destroy(&st);
    }
};

LoudnessMeter::LoudnessMeter(bool true_peak) : state_(std::make_unique<State>()) {
    const int mode = EBUR128_MODE_I | (true_peak ? EBUR128_MODE_TRUE_PEAK : 0);
    state_->st = ebur128_init(2, 44100, mode);
    if (state_->st == nullptr) {
        throw core::Error(core::ErrorCode::kInternal, "cannot start a loudness meter");
    }
}

LoudnessMeter::~LoudnessMeter() = default;

void LoudnessMeter::Add(const float* stereo, int64_t frames) {
    if (ebur128_add_frames_float(state_->st, stereo, static_cast<size_t>(frames)) !=
        EBUR128_SUCCESS) {
        throw core::Error(core::ErrorCode::kInternal, "loudness measurement failed");
    }
}

void LoudnessMeter::Add(const int16_t* stereo, int64_t frames) {
    if (ebur128_add_frames_short(state_->st, stereo, static_cast<size_t>(frames)) !=
        EBUR128_SUCCESS) {
        throw core::Error(core::ErrorCode::kInternal, "loudness measurement failed");
    }
}

double LoudnessMeter::IntegratedLufs() const {
    double lufs = 0;
    if (ebur128_loudness_global(state_->st, &lufs) != EBUR128_SUCCESS) {
        throw core::Error(core::ErrorCode::kInternal, "loudness measurement failed");
    }
    return lufs;
}

double LoudnessMeter::TruePeakDb() const {
    double peak = 0;
    for (unsigned ch = 0; ch < 2; ++ch) {
        double p = 0;
        if (ebur128_true_peak(state_->st, ch, &p) != EBUR128_SUCCESS) {
            throw core::Error(core::ErrorCode::kInternal, "true-peak measurement failed");
        }
        peak = std::max(peak, p);
    }
    return peak > 0 ? GainToDb(peak) : -HUGE_VAL;
}

double IntegratedLoudness(const float* stereo, int64_t frames, double gain, const float* env) {
    LoudnessMeter meter(false);
    if (env == nullptr && gain == 1.0) {
        meter.Add(stereo, frames);
        return meter.IntegratedLufs();
    }
    constexpr int64_t kChunk = 16384;
    std::vector<float> buf(static_cast<size_t>(kChunk) * 2);
    const auto g = static_cast<float>(gain);
    for (int64_t begin = 0; begin < frames; begin += kChunk) {
        const int64_t n = std::min(kChunk, frames - begin);
        for (int64_t i = 0; i < n; ++i) {
            const float k = env != nullptr ? g * env[begin + i] : g;
            buf[static_cast<size_t>(i) * 2] = stereo[(begin + i) * 2] * k;
            buf[static_cast<size_t>(i) * 2 + 1] = stereo[(begin + i) * 2 + 1] * k;
        }
        meter.Add(buf.data(), n);
    }
    return meter.IntegratedLufs();
}

}  // namespace songd::audio
