#pragma once
/// @file
/// Arrangement: the song's form and harmony from the lyric timing, and the band parts.
///
///   auto arrangement = synth::PlanArrangement(style, spans, duration_s, seed);
///   synth::Score band = synth::BuildBand(style, arrangement, seed);
///   const synth::Bar& bar = arrangement.BarAt(12.5);   // section and chord at 12.5 s
///
/// Sections: an intro before the first sung line, verses, choruses (lines whose text occurs
/// more than once), instrumental breaks where the singing pauses for long, and an outro
/// after the last line. One chord per 4/4 bar, from progressions chosen per section kind.

#include <cstdint>
#include <string>
#include <vector>

#include "engine/synth/score.h"
#include "engine/synth/style.h"

namespace songd::engine::synth {

/// @brief The kinds of section a song is made of.
enum class SectionKind { kIntro, kVerse, kChorus, kBreak, kOutro };

const char* SectionName(SectionKind kind);

/// @brief When a lyric line is sung, and whether it belongs to a chorus.
struct LineSpan {
    double start = 0;  ///< seconds
    double end = 0;    ///< end of the last sung note
    bool chorus = false;
};

/// @brief One 4/4 bar of the song.
struct Bar {
    double start = 0;
    double length = 0;
    SectionKind kind = SectionKind::kIntro;
    int section = 0;  ///< index of the section instance
    int index_in_section = 0;
    int section_bars = 0;
    bool last_before_change = false;  ///< the next bar starts another section
    Chord chord;
    double energy = 0.5;  ///< 0..1, this bar's intensity
};

/// @brief Tempo grid, bars and sections of a song.
struct Arrangement {
    double bpm = 100;
    double beat = 0.6;  ///< seconds per beat
    double end = 0;     ///< song length in seconds
    std::vector<Bar> bars;
    /// The bar sounding at time `t` (clamped to the first/last bar).
    const Bar& BarAt(double t) const;
    /// Names of the sections in order, e.g. {"intro", "verse", "chorus", ...}.
    std::vector<std::string> SectionNames() const;
};

Arrangement PlanArrangement(const Style& style, const std::vector<LineSpan>& lines, double duration,
                            uint64_t seed);

/// The band: chords, bass, pad, lead (in the instrumental parts) and drums.
Score BuildBand(const Style& style, const Arrangement& arrangement, uint64_t seed);

/// MIDI channels BuildBand uses.
constexpr int kChordChannel = 0;
constexpr int kBassChannel = 1;
constexpr int kPadChannel = 2;
constexpr int kLeadChannel = 3;
constexpr int kDrumChannel = 9;

}  // namespace songd::engine::synth
