#include "jobs/worker_pool.h"

#include <sys/statvfs.h>

#include <algorithm>
#include <chrono>
#include <optional>

#include "core/clock.h"
#include "core/error.h"
#include "core/log.h"
#include "jobs/layout.h"
#include "jobs/render_pipeline.h"

namespace songd::jobs {

namespace fs = std::filesystem;

namespace {

/// Whether OUTPUT_DIR lacks the room one render of this length needs: the raw float render
/// and the finished 16-bit song side by side, 44.1 kHz stereo.
bool DiskTooFull(const fs::path& output_dir, int audio_length_seconds) {
    struct statvfs st {};
    if (::statvfs(output_dir.c_str(), &st) != 0) return false;
    const auto free_bytes = static_cast<int64_t>(st.f_bavail) * static_cast<int64_t>(st.f_frsize);
    const int64_t needed = int64_t{audio_length_seconds} * 44'100 * 2 * (4 + 2);
    return free_bytes < needed;
}

}  // namespace

WorkerPool::WorkerPool(const core::Config& config, JobQueue& store, engine::Engine& engine,
                       std::string node_id, CompletionListener* listener)
    : config_(config),
      store_(store),
      engine_(engine),
      node_id_(std::move(node_id)),
      listener_(listener) {}

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
    stop_wake_.notify_all();
    for (auto& t : threads_) {
        if (t.joinable()) t.join();
    }
    threads_.clear();
}

bool WorkerPool::CancelLocal(const std::string& job_id) {
    std::lock_guard lock(mutex_);
    for (auto& [owner, flight] : in_flight_) {
        if (flight->job_id == job_id) {
            flight->cancel->CancelByUser();
            return true;
        }
    }
    return false;
}

void WorkerPool::Published(const std::string& job_id) {
    if (changes_) changes_->Publish(job_id);
}

