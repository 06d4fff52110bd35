#pragma once
/// @file
/// Engine: turns a validated request into raw audio. Every engine's output then goes
/// through audio::Finish, so engines only have to make sound.
///
///   auto engine = engine::MakeEngine(config);
///   engine->Start();                     // warm-up (models, SoundFont); throws when it cannot run
///   if (!engine->Ready()) ...            // engine->Status().reason says why (readiness probes)
///   engine::CancelToken cancel(deadline);
///   auto raw = engine->Render(request, [](int pct) { ... }, cancel);  // a WAV in work_dir
///   engine->Stop();                      // at shutdown, after the last render returned
///
/// Render runs on a worker thread (several at once: WORKERS) and may block for minutes; it must
/// check `cancel.Cancelled()` often (at least every second of work) and then throw
/// core::Error(kTimeout or kRenderFailed).

#include <atomic>
#include <chrono>
#include <cstdint>
#include <filesystem>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <string>

#include "core/config.h"

namespace songd::engine {

/// @brief Everything an engine needs for one render.
struct RenderRequest {
    std::string job_id;
    std::string lyrics;  ///< LRC, already validated by engine::ParseLrc
    std::string style_prompt;
    int audio_length = 95;  ///< seconds, 95 or 96..285
    uint64_t seed = 0;
    int batch_size = 1;
    std::string preset = "high";
    std::optional<int> steps;
    std::optional<double> cfg_strength;
    std::filesystem::path work_dir;  ///< exists; the engine writes its files here
    bool write_stems = false;        ///< also write stems (vocals.wav, ...) into work_dir
    bool instrumental = false;             ///< no vocals; lyrics are empty
    std::filesystem::path ref_audio_path;  ///< reference song (an upload); empty when none
};

/// @brief Progress 0–100; called from the rendering thread.
using ProgressFn = std::function<void(int percent)>;

/// @brief Cooperative cancellation: a deadline, plus an explicit stop (shutdown).
class CancelToken {
  public:
    using Clock = std::chrono::steady_clock;
    explicit CancelToken(std::optional<Clock::time_point> deadline = std::nullopt)
        : deadline_(deadline) {}

    void Cancel() { stopped_.store(true); }
    bool Stopped() const { return stopped_.load(); }
    bool TimedOut() const { return deadline_ && Clock::now() >= *deadline_; }
    bool Cancelled() const { return Stopped() || TimedOut(); }
    /// Throws the right core::Error when cancelled; engines call this in their loops.
    void ThrowIfCancelled() const;

  private:
    std::optional<Clock::time_point> deadline_;
    std::atomic<bool> stopped_{false};
};

/// @brief Whether an engine can take renders now, and if not, why (for /readyz and /health).
struct EngineStatus {
    bool ready = false;
    std::string reason;  ///< empty when ready: "not started", "stopped", "loading model", ...
};

/// @brief A song renderer with a lifecycle: Start (warm-up) → ready → Stop.
class Engine {
  public:
    virtual ~Engine() = default;
    virtual std::string Name() const = 0;

    /// Loads what renders need and returns once the engine is ready. Throws core::Error
    /// naming what is missing when the engine cannot run at all (the service must not
    /// start). Engines without anything to load (synth, tone) are ready once started.
    virtual void Start();
    /// Ready, or why not. Thread-safe; cheap enough for every readiness probe.
    virtual EngineStatus Status() const;
    bool Ready() const { return Status().ready; }
    /// Releases what Start loaded; renders are no longer accepted. Call after the last render
    /// returned (the worker pool stopped).
    virtual void Stop();
    /// Renders and returns the path of the raw audio (any format libsndfile reads; float WAV
    /// preferred) inside `request.work_dir`.
    virtual std::filesystem::path Render(const RenderRequest& request, const ProgressFn& progress,
                                         const CancelToken& cancel) = 0;

  protected:
    /// For engines whose readiness changes on its own (a model process restarting).
    void SetStatus(EngineStatus status);

  private:
    mutable std::mutex status_mutex_;
    EngineStatus status_{false, "not started"};
};

/// The engine ENGINE names.
std::unique_ptr<Engine> MakeEngine(const core::Config& config);

/// Sample count of a finished song, as DiffRhythm produces it: 95 s → 2048×2048 samples,
/// otherwise floor(L × 44100 / 2048) × 2048.
int64_t TargetFrames(int audio_length);

constexpr int kSampleRate = 44100;

}  // namespace songd::engine
