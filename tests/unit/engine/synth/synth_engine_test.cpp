#include "engine/synth/synth_engine.h"

#include <gtest/gtest.h>
#include <sndfile.h>
#include <unistd.h>

#include <cmath>
#include <fstream>
#include <sstream>
#include <thread>

#include "core/error.h"
#include "engine/synth/rng.h"

namespace songd::engine::synth {
namespace {

const char* kLyrics =
    "[ti:test]\n"
    "[00:04.00]Paper boats are sailing down the river\n"
    "[00:08.50]Carry all the words I never said\n"
    "[00:13.00]Sail away, sail away\n"
    "[00:17.00]Sail away, sail away\n"
    "[00:30.00]月亮照在小河上\n"
    "[00:34.50]Sail away, sail away\n";

/// @brief A fresh folder under the test temp dir, removed afterwards.
class TempDir {
  public:
    explicit TempDir(const std::string& name)
        // The process id keeps two test runs at once (ctest -j, a sanitizer build) apart.
        : path_(std::filesystem::path(::testing::TempDir()) /
                ("synth_" + name + "_" + std::to_string(getpid()))) {
        std::filesystem::remove_all(path_);
        std::filesystem::create_directories(path_);
    }
    ~TempDir() { std::filesystem::remove_all(path_); }
    const std::filesystem::path& path() const { return path_; }

