// Audio tests of the synth engine: render real songs with stems and measure them with
// tools no one here wrote — aubio's pitch, beat and onset trackers and sox — against what
// the engine says it intended (vocal_notes.csv, synth_plan.json) and what the LRC says.

#include <gtest/gtest.h>
#include <sndfile.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <cmath>
#include <cstdio>
#include <fstream>
#include <map>
#include <memory>
#include <regex>
#include <sstream>

#include "engine/lrc.h"
#include "engine/synth/synth_engine.h"

namespace songd::engine::synth {
namespace {

std::string ReadAll(const std::filesystem::path& p) {
    std::ifstream in(p, std::ios::binary);
    std::stringstream s;
    s << in.rdbuf();
    return s.str();
}

/// Runs a shell command and returns its standard output; fails the test on a non-zero exit.
std::string Run(const std::string& command) {
    std::unique_ptr<FILE, int (*)(FILE*)> pipe(popen(command.c_str(), "r"), pclose);
    EXPECT_TRUE(pipe) << command;
    if (!pipe) return {};
    std::string out;
    std::array<char, 4096> buf;
    size_t n;
    while ((n = fread(buf.data(), 1, buf.size(), pipe.get())) > 0) out.append(buf.data(), n);
    const int status = pclose(pipe.release());
    EXPECT_EQ(status, 0) << command;
    return out;
}

/// @brief A song rendered with stems into its own folder.
struct Rendered {
    std::filesystem::path dir;
    std::string lyrics;
    int length = 95;
};

Rendered RenderWithStems(const std::string& name, const std::string& lrc_file,
                         const std::string& style, uint64_t seed, int length = 95) {
    Rendered r;
    r.dir = std::filesystem::path(::testing::TempDir()) /
            ("synth_audio_" + name + "_" + std::to_string(getpid()));
    std::filesystem::remove_all(r.dir);
    std::filesystem::create_directories(r.dir);
    r.lyrics = ReadAll(std::filesystem::path(SONGD_AUDIO_FIXTURES) / lrc_file);
    r.length = length;
    RenderRequest request;
    request.job_id = name;
    request.lyrics = r.lyrics;
    request.style_prompt = style;
    request.audio_length = length;
    request.seed = seed;
    request.work_dir = r.dir;
    request.write_stems = true;
    SynthEngine engine;
    CancelToken cancel;
    engine.Render(request, nullptr, cancel);
    return r;
}

/// sox's RMS level (dB) of [from, to) seconds of a file; -inf for digital silence.
double SoxRmsDb(const std::filesystem::path& wav, double from, double to) {
    char trim[96];
    std::snprintf(trim, sizeof trim, " trim %.3f =%.3f", from, to);
    const std::string out = Run("sox '" + wav.string() + "' -n" + trim + " stats 2>&1");
    std::smatch m;
    static const std::regex kRms(R"(RMS lev dB\s+(\S+))");
    EXPECT_TRUE(std::regex_search(out, m, kRms)) << out;
    if (m.empty()) return 0;
    const std::string v = m[1];
    return v.find("inf") != std::string::npos ? -INFINITY : std::stod(v);
}

/// Energy-weighted mean level of several segments, in dB (floor -200 for silence).
double MeanLevelDb(const std::filesystem::path& wav,
                   const std::vector<std::pair<double, double>>& segs) {
    double energy = 0, seconds = 0;
    for (const auto& [a, b] : segs) {
        const double db = SoxRmsDb(wav, a, b);
        if (std::isfinite(db)) energy += std::pow(10.0, db / 10.0) * (b - a);
        seconds += b - a;
    }
    return energy > 0 ? 10 * std::log10(energy / seconds) : -200.0;
}

struct IntendedNote {
    double start, end;
    int midi;
};

std::vector<IntendedNote> ReadNotes(const std::filesystem::path& csv) {
    std::vector<IntendedNote> notes;
    std::istringstream in(ReadAll(csv));
    std::string line;
    std::getline(in, line);  // header
    while (std::getline(in, line)) {
        int l, s, midi;
        double a, b, vowel, hz;
        if (std::sscanf(line.c_str(), "%d,%d,%lf,%lf,%lf,%d,%lf", &l, &s, &a, &b, &vowel, &midi,
                        &hz) == 7) {
            notes.push_back({a, b, midi});
        }
    }
    return notes;
}

double PlanNumber(const std::string& json, const std::string& key) {
    std::smatch m;
    const std::regex re("\"" + key + "\": (-?[0-9.]+)");
    EXPECT_TRUE(std::regex_search(json, m, re)) << key;
    return m.empty() ? 0 : std::stod(m[1]);
}

std::string PlanString(const std::string& json, const std::string& key) {
    std::smatch m;
    const std::regex re("\"" + key + "\": \"([^\"]*)\"");
    EXPECT_TRUE(std::regex_search(json, m, re)) << key;
    return m.empty() ? "" : std::string(m[1]);
}

/// @brief What aubiopitch found on the vocal stem, compared with the intended notes.
struct PitchReport {
    int voiced = 0;
    int in_tune = 0;
    double Fraction() const { return voiced ? static_cast<double>(in_tune) / voiced : 0; }
};

PitchReport TrackPitch(const Rendered& r) {
    const auto notes = ReadNotes(r.dir / "vocal_notes.csv");
    EXPECT_GT(notes.size(), 20u);
    std::istringstream out(
        Run("aubiopitch -i '" + (r.dir / "vocals.wav").string() + "' 2>/dev/null"));
    PitchReport report;
    double t, f;
    std::string line;
    while (std::getline(out, line)) {
        if (std::sscanf(line.c_str(), "%lf %lf", &t, &f) != 2 || f <= 0) continue;
        ++report.voiced;
        auto it =
            std::upper_bound(notes.begin(), notes.end(), t,
                             [](double time, const IntendedNote& n) { return time < n.start; });
        if (it == notes.begin()) continue;  // voiced but no note: counts against us
        --it;
        if (t >= it->end) continue;
        const double cents = 1200 * std::log2(f / (440.0 * std::exp2((it->midi - 69) / 12.0)));
        if (std::abs(cents) <= 50) ++report.in_tune;
    }
    return report;
}

struct VocalCase {
    const char* id;
    const char* lrc;
    const char* style;
    uint64_t seed;
};

void PrintTo(const VocalCase& c, std::ostream* os) { *os << c.id; }

class VocalStemTest : public ::testing::TestWithParam<VocalCase> {};

TEST_P(VocalStemTest, VocalsAreLoudDuringLinesSilentInGapsAndInTune) {
    const VocalCase& c = GetParam();
    const Rendered r = RenderWithStems(c.id, c.lrc, c.style, c.seed);
    const auto lines = ParseLrc(r.lyrics, r.length);
    ASSERT_GE(lines.size(), 4u);
    const double end = static_cast<double>(TargetFrames(r.length)) / 44100;
    // From the LRC alone: each line's first 2.5 s is singing; the intro before the first
    // line, pauses of more than 12 s between lines (after their first 10 s) and the time
    // from 10 s after the last line are instrumental.
    std::vector<std::pair<double, double>> sung, gaps;
    gaps.push_back({0.0, lines.front().time_ms / 1000.0 - 0.3});
    for (size_t i = 0; i < lines.size(); ++i) {
        const double t = lines[i].time_ms / 1000.0;
        const double next = i + 1 < lines.size() ? lines[i + 1].time_ms / 1000.0 : end;
        sung.push_back({t, std::min(next, t + 2.5)});
        if (i + 1 < lines.size() && next - t > 12) gaps.push_back({t + 10, next - 0.3});
    }
    gaps.push_back({lines.back().time_ms / 1000.0 + 10, end});
    const auto vocals = r.dir / "vocals.wav";
    const double sung_db = MeanLevelDb(vocals, sung);
    const double gap_db = MeanLevelDb(vocals, gaps);
    RecordProperty("sung_db", std::to_string(sung_db));
    RecordProperty("gap_db", std::to_string(gap_db));
    EXPECT_GT(sung_db, -35.0) << "the vocals are too quiet to be there";
    EXPECT_GE(sung_db - gap_db, 12.0) << "sung " << sung_db << " dB, gaps " << gap_db << " dB";

    const PitchReport pitch = TrackPitch(r);
    RecordProperty("in_tune_fraction", std::to_string(pitch.Fraction()));
    EXPECT_GT(pitch.voiced, 1000);
    EXPECT_GE(pitch.Fraction(), 0.70)
        << pitch.in_tune << " of " << pitch.voiced << " voiced frames within 50 cents";
    std::printf("[%s] sung %.1f dB, gaps %.1f dB, in tune %d/%d = %.1f%%\n", c.id, sung_db, gap_db,
                pitch.in_tune, pitch.voiced, 100 * pitch.Fraction());
}

INSTANTIATE_TEST_SUITE_P(
    Songs, VocalStemTest,
    ::testing::Values(VocalCase{"english_pop", "example.lrc", "uplifting pop", 1},
                      VocalCase{"english_ballad", "example.lrc", "sad slow piano ballad", 2},
                      VocalCase{"english_edm", "example.lrc", "energetic EDM", 3},
                      VocalCase{"chinese_folk", "zh.lrc", "民谣 吉他 温暖", 4},
                      VocalCase{"male_rock", "example.lrc", "rock with a male singer", 5}),
    [](const auto& info) { return std::string(info.param.id); });

/// Tempo from aubiotrack's beats: 60 / median inter-beat interval.
double MeasuredTempo(const std::filesystem::path& wav) {
    std::istringstream out(Run("aubiotrack -i '" + wav.string() + "' 2>/dev/null"));
    std::vector<double> beats;
    double t;
    while (out >> t) beats.push_back(t);
    std::vector<double> ioi;
    for (size_t i = 1; i < beats.size(); ++i) ioi.push_back(beats[i] - beats[i - 1]);
    if (ioi.empty()) return 0;
    std::nth_element(ioi.begin(), ioi.begin() + static_cast<std::ptrdiff_t>(ioi.size() / 2),
                     ioi.end());
    return 60.0 / ioi[ioi.size() / 2];
}

/// Onsets per second from aubioonset.
double OnsetRate(const std::filesystem::path& wav, double seconds) {
    std::istringstream out(Run("aubioonset -i '" + wav.string() + "' 2>/dev/null"));
    int n = 0;
    double t;
    while (out >> t) ++n;
    return n / seconds;
}

/// @brief Key estimate: chroma from Goertzel filters on a downmix, correlated with the
/// Krumhansl–Kessler major and minor key profiles.
struct KeyEstimate {
    int tonic = 0;
    bool minor = false;
};

KeyEstimate EstimateKey(const std::filesystem::path& wav) {
    SF_INFO info{};
    std::unique_ptr<SNDFILE, int (*)(SNDFILE*)> f(sf_open(wav.c_str(), SFM_READ, &info), sf_close);
    EXPECT_TRUE(f);
    std::vector<float> all(static_cast<size_t>(info.frames * info.channels));
    sf_readf_float(f.get(), all.data(), info.frames);
    // Mono, decimated by 4 (to 11025 Hz) with a 4-sample average: plenty for notes below 1.4 kHz.
    std::vector<double> x;
    for (sf_count_t i = 0; i + 4 <= info.frames; i += 4) {
        double acc = 0;
        for (int k = 0; k < 4; ++k) {
            for (int c = 0; c < info.channels; ++c)
                acc += all[static_cast<size_t>((i + k) * info.channels + c)];
        }
        x.push_back(acc);
    }
    const double rate = info.samplerate / 4.0;
    std::array<double, 12> chroma{};
    const size_t frame = 4096;
    for (size_t start = 0; start + frame <= x.size(); start += frame) {
        for (int midi = 40; midi <= 88; ++midi) {
            const double w = 2 * M_PI * 440.0 * std::exp2((midi - 69) / 12.0) / rate;
            const double coeff = 2 * std::cos(w);
            double s1 = 0, s2 = 0;
            for (size_t i = 0; i < frame; ++i) {
                const double hann = 0.5 - 0.5 * std::cos(2 * M_PI * i / frame);
                const double s0 = x[start + i] * hann + coeff * s1 - s2;
                s2 = s1;
                s1 = s0;
            }
            chroma[static_cast<size_t>(midi % 12)] +=
                std::sqrt(std::max(0.0, s1 * s1 + s2 * s2 - coeff * s1 * s2));
        }
    }
    static constexpr double kMajor[12] = {6.35, 2.23, 3.48, 2.33, 4.38, 4.09,
                                          2.52, 5.19, 2.39, 3.66, 2.29, 2.88};
    static constexpr double kMinor[12] = {6.33, 2.68, 3.52, 5.38, 2.60, 3.53,
                                          2.54, 4.75, 3.98, 2.69, 3.34, 3.17};
    auto correlate = [&](const double* profile, int tonic) {
        double mc = 0, mp = 0;
        for (int i = 0; i < 12; ++i) {
            mc += chroma[static_cast<size_t>(i)] / 12;
            mp += profile[i] / 12;
        }
        double num = 0, dc = 0, dp = 0;
        for (int i = 0; i < 12; ++i) {
            const double a = chroma[static_cast<size_t>((tonic + i) % 12)] - mc,
                         b = profile[i] - mp;
            num += a * b;
            dc += a * a;
            dp += b * b;
        }
        return num / std::sqrt(dc * dp + 1e-30);
    };
    KeyEstimate best;
    double best_r = -2;
    for (int tonic = 0; tonic < 12; ++tonic) {
        for (bool minor : {false, true}) {
            const double rr = correlate(minor ? kMinor : kMajor, tonic);
            if (rr > best_r) {
                best_r = rr;
                best = {tonic, minor};
            }
        }
    }
    return best;
}

TEST(StyleAudioTest, BalladAndEdmDifferInTempoModeAndInstruments) {
    const Rendered ballad = RenderWithStems("ballad", "example.lrc", "sad slow piano ballad", 11);
    const Rendered edm = RenderWithStems("edm", "example.lrc", "energetic EDM", 11);
    const std::string ballad_plan = ReadAll(ballad.dir / "synth_plan.json");
    const std::string edm_plan = ReadAll(edm.dir / "synth_plan.json");
    const double seconds = static_cast<double>(TargetFrames(95)) / 44100;

    // Intended: a slow minor piano ballad; a fast major EDM track on synths and a drum machine.
    const double ballad_bpm = PlanNumber(ballad_plan, "bpm"), edm_bpm = PlanNumber(edm_plan, "bpm");
    EXPECT_LE(ballad_bpm, 70);
    EXPECT_GE(edm_bpm, 120);
    EXPECT_EQ(PlanString(ballad_plan, "mode"), "minor");
    EXPECT_EQ(PlanString(edm_plan, "mode"), "major");
    EXPECT_EQ(PlanNumber(ballad_plan, "chords"), 0);  // acoustic grand piano
    EXPECT_EQ(PlanNumber(edm_plan, "chords"), 81);    // saw lead
    EXPECT_EQ(PlanNumber(edm_plan, "drum_kit"), 25);  // TR-808 style kit

    // Measured: the beat tracker finds each plan's tempo (a tracker may lock on to double or
    // half time, so the closest of t, 2t, t/2 is compared), within 5%.
    for (const auto* song : {&ballad, &edm}) {
        const double planned = song == &ballad ? ballad_bpm : edm_bpm;
        const double measured = MeasuredTempo(song->dir / "raw.wav");
        double folded = measured;
        for (double candidate : {measured / 2, measured * 2}) {
            if (std::abs(candidate - planned) < std::abs(folded - planned)) folded = candidate;
        }
        std::printf("tempo planned %.0f measured %.1f (folded %.1f)\n", planned, measured, folded);
        EXPECT_NEAR(folded, planned, planned * 0.05) << song->dir;
    }
    // Measured: EDM is busier.
    const double ballad_onsets = OnsetRate(ballad.dir / "band.wav", seconds);
    const double edm_onsets = OnsetRate(edm.dir / "band.wav", seconds);
    std::printf("onsets per second: ballad %.2f, edm %.2f\n", ballad_onsets, edm_onsets);
    EXPECT_GT(edm_onsets, ballad_onsets * 1.3);
    // Measured: the band's key and mode are the plan's.
    for (const auto* song : {&ballad, &edm}) {
        const std::string& plan = song == &ballad ? ballad_plan : edm_plan;
        const KeyEstimate key = EstimateKey(song->dir / "band.wav");
        std::printf("key planned %d %s, measured %d %s\n",
                    static_cast<int>(PlanNumber(plan, "key_pitch_class")),
                    PlanString(plan, "mode").c_str(), key.tonic, key.minor ? "minor" : "major");
        EXPECT_EQ(key.minor, PlanString(plan, "mode") == "minor") << song->dir;
        EXPECT_EQ(key.tonic, static_cast<int>(PlanNumber(plan, "key_pitch_class"))) << song->dir;
    }
}

}  // namespace
}  // namespace songd::engine::synth
