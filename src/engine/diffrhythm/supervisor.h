#pragma once
/// @file
/// Supervisor: the persistent DiffRhythm worker processes (one per GPU, or one on the CPU),
/// each in its own process group, each serving one request at a time.
///
///   diffrhythm::Supervisor workers(options);   // argv, home, GPUs, preload, load timeout
///   workers.Start();                            // one thread per worker: spawn, wait ready
///   auto result = workers.Run(request, on_progress, cancel);  // on any free worker
///   workers.Stop();                             // stdin closed, grace, then the group killed
///
/// A worker that dies, speaks anything but the protocol, or loads nothing for the load
/// timeout is killed with its whole group and restarted with exponential backoff; the
/// request it held comes back as kWorkerLost (the engine retries it). On cancel the
/// worker's group is killed and a fresh worker started. Its stderr is kept (last 64 KiB)
/// and logged when it ends, never returned to callers.

#include <chrono>
#include <condition_variable>
#include <filesystem>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "core/child_process.h"
#include "engine/diffrhythm/protocol.h"
#include "engine/engine.h"

namespace songd::engine::diffrhythm {

/// @brief How to start and watch the workers.
struct SupervisorOptions {
    std::string python = "python3";
    std::filesystem::path script;  ///< songd_worker.py
    std::filesystem::path home;    ///< DIFFRHYTHM_HOME: the workers' working directory
    /// One worker per entry: its CUDA_VISIBLE_DEVICES, or none (a CPU worker).
    std::vector<std::optional<int>> gpus{std::nullopt};
    std::string device = "auto";  ///< --device: auto|cpu|cuda|mps
    std::vector<int> preload;     ///< lengths whose model loads at start (95, 285)
    /// A worker that is not ready this long after its start, or stays in `loading_model`
    /// this long during a request, is killed.
    std::chrono::milliseconds load_timeout{std::chrono::seconds(600)};
    std::chrono::milliseconds backoff_first{500};
    std::chrono::milliseconds backoff_max{std::chrono::seconds(30)};
    std::chrono::milliseconds kill_grace{std::chrono::seconds(2)};
    std::map<std::string, std::string> env;  ///< added to every worker's environment
};

/// @brief What Run made of one request.
struct RunResult {
    enum class Outcome {
        kDone,         ///< output_path written
        kError,        ///< the worker reported an error (code, message); it lives on
        kWorkerLost,   ///< it died or broke the protocol; restarted; try again
        kLoadTimeout,  ///< it loaded a model for longer than the load timeout; restarted
    };
    Outcome outcome = Outcome::kDone;
    std::string output_path;
    std::string code;
    std::string message;
    int worker = -1;  ///< index of the worker that ran it
};

/// @brief The worker processes and the one-request-per-worker scheduling over them.
class Supervisor {
  public:
    explicit Supervisor(SupervisorOptions options);
    ~Supervisor();
    Supervisor(const Supervisor&) = delete;
    Supervisor& operator=(const Supervisor&) = delete;

    void Start();
    void Stop();

    /// Waits for a free worker (while `cancel` allows), sends `request`, relays progress.
    /// Throws core::Error when cancelled (after killing the worker's group) or stopped.
    RunResult Run(const Request& request,
                  const std::function<void(int, const std::string&)>& progress,
                  const CancelToken& cancel);

    /// Ready when a worker can take a request; otherwise why not.
    EngineStatus Status() const;
    std::vector<EngineWorker> Workers() const;
    int size() const { return static_cast<int>(slots_.size()); }

  private:
    enum class State { kDown, kStarting, kIdle, kBusy, kStopped };
    struct Slot {
        int index = 0;
        std::optional<int> gpu;
        State state = State::kDown;
        std::unique_ptr<core::ChildProcess> child;
        std::chrono::steady_clock::time_point restart_at{};
        std::chrono::milliseconds backoff{0};
        int restarts = 0;
        int64_t pid = 0;
        std::string device;
        std::vector<std::string> models_loaded;
        std::string job_id;
        std::string last_error;
        std::thread thread;
    };

    void SlotLoop(Slot& slot);
    /// Spawns and waits for `ready`; the child when it came up, null (slot.last_error set).
    std::unique_ptr<core::ChildProcess> Launch(Slot& slot);
    /// Kills `child` (group), logs how it ended with its stderr tail, schedules a restart.
    /// Call without the lock.
    void Retire(Slot& slot, std::unique_ptr<core::ChildProcess> child, const std::string& why,
                bool backoff);
    void AddModel(Slot& slot, const std::string& model);

    SupervisorOptions options_;
    std::vector<std::unique_ptr<Slot>> slots_;
    mutable std::mutex mutex_;
    std::condition_variable changed_;
    bool stopping_ = false;
    bool started_ = false;
};

}  // namespace songd::engine::diffrhythm
