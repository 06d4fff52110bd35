#include "engine/synth/fluid_renderer.h"

#include <fluidsynth.h>

#include <algorithm>
#include <cmath>
#include <mutex>

#include "core/error.h"
#include "core/log.h"

namespace songd::engine::synth {
namespace {

void LogFluid(int level, const char* message, void*) {
    core::LogEvent(level == FLUID_PANIC || level == FLUID_ERR ? "error" : "warning", "fluidsynth",
                   {{"message", message ? message : ""}});
}

void SetUpFluidLogging() {
    static std::once_flag once;
    std::call_once(once, [] {
        // Errors go to our log; chatter (info, debug, "instrument not found" warnings that
        // we handle ourselves) is dropped so nothing is printed outside core::LogEvent.
        fluid_set_log_function(FLUID_PANIC, LogFluid, nullptr);
        fluid_set_log_function(FLUID_ERR, LogFluid, nullptr);
        fluid_set_log_function(FLUID_WARN, nullptr, nullptr);
        fluid_set_log_function(FLUID_INFO, nullptr, nullptr);
        fluid_set_log_function(FLUID_DBG, nullptr, nullptr);
    });
}

[[noreturn]] void Fail(const std::string& detail) {
    throw core::Error(core::ErrorCode::kRenderFailed, detail);
}

}  // namespace

struct FluidRenderer::Handles {
    std::unique_ptr<fluid_settings_t, decltype(&delete_fluid_settings)> settings{
        nullptr, delete_fluid_settings};
    std::unique_ptr<fluid_synth_t, decltype(&delete_fluid_synth)> synth{nullptr,
                                                                        delete_fluid_synth};
};

std::filesystem::path FindSoundFont(const std::string& configured) {
    std::error_code ec;
    if (!configured.empty()) {
        if (!std::filesystem::is_regular_file(configured, ec)) {
            Fail("SOUNDFONT " + configured + " is not a readable file");
        }
        return configured;
    }
    for (const char* candidate :
         {"/usr/share/sounds/sf2/FluidR3_GM.sf2", "/usr/share/sounds/sf2/TimGM6mb.sf2"}) {
        if (std::filesystem::is_regular_file(candidate, ec)) return candidate;
    }
    Fail(
        "no General MIDI SoundFont installed (fluid-soundfont-gm or timgm6mb-soundfont); "
        "set SOUNDFONT");
}

FluidRenderer::FluidRenderer(const std::filesystem::path& soundfont)
    : handles_(std::make_unique<Handles>()) {
    SetUpFluidLogging();
    handles_->settings.reset(new_fluid_settings());
    if (!handles_->settings) Fail("cannot create FluidSynth settings");
    fluid_settings_t* s = handles_->settings.get();
    fluid_settings_setnum(s, "synth.sample-rate", kSampleRate);
    fluid_settings_setint(s, "synth.polyphony", 128);
    fluid_settings_setint(s, "synth.cpu-cores", 1);
    fluid_settings_setint(s, "synth.threadsafe-api", 0);
    fluid_settings_setint(s, "synth.reverb.active", 1);
    fluid_settings_setint(s, "synth.chorus.active", 0);
    fluid_settings_setnum(s, "synth.gain", 0.5);
    fluid_settings_setnum(s, "synth.reverb.room-size", 0.6);
    fluid_settings_setnum(s, "synth.reverb.damp", 0.4);
    fluid_settings_setnum(s, "synth.reverb.width", 0.9);
    fluid_settings_setnum(s, "synth.reverb.level", 0.7);
    handles_->synth.reset(new_fluid_synth(s));
    if (!handles_->synth) Fail("cannot create the FluidSynth synthesizer");
    fluid_synth_set_interp_method(handles_->synth.get(), -1, FLUID_INTERP_LINEAR);
    sfont_id_ = fluid_synth_sfload(handles_->synth.get(), soundfont.c_str(), 1);
    if (sfont_id_ == FLUID_FAILED) Fail("cannot load SoundFont " + soundfont.string());
}

FluidRenderer::~FluidRenderer() = default;

StereoBuffer FluidRenderer::Render(const Score& score, int64_t frames,
                                   const std::function<void(double)>& progress,
                                   const CancelToken& cancel) {
    fluid_synth_t* synth = handles_->synth.get();
    for (const ChannelSetup& ch : score.channels) {
        const int bank = ch.drums ? 128 : 0;
        if (fluid_synth_program_select(synth, ch.channel, sfont_id_, bank, ch.program) !=
                FLUID_OK &&
            fluid_synth_program_select(synth, ch.channel, sfont_id_, bank, 0) != FLUID_OK) {
            Fail("the SoundFont has no preset for program " + std::to_string(ch.program));
        }
        fluid_synth_cc(synth, ch.channel, 7, std::clamp(ch.volume, 0, 127));
        fluid_synth_cc(synth, ch.channel, 10, std::clamp(ch.pan, 0, 127));
        fluid_synth_cc(synth, ch.channel, 91, std::clamp(ch.reverb, 0, 127));
        fluid_synth_cc(synth, ch.channel, 93, std::clamp(ch.chorus, 0, 127));
    }
    // Note-ons and note-offs as one time-ordered list; at equal times offs go first so a
    // repeated key is released before it is struck again.
    struct Event {
        int64_t frame;
        bool on;
        int channel, key, velocity;
    };
    std::vector<Event> events;
    events.reserve(score.notes.size() * 2);
    for (const Note& n : score.notes) {
        const auto on = static_cast<int64_t>(std::llround(n.start * kSampleRate));
        const auto off = std::max(on + 1, static_cast<int64_t>(std::llround(n.end * kSampleRate)));
        events.push_back({on, true, n.channel, n.key, n.velocity});
        events.push_back({off, false, n.channel, n.key, 0});
    }
    std::stable_sort(events.begin(), events.end(), [](const Event& a, const Event& b) {
        return a.frame != b.frame ? a.frame < b.frame : (!a.on && b.on);
    });

    StereoBuffer out;
    out.left.assign(static_cast<size_t>(frames), 0.0f);
    out.right.assign(static_cast<size_t>(frames), 0.0f);
    const int64_t kBlock = kSampleRate / 2;  // check for cancellation twice a second of audio
    size_t next = 0;
    int64_t pos = 0;
    int64_t next_check = 0;
    while (pos < frames) {
        if (pos >= next_check) {
            cancel.ThrowIfCancelled();
            if (progress) progress(static_cast<double>(pos) / static_cast<double>(frames));
            next_check = pos + kBlock;
        }
        while (next < events.size() && events[next].frame <= pos) {
            const Event& e = events[next++];
            if (e.on) {
                fluid_synth_noteon(synth, e.channel, e.key, e.velocity);
            } else {
                fluid_synth_noteoff(synth, e.channel, e.key);
            }
        }
        int64_t until = std::min(frames, next_check);
        if (next < events.size()) until = std::min(until, events[next].frame);
        const int n = static_cast<int>(until - pos);
        if (fluid_synth_write_float(synth, n, out.left.data() + pos, 0, 1, out.right.data() + pos,
                                    0, 1) != FLUID_OK) {
            Fail("FluidSynth failed to render");
        }
        pos = until;
    }
    if (progress) progress(1.0);
    return out;
}

}  // namespace songd::engine::synth
