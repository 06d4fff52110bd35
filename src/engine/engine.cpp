#include "engine/engine.h"

#include "core/error.h"
#include "engine/diffrhythm/diffrhythm_engine.h"
#include "engine/synth/synth_engine.h"
#include "engine/tone_engine.h"

namespace songd::engine {

void CancelToken::ThrowIfCancelled() const {
    if (CanceledByUser())
        throw core::Error(core::ErrorCode::kRenderFailed, "generation was canceled");
    if (TimedOut()) throw core::Error(core::ErrorCode::kTimeout, "generation timed out");
    if (Stopped()) throw core::Error(core::ErrorCode::kRenderFailed, "generation was stopped");
}

void Engine::Start() { SetStatus({true, ""}); }

EngineStatus Engine::Status() const {
    std::lock_guard lock(status_mutex_);
    return status_;
}

void Engine::Stop() { SetStatus({false, "stopped"}); }

void Engine::SetStatus(EngineStatus status) {
    std::lock_guard lock(status_mutex_);
    status_ = std::move(status);
}

int64_t TargetFrames(int audio_length) {
    if (audio_length == 95) return 2048LL * 2048LL;
    return (static_cast<int64_t>(audio_length) * kSampleRate / 2048) * 2048;
}

std::unique_ptr<Engine> MakeEngine(const core::Config& config) {
    if (config.engine == "synth") return std::make_unique<synth::SynthEngine>(config.soundfont);
    if (config.engine == "tone") {
        return std::make_unique<ToneEngine>(config.tone_render_ms, config.tone_fault);
    }
    if (config.engine == "diffrhythm") {
        return std::make_unique<diffrhythm::DiffRhythmEngine>(
            diffrhythm::EngineOptions::FromConfig(config));
    }
    throw core::Error(core::ErrorCode::kInvalidInput,
                      "ENGINE=" + config.engine + " is not available in this build");
}

}  // namespace songd::engine
