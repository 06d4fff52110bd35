#include "engine/synth/score.h"

#include <algorithm>

namespace songd::engine::synth {

bool Chord::Contains(int pc) const {
    return std::any_of(tones.begin(), tones.end(),
                       [&](int t) { return PitchClass(root + t) == PitchClass(pc); });
}

std::vector<int> ScalePitchClasses(int key, bool minor) {
    static constexpr int kMajor[7] = {0, 2, 4, 5, 7, 9, 11};
    static constexpr int kMinor[7] = {0, 2, 3, 5, 7, 8, 10};
    std::vector<int> pcs;
    pcs.reserve(7);
    for (int i = 0; i < 7; ++i) pcs.push_back(PitchClass(key + (minor ? kMinor[i] : kMajor[i])));
    return pcs;
}

Chord DiatonicChord(int key, bool minor, int degree, bool seventh) {
    const auto scale = ScalePitchClasses(key, minor);
    Chord chord;
    chord.degree = ((degree % 7) + 7) % 7;
    chord.root = scale[static_cast<size_t>(chord.degree)];
    const int stacked = seventh ? 4 : 3;
    for (int i = 0; i < stacked; ++i) {
        const int pc = scale[static_cast<size_t>((chord.degree + 2 * i) % 7)];
        chord.tones.push_back(PitchClass(pc - chord.root));
    }
    return chord;
}

}  // namespace songd::engine::synth
