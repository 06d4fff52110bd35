#include "engine/synth/arrangement.h"

#include <algorithm>
#include <cmath>
#include <cstdlib>

#include "engine/synth/rng.h"

namespace songd::engine::synth {
namespace {

using Progression = std::vector<int>;

struct Progressions {
    Progression verse, chorus;
};

Progressions ChooseProgressions(const Style& style, Rng& rng) {
    if (style.genre == Genre::kJazz) {
        static const std::vector<Progression> kVerse = {{1, 4, 0, 5}, {0, 5, 1, 4}, {2, 5, 1, 4}};
        static const std::vector<Progression> kChorus = {{3, 4, 2, 5}, {1, 4, 0, 0}, {0, 3, 1, 4}};
        return {rng.Pick(kVerse), rng.Pick(kChorus)};
    }
    if (style.minor) {
        // Minor progressions come home to i often and cadence on a major V, so the song
        // sounds minor rather than like its relative major.
        static const std::vector<Progression> kVerse = {
            {0, 5, 3, 4}, {0, 3, 4, 0}, {0, 6, 5, 4}, {0, 3, 0, 4}, {0, 5, 0, 4}};
        static const std::vector<Progression> kChorus = {
            {5, 6, 0, 0}, {0, 3, 5, 4}, {5, 3, 0, 4}, {0, 5, 3, 4}, {3, 4, 0, 0}};
        return {rng.Pick(kVerse), rng.Pick(kChorus)};
    }
    static const std::vector<Progression> kVerse = {
        {0, 5, 3, 4}, {0, 4, 5, 3}, {5, 3, 0, 4}, {0, 3, 0, 4}, {0, 5, 1, 4}};
    static const std::vector<Progression> kChorus = {
        {3, 4, 0, 5}, {0, 4, 5, 3}, {3, 0, 4, 5}, {5, 3, 0, 4}, {3, 4, 2, 5}};
    return {rng.Pick(kVerse), rng.Pick(kChorus)};
}

SectionKind KindAt(double t, const std::vector<LineSpan>& lines, double long_gap) {
    if (lines.empty() || t < lines.front().start)
        return lines.empty() ? SectionKind::kOutro : SectionKind::kIntro;
    if (t >= lines.back().end) return SectionKind::kOutro;
    size_t i = 0;
    while (i + 1 < lines.size() && lines[i + 1].start <= t) ++i;
    const LineSpan& line = lines[i];
    const SectionKind sung = line.chorus ? SectionKind::kChorus : SectionKind::kVerse;
    if (t < line.end || i + 1 >= lines.size()) return sung;
    const double gap = lines[i + 1].start - line.end;
    return gap >= long_gap ? SectionKind::kBreak : sung;
}

double KindEnergy(SectionKind kind) {
    switch (kind) {
        case SectionKind::kIntro:
            return 0.55;
        case SectionKind::kVerse:
            return 0.7;
        case SectionKind::kChorus:
            return 1.0;
        case SectionKind::kBreak:
            return 0.85;
        case SectionKind::kOutro:
            return 0.6;
    }
    return 0.7;
}

/// Chord tones of `chord` between lo and hi, closest to the previous voicing.
std::vector<int> Voice(const Chord& chord, int lo, int hi, const std::vector<int>& previous) {
    std::vector<int> best;
    double best_cost = 1e9;
    const int n = static_cast<int>(chord.tones.size());
    for (int inversion = 0; inversion < n; ++inversion) {
        std::vector<int> keys;
        int base = lo + PitchClass(chord.root + chord.tones[static_cast<size_t>(inversion)] - lo);
        keys.push_back(base);
        for (int k = 1; k < n; ++k) {
            const int pc = chord.root + chord.tones[static_cast<size_t>((inversion + k) % n)];
            int key = keys.back() + 1 + PitchClass(pc - keys.back() - 1);
            keys.push_back(key);
        }
        if (keys.back() > hi) continue;
        double cost = 0;
        if (!previous.empty()) {
            for (size_t k = 0; k < keys.size(); ++k) {
                cost += std::abs(keys[k] - previous[std::min(k, previous.size() - 1)]);
            }
        } else {
            cost = std::abs((keys.front() + keys.back()) / 2.0 - (lo + hi) / 2.0);
        }
        if (cost < best_cost) {
            best_cost = cost;
            best = keys;
        }
    }
    if (best.empty()) {  // range too narrow for any inversion: stack from the root
        for (int t : chord.tones) best.push_back(lo + PitchClass(chord.root - lo) + t);
    }
    return best;
}

int BassKey(int pc) {
    int key = 36 + PitchClass(pc);  // C2..B2
    return key > 43 ? key - 12 : key;
}

/// @brief Places notes of one part with swing and a little human timing.
class PartWriter {
  public:
    PartWriter(Score& score, const Style& style, double beat, Rng& rng)
        : score_(score), style_(style), beat_(beat), rng_(rng) {}

