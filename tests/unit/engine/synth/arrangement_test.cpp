#include "engine/synth/arrangement.h"

#include <gtest/gtest.h>

#include <algorithm>

#include "engine/synth/melody.h"

namespace songd::engine::synth {
namespace {

Style PopStyle() {
    Style s = ParseStyle("pop", 1);
    s.bpm = 120;  // 2 s bars keep the expected bar numbers easy to read
    s.key = 0;
    s.minor = false;
    return s;
}

TEST(ArrangementTest, SectionsFollowTheLyricTiming) {
    // Verse lines 8–16 s, chorus (repeated) 16–24 s, a 14 s gap, verse 38–42 s, then silence.
    const std::vector<LineSpan> lines = {
        {8, 11.5, false}, {12, 15.5, false}, {16, 19.5, true}, {20, 23.5, true}, {38, 41.5, false}};
    const Arrangement a = PlanArrangement(PopStyle(), lines, 60, 1);
    ASSERT_EQ(a.bars.size(), 30u);
    EXPECT_EQ(a.BarAt(1).kind, SectionKind::kIntro);
    EXPECT_EQ(a.BarAt(6.5).kind, SectionKind::kIntro);
    EXPECT_EQ(a.BarAt(9).kind, SectionKind::kVerse);
    EXPECT_EQ(a.BarAt(17).kind, SectionKind::kChorus);
    EXPECT_EQ(a.BarAt(30).kind, SectionKind::kBreak);
    EXPECT_EQ(a.BarAt(39).kind, SectionKind::kVerse);
    EXPECT_EQ(a.BarAt(50).kind, SectionKind::kOutro);
    const auto names = a.SectionNames();
    const std::vector<std::string> expected = {"intro", "verse", "chorus",
                                               "break", "verse", "outro"};
    EXPECT_EQ(names, expected);
    // The song ends on the tonic.
    EXPECT_EQ(a.bars.back().chord.root, 0);
    EXPECT_EQ(a.bars.back().chord.degree, 0);
}

TEST(ArrangementTest, ChordsStayInTheKey) {
    for (bool minor : {false, true}) {
        Style s = PopStyle();
        s.minor = minor;
        s.key = 9;
        const Arrangement a = PlanArrangement(s, {{4, 20, false}, {22, 40, true}}, 60, 5);
        auto scale = ScalePitchClasses(9, minor);
        if (minor) scale.push_back(PitchClass(9 + 11));  // the leading tone of the major V
        for (const Bar& bar : a.bars) {
            for (int t : bar.chord.tones) {
                EXPECT_NE(std::find(scale.begin(), scale.end(), PitchClass(bar.chord.root + t)),
                          scale.end());
            }
            if (minor && bar.chord.degree == 4) {
                EXPECT_EQ(bar.chord.tones[1], 4);
            }
        }
    }
}

TEST(ArrangementTest, NoLyricsIsAnInstrumental) {
    const Arrangement a = PlanArrangement(PopStyle(), {}, 20, 1);
    ASSERT_FALSE(a.bars.empty());
    const Score band = BuildBand(PopStyle(), a, 1);
    EXPECT_FALSE(band.notes.empty());
}

TEST(ArrangementTest, BandNotesAreInsideTheSongAndValidMidi) {
    for (const char* prompt : {"pop", "rock", "jazz", "classical", "edm", "hip hop", "folk",
                               "ambient", "r&b", "metal", "lofi", "country", "ballad"}) {
        const Style s = ParseStyle(prompt, 9);
        const Arrangement a =
            PlanArrangement(s, {{5, 9, false}, {10, 14, true}, {15, 19, true}}, 30, 9);
        const Score band = BuildBand(s, a, 9);
        ASSERT_FALSE(band.notes.empty()) << prompt;
        for (const Note& n : band.notes) {
            EXPECT_GE(n.start, 0) << prompt;
            EXPECT_LT(n.start, 30) << prompt;
            EXPECT_LE(n.end, 30) << prompt;
            EXPECT_GT(n.end, n.start) << prompt;
            EXPECT_GE(n.key, 0);
            EXPECT_LE(n.key, 127);
            EXPECT_GE(n.velocity, 1);
            EXPECT_LE(n.velocity, 127);
        }
        const bool has_drums = std::any_of(band.notes.begin(), band.notes.end(),
                                           [](const Note& n) { return n.channel == kDrumChannel; });
        EXPECT_EQ(has_drums, s.drums != DrumPattern::kNone) << prompt;
    }
}

TEST(ArrangementTest, SameSeedSameBandOtherSeedDiffers) {
    const Style s = ParseStyle("pop", 3);
    const std::vector<LineSpan> lines = {{5, 9, false}, {10, 14, true}};
    auto notes_of = [&](uint64_t seed) {
        const Score band = BuildBand(s, PlanArrangement(s, lines, 30, seed), seed);
        std::vector<std::tuple<double, double, int, int, int>> out;
        for (const Note& n : band.notes)
            out.emplace_back(n.start, n.end, n.channel, n.key, n.velocity);
        return out;
    };
    EXPECT_EQ(notes_of(11), notes_of(11));
    EXPECT_NE(notes_of(11), notes_of(12));
}

TEST(MelodyTest, FirstSyllableOnTheTimestampAndNotesFitTheChords) {
    const Style s = PopStyle();
    const std::vector<VocalLine> lines = {{8.3, 12.0, 7, false, 1}, {12.15, 16.0, 5, true, 2}};
    auto notes = PlanVocalRhythm(lines, s.bpm, 4);
    ASSERT_EQ(notes.size(), 12u);
    EXPECT_DOUBLE_EQ(notes[0].start, 8.3);
    EXPECT_DOUBLE_EQ(notes[7].start, 12.15);
    for (size_t i = 0; i + 1 < notes.size(); ++i) {
        EXPECT_LT(notes[i].start, notes[i].end);
        EXPECT_LE(notes[i].end, notes[i + 1].start + 1e-9);
    }
    EXPECT_LE(notes[6].end, 12.0);
    const Arrangement a =
        PlanArrangement(s, {{8.3, notes[6].end, false}, {12.15, notes.back().end, true}}, 20, 4);
    AssignVocalPitches(notes, lines, a, s, {57, 74}, 4);
    const auto scale = ScalePitchClasses(s.key, s.minor);
    for (const auto& n : notes) {
        EXPECT_GE(n.key, 57);
        EXPECT_LE(n.key, 74);
        EXPECT_NE(std::find(scale.begin(), scale.end(), PitchClass(n.key)), scale.end());
    }
    // Line starts and line ends are strong: chord tones of the bar they fall in.
    for (size_t i : {size_t{0}, size_t{6}, size_t{7}, size_t{11}}) {
        EXPECT_TRUE(a.BarAt(notes[i].start + 0.01).chord.Contains(notes[i].key)) << i;
    }
}

TEST(MelodyTest, TooManySyllablesAreSungFasterNotPastTheNextLine) {
    const std::vector<VocalLine> lines = {{1.0, 2.0, 40, false, 1}, {2.2, 2.2, 3, false, 2}};
    const auto notes = PlanVocalRhythm(lines, 90, 1);
    ASSERT_EQ(notes.size(), 40u);  // the second line has no time at all
    EXPECT_DOUBLE_EQ(notes.front().start, 1.0);
    EXPECT_LE(notes.back().end, 2.0 + 1e-9);
}

TEST(MelodyTest, RepeatedLinesGetTheSameRhythm) {
    const std::vector<VocalLine> lines = {{4.0, 8.0, 6, true, 99}, {12.0, 16.0, 6, true, 99}};
    const auto notes = PlanVocalRhythm(lines, 120, 8);
    ASSERT_EQ(notes.size(), 12u);
    for (size_t k = 0; k < 6; ++k) {
        EXPECT_NEAR(notes[k].end - notes[k].start, notes[k + 6].end - notes[k + 6].start, 1e-9);
    }
}

TEST(MelodyTest, ARepeatedLineComesBackWithTheSameTune) {
    // Two chorus lines a whole number of 4-bar progressions apart (8 bars of 2 s) meet the
    // same chords, so the tune must repeat exactly.
    Style s = PopStyle();
    const std::vector<VocalLine> lines = {{8.0, 12.0, 6, true, 77}, {24.0, 28.0, 6, true, 77}};
    auto notes = PlanVocalRhythm(lines, s.bpm, 2);
    ASSERT_EQ(notes.size(), 12u);
    const Arrangement a =
        PlanArrangement(s, {{8, notes[5].end, true}, {24, notes[11].end, true}}, 40, 2);
    AssignVocalPitches(notes, lines, a, s, {57, 74}, 2);
    for (size_t k = 0; k < 6; ++k) {
        ASSERT_EQ(a.BarAt(notes[k].start + 0.01).chord.root,
                  a.BarAt(notes[k + 6].start + 0.01).chord.root);
        EXPECT_EQ(notes[k].key, notes[k + 6].key) << k;
    }
}

}  // namespace
}  // namespace songd::engine::synth
