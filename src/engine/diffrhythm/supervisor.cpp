#include "engine/diffrhythm/supervisor.h"

#include <algorithm>

#include "core/child_process.h"
#include "core/error.h"
#include "core/log.h"

namespace songd::engine::diffrhythm {

namespace {

using Clock = std::chrono::steady_clock;

const char* StateName(int state) {
    static const char* const kNames[] = {"down", "starting", "idle", "busy", "stopped"};
    return kNames[state];
}

std::string Seconds(std::chrono::milliseconds ms) {
    return std::to_string(ms.count() / 1000) +
           (ms.count() % 1000 ? "." + std::to_string(ms.count() % 1000 / 100) : "") + " s";
}

/// How a child that closed its output ended: it may still be exiting, so wait a moment (a
/// child that lingers is killed by the wait).
std::string HowItEnded(core::ChildProcess& child) {
    try {
        return child.Wait(core::StopWhen{nullptr, Clock::now() + std::chrono::seconds(2)})
            .status.Describe();
    } catch (const std::exception& e) {
        return e.what();
    }
}

}  // namespace

Supervisor::Supervisor(SupervisorOptions options) : options_(std::move(options)) {
    if (options_.gpus.empty()) options_.gpus.push_back(std::nullopt);
    for (size_t i = 0; i < options_.gpus.size(); ++i) {
        auto slot = std::make_unique<Slot>();
        slot->index = static_cast<int>(i);
        slot->gpu = options_.gpus[i];
        slots_.push_back(std::move(slot));
    }
}

Supervisor::~Supervisor() { Stop(); }

void Supervisor::Start() {
    std::lock_guard lock(mutex_);
    if (started_) return;
    started_ = true;
    for (auto& slot : slots_) {
        Slot* s = slot.get();
        s->thread = std::thread([this, s] { SlotLoop(*s); });
    }
}

void Supervisor::Stop() {
    {
        std::lock_guard lock(mutex_);
        if (stopping_) return;
        stopping_ = true;
    }
    changed_.notify_all();
    for (auto& slot : slots_) {
        if (slot->thread.joinable()) slot->thread.join();
    }
    // Every worker is idle or down now (renders returned before Stop). End of input asks each
    // to exit; what is still running after the grace is killed with its group.
    std::vector<std::unique_ptr<core::ChildProcess>> children;
    {
        std::lock_guard lock(mutex_);
        for (auto& slot : slots_) {
            if (slot->child) children.push_back(std::move(slot->child));
            slot->state = State::kStopped;
            slot->pid = 0;
        }
    }
    for (auto& child : children) child->CloseStdin();
    const auto deadline = Clock::now() + options_.kill_grace;
    for (auto& child : children) {
        core::WaitResult end = child->Wait(core::StopWhen{nullptr, deadline});
        core::LogEvent("info", "diffrhythm_worker_stopped",
                       {{"pid", std::to_string(child->pid())},
                        {"exit", end.status.Describe()},
                        {"stderr", child->StderrTail(4000)}});
    }
}

void Supervisor::AddModel(Slot& slot, const std::string& model) {
    if (std::find(slot.models_loaded.begin(), slot.models_loaded.end(), model) ==
        slot.models_loaded.end()) {
        slot.models_loaded.push_back(model);
    }
}

std::unique_ptr<core::ChildProcess> Supervisor::Launch(Slot& slot) {
    core::ChildProcess::Options o;
    o.argv = {options_.python, options_.script.string(), "--home", options_.home.string()};
    if (!options_.preload.empty()) {
        std::string list;
        for (int length : options_.preload)
            list += (list.empty() ? "" : ",") + std::to_string(length);
        o.argv.insert(o.argv.end(), {"--preload", list});
    }
    o.argv.insert(o.argv.end(), {"--device", options_.device});
    o.name = "DiffRhythm worker " + std::to_string(slot.index);
    o.working_dir = options_.home;
    o.env = options_.env;
    o.env["PYTHONUNBUFFERED"] = "1";
    if (std::getenv("HF_HUB_OFFLINE") == nullptr) o.env.try_emplace("HF_HUB_OFFLINE", "1");
    if (slot.gpu) o.env["CUDA_VISIBLE_DEVICES"] = std::to_string(*slot.gpu);
    o.stdin_mode = core::Stdio::Pipe();
    o.stdout_mode = core::Stdio::Pipe();
    o.stderr_mode = core::Stdio::Pipe();
    o.kill_grace = options_.kill_grace;
    o.error_code = core::ErrorCode::kRenderFailed;

    std::unique_ptr<core::ChildProcess> child;
    try {
        child = std::make_unique<core::ChildProcess>(core::ChildProcess::Spawn(o));
    } catch (const std::exception& e) {
        std::lock_guard lock(mutex_);
        slot.last_error = e.what();
        return nullptr;
    }
    {
        std::lock_guard lock(mutex_);
        slot.pid = child->pid();
        slot.models_loaded.clear();
        slot.device.clear();
    }
    core::LogEvent("info", "diffrhythm_worker_started",
                   {{"worker", std::to_string(slot.index)},
                    {"pid", std::to_string(child->pid())},
                    {"cuda_visible_devices", slot.gpu ? std::to_string(*slot.gpu) : ""}});
    const core::StopWhen stop{[this] {
                                  std::lock_guard lock(mutex_);
                                  return stopping_;
                              },
                              Clock::now() + options_.load_timeout};
    std::string why;
    while (why.empty()) {
        core::LineResult line;
        try {
            line = child->ReadLine(stop);
        } catch (const std::exception& e) {
            why = e.what();
            break;
        }
        if (line.outcome == core::Outcome::kCancelled) {
            why = "stopped while starting";
            break;
        }
        if (line.outcome == core::Outcome::kTimedOut) {
            why = "not ready after DIFFRHYTHM_LOAD_TIMEOUT (" + Seconds(options_.load_timeout) +
                  "): killed";
            break;
        }
        if (line.outcome == core::Outcome::kClosed) {
            why = "ended before it was ready (" + HowItEnded(*child) + ")";
            break;
        }
        Event e;
        try {
            e = ParseEvent(line.line);
        } catch (const ProtocolError& error) {
            why = std::string("protocol error while starting: ") + error.what();
            break;
        }
        std::lock_guard lock(mutex_);
        switch (e.kind) {
            case Event::Kind::kHello:
                slot.device = e.device;
                break;
            case Event::Kind::kLoaded:
                AddModel(slot, e.model);
                break;
            case Event::Kind::kReady:
                for (const auto& m : e.models_loaded) AddModel(slot, m);
                return child;
            default:
                why = "protocol error while starting: a request event before ready";
                break;
        }
    }
    Retire(slot, std::move(child), why, true);
    return nullptr;
}

void Supervisor::Retire(Slot& slot, std::unique_ptr<core::ChildProcess> child,
                        const std::string& why, bool backoff) {
    std::string exit = "not started";
    std::string stderr_tail;
    int64_t pid = 0;
    if (child) {
        pid = child->pid();
        exit = child->Kill().Describe();  // the whole group; reaped
        const core::Capture& capture = child->stderr_capture();
        stderr_tail = capture.text;  // bounded: the last 64 KiB
        if (capture.dropped > 0) stderr_tail = "..." + stderr_tail;
    }
    core::LogEvent("warning", "diffrhythm_worker_ended",
                   {{"worker", std::to_string(slot.index)},
                    {"pid", std::to_string(pid)},
                    {"reason", why},
                    {"exit", exit},
                    {"stderr", stderr_tail}});
    {
        std::lock_guard lock(mutex_);
        slot.last_error = why;
        slot.state = slot.state == State::kStopped ? State::kStopped : State::kDown;
        slot.pid = 0;
        slot.models_loaded.clear();
        slot.job_id.clear();
        if (backoff) {
            slot.backoff = slot.backoff.count() == 0
                               ? options_.backoff_first
                               : std::min(slot.backoff * 2, options_.backoff_max);
        } else {
            slot.backoff = std::chrono::milliseconds(0);
        }
        slot.restart_at = Clock::now() + slot.backoff;
    }
    changed_.notify_all();
}

void Supervisor::SlotLoop(Slot& slot) {
    std::unique_lock lock(mutex_);
    while (!stopping_) {
        if (slot.state == State::kDown) {
            if (Clock::now() < slot.restart_at) {
                changed_.wait_until(lock, slot.restart_at);
                continue;
            }
            if (slot.pid != 0 || slot.restarts > 0 || slot.last_error.size()) ++slot.restarts;
            slot.state = State::kStarting;
            lock.unlock();
            if (slot.restarts > 0) {
                core::LogEvent("info", "diffrhythm_worker_restart",
                               {{"worker", std::to_string(slot.index)},
                                {"restarts", std::to_string(slot.restarts)},
                                {"after", slot.last_error}});
            }
            auto child = Launch(slot);
            lock.lock();
            if (!child) {
                if (slot.state == State::kStarting) {  // spawn failed: Retire was not called
                    slot.state = State::kDown;
                    slot.backoff = slot.backoff.count() == 0
                                       ? options_.backoff_first
                                       : std::min(slot.backoff * 2, options_.backoff_max);
                    slot.restart_at = Clock::now() + slot.backoff;
                    core::LogEvent(
                        "error", "diffrhythm_worker_ended",
                        {{"worker", std::to_string(slot.index)}, {"reason", slot.last_error}});
                }
                continue;
            }
            slot.child = std::move(child);
            slot.state = State::kIdle;
            core::LogEvent("info", "diffrhythm_worker_ready",
                           {{"worker", std::to_string(slot.index)},
                            {"pid", std::to_string(slot.pid)},
                            {"device", slot.device}});
            changed_.notify_all();
            continue;
        }
        if (slot.state == State::kIdle && slot.child) {
            // A worker that ends while idle is noticed here, not by the next request.
            if (auto status = slot.child->TryWait()) {
                auto child = std::move(slot.child);
                lock.unlock();
                Retire(slot, std::move(child), "exited while idle (" + status->Describe() + ")",
                       true);
                lock.lock();
                continue;
            }
        }
        changed_.wait_for(lock, std::chrono::milliseconds(250));
    }
    // Starting children are killed by Launch (its wait watches stopping_).
}

RunResult Supervisor::Run(const Request& request,
                          const std::function<void(int, const std::string&)>& progress,
                          const CancelToken& cancel) {
    Slot* slot = nullptr;
    std::unique_ptr<core::ChildProcess> child;
    {
        std::unique_lock lock(mutex_);
        while (true) {
            if (stopping_) {
                throw core::Error(core::ErrorCode::kRenderFailed, "generation was stopped");
            }
            cancel.ThrowIfCancelled();
            for (auto& s : slots_) {
                if (s->state == State::kIdle && s->child) {
                    slot = s.get();
                    break;
                }
            }
            if (slot) break;
            changed_.wait_for(lock, std::chrono::milliseconds(100));
        }
        slot->state = State::kBusy;
        slot->job_id = request.id;
        child = std::move(slot->child);
    }
    RunResult result;
    result.worker = slot->index;
    auto give_back = [&] {
        {
            std::lock_guard lock(mutex_);
            slot->child = std::move(child);
            slot->state = State::kIdle;
            slot->job_id.clear();
            slot->backoff = std::chrono::milliseconds(0);  // it served a request: healthy
        }
        changed_.notify_all();
    };
    auto lose = [&](RunResult::Outcome outcome, const std::string& why, bool backoff) {
        core::LogEvent(
            "error", "diffrhythm_worker_lost",
            {{"worker", std::to_string(slot->index)}, {"job_id", request.id}, {"reason", why}});
        Retire(*slot, std::move(child), why, backoff);
        result.outcome = outcome;
        result.message = why;
        return result;
    };

    bool stopped = false;
    const core::StopWhen write_stop{[&] { return cancel.Cancelled(); }, std::nullopt};
    core::Outcome written;
    try {
        written = child->Write(RequestLine(request), write_stop);
    } catch (const std::exception& e) {
        return lose(RunResult::Outcome::kWorkerLost, e.what(), true);
    }
    if (written == core::Outcome::kClosed) {
        return lose(RunResult::Outcome::kWorkerLost,
                    "ended before taking the request (" + HowItEnded(*child) + ")", true);
    }
    std::optional<Clock::time_point> load_deadline;
    while (written == core::Outcome::kDone) {
        core::StopWhen stop{[&] {
                                if (cancel.Cancelled()) return true;
                                std::lock_guard lock(mutex_);
                                stopped = stopping_;
                                return stopped;
                            },
                            load_deadline};
        core::LineResult line;
        try {
            line = child->ReadLine(stop);
        } catch (const std::exception& e) {
            return lose(RunResult::Outcome::kWorkerLost, e.what(), true);
        }
        if (line.outcome == core::Outcome::kCancelled) break;
        if (line.outcome == core::Outcome::kTimedOut) {
            return lose(RunResult::Outcome::kLoadTimeout,
                        "loading the model took longer than DIFFRHYTHM_LOAD_TIMEOUT (" +
                            Seconds(options_.load_timeout) + ")",
                        false);
        }
        if (line.outcome == core::Outcome::kClosed) {
            return lose(RunResult::Outcome::kWorkerLost,
                        "the worker ended during the request (" + HowItEnded(*child) + ")", true);
        }
        Event e;
        try {
            e = ParseEvent(line.line);
            if (e.kind == Event::Kind::kHello || e.kind == Event::Kind::kReady) {
                throw ProtocolError("a start-up event during a request");
            }
            if (e.kind != Event::Kind::kLoaded && e.id != request.id) {
                throw ProtocolError("an event for job '" + e.id + "' during job '" + request.id +
                                    "'");
            }
        } catch (const ProtocolError& error) {
            return lose(RunResult::Outcome::kWorkerLost,
                        std::string("protocol error: ") + error.what(), true);
        }
        switch (e.kind) {
            case Event::Kind::kLoaded: {
                std::lock_guard lock(mutex_);
                AddModel(*slot, e.model);
                load_deadline.reset();
                break;
            }
            case Event::Kind::kProgress:
                if (e.phase == "loading_model") {
                    if (!load_deadline) load_deadline = Clock::now() + options_.load_timeout;
                } else {
                    load_deadline.reset();
                }
                if (progress) progress(e.percent, e.phase);
                break;
            case Event::Kind::kDone:
                result.outcome = RunResult::Outcome::kDone;
                result.output_path = e.output_path;
                give_back();
                return result;
            case Event::Kind::kError:
                result.outcome = RunResult::Outcome::kError;
                result.code = e.code;
                result.message = e.message;
                give_back();
                return result;
            default:
                break;
        }
    }
    // Cancelled (timeout, shutdown): the request cannot be taken back from the model, so the
    // worker goes with its whole group and a fresh one starts at once.
    Retire(
        *slot, std::move(child),
        cancel.TimedOut() ? "job " + request.id + " timed out" : "job " + request.id + " stopped",
        false);
    cancel.ThrowIfCancelled();
    throw core::Error(core::ErrorCode::kRenderFailed, "generation was stopped");
}

EngineStatus Supervisor::Status() const {
    std::lock_guard lock(mutex_);
    if (!started_) return {false, "not started"};
    if (stopping_) return {false, "stopped"};
    std::string last;
    for (const auto& slot : slots_) {
        if (slot->state == State::kIdle || slot->state == State::kBusy) return {true, ""};
        if (!slot->last_error.empty()) last = slot->last_error;
    }
    if (last.empty()) return {false, "DiffRhythm worker starting"};
    // /readyz shows this: the line a worker printed stays in the log.
    if (last.rfind("protocol error", 0) == 0) last = "protocol error (the line is in the log)";
    return {false, "DiffRhythm worker restarting after: " + last};
}

std::vector<EngineWorker> Supervisor::Workers() const {
    std::lock_guard lock(mutex_);
    std::vector<EngineWorker> out;
    for (const auto& slot : slots_) {
        EngineWorker w;
        w.index = slot->index;
        w.state = StateName(static_cast<int>(slot->state));
        w.gpu = slot->gpu;
        w.pid = slot->pid;
        w.device = slot->device;
        w.models_loaded = slot->models_loaded;
        w.restarts = slot->restarts;
        w.last_error = slot->last_error;
        out.push_back(std::move(w));
    }
    return out;
}

}  // namespace songd::engine::diffrhythm