    /// Seconds of `beats` into `bar`, swinging off-beat eighths.
    double Time(const Bar& bar, double beats) const {
        double frac = beats - std::floor(beats);
        double swing = std::abs(frac - 0.5) < 1e-6 ? style_.swing * 0.5 * beat_ : 0.0;
        return bar.start + beats * beat_ + swing;
    }

    void Add(int channel, const Bar& bar, double beats, double length_beats, int key, int velocity,
             double offset = 0.0) {
        const double jitter = rng_.Uniform(-0.004, 0.004);
        const double start = std::max(0.0, Time(bar, beats) + offset + jitter);
        const double end = std::max(start + 0.02, Time(bar, beats + length_beats) + offset);
        velocity += rng_.Range(-5, 5);
        score_.notes.push_back(
            {start, end, channel, std::clamp(key, 0, 127), std::clamp(velocity, 1, 127)});
    }

  private:
    Score& score_;
    const Style& style_;
    double beat_;
    Rng& rng_;
};

int Level(double base, const Bar& bar, const Style& style) {
    return static_cast<int>(base * (0.55 + 0.3 * bar.energy + 0.15 * style.energy));
}

void WriteChords(const Style& style, const Arrangement& arr, PartWriter& w, Rng& rng) {
    std::vector<int> previous;
    for (size_t b = 0; b < arr.bars.size(); ++b) {
        const Bar& bar = arr.bars[b];
        const bool final_bar = b + 1 == arr.bars.size();
        const int v = Level(96, bar, style);
        if (style.accomp == AccompPattern::kPower) {
            const int root = 40 + PitchClass(bar.chord.root - 40);
            const std::vector<int> keys = {root, root + 7, root + 12};
            if (final_bar) {
                for (int k : keys) w.Add(kChordChannel, bar, 0, 4, k, v);
                continue;
            }
            const bool open = bar.kind == SectionKind::kChorus || bar.kind == SectionKind::kBreak;
            for (int e = 0; e < 8; ++e) {
                if (open && e % 4 != 0) continue;
                const double len = open ? 1.9 : 0.4;
                for (int k : keys) w.Add(kChordChannel, bar, e * 0.5, len, k, e % 2 ? v - 12 : v);
            }
            continue;
        }
        if (style.accomp == AccompPattern::kStrum) {
            std::vector<int> keys;
            keys.push_back(40 + PitchClass(bar.chord.root - 40));
            while (keys.size() < 5) {
                int next = keys.back() + 1;
                while (!bar.chord.Contains(next)) ++next;
                keys.push_back(next);
            }
            static const double kStrums[] = {0, 1, 1.5, 2.5, 3, 3.5};
            static const bool kDown[] = {true, true, false, false, true, false};
            const int count = final_bar ? 1 : 6;
            for (int s = 0; s < count; ++s) {
                const double len =
                    final_bar ? 4.0 : (s + 1 < 6 ? kStrums[s + 1] : 4.0) - kStrums[s];
                const int vel = kDown[s] ? v : v - 18;
                for (size_t k = 0; k < keys.size(); ++k) {
                    const size_t idx = kDown[s] ? k : keys.size() - 1 - k;
                    if (!kDown[s] && k >= 3) break;
                    w.Add(kChordChannel, bar, kStrums[s], len, keys[idx],
                          vel - static_cast<int>(k) * 2, 0.011 * static_cast<double>(k));
                }
            }
            continue;
        }
        const auto keys = Voice(bar.chord, 55, 76, previous);
        previous = keys;
        if (final_bar) {
            for (int k : keys) w.Add(kChordChannel, bar, 0, 4, k, v);
            w.Add(kChordChannel, bar, 0, 4, 48 + PitchClass(bar.chord.root - 48), v);
            continue;
        }
        switch (style.accomp) {
            case AccompPattern::kBlock: {
                const bool two = bar.energy * style.energy > 0.45;
                for (int half = 0; half < (two ? 2 : 1); ++half) {
                    for (int k : keys)
                        w.Add(kChordChannel, bar, half * 2.0, two ? 1.9 : 3.9, k, v - 6);
                }
                break;
            }
            case AccompPattern::kArpeggio: {
                std::vector<int> notes = keys;
                notes.push_back(keys.front() + 12);
                static const int kOrder[8] = {0, 1, 2, 3, 2, 1, 2, 1};
                const int root = 43 + PitchClass(bar.chord.root - 43);  // left hand
                w.Add(kChordChannel, bar, 0, 4, root, v);
                w.Add(kChordChannel, bar, 0, 4, root + 12 <= 59 ? root + 12 : root + 7, v - 15);
                for (int e = 0; e < 8; ++e) {
                    const int idx = kOrder[e] % static_cast<int>(notes.size());
                    w.Add(kChordChannel, bar, e * 0.5, 1.0, notes[static_cast<size_t>(idx)],
                          v - 12 - (e % 2) * 8);
                }
                break;
            }
            case AccompPattern::kStabs: {
                for (int e = 0; e < 4; ++e) {
                    for (int k : keys) w.Add(kChordChannel, bar, e + 0.5, 0.3, k, v - 10);
                }
                break;
            }
            case AccompPattern::kComp: {
                std::vector<double> hits = {0.0, 1.5};
                if (rng.Chance(0.5)) hits.push_back(3.0);
                if (rng.Chance(0.3)) hits.push_back(2.5);
                for (double h : hits) {
                    for (int k : keys)
                        w.Add(kChordChannel, bar, h, h == 0.0 ? 1.0 : 0.5, k, v - 14);
                }
                break;
            }
            case AccompPattern::kStrum:
            case AccompPattern::kPower:
                break;  // handled above
        }
    }
}

void WriteBass(const Style& style, const Arrangement& arr, PartWriter& w) {
    for (size_t b = 0; b < arr.bars.size(); ++b) {
        const Bar& bar = arr.bars[b];
        if (bar.kind == SectionKind::kIntro && bar.index_in_section == 0 && bar.section_bars > 1) {
            continue;  // let the intro open without bass
        }
        const int root = BassKey(bar.chord.root);
        const int fifth = root + 7 > 47 ? root - 5 : root + 7;
        const int v = Level(100, bar, style);
        if (b + 1 == arr.bars.size()) {
            w.Add(kBassChannel, bar, 0, 4, root, v);
            continue;
        }
        const int next_root = b + 1 < arr.bars.size() ? BassKey(arr.bars[b + 1].chord.root) : root;
        switch (style.bass) {
            case BassPattern::kWhole:
                w.Add(kBassChannel, bar, 0, 3.9, root, v);
                break;
            case BassPattern::kRootFifth:
                w.Add(kBassChannel, bar, 0, 1.9, root, v);
                w.Add(kBassChannel, bar, 2, 1.9, bar.energy > 0.8 ? fifth : root, v - 8);
                break;
            case BassPattern::kEighths:
                for (int e = 0; e < 8; ++e)
                    w.Add(kBassChannel, bar, e * 0.5, 0.45, root, e % 2 ? v - 10 : v);
                break;
            case BassPattern::kOffbeat:
                if (bar.energy > 0.8) w.Add(kBassChannel, bar, 0, 0.4, root, v);
                for (int e = 0; e < 4; ++e)
                    w.Add(kBassChannel, bar, e + 0.5, 0.4, root + 12, v - 4);
                break;
            case BassPattern::kWalking: {
                const int third = root + bar.chord.tones[1];
                const int approach = next_root + (next_root > root ? -1 : 1);
                const int keys[4] = {root, third, fifth > root ? fifth : root + 7, approach};
                for (int q = 0; q < 4; ++q)
                    w.Add(kBassChannel, bar, q, 0.9, keys[q], v - (q % 2) * 6);
                break;
            }
            case BassPattern::kSyncopated:
                w.Add(kBassChannel, bar, 0, 1.4, root, v);
                w.Add(kBassChannel, bar, 1.75, 0.5, root, v - 10);
                w.Add(kBassChannel, bar, 2.5, 1.0, root + 12 <= 55 ? root + 12 : fifth, v - 6);
                break;
        }
    }
}

void WritePad(const Style& style, const Arrangement& arr, PartWriter& w) {
    if (style.programs.pad < 0) return;
    std::vector<int> previous;
    for (const Bar& bar : arr.bars) {
        const bool always = style.energy < 0.5;
        const bool plays = always || bar.kind == SectionKind::kChorus ||
                           bar.kind == SectionKind::kBreak || bar.kind == SectionKind::kOutro;
        const auto keys = Voice(bar.chord, 60, 81, previous);
        previous = keys;
        if (!plays) continue;
        for (int k : keys) w.Add(kPadChannel, bar, 0, 4.0, k, Level(72, bar, style));
    }
}

void WriteLead(const Style& style, const Arrangement& arr, PartWriter& w, Rng& rng) {
    if (style.programs.lead < 0) return;
    const bool low = style.programs.lead == 42 || style.programs.lead == 32;
    const int lo = low ? 50 : 67, hi = low ? 67 : 84;
    const auto scale = ScalePitchClasses(style.key, style.minor);
    int previous = (lo + hi) / 2;
    // Rhythms of one bar in beats: (onset, length).
    static const std::vector<std::vector<std::pair<double, double>>> kRhythms = {
        {{0, 1}, {1, 1}, {2, 2}},
        {{0, 1.5}, {1.5, 0.5}, {2, 1}, {3, 1}},
        {{0, 0.5}, {0.5, 0.5}, {1, 1}, {2, 1.5}, {3.5, 0.5}},
        {{0, 2}, {2, 1}, {3, 1}},
        {{0, 3}},
    };
    for (size_t b = 0; b + 1 < arr.bars.size(); ++b) {
        const Bar& bar = arr.bars[b];
        const bool instrumental = bar.kind == SectionKind::kIntro ||
                                  bar.kind == SectionKind::kBreak ||
                                  bar.kind == SectionKind::kOutro;
        if (!instrumental) continue;
        if (bar.kind == SectionKind::kIntro && bar.index_in_section == 0 && bar.section_bars > 2) {
            continue;
        }
        const bool phrase_end = bar.index_in_section % 2 == 1 || bar.last_before_change;
        const auto& rhythm = phrase_end ? kRhythms.back() : rng.Pick(kRhythms);
        for (size_t n = 0; n < rhythm.size(); ++n) {
            const bool strong = std::fmod(rhythm[n].first, 2.0) == 0.0;
            int best = previous;
            double best_cost = 1e9;
            for (int key = lo; key <= hi; ++key) {
                const int pc = PitchClass(key);
                const bool in_scale = std::find(scale.begin(), scale.end(), pc) != scale.end();
                if (!in_scale || (strong && !bar.chord.Contains(pc))) continue;
                const double cost =
                    std::abs(key - previous) + rng.Uniform(0, 3.5) + (key == previous ? 2.0 : 0.0);
                if (cost < best_cost) {
                    best_cost = cost;
                    best = key;
                }
            }
            previous = best;
            w.Add(kLeadChannel, bar, rhythm[n].first, rhythm[n].second * 0.95, best,
                  Level(92, bar, style));
        }
    }
}

/// @brief A drum groove: 16 steps per instrument; 'X' accent, 'x' hit, 'o' ghost.
struct Groove {
    struct Line {
        int key;
        const char* steps;
    };
    std::vector<Line> lines;
};

Groove GrooveFor(DrumPattern pattern) {
    switch (pattern) {
        case DrumPattern::kNone:
            return {};
        case DrumPattern::kPop:
            return {{{36, "X.....x.X.x....."}, {38, "....X.......X..."}, {42, "x.x.x.x.x.x.x.x."}}};
        case DrumPattern::kRock:
            return {{{36, "X.x.....X.x....."}, {38, "....X.......X..."}, {42, "X.x.X.x.X.x.X.x."}}};
        case DrumPattern::kFourOnFloor:
            return {{{36, "X...X...X...X..."},
                     {39, "....X.......X..."},
                     {46, "..x...x...x...x."},
                     {42, "o...o...o...o..."}}};
        case DrumPattern::kBoomBap:
            return {{{36, "X......x..X....."}, {38, "....X.......X..."}, {42, "x.x.x.x.x.x.x.x."}}};
        case DrumPattern::kJazzSwing:
            return {{{51, "X...x.x.X...x.x."},
                     {44, "....x.......x..."},
                     {36, "o.......o......."},
                     {38, "..............o."}}};
        case DrumPattern::kFolk:
            return {{{36, "X.......x......."}, {37, "....x.......x..."}, {70, "x.o.x.o.x.o.x.o."}}};
        case DrumPattern::kHalfTime:
            return {{{36, "X......x.x......"}, {38, "........X......."}, {42, "xoxoxoxoxoxoxoxo"}}};
        case DrumPattern::kMetal:
            return {{{36, "xxxxxxxxxxxxxxxx"}, {38, "....X.......X..."}, {51, "X.x.X.x.X.x.X.x."}}};
        case DrumPattern::kCountry:
            return {{{36, "X.......X......."}, {38, "....X.......X..."}, {42, "x.x.x.x.x.x.x.x."}}};
        case DrumPattern::kBallad:
            return {{{36, "X.........x....."}, {37, "....x.......x..."}, {42, "x...x...x...x..."}}};
    }
    return {};
}

void WriteDrums(const Style& style, const Arrangement& arr, PartWriter& w) {
    if (style.programs.drum_kit < 0 || style.drums == DrumPattern::kNone) return;
    const Groove groove = GrooveFor(style.drums);
    const bool fills =
        style.drums != DrumPattern::kJazzSwing && style.drums != DrumPattern::kBallad;
    bool chorus_seen = false;
    for (size_t b = 0; b < arr.bars.size(); ++b) {
        const Bar& bar = arr.bars[b];
        chorus_seen = chorus_seen || bar.kind == SectionKind::kChorus;
        const int level = Level(112, bar, style);
        if (b + 1 == arr.bars.size()) {  // the final hit
            w.Add(kDrumChannel, bar, 0, 2, 36, level);
            w.Add(kDrumChannel, bar, 0, 2, 49, level - 10);
            continue;
        }
        bool plays = true;
        if (bar.kind == SectionKind::kIntro) {
            plays = style.energy >= 0.7 && bar.index_in_section * 2 >= bar.section_bars;
        } else if (bar.kind == SectionKind::kVerse) {
            plays = style.energy >= 0.3 || chorus_seen;
        }
        if (!plays) continue;
        const bool section_start = bar.index_in_section == 0 && bar.kind != SectionKind::kVerse;
        if (section_start && fills) w.Add(kDrumChannel, bar, 0, 1, 49, level - 8);
        const bool fill = fills && bar.last_before_change;
        for (const auto& line : groove.lines) {
            for (int s = 0; s < 16; ++s) {
                const char c = line.steps[s];
                if (c == '.') continue;
                if (fill && s >= 12 && line.key != 36) continue;
                const int v = c == 'X' ? level : c == 'x' ? level - 18 : level - 45;
                w.Add(kDrumChannel, bar, s * 0.25, 0.2, line.key, v);
            }
        }
        if (fill) {
            static const int kToms[4] = {50, 47, 45, 41};
            for (int s = 12; s < 16; ++s) {
                const int key = style.drums == DrumPattern::kFourOnFloor ? 38 : kToms[s - 12];
                w.Add(kDrumChannel, bar, s * 0.25, 0.2, key, level - 20 + (s - 12) * 5);
            }
        }
    }
}

}  // namespace

const char* SectionName(SectionKind kind) {
    switch (kind) {
        case SectionKind::kIntro:
            return "intro";
        case SectionKind::kVerse:
            return "verse";
        case SectionKind::kChorus:
            return "chorus";
        case SectionKind::kBreak:
            return "break";
        case SectionKind::kOutro:
            return "outro";
    }
    return "verse";
}

const Bar& Arrangement::BarAt(double t) const {
    auto it = std::upper_bound(bars.begin(), bars.end(), t,
                               [](double time, const Bar& bar) { return time < bar.start; });
    if (it == bars.begin()) return bars.front();
    return *(it - 1);
}

std::vector<std::string> Arrangement::SectionNames() const {
    std::vector<std::string> names;
    int last = -1;
    for (const Bar& bar : bars) {
        if (bar.section != last) names.emplace_back(SectionName(bar.kind));
        last = bar.section;
    }
    return names;
}

Arrangement PlanArrangement(const Style& style, const std::vector<LineSpan>& lines, double duration,
                            uint64_t seed) {
    Rng rng(Rng::Derive(seed, "arrangement"));
    Arrangement arr;
    arr.bpm = style.bpm;
    arr.beat = 60.0 / style.bpm;
    arr.end = duration;
    const double bar_len = 4 * arr.beat;
    const int n_bars = std::max(1, static_cast<int>(std::ceil(duration / bar_len)));
    const double long_gap = std::max(6.0, 2.5 * bar_len);
    const Progressions prog = ChooseProgressions(style, rng);

    for (int b = 0; b < n_bars; ++b) {
        Bar bar;
        bar.start = b * bar_len;
        bar.length = bar_len;
        // The kind at a quarter into the bar, so a line starting just after the downbeat
        // still opens its section on that bar.
        bar.kind = KindAt(bar.start + 0.25 * bar_len, lines, long_gap);
        arr.bars.push_back(bar);
    }
    // A short intro or outro would be a half-heard fragment; the final bar is always the
    // ending chord.
    int section = -1;
    for (size_t b = 0; b < arr.bars.size(); ++b) {
        if (b == 0 || arr.bars[b].kind != arr.bars[b - 1].kind) ++section;
        arr.bars[b].section = section;
    }
    for (size_t b = 0; b < arr.bars.size();) {
        size_t e = b;
        while (e < arr.bars.size() && arr.bars[e].section == arr.bars[b].section) ++e;
        for (size_t i = b; i < e; ++i) {
            Bar& bar = arr.bars[i];
            bar.index_in_section = static_cast<int>(i - b);
            bar.section_bars = static_cast<int>(e - b);
            bar.last_before_change = e < arr.bars.size() && i + 1 == e;
            const Progression& p =
                bar.kind == SectionKind::kChorus || bar.kind == SectionKind::kBreak ? prog.chorus
                                                                                    : prog.verse;
            int degree = p[static_cast<size_t>(bar.index_in_section) % p.size()];
            // Cadence into a chorus on the dominant-function chord.
            if (bar.last_before_change && arr.bars[e].kind == SectionKind::kChorus &&
                bar.kind != SectionKind::kChorus) {
                degree = 4;
            }
            if (i + 1 == arr.bars.size()) degree = 0;
            bar.chord = DiatonicChord(style.key, style.minor, degree, style.sevenths);
            if (style.minor && degree == 4) {
                bar.chord.tones[1] = 4;  // harmonic minor: the dominant is major
                if (bar.chord.tones.size() > 3) bar.chord.tones[3] = 10;
            }
            const double ramp =
                bar.kind == SectionKind::kOutro
                    ? 1.0 - 0.4 * bar.index_in_section / std::max(1, bar.section_bars)
                    : 1.0;
            bar.energy = KindEnergy(bar.kind) * ramp;
        }
        b = e;
    }
    return arr;
}

Score BuildBand(const Style& style, const Arrangement& arrangement, uint64_t seed) {
    Rng rng(Rng::Derive(seed, "band"));
    Score score;
    const int reverb = std::clamp(style.reverb, 0, 127);
    score.channels.push_back({kChordChannel, style.programs.chords, false, 100, 46, reverb, 0});
    if (style.programs.bass >= 0) {
        score.channels.push_back({kBassChannel, style.programs.bass, false, 104, 64, 10, 0});
    }
    if (style.programs.pad >= 0) {
        score.channels.push_back({kPadChannel, style.programs.pad, false, 78, 84, reverb + 10, 0});
    }
    if (style.programs.lead >= 0) {
        score.channels.push_back({kLeadChannel, style.programs.lead, false, 92, 76, reverb, 0});
    }
    if (style.programs.drum_kit >= 0 && style.drums != DrumPattern::kNone) {
        score.channels.push_back(
            {kDrumChannel, style.programs.drum_kit, true, 112, 64, reverb / 2, 0});
    }
    PartWriter writer(score, style, arrangement.beat, rng);
    WriteChords(style, arrangement, writer, rng);
    if (style.programs.bass >= 0) WriteBass(style, arrangement, writer);
    WritePad(style, arrangement, writer);
    WriteLead(style, arrangement, writer, rng);
    WriteDrums(style, arrangement, writer);
    // Nothing may sound past the end: the renderer stops there.
    for (Note& n : score.notes) n.end = std::min(n.end, arrangement.end);
    score.notes.erase(
        std::remove_if(score.notes.begin(), score.notes.end(),
                       [&](const Note& n) { return n.start >= arrangement.end - 0.01; }),
        score.notes.end());
    std::stable_sort(score.notes.begin(), score.notes.end(),
                     [](const Note& a, const Note& b) { return a.start < b.start; });
    return score;
}

}  // namespace songd::engine::synth
