#include "audio/preview.h"

#include <gtest/gtest.h>

#include <cmath>

#include "audio/finish.h"
#include "audio_test_util.h"
#include "core/error.h"

namespace songd::audio {
namespace {

using testing::TempDir;

double RmsDb(const std::vector<float>& stereo, double from_s, double to_s) {
    const auto a = static_cast<size_t>(from_s * 44100) * 2;
    const auto b = std::min(stereo.size(), static_cast<size_t>(to_s * 44100) * 2);
    double sum = 0;
    for (size_t i = a; i < b; ++i) sum += static_cast<double>(stereo[i]) * stereo[i];
    return 10 * std::log10(sum / static_cast<double>(b - a) + 1e-30);
}

std::filesystem::path MakeFinished(const TempDir& dir, double seconds) {
    testing::WriteWav(dir / "raw.wav", testing::DynamicMix(seconds));
    auto wav = dir / "output_fixed.wav";
    Finish(dir / "raw.wav", wav, FinishOptions{});
    return wav;
}

TEST(Preview, IsTheOpeningAsMp3FadingOut) {
    TempDir dir;
    auto wav = MakeFinished(dir, 91);  // a third of it is just over 30 s
    auto mp3 = dir / "preview.mp3";
    MakePreview(wav, mp3, 30);
    auto probe = testing::Probe(mp3, "codec_name,duration,bit_rate");
    EXPECT_NE(probe.find("codec_name=mp3"), std::string::npos) << probe;
    EXPECT_NE(probe.find("bit_rate=128000"), std::string::npos) << probe;
    auto at = probe.find("duration=");
    ASSERT_NE(at, std::string::npos) << probe;
    EXPECT_NEAR(std::strtod(probe.c_str() + at + 9, nullptr), 30.0, 0.1) << probe;

    auto d = testing::ReadAudio(mp3);
    const double body = RmsDb(d.samples, 20.0, 26.0);
    const double fading = RmsDb(d.samples, 28.0, 29.0);
    const double tail = RmsDb(d.samples, 29.85, 30.0);
    EXPECT_GT(body, -30.0);         // the song is there
    EXPECT_LT(fading, body - 3.0);  // the fade is under way
    EXPECT_LT(tail, body - 40.0);   // and ends in silence
    // Before the fade, the preview is the song itself (lossy, so compare loudness).
    auto song = testing::ReadAudio(wav);
    EXPECT_NEAR(RmsDb(d.samples, 5.0, 20.0), RmsDb(song.samples, 5.0, 20.0), 0.5);
}

TEST(Preview, NeverMoreThanAThirdOfTheSong) {
    // PREVIEW_SECONDS at or past the song's length must not give the whole song away.
    for (const int seconds : {30, 12, 6}) {
        TempDir dir;
        auto wav = MakeFinished(dir, 12);
        MakePreview(wav, dir / "preview.mp3", seconds);
        auto d = testing::ReadAudio(dir / "preview.mp3");
        const double expected = std::min(seconds, 4) * 44100.0;
        EXPECT_NEAR(static_cast<double>(d.info.frames), expected, 1152) << seconds;
    }
}

TEST(Preview, ShorterThanAThirdIsAsAsked) {
    TempDir dir;
    auto wav = MakeFinished(dir, 12);
    MakePreview(wav, dir / "preview.mp3", 2);
    auto d = testing::ReadAudio(dir / "preview.mp3");
    EXPECT_NEAR(static_cast<double>(d.info.frames), 2.0 * 44100, 1152);
}

TEST(Preview, BadRequestsFailClearlyAndKeepTheOldPreview) {
    TempDir dir;
    auto wav = MakeFinished(dir, 4);
    auto out = dir / "preview.mp3";
    { std::ofstream(out) << "old preview"; }
    { std::ofstream(dir / "broken.wav") << "RIFF nonsense"; }
    struct Case {
        const char* id;
        std::filesystem::path wav;
        std::filesystem::path out;
        int seconds;
        core::ErrorCode code;
        const char* expect;
    };
    const std::vector<Case> cases = {
        {"P1", wav, out, 0, core::ErrorCode::kInvalidInput, "at least 1 second, got 0"},
        {"P2", wav, out, -5, core::ErrorCode::kInvalidInput, "got -5"},
        {"P3", dir / "missing.wav", out, 30, core::ErrorCode::kNotFound, "does not exist"},
        {"P4", dir / "broken.wav", out, 30, core::ErrorCode::kInternal, "cannot read"},
        {"P5", wav, dir / "no-dir" / "preview.mp3", 30, core::ErrorCode::kInternal,
         "cannot create"},
    };
    for (const Case& c : cases) {
        try {
            MakePreview(c.wav, c.out, c.seconds);
            ADD_FAILURE() << c.id << " did not throw";
        } catch (const core::Error& e) {
            EXPECT_EQ(e.code(), c.code) << c.id << ": " << e.what();
            EXPECT_NE(std::string(e.what()).find(c.expect), std::string::npos)
                << c.id << ": " << e.what();
        }
        EXPECT_EQ(testing::ReadBytes(out), "old preview") << c.id;
    }
    EXPECT_EQ(
        testing::Listing(dir.path()),
        (std::vector<std::string>{"broken.wav", "output_fixed.wav", "preview.mp3", "raw.wav"}));
}

}  // namespace
}  // namespace songd::audio
