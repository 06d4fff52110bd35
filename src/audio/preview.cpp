#include "audio/preview.h"

#include <algorithm>
#include <cmath>
#include <memory>
#include <vector>

#include "audio/mp3.h"
#include "audio/sound_file.h"
#include "core/error.h"

namespace songd::audio {

void MakePreview(const std::filesystem::path& finished_wav, const std::filesystem::path& out_mp3,
                 int seconds) {
    if (seconds < 1) {
        throw core::Error(
            core::ErrorCode::kInvalidInput,
            "preview length must be at least 1 second, got " + std::to_string(seconds));
    }
    SoundFile in = SoundFile::Open(finished_wav, "the finished song", core::ErrorCode::kNotFound,
                                   core::ErrorCode::kInternal);
    if (in.info().samplerate != kSampleRate || in.info().channels != kChannels) {
        throw core::Error(core::ErrorCode::kInternal,
                          finished_wav.string() + " is not a finished song (44.1 kHz stereo)");
    }
    // At most a third of the song, whatever PREVIEW_SECONDS says: a preview as long as the
    // song would give the whole song away for free.
    const int64_t frames = std::min<int64_t>(in.info().frames / kPreviewMaxFractionDivisor,
                                             static_cast<int64_t>(seconds) * kSampleRate);
    if (frames <= 0) {
        throw core::Error(core::ErrorCode::kInternal, finished_wav.string() + " holds no audio");
    }
    const auto fade = static_cast<int64_t>(
        std::min(kPreviewFadeSeconds * kSampleRate, static_cast<double>(frames) / 3.0));
    const int64_t fade_start = frames - fade;

    // Each encoding attempt reads the song again from its start.
    auto make_source = [&]() -> FrameSource {
        auto in = std::make_shared<SoundFile>(SoundFile::Open(finished_wav, "the finished song",
                                                              core::ErrorCode::kNotFound,
                                                              core::ErrorCode::kInternal));
        auto pos = std::make_shared<int64_t>(0);
        return [in, pos, frames, fade, fade_start](float* data, int64_t want) -> int64_t {
            const int64_t got = in->ReadFloats(data, std::min(want, frames - *pos));
            for (int64_t i = 0; i < got; ++i) {
                const int64_t frame = *pos + i;
                if (frame < fade_start) continue;
                // Raised-cosine fade: no corner at its start, silence at its end.
                const double t =
                    static_cast<double>(frame - fade_start + 1) / static_cast<double>(fade);
                const auto g = static_cast<float>(0.5 * (1.0 + std::cos(M_PI * t)));
                data[i * 2] *= g;
                data[i * 2 + 1] *= g;
            }
            *pos += std::max<int64_t>(got, 0);
            return got;
        };
    };
    WriteMp3UnderCeiling(out_mp3, kPreviewKbps, make_source);
}

}  // namespace songd::audio
