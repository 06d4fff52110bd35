#pragma once
/// @file
/// Reads the format of WAV bytes, for tests that download songs.

#include <cstdint>
#include <string>

namespace songd::test {

struct WavInfo {
    bool valid = false;
    int sample_rate = 0;
    int channels = 0;
    int bits = 0;
    int64_t frames = 0;
};

/// Parses the RIFF/WAVE header and the data chunk size; `valid` is false for anything else
/// or when the data chunk is shorter than its header claims.
WavInfo ParseWav(const std::string& bytes);

}  // namespace songd::test
