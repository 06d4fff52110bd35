#pragma once
/// @file
/// FluidRenderer: plays a Score through FluidSynth (as a library, no audio driver) with a
/// General MIDI SoundFont into a stereo float buffer.
///
///   synth::FluidRenderer renderer(synth::FindSoundFont(config.soundfont));
///   auto band = renderer.Render(score, frames, [&](double done) { ... }, cancel);
///   // band.left.size() == frames

#include <cstdint>
#include <filesystem>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "engine/engine.h"
#include "engine/synth/score.h"

namespace songd::engine::synth {

/// @brief Stereo float audio at 44.1 kHz.
struct StereoBuffer {
    std::vector<float> left, right;
};

/// The SoundFont to use: `configured` when set (it must exist), else FluidR3_GM, else
/// TimGM6mb. Throws core::Error(kRenderFailed) when none is available.
std::filesystem::path FindSoundFont(const std::string& configured);

/// @brief A FluidSynth instance with one SoundFont loaded; one per render (not shared
/// between threads).
class FluidRenderer {
  public:
    explicit FluidRenderer(const std::filesystem::path& soundfont);
    ~FluidRenderer();
    FluidRenderer(const FluidRenderer&) = delete;
    FluidRenderer& operator=(const FluidRenderer&) = delete;

    /// Renders exactly `frames` frames; `progress` gets the fraction done (0..1).
    StereoBuffer Render(const Score& score, int64_t frames,
                        const std::function<void(double)>& progress, const CancelToken& cancel);

  private:
    struct Handles;
    std::unique_ptr<Handles> handles_;
    int sfont_id_ = -1;
};

}  // namespace songd::engine::synth
