// The worker pool against a real SQLite store wrapped in fault switches and a counting tone
// engine: a store that fails while a finished song is being recorded never turns the render
// into a failure, never deletes the song, and a song whose completion was lost is completed by
// the next attempt without rendering again ("never charge for a song we cannot deliver").
#include "jobs/worker_pool.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <filesystem>
#include <fstream>
#include <mutex>
#include <set>
#include <thread>

#include "core/clock.h"
#include "core/error.h"
#include "core/ids.h"
#include "counting_engine.h"
#include "engine/tone_engine.h"
#include "jobs/layout.h"
#include "jobs/render_pipeline.h"
#include "jobs/sqlite_store.h"

namespace songd::jobs {
namespace {

namespace fs = std::filesystem;
using testing::CountingEngine;

/// @brief The real SQLite store's queue (all a WorkerPool uses) behind switches that make
/// single calls fail the ways a database does: an answer lost after the commit, a dropped
/// connection before it, a lease taken away by another node's recovery.
class FlakyStore final : public JobQueue {
  public:
    explicit FlakyStore(const fs::path& path) : inner_(path) {}

    /// The next Complete commits, then throws (the answer was lost).
    std::atomic<int> complete_throws_after_commit{0};
    /// The next Complete throws without committing (the connection dropped).
    std::atomic<int> complete_throws_before_commit{0};
    /// Get throws this many times once a job is completed.
    std::atomic<int> get_throws_when_completed{0};
    /// The next Complete finds the job requeued by another node (its lease expired).
    std::atomic<int> lease_lost_on_complete{0};
    std::atomic<int> complete_calls{0};

    SqliteJobStore& inner() { return inner_; }

    bool Complete(const std::string& id, const std::string& owner, const Completion& c,
                  int64_t now) override {
        ++complete_calls;
        if (Take(complete_throws_before_commit)) {
            throw core::Error(core::ErrorCode::kUpstreamUnavailable, "connection dropped");
        }
        if (Take(lease_lost_on_complete)) {
            const int64_t later = core::NowMillis() + 10 * kLeaseMillis;
            inner_.RecoverExpiredLeases(later, kMaxAttempts, false, later);
        }
        const bool done = inner_.Complete(id, owner, c, now);
        if (Take(complete_throws_after_commit)) {
            throw core::Error(core::ErrorCode::kUpstreamUnavailable, "answer lost after commit");
        }
        return done;
    }
    std::optional<Job> Get(const std::string& id) override {
        auto job = inner_.Get(id);
        if (job && job->status == JobStatus::kCompleted && Take(get_throws_when_completed)) {
            throw core::Error(core::ErrorCode::kUpstreamUnavailable, "store unreachable");
        }
        return job;
    }

    CreateResult Create(const Job& job) override { return inner_.Create(job); }
    int64_t QueuePosition(const std::string& id) override { return inner_.QueuePosition(id); }
    QueueStats Stats() override { return inner_.Stats(); }
    std::optional<Job> Claim(const std::string& owner, int64_t now, int64_t lease_ms) override {
        return inner_.Claim(owner, now, lease_ms);
    }
    bool RenewLease(const std::string& id, const std::string& owner, int64_t until) override {
        return inner_.RenewLease(id, owner, until);
    }
    bool SetProgress(const std::string& id, const std::string& owner, int progress) override {
        return inner_.SetProgress(id, owner, progress);
    }
    bool Fail(const std::string& id, const std::string& owner, const std::string& code,
              const std::string& message, int64_t now, int64_t expires_at) override {
        return inner_.Fail(id, owner, code, message, now, expires_at);
    }
    bool Release(const std::string& id, const std::string& owner) override {
        return inner_.Release(id, owner);
    }
    CancelOutcome RequestCancel(const std::string& id, int64_t now, int64_t expires_at,
                                Job* job) override {
        return inner_.RequestCancel(id, now, expires_at, job);
    }
    bool MarkCanceled(const std::string& id, const std::string& owner, int64_t now,
                      int64_t expires_at) override {
        return inner_.MarkCanceled(id, owner, now, expires_at);
    }
    std::vector<std::string> CancelRequested(const std::vector<std::string>& ids) override {
        return inner_.CancelRequested(ids);
    }
    int RecoverExpiredLeases(int64_t now, int max_attempts, bool all_processing,
                             int64_t fail_expires_at) override {
        return inner_.RecoverExpiredLeases(now, max_attempts, all_processing, fail_expires_at);
    }
    bool SetS3Url(const std::string& id, const std::string& s3_url) override {
        return inner_.SetS3Url(id, s3_url);
    }
    std::vector<Job> ListByStatus(JobStatus status, const std::string& after_id,
                                  int limit) override {
        return inner_.ListByStatus(status, after_id, limit);
    }
    std::vector<std::string> CompletedWithoutS3(int limit) override {
        return inner_.CompletedWithoutS3(limit);
    }

