#pragma once
/// @file
/// Score: the band part as timed MIDI notes, plus the harmony helpers the arranger and the
/// melody writer share.
///
///   synth::Score score;
///   score.channels.push_back({.channel = 0, .program = 0});
///   score.notes.push_back({.start = 1.0, .end = 1.5, .channel = 0, .key = 60, .velocity = 90});

#include <vector>

namespace songd::engine::synth {

/// @brief One note; times in seconds from the start of the song.
struct Note {
    double start = 0;
    double end = 0;
    int channel = 0;
    int key = 60;
    int velocity = 90;
};

/// @brief A MIDI channel's instrument and mix settings.
struct ChannelSetup {
    int channel = 0;
    int program = 0;
    bool drums = false;  ///< bank 128 (percussion)
    int volume = 100;    ///< CC7
    int pan = 64;        ///< CC10
    int reverb = 40;     ///< CC91
    int chorus = 0;      ///< CC93
};

/// @brief Everything FluidSynth needs to play the band.
struct Score {
    std::vector<ChannelSetup> channels;
    std::vector<Note> notes;
};

/// @brief A chord as a root pitch class and intervals above it.
struct Chord {
    int degree = 0;          ///< scale degree 0..6 it was built on
    int root = 0;            ///< pitch class 0..11
    std::vector<int> tones;  ///< semitones above the root, starting with 0
    /// True when pitch class `pc` is a chord tone.
    bool Contains(int pc) const;
};

/// The seven pitch classes of the key, starting on the tonic.
std::vector<int> ScalePitchClasses(int key, bool minor);

/// The diatonic chord on `degree` (0-based), with a seventh when asked.
Chord DiatonicChord(int key, bool minor, int degree, bool seventh);

/// Positive modulo for pitch classes.
inline int PitchClass(int key) { return ((key % 12) + 12) % 12; }

}  // namespace songd::engine::synth
