#include "audio/reference.h"

#include <aubio/aubio.h>
#include <sndfile.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <memory>
#include <numeric>

#include "core/error.h"

namespace songd::audio {

namespace {

// Krumhansl-Kessler probe-tone ratings, tonic first.
constexpr std::array<double, 12> kMajorProfile = {6.35, 2.23, 3.48, 2.33, 4.38, 4.09,
                                                  2.52, 5.19, 2.39, 3.66, 2.29, 2.88};
constexpr std::array<double, 12> kMinorProfile = {6.33, 2.68, 3.52, 5.38, 2.60, 3.53,
                                                  2.54, 4.75, 3.98, 2.69, 3.34, 3.17};
constexpr const char* kPitchNames[] = {"C",  "C#", "D",  "D#", "E",  "F",
                                       "F#", "G",  "G#", "A",  "A#", "B"};

double Correlation(const Chroma& chroma, const std::array<double, 12>& profile, int tonic) {
    double mx = std::accumulate(chroma.begin(), chroma.end(), 0.0) / 12.0;
    double my = std::accumulate(profile.begin(), profile.end(), 0.0) / 12.0;
    double sxy = 0, sxx = 0, syy = 0;
    for (int pc = 0; pc < 12; ++pc) {
        double x = chroma[static_cast<size_t>(pc)] - mx;
        double y = profile[static_cast<size_t>((pc - tonic + 12) % 12)] - my;
        sxy += x * y;
        sxx += x * x;
        syy += y * y;
    }
    if (sxx <= 0 || syy <= 0) return 0;
    return sxy / std::sqrt(sxx * syy);
}

/// aubio's tempo detector fed one hop at a time; keeps the beat times.
class TempoTracker {
  public:
    explicit TempoTracker(int sample_rate)
        : tempo_(new_aubio_tempo(const_cast<char*>("default"), kWindow, kHop,
                                 static_cast<uint_t>(sample_rate))),
          in_(new_fvec(kHop)),
          out_(new_fvec(1)) {
        if (!tempo_ || !in_ || !out_) {
            Release();
            throw core::Error(core::ErrorCode::kInternal, "aubio: cannot create a tempo tracker");
        }
    }
    ~TempoTracker() { Release(); }
    TempoTracker(const TempoTracker&) = delete;
    TempoTracker& operator=(const TempoTracker&) = delete;

    void Add(const float* mono, size_t frames) {
        for (size_t i = 0; i < frames; ++i) {
            in_->data[filled_++] = mono[i];
            if (filled_ == kHop) {
                aubio_tempo_do(tempo_, in_, out_);
                // The tracker's beat period where it placed a beat: steadier than the gaps
                // between the beats it emits, which skip beats on very regular material.
                if (out_->data[0] != 0) {
                    periods_.push_back(aubio_tempo_get_bpm(tempo_));
                    confidences_.push_back(aubio_tempo_get_confidence(tempo_));
                }
                filled_ = 0;
            }
        }
    }

    /// Median of the tracker's tempo at its beats; 0 with fewer than 4 beats, or when the
    /// tracker was not confident of them (a steady tone or noise: it still emits "beats", at
    /// a median confidence of 0, where drums or a band give 0.2 and more).
    double Bpm() const {
        std::vector<double> confidences = confidences_;
        if (confidences.empty()) return 0;
        std::nth_element(confidences.begin(),
                         confidences.begin() + static_cast<long>(confidences.size() / 2),
                         confidences.end());
        if (confidences[confidences.size() / 2] < kMinConfidence) return 0;
        std::vector<double> bpms;
        for (double b : periods_) {
            if (b >= 30 && b <= 300) bpms.push_back(b);
        }
        if (bpms.size() < 4) return 0;
        std::nth_element(bpms.begin(), bpms.begin() + static_cast<long>(bpms.size() / 2),
                         bpms.end());
        return bpms[bpms.size() / 2];
    }

  private:
    static constexpr uint_t kWindow = 1024;
    static constexpr double kMinConfidence = 0.05;
    static constexpr uint_t kHop = 256;  // 5.8 ms at 44.1 kHz: the period's resolution

    void Release() {
        if (tempo_) del_aubio_tempo(tempo_);
        if (in_) del_fvec(in_);
        if (out_) del_fvec(out_);
        tempo_ = nullptr;
        in_ = out_ = nullptr;
    }

