#include "audio/mastering.h"

#include <gtest/gtest.h>

#include <cmath>
#include <random>
#include <vector>

#include "audio_test_util.h"

namespace songd::audio {
namespace {

TEST(TruePeak, FindsThePeakBetweenSamples) {
    // A sine at a quarter of the sample rate, phase-shifted by 45°: every sample sits at
    // ±0.7071 of the amplitude, the waveform itself reaches the full amplitude between them.
    struct Case {
        const char* id;
        double freq;
        double phase;
    };
    for (const Case& c :
         {Case{"fs/4", 11025.0, M_PI / 4}, Case{"1k", 1000.0, 0.3}, Case{"17k", 17000.0, 0.1}}) {
        auto s = testing::Sine(1.0, c.freq, 0.5, c.phase);
        const auto frames = static_cast<int64_t>(s.size() / 2);
        std::vector<float> tp(static_cast<size_t>(frames));
        TruePeakEnvelope(s.data(), frames, tp.data());
        float sample_peak = 0, true_peak = 0;
        // Away from the edges, where the signal starts abruptly.
        for (int64_t i = 100; i < frames - 100; ++i) {
            sample_peak = std::max(sample_peak, std::fabs(s[static_cast<size_t>(i) * 2]));
            true_peak = std::max(true_peak, tp[static_cast<size_t>(i)]);
        }
        EXPECT_NEAR(GainToDb(true_peak), GainToDb(0.5), 0.15) << c.id;
        EXPECT_GE(true_peak, sample_peak) << c.id;
    }
}

TEST(Limiter, KeepsEveryPeakUnderTheCeiling) {
    std::mt19937 rng(5);
    std::uniform_real_distribution<float> u(0.0f, 1.0f);
    const int64_t frames = 200000;
    std::vector<float> tp(static_cast<size_t>(frames));
    for (auto& v : tp) v = 0.2f * u(rng);
    for (int k = 0; k < 60; ++k) {  // isolated spikes and dense clusters, some at the edges
        const auto at = static_cast<size_t>(u(rng) * static_cast<float>(frames - 1));
        tp[at] = 0.5f + 2.0f * u(rng);
    }
    tp[0] = 3.0f;
    tp[static_cast<size_t>(frames - 1)] = 2.5f;
    const double gain = 1.7, ceiling = 0.8;
    std::vector<float> env(static_cast<size_t>(frames));
    float deepest = LimiterEnvelope(tp.data(), frames, gain, ceiling, env.data());
    float min_env = 1.0f;
    for (int64_t n = 0; n < frames; ++n) {
        const double out = gain * env[static_cast<size_t>(n)] * tp[static_cast<size_t>(n)];
        ASSERT_LE(out, ceiling * (1 + 1e-5)) << "frame " << n;
        ASSERT_LE(env[static_cast<size_t>(n)], 1.0f);
        ASSERT_GT(env[static_cast<size_t>(n)], 0.0f);
        min_env = std::min(min_env, env[static_cast<size_t>(n)]);
    }
    EXPECT_FLOAT_EQ(deepest, min_env);
    EXPECT_NEAR(deepest, ceiling / (gain * 3.0), 1e-4);
}

TEST(Limiter, LeavesQuietPassagesAlone) {
    const int64_t frames = 44100 * 2;
    std::vector<float> tp(static_cast<size_t>(frames), 0.1f);
    tp[1000] = 1.0f;  // one peak early on, then a long quiet stretch
    std::vector<float> env(static_cast<size_t>(frames));
    LimiterEnvelope(tp.data(), frames, 1.0, 0.5, env.data());
    EXPECT_LE(env[1000], 0.5f + 1e-6f);
    EXPECT_GT(env[static_cast<size_t>(frames - 1)], 0.999f);  // fully released
    EXPECT_FLOAT_EQ(env[0], 1.0f);  // before the look-ahead reaches the peak
}

TEST(Loudness, MatchesTheDefinitionForASine) {
    // BS.1770: a 1 kHz sine at 0 dBFS on one channel reads -3.01 LUFS; on both, +3 dB.
    auto s = testing::Sine(5.0, 1000.0, 1.0);
    const double lufs =
        IntegratedLoudness(s.data(), static_cast<int64_t>(s.size() / 2), 1.0, nullptr);
    EXPECT_NEAR(lufs, 0.0, 0.1);
    const double half =
        IntegratedLoudness(s.data(), static_cast<int64_t>(s.size() / 2), 0.5, nullptr);
    EXPECT_NEAR(half, lufs - 6.02, 0.01);
    std::vector<float> silence(44100 * 2 * 2, 0.0f);
    EXPECT_TRUE(std::isinf(IntegratedLoudness(silence.data(), 44100 * 2, 1.0, nullptr)));
}

}  // namespace
}  // namespace songd::audio
