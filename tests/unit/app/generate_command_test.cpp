#include "app/generate_command.h"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>

#include <chrono>
#include <cmath>
#include <sstream>
#include <thread>

#include "../audio/audio_test_util.h"
#include "engine/engine.h"
#include "engine/lrc.h"
#include "engine/lyric_layout.h"

namespace songd::app {
namespace {

using audio::testing::TempDir;

constexpr const char* kLyrics =
    "[ti:Test song]\n"
    "[00:04.00]Hello world, this is a song\n"
    "[00:10.50]Singing on the timestamps\n"
    "[00:18.00]Hello world, this is a song\n";

/// @brief One run of RunGenerate with captured output.
struct Outcome {
    int code;
    std::string out;
    std::string err;
};

Outcome Generate(const GenerateOptions& options, core::Config config = {}, bool terminal = false) {
    config.engine = "tone";
    std::ostringstream out, err;
    int code = RunGenerate(options, config, GenerateStreams{out, err, terminal});
    return {code, out.str(), err.str()};
}

GenerateOptions Options(const TempDir& dir, const std::string& output) {
    { std::ofstream(dir / "song.lrc") << kLyrics; }
    GenerateOptions o;
    o.lyrics = dir / "song.lrc";
    o.style = "happy pop with piano";
    o.seed = 11;
    o.output = dir / output;
    return o;
}

TEST(GenerateCommand, WritesExactlyTheSpecifiedSampleCount) {
    TempDir dir;
    auto o = Options(dir, "song.wav");
    Outcome r = Generate(o);
    ASSERT_EQ(r.code, 0) << r.err;
    auto d = audio::testing::ReadAudio(o.output);
    EXPECT_EQ(d.info.frames, 2048 * 2048);  // 95 s, as DiffRhythm produces it
    EXPECT_EQ(d.info.samplerate, 44100);
    EXPECT_EQ(d.info.channels, 2);
    EXPECT_NE(r.out.find("wrote " + o.output.string()), std::string::npos) << r.out;
    EXPECT_NE(r.out.find("seed 11"), std::string::npos) << r.out;

    o.length = 120;
    o.output = dir / "song120.wav";
    r = Generate(o);
    ASSERT_EQ(r.code, 0) << r.err;
    EXPECT_EQ(audio::testing::ReadAudio(o.output).info.frames, 120 * 44100 / 2048 * 2048);
}

TEST(GenerateCommand, SameSeedSameBytesOtherSeedOtherBytes) {
    TempDir dir;
    auto o = Options(dir, "a.wav");
    ASSERT_EQ(Generate(o).code, 0);
    o.output = dir / "b.wav";
    ASSERT_EQ(Generate(o).code, 0);
    o.seed = 12;
    o.output = dir / "c.wav";
    ASSERT_EQ(Generate(o).code, 0);
    const std::string a = audio::testing::ReadBytes(dir / "a.wav");
    EXPECT_TRUE(a == audio::testing::ReadBytes(dir / "b.wav")) << "same seed, different bytes";
    EXPECT_FALSE(a == audio::testing::ReadBytes(dir / "c.wav")) << "another seed, same bytes";
}

TEST(GenerateCommand, ReportsProgressAsLinesOrABar) {
    TempDir dir;
    auto o = Options(dir, "song.wav");
    Outcome plain = Generate(o);
    ASSERT_EQ(plain.code, 0) << plain.err;
    // Plain lines with intermediate percentages, not just the start and the end.
    int intermediate = 0;
    std::istringstream lines(plain.err);
    for (std::string line; std::getline(lines, line);) {
        EXPECT_EQ(line.find('\r'), std::string::npos) << "a bar on a non-terminal: " << line;
        int pct = -1;
        if (std::sscanf(line.c_str(), "progress %d%%", &pct) == 1 && pct > 0 && pct < 100)
            ++intermediate;
    }
    EXPECT_GE(intermediate, 5) << plain.err;
    EXPECT_NE(plain.err.find("progress 100% done"), std::string::npos) << plain.err;

    o.output = dir / "bar.wav";
    Outcome bar = Generate(o, {}, true);
    ASSERT_EQ(bar.code, 0) << bar.err;
    EXPECT_NE(bar.err.find("\r["), std::string::npos) << bar.err;
    EXPECT_NE(bar.err.find("ETA "), std::string::npos) << bar.err;
    EXPECT_NE(bar.err.find("] 100%"), std::string::npos) << bar.err;
}

TEST(GenerateCommand, WritesFlacAndMp3) {
    TempDir dir;
    for (const char* name : {"song.flac", "song.mp3", "SONG.MP3"}) {
        auto o = Options(dir, name);
        Outcome r = Generate(o);
        ASSERT_EQ(r.code, 0) << name << ": " << r.err;
        auto probe = audio::testing::Probe(o.output, "codec_name,sample_rate,channels");
        const std::string codec =
            std::string(name).find("flac") != std::string::npos ? "flac" : "mp3";
        EXPECT_NE(probe.find("codec_name=" + codec), std::string::npos) << name << ": " << probe;
        EXPECT_NE(probe.find("sample_rate=44100"), std::string::npos) << name;
        if (codec == "flac") {
            EXPECT_EQ(audio::testing::ReadAudio(o.output).info.frames, 2048 * 2048);
        }
    }
}

TEST(GenerateCommand, BadInputFailsBeforeRenderingAndWritesNothing) {
    TempDir dir;
    { std::ofstream(dir / "mixed.lrc") << "[00:10.00]fine\njust words, no timestamp\n"; }
    {
        std::ofstream many(dir / "many.txt");
        for (int i = 0; i < 120; ++i) many << "a plain line of words, number " << i << "\n";
    }
    { std::ofstream(dir / "tag.txt") << "[Verse]\nhello there\n[Yodel]\nagain\n"; }
    { std::ofstream(dir / "late.lrc") << "[00:10.00]fine\n[01:40.00]too late for 95 seconds\n"; }
    { std::ofstream(dir / "a-file") << "x"; }
    std::filesystem::create_directory(dir / "a-dir");
    struct Case {
        const char* id;
        std::function<void(GenerateOptions&)> change;
        const char* expect;
    };
    const std::vector<Case> cases = {
        {"G1", [&](auto& o) { o.lyrics = dir / "missing.lrc"; }, "--lyrics: no such file"},
        {"G2", [&](auto& o) { o.lyrics = dir / "mixed.lrc"; }, "mix timed lines (line 1"},
        {"G3", [&](auto& o) { o.lyrics = dir / "late.lrc"; }, "line 2: timestamp [01:40.00]"},
        {"G4", [&](auto& o) { o.length = 94; }, "--length 94 is not allowed; use 95 to 285"},
        {"G5", [&](auto& o) { o.length = 286; }, "--length 286 is not allowed"},
        {"G6", [&](auto& o) { o.output = dir / "song.ogg"; }, "unknown extension '.ogg'"},
        {"G7", [&](auto& o) { o.output = dir / "no-dir" / "song.wav"; }, "does not exist"},
        {"G8", [&](auto& o) { o.output = dir / "a-file" / "song.wav"; }, "does not exist"},
        {"G9", [&](auto& o) { o.output = dir / "a-dir"; }, "is a directory"},
        {"G10", [&](auto& o) { o.style = "  "; }, "--style must not be empty"},
        {"G11", [&](auto& o) { o.master_preset = "medium"; }, "--master-preset 'medium'"},
        {"G12", [&](auto& o) { o.engine = "nope"; }, "ENGINE=nope is not available"},
        {"G13", [&](auto& o) { o.lyrics = dir / "a-dir"; }, "not a regular file"},
        {"G14", [&](auto& o) { o.output = dir / "song"; }, "unknown extension ''"},
        {"G15", [&](auto& o) { o.lyrics = dir / "many.txt"; },
         "the lyrics have 120 lines; at most"},
        {"G16", [&](auto& o) { o.lyrics.clear(); }, "--lyrics is required"},
        {"G17", [&](auto& o) { o.lyrics = dir / "tag.txt"; },
         "line 3: unknown section tag [Yodel]"},
    };
    for (const Case& c : cases) {
        auto o = Options(dir, "song.wav");
        c.change(o);
        Outcome r = Generate(o);
        EXPECT_EQ(r.code, 2) << c.id << ": " << r.err;
        EXPECT_NE(r.err.find(c.expect), std::string::npos) << c.id << ": " << r.err;
        EXPECT_EQ(r.err.find("progress"), std::string::npos) << c.id << " started rendering";
        EXPECT_TRUE(r.out.empty()) << c.id;
    }
    EXPECT_EQ(audio::testing::Listing(dir.path()),
              (std::vector<std::string>{"a-dir", "a-file", "late.lrc", "many.txt", "mixed.lrc",
                                        "song.lrc", "tag.txt"}));
}

TEST(GenerateCommand, PlainLyricsAreTimedAndWrittenWithLrcOut) {
    TempDir dir;
    auto o = Options(dir, "song.wav");
    { std::ofstream(dir / "words.txt") << "[Verse]\nHello world\nSinging without a clock\n"; }
    o.lyrics = dir / "words.txt";
    o.lrc_out = dir / "used.lrc";
    Outcome r = Generate(o);
    ASSERT_EQ(r.code, 0) << r.err;
    const std::string lrc = audio::testing::ReadBytes(o.lrc_out);
    const auto lines = engine::ParseLrc(lrc, 95);
    ASSERT_EQ(lines.size(), 2u) << lrc;
    EXPECT_EQ(lines[1].text, "Singing without a clock");
    // On bars of the tempo the synth plays this style at with this seed.
    const double bar = 4 * 60.0 / engine::SongTempo(o.style, *o.seed);
    for (const auto& line : lines) {
        const double bars = line.time_ms / 1000.0 / bar;
        EXPECT_NEAR(bars, std::round(bars), 0.006 / bar) << lrc;
    }
    // An LRC file is rendered as it is.
    o.lyrics = dir / "song.lrc";
    o.output = dir / "lrc.wav";
    ASSERT_EQ(Generate(o).code, 0);
    EXPECT_EQ(audio::testing::ReadBytes(o.lrc_out), kLyrics);
}

TEST(GenerateCommand, InstrumentalNeedsNoLyrics) {
    TempDir dir;
    auto o = Options(dir, "song.wav");
    o.lyrics.clear();
    o.instrumental = true;
    o.lrc_out = dir / "used.lrc";
    Outcome r = Generate(o);
    ASSERT_EQ(r.code, 0) << r.err;
    EXPECT_NE(r.err.find("instrumental"), std::string::npos) << r.err;
    EXPECT_EQ(audio::testing::ReadBytes(o.lrc_out), "");
    EXPECT_EQ(audio::testing::ReadAudio(o.output).info.frames, 2048 * 2048);
}

TEST(GenerateCommand, EngineFaultsFailWithExitCodeOne) {
    TempDir dir;
    for (const char* fault : {"nan", "silence", "error"}) {
        auto o = Options(dir, "song.wav");
        core::Config config;
        config.tone_fault = fault;
        Outcome r = Generate(o, config);
        EXPECT_EQ(r.code, 1) << fault << ": " << r.err;
        EXPECT_FALSE(std::filesystem::exists(o.output)) << fault;
        const std::string expect = std::string(fault) == "nan"       ? "NaN or infinity"
                                   : std::string(fault) == "silence" ? "silence"
                                                                     : "injected engine fault";
        EXPECT_NE(r.err.find(expect), std::string::npos) << fault << ": " << r.err;
    }
}

/// The songd binary built beside this test binary (build/tests/.. → build/songd).
std::filesystem::path SongdBinary() {
    return std::filesystem::read_symlink("/proc/self/exe").parent_path().parent_path() / "songd";
}

TEST(GenerateCommand, TheBinaryRunsItAndExitsNonZeroOnBadInput) {
    const auto binary = SongdBinary();
    ASSERT_TRUE(std::filesystem::exists(binary)) << "build the songd binary first: " << binary;
    TempDir dir;
    { std::ofstream(dir / "song.lrc") << kLyrics; }
    const std::string base = "cd '" + dir.path().string() + "' && env -i ENGINE=tone '" +
                             binary.string() + "' generate --lyrics song.lrc --style 'calm folk' ";
    auto [bad_code, bad_out] = audio::testing::Run(base + "--length 94 -o out.wav");
    EXPECT_EQ(bad_code, 2) << bad_out;
    EXPECT_NE(bad_out.find("--length 94 is not allowed"), std::string::npos) << bad_out;
    EXPECT_FALSE(std::filesystem::exists(dir / "out.wav"));

    auto [missing_code, missing_out] = audio::testing::Run(base);  // no -o
    EXPECT_NE(missing_code, 0) << missing_out;
    EXPECT_NE(missing_out.find("--output is required"), std::string::npos) << missing_out;

    auto [code, out] = audio::testing::Run(base + "--seed 5 -o out.wav");
    EXPECT_EQ(code, 0) << out;
    EXPECT_NE(out.find("seed 5"), std::string::npos) << out;
    EXPECT_EQ(audio::testing::ReadAudio(dir / "out.wav").info.frames, engine::TargetFrames(95));
}

TEST(GenerateCommand, InterruptStopsTheRenderAndLeavesNothing) {
    const auto binary = SongdBinary();
    ASSERT_TRUE(std::filesystem::exists(binary)) << "build the songd binary first: " << binary;
    TempDir dir, tmp;
    { std::ofstream(dir / "song.lrc") << kLyrics; }
    const std::string err_path = (dir / "stderr.txt").string();
    const std::string out = (dir / "out.mp3").string();
    const std::string lyrics = (dir / "song.lrc").string();
    const std::string tmp_env = "TMPDIR=" + tmp.path().string();
    // The tone engine spread over 60 s: the render is surely in progress when interrupted.
    std::vector<std::string> args = {binary.string(), "generate", "--lyrics", lyrics,
                                     "--style",       "calm",     "-o",       out};
    std::vector<std::string> env = {"ENGINE=tone", "TONE_RENDER_MS=60000", tmp_env};
    std::vector<char*> argv, envp;
    for (auto& a : args) argv.push_back(a.data());
    argv.push_back(nullptr);
    for (auto& e : env) envp.push_back(e.data());
    envp.push_back(nullptr);
    posix_spawn_file_actions_t actions;
    posix_spawn_file_actions_init(&actions);
    posix_spawn_file_actions_addopen(&actions, 2, err_path.c_str(), O_WRONLY | O_CREAT | O_TRUNC,
                                     0644);
    posix_spawn_file_actions_addopen(&actions, 1, "/dev/null", O_WRONLY, 0);
    pid_t pid = 0;
    ASSERT_EQ(posix_spawn(&pid, binary.c_str(), &actions, nullptr, argv.data(), envp.data()), 0);
    posix_spawn_file_actions_destroy(&actions);

    // Wait (with a deadline) until rendering has visibly started, then interrupt once.
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(30);
    bool rendering = false;
    while (!rendering && std::chrono::steady_clock::now() < deadline) {
        rendering = audio::testing::ReadBytes(err_path).find("progress") != std::string::npos;
        if (!rendering) std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
    EXPECT_TRUE(rendering) << audio::testing::ReadBytes(err_path);
    ASSERT_EQ(::kill(pid, SIGINT), 0);
    int status = 0;
    ASSERT_EQ(::waitpid(pid, &status, 0), pid);
    const std::string err = audio::testing::ReadBytes(err_path);
    ASSERT_TRUE(WIFEXITED(status)) << "killed by the signal instead of stopping: " << err;
    EXPECT_EQ(WEXITSTATUS(status), 130) << err;
    EXPECT_NE(err.find("interrupted; nothing was written"), std::string::npos) << err;
    EXPECT_EQ(audio::testing::Listing(dir.path()),
              (std::vector<std::string>{"song.lrc", "stderr.txt"}));
    EXPECT_TRUE(audio::testing::Listing(tmp.path()).empty()) << "work folder left behind";
}

}  // namespace
}  // namespace songd::app
