// Scale-out on the real binary: two `songd serve` processes on one PostgreSQL database and one
// OUTPUT_DIR (the shared-disk stand-in for S3) act as one service.
#include <gtest/gtest.h>
#include <sys/wait.h>

#include <boost/json.hpp>
#include <filesystem>
#include <fstream>
#include <future>
#include <regex>

#include "core/clock.h"
#include "engine/engine.h"
#include "harness/http_client.h"
#include "harness/songd_process.h"
#include "harness/spawn.h"
#include "harness/wav.h"
#include "pg_test_support.h"

namespace songd::test {
namespace {

namespace json = boost::json;
namespace fs = std::filesystem;

int Count(const std::string& log, const std::string& pattern) {
    std::regex re(pattern);
    return static_cast<int>(
        std::distance(std::sregex_iterator(log.begin(), log.end(), re), std::sregex_iterator()));
}

int Completions(const std::string& log, const std::string& id) {
    return Count(log, "job_id=" + id + " from=processing to=completed");
}

/// A folder both nodes use as OUTPUT_DIR, removed when the test passed.
class SharedDir {
  public:
    SharedDir() {
        char tmpl[] = "/tmp/songd-shared-XXXXXX";
        path_ = ::mkdtemp(tmpl);
    }
    ~SharedDir() {
        std::error_code ec;
        if (!::testing::Test::HasFailure()) fs::remove_all(path_, ec);
    }
    std::string str() const { return path_.string(); }

