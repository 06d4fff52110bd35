#include "engine/synth/reverb.h"

#include <array>

namespace songd::engine::synth {
namespace {

/// @brief Feedback comb filter with a one-pole low-pass in the loop (darker tails).
class Comb {
  public:
    explicit Comb(size_t delay) : buf_(delay, 0.0f) {}
    float Process(float x) {
        const float y = buf_[pos_];
        store_ = y * (1.0f - kDamp) + store_ * kDamp;
        buf_[pos_] = x + store_ * kFeedback;
        if (++pos_ == buf_.size()) pos_ = 0;
        return y;
    }

  private:
    static constexpr float kFeedback = 0.78f;
    static constexpr float kDamp = 0.3f;
    std::vector<float> buf_;
    size_t pos_ = 0;
    float store_ = 0;
};

/// @brief Schroeder allpass: diffuses the comb echoes without colouring them.
class Allpass {
  public:
    explicit Allpass(size_t delay) : buf_(delay, 0.0f) {}
    float Process(float x) {
        const float b = buf_[pos_];
        buf_[pos_] = x + b * 0.5f;
        if (++pos_ == buf_.size()) pos_ = 0;
        return b - x;
    }

  private:
    std::vector<float> buf_;
    size_t pos_ = 0;
};

std::vector<float> Side(const std::vector<float>& mono, float wet, size_t spread) {
    // Mutually prime delays (in samples at 44.1 kHz) so the echoes do not line up.
    std::array<Comb, 4> combs = {Comb(1116 + spread), Comb(1188 + spread), Comb(1277 + spread),
                                 Comb(1356 + spread)};
    std::array<Allpass, 2> allpasses = {Allpass(556 + spread), Allpass(441 + spread)};
    std::vector<float> out(mono.size());
    for (size_t i = 0; i < mono.size(); ++i) {
        // A tiny constant keeps the decaying tails out of denormal range, where float
        // arithmetic runs many times slower (silence between lines would cost seconds).
        const float in = mono[i] * 0.25f + 1e-18f;
        float y = 0;
        for (auto& c : combs) y += c.Process(in);
        for (auto& a : allpasses) y = a.Process(y);
        out[i] = y * wet;
    }
    return out;
}

}  // namespace

StereoBuffer SmallRoom(const std::vector<float>& mono, float wet) {
    return {Side(mono, wet, 0), Side(mono, wet, 23)};
}

}  // namespace songd::engine::synth
