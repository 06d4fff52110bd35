#pragma once
/// @file
/// Helpers for the audio tests: temporary folders, test signals written as WAV, and
/// measurements by ffmpeg (an independent implementation of EBU R128 and true peak).

#include <sndfile.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <memory>
#include <optional>
#include <random>
#include <stdexcept>
#include <string>
#include <vector>

namespace songd::audio::testing {

/// @brief A fresh folder under the system temp dir, removed with everything in it.
class TempDir {
  public:
    TempDir() {
        std::string tmpl = (std::filesystem::temp_directory_path() / "songd-audio-XXXXXX").string();
        if (::mkdtemp(tmpl.data()) == nullptr) throw std::runtime_error("mkdtemp failed");
        path_ = tmpl;
    }
    ~TempDir() {
        std::error_code ec;
        std::filesystem::remove_all(path_, ec);
    }
    const std::filesystem::path& path() const { return path_; }
    std::filesystem::path operator/(const std::string& name) const { return path_ / name; }

  private:
    std::filesystem::path path_;
};

/// Writes interleaved float samples as a float WAV.
inline void WriteWav(const std::filesystem::path& path, const std::vector<float>& samples,
                     int channels = 2, int rate = 44100,
                     int format = SF_FORMAT_WAV | SF_FORMAT_FLOAT) {
    SF_INFO info{};
    info.samplerate = rate;
    info.channels = channels;
    info.format = format;
    SNDFILE* f = sf_open(path.c_str(), SFM_WRITE, &info);
    if (f == nullptr) throw std::runtime_error("cannot write test wav " + path.string());
    sf_writef_float(f, samples.data(), static_cast<sf_count_t>(samples.size()) / channels);
    sf_close(f);
}

/// @brief Decoded audio and its format.
struct Decoded {
    SF_INFO info{};
    std::vector<float> samples;
};

inline Decoded ReadAudio(const std::filesystem::path& path) {
    Decoded d;
    SNDFILE* f = sf_open(path.c_str(), SFM_READ, &d.info);
    if (f == nullptr) throw std::runtime_error("cannot read " + path.string());
    std::vector<float> chunk(8192 * static_cast<size_t>(d.info.channels));
    for (;;) {
        sf_count_t got = sf_readf_float(f, chunk.data(), 8192);
        if (got <= 0) break;
        d.samples.insert(d.samples.end(), chunk.begin(), chunk.begin() + got * d.info.channels);
    }
    sf_close(f);
    return d;
}

inline std::string ReadBytes(const std::filesystem::path& path) {
    std::ifstream in(path, std::ios::binary);
    return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}

/// Sorted names of the files in `dir`: tests use it to prove a failure left nothing behind.
inline std::vector<std::string> Listing(const std::filesystem::path& dir) {
    std::vector<std::string> names;
    for (const auto& e : std::filesystem::directory_iterator(dir)) {
        names.push_back(e.path().filename());
    }
    std::sort(names.begin(), names.end());
    return names;
}

/// Runs a shell command, returning its exit status and combined output.
inline std::pair<int, std::string> Run(const std::string& command) {
    std::string out;
    FILE* pipe = ::popen((command + " 2>&1").c_str(), "r");
    if (pipe == nullptr) throw std::runtime_error("popen failed");
    std::array<char, 4096> buf{};
    size_t n;
    while ((n = std::fread(buf.data(), 1, buf.size(), pipe)) > 0) out.append(buf.data(), n);
    int status = ::pclose(pipe);
    return {WIFEXITED(status) ? WEXITSTATUS(status) : -1, out};
}

/// @brief ffmpeg's EBU R128 summary of a file.
struct Ebur128 {
    double integrated_lufs = NAN;
    double true_peak_dbtp = NAN;
};

/// The number after `label` in the last "Summary:" block, e.g. "I:" or "Peak:".
inline std::optional<double> SummaryValue(const std::string& out, const std::string& label) {
    auto summary = out.rfind("Summary:");
    if (summary == std::string::npos) return std::nullopt;
    auto at = out.find(label, summary);
    if (at == std::string::npos) return std::nullopt;
    const char* begin = out.c_str() + at + label.size();
    char* end = nullptr;
    double v = std::strtod(begin, &end);
    if (end == begin) return std::nullopt;  // strtod also reads ffmpeg's "-inf"
    return v;
}

inline Ebur128 MeasureEbur128(const std::filesystem::path& path) {
    auto [rc, out] = Run("ffmpeg -nostats -hide_banner -i '" + path.string() +
                         "' -af ebur128=peak=true -f null -");
    if (rc != 0) throw std::runtime_error("ffmpeg failed: " + out);
    Ebur128 m;
    auto i = SummaryValue(out, "I:");
    auto p = SummaryValue(out, "Peak:");
    if (!i || !p) throw std::runtime_error("cannot parse ffmpeg ebur128 output: " + out);
    m.integrated_lufs = *i;
    m.true_peak_dbtp = *p;
    return m;
}

/// ffprobe's view of a file: codec, sample rate, channels, duration, bit rate.
inline std::string Probe(const std::filesystem::path& path, const std::string& entries) {
    auto [rc, out] = Run("ffprobe -v error -select_streams a:0 -show_entries stream=" + entries +
                         " -of default=noprint_wrappers=1 '" + path.string() + "'");
    if (rc != 0) throw std::runtime_error("ffprobe failed: " + out);
    return out;
}

// ---- Test material (deterministic) ----

constexpr int kRate = 44100;

/// Music-like material with dynamics: a chord pad that swells and falls between quiet and
/// loud sections, a kick every half second, noisy hi-hats and a bass line.
inline std::vector<float> DynamicMix(double seconds, uint32_t seed = 1) {
    const auto frames = static_cast<size_t>(seconds * kRate);
    std::vector<float> s(frames * 2);
    std::mt19937 rng(seed);
    std::uniform_real_distribution<float> noise(-1.0f, 1.0f);
    const double chord[3] = {220.0, 277.18, 329.63};
    for (size_t i = 0; i < frames; ++i) {
        const double t = static_cast<double>(i) / kRate;
        const double section = std::fmod(t, 8.0) < 4.0 ? 0.15 : 0.5;  // quiet verse, loud chorus
        double pad = 0;
        for (double f : chord) pad += std::sin(2 * M_PI * f * t);
        pad *= section * 0.25;
        const double beat = std::fmod(t, 0.5);
        const double kick = 0.8 * std::exp(-beat * 18) *
                            std::sin(2 * M_PI * (50 + 80 * std::exp(-beat * 30)) * beat);
        const double hat_t = std::fmod(t + 0.25, 0.5);
        const double hat = 0.15 * std::exp(-hat_t * 60) * noise(rng);
        const double bass = 0.3 * section * std::sin(2 * M_PI * 55.0 * t);
        const double l = pad + kick + hat + bass;
        const double r = pad * 0.9 + kick + hat * 0.7 + bass;
        s[i * 2] = static_cast<float>(l * 0.6);
        s[i * 2 + 1] = static_cast<float>(r * 0.6);
    }
    return s;
}

/// Very peaky material: a quiet pad under full-scale clicks and bursts of white noise, with
/// high-frequency content that makes inter-sample peaks. Needs heavy limiting to get loud.
inline std::vector<float> PeakyMix(double seconds, uint32_t seed = 2) {
    const auto frames = static_cast<size_t>(seconds * kRate);
    std::vector<float> s(frames * 2);
    std::mt19937 rng(seed);
    std::uniform_real_distribution<float> noise(-1.0f, 1.0f);
    for (size_t i = 0; i < frames; ++i) {
        const double t = static_cast<double>(i) / kRate;
        double v = 0.03 * std::sin(2 * M_PI * 196.0 * t) + 0.02 * std::sin(2 * M_PI * 293.66 * t);
        const double click_t = std::fmod(t, 0.7);
        if (click_t < 0.002) v += (i % 2 == 0 ? 0.98 : -0.98);  // Nyquist-rate click
        const double burst_t = std::fmod(t, 2.3);
        if (burst_t < 0.05) v += 0.9 * noise(rng);                              // snare-like burst
        v += 0.2 * std::sin(2 * M_PI * 15000.0 * t) * std::exp(-click_t * 40);  // bright ring
        s[i * 2] = static_cast<float>(std::clamp(v, -1.0, 1.0));
        s[i * 2 + 1] = static_cast<float>(std::clamp(v * 0.95, -1.0, 1.0));
    }
    return s;
}

/// A hard-clipped master, as a careless engine might deliver: the dynamic mix driven 12 dB
/// into a clipper at full scale. Square-ish edges make inter-sample peaks well over 0 dBFS.
inline std::vector<float> ClippedMix(double seconds) {
    auto s = DynamicMix(seconds, 3);
    for (auto& v : s) v = std::clamp(v * 4.0f, -1.0f, 1.0f);
    return s;
}

/// A sine at `freq` with amplitude `amp` on both channels.
inline std::vector<float> Sine(double seconds, double freq, double amp, double phase = 0) {
    const auto frames = static_cast<size_t>(seconds * kRate);
    std::vector<float> s(frames * 2);
    for (size_t i = 0; i < frames; ++i) {
        s[i * 2] = s[i * 2 + 1] = static_cast<float>(
            amp * std::sin(2 * M_PI * freq * static_cast<double>(i) / kRate + phase));
    }
    return s;
}

}  // namespace songd::audio::testing
