#pragma once
/// @file
/// Style: what a style prompt asks for, as musical decisions — tempo, key, mode,
/// General MIDI instruments, drum pattern, accompaniment figure, energy.
///
///   synth::Style style = synth::ParseStyle("sad slow piano ballad", seed);
///   // style.genre == Genre::kBallad, style.minor, style.bpm ≈ 60, style.programs.chords == 0
///
/// English words and Chinese keywords are recognised; unknown words are ignored and a
/// prompt with no known word gives a pop arrangement. The same prompt and seed always give
/// the same Style.

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace songd::engine::synth {

/// @brief The genres the engine arranges for.
enum class Genre {
    kPop,
    kRock,
    kJazz,
    kClassical,
    kElectronic,
    kHipHop,
    kFolk,
    kAmbient,
    kRnb,
    kMetal,
    kLofi,
    kCountry,
    kBallad
};

/// @brief Drum groove families (16 steps per bar).
enum class DrumPattern {
    kNone,
    kPop,
    kRock,
    kFourOnFloor,
    kBoomBap,
    kJazzSwing,
    kFolk,
    kHalfTime,
    kMetal,
    kCountry,
    kBallad
};

/// @brief How the chord instrument plays a bar.
enum class AccompPattern { kBlock, kArpeggio, kStrum, kStabs, kComp, kPower };

/// @brief How the bass plays a bar.
enum class BassPattern { kWhole, kRootFifth, kEighths, kOffbeat, kWalking, kSyncopated };

/// @brief General MIDI programs per part; -1 means the part is silent.
struct Programs {
    int chords = 0;  ///< accompaniment (piano, guitar, ...)
    int pad = -1;    ///< sustained harmony (strings, synth pad)
    int bass = 33;
    int lead = -1;     ///< melody in the intro, instrumental breaks and outro
    int drum_kit = 0;  ///< GM drum kit number (bank 128); -1 means no drums
};

/// @brief Everything the arranger needs from the prompt.
struct Style {
    Genre genre = Genre::kPop;
    std::string genre_name = "pop";
    double bpm = 100;
    int key = 0;  ///< tonic pitch class, 0 = C
    bool minor = false;
    bool sevenths = false;  ///< jazz-style four-note chords
    Programs programs;
    DrumPattern drums = DrumPattern::kPop;
    AccompPattern accomp = AccompPattern::kArpeggio;
    BassPattern bass = BassPattern::kRootFifth;
    double energy = 0.6;  ///< 0..1: loudness, density, how early the drums come in
    double swing = 0.0;   ///< 0..0.33 of an eighth note
    int reverb = 40;      ///< MIDI CC91 send
    /// Singer asked for: 0 = not said (the seed decides), 1 = female, 2 = male.
    int voice = 0;
    std::vector<std::string> matched;  ///< recognised keywords, in prompt order
};

Style ParseStyle(std::string_view prompt, uint64_t seed);

/// Follows a reference song: its tempo (when one was found, bpm > 0) and its key win; the
/// prompt's genre, instruments, energy and voice stay.
void FollowReference(Style& style, double bpm, int tonic, bool minor);

const char* GenreName(Genre genre);

}  // namespace songd::engine::synth
