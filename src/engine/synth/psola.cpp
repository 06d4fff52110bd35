#include "engine/synth/psola.h"

#include <algorithm>
#include <cmath>

namespace songd::engine::synth {
namespace {

float PeriodNear(const PitchTrack& t, double sample, float fallback) {
    const auto f = static_cast<int64_t>(std::llround(sample / t.hop));
    for (int64_t d = 0; d <= 2; ++d) {
        for (int64_t g : {f - d, f + d}) {
            if (g >= 0 && g < static_cast<int64_t>(t.period.size()) &&
                t.period[static_cast<size_t>(g)] > 0) {
                return t.period[static_cast<size_t>(g)];
            }
        }
    }
    return fallback;
}

/// Dot product with eight independent partial sums, which the compiler turns into SIMD
/// (a single running float sum must be kept in order and cannot be vectorised).
float Dot(const float* a, const float* b, int n) {
    float acc[8] = {};
    int i = 0;
    for (; i + 8 <= n; i += 8) {
        for (int k = 0; k < 8; ++k) acc[k] += a[i + k] * b[i + k];
    }
    float sum = ((acc[0] + acc[1]) + (acc[2] + acc[3])) + ((acc[4] + acc[5]) + (acc[6] + acc[7]));
    for (; i < n; ++i) sum += a[i] * b[i];
    return sum;
}

int64_t ArgMax(const std::vector<float>& x, int64_t lo, int64_t hi) {
    lo = std::max<int64_t>(0, lo);
    hi = std::min<int64_t>(static_cast<int64_t>(x.size()), hi);
    int64_t best = lo;
    for (int64_t i = lo; i < hi; ++i) {
        if (x[static_cast<size_t>(i)] > x[static_cast<size_t>(best)]) best = i;
    }
    return best;
}

}  // namespace

bool PitchTrack::VoicedAt(double sample) const {
    const auto f = static_cast<int64_t>(std::llround(sample / hop));
    return f >= 0 && f < static_cast<int64_t>(period.size()) && period[static_cast<size_t>(f)] > 0;
}

PitchTrack AnalysePitch(const std::vector<float>& x, int sample_rate) {
    PitchTrack t;
    t.hop = std::max(1, sample_rate / 100);
    const int min_lag = std::max(2, sample_rate / 550);
    const int max_lag = std::max(min_lag + 2, sample_rate / 70);
    const int w = max_lag;
    const auto n = static_cast<int64_t>(x.size());
    const int64_t frames = n / t.hop + 1;
    t.period.assign(static_cast<size_t>(frames), 0.0f);

    std::vector<double> energy(static_cast<size_t>(frames), 0.0);
    double max_energy = 0;
    for (int64_t f = 0; f < frames; ++f) {
        const int64_t a0 = f * t.hop - w / 2;
        if (a0 < 0 || a0 + w + max_lag > n) continue;
        double e = 0;
        for (int i = 0; i < w; ++i)
            e += double(x[static_cast<size_t>(a0 + i)]) * x[static_cast<size_t>(a0 + i)];
        energy[static_cast<size_t>(f)] = e;
        max_energy = std::max(max_energy, e);
    }
    std::vector<float> r(static_cast<size_t>(max_lag) + 2, 0.0f);
    // Normalised cross-correlation of frame f over lags [lo, hi] with a window of `win`
    // samples; the period in samples, or 0 when the frame is not clearly periodic.
    auto estimate = [&](int64_t f, int lo, int hi, int win) -> float {
        const float* a = x.data() + (f * t.hop - w / 2);
        double ea = 0, eb = 0;
        for (int i = 0; i < win; ++i) ea += double(a[i]) * a[i];
        for (int i = 0; i < win; ++i) eb += double(a[lo + i]) * a[lo + i];
        float best = 0;
        for (int lag = lo; lag <= hi; ++lag) {
            const float* b = a + lag;
            const float num = Dot(a, b, win);
            r[static_cast<size_t>(lag)] = static_cast<float>(num / std::sqrt(ea * eb + 1e-12));
            best = std::max(best, r[static_cast<size_t>(lag)]);
            if (lag < hi) eb = std::max(0.0, eb + double(b[win]) * b[win] - double(b[0]) * b[0]);
        }
        if (best < 0.6f) return 0.0f;
        // The shortest lag close to the best one: avoids reading two periods as one.
        for (int lag = lo + 1; lag < hi; ++lag) {
            const float v = r[static_cast<size_t>(lag)];
            if (v >= 0.85f * best && v >= r[static_cast<size_t>(lag) - 1] &&
                v >= r[static_cast<size_t>(lag) + 1]) {
                const float l = r[static_cast<size_t>(lag) - 1], c = v,
                            h = r[static_cast<size_t>(lag) + 1];
                const float denom = l - 2 * c + h;
                const float shift = std::abs(denom) > 1e-9f ? 0.5f * (l - h) / denom : 0.0f;
                return static_cast<float>(lag) + std::clamp(shift, -0.5f, 0.5f);
            }
        }
        return 0.0f;
    };
    auto loud = [&](int64_t f) {
        const double e = energy[static_cast<size_t>(f)];
        return e > 0 && e >= 1e-3 * max_energy;  // below -30 dB: silence or breath
    };
    // espeak-ng speaks on a nearly flat pitch here, so a full-range search on the loudest
    // frames finds the voice's period and every other frame searches only around it: the
    // analysis then costs a third as much, which matters for songs with hundreds of lines.
    std::vector<int64_t> by_energy;
    for (int64_t f = 0; f < frames; ++f) {
        if (loud(f)) by_energy.push_back(f);
    }
    std::stable_sort(by_energy.begin(), by_energy.end(), [&](int64_t a, int64_t b) {
        return energy[static_cast<size_t>(a)] > energy[static_cast<size_t>(b)];
    });
    std::vector<float> probes;
    for (size_t i = 0; i < std::min<size_t>(9, by_energy.size()); ++i) {
        const float p = estimate(by_energy[i], min_lag, max_lag, w);
        if (p > 0) probes.push_back(p);
    }
    int lo = min_lag, hi = max_lag, win = w;
    if (!probes.empty()) {
        std::nth_element(probes.begin(),
                         probes.begin() + static_cast<std::ptrdiff_t>(probes.size() / 2),
                         probes.end());
        const float base = probes[probes.size() / 2];
        lo = std::max(min_lag, static_cast<int>(0.7f * base));
        hi = std::min(max_lag, static_cast<int>(1.45f * base) + 1);
        win = std::min(w, hi + 2);
    }
    for (int64_t f = 0; f < frames; ++f) {
        if (loud(f)) t.period[static_cast<size_t>(f)] = estimate(f, lo, hi, win);
    }
    // A three-frame median removes isolated octave slips.
    std::vector<float> smooth = t.period;
    for (size_t f = 1; f + 1 < t.period.size(); ++f) {
        float a = t.period[f - 1], b = t.period[f], c = t.period[f + 1];
        if (a > 0 && b > 0 && c > 0)
            smooth[f] = std::max(std::min(a, b), std::min(std::max(a, b), c));
    }
    t.period = std::move(smooth);

    // Pitch marks: one per glottal pulse, walking period by period through voiced runs.
    for (int64_t f = 0; f < frames;) {
        if (t.period[static_cast<size_t>(f)] <= 0) {
            ++f;
            continue;
        }
        int64_t g = f;
        while (g < frames && t.period[static_cast<size_t>(g)] > 0) ++g;
        const int64_t start = std::max<int64_t>(0, f * t.hop - t.hop / 2);
        const int64_t end = std::min<int64_t>(n, (g - 1) * t.hop + t.hop / 2);
        float period = t.period[static_cast<size_t>(f)];
        int64_t m = ArgMax(x, start, start + static_cast<int64_t>(period));
        while (m < end) {
            period = PeriodNear(t, static_cast<double>(m), period);
            t.marks.push_back(m);
            t.mark_period.push_back(period);
            const auto p = m + static_cast<int64_t>(std::lround(period));
            const auto q = static_cast<int64_t>(period / 4);
            if (p - q >= end) break;
            const int64_t next = ArgMax(x, p - q, p + q + 1);
            m = next > m ? next : m + std::max<int64_t>(1, static_cast<int64_t>(period));
        }
        f = g;
    }
    return t;
}

void SingSyllable(const std::vector<float>& x, const PitchTrack& track, const Syllable& s,
                  const SungNote& note, int sample_rate, std::vector<float>& out) {
    const double length = static_cast<double>(note.out_end - note.out_begin);
    if (length < 1 || s.end <= s.begin || note.frequency <= 0) return;
    const double onset = static_cast<double>(s.nucleus_begin - s.begin);
    const double nucleus = std::max(1.0, static_cast<double>(s.nucleus_end - s.nucleus_begin));
    const double coda = static_cast<double>(s.end - s.nucleus_end);
    const double k = onset + coda > 0.5 * length ? 0.5 * length / (onset + coda) : 1.0;
    const double out_onset = k * onset, out_coda = k * coda;
    const double out_nucleus = std::max(1.0, length - out_onset - out_coda);
    auto map = [&](double p) {
        if (p < out_onset) return static_cast<double>(s.begin) + p / k;
        if (p < out_onset + out_nucleus) {
            return static_cast<double>(s.nucleus_begin) + (p - out_onset) * nucleus / out_nucleus;
        }
        return static_cast<double>(s.nucleus_end) + (p - out_onset - out_nucleus) / k;
    };
    const auto n_in = static_cast<int64_t>(x.size());
    const auto n_out = static_cast<int64_t>(out.size());
    const double sr = sample_rate;
    for (double p = 0; p < length;) {
        const double seconds = p / sr;
        // Vibrato comes in after a quarter second, as a singer settles on a long note.
        const double depth = note.vibrato_cents * std::clamp((seconds - 0.25) / 0.2, 0.0, 1.0);
        const double freq =
            note.frequency * std::exp2(depth * std::sin(2 * M_PI * 5.5 * seconds) / 1200.0);
        const double t_out = sr / freq;
        const double q = map(p);
        int64_t center = std::llround(q);
        int64_t half = std::max<int64_t>(2, std::llround(t_out));
        float gain = 1.0f;
        if (track.VoicedAt(q) && !track.marks.empty()) {
            auto it = std::lower_bound(track.marks.begin(), track.marks.end(), center);
            if (it == track.marks.end() ||
                (it != track.marks.begin() && center - *(it - 1) < *it - center))
                --it;
            const size_t idx = static_cast<size_t>(it - track.marks.begin());
            const double t_in = track.mark_period[idx];
            if (std::abs(static_cast<double>(*it) - q) <= 2 * t_in) {
                center = *it;
                half = std::max<int64_t>(2, std::llround(t_in));
                // Raising the pitch packs more pulses into a second; keep loudness even.
                gain = static_cast<float>(std::sqrt(std::min(1.0, t_out / t_in)));
            }
        }
        const int64_t at = note.out_begin + std::llround(p);
        const double w_scale = M_PI / static_cast<double>(half);
        for (int64_t i = -half; i < half; ++i) {
            const int64_t src = center + i, dst = at + i;
            if (src < 0 || src >= n_in || dst < 0 || dst >= n_out) continue;
            const auto w =
                static_cast<float>(0.5 * (1.0 + std::cos(w_scale * static_cast<double>(i))));
            out[static_cast<size_t>(dst)] += gain * w * x[static_cast<size_t>(src)];
        }
        p += t_out;
    }
}

std::vector<float> Upsample2x(const std::vector<float>& x) {
    constexpr int kTaps = 16;
    static const std::vector<float> kCoeff = [] {
        std::vector<float> h(kTaps);
        double sum = 0;
        for (int k = 0; k < kTaps; ++k) {
            const double t = k + 0.5;
            const double sinc = std::sin(M_PI * t) / (M_PI * t);
            const double n = t / (kTaps + 0.5);
            const double window = 0.42 + 0.5 * std::cos(M_PI * n) + 0.08 * std::cos(2 * M_PI * n);
            h[static_cast<size_t>(k)] = static_cast<float>(sinc * window);
            sum += 2 * h[static_cast<size_t>(k)];
        }
        for (auto& v : h) v = static_cast<float>(v / sum);
        return h;
    }();
    const auto n = static_cast<int64_t>(x.size());
    std::vector<float> y(x.size() * 2, 0.0f);
    auto at = [&](int64_t i) { return i >= 0 && i < n ? x[static_cast<size_t>(i)] : 0.0f; };
    for (int64_t i = 0; i < n; ++i) {
        y[static_cast<size_t>(2 * i)] = x[static_cast<size_t>(i)];
        float acc = 0;
        for (int k = 0; k < kTaps; ++k)
            acc += kCoeff[static_cast<size_t>(k)] * (at(i - k) + at(i + 1 + k));
        y[static_cast<size_t>(2 * i + 1)] = acc;
    }
    return y;
}

}  // namespace songd::engine::synth
