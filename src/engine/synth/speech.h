#pragma once
/// @file
/// Speech: lyric text spoken by espeak-ng (used as a library), with phoneme timing and the
/// syllables found in it.
///
///   auto spoken = synth::Speak({{"Hello world", "en-us+f3"}}, cancel, nullptr);
///   auto syllables = synth::Syllabify(spoken[0]);   // "hel", "lo", "world"
///
/// espeak-ng keeps hidden state between utterances (glottal phase, pitch flutter, noise
/// generator), so two identical requests in one process give different samples. To make a
/// song depend only on its inputs, each call runs espeak-ng in a freshly forked child that
/// starts from the library's initial state (and a fixed rand() seed, which espeak-ng's noise
/// uses), and reads the audio back through a pipe. The parent never initialises espeak-ng.

#include <cstdint>
#include <functional>
#include <string>
#include <string_view>
#include <vector>

#include "engine/engine.h"

namespace songd::engine::synth {

/// @brief What to say and in which espeak-ng voice (e.g. "en-us", "cmn-latn-pinyin+f3").
struct SpeechRequest {
    std::string text;
    std::string voice;
};

/// @brief One phoneme and where it starts in the audio.
struct Phoneme {
    int64_t sample = 0;
    std::string name;  ///< espeak-ng phoneme mnemonic, e.g. "aI", "_|", "(en)"
    bool word_start = false;
};

/// @brief Mono 16-bit speech with its phonemes.
struct Speech {
    int sample_rate = 22050;
    std::vector<int16_t> samples;
    std::vector<Phoneme> phonemes;
};

/// @brief A sung unit: [begin, end) in samples, with its vowel [nucleus_begin, nucleus_end).
struct Syllable {
    int64_t begin = 0, end = 0;
    int64_t nucleus_begin = 0, nucleus_end = 0;
};

/// Speaks each request; `progress` gets the number finished. Throws core::Error
/// (kRenderFailed) when espeak-ng cannot run, or the cancel token's error.
std::vector<Speech> Speak(const std::vector<SpeechRequest>& requests, const CancelToken& cancel,
                          const std::function<void(size_t)>& progress);

/// The syllables of `speech`: one per vowel, consonants split between neighbours, never
/// across a word boundary or a pause.
std::vector<Syllable> Syllabify(const Speech& speech);

/// True when the phoneme mnemonic is a vowel (a syllable nucleus).
bool IsVowelPhoneme(std::string_view name);

/// @brief A run of text in one script, with the voice that should sing it.
struct ScriptRun {
    std::string text;
    bool han = false;
};

/// Splits `text` into runs of Han and non-Han text; punctuation stays with its run.
std::vector<ScriptRun> SplitByScript(std::string_view text);

}  // namespace songd::engine::synth
