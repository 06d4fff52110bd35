#include "engine/tone_engine.h"

#include <sndfile.h>

#include <cmath>
#include <limits>
#include <memory>
#include <thread>
#include <vector>

#include "core/error.h"

namespace songd::engine {

std::filesystem::path ToneEngine::Render(const RenderRequest& request, const ProgressFn& progress,
                                         const CancelToken& cancel) {
    if (fault_ == "error")
        throw core::Error(core::ErrorCode::kRenderFailed, "injected engine fault");
    const int64_t frames = TargetFrames(request.audio_length);
    auto path = request.work_dir / "raw.wav";
    SF_INFO info{};
    info.samplerate = kSampleRate;
    info.channels = 2;
    info.format = SF_FORMAT_WAV | SF_FORMAT_FLOAT;
    std::unique_ptr<SNDFILE, int (*)(SNDFILE*)> file(sf_open(path.c_str(), SFM_WRITE, &info),
                                                     sf_close);
    if (!file) {
        throw core::Error(core::ErrorCode::kRenderFailed,
                          std::string("cannot write raw audio: ") + sf_strerror(nullptr));
    }
    // I–V–vi–IV in C major, two seconds a chord, the seed picking the starting chord.
    static constexpr double kChords[4][3] = {{261.63, 329.63, 392.00},
                                             {196.00, 246.94, 293.66},
                                             {220.00, 261.63, 329.63},
                                             {174.61, 220.00, 261.63}};
    const int64_t chord_frames = 2 * kSampleRate;
    const int steps = 20;
    const int64_t block = (frames + steps - 1) / steps;
    std::vector<float> buf;
    for (int step = 0; step < steps; ++step) {
        cancel.ThrowIfCancelled();
        const int64_t begin = step * block;
        const int64_t end = std::min(frames, begin + block);
        buf.assign(static_cast<size_t>(end - begin) * 2, 0.0f);
        for (int64_t i = begin; i < end; ++i) {
            const auto& chord = kChords[(i / chord_frames + request.seed) % 4];
            const double t = static_cast<double>(i) / kSampleRate;
            const double in_chord = static_cast<double>(i % chord_frames) / kSampleRate;
            const double env = std::exp(-1.5 * in_chord);
            double v = 0;
            for (double f : chord) v += std::sin(2 * M_PI * f * t);
            auto s = static_cast<float>(0.2 * env * v);
            if (fault_ == "silence") s = 0.0f;
            buf[static_cast<size_t>(i - begin) * 2] = s;
            buf[static_cast<size_t>(i - begin) * 2 + 1] = s;
        }
        if (fault_ == "nan" && step == steps / 2) buf[0] = std::numeric_limits<float>::quiet_NaN();
        if (sf_writef_float(file.get(), buf.data(), end - begin) != end - begin) {
            throw core::Error(core::ErrorCode::kRenderFailed, "short write of raw audio");
        }
        if (render_ms_ > 0)
            std::this_thread::sleep_for(std::chrono::milliseconds(render_ms_ / steps));
        if (progress) progress((step + 1) * 100 / steps);
    }
    return path;
}

}  // namespace songd::engine