  private:
    static bool Take(std::atomic<int>& counter) {
        int n = counter.load();
        while (n > 0) {
            if (counter.compare_exchange_weak(n, n - 1)) return true;
        }
        return false;
    }
    SqliteJobStore inner_;
};

/// @brief Records what the pool reported as completed.
class RecordingListener final : public CompletionListener {
  public:
    void OnCompleted(const std::string& job_id) override {
        std::lock_guard lock(mutex_);
        completed_.push_back(job_id);
    }
    std::vector<std::string> completed() {
        std::lock_guard lock(mutex_);
        return completed_;
    }

  private:
    std::mutex mutex_;
    std::vector<std::string> completed_;
};

class WorkerPoolTest : public ::testing::Test {
  protected:
    void SetUp() override {
        char tmpl[] = "/tmp/songd-workers-XXXXXX";
        dir_ = ::mkdtemp(tmpl);
        config_.output_dir = dir_ / "output";
        config_.workers = 1;
        config_.preview_seconds = 5;
        fs::create_directories(config_.output_dir);
        store_ = std::make_unique<FlakyStore>(dir_ / "songd.db");
    }
    void TearDown() override {
        store_.reset();
        fs::remove_all(dir_);
    }

    std::string Submit() {
        Job job;
        job.id = core::NewJobId();
        job.request.lyrics = "[00:01.00]hello\n[00:05.00]world";
        job.request.style_prompt = "pop";
        job.request.audio_length = 95;
        job.seed = 7;
        job.created_at = core::NowMillis();
        job.request_hash = "h";
        store_->Create(job);
        return job.id;
    }

    /// Runs a pool until the job ends (completed or failed) and no worker holds it, or the
    /// deadline passes; then stops it.
    Job RunUntilEnded(engine::Engine& engine, const std::string& id) {
        WorkerPool pool(config_, *store_, engine, "test-node", &listener_);
        pool.Start(/*exclusive_store=*/true);
        pool.Notify();
        const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(120);
        std::optional<Job> job;
        while (std::chrono::steady_clock::now() < deadline) {
            job = store_->inner().Get(id);
            const bool ended =
                job && (job->status == JobStatus::kCompleted || job->status == JobStatus::kFailed);
            // Ended in the store, and the worker is done with it (it may still be retrying).
            if (ended && pool.Active() == 0) break;
            std::this_thread::sleep_for(std::chrono::milliseconds(20));
        }
        pool.Stop();
        job = store_->inner().Get(id);
        EXPECT_TRUE(job);
        return job.value_or(Job{});
    }