  private:
    fs::path path_;
};

Env NodeEnv(const PgTestDatabase& db, const SharedDir& out, const std::string& render_ms) {
    return Env{{"DATABASE_URL", db.url()},
               {"OUTPUT_DIR", out.str()},
               {"WORKERS", "1"},
               {"ENGINE", "tone"},
               {"TONE_RENDER_MS", render_ms}};
}

TEST(TwoNodes, ShareTheQueueAndServeEachOthersJobs) {
    PgTestDatabase db;
    SharedDir out;
    // Each render takes 2 s, so node B's idle poll (every second) finds work node A queued.
    SongdProcess a(NodeEnv(db, out, "2000")), b(NodeEnv(db, out, "2000"));
    a.Start();
    b.Start();
    ASSERT_FALSE(::testing::Test::HasFatalFailure());

    const int lengths[] = {95, 100, 105, 110, 115, 120};
    std::vector<std::string> ids;
    for (int length : lengths) ids.push_back(SubmitJob(a, length));
    bool done = WaitFor(
        [&] {
            for (const auto& id : ids) {
                if (JobStatusName(a, id) != "completed") return false;
            }
            return true;
        },
        std::chrono::seconds(120));
    ASSERT_TRUE(done) << "node A:\n" << a.Log() << "\nnode B:\n" << b.Log();

    const std::string log_a = a.Log(), log_b = b.Log();
    const int on_a = Count(log_a, "to=completed"), on_b = Count(log_b, "to=completed");
    EXPECT_GT(on_a, 0) << log_a;
    EXPECT_GT(on_b, 0) << log_b;
    EXPECT_EQ(on_a + on_b, 6);
    for (const auto& id : ids) {
        EXPECT_EQ(Completions(log_a, id) + Completions(log_b, id), 1) << id;
    }
    std::cout << "completed on node A: " << on_a << ", on node B: " << on_b << "\n";
    // Without S3, each node says at start that OUTPUT_DIR must be shared.
    EXPECT_NE(log_a.find("songs_not_shared"), std::string::npos) << log_a;

    // Node B answers for every job node A created: status and the file itself.
    for (size_t i = 0; i < ids.size(); ++i) {
        EXPECT_EQ(JobStatusName(b, ids[i]), "completed");
        auto r = Http("GET", b.Url("/api/v1/download/" + ids[i]));
        ASSERT_EQ(r.status, 200) << r.body;
        WavInfo wav = ParseWav(r.body);
        EXPECT_TRUE(wav.valid);
        EXPECT_EQ(wav.frames, engine::TargetFrames(lengths[i]));
    }
    // And the queue document counts the shared store, whichever node is asked.
    auto queue = Http("GET", b.Url("/api/v1/queue"));
    EXPECT_EQ(queue.status, 200);
    EXPECT_EQ(a.Stop(), 0);
    EXPECT_EQ(b.Stop(), 0);
}

TEST(TwoNodes, ACompletionOnNodeAIsSeenOnNodeBWithinOneSecondUnderPolling) {
    // Node B answers status from its cache; node A's completion reaches it through the
    // cache's maximum age on PostgreSQL (500 ms), not through B's own invalidation.
    PgTestDatabase db;
    SharedDir out;
    SongdProcess a(NodeEnv(db, out, "3000"));
    a.Start();
    ASSERT_FALSE(::testing::Test::HasFatalFailure());
    const std::string id = SubmitJob(a);
    ASSERT_TRUE(WaitFor([&] { return JobStatusName(a, id) == "processing"; }))
        << "node A never claimed the job:\n"
        << a.Log();
    SongdProcess b(NodeEnv(db, out, "3000"));  // started once A holds the job
    b.Start();
    ASSERT_FALSE(::testing::Test::HasFatalFailure());

    int64_t seen_ms = 0;
    std::string completed_at;
    const bool seen = WaitFor(
        [&] {
            auto r = Http("GET", b.Url("/api/v1/status/" + id));
            if (r.status != 200) return false;
            auto doc = json::parse(r.body).as_object();
            if (doc.at("status").as_string() != "completed") return false;
            seen_ms = core::NowMillis();
            completed_at = std::string(doc.at("completed_at").as_string());
            return true;
        },
        std::chrono::seconds(60));
    ASSERT_TRUE(seen) << "node A:\n" << a.Log() << "\nnode B:\n" << b.Log();
    const auto done_ms = core::ParseIso8601(completed_at);
    ASSERT_TRUE(done_ms) << completed_at;
    EXPECT_EQ(Completions(a.Log(), id), 1) << "node A must be the one that completed it";
    const int64_t lag = seen_ms - *done_ms;
    std::cout << "node B saw node A's completion after " << lag << " ms\n";
    EXPECT_LT(lag, 1000);
    // B served those polls from its cache: the bound above is the cache's, not a bypass.
    auto metrics = Http("GET", b.Url("/api/v1/metrics"));
    std::smatch hits;
    ASSERT_TRUE(std::regex_search(metrics.body, hits,
                                  std::regex("songd_status_cache_hits_total ([0-9]+)")));
    EXPECT_GT(std::stoll(hits[1]), 0) << metrics.body;
    EXPECT_EQ(a.Stop(), 0);
    EXPECT_EQ(b.Stop(), 0);
}

TEST(TwoNodes, AJobOfAKilledNodeIsFinishedByTheOtherAfterItsLeaseEnds) {
    PgTestDatabase db;
    SharedDir out;
    // Node A would take ten minutes; node B renders quickly.
    SongdProcess a(NodeEnv(db, out, "600000")), b(NodeEnv(db, out, "200"));
    a.Start();
    ASSERT_FALSE(::testing::Test::HasFatalFailure());
    const std::string id = SubmitJob(a, 95);
    ASSERT_TRUE(WaitFor([&] { return JobStatusName(a, id) == "processing"; })) << a.Log();
    ASSERT_NE(a.Log().find("job_id=" + id + " from=queued to=processing attempt=1"),
              std::string::npos);
    // B starts only now, so the job is certainly A's.
    b.Start();
    ASSERT_FALSE(::testing::Test::HasFatalFailure());
    EXPECT_EQ(JobStatusName(b, id), "processing");
    const auto killed = std::chrono::steady_clock::now();
    a.Kill();

    // A's lease (30 s, renewed while it lived) must run out before B may take the job.
    bool done =
        WaitFor([&] { return JobStatusName(b, id) == "completed"; }, std::chrono::seconds(150));
    const double seconds =
        std::chrono::duration<double>(std::chrono::steady_clock::now() - killed).count();
    ASSERT_TRUE(done) << "node B:\n" << b.Log();
    std::cout << "finished by node B " << seconds << " s after node A was killed\n";

    const std::string log_a = a.Log(), log_b = b.Log();
    EXPECT_EQ(Completions(log_a, id), 0);
    EXPECT_EQ(Completions(log_b, id), 1);
    EXPECT_NE(log_b.find("jobs_recovered count=1 reason=lease expired"), std::string::npos)
        << log_b;
    EXPECT_NE(log_b.find("job_id=" + id + " from=queued to=processing attempt=2"),
              std::string::npos)
        << log_b;
    auto r = Http("GET", b.Url("/api/v1/download/" + id));
    ASSERT_EQ(r.status, 200);
    EXPECT_EQ(ParseWav(r.body).frames, engine::TargetFrames(95));
    EXPECT_EQ(b.Stop(), 0);
}

// A node that cannot reach the database does not start, and says why in one line that names
// the host and database but not the password.
TEST(TwoNodes, ServeWithAWrongPasswordExitsWithOneClearLine) {
    PgTestDatabase db;
    SharedDir out;
    const std::string url = PgUrlWithPassword(db.url(), "Not-The-Real-Pw-42");
    fs::path log = fs::path(out.str()) / "serve.log";
    pid_t pid = SpawnSongd(out.str(), {"serve"},
                           {{"DATABASE_URL", url},
                            {"OUTPUT_DIR", out.str()},
                            {"PORT", std::to_string(FreePort())},
                            {"HOST", "127.0.0.1"},
                            {"ENGINE", "tone"}},
                           log);
    ASSERT_GT(pid, 0);
    int status = 0;
    ASSERT_EQ(::waitpid(pid, &status, 0), pid);
    ASSERT_TRUE(WIFEXITED(status));
    EXPECT_EQ(WEXITSTATUS(status), 2);
    std::ifstream in(log);
    std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    const std::string expected_start =
        "songd: cannot connect to PostgreSQL at 127.0.0.1:" +
        url.substr(url.rfind(':') + 1, url.rfind('/') - url.rfind(':') - 1) + ", database " +
        db.name() + ", user songd: ";
    EXPECT_EQ(text.rfind(expected_start, 0), 0u) << text;
    EXPECT_NE(text.find("password authentication failed"), std::string::npos) << text;
    EXPECT_EQ(text.find("Not-The-Real-Pw-42"), std::string::npos) << text;
    EXPECT_EQ(text.find(PgUrlPassword(db.url())), std::string::npos) << text;
    EXPECT_EQ(Count(text, "\n"), 1) << text;
}

// Client API: a cancel sent to the node that does not hold the job still stops it (the
// holder polls for cancels of its jobs every second); the worker then takes the next job.
TEST(TwoNodes, ACancelSentToTheOtherNodeStopsTheJob) {
    PgTestDatabase db;
    SharedDir out;
    SongdProcess a(NodeEnv(db, out, "20000"));
    a.Start();
    ASSERT_FALSE(::testing::Test::HasFatalFailure());
    const std::string id = SubmitJob(a, 95);
    ASSERT_TRUE(WaitFor([&] { return JobStatusName(a, id) == "processing"; })) << a.Log();
    const std::string next = SubmitJob(a, 95);
    // B starts only now, so the job is certainly A's.
    SongdProcess b(NodeEnv(db, out, "20000"));
    b.Start();
    ASSERT_FALSE(::testing::Test::HasFatalFailure());
    ASSERT_TRUE(WaitFor([&] { return fs::exists(fs::path(out.str()) / id / "work"); }));

    // The answer may be held while the job stops: the status is watched meanwhile.
    const auto asked = std::chrono::steady_clock::now();
    auto answer = std::async(std::launch::async,
                             [&] { return Http("POST", b.Url("/api/v1/jobs/" + id + "/cancel")); });
    ASSERT_TRUE(
        WaitFor([&] { return JobStatusName(b, id) == "canceled"; }, std::chrono::seconds(15)))
        << "node A:\n"
        << a.Log();
    const double seconds =
        std::chrono::duration<double>(std::chrono::steady_clock::now() - asked).count();
    auto r = answer.get();
    EXPECT_TRUE(r.status == 200 || r.status == 202) << r.status << " " << r.body;
    std::cout << "[measure] canceled on node A " << seconds << " s after node B was asked (answer "
              << r.status << ")\n";
    EXPECT_LT(seconds, 2.0);
    EXPECT_NE(a.Log().find("job_id=" + id + " from=processing to=canceled"), std::string::npos)
        << a.Log();
    EXPECT_FALSE(fs::exists(fs::path(out.str()) / id)) << "the job folder is removed";
    // Some worker takes the next job; events on B report A's progress (polled).
    EXPECT_TRUE(WaitFor([&] { return JobStatusName(a, next) == "processing"; }));
    const std::string raw = RawExchange(
        b.port(), "GET /api/v1/jobs/" + next + "/events HTTP/1.1\r\nHost: x\r\n\r\n", 5000);
    EXPECT_GE(Count(raw, "event: status"), 2) << raw;
    EXPECT_EQ(Http("DELETE", a.Url("/api/v1/jobs/" + next)).status / 100, 2);
    EXPECT_EQ(a.Stop(), 0);
    EXPECT_EQ(b.Stop(), 0);
}

}  // namespace
}  // namespace songd::test
