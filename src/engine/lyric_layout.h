#pragma once
/// @file
/// Lyric layout: lyrics as people write them (plain lines, blank lines between stanzas,
/// Suno-style section tags such as `[Verse]`, `[Chorus 2]`, `[Instrumental]`) timed into the
/// LRC every engine takes. Pure: no I/O, the same input always gives the same LRC.
///
///   const double bpm = engine::SongTempo("uplifting pop", seed);   // the synth's own tempo
///   auto song = engine::ResolveLyrics(text, /*instrumental=*/false, bpm, 95);
///   // or in one step: engine::ResolveSongLyrics(text, false, "uplifting pop", seed, 95)
///   // song.lrc == "[00:04.80]First line\n[00:09.60]Second line\n...", song.laid_out
///
/// Rules of the layout (4/4 bars of the song's tempo, bar 0 at the song's start, as the synth
/// arranges): an intro of at least 4 s before the first line; every line starts on a bar
/// boundary and gets a whole number of bars by its syllable count (English: vowel groups;
/// Chinese, Japanese kana, Korean: one syllable per character); one bar's breath between
/// stanzas (a blank line or a new section tag); four bars for an instrumental section (a tag
/// `[Instrumental]`, `[Interlude]`, `[Solo]`, `[Break]`, or `[Intro]`/`[Bridge]`/`[Outro]` with
/// no lines under it). When that does not fit, a compact layout (lines sung faster, shorter
/// gaps) is tried; when that does not fit either, core::Error::Invalid names how many lines
/// fit. Every line ends at least max(4 s, one bar) before the end of the song (the synth fades
/// out there and DiffRhythm needs frames for the last line's tokens). The produced LRC passes
/// ParseLrc.
///
/// DiffRhythm's 95 s model ignores the last LRC line (upstream drops it); the layout does not
/// work around that (the synth and the full-length model sing every line).

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "engine/lrc.h"

namespace songd::engine {

/// @brief What the submitted lyrics are.
enum class LyricsKind {
    kEmpty,  ///< nothing to sing: blank, or only section tags / metadata
    kLrc,    ///< every lyric line carries a [mm:ss.xx] stamp
    kPlain,  ///< no line carries a stamp: songd times it
};

/// Classifies `lyrics`; throws core::Error::Invalid for a mix of stamped and unstamped lines
/// (naming the first line of each).
LyricsKind ClassifyLyrics(std::string_view lyrics);

/// @brief Plain lyrics timed to LRC.
struct LyricLayout {
    double bpm = 0;
    double bar_seconds = 0;
    bool compact = false;  ///< the comfortable layout did not fit
    std::vector<LrcLine> lines;
    /// Bars per line, parallel to `lines`.
    std::vector<int> line_bars;
    std::string lrc;  ///< "[mm:ss.xx]text\n" per line
};

/// Lays out plain (unstamped) lyrics at `bpm` for a song of `audio_length_seconds`.
/// Throws core::Error::Invalid (loc body.lyrics) for bad input, no lines, or too many lines.
LyricLayout LayoutLyrics(std::string_view lyrics, double bpm, int audio_length_seconds);

/// Syllables of one lyric line (at least 1 for a line with a letter).
int CountSyllables(std::string_view line);

/// The tempo the synth engine plays a style prompt at with this seed (one copy of the rule:
/// synth::ParseStyle).
double SongTempo(std::string_view style_prompt, uint64_t seed);

/// @brief The LRC a render uses, from lyrics as submitted.
struct ResolvedLyrics {
    std::string lrc;            ///< what the engine gets; "" for an instrumental
    bool instrumental = false;  ///< no vocals
    bool laid_out = false;      ///< songd timed plain lyrics
    double bpm = 0;             ///< the layout's tempo (laid_out only)
};

/// Submitted lyrics → the LRC to render. `instrumental` wins: the lyrics are then ignored
/// (not validated, not sung). Blank lyrics (or only tags) are an instrumental too. LRC input is
/// validated by ParseLrc and kept byte for byte; plain input is laid out at `bpm`.
ResolvedLyrics ResolveLyrics(std::string_view lyrics, bool instrumental, double bpm,
                             int audio_length_seconds);

/// ResolveLyrics at the tempo of the song: SongTempo(style_prompt, seed) when the lyrics are
/// plain. The one path the API and `songd generate` take.
ResolvedLyrics ResolveSongLyrics(std::string_view lyrics, bool instrumental,
                                 std::string_view style_prompt, uint64_t seed,
                                 int audio_length_seconds);

}  // namespace songd::engine
