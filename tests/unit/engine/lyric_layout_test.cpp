#include "engine/lyric_layout.h"

#include <gtest/gtest.h>

#include <cmath>
#include <regex>

#include "core/error.h"
#include "engine/engine.h"
#include "engine/synth/style.h"

namespace songd::engine {
namespace {

const char* const kSectioned =
    "[Verse]\n"
    "Morning light is on the window\n"
    "Coffee cooling by the door\n"
    "Every song I used to know\n"
    "Sounds like something more\n"
    "\n"
    "[Chorus]\n"
    "Hold on, hold on to me\n"
    "We are where we want to be\n"
    "\n"
    "[Instrumental]\n"
    "\n"
    "[verse 2]\n"
    "Evening falls across the city\n"
    "Lights come on along the street\n"
    "\n"
    "[CHORUS]\n"
    "Hold on, hold on to me\n"
    "We are where we want to be\n";

std::string Message(const core::Error& e) {
    return e.fields().empty() ? e.what() : e.fields().front().msg;
}

/// Every property the layout promises, checked line by line.
void ExpectValidLayout(const LyricLayout& layout, int length) {
    ASSERT_FALSE(layout.lines.empty());
    const double bar = 4 * 60.0 / layout.bpm;
    EXPECT_NEAR(layout.bar_seconds, bar, 1e-9);
    const double end = std::min<double>(length, static_cast<double>(TargetFrames(length)) / 44100);
    // The shared validator accepts it, and reads back the same lines.
    const auto parsed = ParseLrc(layout.lrc, length);
    ASSERT_EQ(parsed.size(), layout.lines.size());
    for (size_t i = 0; i < parsed.size(); ++i) {
        const double t = parsed[i].time_ms / 1000.0;
        EXPECT_EQ(parsed[i].text, layout.lines[i].text);
        // On a bar line of the chosen tempo (LRC keeps hundredths: within 5 ms).
        const double bars = t / bar;
        EXPECT_NEAR(bars, std::round(bars), 0.0051 / bar) << "line " << i << " at " << t;
        if (i == 0) {
            EXPECT_GE(t, (layout.compact ? 2.0 : 4.0) - 0.005) << "an intro";
        } else {
            EXPECT_GT(parsed[i].time_ms, parsed[i - 1].time_ms) << "monotonic";
        }
        // Each line's bars end before the next line and before the song's end margin.
        const double line_end = t + layout.line_bars[i] * bar;
        if (i + 1 < parsed.size()) {
            EXPECT_LE(line_end, parsed[i + 1].time_ms / 1000.0 + 0.011);  // two roundings
        }
        EXPECT_LE(line_end, end - std::max(4.0, bar) + 0.006);
        EXPECT_LT(t, length);
    }
}

TEST(LyricLayout, SectionedLyricsFor95And180SecondsAtManyTempos) {
    for (int length : {95, 180}) {
        for (double bpm : {56.0, 72.0, 100.0, 128.0, 184.0}) {
            SCOPED_TRACE("length " + std::to_string(length) + ", bpm " + std::to_string(bpm));
            const LyricLayout layout = LayoutLyrics(kSectioned, bpm, length);
            ExpectValidLayout(layout, length);
            EXPECT_EQ(layout.lines.size(), 10u);
            EXPECT_EQ(layout.lines[0].text, "Morning light is on the window");
            EXPECT_EQ(layout.lines[0].source_line, 2);
        }
    }
}

TEST(LyricLayout, TempoFromTheStyleIsTheSynthsTempo) {
    for (uint64_t seed : {1u, 2u, 99u}) {
        const double bpm = SongTempo("energetic EDM", seed);
        EXPECT_EQ(bpm, synth::ParseStyle("energetic EDM", seed).bpm);
        ExpectValidLayout(LayoutLyrics(kSectioned, bpm, 95), 95);
    }
    EXPECT_LT(SongTempo("sad slow piano ballad", 1), SongTempo("energetic EDM", 1));
}

TEST(LyricLayout, StanzaBreaksInstrumentalTagsAndIntroGiveGaps) {
    const double bpm = 120;  // 2 s bars
    // Two short lines (1 bar each) in one stanza: back to back.
    auto together = LayoutLyrics("One two three\nFour five six", bpm, 95);
    // The same in two stanzas: one bar between them.
    auto stanzas = LayoutLyrics("One two three\n\nFour five six", bpm, 95);
    // An instrumental section between them: four more bars.
    auto instrumental = LayoutLyrics("One two three\n[Instrumental]\nFour five six", bpm, 95);
    auto bridge = LayoutLyrics("One two three\n\n[Bridge]\n\n[Verse]\nFour five six", bpm, 95);
    auto intro = LayoutLyrics("[Intro]\n\n[Verse]\nOne two three\nFour five six", bpm, 95);
    ASSERT_EQ(together.lines.size(), 2u);
    EXPECT_EQ(together.lines[0].time_ms, 4000);  // 2 bars of intro = 4 s
    EXPECT_EQ(together.lines[1].time_ms, 6000);
    EXPECT_EQ(stanzas.lines[1].time_ms, 8000);
    EXPECT_EQ(instrumental.lines[1].time_ms, 14000);
    EXPECT_EQ(bridge.lines[1].time_ms, 16000);  // a 1-bar break and the 4-bar bridge
    EXPECT_EQ(intro.lines[0].time_ms, 8000);    // a 4-bar [Intro]
    // A tag with lines under it is sung: [Bridge] with words is no gap.
    auto sung_bridge = LayoutLyrics("One two three\n[Bridge]\nFour five six", bpm, 95);
    EXPECT_EQ(sung_bridge.lines[1].time_ms, 8000);
}

TEST(LyricLayout, TagsAreCaseInsensitiveNumberedAndMayPrecedeWords) {
    auto layout = LayoutLyrics(
        "[VERSE 1]\nfirst line here\n[chorus 2]\n[Pre-Chorus]\nsecond\n"
        "[Chorus] third line sung\n[Guitar Solo]\n[ti:Title]\nfourth",
        100, 95);
    ASSERT_EQ(layout.lines.size(), 4u);
    EXPECT_EQ(layout.lines[2].text, "third line sung");
    EXPECT_EQ(layout.lines[3].text, "fourth");
    ExpectValidLayout(layout, 95);
    try {
        LayoutLyrics("[Verse]\nhello there\n[Shouting]\nagain", 100, 95);
        FAIL() << "an unknown tag was accepted";
    } catch (const core::Error& e) {
        EXPECT_NE(Message(e).find("line 3: unknown section tag [Shouting]"), std::string::npos)
            << Message(e);
    }
}

TEST(LyricLayout, EnglishAndChineseSyllables) {
    EXPECT_EQ(CountSyllables("Hello world"), 3);
    EXPECT_EQ(CountSyllables("love"), 1);
    EXPECT_EQ(CountSyllables("little"), 2);
    EXPECT_EQ(CountSyllables("I loved you, and I wanted more"), 8);
    EXPECT_EQ(CountSyllables("don't stop"), 2);
    EXPECT_EQ(CountSyllables("我爱你中国"), 5);
    EXPECT_EQ(CountSyllables("我爱你 baby"), 5);
    EXPECT_EQ(CountSyllables("..."), 0);
    // Chinese lines get bars by characters: 4 characters fit a bar, 16 do not.
    auto zh = LayoutLyrics("我爱你们\n春天的风吹过了山岗春天的风吹过了山岗\n月亮", 100, 95);
    ASSERT_EQ(zh.lines.size(), 3u);
    EXPECT_EQ(zh.line_bars[0], 1);
    EXPECT_GE(zh.line_bars[1], 3);
    ExpectValidLayout(zh, 95);
}

TEST(LyricLayout, LongerLinesGetMoreBars) {
    auto layout = LayoutLyrics(
        "Go\nThe river runs along the valley to the sea\n"
        "The river runs along the valley to the sea and far away from home",
        100, 180);
    EXPECT_EQ(layout.line_bars[0], 1);
    EXPECT_LT(layout.line_bars[1], layout.line_bars[2]);
}

/// `n` distinct lines of eight syllables.
std::string Lines(int n) {
    std::string text;
    for (int i = 0; i < n; ++i) text += "We sing the line number " + std::to_string(i) + " now\n";
    return text;
}

TEST(LyricLayout, TooManyLinesNamesHowManyFit) {
    for (int length : {95, 180}) {
        SCOPED_TRACE(length);
        int fit = -1;
        try {
            LayoutLyrics(Lines(200), 100, length);
            FAIL() << "200 lines fit";
        } catch (const core::Error& e) {
            EXPECT_EQ(e.code(), core::ErrorCode::kInvalidInput);
            const std::string msg = Message(e);
            std::smatch m;
            ASSERT_TRUE(std::regex_search(
                msg, m, std::regex(R"(the lyrics have 200 lines; at most (\d+) fit)")))
                << msg;
            fit = std::stoi(m[1]);
        }
        // The count is exact: that many lines are laid out, one more is refused.
        ASSERT_GT(fit, 5);
        auto layout = LayoutLyrics(Lines(fit), 100, length);
        EXPECT_EQ(layout.lines.size(), static_cast<size_t>(fit));
        ExpectValidLayout(layout, length);
        EXPECT_THROW(LayoutLyrics(Lines(fit + 1), 100, length), core::Error);
    }
}

TEST(LyricLayout, CompactLayoutWhenTheComfortableOneDoesNotFit) {
    auto roomy = LayoutLyrics(Lines(8), 100, 95);
    EXPECT_FALSE(roomy.compact);
    // 8 syllables take 2 bars comfortably: 30 lines would need over 60 bars (144 s).
    auto tight = LayoutLyrics(Lines(30), 100, 95);
    EXPECT_TRUE(tight.compact);
    ExpectValidLayout(tight, 95);
}

TEST(LyricLayout, ClassifiesLrcPlainEmptyAndRejectsMixed) {
    EXPECT_EQ(ClassifyLyrics("[00:10.00]Hello\n[00:12.00]World"), LyricsKind::kLrc);
    EXPECT_EQ(ClassifyLyrics("[ti:Song]\n[00:10.00]Hello"), LyricsKind::kLrc);
    EXPECT_EQ(ClassifyLyrics("Hello\nWorld"), LyricsKind::kPlain);
    EXPECT_EQ(ClassifyLyrics("[Verse]\nHello"), LyricsKind::kPlain);
    EXPECT_EQ(ClassifyLyrics(""), LyricsKind::kEmpty);
    EXPECT_EQ(ClassifyLyrics("  \n\n"), LyricsKind::kEmpty);
    EXPECT_EQ(ClassifyLyrics("[Instrumental]\n[Outro]"), LyricsKind::kEmpty);
    try {
        ClassifyLyrics("[00:10.00]Hello\nWorld without a time\n");
        FAIL() << "mixed lyrics were accepted";
    } catch (const core::Error& e) {
        EXPECT_EQ(e.code(), core::ErrorCode::kInvalidInput);
        EXPECT_NE(Message(e).find("mix timed lines (line 1"), std::string::npos) << Message(e);
        EXPECT_NE(Message(e).find("untimed lines (line 2)"), std::string::npos) << Message(e);
    }
}

TEST(LyricLayout, ResolveKeepsLrcLaysOutPlainAndKnowsInstrumentals) {
    const std::string lrc = "[00:10.00]Hello there\n[00:05.5]Earlier line";  // as sent
    auto kept = ResolveLyrics(lrc, false, 100, 95);
    EXPECT_EQ(kept.lrc, lrc);
    EXPECT_FALSE(kept.laid_out);
    EXPECT_FALSE(kept.instrumental);
    EXPECT_THROW(ResolveLyrics("[00:99.00]bad stamp line", false, 100, 95), core::Error);

    auto plain = ResolveLyrics("Hello there\nGeneral Kenobi", false, 100, 95);
    EXPECT_TRUE(plain.laid_out);
    EXPECT_EQ(plain.bpm, 100);
    EXPECT_EQ(plain.lrc, "[00:04.80]Hello there\n[00:07.20]General Kenobi\n");

    EXPECT_TRUE(ResolveLyrics("", false, 100, 95).instrumental);
    EXPECT_TRUE(ResolveLyrics("[Instrumental]\n", false, 100, 95).instrumental);
    auto asked = ResolveLyrics("Hello there", true, 100, 95);
    EXPECT_TRUE(asked.instrumental);
    EXPECT_EQ(asked.lrc, "");
}

TEST(LyricLayout, BadPlainInputIsRejectedWithTheLine) {
    auto message = [](std::string_view text) {
        try {
            LayoutLyrics(text, 100, 95);
        } catch (const core::Error& e) {
            return Message(e);
        }
        return std::string("accepted");
    };
    EXPECT_NE(message("Hello\n---\nWorld").find("line 2: a lyric line needs words"),
              std::string::npos);
    EXPECT_NE(message("Hello\n" + std::string(301, 'a')).find("line 2: the line has 301"),
              std::string::npos);
    EXPECT_NE(message("Hello \xff\xfe").find("not valid UTF-8"), std::string::npos);
    EXPECT_NE(message("[Verse]\n\n[Chorus]").find("at least one line"), std::string::npos);
}

}  // namespace
}  // namespace songd::engine
