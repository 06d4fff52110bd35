// Durability: a job is never lost or completed twice, whatever happens to the process
// (acceptance 3 of the service core), and a graceful stop requeues in-flight work.
#include <gtest/gtest.h>
#include <sys/stat.h>

#include <atomic>
#include <boost/json.hpp>
#include <map>
#include <regex>
#include <thread>

#include "engine/engine.h"
#include "harness/http_client.h"
#include "harness/songd_process.h"
#include "harness/wav.h"

namespace songd::test {
namespace {

namespace json = boost::json;

int CountCompletions(const std::string& log, const std::string& id) {
    std::regex re("job_id=" + id + " from=processing to=completed");
    return static_cast<int>(
        std::distance(std::sregex_iterator(log.begin(), log.end(), re), std::sregex_iterator()));
}

TEST(Crash, KillDuringProcessingLosesNothingAndCompletesEachJobOnce) {
    SongdProcess songd(Env{{"WORKERS", "1"}, {"TONE_RENDER_MS", "1500"}});
    songd.Start();
    std::vector<std::string> ids;
    const int lengths[] = {95, 100, 110, 120};
    for (int length : lengths) ids.push_back(SubmitJob(songd, length));
    ASSERT_TRUE(WaitFor([&] { return JobStatusName(songd, ids[0]) == "processing"; }));

    // A reader polls downloads the whole time: it must only ever get 409 or a whole file.
    std::atomic<bool> stop{false};
    std::atomic<int> bad_downloads{0}, good_downloads{0};
    std::thread reader([&] {
        while (!stop) {
            for (size_t i = 0; i < ids.size(); ++i) {
                auto r = Http("GET", songd.Url("/api/v1/download/" + ids[i]));
                if (r.status == 200) {
                    WavInfo wav = ParseWav(r.body);
                    if (!wav.valid || wav.frames != engine::TargetFrames(lengths[i]))
                        ++bad_downloads;
                    else
                        ++good_downloads;
                }
            }
        }
    });

    songd.Kill();  // SIGKILL while the first job renders
    songd.Start();
    bool all_done = WaitFor(
        [&] {
            for (const auto& id : ids) {
                if (JobStatusName(songd, id) != "completed") return false;
            }
            return true;
        },
        std::chrono::seconds(60));
    stop = true;
    reader.join();
    ASSERT_TRUE(all_done) << songd.Log();

    const std::string log = songd.Log();
    for (size_t i = 0; i < ids.size(); ++i) {
        EXPECT_EQ(CountCompletions(log, ids[i]), 1) << ids[i];
        auto r = Http("GET", songd.Url("/api/v1/download/" + ids[i]));
        ASSERT_EQ(r.status, 200);
        WavInfo wav = ParseWav(r.body);
        EXPECT_TRUE(wav.valid);
        EXPECT_EQ(wav.frames, engine::TargetFrames(lengths[i]));
    }
    EXPECT_EQ(bad_downloads, 0);
    EXPECT_GT(good_downloads, 0);
    // The interrupted job was recovered at start, not after a lease timeout.
    EXPECT_NE(log.find("jobs_recovered count=1 reason=previous process stopped"),
              std::string::npos);
    // The first job was attempted twice; its attempt count shows in the log.
    EXPECT_NE(log.find("job_id=" + ids[0] + " from=queued to=processing attempt=2"),
              std::string::npos);
}

TEST(Crash, JobsThatKeepKillingTheirWorkerFailAfterThreeAttempts) {
    SongdProcess songd(Env{{"WORKERS", "1"}, {"TONE_RENDER_MS", "20000"}});
    songd.Start();
    std::string id = SubmitJob(songd, 95);
    for (int attempt = 0; attempt < 3; ++attempt) {
        ASSERT_TRUE(WaitFor([&] { return JobStatusName(songd, id) == "processing"; }));
        songd.Kill();
        songd.Start();
    }
    ASSERT_TRUE(WaitFor([&] { return JobStatusName(songd, id) == "failed"; }));
    auto doc = json::parse(Http("GET", songd.Url("/api/v1/status/" + id)).body).as_object();
    EXPECT_EQ(doc["error_code"].as_string(), "worker_lost");
    EXPECT_NE(std::string(doc["error"].as_string()).find("3 times"), std::string::npos);
}

TEST(Crash, SigtermRequeuesInFlightJobsAndExitsCleanly) {
    SongdProcess songd(Env{{"WORKERS", "1"}, {"TONE_RENDER_MS", "20000"}});
    songd.Start();
    std::string id = SubmitJob(songd, 95);
    ASSERT_TRUE(WaitFor([&] { return JobStatusName(songd, id) == "processing"; }));
    auto started = std::chrono::steady_clock::now();
    EXPECT_EQ(songd.Stop(), 0);
    auto seconds =
        std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count();
    RecordProperty("shutdown_seconds", std::to_string(seconds));
    const std::string log = songd.Log();
    EXPECT_NE(log.find("job_id=" + id + " from=processing to=requeued"), std::string::npos) << log;
    // The next start finds the job queued again, with its attempt not counted.
    songd.SetEnv("TONE_RENDER_MS", "0");
    songd.Start();
    ASSERT_TRUE(WaitFor([&] { return JobStatusName(songd, id) == "completed"; }));
    EXPECT_NE(songd.Log().find("job_id=" + id + " from=queued to=processing attempt=1"),
              std::string::npos);
}

TEST(Crash, SecondServerOnTheSameSqliteDatabaseIsRefused) {
    SongdProcess songd;
    songd.Start();
    auto [code, output] = songd.RunCommand(
        {"serve"}, {{"PORT", std::to_string(FreePort())},
                    {"DATABASE_URL", "sqlite:" + (songd.dir() / "data" / "songd.db").string()},
                    {"OUTPUT_DIR", songd.output_dir().string()}});
    EXPECT_NE(code, 0);
    EXPECT_NE(output.find("another songd serve is using"), std::string::npos) << output;
}

}  // namespace
}  // namespace songd::test
