#pragma once
/// @file
/// Reference songs (uploads): decoding and checking with libsndfile, and the analysis the
/// synth engine follows — tempo by beat tracking (libaubio) and key by a chroma-based
/// Krumhansl-Schmuckler estimate.
///
///   audio::ReferenceAudio ref = audio::AnalyzeReference("upload.bin");  // throws on bad input
///   ref.format;           // "wav", "flac", "mp3" or "ogg", from the decoder, never the name
///   ref.tempo_bpm;        // 100.0
///   ref.key.Name();       // "A minor"
///
///   audio::ChromaAccumulator chroma(44100);
///   chroma.Add(mono, frames);
///   audio::KeyEstimate key = audio::EstimateKey(chroma.Result());
///
/// Nothing here trusts a file name or a content type: what libsndfile cannot decode is not
/// audio (kUnsupportedMediaType), and a decoded length outside 10 s – 10 min is kInvalidInput.

#include <array>
#include <cstddef>
#include <filesystem>
#include <string>
#include <vector>

namespace songd::audio {

constexpr double kMinReferenceSeconds = 10.0;
constexpr double kMaxReferenceSeconds = 600.0;

/// Energy per pitch class, index 0 = C.
using Chroma = std::array<double, 12>;

/// @brief A key: tonic pitch class and mode, with how well the profile fitted.
struct KeyEstimate {
    int tonic = 0;  ///< 0 = C … 11 = B
    bool minor = false;
    double correlation = 0;  ///< Pearson correlation with the winning profile, -1..1
    /// "A minor", "C major".
    std::string Name() const;
};

/// "C", "C#", … "B".
const char* PitchClassName(int pitch_class);

/// Krumhansl-Schmuckler: correlates the chroma with the Krumhansl-Kessler major and minor
/// profiles in all 12 rotations and returns the best of the 24 keys.
KeyEstimate EstimateKey(const Chroma& chroma);

/// @brief Builds a chromagram from mono samples: short-time spectra (Hann window, ~190 ms),
/// each bin from 55 Hz to 2 kHz credited to its nearest pitch class, frames normalised so
/// loud passages do not outvote the rest.
class ChromaAccumulator {
  public:
    explicit ChromaAccumulator(int sample_rate);
    ~ChromaAccumulator();
    ChromaAccumulator(const ChromaAccumulator&) = delete;
    ChromaAccumulator& operator=(const ChromaAccumulator&) = delete;

    void Add(const float* mono, size_t frames);
    /// The summed, normalised chroma so far (sums to 1 when anything was heard).
    Chroma Result() const;

  private:
    void Frame();

    struct Fft;
    int window_;
    int hop_;
    std::vector<int> bin_pitch_class_;  ///< per FFT bin, -1 outside the range
    std::vector<float> pending_;        ///< samples not yet analysed
    std::vector<float> hann_;
    Chroma sum_{};
    Fft* fft_;
};

/// @brief What an upload is, as decoded.
struct ReferenceAudio {
    std::string format;  ///< wav, flac, mp3, ogg
    double duration_seconds = 0;
    int sample_rate = 0;
    int channels = 0;
    double tempo_bpm = 0;  ///< beat-tracked, folded into 60–180 BPM; 0: no steady beat found
    KeyEstimate key;
};

/// Decodes the whole file, checks it and analyses it. Throws core::Error:
/// kUnsupportedMediaType when it is not WAV, FLAC, MP3 or Ogg audio libsndfile can decode,
/// kInvalidInput when it is shorter than 10 s or longer than 10 min.
ReferenceAudio AnalyzeReference(const std::filesystem::path& path);

/// Beat-tracked tempo of mono samples (aubio's tempo detector: its period at its beats).
/// 0 when fewer than 4 beats were found.
double EstimateTempo(const float* mono, size_t frames, int sample_rate);

/// Folds a tempo into 60–180 BPM by octaves (halving or doubling); 0 stays 0.
double FoldTempo(double bpm);

}  // namespace songd::audio
