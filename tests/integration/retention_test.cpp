// Retention on the real binary, local files only (the S3 side is tests/s3/retention_s3test.cpp):
// `songd cleanup` expires due jobs and sweeps orphans, `songd serve` runs a pass soon after
// start when the last one is older than the interval, a pass killed halfway is finished by
// the next one, and a dry run changes nothing.
#include <gtest/gtest.h>

#include <boost/json.hpp>
#include <set>

#include "core/clock.h"
#include "core/ids.h"
#include "harness/http_client.h"
#include "harness/retention_support.h"
#include "harness/songd_process.h"
#include "jobs/layout.h"
#include "jobs/sqlite_store.h"

namespace songd::test {
namespace {

namespace fs = std::filesystem;
constexpr int64_t kDay = core::kMillisPerDay;
constexpr int64_t kHour = core::kMillisPerHour;

fs::path DatabasePath(const SongdProcess& songd) { return songd.dir() / "data" / "songd.db"; }

/// The environment for a one-off command on the same folder and database as `songd`.
Env CommandEnv(const SongdProcess& songd, Env extra = {}) {
    extra.try_emplace("OUTPUT_DIR", songd.output_dir().string());
    extra.try_emplace("DATABASE_URL", "sqlite:" + DatabasePath(songd).string());
    extra.try_emplace("LOG_FORMAT", "text");
    return extra;
}

int64_t Iso(const std::string& text) {
    auto parsed = core::ParseIso8601(text);
    EXPECT_TRUE(parsed) << text;
    return parsed.value_or(0);
}

std::optional<std::string> LastRunRecorded(const SongdProcess& songd) {
    jobs::SqliteJobStore store(DatabasePath(songd));
    return store.GetState("cleanup.last_run_ms");
}

TEST(RetentionCommand, AJobPastItsRetentionIsExpiredAndOneNotYetDueIsUntouched) {
    // The old backend's scenario with job records: one song completed with a 29-day
    // retention, one with 31 days; a pass as of 30 days from now finds the first a day past
    // its expiry and the second a day before it.
    SongdProcess songd(Env{{"FILE_RETENTION_DAYS", "29"}, {"CLEANUP_ENABLED", "false"}});
    songd.Start();
    const std::string due = CompleteJob(songd);
    ASSERT_EQ(songd.Stop(), 0);
    songd.SetEnv("FILE_RETENTION_DAYS", "31");
    songd.Start();
    const std::string kept = CompleteJob(songd);
    ASSERT_FALSE(due.empty());
    ASSERT_FALSE(kept.empty());
    for (const auto& [id, days] : {std::pair{due, 29}, std::pair{kept, 31}}) {
        EXPECT_EQ(Iso(StatusField(songd, id, "expires_at")),
                  Iso(StatusField(songd, id, "completed_at")) + days * kDay)
            << id;
    }
    const int64_t as_of = core::NowMillis() + 30 * kDay;
    ASSERT_LT(Iso(StatusField(songd, due, "expires_at")), as_of - kDay + kHour);
    ASSERT_GT(Iso(StatusField(songd, kept, "expires_at")), as_of + kDay - kHour);
    ASSERT_EQ(Http("GET", songd.Url("/api/v1/download/" + due)).status, 200);
    const auto kept_files = TreeDigest(songd.output_dir() / kept);
    ASSERT_FALSE(kept_files.empty());

    auto [code, output] = songd.RunCommand({"cleanup", "--as-of", core::FormatIso8601(as_of)},
                                           CommandEnv(songd, {{"FILE_RETENTION_DAYS", "30"}}));
    EXPECT_EQ(code, 0) << output;
    EXPECT_NE(output.find("expired job " + due), std::string::npos) << output;
    EXPECT_EQ(output.find(kept), std::string::npos) << output;
    EXPECT_NE(output.find("1 jobs expired"), std::string::npos) << output;

    EXPECT_FALSE(fs::exists(songd.output_dir() / due));
    EXPECT_EQ(StatusField(songd, due, "status"), "expired");
    auto gone = Http("GET", songd.Url("/api/v1/download/" + due));
    EXPECT_EQ(gone.status, 410);
    EXPECT_EQ(gone.Header("content-type"), "application/problem+json");
    EXPECT_NE(gone.body.find("expired"), std::string::npos) << gone.body;
    auto preview = Http("GET", songd.Url("/api/v1/preview/" + due));
    EXPECT_EQ(preview.status, 410);
    EXPECT_EQ(preview.Header("content-type"), "application/problem+json");
    EXPECT_EQ(Http("GET", songd.Url("/api/v1/preview/" + kept)).status, 200);

    EXPECT_EQ(StatusField(songd, kept, "status"), "completed");
    EXPECT_EQ(TreeDigest(songd.output_dir() / kept), kept_files);
    EXPECT_EQ(Http("GET", songd.Url("/api/v1/download/" + kept)).status, 200);
}

TEST(RetentionCommand, OrphanFoldersOlderThanTheRetentionGoAndNothingElse) {
    SongdProcess songd(Env{{"CLEANUP_ENABLED", "false"}});
    songd.Start();
    const std::string owned = CompleteJob(songd);
    ASSERT_FALSE(owned.empty());
    const int64_t now = core::NowMillis();
    // A live job's folder is never touched, however old its files look.
    SetTreeMtime(songd.output_dir() / owned, now - 100 * kDay);
    const fs::path old_folder = songd.output_dir() / core::NewJobId();
    const fs::path young_folder = songd.output_dir() / core::NewJobId();
    const fs::path legacy_file = songd.output_dir() / "song-from-the-old-backend.wav";
    WriteFile(old_folder / "output_fixed.wav", "old");
    SetTreeMtime(old_folder, now - 31 * kDay);
    WriteFile(young_folder / "output_fixed.wav", "young");
    SetTreeMtime(young_folder, now - 29 * kDay);
    WriteFile(legacy_file, "legacy");
    SetTreeMtime(legacy_file, now - 31 * kDay);
    const auto owned_files = TreeDigest(songd.output_dir() / owned);
    const auto young_files = TreeDigest(young_folder);

    auto [code, output] = songd.RunCommand({"cleanup"}, CommandEnv(songd));
    EXPECT_EQ(code, 0) << output;
    EXPECT_FALSE(fs::exists(old_folder));
    EXPECT_FALSE(fs::exists(legacy_file));
    EXPECT_EQ(TreeDigest(young_folder), young_files);
    EXPECT_EQ(TreeDigest(songd.output_dir() / owned), owned_files);
    EXPECT_EQ(StatusField(songd, owned, "status"), "completed");
    EXPECT_EQ(Http("GET", songd.Url("/api/v1/download/" + owned)).status, 200);
    EXPECT_NE(output.find("2 orphan folders"), std::string::npos) << output;
    EXPECT_NE(output.find("deleted orphan " + old_folder.string()), std::string::npos) << output;
}

TEST(RetentionCommand, BadAsOfIsRefusedAndChangesNothing) {
    SongdProcess songd(Env{{"CLEANUP_ENABLED", "false"}});
    songd.Start();
    const std::string id = CompleteJob(songd);
    ASSERT_EQ(songd.Stop(), 0);
    const auto files = TreeDigest(songd.output_dir());
    const std::string rows = DumpDatabase(DatabasePath(songd));
    for (const char* bad : {"yesterday", "2026-13-01T00:00:00Z", "2026-02-30", ""}) {
        SCOPED_TRACE(bad);
        auto [code, output] = songd.RunCommand({"cleanup", "--as-of", bad}, CommandEnv(songd));
        EXPECT_EQ(code, 2) << output;
        EXPECT_NE(output.find("--as-of"), std::string::npos) << output;
    }
    EXPECT_EQ(TreeDigest(songd.output_dir()), files);
    EXPECT_EQ(DumpDatabase(DatabasePath(songd)), rows);
}

TEST(RetentionCommand, DryRunChangesNothingAndListsWhatARealPassDeletes) {
    SongdProcess songd(Env{{"CLEANUP_ENABLED", "false"}});
    songd.Start();
    std::set<std::string> ids = {CompleteJob(songd), CompleteJob(songd)};
    ASSERT_EQ(songd.Stop(), 0);
    const fs::path orphan = songd.output_dir() / core::NewJobId();
    WriteFile(orphan / "output_fixed.wav", "old");
    SetTreeMtime(orphan, core::NowMillis() - 40 * kDay);
    const std::string as_of = core::FormatIso8601(core::NowMillis() + 31 * kDay);
    const auto files = TreeDigest(songd.output_dir());
    const std::string rows = DumpDatabase(DatabasePath(songd));

    auto [code, output] =
        songd.RunCommand({"cleanup", "--dry-run", "--as-of", as_of}, CommandEnv(songd));
    EXPECT_EQ(code, 0) << output;
    EXPECT_EQ(TreeDigest(songd.output_dir()), files);
    EXPECT_EQ(DumpDatabase(DatabasePath(songd)), rows);
    EXPECT_NE(output.find("dry run: 2 jobs expired"), std::string::npos) << output;
    for (const auto& id : ids) {
        EXPECT_NE(output.find("would expire job " + id), std::string::npos) << output;
    }
    EXPECT_NE(output.find("would delete orphan " + orphan.string()), std::string::npos) << output;

    // The real pass deletes exactly what the dry run listed.
    auto [real_code, real_output] =
        songd.RunCommand({"cleanup", "--as-of", as_of}, CommandEnv(songd));
    EXPECT_EQ(real_code, 0) << real_output;
    for (const auto& id : ids) {
        EXPECT_NE(real_output.find("expired job " + id), std::string::npos) << real_output;
        EXPECT_FALSE(fs::exists(songd.output_dir() / id));
    }
    EXPECT_FALSE(fs::exists(orphan));
    EXPECT_EQ(CountOf("\n" + real_output, "\nexpired ") + CountOf("\n" + real_output, "\ndeleted "),
              CountOf("\n" + output, "\nwould "));
}

// ---- scheduling across restarts ------------------------------------------------------

int64_t MetricValue(SongdProcess& songd, const std::string& name) {
    auto r = Http("GET", songd.Url("/api/v1/metrics"));
    if (r.status != 200) return -1;
    const std::string needle = "\n" + name + " ";
    size_t pos = r.body.find(needle);
    if (pos == std::string::npos) return -1;
    return std::stoll(r.body.substr(pos + needle.size()));
}

TEST(RetentionScheduler, ARestartedServiceCleansWhenTheLastPassIsOlderThanTheInterval) {
    SongdProcess songd(Env{{"CLEANUP_INTERVAL_HOURS", "24"}});
    const int64_t now = core::NowMillis();

    // Last pass 25 h ago: a pass runs within a minute of the start.
    const int64_t day_ago = now - 25 * kHour;
    auto [code, output] =
        songd.RunCommand({"cleanup", "--as-of", core::FormatIso8601(day_ago)}, CommandEnv(songd));
    ASSERT_EQ(code, 0) << output;
    ASSERT_EQ(LastRunRecorded(songd), std::to_string(day_ago));
    const int64_t started = core::NowMillis();
    songd.Start();
    EXPECT_TRUE(WaitFor([&] { return MetricValue(songd, "songd_cleanup_passes_total") == 1; },
                        std::chrono::seconds(60)))
        << songd.Log();
    EXPECT_NE(songd.Log().find("cleanup_pass"), std::string::npos);
    EXPECT_GE(MetricValue(songd, "songd_cleanup_last_pass_timestamp_seconds"), started / 1000);
    ASSERT_EQ(songd.Stop(), 0);
    EXPECT_GE(std::stoll(LastRunRecorded(songd).value_or("0")), started);

    // Last pass 1 h ago: no pass after the start, well past the start delay.
    const int64_t hour_ago = core::NowMillis() - kHour;
    std::tie(code, output) =
        songd.RunCommand({"cleanup", "--as-of", core::FormatIso8601(hour_ago)}, CommandEnv(songd));
    ASSERT_EQ(code, 0) << output;
    ASSERT_EQ(LastRunRecorded(songd), std::to_string(hour_ago));
    const size_t passes_logged = CountOf(songd.Log(), "cleanup_pass");
    songd.Start();
    ASSERT_EQ(MetricValue(songd, "songd_cleanup_passes_total"), 0) << "metric missing";
    EXPECT_FALSE(WaitFor(
        [&] {
            return MetricValue(songd, "songd_cleanup_passes_total") != 0 ||
                   CountOf(songd.Log(), "cleanup_pass") != passes_logged;
        },
        std::chrono::seconds(20)))
        << songd.Log();
    ASSERT_EQ(songd.Stop(), 0);
    EXPECT_EQ(LastRunRecorded(songd), std::to_string(hour_ago));
}

// ---- crash in the middle of a pass ---------------------------------------------------

TEST(RetentionCrash, APassKilledHalfwayIsFinishedByTheNextAndNeverLiesAboutFiles) {
    constexpr int kDue = 10000;
    constexpr int kLive = 200;
    SongdProcess songd;
    const int64_t now = core::NowMillis();
    std::vector<std::string> due, live;
    {
        jobs::SqliteJobStore store(DatabasePath(songd));
        auto add = [&](int64_t expires_at, std::vector<std::string>& into) {
            jobs::Job job;
            job.id = core::NewJobId();
            job.request.lyrics = "[00:01.00]la la";
            job.request.style_prompt = "pop";
            job.created_at = now - 40 * kDay;
            job.request_hash = "seed";
            store.Create(job);
            auto claimed = store.Claim("seed", now, 60000);
            ASSERT_TRUE(claimed && claimed->id == job.id);
            jobs::Completion c;
            c.output_file = job.id + "/output_fixed.wav";
            c.has_preview = true;
            c.expires_at = expires_at;
            ASSERT_TRUE(store.Complete(job.id, "seed", c, expires_at - 30 * kDay));
            WriteFile(songd.output_dir() / job.id / "output_fixed.wav", std::string(1024, 's'));
            WriteFile(songd.output_dir() / job.id / "preview.mp3", std::string(256, 'p'));
            into.push_back(job.id);
        };
        for (int i = 0; i < kDue; ++i) add(now - kDay - i, due);
        for (int i = 0; i < kLive; ++i) add(now + kDay + i, live);
    }
    const auto live_files = TreeDigest(songd.output_dir() / live.front());

    const fs::path log = songd.dir() / "cleanup-killed.log";
    pid_t pid = SpawnSongd(songd.dir(), {"cleanup"}, CommandEnv(songd), log);
    ASSERT_GT(pid, 0);
    // Kill once a good part of the jobs are reported (stdout is block-buffered, so the log
    // trails the pass a little).
    ASSERT_TRUE(WaitFor([&] { return CountOf(ReadFile(log), "expired job ") >= 1000; },
                        std::chrono::seconds(300)))
        << ReadFile(log);
    ::kill(pid, SIGKILL);
    int status = 0;
    ASSERT_EQ(::waitpid(pid, &status, 0), pid);
    ASSERT_TRUE(WIFSIGNALED(status)) << "the pass ended before it could be killed";

    auto check = [&](bool all_done) {
        jobs::SqliteJobStore store(DatabasePath(songd));
        int expired = 0;
        for (const auto& id : due) {
            auto job = store.Get(id);
            ASSERT_TRUE(job) << id;
            if (job->status == jobs::JobStatus::kExpired) {
                ++expired;
                EXPECT_FALSE(fs::exists(songd.output_dir() / id)) << "expired but on disk: " << id;
            } else {
                EXPECT_EQ(job->status, jobs::JobStatus::kCompleted) << id;
            }
        }
        for (const auto& id : live) {
            auto job = store.Get(id);
            ASSERT_TRUE(job) << id;
            EXPECT_EQ(job->status, jobs::JobStatus::kCompleted) << id;
            EXPECT_TRUE(fs::exists(songd.output_dir() / id / "output_fixed.wav")) << id;
            EXPECT_TRUE(fs::exists(songd.output_dir() / id / "preview.mp3")) << id;
        }
        if (all_done) {
            EXPECT_EQ(expired, kDue);
        } else {
            EXPECT_GT(expired, 0);
            EXPECT_LT(expired, kDue) << "the kill came after the pass";
        }
    };
    check(false);
    if (HasFatalFailure()) return;

    auto [code, output] = songd.RunCommand({"cleanup"}, CommandEnv(songd));
    EXPECT_EQ(code, 0) << output.substr(output.size() > 2000 ? output.size() - 2000 : 0);
    check(true);
    EXPECT_EQ(TreeDigest(songd.output_dir() / live.front()), live_files);
    size_t folders = 0;
    for (const auto& entry : fs::directory_iterator(songd.output_dir())) {
        (void)entry;
        ++folders;
    }
    EXPECT_EQ(folders, static_cast<size_t>(kLive));
}

}  // namespace
}  // namespace songd::test
