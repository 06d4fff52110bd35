#include "audio/encode.h"

#include <gtest/gtest.h>
#include <sys/stat.h>

#include <thread>

#include "audio/finish.h"
#include "audio/preview.h"
#include "audio_test_util.h"
#include "core/error.h"

namespace songd::audio {
namespace {

using testing::Listing;
using testing::TempDir;

/// A finished song as the service stores it: `dir/output_fixed.wav`.
std::filesystem::path MakeFinished(const TempDir& dir, double seconds = 6) {
    testing::WriteWav(dir / "raw.wav", testing::DynamicMix(seconds));
    auto wav = dir / "output_fixed.wav";
    Finish(dir / "raw.wav", wav, FinishOptions{});
    std::filesystem::remove(dir / "raw.wav");
    return wav;
}

core::Error TranscodeError(const std::filesystem::path& wav, const std::string& format,
                           const std::filesystem::path& dir) {
    try {
        Transcode(wav, format, dir);
    } catch (const core::Error& e) {
        return e;
    }
    ADD_FAILURE() << "Transcode(" << format << ") did not throw";
    return core::Error(core::ErrorCode::kInternal, "");
}

TEST(Formats, ParsesOnlyTheThreeNames) {
    EXPECT_EQ(ParseFormat("wav"), Format::kWav);
    EXPECT_EQ(ParseFormat("flac"), Format::kFlac);
    EXPECT_EQ(ParseFormat("mp3"), Format::kMp3);
    for (const char* bad : {"", "ogg", "WAV", "mp3 ", "../wav", "wav\n", "m4a"}) {
        try {
            ParseFormat(bad);
            ADD_FAILURE() << "accepted '" << bad << "'";
        } catch (const core::Error& e) {
            EXPECT_EQ(e.code(), core::ErrorCode::kInvalidInput);
            EXPECT_NE(std::string(e.what()).find("allowed: wav, flac, mp3"), std::string::npos);
        }
    }
    EXPECT_STREQ(FormatMimeType(Format::kMp3), "audio/mpeg");
}

TEST(Transcode, WavIsTheFinishedFileItself) {
    TempDir dir;
    auto wav = MakeFinished(dir);
    EXPECT_EQ(Transcode(wav, "wav", dir.path()), wav);
    EXPECT_EQ(Listing(dir.path()), std::vector<std::string>{"output_fixed.wav"});
}

TEST(Transcode, FlacIsLosslessAndCachedBesideTheWav) {
    TempDir dir;
    auto wav = MakeFinished(dir);
    auto flac = Transcode(wav, "flac", dir.path());
    EXPECT_EQ(flac, dir / "output_fixed.flac");
    EXPECT_NE(testing::Probe(flac, "codec_name").find("codec_name=flac"), std::string::npos);
    auto a = testing::ReadAudio(wav);
    auto b = testing::ReadAudio(flac);
    EXPECT_EQ(b.info.samplerate, 44100);
    EXPECT_EQ(b.info.channels, 2);
    EXPECT_EQ(a.samples, b.samples);  // bit-exact

    // Cached: a second request reuses the file instead of encoding again.
    const auto first_time = std::filesystem::last_write_time(flac);
    struct stat st1 {
    }, st2{};
    ::stat(flac.c_str(), &st1);
    EXPECT_EQ(Transcode(wav, "flac", dir.path()), flac);
    ::stat(flac.c_str(), &st2);
    EXPECT_EQ(st1.st_ino, st2.st_ino);
    EXPECT_EQ(std::filesystem::last_write_time(flac), first_time);
}

TEST(Transcode, StaleCacheIsReencodedWhenTheWavIsNewer) {
    TempDir dir;
    auto wav = MakeFinished(dir);
    { std::ofstream(dir / "output_fixed.flac") << "stale"; }
    std::filesystem::last_write_time(dir / "output_fixed.flac",
                                     std::filesystem::last_write_time(wav) - std::chrono::hours(1));
    auto flac = Transcode(wav, "flac", dir.path());
    EXPECT_EQ(testing::ReadAudio(flac).samples, testing::ReadAudio(wav).samples);
}

TEST(Transcode, Mp3DecodesToTheSameLength) {
    TempDir dir;
    auto wav = MakeFinished(dir, 6);
    auto mp3 = Transcode(wav, "mp3", dir.path());
    EXPECT_EQ(mp3, dir / "output_fixed.mp3");
    auto probe = testing::Probe(mp3, "codec_name,sample_rate,channels,bit_rate");
    EXPECT_NE(probe.find("codec_name=mp3"), std::string::npos) << probe;
    EXPECT_NE(probe.find("sample_rate=44100"), std::string::npos) << probe;
    EXPECT_NE(probe.find("channels=2"), std::string::npos) << probe;
    EXPECT_NE(probe.find("bit_rate=320000"), std::string::npos) << probe;
    auto decoded = testing::ReadAudio(mp3);
    EXPECT_NEAR(static_cast<double>(decoded.info.frames), 6.0 * 44100, 1152);
    // Still the same song: the decoded waveform matches the WAV (MP3 at 320 kbit/s keeps
    // the error tiny), and so does the loudness measured by ffmpeg.
    auto original = testing::ReadAudio(wav);
    ASSERT_EQ(decoded.samples.size(), original.samples.size());
    double err = 0, sig = 0;
    for (size_t i = 0; i < original.samples.size(); ++i) {
        const double d = static_cast<double>(decoded.samples[i]) - original.samples[i];
        err += d * d;
        sig += static_cast<double>(original.samples[i]) * original.samples[i];
    }
    EXPECT_GT(10 * std::log10(sig / err), 20.0) << "signal-to-error ratio of the MP3, dB";
    EXPECT_NEAR(testing::MeasureEbur128(mp3).integrated_lufs,
                testing::MeasureEbur128(wav).integrated_lufs, 0.3);
}

TEST(Transcode, Mp3AndPreviewKeepTheTruePeakCeiling) {
    // Sharp transients decode above the master's true peak after lossy encoding; the MP3
    // writer measures the decoded file and turns the encoding down until it fits.
    TempDir dir;
    testing::WriteWav(dir / "raw.wav", testing::PeakyMix(20));
    FinishOptions opts;
    opts.master_preset = "loud";
    Finish(dir / "raw.wav", dir / "output_fixed.wav", opts);
    auto mp3 = Transcode(dir / "output_fixed.wav", "mp3", dir.path());
    MakePreview(dir / "output_fixed.wav", dir / "preview.mp3", 15);
    for (const auto& file : {mp3, dir / "preview.mp3"}) {
        auto m = testing::MeasureEbur128(file);
        EXPECT_LE(m.true_peak_dbtp, -1.0) << file.filename();
        EXPECT_GT(m.true_peak_dbtp, -3.0) << file.filename() << " turned down far too much";
    }
}

TEST(Transcode, ConcurrentRequestsShareOneCompleteFile) {
    TempDir dir;
    auto wav = MakeFinished(dir, 8);
    // Reference bytes, encoded separately: MP3 encoding is deterministic.
    TempDir other;
    EncodeFile(wav, other / "ref.mp3", Format::kMp3);
    const std::string reference = testing::ReadBytes(other / "ref.mp3");

    std::vector<std::filesystem::path> results(6);
    std::vector<std::thread> threads;
    for (size_t i = 0; i < results.size(); ++i) {
        threads.emplace_back([&, i] { results[i] = Transcode(wav, "mp3", dir.path()); });
    }
    for (auto& t : threads) t.join();
    for (const auto& r : results) EXPECT_EQ(r, dir / "output_fixed.mp3");
    EXPECT_TRUE(testing::ReadBytes(dir / "output_fixed.mp3") == reference)
        << "concurrent encoding produced different bytes";
    EXPECT_EQ(Listing(dir.path()),
              (std::vector<std::string>{"output_fixed.mp3", "output_fixed.wav"}));
}

TEST(Transcode, BadRequestsFailClearlyAndWriteNothing) {
    TempDir dir;
    auto wav = MakeFinished(dir);
    { std::ofstream(dir / "broken.wav") << "this is not audio"; }
    struct Case {
        const char* id;
        std::filesystem::path wav;
        std::string format;
        core::ErrorCode code;
        const char* expect;
    };
    const std::vector<Case> cases = {
        {"T1", wav, "ogg", core::ErrorCode::kInvalidInput, "unknown format 'ogg'"},
        {"T2", wav, "", core::ErrorCode::kInvalidInput, "unknown format ''"},
        {"T3", dir / "missing.wav", "mp3", core::ErrorCode::kNotFound, "does not exist"},
        {"T4", dir / "broken.wav", "flac", core::ErrorCode::kInternal, "cannot read"},
    };
    for (const Case& c : cases) {
        auto e = TranscodeError(c.wav, c.format, dir.path());
        EXPECT_EQ(e.code(), c.code) << c.id << ": " << e.what();
        EXPECT_NE(std::string(e.what()).find(c.expect), std::string::npos)
            << c.id << ": " << e.what();
    }
    EXPECT_EQ(Listing(dir.path()), (std::vector<std::string>{"broken.wav", "output_fixed.wav"}));
    // A cache folder that does not exist: a clear error, not a crash.
    auto e = TranscodeError(wav, "flac", dir / "nope");
    EXPECT_EQ(e.code(), core::ErrorCode::kInternal);
    EXPECT_NE(std::string(e.what()).find("cannot create"), std::string::npos) << e.what();
}

}  // namespace
}  // namespace songd::audio
