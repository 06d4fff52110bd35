// Times audio finishing on songs of given lengths: the whole of audio::Finish, and its
// stages on their own. Usage: finish_benchmark [--finish-only] [seconds...]   (default: 95 285)
// With --finish-only, only Finish runs, so the peak RSS printed at the end is its own.
//
// The input is music-like material (chords with quiet and loud sections, kick, hi-hats,
// bass) at a level that needs some limiting for the balanced preset, written as a float WAV.

#include <sndfile.h>
#include <sys/resource.h>
#include <unistd.h>

#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <random>
#include <string>
#include <vector>

#include "audio/encode.h"
#include "audio/finish.h"
#include "audio/mastering.h"
#include "audio/preview.h"

namespace {

using Clock = std::chrono::steady_clock;

double Seconds(Clock::time_point since) {
    return std::chrono::duration<double>(Clock::now() - since).count();
}

/// CPU seconds (user + system) this process has used.
double CpuSeconds() {
    rusage ru{};
    getrusage(RUSAGE_SELF, &ru);
    return static_cast<double>(ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) +
           static_cast<double>(ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) / 1e6;
}

std::vector<float> Material(double seconds) {
    const auto frames = static_cast<size_t>(seconds * 44100);
    std::vector<float> s(frames * 2);
    std::mt19937 rng(1);
    std::uniform_real_distribution<float> noise(-1.0f, 1.0f);
    for (size_t i = 0; i < frames; ++i) {
        const double t = static_cast<double>(i) / 44100;
        const double section = std::fmod(t, 8.0) < 4.0 ? 0.15 : 0.5;
        const double pad = section * 0.25 *
                           (std::sin(2 * M_PI * 220.0 * t) + std::sin(2 * M_PI * 277.18 * t) +
                            std::sin(2 * M_PI * 329.63 * t));
        const double beat = std::fmod(t, 0.5);
        const double kick = 0.8 * std::exp(-beat * 18) *
                            std::sin(2 * M_PI * (50 + 80 * std::exp(-beat * 30)) * beat);
        const double hat = 0.15 * std::exp(-std::fmod(t + 0.25, 0.5) * 60) * noise(rng);
        const double bass = 0.3 * section * std::sin(2 * M_PI * 55.0 * t);
        s[i * 2] = static_cast<float>(0.6 * (pad + kick + hat + bass));
        s[i * 2 + 1] = static_cast<float>(0.6 * (0.9 * pad + kick + 0.7 * hat + bass));
    }
    return s;
}

}  // namespace

int main(int argc, char** argv) {
    std::vector<double> lengths;
    bool finish_only = false;
    for (int i = 1; i < argc; ++i) {
        if (std::string(argv[i]) == "--finish-only") {
            finish_only = true;
        } else {
            lengths.push_back(std::atof(argv[i]));
        }
    }
    if (lengths.empty()) lengths = {95, 285};
    auto dir =
        std::filesystem::temp_directory_path() / ("finish-bench-" + std::to_string(::getpid()));
    std::filesystem::create_directories(dir);
    std::printf("%-8s %-28s %10s %10s\n", "length", "stage", "wall s", "cpu s");
    for (double length : lengths) {
        const auto raw = dir / "raw.wav";
        std::vector<float> song = Material(length);
        const auto frames = static_cast<int64_t>(song.size() / 2);
        {
            SF_INFO info{};
            info.samplerate = 44100;
            info.channels = 2;
            info.format = SF_FORMAT_WAV | SF_FORMAT_FLOAT;
            SNDFILE* f = sf_open(raw.c_str(), SFM_WRITE, &info);
            sf_writef_float(f, song.data(), frames);
            sf_close(f);
        }
        auto stage = [&](const char* name, auto&& fn) {
            const double cpu = CpuSeconds();
            const auto t = Clock::now();
            fn();
            std::printf("%-8.0f %-28s %10.3f %10.3f\n", length, name, Seconds(t),
                        CpuSeconds() - cpu);
        };
        std::vector<float> tp, env;
        if (!finish_only) {
            tp.resize(static_cast<size_t>(frames));
            env.resize(static_cast<size_t>(frames));
            stage("true-peak envelope",
                  [&] { songd::audio::TruePeakEnvelope(song.data(), frames, tp.data()); });
            stage("limiter envelope",
                  [&] { songd::audio::LimiterEnvelope(tp.data(), frames, 2.0, 0.86, env.data()); });
            stage("loudness (libebur128)",
                  [&] { songd::audio::IntegratedLoudness(song.data(), frames, 1.0, env.data()); });
            stage("loudness+true peak meter", [&] {
                songd::audio::LoudnessMeter meter(true);
                meter.Add(song.data(), frames);
            });
        }
        // Release the stage buffers so peak RSS reflects Finish itself.
        std::vector<float>().swap(tp);
        std::vector<float>().swap(env);
        std::vector<float>().swap(song);
        songd::audio::FinishResult r;
        songd::audio::FinishOptions opts;
        opts.target_frames = frames;
        stage("Finish (balanced)",
              [&] { r = songd::audio::Finish(raw, dir / "output_fixed.wav", opts); });
        std::printf("         -> %.2f LUFS, %.2f dBTP, limiting %.1f dB, %d passes\n",
                    r.integrated_lufs, r.true_peak_dbtp, r.max_limiting_db, r.mastering_passes);
        if (finish_only) continue;
        stage("Transcode flac",
              [&] { songd::audio::Transcode(dir / "output_fixed.wav", "flac", dir); });
        stage("Transcode mp3 (320 kbit/s)",
              [&] { songd::audio::Transcode(dir / "output_fixed.wav", "mp3", dir); });
        stage("MakePreview 30 s", [&] {
            songd::audio::MakePreview(dir / "output_fixed.wav", dir / "preview.mp3", 30);
        });
        for (const char* f : {"output_fixed.wav", "output_fixed.flac", "output_fixed.mp3",
                              "raw.wav", "preview.mp3"}) {
            std::filesystem::remove(dir / f);
        }
    }
    std::filesystem::remove_all(dir);
    rusage ru{};
    getrusage(RUSAGE_SELF, &ru);
    std::printf("peak RSS %.0f MB\n", static_cast<double>(ru.ru_maxrss) / 1024.0);
    return 0;
}