void WorkerPool::WorkerLoop(int index) {
    const std::string owner = node_id_ + "/w" + std::to_string(index);
    while (!stopping_) {
        std::optional<Job> job;
        try {
            // An engine that is not ready (starting, its model process restarting) takes no
            // jobs; they wait in the queue, or another node takes them.
            if (engine_.Ready()) job = store_.Claim(owner, core::NowMillis(), kLeaseMillis);
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
    auto next_renewal = std::chrono::steady_clock::now() + period;
    std::unique_lock lock(mutex_);
    while (!stopping_) {
        // Ticks at the cancel poll; leases are renewed every third of a lease.
        stop_wake_.wait_for(lock, std::chrono::milliseconds(kCancelPollMillis),
                            [this] { return stopping_.load(); });
        if (stopping_) break;
        auto flights = in_flight_;
        lock.unlock();
        if (!flights.empty()) {
            // A cancel asked on another node reaches the node holding the job here.
            std::vector<std::string> ids;
            for (auto& [owner, flight] : flights) ids.push_back(flight->job_id);
            try {
                for (const auto& id : store_.CancelRequested(ids)) {
                    for (auto& [owner, flight] : flights) {
                        if (flight->job_id == id) flight->cancel->CancelByUser();
                    }
                }
            } catch (const std::exception& e) {
                core::LogEvent("error", "cancel_poll_failed", {{"error", e.what()}});
            }
        }
        if (std::chrono::steady_clock::now() < next_renewal) {
            lock.lock();
            continue;
        }
        next_renewal = std::chrono::steady_clock::now() + period;
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
        // Released at a shutdown after its cancel was asked: it is not run again.
        if (job.cancel_requested) flight->cancel->CancelByUser();
    }
    Published(job.id);
    core::LogEvent("info", "job_transition",
                   {{"job_id", job.id},
                    {"from", "queued"},
                    {"to", "processing"},
                    {"attempt", std::to_string(job.attempts)}});

    std::string outcome;
    std::optional<RenderOutcome> made;
    try {
        // The pipeline is 0–100 %; the store shows at most 95 until the job is completed.
        // Store writes are throttled.
        auto last_write = Clock::now() - std::chrono::seconds(1);
        int last_progress = 0;
        auto report = [&](int percent, std::string_view) {
            const int progress = std::clamp(percent, 0, 100) * 95 / 100;
            if (progress <= last_progress) return;
            const auto now = Clock::now();
            if (now - last_write < std::chrono::milliseconds(200) && progress < 95) return;
            last_write = now;
            last_progress = progress;
            try {
                if (store_.SetProgress(job.id, owner, progress)) Published(job.id);
            } catch (const std::exception& e) {
                core::LogEvent("warning", "progress_failed",
                               {{"job_id", job.id}, {"error", e.what()}});
            }
        };
        // A full disk is the machine's fault, not the song's: the job waits for room while
        // its lease holds (GENERATION_TIMEOUT still bounds it) and renders again, instead of
        // failing for good.
        RenderJob work = MakeRenderJob(config_, job);
        if (!job.request.ref_audio_id.empty()) {
            if (!resolve_reference_) {
                throw core::Error(core::ErrorCode::kRenderFailed,
                                  "this node cannot read reference songs");
            }
            work.render.ref_audio_path = resolve_reference_(job.request.ref_audio_id);
        }
        int64_t delay = kDiskFullRetryFirstMillis;
        while (!made) {
            try {
                made = RunRenderPipeline(engine_, work, report, *flight->cancel);
            } catch (const std::exception& e) {
                if (flight->cancel->Cancelled() || flight->lease_lost ||
                    !DiskTooFull(config_.output_dir, job.request.audio_length)) {
                    throw;
                }
                core::LogEvent("error", "disk_full",
                               {{"job_id", job.id},
                                {"output_dir", config_.output_dir.string()},
                                {"retry_in_ms", std::to_string(delay)},
                                {"error", e.what()}});
                Pause(delay);
                delay = std::min(delay * 2, kDiskFullRetryMaxMillis);
                if (stopping_) throw;
            }
        }
    } catch (const std::exception& e) {
        outcome = RecordFailure(job, owner, e, *flight);
    }

    if (made && flight->cancel->CanceledByUser() && !flight->lease_lost) {
        // Canceled while the song was finished: the client's cancel wins, nothing is kept.
        outcome = RecordCanceled(job, owner);
    } else if (made) {
        Completion completion;
        completion.output_file = SongOutputFile(job.id);
        completion.audio = {made->duration_seconds, made->sample_rate, made->channels};
        completion.has_preview = made->has_preview;
        switch (RecordCompletion(job, owner, completion, *flight)) {
            case Recorded::kCanceled:
                outcome = RecordCanceled(job, owner);
                break;
            case Recorded::kCompleted:
                outcome = "completed";
                ++stats_.completed;
                Published(job.id);
                if (listener_) {
                    try {
                        listener_->OnCompleted(job.id);
                    } catch (const std::exception& e) {
                        // The job is completed either way; the upload reconciler catches up.
                        core::LogEvent("error", "completion_listener_failed",
                                       {{"job_id", job.id}, {"error", e.what()}});
                    }
                }
                break;
            case Recorded::kLeaseLost:
                // The finished song stays: whoever holds the job now completes it from it.
                outcome = "lease_lost";
                break;
            case Recorded::kStopped:
                // Still processing in the store: recovery requeues it, the song is reused.
                outcome = "interrupted";
                break;
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

WorkerPool::Recorded WorkerPool::RecordCompletion(const Job& job, const std::string& owner,
                                                  Completion completion, const InFlight& flight) {
    int64_t delay = kCompletionRetryFirstMillis;
    for (int attempt = 1;; ++attempt) {
        try {
            if (!flight.lease_lost) {
                // completed_at is the `now` expires_at counts from.
                const int64_t now = core::NowMillis();
                completion.expires_at = now + config_.file_retention_days * core::kMillisPerDay;
                if (store_.Complete(job.id, owner, completion, now)) return Recorded::kCompleted;
            }
            // Refused: the lease is gone, or an earlier attempt committed and only its answer
            // was lost (the store holds the job completed by this owner).
            auto stored = store_.Get(job.id);
            if (stored && stored->status == JobStatus::kCompleted) return Recorded::kCompleted;
            if (stored && stored->status == JobStatus::kProcessing && stored->cancel_requested &&
                stored->lease_owner == owner) {
                return Recorded::kCanceled;
            }
            return Recorded::kLeaseLost;
        } catch (const std::exception& e) {
            core::LogEvent("warning", "complete_retry",
                           {{"job_id", job.id},
                            {"attempt", std::to_string(attempt)},
                            {"retry_in_ms", std::to_string(delay)},
                            {"error", e.what()}});
        }
        if (flight.lease_lost) return Recorded::kLeaseLost;
        if (stopping_) return Recorded::kStopped;
        Pause(delay);
        delay = std::min(delay * 2, kCompletionRetryMaxMillis);
    }
}

std::string WorkerPool::RecordFailure(const Job& job, const std::string& owner,
                                      const std::exception& e, const InFlight& flight) {
    if (flight.lease_lost) return "lease_lost";
    if (flight.cancel->CanceledByUser()) return RecordCanceled(job, owner);
    if (flight.cancel->Stopped() && stopping_) {
        // Shutdown: the job goes back to the queue for this or another node.
        try {
            if (store_.Release(job.id, owner)) {
                ++stats_.requeued;
                Published(job.id);
                return "requeued";
            }
            return "lease_lost";
        } catch (const std::exception& store_error) {
            // Left processing: its lease runs out and recovery requeues it.
            core::LogEvent("error", "release_failed",
                           {{"job_id", job.id}, {"error", store_error.what()}});
            return "interrupted";
        }
    }
    const auto* error = dynamic_cast<const core::Error*>(&e);
    const std::string code = error ? core::ErrorCodeName(error->code()) : "internal";
    std::string message = e.what();
    if (error && error->code() == core::ErrorCode::kTimeout) {
        message = "generation took longer than GENERATION_TIMEOUT (" +
                  std::to_string(config_.generation_timeout_seconds) + " s)";
    }
    const int64_t now = core::NowMillis();
    try {
        if (!store_.Fail(job.id, owner, code, message, now,
                         now + config_.file_retention_days * core::kMillisPerDay)) {
            return "lease_lost";
        }
    } catch (const std::exception& store_error) {
        // Not recorded: the job stays processing until its lease runs out and another attempt
        // takes it. Its files are left alone, since whether it failed is not known to the store.
        core::LogEvent("error", "fail_record_failed",
                       {{"job_id", job.id}, {"error", store_error.what()}});
        return "interrupted";
    }
    // The job is failed in the store: nothing of it is ever delivered.
    std::error_code ec;
    fs::remove(LocalSong(config_, job.id), ec);
    ++stats_.failed;
    Published(job.id);
    core::LogEvent("warning", "job_failed",
                   {{"job_id", job.id}, {"code", code}, {"error", message}});
    return "failed";
}

std::string WorkerPool::RecordCanceled(const Job& job, const std::string& owner) {
    const int64_t now = core::NowMillis();
    try {
        if (!store_.MarkCanceled(job.id, owner, now,
                                 now + config_.file_retention_days * core::kMillisPerDay)) {
            return "lease_lost";
        }
    } catch (const std::exception& e) {
        // Still processing with cancel_requested: once its lease runs out, recovery makes it
        // canceled.
        core::LogEvent("error", "cancel_record_failed", {{"job_id", job.id}, {"error", e.what()}});
        return "interrupted";
    }
    // Nothing of a canceled job is kept: the song, the preview and the work folder go.
    std::error_code ec;
    fs::remove_all(JobDir(config_, job.id), ec);
    ++stats_.canceled;
    Published(job.id);
    return "canceled";
}

void WorkerPool::Pause(int64_t millis) {
    std::unique_lock lock(mutex_);
    stop_wake_.wait_for(lock, std::chrono::milliseconds(millis),
                        [this] { return stopping_.load(); });
}

}  // namespace songd::jobs
