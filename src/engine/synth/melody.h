#pragma once
/// @file
/// Melody: the sung line's rhythm and notes, one note per syllable.
///
///   auto notes = synth::PlanVocalRhythm(lines, style.bpm, seed);     // when each syllable sounds
///   auto arrangement = synth::PlanArrangement(style, spans, duration, seed);
///   synth::AssignVocalPitches(notes, lines, arrangement, style, {57, 74}, seed);
///
/// Each line's first syllable lands exactly on its LRC timestamp; the rest follow on the
/// song's sixteenth-note grid. Strong syllables take chord tones of the bar they fall in,
/// weak ones may pass through scale tones. A repeated line (a chorus) gets the same
/// rhythm and contour every time it comes back.

#include <cstdint>
#include <vector>

#include "engine/synth/arrangement.h"
#include "engine/synth/style.h"

namespace songd::engine::synth {

/// @brief A lyric line as the melody writer sees it.
struct VocalLine {
    double start = 0;  ///< the LRC timestamp, seconds
    double limit = 0;  ///< the singing must end by then (next line, or the song's end)
    int syllables = 0;
    bool chorus = false;
    uint64_t text_hash = 0;  ///< same text → same tune
};

/// @brief One sung syllable.
struct VocalNote {
    int line = 0;
    int syllable = 0;
    double start = 0;
    double end = 0;
    int key = 60;  ///< MIDI note
};

/// @brief The singer's range in MIDI notes.
struct VocalRange {
    int lo = 57;
    int hi = 74;
};

std::vector<VocalNote> PlanVocalRhythm(const std::vector<VocalLine>& lines, double bpm,
                                       uint64_t seed);

void AssignVocalPitches(std::vector<VocalNote>& notes, const std::vector<VocalLine>& lines,
                        const Arrangement& arrangement, const Style& style, VocalRange range,
                        uint64_t seed);

/// Frequency in Hz of a MIDI note (A4 = 69 = 440 Hz).
double MidiToHz(double key);

}  // namespace songd::engine::synth
