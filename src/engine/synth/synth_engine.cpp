#include "engine/synth/synth_engine.h"

#include <sndfile.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <fstream>
#include <map>
#include <sstream>

#include "audio/reference.h"
#include "core/error.h"
#include "core/log.h"
#include "core/text.h"
#include "engine/lrc.h"
#include "engine/synth/arrangement.h"
#include "engine/synth/fluid_renderer.h"
#include "engine/synth/melody.h"
#include "engine/synth/psola.h"
#include "engine/synth/reverb.h"
#include "engine/synth/rng.h"
#include "engine/synth/speech.h"
#include "engine/synth/style.h"

namespace songd::engine::synth {
namespace {

[[noreturn]] void Fail(const std::string& detail) {
    throw core::Error(core::ErrorCode::kRenderFailed, detail);
}

/// @brief Forwards monotonic progress in [from, to] of the whole render.
class Progress {
  public:
    explicit Progress(const ProgressFn& fn) : fn_(fn) {}
    void Report(double percent) {
        const int p = std::clamp(static_cast<int>(percent), 0, 100);
        if (p > last_ && fn_) fn_(p);
        last_ = std::max(last_, p);
    }
    void Stage(double from, double to, double fraction) {
        Report(from + (to - from) * std::clamp(fraction, 0.0, 1.0));
    }

