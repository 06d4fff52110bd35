#pragma once
/// @file
/// ToneEngine (`ENGINE=tone`): a test engine. It renders a plain sine-chord progression of
/// the requested length in milliseconds of CPU, so tests of the service (queue, workers,
/// downloads) run fast. It is not music and never the default. It loads nothing: ready once
/// started (Engine's lifecycle defaults).
///
///   engine::ToneEngine tone(/*render_ms=*/200, /*fault=*/"none");   // TONE_RENDER_MS, TONE_FAULT
///   auto raw = tone.Render(request, progress, cancel);              // a float WAV in work_dir

#include "engine/engine.h"

namespace songd::engine {

/// @brief Fast deterministic test engine with optional pacing and fault injection.
class ToneEngine : public Engine {
  public:
    explicit ToneEngine(int render_ms = 0, std::string fault = "none")
        : render_ms_(render_ms), fault_(std::move(fault)) {}
    std::string Name() const override { return "tone"; }
    std::filesystem::path Render(const RenderRequest& request, const ProgressFn& progress,
                                 const CancelToken& cancel) override;

  private:
    int render_ms_;
    std::string fault_;
};

}  // namespace songd::engine
