#include "engine/synth/psola.h"

#include <gtest/gtest.h>

#include <cmath>

namespace songd::engine::synth {
namespace {

constexpr int kRate = 22050;

/// A vowel-like test signal: a pulse train at `f0` through two resonators (formants).
std::vector<float> Vowel(double f0, double seconds) {
    const auto n = static_cast<size_t>(seconds * kRate);
    std::vector<float> x(n, 0.0f);
    double phase = 0;
    for (size_t i = 0; i < n; ++i) {
        phase += f0 / kRate;
        if (phase >= 1.0) {
            phase -= 1.0;
            x[i] = 1.0f;
        }
    }
    for (double formant : {700.0, 1200.0}) {
        const double r = 0.97, w = 2 * M_PI * formant / kRate;
        const double a1 = 2 * r * std::cos(w), a2 = -r * r;
        double y1 = 0, y2 = 0;
        for (auto& v : x) {
            const double y = v + a1 * y1 + a2 * y2;
            y2 = y1;
            y1 = y;
            v = static_cast<float>(y * 0.05);
        }
    }
    return x;
}

/// Period in samples by plain autocorrelation over [lo, hi] lags (test-side estimator,
/// deliberately simpler than the engine's).
double MeasurePeriod(const std::vector<float>& x, size_t begin, size_t length, int lo, int hi) {
    double best = -1e30;
    int best_lag = lo;
    for (int lag = lo; lag <= hi; ++lag) {
        double acc = 0;
        for (size_t i = begin; i < begin + length; ++i)
            acc += double(x[i]) * x[i + static_cast<size_t>(lag)];
        if (acc > best) {
            best = acc;
            best_lag = lag;
        }
    }
    return best_lag;
}

TEST(PsolaTest, AnalysisFindsThePeriodOfAVowel) {
    const auto x = Vowel(150.0, 0.5);
    const PitchTrack t = AnalysePitch(x, kRate);
    int voiced = 0;
    for (float p : t.period) {
        if (p > 0) {
            ++voiced;
            EXPECT_NEAR(p, kRate / 150.0, 1.0);
        }
    }
    EXPECT_GT(voiced, 30);
    ASSERT_GT(t.marks.size(), 60u);
    for (size_t i = 1; i < t.marks.size(); ++i) {
        EXPECT_NEAR(static_cast<double>(t.marks[i] - t.marks[i - 1]), kRate / 150.0, 2.0);
    }
}

TEST(PsolaTest, SilenceIsUnvoiced) {
    const std::vector<float> x(kRate / 2, 0.0f);
    const PitchTrack t = AnalysePitch(x, kRate);
    for (float p : t.period) EXPECT_EQ(p, 0.0f);
    EXPECT_TRUE(t.marks.empty());
}

struct ShiftCase {
    double from_hz, to_hz, seconds;
};

void PrintTo(const ShiftCase& c, std::ostream* os) {
    *os << c.from_hz << " Hz -> " << c.to_hz << " Hz, " << c.seconds << " s";
}

class PsolaShiftTest : public ::testing::TestWithParam<ShiftCase> {};

TEST_P(PsolaShiftTest, SungNoteHasTheTargetPeriodAndLength) {
    const ShiftCase c = GetParam();
    const auto x = Vowel(c.from_hz, 0.4);
    const PitchTrack t = AnalysePitch(x, kRate);
    Syllable s{0, static_cast<int64_t>(x.size()), 0, static_cast<int64_t>(x.size())};
    std::vector<float> out(static_cast<size_t>(2.5 * kRate), 0.0f);
    SungNote note{kRate / 10, kRate / 10 + static_cast<int64_t>(c.seconds * kRate), c.to_hz, 0.0};
    SingSyllable(x, t, s, note, kRate, out);
    // Sound only inside the note (plus one grain of overlap either side).
    const auto margin = static_cast<int64_t>(2 * kRate / std::min(c.from_hz, c.to_hz));
    for (int64_t i = 0; i < static_cast<int64_t>(out.size()); ++i) {
        if (i < note.out_begin - margin || i > note.out_end + margin) {
            ASSERT_EQ(out[static_cast<size_t>(i)], 0.0f) << i;
        }
    }
    const double target = kRate / c.to_hz;
    const size_t mid = static_cast<size_t>(note.out_begin + (note.out_end - note.out_begin) / 3);
    const double period = MeasurePeriod(out, mid, 1024, static_cast<int>(target * 0.7),
                                        static_cast<int>(target * 1.45));
    EXPECT_NEAR(period, target, 1.0);  // ≈ 10 cents at these pitches
}

INSTANTIATE_TEST_SUITE_P(Shifts, PsolaShiftTest,
                         ::testing::Values(ShiftCase{150, 220, 1.0}, ShiftCase{200, 130.8, 0.8},
                                           ShiftCase{120, 392, 1.5}, ShiftCase{180, 180, 0.3}));

TEST(PsolaTest, DegenerateNotesDoNothingAndNeverWriteOutside) {
    const auto x = Vowel(150.0, 0.2);
    const PitchTrack t = AnalysePitch(x, kRate);
    std::vector<float> out(1000, 0.0f);
    Syllable s{0, static_cast<int64_t>(x.size()), 10, 20};
    SingSyllable(x, t, s, {500, 500, 220.0, 20.0}, kRate, out);           // zero length
    SingSyllable(x, t, s, {900, 5000, 220.0, 20.0}, kRate, out);          // runs past the buffer
    SingSyllable(x, t, s, {-300, 100, 220.0, 20.0}, kRate, out);          // starts before it
    SingSyllable(x, t, {5, 5, 5, 5}, {0, 800, 220.0, 20.0}, kRate, out);  // empty syllable
    SUCCEED();
}

TEST(UpsampleTest, KeepsSamplesAndInterpolatesASine) {
    std::vector<float> x(4000);
    for (size_t i = 0; i < x.size(); ++i)
        x[i] = static_cast<float>(std::sin(2 * M_PI * 1000.0 * i / kRate));
    const auto y = Upsample2x(x);
    ASSERT_EQ(y.size(), 8000u);
    for (size_t i = 100; i < 3900; ++i) {
        EXPECT_EQ(y[2 * i], x[i]);
        const double expected = std::sin(2 * M_PI * 1000.0 * (i + 0.5) / kRate);
        EXPECT_NEAR(y[2 * i + 1], expected, 2e-3);
    }
}

}  // namespace
}  // namespace songd::engine::synth
