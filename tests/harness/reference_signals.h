#pragma once
/// @file
/// Test signals for reference songs, made in the test: a drum loop at a known tempo and a
/// chord progression in a known key (mono float samples), and a WAV writer for them.

#include <sndfile.h>

#include <cmath>
#include <cstdint>
#include <filesystem>
#include <stdexcept>
#include <vector>

namespace songd::test {

/// A drum loop at `bpm` for `seconds`: a kick with a sharp click on every beat (louder on
/// each bar's first) and a soft hi-hat on every eighth note.
inline std::vector<float> DrumLoop(double bpm, double seconds, int rate = 44100) {
    std::vector<float> out(static_cast<size_t>(seconds * rate), 0.0f);
    const double eighth = 30.0 / bpm;
    uint32_t noise = 12345;
    auto random = [&noise] {
        noise = noise * 1664525u + 1013904223u;
        return (static_cast<double>(noise >> 8) / (1u << 24)) * 2 - 1;
    };
    int step = 0;
    for (double t0 = 0; t0 < seconds; t0 += eighth, ++step) {
        const size_t start = static_cast<size_t>(t0 * rate);
        if (step % 2 == 0) {
            const double level = step % 8 == 0 ? 1.0 : 0.7;
            for (size_t i = 0; i < static_cast<size_t>(0.2 * rate) && start + i < out.size(); ++i) {
                const double t = static_cast<double>(i) / rate;
                const double f = 50.0 + 100.0 * std::exp(-t * 40.0);  // pitch drop
                double s = std::exp(-t * 18.0) * std::sin(2 * M_PI * f * t);
                if (t < 0.004) s += 0.8 * random();  // the beater's click
                out[start + i] += static_cast<float>(0.45 * level * s);
            }
        }
        for (size_t i = 0; i < static_cast<size_t>(0.03 * rate) && start + i < out.size(); ++i) {
            out[start + i] += static_cast<float>(0.05 * random() *
                                                 std::exp(-static_cast<double>(i) / rate * 150.0));
        }
    }
    return out;
}

/// Chords as MIDI note lists, `chord_seconds` each, looped for `seconds`: each note a tone
/// with a few harmonics and a gentle decay, the root also an octave below as a bass.
inline std::vector<float> ChordLoop(const std::vector<std::vector<int>>& chords,
                                    double chord_seconds, double seconds, int rate = 44100) {
    std::vector<float> out(static_cast<size_t>(seconds * rate), 0.0f);
    size_t index = 0;
    for (double t0 = 0; t0 < seconds; t0 += chord_seconds, ++index) {
        std::vector<int> notes = chords[index % chords.size()];
        notes.push_back(notes.front() - 12);
        const size_t start = static_cast<size_t>(t0 * rate);
        const size_t length = static_cast<size_t>(chord_seconds * rate);
        for (int note : notes) {
            const double hz = 440.0 * std::pow(2.0, (note - 69) / 12.0);
            for (size_t i = 0; i < length && start + i < out.size(); ++i) {
                const double t = static_cast<double>(i) / rate;
                const double env = std::min(1.0, t * 200.0) * std::exp(-t * 0.8);
                double s = 0;
                for (int h = 1; h <= 4; ++h) s += std::sin(2 * M_PI * hz * h * t) / (h * h);
                out[start + i] += static_cast<float>(0.12 * env * s);
            }
        }
    }
    return out;
}

/// A minor: Am – Dm – E – Am (the E major chord's G# marks the minor key).
inline std::vector<float> AMinorProgression(double seconds, int rate = 44100) {
    return ChordLoop({{57, 60, 64}, {62, 65, 69}, {64, 68, 71}, {57, 60, 64}}, 2.0, seconds, rate);
}

/// Writes mono samples as a 16-bit WAV (or another libsndfile format).
inline void WriteMono(const std::filesystem::path& path, const std::vector<float>& samples,
                      int rate = 44100, int format = SF_FORMAT_WAV | SF_FORMAT_PCM_16) {
    SF_INFO info{};
    info.samplerate = rate;
    info.channels = 1;
    info.format = format;
    SNDFILE* f = sf_open(path.c_str(), SFM_WRITE, &info);
    if (f == nullptr) {
        throw std::runtime_error("cannot write " + path.string() + ": " + sf_strerror(nullptr));
    }
    sf_writef_float(f, samples.data(), static_cast<sf_count_t>(samples.size()));
    sf_close(f);
}

}  // namespace songd::test