    fs::path dir_;
    core::Config config_;
    std::unique_ptr<FlakyStore> store_;
    RecordingListener listener_;
};

TEST_F(WorkerPoolTest, RendersFinishesAndCompletesWithPreview) {
    CountingEngine engine;
    engine.Start();
    const std::string id = Submit();
    Job job = RunUntilEnded(engine, id);
    EXPECT_EQ(job.status, JobStatus::kCompleted) << job.error;
    EXPECT_EQ(job.output_file, id + "/output_fixed.wav");
    EXPECT_TRUE(job.has_preview);
    EXPECT_EQ(job.audio.sample_rate, 44100);
    EXPECT_TRUE(IsFinishedSong(LocalSong(config_, id), engine::TargetFrames(95)));
    EXPECT_TRUE(fs::exists(LocalPreview(config_, id)));
    EXPECT_FALSE(fs::exists(WorkDir(config_, id)));
    EXPECT_EQ(engine.renders.load(), 1);
    EXPECT_EQ(listener_.completed(), std::vector<std::string>{id});
}

// Complete commits, then its answer is lost; Get fails too for a while. The job must end
// completed with its song on disk, and storage must hear of it once.
TEST_F(WorkerPoolTest, CompletionCommittedThenThrowingKeepsTheSong) {
    CountingEngine engine;
    engine.Start();
    store_->complete_throws_after_commit = 1;
    store_->get_throws_when_completed = 2;
    const std::string id = Submit();
    Job job = RunUntilEnded(engine, id);
    EXPECT_EQ(job.status, JobStatus::kCompleted) << job.error;
    EXPECT_TRUE(IsFinishedSong(LocalSong(config_, id), engine::TargetFrames(95)));
    EXPECT_TRUE(fs::exists(LocalPreview(config_, id)));
    EXPECT_EQ(engine.renders.load(), 1);
    EXPECT_EQ(listener_.completed(), std::vector<std::string>{id});
}

// The connection drops before Complete commits: a store outage, not a render failure. The
// completion is retried and the job ends completed, rendered once.
TEST_F(WorkerPoolTest, CompletionThrowingBeforeCommitIsRetriedNotFailed) {
    CountingEngine engine;
    engine.Start();
    store_->complete_throws_before_commit = 2;
    const std::string id = Submit();
    Job job = RunUntilEnded(engine, id);
    EXPECT_EQ(job.status, JobStatus::kCompleted) << job.error_code << ": " << job.error;
    EXPECT_TRUE(IsFinishedSong(LocalSong(config_, id), engine::TargetFrames(95)));
    EXPECT_EQ(engine.renders.load(), 1);
    EXPECT_GE(store_->complete_calls.load(), 3);
    EXPECT_EQ(listener_.completed(), std::vector<std::string>{id});
}

// Another node requeued the job while its song was being recorded: the song stays, and the
// next attempt completes the job from it without calling the engine again.
TEST_F(WorkerPoolTest, LeaseLostDuringCompletionKeepsTheSongAndSkipsTheSecondRender) {
    CountingEngine engine;
    engine.Start();
    store_->lease_lost_on_complete = 1;
    const std::string id = Submit();
    Job job = RunUntilEnded(engine, id);
    EXPECT_EQ(job.status, JobStatus::kCompleted) << job.error;
    EXPECT_EQ(job.attempts, 2);
    EXPECT_TRUE(IsFinishedSong(LocalSong(config_, id), engine::TargetFrames(95)));
    EXPECT_TRUE(job.has_preview);
    EXPECT_EQ(engine.renders.load(), 1);
    EXPECT_EQ(listener_.completed(), std::vector<std::string>{id});
}

// A job that cannot be made fails, and leaves no song behind.
TEST_F(WorkerPoolTest, EngineErrorFailsTheJobWithoutASong) {
    CountingEngine engine("error");
    engine.Start();
    const std::string id = Submit();
    Job job = RunUntilEnded(engine, id);
    EXPECT_EQ(job.status, JobStatus::kFailed);
    EXPECT_EQ(job.error_code, "render_failed");
    EXPECT_FALSE(fs::exists(LocalSong(config_, id)));
    EXPECT_TRUE(listener_.completed().empty());
}

// What an earlier attempt left is only reused when it is a whole song of the right length.
TEST_F(WorkerPoolTest, AnUnfinishedSongOnDiskIsRenderedAgain) {
    CountingEngine engine;
    engine.Start();
    const std::string id = Submit();
    fs::create_directories(JobDir(config_, id));
    {
        std::ofstream partial(LocalSong(config_, id), std::ios::binary);
        partial << "RIFF not really a song";
    }
    Job job = RunUntilEnded(engine, id);
    EXPECT_EQ(job.status, JobStatus::kCompleted) << job.error;
    EXPECT_EQ(engine.renders.load(), 1);
    EXPECT_TRUE(IsFinishedSong(LocalSong(config_, id), engine::TargetFrames(95)));
}

}  // namespace
}  // namespace songd::jobs
