#pragma once
/// @file
/// Engine: turns a validated request into raw audio. Every engine's output then goes
/// through audio::Finish, so engines only have to make sound.
///
///   auto engine = engine::MakeEngine(config);
///   engine::CancelToken cancel(deadline);
///   auto raw = engine->Render(request, [](int pct) { ... }, cancel);  // a WAV in work_dir
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

/// @brief A song renderer.
class Engine {
  public:
    virtual ~Engine() = default;
    virtual std::string Name() const = 0;
    /// Renders and returns the path of the raw audio (any format libsndfile reads; float WAV
    /// preferred) inside `request.work_dir`.
    virtual std::filesystem::path Render(const RenderRequest& request, const ProgressFn& progress,
                                         const CancelToken& cancel) = 0;
};

/// The engine ENGINE names.
std::unique_ptr<Engine> MakeEngine(const core::Config& config);

/// Sample count of a finished song, as DiffRhythm produces it: 95 s → 2048×2048 samples,
/// otherwise floor(L × 44100 / 2048) × 2048.
int64_t TargetFrames(int audio_length);

constexpr int kSampleRate = 44100;

}  // namespace songd::engine
