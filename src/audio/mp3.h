#pragma once
/// @file
/// MP3 writing shared by downloads and previews, with the true-peak ceiling kept after
/// encoding.
///
///   audio::WriteMp3UnderCeiling(out, 320, [&] { return MakeSourceFromTheStart(); });
///
/// Lossy encoding smears sharp transients, so a master at -1.3 dBTP can decode above
/// -1 dBTP. The file is decoded and measured; if it went over, it is encoded again from the
/// start with the input turned down by the overshoot (at most twice more).

#include <cstdint>
#include <filesystem>
#include <functional>

namespace songd::audio {

/// Fills up to `frames` interleaved stereo float frames; returns how many (0 at the end).
using FrameSource = std::function<int64_t(float* data, int64_t frames)>;
/// Makes a source positioned at the start; called once per encoding attempt.
using FrameSourceFactory = std::function<FrameSource()>;

/// Encodes what `make_source` yields to an MP3 at `kbps` (constant bitrate) in `out`,
/// atomically. Throws core::Error(kInternal) when the file cannot be written.
void WriteMp3UnderCeiling(const std::filesystem::path& out, int kbps,
                          const FrameSourceFactory& make_source);

}  // namespace songd::audio
