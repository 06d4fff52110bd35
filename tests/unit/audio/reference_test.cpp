// Reference songs: the key estimator, tempo tracking, and decoding/checking of uploads.
#include "audio/reference.h"

#include <gtest/gtest.h>

#include <fstream>

#include "../../harness/reference_signals.h"
#include "audio_test_util.h"
#include "core/error.h"

namespace songd::audio {
namespace {

using testing::TempDir;

Chroma Rotated(const std::array<double, 12>& profile, int tonic) {
    Chroma c{};
    for (int pc = 0; pc < 12; ++pc) c[static_cast<size_t>(pc)] = profile[(pc - tonic + 12) % 12];
    return c;
}

KeyEstimate KeyOf(const std::vector<float>& mono) {
    ChromaAccumulator chroma(44100);
    chroma.Add(mono.data(), mono.size());
    return EstimateKey(chroma.Result());
}

TEST(KeyEstimate, FindsEveryKeyFromItsOwnProfile) {
    // Chromas shaped like the scale's pitch classes (tonic triad heavier) in all 24 keys.
    for (int tonic = 0; tonic < 12; ++tonic) {
        for (bool minor : {false, true}) {
            std::array<double, 12> scale =
                minor ? std::array<double, 12>{5, 0, 2, 4, 0, 2, 0, 4, 2, 0, 2, 1}
                      : std::array<double, 12>{5, 0, 2, 0, 4, 2, 0, 4, 0, 2, 0, 1};
            KeyEstimate k = EstimateKey(Rotated(scale, tonic));
            EXPECT_EQ(k.tonic, tonic) << tonic << (minor ? "m" : "");
            EXPECT_EQ(k.minor, minor) << tonic;
            EXPECT_GT(k.correlation, 0.8);
        }
    }
}

TEST(KeyEstimate, NamesKeys) {
    EXPECT_EQ((KeyEstimate{9, true, 1}).Name(), "A minor");
    EXPECT_EQ((KeyEstimate{1, false, 1}).Name(), "C# major");
}

TEST(KeyEstimate, SilenceOrFlatChromaDoesNotCrash) {
    KeyEstimate k = EstimateKey(Chroma{});
    EXPECT_GE(k.tonic, 0);
    EXPECT_LT(k.tonic, 12);
    EXPECT_EQ(k.correlation, 0);
}

TEST(KeyEstimate, HearsAMinorInAnAMinorProgression) {
    KeyEstimate k = KeyOf(test::AMinorProgression(24));
    EXPECT_EQ(k.Name(), "A minor") << k.correlation;
}

TEST(KeyEstimate, HearsMajorKeysInMajorProgressions) {
    // C – F – G – C, and the same a whole tone up (D major).
    KeyEstimate c =
        KeyOf(test::ChordLoop({{60, 64, 67}, {65, 69, 72}, {67, 71, 74}, {60, 64, 67}}, 2.0, 24));
    EXPECT_EQ(c.Name(), "C major");
    KeyEstimate d =
        KeyOf(test::ChordLoop({{62, 66, 69}, {67, 71, 74}, {69, 73, 76}, {62, 66, 69}}, 2.0, 24));
    EXPECT_EQ(d.Name(), "D major");
}

TEST(Tempo, TracksADrumLoop) {
    for (double bpm : {90.0, 100.0, 128.0}) {
        auto loop = test::DrumLoop(bpm, 30);
        double got = FoldTempo(EstimateTempo(loop.data(), loop.size(), 44100));
        EXPECT_NEAR(got, bpm, bpm * 0.03) << bpm;
    }
}

TEST(Tempo, FoldsByOctaves) {
    EXPECT_DOUBLE_EQ(FoldTempo(50), 100);
    EXPECT_DOUBLE_EQ(FoldTempo(200), 100);
    EXPECT_DOUBLE_EQ(FoldTempo(100), 100);
    EXPECT_DOUBLE_EQ(FoldTempo(0), 0);
    auto silence = std::vector<float>(44100 * 5, 0.0f);
    EXPECT_EQ(EstimateTempo(silence.data(), silence.size(), 44100), 0);
}

TEST(Tempo, ASteadyToneOrNoiseHasNoTempo) {
    auto tone = test::ChordLoop({{57, 64}}, 20.0, 20.0);  // one long note pair, no onsets
    EXPECT_EQ(EstimateTempo(tone.data(), tone.size(), 44100), 0);
    std::vector<float> noise(44100 * 15);
    uint32_t state = 7;
    for (auto& v : noise) {
        state = state * 1664525u + 1013904223u;
        v = static_cast<float>(static_cast<double>(state >> 8) / (1u << 24) - 0.5) * 0.5f;
    }
    EXPECT_EQ(EstimateTempo(noise.data(), noise.size(), 44100), 0);
    // …while a drum loop, even a quiet one under the tone, has one.
    auto loop = test::DrumLoop(100, 20);
    for (size_t i = 0; i < loop.size(); ++i) loop[i] = 0.3f * loop[i] + tone[i];
    EXPECT_NEAR(FoldTempo(EstimateTempo(loop.data(), loop.size(), 44100)), 100, 3);
}

TEST(AnalyzeReference, DecodesWavFlacOggAndMp3ByContentNotName) {
    TempDir dir;
    auto loop = test::DrumLoop(100, 20);
    struct Case {
        int format;
        const char* expect;
    } cases[] = {{SF_FORMAT_WAV | SF_FORMAT_PCM_16, "wav"},
                 {SF_FORMAT_FLAC | SF_FORMAT_PCM_16, "flac"},
                 {SF_FORMAT_OGG | SF_FORMAT_VORBIS, "ogg"},
                 {SF_FORMAT_MPEG | SF_FORMAT_MPEG_LAYER_III, "mp3"}};
    for (const auto& c : cases) {
        auto path = dir / (std::string("upload-") + c.expect + ".bin");  // the name says nothing
        test::WriteMono(path, loop, 44100, c.format);
        ReferenceAudio ref = AnalyzeReference(path);
        EXPECT_EQ(ref.format, c.expect);
        EXPECT_NEAR(ref.duration_seconds, 20.0, 0.2) << c.expect;
        EXPECT_EQ(ref.sample_rate, 44100);
        EXPECT_EQ(ref.channels, 1);
        EXPECT_NEAR(ref.tempo_bpm, 100, 3) << c.expect;
    }
}

TEST(AnalyzeReference, RefusesWhatIsNotAudio) {
    TempDir dir;
    auto text = dir / "song.mp3";  // the name lies
    std::ofstream(text) << std::string(200000, 'x') << "not audio at all\n";
    try {
        AnalyzeReference(text);
        FAIL() << "text accepted as audio";
    } catch (const core::Error& e) {
        EXPECT_EQ(e.code(), core::ErrorCode::kUnsupportedMediaType) << e.what();
    }
    auto empty = dir / "empty.wav";
    std::ofstream(empty).close();
    EXPECT_THROW(AnalyzeReference(empty), core::Error);
}

TEST(AnalyzeReference, RefusesTooShortAndTooLong) {
    TempDir dir;
    auto short_path = dir / "short.wav";
    test::WriteMono(short_path, test::DrumLoop(100, 3));
    try {
        AnalyzeReference(short_path);
        FAIL() << "a 3 s file was accepted";
    } catch (const core::Error& e) {
        EXPECT_EQ(e.code(), core::ErrorCode::kInvalidInput);
        EXPECT_NE(std::string(e.what()).find("10 s"), std::string::npos) << e.what();
    }
    auto long_path = dir / "long.wav";
    test::WriteMono(long_path, std::vector<float>(8000 * 601, 0.01f), 8000);
    try {
        AnalyzeReference(long_path);
        FAIL() << "a 601 s file was accepted";
    } catch (const core::Error& e) {
        EXPECT_EQ(e.code(), core::ErrorCode::kInvalidInput);
    }
}

}  // namespace
}  // namespace songd::audio