  private:
    std::filesystem::path path_;
};

RenderRequest Request(const std::filesystem::path& dir, uint64_t seed, int length = 95) {
    RenderRequest r;
    r.job_id = "test";
    r.lyrics = kLyrics;
    r.style_prompt = "uplifting pop with piano";
    r.audio_length = length;
    r.seed = seed;
    r.work_dir = dir;
    return r;
}

std::string ReadAll(const std::filesystem::path& p) {
    std::ifstream in(p, std::ios::binary);
    std::stringstream s;
    s << in.rdbuf();
    return s.str();
}

/// Byte offset of the first difference, or -1 when the files are identical. (Comparing
/// 30 MB strings with EXPECT_EQ would make the failure message unprintable.)
int64_t FirstDifference(const std::filesystem::path& a, const std::filesystem::path& b) {
    const std::string x = ReadAll(a), y = ReadAll(b);
    const size_t n = std::min(x.size(), y.size());
    for (size_t i = 0; i < n; ++i) {
        if (x[i] != y[i]) return static_cast<int64_t>(i);
    }
    return x.size() == y.size() ? -1 : static_cast<int64_t>(n);
}

struct WavInfo {
    int64_t frames = 0;
    int channels = 0;
    int rate = 0;
    int format = 0;
    float peak = 0;
    bool finite = true;
};

WavInfo Inspect(const std::filesystem::path& p) {
    SF_INFO info{};
    std::unique_ptr<SNDFILE, int (*)(SNDFILE*)> f(sf_open(p.c_str(), SFM_READ, &info), sf_close);
    EXPECT_TRUE(f) << p;
    WavInfo w;
    if (!f) return w;
    w.frames = info.frames;
    w.channels = info.channels;
    w.rate = info.samplerate;
    w.format = info.format;
    std::vector<float> buf(8192 * static_cast<size_t>(info.channels));
    sf_count_t n;
    while ((n = sf_readf_float(f.get(), buf.data(), 8192)) > 0) {
        for (sf_count_t i = 0; i < n * info.channels; ++i) {
            const float v = buf[static_cast<size_t>(i)];
            w.finite = w.finite && std::isfinite(v);
            w.peak = std::max(w.peak, std::abs(v));
        }
    }
    return w;
}

TEST(SynthEngineTest, ExactLengthSameSeedIdenticalOtherSeedDifferent) {
    TempDir a("a"), b("b"), c("c");
    SynthEngine engine;
    CancelToken cancel;
    std::vector<int> progress;
    const auto pa = engine.Render(
        Request(a.path(), 42), [&](int p) { progress.push_back(p); }, cancel);
    const auto pb = engine.Render(Request(b.path(), 42), nullptr, cancel);
    const auto pc = engine.Render(Request(c.path(), 43), nullptr, cancel);
    const WavInfo w = Inspect(pa);
    EXPECT_EQ(w.frames, 2048 * 2048);
    EXPECT_EQ(w.channels, 2);
    EXPECT_EQ(w.rate, 44100);
    EXPECT_EQ(w.format, SF_FORMAT_WAV | SF_FORMAT_FLOAT);
    EXPECT_TRUE(w.finite);
    EXPECT_LE(w.peak, 0.8913f);  // -1 dBFS
    EXPECT_GT(w.peak, 0.5f);
    EXPECT_EQ(FirstDifference(pa, pb), -1);
    EXPECT_NE(FirstDifference(pa, pc), -1);
    // Progress: many steps, never backwards, ending at 100.
    ASSERT_GE(progress.size(), 20u);
    for (size_t i = 1; i < progress.size(); ++i) EXPECT_GT(progress[i], progress[i - 1]);
    EXPECT_EQ(progress.back(), 100);
    EXPECT_FALSE(std::filesystem::exists(a.path() / "vocals.wav"));
}

TEST(SynthEngineTest, ConcurrentRendersAreIndependent) {
    // Two workers rendering at once (as the service does) must not disturb each other:
    // both give the file a render alone gives.
    TempDir a("par_a"), b("par_b"), alone("par_alone");
    SynthEngine engine;
    CancelToken cancel;
    const auto reference = engine.Render(Request(alone.path(), 9), nullptr, cancel);
    std::filesystem::path pa, pb;
    std::thread ta([&] { pa = engine.Render(Request(a.path(), 9), nullptr, cancel); });
    std::thread tb([&] { pb = engine.Render(Request(b.path(), 9), nullptr, cancel); });
    ta.join();
    tb.join();
    EXPECT_EQ(FirstDifference(pa, reference), -1);
    EXPECT_EQ(FirstDifference(pb, reference), -1);
}

TEST(SynthEngineTest, LengthsOtherThan95FollowTheFormula) {
    for (int length : {96, 137}) {
        TempDir d("len" + std::to_string(length));
        SynthEngine engine;
        CancelToken cancel;
        const auto p = engine.Render(Request(d.path(), 1, length), nullptr, cancel);
        EXPECT_EQ(Inspect(p).frames, static_cast<int64_t>(length) * 44100 / 2048 * 2048) << length;
    }
}

TEST(SynthEngineTest, StemsAndSidecarsWhenAsked) {
    TempDir d("stems");
    SynthEngine engine;
    CancelToken cancel;
    auto r = Request(d.path(), 5);
    r.write_stems = true;
    engine.Render(r, nullptr, cancel);
    const WavInfo v = Inspect(d.path() / "vocals.wav");
    EXPECT_EQ(v.frames, 2048 * 2048);
    EXPECT_EQ(v.channels, 1);
    EXPECT_GT(v.peak, 0.05f);
    EXPECT_EQ(Inspect(d.path() / "band.wav").channels, 2);
    const std::string csv = ReadAll(d.path() / "vocal_notes.csv");
    EXPECT_EQ(csv.rfind("line,syllable,start_s,end_s,vowel_s,midi,hz\n", 0), 0u);
    EXPECT_GT(std::count(csv.begin(), csv.end(), '\n'), 30);
    // The first syllable's vowel is on the line's timestamp; its consonants may come early.
    double start = 0, end = 0, vowel = 0;
    ASSERT_EQ(
        std::sscanf(csv.c_str() + csv.find("\n0,0,") + 5, "%lf,%lf,%lf", &start, &end, &vowel), 3);
    EXPECT_DOUBLE_EQ(vowel, 4.0);
    EXPECT_LE(start, 4.0);
    EXPECT_GE(start, 4.0 - 0.121);
    EXPECT_GT(end, 4.0);
    const std::string plan = ReadAll(d.path() / "synth_plan.json");
    EXPECT_NE(plan.find("\"mode\": \"major\""), std::string::npos);
    EXPECT_NE(plan.find("\"chords\": 0"), std::string::npos);
}

TEST(SynthEngineTest, BadLyricsAreRejectedAndNothingIsWritten) {
    TempDir d("bad");
    SynthEngine engine;
    CancelToken cancel;
    auto r = Request(d.path(), 1);
    r.lyrics = "[00:10.00]hello\n[01:40.00]after the end\n";
    try {
        engine.Render(r, nullptr, cancel);
        FAIL() << "expected an error";
    } catch (const core::Error& e) {
        EXPECT_EQ(e.code(), core::ErrorCode::kInvalidInput);
        EXPECT_NE(std::string(e.what()).find("line 2"), std::string::npos) << e.what();
    }
    EXPECT_TRUE(std::filesystem::is_empty(d.path()));
}

TEST(SynthEngineTest, CancellationStopsTheRender) {
    TempDir d("cancel");
    SynthEngine engine;
    CancelToken cancel;
    try {
        engine.Render(
            Request(d.path(), 1),
            [&](int p) {
                if (p >= 50) cancel.Cancel();
            },
            cancel);
        FAIL() << "expected the render to stop";
    } catch (const core::Error& e) {
        EXPECT_EQ(e.code(), core::ErrorCode::kRenderFailed);
    }
    EXPECT_FALSE(std::filesystem::exists(d.path() / "raw.wav"));
    CancelToken expired(CancelToken::Clock::now() - std::chrono::seconds(1));
    try {
        engine.Render(Request(d.path(), 1), nullptr, expired);
        FAIL() << "expected a timeout";
    } catch (const core::Error& e) {
        EXPECT_EQ(e.code(), core::ErrorCode::kTimeout);
    }
}

TEST(SynthEngineTest, MissingSoundFontIsAClearError) {
    TempDir d("nosf");
    SynthEngine engine("/nonexistent/font.sf2");
    CancelToken cancel;
    try {
        engine.Render(Request(d.path(), 1), nullptr, cancel);
        FAIL() << "expected an error";
    } catch (const core::Error& e) {
        EXPECT_EQ(e.code(), core::ErrorCode::kRenderFailed);
        EXPECT_NE(std::string(e.what()).find("/nonexistent/font.sf2"), std::string::npos);
    }
}

// Property: any valid LRC with any prompt renders a finite song of the exact length.
std::string RandomText(Rng& rng) {
    static const std::vector<std::string> kPieces = {
        "love",   "night",      "a",       "I",     "strengths", "rhythm", "月亮", "我们",  "啦",
        "Привет", "こんにちは", "안녕",    "ñandú", "été",       "42",     "x",    "ok!",   "...",
        "—",      "🎵",          "tschüss", "Ωmega", "hmm",       "shh",    "brrr", "aeiou", "Zzz"};
    std::string text;
    const int words = rng.Range(1, 14);
    for (int w = 0; w < words; ++w) text += (w ? " " : "") + rng.Pick(kPieces);
    return text + " la";  // every timed line needs a letter
}

std::string RandomLrc(Rng& rng, int length) {
    std::ostringstream lrc;
    const int lines = rng.Range(0, 3) == 0 ? rng.Range(40, 300) : rng.Range(1, 20);
    std::vector<int64_t> times;
    for (int i = 0; i < lines; ++i) times.push_back(rng.Range(0, length * 1000 - 1));
    if (rng.Chance(0.3)) times.push_back(0);
    if (rng.Chance(0.3)) times.push_back(length * 1000 - 10);
    for (int64_t t : times) {
        char tag[32];
        std::snprintf(tag, sizeof tag, "[%02lld:%02lld.%02lld]", static_cast<long long>(t / 60000),
                      static_cast<long long>(t / 1000 % 60), static_cast<long long>(t / 10 % 100));
        lrc << tag;
        std::string text = RandomText(rng);
        if (text.size() > 290) text.resize(290);
        while (!text.empty() && (static_cast<unsigned char>(text.back()) & 0xc0) == 0x80)
            text.pop_back();
        while (!text.empty() && static_cast<unsigned char>(text.back()) >= 0xc0) text.pop_back();
        lrc << text << " la\n";
        if (rng.Chance(0.1)) lrc << "\n[ar:someone]\n";
    }
    return lrc.str();
}

TEST(SynthEnginePropertyTest, RandomValidInputsRenderFiniteSongsOfExactLength) {
    static const std::vector<std::string> kPrompts = {
        "",
        "sad slow piano ballad",
        "energetic EDM",
        "jazz",
        "metal 金属 激情",
        "calm ambient strings",
        "lo-fi hip hop",
        "country fiddle",
        "r&b soul",
        "classical orchestral harp",
        "🎸🎸🎸",
        "folk 民谣 女声",
        "rock male guitar drums bass sax flute trumpet organ"};
    Rng rng(20240601);
    for (int iteration = 0; iteration < 6; ++iteration) {
        const int length = iteration % 3 == 0 ? 95 : rng.Range(96, 140);
        TempDir d("prop" + std::to_string(iteration));
        RenderRequest r;
        r.lyrics = RandomLrc(rng, length);
        r.style_prompt = rng.Pick(kPrompts);
        r.audio_length = length;
        r.seed = rng.Next();
        r.work_dir = d.path();
        r.write_stems = iteration % 2 == 0;
        SynthEngine engine;
        CancelToken cancel;
        std::filesystem::path p;
        ASSERT_NO_THROW(p = engine.Render(r, nullptr, cancel))
            << "prompt: " << r.style_prompt << "\nlyrics:\n"
            << r.lyrics;
        const WavInfo w = Inspect(p);
        EXPECT_EQ(w.frames, TargetFrames(length));
        EXPECT_TRUE(w.finite);
        EXPECT_LE(w.peak, 0.8913f);
    }
}

}  // namespace
}  // namespace songd::engine::synth
