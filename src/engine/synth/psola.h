#pragma once
/// @file
/// Pitch-synchronous overlap-add (TD-PSOLA): re-sings speech on a given note and length.
///
///   auto track = synth::AnalysePitch(speech_samples, 22050);
///   synth::SingSyllable(speech_samples, track, syllable, {out_begin, out_end, 220.0}, out);
///
/// Analysis finds the speech's pitch period every 10 ms and places a mark on each glottal
/// pulse. Synthesis lays grains (two periods, Hann-windowed) at the target note's period,
/// so the sung pitch is set by the grain spacing alone; consonants keep their length and
/// the vowel is stretched to fill the note.

#include <cstdint>
#include <vector>

#include "engine/synth/speech.h"

namespace songd::engine::synth {

/// @brief Pitch analysis of one utterance.
struct PitchTrack {
    int hop = 220;
    std::vector<float> period;       ///< per frame, in samples; 0 where unvoiced
    std::vector<int64_t> marks;      ///< glottal pulse positions
    std::vector<float> mark_period;  ///< period at each mark
    bool VoicedAt(double sample) const;
};

PitchTrack AnalysePitch(const std::vector<float>& x, int sample_rate);

/// @brief Where and on which pitch a syllable is sung (output sample positions).
struct SungNote {
    int64_t out_begin = 0;
    int64_t out_end = 0;
    double frequency = 220.0;
    double vibrato_cents = 20.0;
};

/// Adds the syllable sung on `note` into `out` (same sample rate as `x`).
void SingSyllable(const std::vector<float>& x, const PitchTrack& track, const Syllable& syllable,
                  const SungNote& note, int sample_rate, std::vector<float>& out);

/// 2× upsampling with a windowed-sinc half-band filter (22.05 kHz → 44.1 kHz).
std::vector<float> Upsample2x(const std::vector<float>& x);

}  // namespace songd::engine::synth