    aubio_tempo_t* tempo_;
    fvec_t* in_;
    fvec_t* out_;
    uint_t filled_ = 0;
    std::vector<double> periods_;      ///< BPM at each beat
    std::vector<double> confidences_;  ///< the tracker's confidence at each beat
};

/// The container and codec libsndfile found, as an upload's format name; empty: refused.
std::string FormatName(int format) {
    switch (format & SF_FORMAT_TYPEMASK) {
        case SF_FORMAT_WAV:
        case SF_FORMAT_WAVEX:
        case SF_FORMAT_RF64:
            return "wav";
        case SF_FORMAT_FLAC:
            return "flac";
        case SF_FORMAT_MPEG:
            return "mp3";
        case SF_FORMAT_OGG:
            return "ogg";
        default:
            return "";
    }
}

std::string Seconds(double s) {
    char buf[32];
    std::snprintf(buf, sizeof buf, "%.1f", s);
    return buf;
}

}  // namespace

std::string KeyEstimate::Name() const {
    return std::string(PitchClassName(tonic)) + (minor ? " minor" : " major");
}

const char* PitchClassName(int pitch_class) { return kPitchNames[((pitch_class % 12) + 12) % 12]; }

KeyEstimate EstimateKey(const Chroma& chroma) {
    KeyEstimate best;
    best.correlation = -2;
    for (int tonic = 0; tonic < 12; ++tonic) {
        for (bool minor : {false, true}) {
            double r = Correlation(chroma, minor ? kMinorProfile : kMajorProfile, tonic);
            if (r > best.correlation) best = {tonic, minor, r};
        }
    }
    return best;
}

struct ChromaAccumulator::Fft {
    aubio_fft_t* fft = nullptr;
    fvec_t* in = nullptr;
    cvec_t* spectrum = nullptr;
    ~Fft() {
        if (fft) del_aubio_fft(fft);
        if (in) del_fvec(in);
        if (spectrum) del_cvec(spectrum);
    }
};

ChromaAccumulator::ChromaAccumulator(int sample_rate) : fft_(new Fft) {
    // A window of ~190 ms resolves semitones down to about 55 Hz (A1).
    window_ = 1024;
    while (window_ < sample_rate * 0.18) window_ *= 2;
    hop_ = window_ / 2;
    fft_->fft = new_aubio_fft(static_cast<uint_t>(window_));
    fft_->in = new_fvec(static_cast<uint_t>(window_));
    fft_->spectrum = new_cvec(static_cast<uint_t>(window_));
    if (!fft_->fft || !fft_->in || !fft_->spectrum) {
        delete fft_;
        throw core::Error(core::ErrorCode::kInternal, "aubio: cannot create an FFT");
    }
    hann_.resize(static_cast<size_t>(window_));
    for (int i = 0; i < window_; ++i) {
        hann_[static_cast<size_t>(i)] =
            static_cast<float>(0.5 - 0.5 * std::cos(2 * M_PI * i / window_));
    }
    const int bins = window_ / 2 + 1;
    bin_pitch_class_.assign(static_cast<size_t>(bins), -1);
    for (int b = 1; b < bins; ++b) {
        const double hz = static_cast<double>(b) * sample_rate / window_;
        if (hz < 55.0 || hz > 2000.0) continue;
        const double midi = 69.0 + 12.0 * std::log2(hz / 440.0);
        const int nearest = static_cast<int>(std::lround(midi));
        if (std::fabs(midi - nearest) > 0.35) continue;  // between two semitones: neither
        bin_pitch_class_[static_cast<size_t>(b)] = nearest % 12;
    }
}

ChromaAccumulator::~ChromaAccumulator() { delete fft_; }

void ChromaAccumulator::Add(const float* mono, size_t frames) {
    pending_.insert(pending_.end(), mono, mono + frames);
    size_t start = 0;
    while (pending_.size() - start >= static_cast<size_t>(window_)) {
        for (int i = 0; i < window_; ++i) {
            fft_->in->data[i] =
                pending_[start + static_cast<size_t>(i)] * hann_[static_cast<size_t>(i)];
        }
        Frame();
        start += static_cast<size_t>(hop_);
    }
    pending_.erase(pending_.begin(), pending_.begin() + static_cast<long>(start));
}

void ChromaAccumulator::Frame() {
    aubio_fft_do(fft_->fft, fft_->in, fft_->spectrum);
    Chroma frame{};
    double total = 0;
    for (size_t b = 0; b < bin_pitch_class_.size(); ++b) {
        const int pc = bin_pitch_class_[b];
        if (pc < 0) continue;
        const double mag = fft_->spectrum->norm[b];
        frame[static_cast<size_t>(pc)] += mag;
        total += mag;
    }
    if (total < 1e-3) return;  // silence says nothing about the key
    for (size_t pc = 0; pc < 12; ++pc) sum_[pc] += frame[pc] / total;
}

Chroma ChromaAccumulator::Result() const {
    Chroma out = sum_;
    double total = std::accumulate(out.begin(), out.end(), 0.0);
    if (total > 0) {
        for (auto& v : out) v /= total;
    }
    return out;
}

double FoldTempo(double bpm) {
    if (!(bpm > 0) || !std::isfinite(bpm)) return 0;
    while (bpm > 180.0) bpm /= 2;
    while (bpm < 60.0) bpm *= 2;
    return bpm;
}

double EstimateTempo(const float* mono, size_t frames, int sample_rate) {
    TempoTracker tracker(sample_rate);
    tracker.Add(mono, frames);
    return tracker.Bpm();
}

ReferenceAudio AnalyzeReference(const std::filesystem::path& path) {
    SF_INFO info{};
    SNDFILE* raw = sf_open(path.c_str(), SFM_READ, &info);
    if (!raw) {
        throw core::Error(core::ErrorCode::kUnsupportedMediaType,
                          "the file is not audio songd can decode (WAV, FLAC, MP3 or Ogg): " +
                              std::string(sf_strerror(nullptr)));
    }
    std::unique_ptr<SNDFILE, int (*)(SNDFILE*)> file(raw, sf_close);
    ReferenceAudio ref;
    ref.format = FormatName(info.format);
    if (ref.format.empty()) {
        throw core::Error(core::ErrorCode::kUnsupportedMediaType,
                          "the file is audio, but not WAV, FLAC, MP3 or Ogg");
    }
    if (info.channels < 1 || info.channels > 8 || info.samplerate < 8000 ||
        info.samplerate > 192000) {
        throw core::Error(core::ErrorCode::kUnsupportedMediaType,
                          "the audio has " + std::to_string(info.channels) + " channels at " +
                              std::to_string(info.samplerate) +
                              " Hz; songd takes 1-8 channels at 8-192 kHz");
    }
    ref.sample_rate = info.samplerate;
    ref.channels = info.channels;
    // The header's length may be an estimate (MP3) or a lie: only what decodes counts.
    const int64_t max_frames =
        static_cast<int64_t>(kMaxReferenceSeconds * info.samplerate) + info.samplerate;
    TempoTracker tempo(info.samplerate);
    ChromaAccumulator chroma(info.samplerate);
    constexpr int64_t kBlock = 4096;
    std::vector<float> interleaved(static_cast<size_t>(kBlock * info.channels));
    std::vector<float> mono(static_cast<size_t>(kBlock));
    int64_t decoded = 0;
    for (;;) {
        sf_count_t got = sf_readf_float(file.get(), interleaved.data(), kBlock);
        if (got <= 0) break;
        for (sf_count_t f = 0; f < got; ++f) {
            float s = 0;
            for (int c = 0; c < info.channels; ++c) {
                s += interleaved[static_cast<size_t>(f * info.channels + c)];
            }
            s /= static_cast<float>(info.channels);
            if (!std::isfinite(s)) {
                throw core::Error(core::ErrorCode::kUnsupportedMediaType,
                                  "the audio holds samples that are not numbers");
            }
            mono[static_cast<size_t>(f)] = s;
        }
        tempo.Add(mono.data(), static_cast<size_t>(got));
        chroma.Add(mono.data(), static_cast<size_t>(got));
        decoded += got;
        if (decoded > max_frames) break;
    }
    if (sf_error(file.get()) != SF_ERR_NO_ERROR && decoded == 0) {
        throw core::Error(core::ErrorCode::kUnsupportedMediaType,
                          std::string("the audio cannot be decoded: ") + sf_strerror(file.get()));
    }
    ref.duration_seconds = static_cast<double>(decoded) / info.samplerate;
    if (ref.duration_seconds < kMinReferenceSeconds) {
        throw core::Error::Invalid({{{"body", "file"},
                                     "the reference song is " + Seconds(ref.duration_seconds) +
                                         " s long; it must be from 10 s to 10 min"}});
    }
    if (ref.duration_seconds > kMaxReferenceSeconds) {
        throw core::Error::Invalid(
            {{{"body", "file"},
              "the reference song is longer than 10 min; it must be from 10 s to 10 min"}});
    }
    ref.tempo_bpm = FoldTempo(tempo.Bpm());
    ref.key = EstimateKey(chroma.Result());
    return ref;
}

}  // namespace songd::audio
