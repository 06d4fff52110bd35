#include "jobs/worker_pool.h"

#include <chrono>

#include "audio/finish.h"
#include "core/clock.h"
#include "core/error.h"
#include "core/log.h"

namespace songd::jobs {

namespace fs = std::filesystem;

WorkerPool::WorkerPool(const core::Config& config, JobStore& store, engine::Engine& engine,
                       std::string node_id, JobHooks hooks)
    : config_(config),
      store_(store),
      engine_(engine),
      node_id_(std::move(node_id)),
      hooks_(std::move(hooks)) {}

WorkerPool::~WorkerPool() { Stop(); }

void WorkerPool::Start(bool exclusive_store) {
    const int64_t now = core::NowMillis();
    const int64_t fail_expiry = now + config_.file_retention_days * core::kMillisPerDay;
    int recovered = store_.RecoverExpiredLeases(now, kMaxAttempts, exclusive_store, fail_expiry);
    if (recovered > 0) {
        stats_.requeued += recovered;
        core::LogEvent(
            "warning", "jobs_recovered",
            {{"count", std::to_string(recovered)},
             {"reason", exclusive_store ? "previous process stopped" : "lease expired"}});
    }
    for (int i = 0; i < config_.workers; ++i) threads_.emplace_back([this, i] { WorkerLoop(i); });
    threads_.emplace_back([this] { HeartbeatLoop(); });
}

void WorkerPool::Notify() {
    {
        std::lock_guard lock(mutex_);
        pending_ = true;
    }
    wake_.notify_one();
}

void WorkerPool::Stop() {
    if (stopping_.exchange(true)) {
        for (auto& t : threads_) {
            if (t.joinable()) t.join();
        }
        return;
    }
    {
        std::lock_guard lock(mutex_);
        for (auto& [owner, flight] : in_flight_) flight->cancel->Cancel();
    }
    wake_.notify_all();
    for (auto& t : threads_) {
        if (t.joinable()) t.join();
    }
    threads_.clear();
}

void WorkerPool::WorkerLoop(int index) {
    const std::string owner = node_id_ + "/w" + std::to_string(index);
    while (!stopping_) {
        std::optional<Job> job;
        try {
            job = store_.Claim(owner, core::NowMillis(), kLeaseMillis);
        } catch (const std::exception& e) {
            core::LogEvent("error", "claim_failed", {{"error", e.what()}});
        }
        if (!job) {
            // Other nodes may queue jobs too, so idle workers also poll.
            std::unique_lock lock(mutex_);
            wake_.wait_for(lock, std::chrono::seconds(1), [this] { return pending_ || stopping_; });
            pending_ = false;
            continue;
        }
        ++active_;
        Process(*job, owner);
        --active_;
    }
}

void WorkerPool::HeartbeatLoop() {
    const auto period = std::chrono::milliseconds(kLeaseMillis / 3);
    const auto recovery_period = std::chrono::milliseconds(kLeaseMillis / 2);
    auto next_recovery = std::chrono::steady_clock::now() + recovery_period;
    std::unique_lock lock(mutex_);
    while (!stopping_) {
        wake_.wait_for(lock, period, [this] { return stopping_.load(); });
        if (stopping_) break;
        auto flights = in_flight_;
        lock.unlock();
        const int64_t now = core::NowMillis();
        for (auto& [owner, flight] : flights) {
            try {
                if (!store_.RenewLease(flight->job_id, owner, now + kLeaseMillis)) {
                    flight->lease_lost = true;
                    flight->cancel->Cancel();
                    core::LogEvent("warning", "lease_lost", {{"job_id", flight->job_id}});
                }
            } catch (const std::exception& e) {
                core::LogEvent("error", "lease_renew_failed",
                               {{"job_id", flight->job_id}, {"error", e.what()}});
            }
        }
        if (std::chrono::steady_clock::now() >= next_recovery) {
            next_recovery = std::chrono::steady_clock::now() + recovery_period;
            try {
                const int64_t expiry = now + config_.file_retention_days * core::kMillisPerDay;
                int n = store_.RecoverExpiredLeases(now, kMaxAttempts, false, expiry);
                if (n > 0) {
                    stats_.requeued += n;
                    core::LogEvent("warning", "jobs_recovered",
                                   {{"count", std::to_string(n)}, {"reason", "lease expired"}});
                }
            } catch (const std::exception& e) {
                core::LogEvent("error", "recovery_failed", {{"error", e.what()}});
            }
        }
        lock.lock();
    }
}

void WorkerPool::Process(const Job& job, const std::string& owner) {
    using Clock = std::chrono::steady_clock;
    const auto started = Clock::now();
    auto flight = std::make_shared<InFlight>();
    flight->job_id = job.id;
    flight->cancel = std::make_shared<engine::CancelToken>(
        started + std::chrono::seconds(config_.generation_timeout_seconds));
    {
        std::lock_guard lock(mutex_);
        in_flight_[owner] = flight;
        if (stopping_) flight->cancel->Cancel();
    }
    core::LogEvent("info", "job_transition",
                   {{"job_id", job.id},
                    {"from", "queued"},
                    {"to", "processing"},
                    {"attempt", std::to_string(job.attempts)}});

    const fs::path job_dir = config_.output_dir / job.id;
    const fs::path work_dir = job_dir / "work";
    const fs::path output = job_dir / "output_fixed.wav";
    std::string outcome;
    try {
        std::error_code ec;
        fs::remove_all(work_dir, ec);
        fs::create_directories(work_dir, ec);
        if (ec) {
            throw core::Error(core::ErrorCode::kInternal,
                              "cannot create " + work_dir.string() + ": " + ec.message());
        }
        engine::RenderRequest request;
        request.job_id = job.id;
        request.lyrics = job.request.lyrics;
        request.style_prompt = job.request.style_prompt;
        request.audio_length = job.request.audio_length;
        request.seed = job.seed;
        request.batch_size = job.request.batch_size;
        request.preset = job.request.preset;
        request.steps = job.request.steps;
        request.cfg_strength = job.request.cfg_strength;
        request.work_dir = work_dir;

        // Rendering is 0–95 %, finishing the rest; store writes are throttled.
        auto last_write = Clock::now() - std::chrono::seconds(1);
        int last_progress = 0;
        auto report = [&](int engine_percent) {
            int progress = std::clamp(engine_percent, 0, 100) * 95 / 100;
            if (progress <= last_progress) return;
            auto now = Clock::now();
            if (now - last_write < std::chrono::milliseconds(200) && progress < 95) return;
            last_write = now;
            last_progress = progress;
            try {
                store_.SetProgress(job.id, owner, progress);
            } catch (const std::exception& e) {
                core::LogEvent("warning", "progress_failed",
                               {{"job_id", job.id}, {"error", e.what()}});
            }
        };
        fs::path raw = engine_.Render(request, report, *flight->cancel);
        flight->cancel->ThrowIfCancelled();

        audio::FinishOptions options;
        options.auto_master = job.request.auto_master;
        options.master_preset = job.request.master_preset;
        options.target_frames = engine::TargetFrames(job.request.audio_length);
        audio::FinishResult finished = audio::Finish(raw, output, options);
        flight->cancel->ThrowIfCancelled();

        Completion completion;
        completion.output_file = job.id + "/output_fixed.wav";
        completion.audio = {finished.duration_seconds, finished.sample_rate, finished.channels};
        const int64_t now = core::NowMillis();
        completion.expires_at = now + config_.file_retention_days * core::kMillisPerDay;
        if (hooks_.before_complete) hooks_.before_complete(job, completion);
        fs::remove_all(work_dir, ec);
        // completed_at is the `now` expires_at counts from: expires_at = completed_at + retention.
        if (!store_.Complete(job.id, owner, completion, now)) {
            outcome = "lease_lost";
        } else {
            outcome = "completed";
            ++stats_.completed;
            if (hooks_.after_complete) {
                if (auto stored = store_.Get(job.id)) hooks_.after_complete(*stored);
            }
        }
    } catch (const std::exception& e) {
        const auto* error = dynamic_cast<const core::Error*>(&e);
        std::error_code ec;
        fs::remove_all(work_dir, ec);
        if (flight->lease_lost) {
            outcome = "lease_lost";
        } else if (flight->cancel->Stopped() && stopping_) {
            // Shutdown: the job goes back to the queue for this or another node.
            outcome = store_.Release(job.id, owner) ? "requeued" : "lease_lost";
            if (outcome == "requeued") ++stats_.requeued;
        } else {
            std::string code = error ? core::ErrorCodeName(error->code()) : "internal";
            std::string message = e.what();
            if (error && error->code() == core::ErrorCode::kTimeout) {
                message = "generation took longer than GENERATION_TIMEOUT (" +
                          std::to_string(config_.generation_timeout_seconds) + " s)";
            }
            fs::remove(output, ec);
            const int64_t now = core::NowMillis();
            try {
                store_.Fail(job.id, owner, code, message, now,
                            now + config_.file_retention_days * core::kMillisPerDay);
            } catch (const std::exception& store_error) {
                core::LogEvent("error", "fail_record_failed",
                               {{"job_id", job.id}, {"error", store_error.what()}});
            }
            ++stats_.failed;
            outcome = "failed";
            core::LogEvent("warning", "job_failed",
                           {{"job_id", job.id}, {"code", code}, {"error", message}});
        }
    }
    const auto millis =
        std::chrono::duration_cast<std::chrono::milliseconds>(Clock::now() - started).count();
    stats_.render_millis += millis;
    core::LogEvent("info", "job_transition",
                   {{"job_id", job.id},
                    {"from", "processing"},
                    {"to", outcome},
                    {"duration_ms", std::to_string(millis)}});
    std::lock_guard lock(mutex_);
    in_flight_.erase(owner);
}

}  // namespace songd::jobs
