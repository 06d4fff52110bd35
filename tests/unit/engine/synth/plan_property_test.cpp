// Property test of the planning pipeline (style, rhythm, form, tune, band) over thousands
// of random inputs: cheap enough to run many more cases than full renders can.

#include <gtest/gtest.h>

#include <algorithm>

#include "engine/synth/arrangement.h"
#include "engine/synth/melody.h"
#include "engine/synth/rng.h"

namespace songd::engine::synth {
namespace {

std::string RandomPrompt(Rng& rng) {
    static const std::vector<std::string> kWords = {
        "pop",   "rock",   "jazz",  "classical", "edm",   "hip",   "hop",   "folk",   "ambient",
        "r&b",   "metal",  "lo-fi", "country",   "sad",   "happy", "slow",  "fast",   "calm",
        "piano", "guitar", "sax",   "strings",   "drums", "bass",  "synth", "violin", "harp",
        "摇滚",  "民谣",   "悲伤",  "快乐",      "钢琴",  "鼓",    "女声",  "male",   "x",
        "",      "🎵",      "\xff",  "energetic", "ballad"};
    std::string p;
    const int n = rng.Range(0, 8);
    for (int i = 0; i < n; ++i) p += rng.Pick(kWords) + (rng.Chance(0.8) ? " " : "");
    return p;
}

TEST(PlanPropertyTest, RandomInputsGiveAConsistentPlan) {
    Rng rng(777);
    for (int iteration = 0; iteration < 400; ++iteration) {
        const uint64_t seed = rng.Next();
        const Style style = ParseStyle(RandomPrompt(rng), seed);
        ASSERT_GE(style.bpm, 56);
        ASSERT_LE(style.bpm, 184);
        const double duration = rng.Uniform(95.0, 285.0);
        const int n_lines = rng.Range(0, 3) == 0 ? rng.Range(100, 300) : rng.Range(0, 25);
        std::vector<double> starts;
        for (int i = 0; i < n_lines; ++i) starts.push_back(rng.Uniform(0.0, duration - 0.01));
        std::sort(starts.begin(), starts.end());
        starts.erase(std::unique(starts.begin(), starts.end()), starts.end());
        std::vector<VocalLine> lines;
        for (size_t i = 0; i < starts.size(); ++i) {
            VocalLine line;
            line.start = starts[i];
            const double next = i + 1 < starts.size() ? starts[i + 1] - 0.15 : duration - 1.0;
            line.limit = std::max(line.start, std::min(next, duration - 0.5));
            line.syllables = rng.Range(0, 120);
            line.chorus = rng.Chance(0.4);
            line.text_hash = static_cast<uint64_t>(rng.Range(0, 5));
            lines.push_back(line);
        }
        auto notes = PlanVocalRhythm(lines, style.bpm, seed);
        std::vector<LineSpan> spans;
        for (size_t i = 0; i < lines.size(); ++i) {
            LineSpan span{lines[i].start, lines[i].start + 0.5, lines[i].chorus};
            for (const auto& n : notes) {
                if (n.line == static_cast<int>(i)) span.end = std::max(span.end, n.end);
            }
            spans.push_back(span);
        }
        const Arrangement arrangement = PlanArrangement(style, spans, duration, seed);
        ASSERT_FALSE(arrangement.bars.empty());
        ASSERT_GE(arrangement.bars.back().start + arrangement.bars.back().length, duration);
        const VocalRange range = rng.Chance(0.5) ? VocalRange{57, 74} : VocalRange{48, 65};
        AssignVocalPitches(notes, lines, arrangement, style, range, seed);
        for (size_t i = 0; i < notes.size(); ++i) {
            const VocalNote& n = notes[i];
            const VocalLine& line = lines[static_cast<size_t>(n.line)];
            ASSERT_GE(n.start, line.start - 1e-9);
            ASSERT_LE(n.end, line.limit + 1e-9);
            ASSERT_LT(n.start, n.end);
            ASSERT_GE(n.key, range.lo);
            ASSERT_LE(n.key, range.hi);
            if (n.syllable == 0) {
                ASSERT_DOUBLE_EQ(n.start, line.start);
            }
            if (i > 0) {
                ASSERT_LE(notes[i - 1].end, n.start + 1e-9);
            }
        }
        const Score band = BuildBand(style, arrangement, seed);
        for (const Note& n : band.notes) {
            ASSERT_GE(n.start, 0);
            ASSERT_LE(n.end, duration);
            ASSERT_LT(n.start, n.end);
            ASSERT_GE(n.key, 0);
            ASSERT_LE(n.key, 127);
            ASSERT_GE(n.velocity, 1);
            ASSERT_LE(n.velocity, 127);
        }
    }
}

}  // namespace
}  // namespace songd::engine::synth
