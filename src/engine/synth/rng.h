#pragma once
/// @file
/// Rng: the synth engine's only source of randomness. Distributions are implemented here,
/// not taken from <random>, so a seed gives the same song with any standard library.
///
///   synth::Rng rng(synth::Rng::Derive(seed, "melody"));
///   int step = rng.Range(-2, 2);        // inclusive
///   if (rng.Chance(0.3)) { ... }

#include <cstdint>
#include <random>
#include <string_view>
#include <vector>

namespace songd::engine::synth {

/// 64-bit FNV-1a; stable across platforms, used to derive seeds from names and lyric text.
constexpr uint64_t Fnv1a(std::string_view text, uint64_t hash = 1469598103934665603ULL) {
    for (char c : text) {
        hash ^= static_cast<unsigned char>(c);
        hash *= 1099511628211ULL;
    }
    return hash;
}

/// @brief Seeded PRNG (mt19937_64, whose output sequence the standard fixes) with
/// hand-written distributions.
class Rng {
  public:
    explicit Rng(uint64_t seed) : engine_(seed) {}

    /// An independent stream per purpose, so changing one part of the song does not
    /// reshuffle every other part.
    static uint64_t Derive(uint64_t seed, std::string_view purpose) {
        uint64_t z = seed ^ Fnv1a(purpose);
        z += 0x9e3779b97f4a7c15ULL;  // splitmix64 finaliser
        z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
        z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
        return z ^ (z >> 31);
    }

    uint64_t Next() { return engine_(); }
    /// Uniform in [0, 1).
    double Unit() { return static_cast<double>(Next() >> 11) * 0x1.0p-53; }
    /// Uniform in [lo, hi).
    double Uniform(double lo, double hi) { return lo + (hi - lo) * Unit(); }
    /// Uniform integer in [lo, hi] (inclusive); the tiny modulo bias does not matter here.
    int Range(int lo, int hi) {
        if (hi <= lo) return lo;
        return lo + static_cast<int>(Next() % static_cast<uint64_t>(hi - lo + 1));
    }
    bool Chance(double p) { return Unit() < p; }
    template <typename T>
    const T& Pick(const std::vector<T>& items) {
        return items[static_cast<size_t>(Range(0, static_cast<int>(items.size()) - 1))];
    }

  private:
    std::mt19937_64 engine_;
};

}  // namespace songd::engine::synth
