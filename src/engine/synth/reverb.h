#pragma once
/// @file
/// A small stereo room (Schroeder: four damped combs and two allpasses per side) that puts
/// the dry synthetic voice in the same space as the band.
///
///   synth::StereoBuffer wet = synth::SmallRoom(vocals, 0.22f);
///   // add wet.left / wet.right to the mix next to the dry vocal

#include <vector>

#include "engine/synth/fluid_renderer.h"

namespace songd::engine::synth {

/// The reverberated signal only (no dry part), scaled by `wet`, same length as `mono`.
StereoBuffer SmallRoom(const std::vector<float>& mono, float wet);

}  // namespace songd::engine::synth
