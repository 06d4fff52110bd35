#include "engine/synth/style.h"

#include <gtest/gtest.h>

#include <set>

namespace songd::engine::synth {
namespace {

struct StyleCase {
    const char* id;
    const char* prompt;
    Genre genre;
    int minor;  ///< 1 minor, 0 major, -1 either (seed decides nothing here, genre does)
    double bpm_lo, bpm_hi;
    int chords;  ///< expected chord program, -2 = don't care
    bool drums;
};

// Tempo ranges are each genre's table range with the mood factors applied, written out
// by hand from the design (e.g. ballad 64–76 × 0.85 for "slow").
const StyleCase kCases[] = {
    {"empty", "", Genre::kPop, 0, 96, 118, 0, true},
    {"unknown-words", "purple elephants dancing quietly", Genre::kPop, 0, 96, 118, 0, true},
    {"ballad", "sad slow piano ballad", Genre::kBallad, 1, 56, 65, 0, true},
    {"edm", "energetic EDM", Genre::kElectronic, 0, 129, 136, 81, true},
    {"rock", "Rock", Genre::kRock, 0, 112, 140, 29, true},
    {"jazz", "smooth jazz with saxophone", Genre::kJazz, 0, 100, 140, 0, true},
    {"classical", "classical strings", Genre::kClassical, 0, 72, 96, 48, false},
    {"hiphop", "hip-hop beat", Genre::kHipHop, 1, 84, 96, 4, true},
    {"folk", "acoustic folk guitar", Genre::kFolk, 0, 92, 112, 25, true},
    {"ambient", "calm ambient", Genre::kAmbient, 0, 58, 74, 0, false},
    {"rnb", "R&B love song", Genre::kRnb, 0, 70, 90, 4, true},
    {"metal", "dark metal", Genre::kMetal, 1, 140, 176, 30, true},
    {"energetic-but-sad", "energetic sad rock", Genre::kRock, 1, 118, 149, 29, true},
    {"lofi", "lo-fi chill", Genre::kLofi, 0, 66, 80, 4, true},
    {"country", "happy country", Genre::kCountry, 0, 100, 128, 25, true},
    {"zh-rock", "摇滚 激情", Genre::kRock, 0, 118, 149, 29, true},
    {"zh-ballad-sad", "悲伤的抒情歌 钢琴", Genre::kBallad, 1, 64, 76, 0, true},
    {"zh-edm", "电子舞曲", Genre::kElectronic, 1, 122, 128, 81, true},
    {"zh-folk", "民谣 吉他 快乐", Genre::kFolk, 0, 92, 112, 25, true},
    {"zh-unknown", "紫色的大象", Genre::kPop, 0, 96, 118, 0, true},
    {"mood-overrides-genre", "happy electronic", Genre::kElectronic, 0, 122, 128, 81, true},
    {"first-genre-wins", "jazz rock", Genre::kJazz, 0, 100, 140, 0, true},
    {"electric-piano", "pop with electric piano", Genre::kPop, 0, 96, 118, 4, true},
};

void PrintTo(const StyleCase& c, std::ostream* os) { *os << c.id; }

class StyleTableTest : public ::testing::TestWithParam<StyleCase> {};

TEST_P(StyleTableTest, PromptChoosesGenreModeTempoAndInstruments) {
    const StyleCase& c = GetParam();
    for (uint64_t seed : {0ULL, 1ULL, 42ULL, 123456789ULL}) {
        const Style s = ParseStyle(c.prompt, seed);
        EXPECT_EQ(s.genre, c.genre) << c.id;
        if (c.minor >= 0) {
            EXPECT_EQ(s.minor, c.minor == 1) << c.id;
        }
        EXPECT_GE(s.bpm, c.bpm_lo) << c.id;
        EXPECT_LE(s.bpm, c.bpm_hi) << c.id;
        if (c.chords != -2) {
            EXPECT_EQ(s.programs.chords, c.chords) << c.id;
        }
        EXPECT_EQ(s.drums != DrumPattern::kNone && s.programs.drum_kit >= 0, c.drums) << c.id;
        EXPECT_GE(s.key, 0);
        EXPECT_LE(s.key, 11);
    }
}

INSTANTIATE_TEST_SUITE_P(Cases, StyleTableTest, ::testing::ValuesIn(kCases), [](const auto& info) {
    std::string id = info.param.id;
    for (auto& ch : id) {
        if (ch == '-') ch = '_';
    }
    return id;
});

TEST(StyleTest, SameSeedSameStyleOtherSeedsVary) {
    const Style a = ParseStyle("uplifting pop", 7), b = ParseStyle("uplifting pop", 7);
    EXPECT_EQ(a.bpm, b.bpm);
    EXPECT_EQ(a.key, b.key);
    std::set<int> keys;
    std::set<double> tempos;
    for (uint64_t seed = 0; seed < 40; ++seed) {
        const Style s = ParseStyle("uplifting pop", seed);
        keys.insert(s.key);
        tempos.insert(s.bpm);
    }
    EXPECT_GE(keys.size(), 4u);
    EXPECT_GE(tempos.size(), 5u);
}

TEST(StyleTest, NamedInstrumentsAndSinger) {
    const Style s = ParseStyle("folk song with violin, cello and a female singer", 1);
    EXPECT_EQ(s.programs.lead, 42);  // the later instrument wins the lead
    EXPECT_EQ(s.voice, 1);
    EXPECT_EQ(ParseStyle("男声 民谣", 1).voice, 2);
    EXPECT_EQ(ParseStyle("classical with drums", 1).drums, DrumPattern::kBallad);
    EXPECT_EQ(ParseStyle("pop sax", 1).programs.lead, 65);
    EXPECT_EQ(ParseStyle("EDM synth", 1).programs.pad, 89);
}

TEST(StyleTest, KeywordsMatchWholeWordsOnly) {
    // "trapeze" is not "trap", "popular" is not "pop", "sadness" is not "sad".
    const Style s = ParseStyle("trapeze popular sadness", 3);
    EXPECT_EQ(s.genre, Genre::kPop);
    EXPECT_TRUE(s.matched.empty());
}

TEST(StyleTest, HostileInputNeverThrows) {
    std::string junk;
    for (int i = 0; i < 2000; ++i) junk.push_back(static_cast<char>((i * 7919) % 256));
    EXPECT_NO_THROW(ParseStyle(junk, 1));
    EXPECT_NO_THROW(ParseStyle(std::string(5000, 'a'), 1));
}

TEST(StyleTest, AReferenceSetsTempoAndKeyAndKeepsThePromptsInstrumentsAndMood) {
    const Style edm = ParseStyle("energetic EDM", 11);
    Style followed = edm;
    FollowReference(followed, 100.5, 9, true);
    EXPECT_DOUBLE_EQ(followed.bpm, 100.5);
    EXPECT_EQ(followed.key, 9);
    EXPECT_TRUE(followed.minor);
    EXPECT_EQ(followed.genre, edm.genre);
    EXPECT_EQ(followed.programs.chords, edm.programs.chords);
    EXPECT_EQ(followed.programs.drum_kit, edm.programs.drum_kit);
    EXPECT_EQ(followed.drums, edm.drums);
    EXPECT_DOUBLE_EQ(followed.energy, edm.energy);
    // No beat found: the prompt's tempo stays; out-of-range tempi are clamped.
    Style no_beat = edm;
    FollowReference(no_beat, 0, 2, false);
    EXPECT_DOUBLE_EQ(no_beat.bpm, edm.bpm);
    EXPECT_EQ(no_beat.key, 2);
    Style fast = edm;
    FollowReference(fast, 400, 0, false);
    EXPECT_LE(fast.bpm, 184);
}

}  // namespace
}  // namespace songd::engine::synth