  private:
    const ProgressFn& fn_;
    int last_ = -1;
};

/// Lyric text reduced to what makes two lines "the same line" for chorus detection.
std::string NormaliseLine(const std::string& text) {
    std::string out;
    for (char c : text) {
        const auto u = static_cast<unsigned char>(c);
        if (u >= 0x80) {
            out.push_back(c);
        } else if (std::isalnum(u)) {
            out.push_back(static_cast<char>(std::tolower(u)));
        }
    }
    return out;
}

/// One-pole high-pass at about 3 Hz: removes DC without touching anything audible.
void RemoveDc(std::vector<float>& x) {
    float x1 = 0, y1 = 0;
    for (auto& v : x) {
        float y = v - x1 + 0.9995f * y1;
        if (std::abs(y) < 1e-20f) y = 0.0f;  // no denormals in long silences
        x1 = v;
        y1 = y;
        v = y;
    }
}

/// @brief One timed line (lines sharing a timestamp are sung as one).
struct LyricGroup {
    double start = 0;
    std::string text;
};

std::vector<LyricGroup> GroupLines(const std::vector<LrcLine>& lines) {
    std::vector<LyricGroup> groups;
    for (const auto& line : lines) {
        const double t = static_cast<double>(line.time_ms) / 1000.0;
        if (!groups.empty() && std::abs(groups.back().start - t) < 1e-9) {
            groups.back().text += " " + line.text;
        } else {
            groups.push_back({t, line.text});
        }
    }
    return groups;
}

/// The form of an instrumental. The arranger takes its sections from the sung lines, so an
/// instrumental gets silent lines where a song would sing: after a 4-bar intro, 8 bars of verse,
/// 8 of chorus and a 4-bar break (the lead's melody), repeated; the last 4 bars are the outro.
std::vector<LineSpan> InstrumentalForm(double bpm, double duration) {
    const double bar = 4 * 60.0 / bpm;
    std::vector<LineSpan> spans;
    for (double t = 4 * bar; t + 8 * bar <= duration - 4 * bar; t += 20 * bar) {
        spans.push_back({t, t + 8 * bar, false});
        const double chorus_end = std::min(t + 16 * bar, duration - 4 * bar);
        spans.push_back({t + 8 * bar, chorus_end, true});
    }
    return spans;
}

/// @brief An owned libsndfile handle.
using SndFile = std::unique_ptr<SNDFILE, int (*)(SNDFILE*)>;

SndFile OpenForWrite(const std::filesystem::path& path, int channels) {
    SF_INFO info{};
    info.samplerate = kSampleRate;
    info.channels = channels;
    info.format = SF_FORMAT_WAV | SF_FORMAT_FLOAT;
    SndFile file(sf_open(path.c_str(), SFM_WRITE, &info), sf_close);
    if (!file) Fail("cannot write " + path.string() + ": " + sf_strerror(nullptr));
    // The PEAK chunk carries a wall-clock timestamp; without it equal renders are equal files.
    sf_command(file.get(), SFC_SET_ADD_PEAK_CHUNK, nullptr, SF_FALSE);
    return file;
}

void WriteStereo(const std::filesystem::path& path, const std::vector<float>& left,
                 const std::vector<float>& right, float gain) {
    auto file = OpenForWrite(path, 2);
    const size_t frames = left.size();
    std::vector<float> block;
    for (size_t pos = 0; pos < frames; pos += 65536) {
        const size_t n = std::min<size_t>(65536, frames - pos);
        block.resize(n * 2);
        for (size_t i = 0; i < n; ++i) {
            block[2 * i] = left[pos + i] * gain;
            block[2 * i + 1] = right[pos + i] * gain;
        }
        if (sf_writef_float(file.get(), block.data(), static_cast<sf_count_t>(n)) !=
            static_cast<sf_count_t>(n)) {
            Fail("short write to " + path.string());
        }
    }
}

void WriteMono(const std::filesystem::path& path, const std::vector<float>& x, float gain) {
    auto file = OpenForWrite(path, 1);
    std::vector<float> block;
    for (size_t pos = 0; pos < x.size(); pos += 65536) {
        const size_t n = std::min<size_t>(65536, x.size() - pos);
        block.assign(x.begin() + static_cast<std::ptrdiff_t>(pos),
                     x.begin() + static_cast<std::ptrdiff_t>(pos + n));
        for (auto& v : block) v *= gain;
        if (sf_writef_float(file.get(), block.data(), static_cast<sf_count_t>(n)) !=
            static_cast<sf_count_t>(n)) {
            Fail("short write to " + path.string());
        }
    }
}

const char* KeyName(int pc) {
    static const char* kNames[12] = {"C",  "C#", "D",  "Eb", "E",  "F",
                                     "F#", "G",  "Ab", "A",  "Bb", "B"};
    return kNames[PitchClass(pc)];
}

std::string JsonString(const std::string& s) {
    std::string out = "\"";
    for (char c : s) {
        if (c == '"' || c == '\\') {
            out += '\\';
            out += c;
        } else if (static_cast<unsigned char>(c) < 0x20) {
            char buf[8];
            std::snprintf(buf, sizeof buf, "\\u%04x", c);
            out += buf;
        } else {
            out += c;
        }
    }
    return out + "\"";
}

std::string PlanJson(const Style& style, const Arrangement& arr, bool female,
                     const std::filesystem::path& soundfont, double vocal_gain_db) {
    std::ostringstream j;
    j << "{\n  \"genre\": " << JsonString(style.genre_name) << ",\n  \"bpm\": " << style.bpm
      << ",\n  \"key\": " << JsonString(KeyName(style.key))
      << ",\n  \"key_pitch_class\": " << style.key
      << ",\n  \"mode\": " << JsonString(style.minor ? "minor" : "major")
      << ",\n  \"energy\": " << style.energy << ",\n  \"swing\": " << style.swing
      << ",\n  \"voice\": " << JsonString(female ? "female" : "male") << ",\n  \"programs\": {"
      << "\"chords\": " << style.programs.chords << ", \"pad\": " << style.programs.pad
      << ", \"bass\": " << style.programs.bass << ", \"lead\": " << style.programs.lead
      << ", \"drum_kit\": " << (style.drums == DrumPattern::kNone ? -1 : style.programs.drum_kit)
      << "},\n"
      << "  \"vocal_gain_db\": " << vocal_gain_db
      << ",\n  \"soundfont\": " << JsonString(soundfont.string()) << ",\n  \"sections\": [";
    const auto names = arr.SectionNames();
    for (size_t i = 0; i < names.size(); ++i) j << (i ? ", " : "") << JsonString(names[i]);
    j << "],\n  \"matched\": [";
    for (size_t i = 0; i < style.matched.size(); ++i) {
        j << (i ? ", " : "") << JsonString(style.matched[i]);
    }
    j << "]\n}\n";
    return j.str();
}

void WriteText(const std::filesystem::path& path, const std::string& text) {
    std::ofstream out(path, std::ios::binary | std::ios::trunc);
    out << text;
    if (!out) Fail("cannot write " + path.string());
}

}  // namespace

void SynthEngine::Start() {
    FindSoundFont(soundfont_);
    Engine::Start();
}

std::filesystem::path SynthEngine::Render(const RenderRequest& request,
                                          const ProgressFn& progress_fn,
                                          const CancelToken& cancel) {
    Progress progress(progress_fn);
    progress.Report(0);
    // An instrumental (asked for, or lyrics with nothing to sing): the band alone.
    const bool instrumental = request.instrumental || core::Trim(request.lyrics).empty();
    const auto lines =
        instrumental ? std::vector<LrcLine>{} : ParseLrc(request.lyrics, request.audio_length);
    const int64_t frames = TargetFrames(request.audio_length);
    const double duration = static_cast<double>(frames) / kSampleRate;
    const uint64_t seed = request.seed;
    Style style = ParseStyle(request.style_prompt, seed);
    if (!request.ref_audio_path.empty()) {
        // The reference's tempo and key win; the prompt's instruments and mood stay.
        const audio::ReferenceAudio ref = audio::AnalyzeReference(request.ref_audio_path);
        FollowReference(style, ref.tempo_bpm, ref.key.tonic, ref.key.minor);
        core::LogEvent("info", "synth_reference",
                       {{"job_id", request.job_id},
                        {"tempo_bpm", std::to_string(ref.tempo_bpm)},
                        {"key", ref.key.Name()}});
    }
    const auto soundfont = FindSoundFont(soundfont_);
    Rng voice_rng(Rng::Derive(seed, "voice"));
    const bool female = style.voice == 1 || (style.voice == 0 && voice_rng.Chance(0.5));
    const VocalRange range = female ? VocalRange{57, 74} : VocalRange{48, 65};
    cancel.ThrowIfCancelled();

    // 1. Speak every line (split by script so Chinese and English get their own voice).
    const auto groups = GroupLines(lines);
    std::map<std::string, int> counts;
    for (const auto& g : groups) ++counts[NormaliseLine(g.text)];
    std::vector<SpeechRequest> requests;
    std::vector<int> request_group;
    for (size_t g = 0; g < groups.size(); ++g) {
        for (const auto& run : SplitByScript(groups[g].text)) {
            if (!HasLetter(run.text)) continue;
            std::string voice = run.han ? "cmn-latn-pinyin" : "en-us";
            if (female) voice += "+f3";
            requests.push_back({run.text, voice});
            request_group.push_back(static_cast<int>(g));
        }
    }
    progress.Report(2);
    const auto speech =
        requests.empty() ? std::vector<Speech>{} : Speak(requests, cancel, [&](size_t done) {
            progress.Stage(2, 20, static_cast<double>(done) / static_cast<double>(requests.size()));
        });

    // 2. Syllables per line, and when each is sung.
    struct SyllableRef {
        size_t request;
        Syllable syllable;
    };
    std::vector<std::vector<SyllableRef>> group_syllables(groups.size());
    for (size_t r = 0; r < speech.size(); ++r) {
        for (const auto& s : Syllabify(speech[r])) {
            group_syllables[static_cast<size_t>(request_group[r])].push_back({r, s});
        }
    }
    std::vector<VocalLine> vocal_lines;
    for (size_t g = 0; g < groups.size(); ++g) {
        VocalLine line;
        line.start = groups[g].start;
        const double next = g + 1 < groups.size() ? groups[g + 1].start - 0.15 : duration - 1.0;
        line.limit = std::max(line.start, std::min(next, duration - 0.5));
        line.syllables = static_cast<int>(group_syllables[g].size());
        const std::string norm = NormaliseLine(groups[g].text);
        line.chorus = counts[norm] > 1;
        line.text_hash = Fnv1a(norm);
        vocal_lines.push_back(line);
    }
    auto notes = PlanVocalRhythm(vocal_lines, style.bpm, seed);
    std::vector<LineSpan> spans;
    for (size_t g = 0; g < groups.size(); ++g) {
        LineSpan span{vocal_lines[g].start, vocal_lines[g].start + 0.5, vocal_lines[g].chorus};
        for (const auto& n : notes) {
            if (n.line == static_cast<int>(g)) span.end = std::max(span.end, n.end);
        }
        spans.push_back(span);
    }

    // 3. Form and harmony, then the tune on top of it.
    if (instrumental) spans = InstrumentalForm(style.bpm, duration);
    const Arrangement arrangement = PlanArrangement(style, spans, duration, seed);
    AssignVocalPitches(notes, vocal_lines, arrangement, style, range, seed);
    cancel.ThrowIfCancelled();
    progress.Report(21);

    // 4. Sing: PSOLA every syllable onto its note at the speech sample rate.
    const int speech_rate = speech.empty() ? kSampleRate / 2 : speech.front().sample_rate;
    if (speech_rate * 2 != kSampleRate) {
        Fail("espeak-ng produced " + std::to_string(speech_rate) + " Hz audio, expected 22050 Hz");
    }
    std::vector<float> vocal22(static_cast<size_t>(frames / 2 + 2), 0.0f);
    std::vector<std::pair<int64_t, int64_t>> sounding;  // each note's sounding span, in samples
    {
        std::vector<std::vector<float>> inputs(speech.size());
        std::vector<PitchTrack> tracks(speech.size());
        std::vector<bool> analysed(speech.size(), false);
        auto syllable_of = [&](const VocalNote& note) -> const SyllableRef& {
            return group_syllables[static_cast<size_t>(note.line)]
                                  [static_cast<size_t>(note.syllable)];
        };
        // A singer starts the consonants ahead of the beat so the vowel lands on it: each
        // syllable begins early by its onset consonants (at most 120 ms, and at most 40% of
        // the note before, which then ends where this one begins).
        sounding.assign(notes.size(), {0, 0});
        for (size_t i = 0; i < notes.size(); ++i) {
            const auto begin = static_cast<int64_t>(std::llround(notes[i].start * speech_rate));
            const Syllable& syl = syllable_of(notes[i]).syllable;
            double lead = std::min<double>(static_cast<double>(syl.nucleus_begin - syl.begin),
                                           0.12 * speech_rate);
            if (i > 0 && notes[i].start - notes[i - 1].end < 0.12) {
                lead = std::min(lead, 0.4 * (notes[i - 1].end - notes[i - 1].start) * speech_rate);
            }
            const int64_t early = std::llround(std::max(0.0, lead));
            sounding[i] = {std::max<int64_t>(0, begin - early),
                           static_cast<int64_t>(std::llround(notes[i].end * speech_rate))};
            if (i > 0) {
                sounding[i - 1].second = std::min(sounding[i - 1].second, sounding[i].first);
            }
        }
        for (size_t i = 0; i < notes.size(); ++i) {
            if (i % 16 == 0) {
                cancel.ThrowIfCancelled();
                progress.Stage(21, 35, static_cast<double>(i) / static_cast<double>(notes.size()));
            }
            const auto& note = notes[i];
            const auto& ref = syllable_of(note);
            if (!analysed[ref.request]) {
                const auto& samples = speech[ref.request].samples;
                float peak = 1.0f;
                for (int16_t s : samples) peak = std::max(peak, std::abs(static_cast<float>(s)));
                auto& x = inputs[ref.request];
                x.resize(samples.size());
                for (size_t k = 0; k < samples.size(); ++k)
                    x[k] = 0.5f * static_cast<float>(samples[k]) / peak;
                tracks[ref.request] = AnalysePitch(x, speech_rate);
                analysed[ref.request] = true;
            }
            SungNote sung;
            sung.out_begin = sounding[i].first;
            sung.out_end = sounding[i].second;
            sung.frequency = MidiToHz(note.key);
            SingSyllable(inputs[ref.request], tracks[ref.request], ref.syllable, sung, speech_rate,
                         vocal22);
        }
    }
    std::vector<float> vocals = Upsample2x(vocal22);
    vocals.resize(static_cast<size_t>(frames), 0.0f);
    vocal22 = {};
    progress.Report(36);

    // 5. The band.
    const Score score = BuildBand(style, arrangement, seed);
    FluidRenderer renderer(soundfont);
    StereoBuffer band = renderer.Render(
        score, frames, [&](double f) { progress.Stage(36, 90, f); }, cancel);

    // 6. Mix: vocals a little above the band, a fade at the very end, peaks at -1 dBFS.
    // Some SoundFont samples, and the speech, carry a DC offset.
    RemoveDc(band.left);
    RemoveDc(band.right);
    RemoveDc(vocals);
    const auto fade = static_cast<int64_t>(std::min(4.0, duration * 0.1) * kSampleRate);
    for (int64_t i = std::max<int64_t>(0, frames - fade); i < frames; ++i) {
        const auto g =
            static_cast<float>(static_cast<double>(frames - i) / static_cast<double>(fade));
        band.left[static_cast<size_t>(i)] *= g * g;
        band.right[static_cast<size_t>(i)] *= g * g;
        vocals[static_cast<size_t>(i)] *= g * g;
    }
    double band_energy = 0, vocal_energy = 0;
    int64_t vocal_frames = 0;
    for (int64_t i = 0; i < frames; ++i) {
        const auto k = static_cast<size_t>(i);
        band_energy +=
            0.5 * (double(band.left[k]) * band.left[k] + double(band.right[k]) * band.right[k]);
    }
    for (const auto& n : notes) {
        const auto b = std::clamp<int64_t>(std::llround(n.start * kSampleRate), 0, frames);
        const auto e = std::clamp<int64_t>(std::llround(n.end * kSampleRate), b, frames);
        for (int64_t i = b; i < e; ++i)
            vocal_energy += double(vocals[static_cast<size_t>(i)]) * vocals[static_cast<size_t>(i)];
        vocal_frames += e - b;
    }
    const double band_rms =
        std::sqrt(band_energy / static_cast<double>(std::max<int64_t>(1, frames)));
    const double vocal_rms =
        std::sqrt(vocal_energy / static_cast<double>(std::max<int64_t>(1, vocal_frames)));
    const float vocal_gain =
        vocal_rms > 1e-9 && band_rms > 1e-9 ? static_cast<float>(1.4 * band_rms / vocal_rms) : 1.0f;
    for (auto& v : vocals) v *= vocal_gain;
    // The mix: band, dry vocal in the centre, and the vocal's small room in stereo.
    StereoBuffer mix = SmallRoom(vocals, 0.2f);
    float peak = 0;
    bool finite = true;  // checked per sample: std::max would silently skip a NaN
    for (int64_t i = 0; i < frames; ++i) {
        const auto k = static_cast<size_t>(i);
        mix.left[k] += band.left[k] + vocals[k];
        mix.right[k] += band.right[k] + vocals[k];
        finite = finite && std::isfinite(mix.left[k]) && std::isfinite(mix.right[k]);
        peak = std::max({peak, std::abs(mix.left[k]), std::abs(mix.right[k])});
    }
    if (!finite) Fail("the render produced non-finite samples");
    const float gain = peak > 0 ? 0.891f / peak : 1.0f;  // -1 dBFS
    cancel.ThrowIfCancelled();
    progress.Report(92);

    auto path = request.work_dir / "raw.wav";
    WriteStereo(path, mix.left, mix.right, gain);
    if (request.write_stems) {
        // Stems at the mix's gain: the band alone, and the dry vocal (the mix adds the
        // vocal's reverb on top of these two).
        WriteStereo(request.work_dir / "band.wav", band.left, band.right, gain);
        WriteMono(request.work_dir / "vocals.wav", vocals, gain);
        std::ostringstream csv;
        // start_s..end_s: when the syllable sounds (its onset consonants come early);
        // vowel_s: the note's time on the beat grid, where the vowel begins.
        csv << "line,syllable,start_s,end_s,vowel_s,midi,hz\n";
        for (size_t i = 0; i < notes.size(); ++i) {
            const auto& n = notes[i];
            char row[200];
            std::snprintf(row, sizeof row, "%d,%d,%.4f,%.4f,%.4f,%d,%.3f\n", n.line, n.syllable,
                          static_cast<double>(sounding[i].first) / speech_rate,
                          static_cast<double>(sounding[i].second) / speech_rate, n.start, n.key,
                          MidiToHz(n.key));
            csv << row;
        }
        WriteText(request.work_dir / "vocal_notes.csv", csv.str());
        WriteText(request.work_dir / "synth_plan.json",
                  PlanJson(style, arrangement, female, soundfont, 20 * std::log10(vocal_gain)));
    }
    core::LogEvent("info", "synth_render",
                   {{"job_id", request.job_id},
                    {"genre", style.genre_name},
                    {"bpm", std::to_string(static_cast<int>(style.bpm))},
                    {"key", std::string(KeyName(style.key)) + (style.minor ? " minor" : " major")},
                    {"lines", std::to_string(groups.size())},
                    {"sung_notes", std::to_string(notes.size())},
                    {"band_notes", std::to_string(score.notes.size())}});
    progress.Report(100);
    return path;
}

}  // namespace songd::engine::synth
