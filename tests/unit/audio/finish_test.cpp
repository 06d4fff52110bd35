#include "audio/finish.h"

#include <gtest/gtest.h>

#include <cmath>

#include "audio_test_util.h"
#include "core/error.h"
#include "engine/tone_engine.h"

namespace songd::audio {
namespace {

using testing::TempDir;

/// Finishes and returns the error, failing the test when none is thrown.
core::Error FinishError(const std::filesystem::path& raw, const std::filesystem::path& out,
                        const FinishOptions& options) {
    try {
        Finish(raw, out, options);
    } catch (const core::Error& e) {
        return e;
    }
    ADD_FAILURE() << "Finish did not throw";
    return core::Error(core::ErrorCode::kInternal, "");
}

using testing::Listing;

/// A 95 s raw render of the tone engine with an injected fault (nan|silence) in `dir`.
std::filesystem::path FaultyRender(const TempDir& dir, const char* fault) {
    engine::ToneEngine tone(0, fault);
    engine::RenderRequest req;
    req.audio_length = 95;
    req.work_dir = dir.path();
    return tone.Render(req, nullptr, engine::CancelToken());
}

struct LoudnessCase {
    const char* id;
    const char* material;
    const char* preset;
    double target;  // the preset's published target, written out here on purpose
};

class FinishLoudness : public ::testing::TestWithParam<LoudnessCase> {};

TEST_P(FinishLoudness, MeetsPresetTargetAndTruePeakCeilingByFfmpeg) {
    const LoudnessCase& c = GetParam();
    TempDir dir;
    auto raw = dir / "raw.wav";
    auto out = dir / "output_fixed.wav";
    const std::string material = c.material;
    testing::WriteWav(raw, material == "dynamic" ? testing::DynamicMix(40)
                           : material == "peaky" ? testing::PeakyMix(40)
                                                 : testing::ClippedMix(40));
    FinishOptions opts;
    opts.master_preset = c.preset;
    opts.target_frames = 40 * 44100;
    FinishResult r = Finish(raw, out, opts);

    auto m = testing::MeasureEbur128(out);
    std::printf("%s %s %s: ffmpeg I=%.1f LUFS, true peak=%.1f dBTP; limiting %.1f dB, %d passes\n",
                c.id, c.material, c.preset, m.integrated_lufs, m.true_peak_dbtp, r.max_limiting_db,
                r.mastering_passes);
    EXPECT_NEAR(m.integrated_lufs, c.target, 0.5) << c.id;
    EXPECT_LE(m.true_peak_dbtp, -1.0) << c.id;
    // Our own meter (libebur128) and ffmpeg agree on what was written.
    EXPECT_NEAR(r.integrated_lufs, m.integrated_lufs, 0.2) << c.id;
    EXPECT_LE(r.true_peak_dbtp, -1.0) << c.id;

    auto probe = testing::Probe(out, "codec_name,sample_rate,channels");
    EXPECT_NE(probe.find("codec_name=pcm_s16le"), std::string::npos) << probe;
    EXPECT_NE(probe.find("sample_rate=44100"), std::string::npos) << probe;
    EXPECT_NE(probe.find("channels=2"), std::string::npos) << probe;
}

INSTANTIATE_TEST_SUITE_P(Presets, FinishLoudness,
                         ::testing::Values(LoudnessCase{"L1", "dynamic", "subtle", -16},
                                           LoudnessCase{"L2", "dynamic", "balanced", -14},
                                           LoudnessCase{"L3", "dynamic", "loud", -11},
                                           LoudnessCase{"L4", "dynamic", "broadcast", -23},
                                           LoudnessCase{"L5", "peaky", "subtle", -16},
                                           LoudnessCase{"L6", "peaky", "balanced", -14},
                                           LoudnessCase{"L7", "peaky", "loud", -11},
                                           LoudnessCase{"L8", "peaky", "broadcast", -23},
                                           LoudnessCase{"L9", "clipped", "subtle", -16},
                                           LoudnessCase{"L10", "clipped", "balanced", -14},
                                           LoudnessCase{"L11", "clipped", "loud", -11},
                                           LoudnessCase{"L12", "clipped", "broadcast", -23}),
                         [](const auto& info) {
                             return std::string(info.param.id) + "_" + info.param.material + "_" +
                                    info.param.preset;
                         });

TEST(Finish, PeakyMaterialIsReallyLimited) {
    // The peaky material's true peak is far above its loudness: reaching -11 LUFS under
    // -1 dBTP needs deep limiting, so the loudness test above exercises the limiter.
    TempDir dir;
    testing::WriteWav(dir / "raw.wav", testing::PeakyMix(20));
    auto before = testing::MeasureEbur128(dir / "raw.wav");
    ASSERT_GT(before.true_peak_dbtp - before.integrated_lufs, 10 + 6)
        << "material is not peaky enough to need limiting";
    FinishOptions opts;
    opts.master_preset = "loud";
    FinishResult r = Finish(dir / "raw.wav", dir / "out.wav", opts);
    EXPECT_GT(r.max_limiting_db, 6.0);
    EXPECT_GT(r.mastering_passes, 1);
}

TEST(Finish, WithoutAutoMasterPeakNormalisesToMinusOneDbfs) {
    TempDir dir;
    testing::WriteWav(dir / "raw.wav", testing::DynamicMix(10));
    FinishOptions opts;
    opts.auto_master = false;
    Finish(dir / "raw.wav", dir / "out.wav", opts);
    // volumedetect reads the 16-bit samples' sample peak.
    auto [rc, text] = testing::Run("ffmpeg -nostats -hide_banner -i '" +
                                   (dir / "out.wav").string() + "' -af volumedetect -f null -");
    ASSERT_EQ(rc, 0) << text;
    auto at = text.find("max_volume:");
    ASSERT_NE(at, std::string::npos) << text;
    EXPECT_NEAR(std::strtod(text.c_str() + at + 11, nullptr), -1.0, 0.1) << text;
}

TEST(Finish, PadsAndCutsToTheExactLength) {
    struct Case {
        const char* id;
        double raw_seconds;
        int64_t target;
    };
    for (const Case& c : {Case{"pad", 5.0, 6 * 44100 + 17}, Case{"cut", 7.0, 6 * 44100 - 5},
                          Case{"keep", 3.0, 0}}) {
        TempDir dir;
        testing::WriteWav(dir / "raw.wav", testing::DynamicMix(c.raw_seconds));
        FinishOptions opts;
        opts.target_frames = c.target;
        FinishResult r = Finish(dir / "raw.wav", dir / "out.wav", opts);
        const int64_t expected =
            c.target > 0 ? c.target : static_cast<int64_t>(c.raw_seconds * 44100);
        auto d = testing::ReadAudio(dir / "out.wav");
        EXPECT_EQ(d.info.frames, expected) << c.id;
        EXPECT_EQ(r.frames, expected) << c.id;
        EXPECT_EQ(d.info.channels, 2) << c.id;
        EXPECT_EQ(d.info.samplerate, 44100) << c.id;
        EXPECT_EQ(d.info.format, SF_FORMAT_WAV | SF_FORMAT_PCM_16) << c.id;
        if (std::string(c.id) == "cut") {
            // The cut fades out: the last frame is (dither-level) silence, not a click.
            EXPECT_LT(std::fabs(d.samples[d.samples.size() - 2]), 3.0f / 32768) << c.id;
        }
        if (std::string(c.id) == "pad") {
            // Padding is silence (dither only).
            for (size_t i = d.samples.size() - 34; i < d.samples.size(); ++i) {
                EXPECT_LT(std::fabs(d.samples[i]), 2.0f / 32768) << c.id << " at " << i;
            }
        }
    }
}

TEST(Finish, MonoAndIntegerInputBecomeStereo) {
    TempDir dir;
    auto stereo = testing::DynamicMix(5);
    std::vector<float> mono(stereo.size() / 2);
    for (size_t i = 0; i < mono.size(); ++i) mono[i] = stereo[i * 2];
    testing::WriteWav(dir / "raw.wav", mono, 1, 44100, SF_FORMAT_WAV | SF_FORMAT_PCM_24);
    Finish(dir / "raw.wav", dir / "out.wav", FinishOptions{});
    auto d = testing::ReadAudio(dir / "out.wav");
    ASSERT_EQ(d.info.channels, 2);
    int differing = 0;
    for (size_t i = 0; i < d.samples.size(); i += 2) {
        differing += std::fabs(d.samples[i] - d.samples[i + 1]) > 2.5f / 32768;
    }
    EXPECT_EQ(differing, 0);  // both channels carry the mono signal (up to dither)
}

TEST(Finish, SameInputGivesByteIdenticalOutput) {
    TempDir dir;
    testing::WriteWav(dir / "raw.wav", testing::PeakyMix(8));
    FinishOptions opts;
    opts.master_preset = "loud";
    Finish(dir / "raw.wav", dir / "a.wav", opts);
    Finish(dir / "raw.wav", dir / "b.wav", opts);
    const std::string a = testing::ReadBytes(dir / "a.wav");
    ASSERT_GT(a.size(), 8u * 44100 * 4);
    EXPECT_TRUE(a == testing::ReadBytes(dir / "b.wav")) << "same input, different bytes";
    // The dither is really there and seeded: another seed changes the bytes.
    opts.dither_seed = 7;
    Finish(dir / "raw.wav", dir / "c.wav", opts);
    EXPECT_FALSE(a == testing::ReadBytes(dir / "c.wav")) << "the dither seed changed nothing";
}

TEST(Finish, NanFromTheEngineFailsClearly) {
    TempDir dir;
    auto raw = FaultyRender(dir, "nan");
    std::filesystem::create_directory(dir / "job");
    auto out = dir / "job" / "output_fixed.wav";
    auto e = FinishError(raw, out, FinishOptions{.target_frames = engine::TargetFrames(95)});
    EXPECT_EQ(e.code(), core::ErrorCode::kRenderFailed);
    EXPECT_NE(std::string(e.what()).find("NaN or infinity"), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find(" s"), std::string::npos) << e.what();
    EXPECT_TRUE(Listing(dir / "job").empty());
}

TEST(Finish, InfinityAnywhereFailsEvenPastTheCut) {
    TempDir dir;
    auto s = testing::DynamicMix(3);
    s[s.size() - 1] = INFINITY;  // in the part the target length cuts away
    testing::WriteWav(dir / "raw.wav", s);
    auto e = FinishError(dir / "raw.wav", dir / "out.wav", FinishOptions{.target_frames = 44100});
    EXPECT_EQ(e.code(), core::ErrorCode::kRenderFailed);
    EXPECT_NE(std::string(e.what()).find("NaN or infinity"), std::string::npos) << e.what();
}

TEST(Finish, SilenceFailsClearlyAndKeepsTheOldFile) {
    TempDir dir;
    auto raw = FaultyRender(dir, "silence");
    std::filesystem::create_directory(dir / "job");
    auto out = dir / "job" / "output_fixed.wav";
    { std::ofstream(out) << "previous"; }
    for (bool auto_master : {true, false}) {
        FinishOptions opts{.auto_master = auto_master, .target_frames = engine::TargetFrames(95)};
        auto e = FinishError(raw, out, opts);
        EXPECT_EQ(e.code(), core::ErrorCode::kRenderFailed);
        EXPECT_NE(std::string(e.what()).find("silence"), std::string::npos) << e.what();
        EXPECT_EQ(testing::ReadBytes(out), "previous");
        EXPECT_EQ(Listing(dir / "job"), std::vector<std::string>{"output_fixed.wav"});
    }
}

TEST(Finish, NearSilenceCannotBeMastered) {
    TempDir dir;
    testing::WriteWav(dir / "raw.wav", testing::Sine(5, 440, 1e-4));  // -80 dBFS
    for (bool auto_master : {true, false}) {
        auto e = FinishError(dir / "raw.wav", dir / "out.wav",
                             FinishOptions{.auto_master = auto_master});
        EXPECT_EQ(e.code(), core::ErrorCode::kRenderFailed);
        EXPECT_NE(std::string(e.what()).find("near-silence"), std::string::npos) << e.what();
        EXPECT_FALSE(std::filesystem::exists(dir / "out.wav"));
    }
}

TEST(Finish, RejectsBadInputsNamingTheProblem) {
    TempDir dir;
    testing::WriteWav(dir / "ok.wav", testing::DynamicMix(2));
    testing::WriteWav(dir / "48k.wav", testing::Sine(2, 440, 0.5), 2, 48000);
    testing::WriteWav(dir / "3ch.wav", std::vector<float>(3 * 44100, 0.1f), 3);
    { std::ofstream(dir / "text.wav") << "not audio"; }
    struct Case {
        const char* id;
        std::filesystem::path raw;
        std::filesystem::path out;
        FinishOptions opts;
        core::ErrorCode code;
        const char* expect;
    };
    const std::vector<Case> cases = {
        {"F1",
         dir / "missing.wav",
         dir / "o.wav",
         {},
         core::ErrorCode::kRenderFailed,
         "does not exist"},
        {"F2", dir / "text.wav", dir / "o.wav", {}, core::ErrorCode::kRenderFailed, "cannot read"},
        {"F3", dir / "48k.wav", dir / "o.wav", {}, core::ErrorCode::kRenderFailed, "48000 Hz"},
        {"F4", dir / "3ch.wav", dir / "o.wav", {}, core::ErrorCode::kRenderFailed, "3 channels"},
        {"F5",
         dir / "ok.wav",
         dir / "o.wav",
         {.master_preset = "medium"},
         core::ErrorCode::kInvalidInput,
         "unknown master_preset 'medium'"},
        {"F6",
         dir / "ok.wav",
         dir / "o.wav",
         {.target_frames = -1},
         core::ErrorCode::kInvalidInput,
         "negative"},
        {"F7",
         dir / "ok.wav",
         dir / "no-such-dir" / "o.wav",
         {},
         core::ErrorCode::kInternal,
         "cannot create"},
        {"F8", dir.path(), dir / "o.wav", {}, core::ErrorCode::kRenderFailed, "is a directory"},
    };
    for (const Case& c : cases) {
        auto e = FinishError(c.raw, c.out, c.opts);
        EXPECT_EQ(e.code(), c.code) << c.id << ": " << e.what();
        EXPECT_NE(std::string(e.what()).find(c.expect), std::string::npos)
            << c.id << ": " << e.what();
        EXPECT_FALSE(std::filesystem::exists(c.out)) << c.id;
    }
    EXPECT_EQ(Listing(dir.path()),
              (std::vector<std::string>{"3ch.wav", "48k.wav", "ok.wav", "text.wav"}));
}

}  // namespace
}  // namespace songd::audio
