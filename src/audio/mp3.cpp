#include "audio/mp3.h"

#include <vector>

#include "audio/finish.h"
#include "audio/mastering.h"
#include "audio/sound_file.h"
#include "core/log.h"

namespace songd::audio {
namespace {

constexpr int64_t kChunkFrames = 65536;
constexpr int kMaxAttempts = 3;
// Aim this far under the ceiling when turning an encoding down, so the next one lands under.
constexpr double kRetryMarginDb = 0.2;

/// True peak (libebur128, 4× oversampled) of an MP3 as a decoder will play it.
double DecodedTruePeakDb(const std::filesystem::path& mp3) {
    SoundFile in = SoundFile::Open(mp3, "the encoded MP3", core::ErrorCode::kInternal,
                                   core::ErrorCode::kInternal);
    LoudnessMeter meter(true);
    std::vector<float> chunk(static_cast<size_t>(kChunkFrames) * kChannels);
    for (;;) {
        const int64_t got = in.ReadFloats(chunk.data(), kChunkFrames);
        if (got <= 0) break;
        meter.Add(chunk.data(), got);
    }
    return meter.TruePeakDb();
}

}  // namespace

void WriteMp3UnderCeiling(const std::filesystem::path& out, int kbps,
                          const FrameSourceFactory& make_source) {
    double gain_db = 0;
    std::vector<float> chunk(static_cast<size_t>(kChunkFrames) * kChannels);
    for (int attempt = 1;; ++attempt) {
        core::TempFile tmp(out);
        {
            SoundFile file =
                SoundFile::Create(tmp.path(), SF_FORMAT_MPEG | SF_FORMAT_MPEG_LAYER_III);
            file.SetMp3Bitrate(kbps);
            // libsndfile 1.2.0 garbles 16-bit integers on their way into its MP3 encoder;
            // floats encode correctly.
            FrameSource source = make_source();
            const auto gain = static_cast<float>(DbToGain(gain_db));
            for (;;) {
                const int64_t got = source(chunk.data(), kChunkFrames);
                if (got <= 0) break;
                if (gain_db != 0) {
                    for (int64_t i = 0; i < got * kChannels; ++i)
                        chunk[static_cast<size_t>(i)] *= gain;
                }
                file.WriteFloats(chunk.data(), got);
            }
            file.Close();
        }
        const double peak_db = DecodedTruePeakDb(tmp.path());
        if (peak_db <= kTruePeakCeilingDbtp || attempt == kMaxAttempts) {
            if (peak_db > kTruePeakCeilingDbtp) {
                core::LogEvent("warning", "mp3_true_peak_over_ceiling",
                               {{"file", out.filename().string()},
                                {"true_peak_dbtp", std::to_string(peak_db)}});
            }
            tmp.Commit();
            return;
        }
        gain_db += kTruePeakCeilingDbtp - kRetryMarginDb - peak_db;
    }
}

}  // namespace songd::audio
