#pragma once
/// @file
/// DiffRhythmEngine (`ENGINE=diffrhythm`): real DiffRhythm songs from a checkout of the model
/// (DIFFRHYTHM_HOME) run by its own Python (DIFFRHYTHM_PYTHON).
///
///   auto engine = diffrhythm::DiffRhythmEngine(diffrhythm::EngineOptions::FromConfig(config));
///   engine.Start();   // checks the checkout and `import torch`; starts the workers
///   auto raw = engine.Render(request, progress, cancel);   // <work_dir>/raw.wav
///
/// Two modes (DIFFRHYTHM_MODE):
/// - `worker` (default): persistent workers (engines/diffrhythm/songd_worker.py) under a
///   Supervisor, one per DIFFRHYTHM_GPUS entry (one CPU worker without GPUs), one request at a
///   time each. preset/steps/cfg_strength and the seed reach the sampler. A request whose
///   worker dies or breaks the protocol is retried on the restarted worker, up to
///   kWorkerAttempts in all (the job store's own attempt count).
/// - `cli`: one untouched `infer/infer.py` run per job in its own process group; steps, CFG and
///   seed are ignored (upstream has no such flags). Progress comes from its phases and the time
///   past runs of the same length class took.
/// Concurrency is the number of workers either way (config makes WORKERS agree).

#include <condition_variable>
#include <filesystem>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "engine/diffrhythm/supervisor.h"
#include "engine/engine.h"

namespace songd::engine::diffrhythm {

/// Attempts of one render when its worker dies under it (as the job store allows a job).
constexpr int kWorkerAttempts = 3;

/// @brief The engine's settings (from the DIFFRHYTHM_* variables and DEVICE).
struct EngineOptions {
    std::string mode = "worker";  ///< worker|cli
    std::filesystem::path home;
    std::string python = "python3";
    std::filesystem::path worker_script;  ///< empty: beside the songd binary
    std::vector<int> gpus;
    std::string device = "auto";  ///< --device for the workers
    std::vector<int> preload;     ///< 95 and/or 285
    int load_timeout_seconds = 600;
    bool chunked = true;
    std::map<std::string, std::string> env;  ///< extra environment for the Python processes

    static EngineOptions FromConfig(const core::Config& config);
};

/// Throws core::Error (one line) unless `home` is a DiffRhythm checkout (infer/infer.py and
/// infer/infer_utils.py).
void CheckCheckout(const std::filesystem::path& home);
/// Throws core::Error (one line) unless `python` runs and imports torch.
void CheckPython(const std::string& python, const std::filesystem::path& home);
/// songd_worker.py beside the running binary (engines/diffrhythm/) or in
/// ../share/songd/engines/diffrhythm; empty when neither exists.
std::filesystem::path FindWorkerScript();

/// @brief The DiffRhythm engine.
class DiffRhythmEngine : public Engine {
  public:
    explicit DiffRhythmEngine(EngineOptions options);
    ~DiffRhythmEngine() override;

    std::string Name() const override { return "diffrhythm"; }
    void Start() override;
    EngineStatus Status() const override;
    void Stop() override;
    std::filesystem::path Render(const RenderRequest& request, const ProgressFn& progress,
                                 const CancelToken& cancel) override;
    EngineReport Report() const override;

  private:
    std::filesystem::path RenderWorker(const RenderRequest& request, const ProgressFn& progress,
                                       const CancelToken& cancel);
    std::filesystem::path RenderCli(const RenderRequest& request, const ProgressFn& progress,
                                    const CancelToken& cancel);

    EngineOptions options_;
    std::unique_ptr<Supervisor> supervisor_;

    // cli mode: one slot per GPU (or one), and the running averages per length class.
    mutable std::mutex cli_mutex_;
    std::condition_variable cli_free_;
    std::vector<int64_t> cli_pids_;  ///< per slot: the running infer.py, 0 when free
    std::map<std::string, double> cli_average_seconds_;
    std::map<std::string, int> cli_runs_;
};

}  // namespace songd::engine::diffrhythm
