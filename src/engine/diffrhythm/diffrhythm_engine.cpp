#include "engine/diffrhythm/diffrhythm_engine.h"

#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <fstream>

#include "core/child_process.h"
#include "core/error.h"
#include "core/log.h"
#include "core/text.h"

namespace songd::engine::diffrhythm {

namespace fs = std::filesystem;
using Clock = std::chrono::steady_clock;

namespace {

/// The last non-empty line of `text`, for a one-line error.
std::string LastLine(std::string_view text) {
    text = core::Trim(text);
    const auto nl = text.find_last_of('\n');
    if (nl != std::string_view::npos) text = text.substr(nl + 1);
    return std::string(core::Trim(text));
}

std::map<std::string, std::string> PythonEnv(const EngineOptions& o, std::optional<int> gpu) {
    std::map<std::string, std::string> env = o.env;
    env["PYTHONUNBUFFERED"] = "1";
    if (std::getenv("HF_HUB_OFFLINE") == nullptr) env.try_emplace("HF_HUB_OFFLINE", "1");
    if (gpu) env["CUDA_VISIBLE_DEVICES"] = std::to_string(*gpu);
    return env;
}

bool NonEmptyFile(const fs::path& path) {
    std::error_code ec;
    return fs::is_regular_file(path, ec) && fs::file_size(path, ec) > 44 && !ec;
}

/// Seconds a run of this length class is first assumed to take (before any was measured).
double DefaultSeconds(const std::string& length_class) {
    return length_class == "95" ? 60.0 : 180.0;
}

}  // namespace

EngineOptions EngineOptions::FromConfig(const core::Config& config) {
    EngineOptions o;
    o.mode = config.diffrhythm_mode;
    o.home = config.diffrhythm_home;
    o.python = config.diffrhythm_python;
    o.gpus = config.diffrhythm_gpus;
    o.device = config.diffrhythm_device;
    o.preload = config.diffrhythm_preload;
    o.load_timeout_seconds = config.diffrhythm_load_timeout_seconds;
    o.chunked = config.diffrhythm_chunked;
    return o;
}

void CheckCheckout(const fs::path& home) {
    std::error_code ec;
    if (home.empty()) {
        throw core::Error(core::ErrorCode::kInvalidInput,
                          "DIFFRHYTHM_HOME must be set to the DiffRhythm checkout when "
                          "ENGINE=diffrhythm");
    }
    if (!fs::is_directory(home, ec)) {
        throw core::Error(core::ErrorCode::kInvalidInput,
                          "DIFFRHYTHM_HOME=" + home.string() + " is not a directory");
    }
    for (const char* file : {"infer/infer.py", "infer/infer_utils.py"}) {
        if (!fs::is_regular_file(home / file, ec)) {
            throw core::Error(core::ErrorCode::kInvalidInput,
                              "DIFFRHYTHM_HOME=" + home.string() +
                                  " is not a DiffRhythm checkout: " + file + " is missing");
        }
    }
}

void CheckPython(const std::string& python, const fs::path& home) {
    core::ChildProcess::Options o;
    o.argv = {python, "-c", "import torch, torchaudio"};
    o.working_dir = home;
    o.stdout_mode = core::Stdio::Null();
    o.stderr_mode = core::Stdio::Pipe();
    o.kill_grace = std::chrono::milliseconds(500);
    o.error_code = core::ErrorCode::kInvalidInput;
    core::WaitResult end;
    std::string tail;
    try {
        auto child = core::ChildProcess::Spawn(o);
        end = child.Wait(core::StopWhen{nullptr, Clock::now() + std::chrono::seconds(180)});
        tail = LastLine(child.stderr_capture().text);
    } catch (const std::exception& e) {
        throw core::Error(core::ErrorCode::kInvalidInput,
                          "DIFFRHYTHM_PYTHON=" + python + " cannot be run: " + LastLine(e.what()));
    }
    if (end.outcome == core::Outcome::kTimedOut) {
        throw core::Error(core::ErrorCode::kInvalidInput,
                          "DIFFRHYTHM_PYTHON=" + python + " took over 180 s to import torch");
    }
    if (!end.status.Success()) {
        throw core::Error(core::ErrorCode::kInvalidInput,
                          "DIFFRHYTHM_PYTHON=" + python + " cannot import torch and torchaudio (" +
                              end.status.Describe() + (tail.empty() ? "" : ": " + tail) + ")");
    }
}

fs::path FindWorkerScript() {
    std::error_code ec;
    const fs::path exe = fs::read_symlink("/proc/self/exe", ec);
    if (ec) return {};
    const fs::path dir = exe.parent_path();
    for (const fs::path& candidate :
         {dir / "engines" / "diffrhythm" / "songd_worker.py",
          dir.parent_path() / "share" / "songd" / "engines" / "diffrhythm" / "songd_worker.py"}) {
        if (fs::is_regular_file(candidate, ec)) return candidate;
    }
    return {};
}

DiffRhythmEngine::DiffRhythmEngine(EngineOptions options) : options_(std::move(options)) {
    const size_t slots = std::max<size_t>(1, options_.gpus.size());
    cli_pids_.assign(slots, 0);
}

DiffRhythmEngine::~DiffRhythmEngine() {
    if (supervisor_) supervisor_->Stop();
}

void DiffRhythmEngine::Start() {
    CheckCheckout(options_.home);
    CheckPython(options_.python, options_.home);
    if (options_.mode == "worker") {
        if (options_.worker_script.empty()) options_.worker_script = FindWorkerScript();
        std::error_code ec;
        if (options_.worker_script.empty() || !fs::is_regular_file(options_.worker_script, ec)) {
            throw core::Error(core::ErrorCode::kInvalidInput,
                              "DIFFRHYTHM_MODE=worker needs engines/diffrhythm/songd_worker.py "
                              "beside the songd binary (install songd with it, or use "
                              "DIFFRHYTHM_MODE=cli)");
        }
        SupervisorOptions s;
        s.python = options_.python;
        s.script = options_.worker_script;
        s.home = options_.home;
        s.gpus.clear();
        for (int gpu : options_.gpus) s.gpus.emplace_back(gpu);
        if (s.gpus.empty()) s.gpus.emplace_back(std::nullopt);
        s.device = options_.device;
        s.preload = options_.preload;
        s.load_timeout = std::chrono::seconds(options_.load_timeout_seconds);
        s.env = options_.env;
        supervisor_ = std::make_unique<Supervisor>(std::move(s));
        supervisor_->Start();
    }
    SetStatus({true, ""});
    core::LogEvent("info", "diffrhythm_engine_started",
                   {{"mode", options_.mode},
                    {"home", options_.home.string()},
                    {"python", options_.python},
                    {"workers", std::to_string(std::max<size_t>(1, options_.gpus.size()))}});
}

EngineStatus DiffRhythmEngine::Status() const {
    EngineStatus base = Engine::Status();
    if (!base.ready || !supervisor_) return base;
    return supervisor_->Status();
}

void DiffRhythmEngine::Stop() {
    if (supervisor_) supervisor_->Stop();
    Engine::Stop();
}

EngineReport DiffRhythmEngine::Report() const {
    EngineReport report;
    if (supervisor_) {
        report.workers = supervisor_->Workers();
    } else {
        std::lock_guard lock(cli_mutex_);
        for (size_t i = 0; i < cli_pids_.size(); ++i) {
            EngineWorker w;
            w.index = static_cast<int>(i);
            if (i < options_.gpus.size()) w.gpu = options_.gpus[i];
            w.pid = std::max<int64_t>(0, cli_pids_[i]);
            w.state = cli_pids_[i] != 0 ? "busy" : "idle";
            report.workers.push_back(std::move(w));
        }
    }
    for (const auto& w : report.workers) {
        if (report.device.empty()) report.device = w.device;
        for (const auto& m : w.models_loaded) {
            if (std::find(report.models_loaded.begin(), report.models_loaded.end(), m) ==
                report.models_loaded.end()) {
                report.models_loaded.push_back(m);
            }
        }
    }
    return report;
}

fs::path DiffRhythmEngine::Render(const RenderRequest& request, const ProgressFn& progress,
                                  const CancelToken& cancel) {
    if (!Engine::Status().ready) {
        throw core::Error(core::ErrorCode::kRenderFailed, "the DiffRhythm engine is not started");
    }
    return supervisor_ ? RenderWorker(request, progress, cancel)
                       : RenderCli(request, progress, cancel);
}

fs::path DiffRhythmEngine::RenderWorker(const RenderRequest& request, const ProgressFn& progress,
                                        const CancelToken& cancel) {
    Request r;
    r.id = request.job_id;
    r.lyrics = request.instrumental ? "" : request.lyrics;
    r.style_prompt = request.style_prompt;
    r.ref_audio_path = request.ref_audio_path.empty()
                           ? std::string()
                           : fs::absolute(request.ref_audio_path).string();
    r.audio_length = request.audio_length;
    const Sampler sampler = ResolveSampler(request.preset, request.steps, request.cfg_strength);
    r.steps = sampler.steps;
    r.cfg_strength = sampler.cfg_strength;
    r.seed = request.seed;
    r.batch = std::max(1, request.batch_size);
    r.chunked = options_.chunked;
    const fs::path output = fs::absolute(request.work_dir / "raw.wav");
    r.output_path = output.string();

    int last = 0;
    auto relay = [&](int percent, const std::string&) {
        // Progress only rises, across retries too.
        if (percent > last) {
            last = percent;
            if (progress) progress(percent);
        }
    };
    std::string lost;
    for (int attempt = 1; attempt <= kWorkerAttempts; ++attempt) {
        std::error_code ec;
        fs::remove(output, ec);
        RunResult result = supervisor_->Run(r, relay, cancel);
        switch (result.outcome) {
            case RunResult::Outcome::kDone:
                if (!NonEmptyFile(output)) {
                    throw core::Error(core::ErrorCode::kRenderFailed,
                                      "DiffRhythm said done but wrote no audio");
                }
                return output;
            case RunResult::Outcome::kError: {
                std::string message = result.message.substr(0, 300);
                const auto code = result.code == "bad_input" ? core::ErrorCode::kInvalidInput
                                                             : core::ErrorCode::kRenderFailed;
                throw core::Error(
                    code, "DiffRhythm " + result.code + (message.empty() ? "" : ": " + message));
            }
            case RunResult::Outcome::kLoadTimeout:
                throw core::Error(core::ErrorCode::kRenderFailed,
                                  "DiffRhythm model_load: " + result.message);
            case RunResult::Outcome::kWorkerLost:
                lost = result.message;
                core::LogEvent("warning", "diffrhythm_retry",
                               {{"job_id", request.job_id},
                                {"attempt", std::to_string(attempt)},
                                {"of", std::to_string(kWorkerAttempts)},
                                {"reason", result.message}});
                break;
        }
    }
    throw core::Error(core::ErrorCode::kRenderFailed, "DiffRhythm worker_lost: the worker ended " +
                                                          std::to_string(kWorkerAttempts) +
                                                          " times during this job (last: " + lost +
                                                          ")");
}

fs::path DiffRhythmEngine::RenderCli(const RenderRequest& request, const ProgressFn& progress,
                                     const CancelToken& cancel) {
    // A free slot (one per GPU).
    size_t slot = 0;
    {
        std::unique_lock lock(cli_mutex_);
        while (true) {
            cancel.ThrowIfCancelled();
            auto it = std::find(cli_pids_.begin(), cli_pids_.end(), 0);
            if (it != cli_pids_.end()) {
                slot = static_cast<size_t>(it - cli_pids_.begin());
                *it = -1;  // taken; the pid follows
                break;
            }
            cli_free_.wait_for(lock, std::chrono::milliseconds(100));
        }
    }
    struct Release {
        DiffRhythmEngine& e;
        size_t slot;
        ~Release() {
            {
                std::lock_guard lock(e.cli_mutex_);
                e.cli_pids_[slot] = 0;
            }
            e.cli_free_.notify_all();
        }
    } release{*this, slot};

    const fs::path work = fs::absolute(request.work_dir);
    const fs::path out_dir = work / "out";
    const fs::path output = out_dir / "output.wav";
    std::error_code ec;
    fs::create_directories(out_dir, ec);
    fs::remove(output, ec);

    core::ChildProcess::Options o;
    o.argv = {options_.python, "infer/infer.py"};
    if (!request.instrumental && !request.lyrics.empty()) {
        const fs::path lrc = work / "lyrics.lrc";
        std::ofstream(lrc, std::ios::binary | std::ios::trunc) << request.lyrics;
        o.argv.insert(o.argv.end(), {"--lrc-path", lrc.string()});
    }
    if (!request.ref_audio_path.empty()) {
        o.argv.insert(o.argv.end(),
                      {"--ref-audio-path", fs::absolute(request.ref_audio_path).string()});
    } else {
        o.argv.insert(o.argv.end(), {"--ref-prompt", request.style_prompt});
    }
    o.argv.insert(o.argv.end(), {"--audio-length", std::to_string(request.audio_length),
                                 "--output-dir", out_dir.string()});
    if (options_.chunked) o.argv.push_back("--chunked");
    if (request.batch_size > 1) {
        o.argv.insert(o.argv.end(), {"--batch-infer-num", std::to_string(request.batch_size)});
    }
    o.name = "DiffRhythm infer.py";
    o.working_dir = options_.home;
    std::optional<int> gpu;
    if (slot < options_.gpus.size()) gpu = options_.gpus[slot];
    o.env = PythonEnv(options_, gpu);
    o.stdout_mode = core::Stdio::Pipe();
    o.stderr_mode = core::Stdio::Pipe();
    o.kill_grace = std::chrono::seconds(2);
    o.error_code = core::ErrorCode::kRenderFailed;

    const std::string length_class = LengthClass(request.audio_length);
    double expected = DefaultSeconds(length_class);
    bool measured = false;
    {
        std::lock_guard lock(cli_mutex_);
        if (auto it = cli_average_seconds_.find(length_class); it != cli_average_seconds_.end()) {
            expected = it->second;
            measured = true;
        }
    }

    auto child = core::ChildProcess::Spawn(o);
    {
        std::lock_guard lock(cli_mutex_);
        cli_pids_[slot] = child.pid();
    }
    const auto started = Clock::now();
    // Phases from what infer.py prints: its first line once the imports are done, and
    // "inference cost" once sampling and decoding are; between them, time against the past.
    enum class Phase { kImporting, kInferring, kSaving } phase = Phase::kImporting;
    std::string pending;
    int last = 0;
    auto report = [&](int percent) {
        percent = std::clamp(percent, 0, 99);
        if (percent > last) {
            last = percent;
            if (progress) progress(percent);
        }
    };
    auto on_stdout = [&](std::string_view data) {
        pending.append(data);
        size_t nl;
        while ((nl = pending.find('\n')) != std::string::npos) {
            std::string_view line(pending.data(), nl);
            if (phase == Phase::kImporting) phase = Phase::kInferring;
            if (line.find("inference cost") != std::string_view::npos) phase = Phase::kSaving;
            pending.erase(0, nl + 1);
        }
        if (pending.size() > 4096) pending.erase(0, pending.size() - 4096);
    };
    auto tick = [&] {
        const double elapsed = std::chrono::duration<double>(Clock::now() - started).count();
        switch (phase) {
            case Phase::kImporting:
                report(static_cast<int>(std::min(5.0, elapsed)));
                break;
            case Phase::kInferring: {
                const double fraction =
                    measured ? elapsed / expected : 1.0 - std::exp(-elapsed / expected);
                report(5 + static_cast<int>(90.0 * std::min(fraction, 1.0)));
                break;
            }
            case Phase::kSaving:
                report(96);
                break;
        }
    };
    core::WaitResult end = child.Wait(core::StopWhen{[&] {
                                                         tick();
                                                         return cancel.Cancelled();
                                                     },
                                                     std::nullopt},
                                      on_stdout);
    const double seconds = std::chrono::duration<double>(Clock::now() - started).count();
    const bool ok = end.outcome == core::Outcome::kDone && end.status.Success();
    core::LogEvent(ok ? "info" : "warning", "diffrhythm_cli_ended",
                   {{"job_id", request.job_id},
                    {"pid", std::to_string(child.pid())},
                    {"exit", end.status.Describe()},
                    {"seconds", std::to_string(seconds)},
                    {"stderr", child.StderrTail(64u << 10)}});
    if (end.outcome != core::Outcome::kDone) {
        cancel.ThrowIfCancelled();
        throw core::Error(core::ErrorCode::kRenderFailed, "generation was stopped");
    }
    if (!end.status.Success()) {
        throw core::Error(core::ErrorCode::kRenderFailed,
                          "DiffRhythm infer.py failed (" + end.status.Describe() + ")");
    }
    if (!NonEmptyFile(output)) {
        throw core::Error(core::ErrorCode::kRenderFailed,
                          "DiffRhythm infer.py exited 0 without writing output.wav");
    }
    {
        std::lock_guard lock(cli_mutex_);
        int& runs = cli_runs_[length_class];
        double& average = cli_average_seconds_[length_class];
        average = (average * runs + seconds) / (runs + 1);
        runs = std::min(runs + 1, 20);  // a running average that follows slow changes
    }
    return output;
}

}  // namespace songd::engine::diffrhythm
