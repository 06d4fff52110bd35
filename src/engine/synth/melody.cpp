#include "engine/synth/melody.h"

#include <algorithm>
#include <cmath>
#include <map>

#include "engine/synth/rng.h"

namespace songd::engine::synth {

double MidiToHz(double key) { return 440.0 * std::exp2((key - 69.0) / 12.0); }

std::vector<VocalNote> PlanVocalRhythm(const std::vector<VocalLine>& lines, double bpm,
                                       uint64_t seed) {
    std::vector<VocalNote> notes;
    const double beat = 60.0 / bpm;
    const double eighth = beat / 2, sixteenth = beat / 4;
    for (size_t li = 0; li < lines.size(); ++li) {
        const VocalLine& line = lines[li];
        const int n = line.syllables;
        const double available = line.limit - line.start;
        if (n <= 0 || available <= 0) continue;
        Rng rng(Rng::Derive(seed ^ line.text_hash, "rhythm"));
        std::vector<double> units(static_cast<size_t>(n), 1.0);
        for (int k = 0; k + 1 < n; ++k) {
            if (rng.Chance(0.22)) units[static_cast<size_t>(k)] = 2.0;
        }
        units.back() = n > 1 ? 4.0 : 3.0;
        auto total = [&] {
            double sum = 0;
            for (double u : units) sum += u * eighth;
            return sum;
        };
        if (total() > available) {
            std::fill(units.begin(), units.end(), 1.0);
            units.back() = 2.0;
            // Some pairs of eighths become dotted (long-short): same length, more lilt.
            for (int k = 0; k + 2 < n; k += 2) {
                if (rng.Chance(0.3)) {
                    units[static_cast<size_t>(k)] = 1.5;
                    units[static_cast<size_t>(k) + 1] = 0.5;
                }
            }
        }
        bool grid = true;
        double scale = 1.0;
        if (total() > available) {  // too many syllables for the time: sing them faster
            scale = available / total();
            grid = false;
        }
        double onset = line.start;
        std::vector<double> onsets;
        for (int k = 0; k < n; ++k) {
            if (k > 0) {
                const double ideal =
                    onsets.back() + units[static_cast<size_t>(k) - 1] * eighth * scale;
                onset = ideal;
                if (grid) {
                    const double snapped = std::round(ideal / sixteenth) * sixteenth;
                    if (snapped > onsets.back() + 0.06 && snapped < line.limit) onset = snapped;
                }
            }
            onsets.push_back(onset);
        }
        for (int k = 0; k < n; ++k) {
            VocalNote note;
            note.line = static_cast<int>(li);
            note.syllable = k;
            note.start = onsets[static_cast<size_t>(k)];
            note.end = k + 1 < n ? onsets[static_cast<size_t>(k) + 1]
                                 : std::min(line.limit, note.start + units.back() * eighth * scale);
            if (note.end <= note.start) continue;
            notes.push_back(note);
        }
    }
    return notes;
}

void AssignVocalPitches(std::vector<VocalNote>& notes, const std::vector<VocalLine>& lines,
                        const Arrangement& arrangement, const Style& style, VocalRange range,
                        uint64_t seed) {
    const auto scale = ScalePitchClasses(style.key, style.minor);
    const double beat = 60.0 / arrangement.bpm;
    auto in_scale = [&](int key) {
        return std::find(scale.begin(), scale.end(), PitchClass(key)) != scale.end();
    };
    // The tune of each line text sung so far: a repeated line (the chorus) comes back with
    // the same notes wherever the harmony allows them.
    std::map<uint64_t, std::vector<int>> sung;
    size_t i = 0;
    int previous = -1;
    while (i < notes.size()) {
        size_t j = i;
        while (j < notes.size() && notes[j].line == notes[i].line) ++j;
        const VocalLine& line = lines[static_cast<size_t>(notes[i].line)];
        const size_t count = j - i;
        Rng rng(Rng::Derive(seed ^ line.text_hash, "contour"));
        const double span = range.hi - range.lo;
        const double center = range.lo + span * (line.chorus ? 0.6 : 0.42);
        const double arc = rng.Uniform(3.0, 7.0) * (rng.Chance(0.75) ? 1.0 : -1.0);
        const double peak_at = rng.Uniform(0.35, 0.7);
        const double wave = rng.Uniform(1.0, 2.5), wave_phase = rng.Uniform(0.0, 2 * M_PI);
        if (previous < 0) previous = static_cast<int>(std::lround(center));
        const auto before = sung.find(line.text_hash);
        const std::vector<int>* remembered =
            before != sung.end() && before->second.size() == count ? &before->second : nullptr;
        std::vector<int> tune;
        for (size_t k = 0; k < count; ++k) {
            VocalNote& note = notes[i + k];
            const Chord& chord = arrangement.BarAt(note.start + 0.01).chord;
            const double pos =
                count > 1 ? static_cast<double>(k) / static_cast<double>(count - 1) : 0.0;
            const double shape = pos <= peak_at ? pos / peak_at : (1.0 - pos) / (1.0 - peak_at);
            const double target =
                center + arc * shape + wave * std::sin(4 * M_PI * pos + wave_phase);
            const double in_beat = std::fmod(note.start / beat, 1.0);
            const bool last = k + 1 == count;
            const bool strong = k == 0 || last || note.end - note.start >= beat * 0.9 ||
                                in_beat < 0.1 || in_beat > 0.9;
            auto allowed = [&](int key) {
                return chord.Contains(key) || (!strong && in_scale(key));
            };
            int best = std::clamp(previous, range.lo, range.hi);
            double best_cost = 1e9;
            for (int key = range.lo; key <= range.hi; ++key) {
                if (!allowed(key)) continue;
                double cost;
                if (remembered) {  // as close as the harmony allows to the first time
                    cost = std::abs(key - (*remembered)[k]) + (key > (*remembered)[k] ? 0.1 : 0);
                } else {
                    cost = 0.6 * std::abs(key - target) + 0.3 * std::abs(key - previous) +
                           rng.Uniform(0.0, 2.0);
                    if (std::abs(key - previous) > 7) cost += 6;  // singable leaps only
                    if (key == previous && !last) cost += 1.2;    // a tune moves
                    if (last && PitchClass(key - chord.root) == 0) cost -= 2.5;  // rest on the root
                }
                if (cost < best_cost) {
                    best_cost = cost;
                    best = key;
                }
            }
            note.key = best;
            previous = best;
            tune.push_back(best);
        }
        if (!remembered) sung[line.text_hash] = tune;
        i = j;
    }
}

}  // namespace songd::engine::synth
