// S3 at the service level: the real `songd serve` and `songd migrate-s3` binaries against
// s3rver, through the fault proxy (tests/s3/server/launch.js) so tests can see every
// request and break S3 on purpose. The bucket is inspected with a client that talks to
// s3rver directly, so the checks neither pass through the faults nor show in the proxy log.

#include <fcntl.h>
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <boost/json.hpp>
#include <chrono>
#include <filesystem>
#include <fstream>
#include <map>
#include <memory>
#include <set>
#include <sstream>
#include <string>
#include <vector>

#include "core/config.h"
#include "harness/http_client.h"
#include "harness/songd_process.h"
#include "harness/spawn.h"
#include "harness/wav.h"
#include "jobs/job_store.h"
#include "s3_test_server.h"
#include "storage/s3/s3_client.h"

namespace songd::test {
namespace {

namespace fs = std::filesystem;
namespace json = boost::json;
using songd::testing::ProxyLogEntry;
using songd::testing::S3TestServer;

constexpr const char* kBucket = "songs";
constexpr const char* kPrefix = "media/songs/";
constexpr int64_t kMiB = 1 << 20;
// Generous: the machine is shared, and a failing upload spends its retries first.
constexpr auto kJobDeadline = std::chrono::seconds(180);

std::string ReadFile(const fs::path& path) {
    std::ifstream in(path, std::ios::binary);
    std::stringstream ss;
    ss << in.rdbuf();
    return ss.str();
}

std::string SongKey(const std::string& id) {
    return std::string(kPrefix) + id + "/output_fixed.wav";
}

json::object StatusOf(SongdProcess& s, const std::string& id) {
    auto r = Http("GET", s.Url("/api/v1/status/" + id));
    EXPECT_EQ(r.status, 200) << r.body << r.error;
    if (r.status != 200) return {};
    return json::parse(r.body).as_object();
}

bool IsCompleted(SongdProcess& s, const std::string& id) {
    auto doc = StatusOf(s, id);
    return doc.contains("status") && doc["status"].as_string() == "completed";
}

bool HasS3Url(SongdProcess& s, const std::string& id) {
    auto doc = StatusOf(s, id);
    return doc.contains("s3_url") && doc["s3_url"].is_string();
}

/// The value of an unlabelled Prometheus sample, or -1 when absent.
int64_t Metric(SongdProcess& s, const std::string& name) {
    auto r = Http("GET", s.Url("/api/v1/metrics"));
    std::istringstream in(r.body);
    std::string line;
    while (std::getline(in, line)) {
        if (line.rfind(name + " ", 0) == 0) return std::stoll(line.substr(name.size() + 1));
    }
    return -1;
}

int64_t ActiveJobs(SongdProcess& s) {
    auto r = Http("GET", s.Url("/api/v1/queue"));
    return json::parse(r.body).as_object().at("active_jobs").as_int64();
}

size_t CountOccurrences(const std::string& text, const std::string& needle) {
    size_t n = 0;
    for (size_t at = text.find(needle); at != std::string::npos; at = text.find(needle, at + 1))
        ++n;
    return n;
}

size_t CountRequests(const std::vector<ProxyLogEntry>& log, const std::string& method,
                     const std::string& url_part) {
    size_t n = 0;
    for (const ProxyLogEntry& e : log) {
        if (e.method == method && e.url.find(url_part) != std::string::npos) ++n;
    }
    return n;
}

/// Uploads of a job's song the proxy saw: single PutObjects and multipart starts (a 95 s
/// song is 44 bytes over the 16 MiB multipart threshold, so most go up in parts).
size_t SongUploads(const std::vector<ProxyLogEntry>& log, const std::string& id) {
    const std::string song = id + "/output_fixed.wav";
    size_t n = 0;
    for (const ProxyLogEntry& e : log) {
        if (e.url.find(song) == std::string::npos) continue;
        if (e.method == "PUT" && e.url.find("partNumber=") == std::string::npos) ++n;
        if (e.method == "POST" && e.url.find("?uploads") != std::string::npos) ++n;
    }
    return n;
}

/// Every key in the bucket, asked of s3rver directly.
std::set<std::string> BucketKeys(storage::s3::S3Client& client) {
    std::set<std::string> keys;
    client.ForEachObject("", [&](const storage::s3::ObjectInfo& o) {
        keys.insert(o.key);
        return true;
    });
    return keys;
}

/// Runs the songd binary to its exit with a deadline (it is killed, and the result says
/// so, if it is still running then): for commands expected to stop on their own.
struct Exit {
    int code = -1;
    bool timed_out = false;
    std::string output;
};

Exit RunToExit(const fs::path& dir, const std::vector<std::string>& args, const Env& env) {
    const fs::path log = dir / "run.log";
    Exit exit;
    pid_t pid = SpawnSongd(dir, args, env, log);
    if (pid < 0) {
        exit.output = "cannot start songd";
        return exit;
    }
    int status = 0;
    bool exited =
        WaitFor([&] { return ::waitpid(pid, &status, WNOHANG) == pid; }, std::chrono::seconds(60));
    if (!exited) {
        ::kill(pid, SIGKILL);
        ::waitpid(pid, &status, 0);
        exit.timed_out = true;
    }
    exit.code = WIFEXITED(status) ? WEXITSTATUS(status) : -WTERMSIG(status);
    exit.output = ReadFile(log);
    return exit;
}

/// Waits until the job is completed, no job is active (its upload attempt is over) and an
/// upload failed; then the job must have no s3_url.
::testing::AssertionResult CompletedButNotUploaded(SongdProcess& s, const std::string& id) {
    if (!WaitFor([&] { return IsCompleted(s, id); }, kJobDeadline)) {
        return ::testing::AssertionFailure() << "not completed: " << StatusOf(s, id);
    }
    if (!WaitFor(
            [&] { return ActiveJobs(s) == 0 && Metric(s, "songd_s3_upload_failures_total") >= 1; },
            kJobDeadline)) {
        return ::testing::AssertionFailure() << "no failed upload recorded";
    }
    if (!StatusOf(s, id)["s3_url"].is_null()) {
        return ::testing::AssertionFailure() << "s3_url set: " << StatusOf(s, id);
    }
    return ::testing::AssertionSuccess();
}

class ServiceS3Test : public ::testing::Test {
  protected:
    void SetUp() override {
        server_ = std::make_unique<S3TestServer>(std::vector<std::string>{kBucket});
        core::Config direct = server_->Config(kBucket, /*through_proxy=*/false);
        direct.s3_prefix = kPrefix;
        bucket_ = std::make_unique<storage::s3::S3Client>(direct);
    }

    /// The S3 settings of a service that talks to S3 through the fault proxy.
    Env S3Env() const {
        return Env{{"S3_ENABLED", "true"},
                   {"S3_BUCKET", kBucket},
                   {"S3_REGION", "us-east-1"},
                   {"S3_ACCESS_KEY", "S3RVER"},  // s3rver's built-in account
                   {"S3_SECRET_KEY", "S3RVER"},
                   {"S3_PREFIX", kPrefix},
                   {"S3_ENDPOINT", "http://127.0.0.1:" + std::to_string(server_->proxy_port())},
                   {"S3_FORCE_PATH_STYLE", "true"},
                   {"S3_RECONCILE_SECONDS", "1"},
                   {"WORKERS", "1"}};
    }

    /// What `songd` needs to share a test server's folder, for commands run beside it.
    static Env CommandEnv(const SongdProcess& songd, const Env& extra) {
        Env env{{"ENGINE", "tone"},
                {"LOG_FORMAT", "text"},
                {"OUTPUT_DIR", songd.output_dir().string()},
                {"DATABASE_URL", "sqlite:" + (songd.dir() / "data" / "songd.db").string()}};
        for (const auto& [k, v] : extra) env[k] = v;
        return env;
    }

    std::unique_ptr<S3TestServer> server_;
    std::unique_ptr<storage::s3::S3Client> bucket_;  ///< straight to s3rver
};

// Acceptance 3: upload after completion, s3_url, 302 to a presigned URL with the same
// bytes, and the redirect still working once the local copy is gone.
TEST_F(ServiceS3Test, CompletedSongLandsInS3AndDownloadRedirectsToIt) {
    SongdProcess songd(S3Env());
    songd.Start();
    const std::string id = SubmitJob(songd);
    ASSERT_FALSE(id.empty());
    ASSERT_TRUE(WaitFor([&] { return HasS3Url(songd, id); }, kJobDeadline)) << StatusOf(songd, id);

    auto status = StatusOf(songd, id);
    EXPECT_EQ(status["status"].as_string(), "completed");
    EXPECT_EQ(status["s3_url"].as_string(), std::string("s3://") + kBucket + "/" + SongKey(id));

    const fs::path local = songd.output_dir() / id / "output_fixed.wav";
    const std::string local_bytes = ReadFile(local);
    ASSERT_TRUE(ParseWav(local_bytes).valid);

    auto head = bucket_->HeadObject(SongKey(id));
    ASSERT_TRUE(head.has_value());
    EXPECT_EQ(head->size, static_cast<int64_t>(local_bytes.size()));
    EXPECT_EQ(head->content_type, "audio/wav");
    EXPECT_EQ(head->metadata["job-id"], id);

    // The bytes reached s3rver as announced (the proxy hashed them on the way through).
    auto log = server_->Log();
    bool song_put_checked = false;
    for (const auto& e : log) {
        if (e.method == "PUT" && e.url.find(id + "/output_fixed.wav") != std::string::npos) {
            ASSERT_TRUE(e.sha256_ok.has_value());
            EXPECT_TRUE(*e.sha256_ok);
            song_put_checked = true;
        }
    }
    EXPECT_TRUE(song_put_checked);
    EXPECT_EQ(SongUploads(log, id), 1u);

    auto download = Http("GET", songd.Url("/api/v1/download/" + id));
    ASSERT_EQ(download.status, 302) << download.body;
    const std::string location = download.Header("location");
    EXPECT_EQ(location.rfind("http://127.0.0.1:" + std::to_string(server_->proxy_port()) + "/", 0),
              0u)
        << location;
    EXPECT_NE(location.find("X-Amz-Signature="), std::string::npos) << location;
    EXPECT_EQ(download.Header("cache-control"), "no-store");
    auto fetched = Http("GET", location);
    ASSERT_EQ(fetched.status, 200) << fetched.body;
    EXPECT_TRUE(fetched.body == local_bytes) << "presigned download differs from the local file";
    EXPECT_NE(fetched.Header("content-disposition").find("song-" + id + ".wav"), std::string::npos)
        << fetched.Header("content-disposition");

    // Another node, or a replaced disk: the local copy is gone, the redirect still works.
    fs::remove_all(songd.output_dir() / id);
    ASSERT_FALSE(fs::exists(local));
    auto again = Http("GET", songd.Url("/api/v1/download/" + id));
    ASSERT_EQ(again.status, 302) << again.body;
    auto refetched = Http("GET", again.Header("location"));
    ASSERT_EQ(refetched.status, 200);
    EXPECT_TRUE(refetched.body == local_bytes);
    EXPECT_EQ(Metric(songd, "songd_s3_uploads_total"), 1);
    EXPECT_EQ(Metric(songd, "songd_s3_reconciled_total"), 0);
}

// Acceptance 3: a 285 s song (about 50 MB) goes up as a multipart upload and matches.
TEST_F(ServiceS3Test, LongSongGoesUpMultipartAndMatches) {
    SongdProcess songd(S3Env());
    songd.Start();
    const std::string id = SubmitJob(songd, 285);
    ASSERT_FALSE(id.empty());
    ASSERT_TRUE(WaitFor([&] { return HasS3Url(songd, id); }, kJobDeadline)) << StatusOf(songd, id);

    const std::string local_bytes = ReadFile(songd.output_dir() / id / "output_fixed.wav");
    ASSERT_GT(static_cast<int64_t>(local_bytes.size()), 40 * kMiB);
    auto log = server_->Log();
    const std::string song = id + "/output_fixed.wav";
    EXPECT_EQ(SongUploads(log, id), 1u);
    EXPECT_EQ(CountRequests(log, "POST", song + "?uploads"), 1u);
    // 8 MiB parts (the client's default part size).
    const size_t expected_parts = (local_bytes.size() + 8 * kMiB - 1) / (8 * kMiB);
    EXPECT_EQ(CountRequests(log, "PUT", song + "?partNumber="), expected_parts);
    EXPECT_EQ(CountRequests(log, "POST", song + "?uploadId="), 1u);
    size_t checked = 0;
    for (const auto& e : log) {
        if (e.method == "PUT" && e.url.find(song) != std::string::npos) {
            ASSERT_TRUE(e.sha256_ok.has_value()) << e.url;
            EXPECT_TRUE(*e.sha256_ok) << e.url;
            ++checked;
        }
    }
    EXPECT_EQ(checked, expected_parts);

    auto head = bucket_->HeadObject(SongKey(id));
    ASSERT_TRUE(head.has_value());
    EXPECT_EQ(head->size, static_cast<int64_t>(local_bytes.size()));
    EXPECT_EQ(head->content_type, "audio/wav");
    EXPECT_EQ(head->metadata["job-id"], id);
    auto download = Http("GET", songd.Url("/api/v1/download/" + id));
    ASSERT_EQ(download.status, 302);
    auto fetched = Http("GET", download.Header("location"));
    ASSERT_EQ(fetched.status, 200);
    EXPECT_EQ(fetched.body.size(), local_bytes.size());
    EXPECT_TRUE(fetched.body == local_bytes) << "multipart object differs from the local file";
}

// Acceptance 4: S3 down during the upload. The job is completed and downloadable from the
// local disk; once S3 is back the reconciler uploads it.
TEST_F(ServiceS3Test, SongStaysLocalWhileS3IsDownAndTheReconcilerUploadsItLater) {
    SongdProcess songd(S3Env());
    songd.Start();
    server_->SetFaults(R"([{"action":"reset","times":-1}])");  // every connection dropped
    const std::string id = SubmitJob(songd);
    ASSERT_FALSE(id.empty());
    ASSERT_TRUE(CompletedButNotUploaded(songd, id));
    EXPECT_FALSE(bucket_->HeadObject(SongKey(id)).has_value());

    auto local = Http("GET", songd.Url("/api/v1/download/" + id));
    ASSERT_EQ(local.status, 200) << local.body;
    EXPECT_TRUE(local.body == ReadFile(songd.output_dir() / id / "output_fixed.wav"));
    EXPECT_EQ(Metric(songd, "songd_s3_reconciled_total"), 0);
    const int64_t upload_failures = Metric(songd, "songd_s3_upload_failures_total");
    EXPECT_NE(songd.Log().find("s3_upload_failed"), std::string::npos);

    server_->SetFaults("[]");  // S3 is back
    ASSERT_TRUE(WaitFor([&] { return HasS3Url(songd, id); }, kJobDeadline)) << StatusOf(songd, id);
    EXPECT_EQ(StatusOf(songd, id)["s3_url"].as_string(),
              std::string("s3://") + kBucket + "/" + SongKey(id));
    EXPECT_GE(Metric(songd, "songd_s3_reconciled_total"), 1);
    EXPECT_EQ(Metric(songd, "songd_s3_pending_uploads"), 0);
    EXPECT_GE(Metric(songd, "songd_s3_upload_failures_total"), upload_failures);
    auto head = bucket_->HeadObject(SongKey(id));
    ASSERT_TRUE(head.has_value());
    EXPECT_EQ(head->metadata["job-id"], id);
    auto download = Http("GET", songd.Url("/api/v1/download/" + id));
    ASSERT_EQ(download.status, 302);
    auto fetched = Http("GET", download.Header("location"));
    EXPECT_TRUE(fetched.body == local.body);
}

// A silent S3 (requests never answered) must not hold the generation workers: songs go up
// on an uploader thread of their own. One worker, three jobs, every PUT hanging: all three
// complete while the first upload is still hanging; once S3 answers, all three go up.
TEST_F(ServiceS3Test, AHangingS3DoesNotHoldTheGenerationWorker) {
    Env env = S3Env();
    env["WORKERS"] = "1";
    SongdProcess songd(env);
    songd.Start();
    server_->SetFaults(R"([{"method":"PUT","action":"hang","times":-1}])");
    std::vector<std::string> ids;
    for (int i = 0; i < 3; ++i) ids.push_back(SubmitJob(songd));
    for (const auto& id : ids) {
        ASSERT_FALSE(id.empty());
        ASSERT_TRUE(WaitFor([&] { return IsCompleted(songd, id); }, kJobDeadline))
            << "job " << id << " waited behind a hanging upload: " << StatusOf(songd, id);
    }
    // The first song's upload is hanging right now, so none is in S3 yet.
    bool hanging = false;
    for (const auto& entry : server_->Log()) hanging = hanging || entry.fault == "hang";
    EXPECT_TRUE(hanging) << "no upload reached S3 while the jobs ran";
    for (const auto& id : ids) EXPECT_TRUE(StatusOf(songd, id)["s3_url"].is_null());

    server_->SetFaults("[]");  // S3 answers again (the hanging connections are dropped)
    for (const auto& id : ids) {
        ASSERT_TRUE(WaitFor([&] { return HasS3Url(songd, id); }, kJobDeadline))
            << StatusOf(songd, id);
        EXPECT_TRUE(bucket_->HeadObject(SongKey(id)).has_value());
    }
}

// Acceptance 4: S3 unreachable when the service starts (nothing listens at S3_ENDPOINT) is
// not fatal: songs stay local, and once the service runs against a reachable S3 the
// reconciler uploads them.
TEST_F(ServiceS3Test, UnreachableS3AtStartKeepsSongsLocalUntilItAnswers) {
    Env env = S3Env();
    env["S3_ENDPOINT"] = "http://127.0.0.1:" + std::to_string(FreePort());  // closed
    SongdProcess songd(env);
    songd.Start();
    EXPECT_NE(songd.Log().find("s3_unreachable_at_start"), std::string::npos) << songd.Log();
    const std::string id = SubmitJob(songd);
    ASSERT_FALSE(id.empty());
    ASSERT_TRUE(CompletedButNotUploaded(songd, id));
    auto local = Http("GET", songd.Url("/api/v1/download/" + id));
    ASSERT_EQ(local.status, 200) << local.body;
    ASSERT_EQ(songd.Stop(), 0);

    songd.SetEnv("S3_ENDPOINT", "http://127.0.0.1:" + std::to_string(server_->proxy_port()));
    songd.Start();
    ASSERT_TRUE(WaitFor([&] { return HasS3Url(songd, id); }, kJobDeadline)) << StatusOf(songd, id);
    EXPECT_EQ(Metric(songd, "songd_s3_reconciled_total"), 1);
    auto download = Http("GET", songd.Url("/api/v1/download/" + id));
    ASSERT_EQ(download.status, 302);
    EXPECT_TRUE(Http("GET", download.Header("location")).body == local.body);
}

// Acceptance 4: injected 503s are retried inside the upload and it succeeds, without the
// reconciler.
TEST_F(ServiceS3Test, Injected503sAreRetriedAndTheUploadSucceeds) {
    SongdProcess songd(S3Env());
    songd.Start();
    server_->SetFaults(
        R"([{"method":"PUT","action":"status","status":503,"code":"SlowDown","times":2}])");
    const std::string id = SubmitJob(songd);
    ASSERT_FALSE(id.empty());
    ASSERT_TRUE(WaitFor([&] { return HasS3Url(songd, id); }, kJobDeadline)) << StatusOf(songd, id);
    auto log = server_->Log();
    // The first two PUTs (the song's first part) were refused, then everything went through,
    // in one upload.
    std::vector<std::string> song_faults;
    for (const auto& e : log) {
        if (e.url.find(id + "/output_fixed.wav") != std::string::npos)
            song_faults.push_back(e.fault);
    }
    EXPECT_EQ(std::count(song_faults.begin(), song_faults.end(), "status"), 2)
        << song_faults.size();
    ASSERT_GE(song_faults.size(), 3u);
    EXPECT_EQ(song_faults.back(), "");
    EXPECT_EQ(SongUploads(log, id), 1u);
    EXPECT_GE(Metric(songd, "songd_s3_retries_total"), 2);
    EXPECT_EQ(Metric(songd, "songd_s3_upload_failures_total"), 0);
    EXPECT_EQ(Metric(songd, "songd_s3_reconciled_total"), 0);
    EXPECT_EQ(songd.Log().find("s3_upload_failed"), std::string::npos);
    auto fetched = Http("GET", Http("GET", songd.Url("/api/v1/download/" + id)).Header("location"));
    EXPECT_TRUE(fetched.body == ReadFile(songd.output_dir() / id / "output_fixed.wav"));
}

// Acceptance 4: wrong credentials at start stop the service with one clear line.
struct BadCredentialsCase {
    const char* id;
    const char* access_key;
    const char* secret_key;
    const char* faults;    ///< what the proxy answers (s3rver does not verify signatures)
    const char* expected;  ///< in the message
};

TEST_F(ServiceS3Test, WrongCredentialsStopTheStartWithOneClearLine) {
    const BadCredentialsCase cases[] = {
        // s3rver itself refuses an access key it does not know.
        {"unknown-access-key", "NOSUCHKEY", "S3RVER", "[]", "HTTP 403"},
        // A wrong secret: S3 answers 403 SignatureDoesNotMatch (played by the proxy).
        {"wrong-secret", "S3RVER", "wrong-secret-value-123",
         R"([{"action":"status","status":403,"code":"SignatureDoesNotMatch","times":-1}])",
         "HTTP 403"},
    };
    for (const auto& c : cases) {
        SCOPED_TRACE(c.id);
        server_->SetFaults(c.faults);
        SongdProcess songd;  // only for its folder
        Env env = CommandEnv(songd, S3Env());
        env["S3_ACCESS_KEY"] = c.access_key;
        env["S3_SECRET_KEY"] = c.secret_key;
        env["PORT"] = std::to_string(FreePort());
        env["HOST"] = "127.0.0.1";
        Exit exit = RunToExit(songd.dir(), {"serve"}, env);
        ASSERT_FALSE(exit.timed_out) << "songd started with bad credentials:\n" << exit.output;
        EXPECT_EQ(exit.code, 2) << exit.output;
        // One line for the operator, naming what to check; the secret never shown.
        std::vector<std::string> reasons;
        std::istringstream in(exit.output);
        for (std::string line; std::getline(in, line);) {
            if (line.rfind("songd: ", 0) == 0) reasons.push_back(line);
        }
        ASSERT_EQ(reasons.size(), 1u) << exit.output;
        EXPECT_NE(reasons[0].find(c.expected), std::string::npos) << reasons[0];
        EXPECT_NE(reasons[0].find("S3_ACCESS_KEY"), std::string::npos) << reasons[0];
        EXPECT_NE(reasons[0].find("S3_SECRET_KEY"), std::string::npos) << reasons[0];
        EXPECT_EQ(exit.output.find("wrong-secret-value-123"), std::string::npos) << exit.output;
        EXPECT_EQ(exit.output.find("listening"), std::string::npos) << exit.output;
        EXPECT_EQ(Http("GET", "http://127.0.0.1:" + env["PORT"] + "/healthz").status, 0);
    }
}

// Acceptance 4: a key that breaks after start is reported once, and the reconciler backs
// off instead of retrying in a tight loop.
TEST_F(ServiceS3Test, KeyBrokenAfterStartIsReportedOnceAndTheReconcilerBacksOff) {
    SongdProcess songd(S3Env());
    songd.Start();
    server_->SetFaults(R"([{"action":"status","status":403,"code":"SignatureDoesNotMatch",
        "message":"The request signature we calculated does not match the signature you provided.",
        "times":-1}])");
    server_->ClearLog();
    const std::string id = SubmitJob(songd);
    ASSERT_FALSE(id.empty());
    ASSERT_TRUE(WaitFor([&] { return IsCompleted(songd, id); }, kJobDeadline));
    auto local = Http("GET", songd.Url("/api/v1/download/" + id));
    EXPECT_EQ(local.status, 200);

    // Watch the upload attempts (one request each: a refused signature is never retried)
    // and note when each one shows up, until the hook's and four of the reconciler's are seen.
    std::vector<std::chrono::steady_clock::time_point> seen;
    ASSERT_TRUE(WaitFor(
        [&] {
            size_t n = SongUploads(server_->Log(), id);
            while (seen.size() < n) seen.push_back(std::chrono::steady_clock::now());
            return seen.size() >= 5;
        },
        std::chrono::seconds(120)))
        << seen.size() << " attempts";
    ASSERT_EQ(seen.size(), 5u) << "more than one attempt between two polls";
    // The reconciler runs every S3_RECONCILE_SECONDS=1 while uploads succeed; failing, it
    // doubles its pause each time (2, 4, 8 s between its attempts here). The gaps grow, and
    // the last is several times the first: no tight loop.
    std::vector<double> gaps;
    for (size_t i = 2; i < seen.size(); ++i) {
        gaps.push_back(std::chrono::duration<double>(seen[i] - seen[i - 1]).count());
    }
    for (size_t i = 1; i < gaps.size(); ++i) {
        EXPECT_GT(gaps[i], gaps[i - 1])
            << "gap " << i << ": " << gaps[i] << " s after " << gaps[i - 1] << " s";
    }
    EXPECT_GT(gaps.back(), 2.5 * gaps.front())
        << gaps.front() << " s, then " << gaps.back() << " s";
    EXPECT_GE(gaps.front(), 1.0);
    EXPECT_TRUE(StatusOf(songd, id)["s3_url"].is_null());
    EXPECT_EQ(Metric(songd, "songd_s3_reconciled_total"), 0);

    // Five failed attempts, one error report naming the cause and what to check.
    const std::string log = songd.Log();
    EXPECT_EQ(CountOccurrences(log, "s3_upload_failed"), 1u) << log;
    const auto at = log.find("s3_upload_failed");
    ASSERT_NE(at, std::string::npos);
    const std::string report = log.substr(at, log.find('\n', at) - at);
    EXPECT_NE(report.find("SignatureDoesNotMatch"), std::string::npos) << report;
    EXPECT_NE(report.find("S3_SECRET_KEY"), std::string::npos) << report;
    size_t lines_about_the_song = 0;
    std::istringstream lines(log);
    for (std::string line; std::getline(lines, line);) {
        if (line.find(id) != std::string::npos &&
            line.find("SignatureDoesNotMatch") != std::string::npos) {
            ++lines_about_the_song;
        }
    }
    EXPECT_EQ(lines_about_the_song, 1u) << log;

    // Fixed key (the proxy stops refusing): the song goes up, the next error is new again.
    server_->SetFaults("[]");
    ASSERT_TRUE(WaitFor([&] { return HasS3Url(songd, id); }, std::chrono::seconds(120)));
    EXPECT_EQ(Metric(songd, "songd_s3_reconciled_total"), 1);
}

// Acceptance 5: migrate-s3 uploads exactly the songs S3 lacks; --dry-run changes nothing.
TEST_F(ServiceS3Test, MigrateUploadsExactlyTheMissingSongsAndDryRunChangesNothing) {
    // Four songs made with S3 off.
    SongdProcess songd(Env{{"S3_ENABLED", "false"}, {"WORKERS", "1"}});
    songd.Start();
    std::vector<std::string> ids;
    for (int i = 0; i < 4; ++i) ids.push_back(SubmitJob(songd));
    for (const auto& id : ids) {
        ASSERT_FALSE(id.empty());
        ASSERT_TRUE(WaitFor([&] { return IsCompleted(songd, id); }, kJobDeadline));
        EXPECT_TRUE(StatusOf(songd, id)["s3_url"].is_null());
    }
    ASSERT_EQ(songd.Stop(), 0);
    const std::string& present = ids[0];  // already in S3 (put there by another way)
    const std::string& lost = ids[3];     // neither local nor in S3
    ASSERT_NO_THROW(bucket_->PutObjectFromFile(
        SongKey(present), songd.output_dir() / present / "output_fixed.wav",
        {.content_type = "audio/wav", .metadata = {{"job-id", present}}}));
    fs::remove_all(songd.output_dir() / lost);
    const std::set<std::string> keys_before = BucketKeys(*bucket_);
    ASSERT_EQ(keys_before, std::set<std::string>{SongKey(present)});

    core::Config store_config;
    store_config.database_url = "sqlite:" + (songd.dir() / "data" / "songd.db").string();
    auto snapshot = [&] {
        auto store = jobs::OpenJobStore(store_config);
        std::map<std::string, std::pair<std::string, std::string>> rows;
        for (const auto& id : ids) {
            auto job = store->Get(id);
            EXPECT_TRUE(job.has_value());
            if (job) rows[id] = {jobs::JobStatusName(job->status), job->s3_url};
        }
        return rows;
    };
    const auto rows_before = snapshot();
    const Env env = CommandEnv(songd, S3Env());

    // Bad input first: S3 off is refused, with a reason, and nothing changes.
    Env off = env;
    off["S3_ENABLED"] = "false";
    auto refused = songd.RunCommand({"migrate-s3"}, off);
    EXPECT_EQ(refused.first, 2) << refused.second;
    EXPECT_NE(refused.second.find("S3_ENABLED=true"), std::string::npos) << refused.second;
    auto unknown = songd.RunCommand({"migrate-s3", "--dry-runn"}, env);
    EXPECT_NE(unknown.first, 0) << unknown.second;

    server_->ClearLog();
    auto dry = songd.RunCommand({"migrate-s3", "--dry-run"}, env);
    EXPECT_EQ(dry.first, 0) << dry.second;
    for (const std::string& id : {ids[1], ids[2]}) {
        EXPECT_NE(dry.second.find("would upload " + id), std::string::npos) << dry.second;
    }
    EXPECT_EQ(dry.second.find("would upload " + present), std::string::npos) << dry.second;
    EXPECT_NE(dry.second.find("cannot upload " + lost), std::string::npos) << dry.second;
    EXPECT_NE(dry.second.find("dry run: 4 completed songs, 1 already in S3, 2 would be uploaded, "
                              "1 missing locally, 0 failed"),
              std::string::npos)
        << dry.second;
    EXPECT_EQ(BucketKeys(*bucket_), keys_before);
    EXPECT_EQ(snapshot(), rows_before);
    for (const auto& e : server_->Log()) {
        EXPECT_TRUE(e.method == "HEAD" || e.method == "GET") << e.method << " " << e.url;
    }

    server_->ClearLog();
    auto run = songd.RunCommand({"migrate-s3"}, env);
    EXPECT_EQ(run.first, 0) << run.second;
    EXPECT_NE(run.second.find("4 completed songs, 1 already in S3, 2 uploaded, 1 missing locally, "
                              "0 failed"),
              std::string::npos)
        << run.second;
    auto log = server_->Log();
    EXPECT_EQ(CountRequests(log, "PUT", present), 0u);
    EXPECT_EQ(CountRequests(log, "PUT", lost), 0u);
    std::set<std::string> expected_keys = {SongKey(present), SongKey(ids[1]), SongKey(ids[2])};
    std::set<std::string> keys_after;
    for (const auto& key : BucketKeys(*bucket_)) {
        if (key.ends_with("/output_fixed.wav")) keys_after.insert(key);
    }
    EXPECT_EQ(keys_after, expected_keys);
    for (const std::string& id : {ids[1], ids[2]}) {
        EXPECT_EQ(SongUploads(log, id), 1u) << id;
        auto head = bucket_->HeadObject(SongKey(id));
        ASSERT_TRUE(head.has_value());
        EXPECT_EQ(head->content_type, "audio/wav");
        EXPECT_EQ(head->metadata["job-id"], id);
        fs::path copy = songd.dir() / ("fetched-" + id);
        bucket_->GetObjectToFile(SongKey(id), copy);
        EXPECT_TRUE(ReadFile(copy) == ReadFile(songd.output_dir() / id / "output_fixed.wav"));
    }
    auto rows = snapshot();
    for (const std::string& id : {ids[0], ids[1], ids[2]}) {
        EXPECT_EQ(rows[id].second, std::string("s3://") + kBucket + "/" + SongKey(id)) << id;
    }
    EXPECT_EQ(rows[lost].second, "");
    for (const auto& id : ids) EXPECT_EQ(rows[id].first, "completed");

    // Again: nothing is missing any more, nothing is sent.
    server_->ClearLog();
    auto again = songd.RunCommand({"migrate-s3"}, env);
    EXPECT_EQ(again.first, 0) << again.second;
    EXPECT_NE(
        again.second.find("4 completed songs, 3 already in S3, 0 uploaded, 1 missing locally"),
        std::string::npos)
        << again.second;
    EXPECT_EQ(CountRequests(server_->Log(), "PUT", ""), 0u);

    // The service started with S3 on redirects the migrated songs.
    for (const auto& [k, v] : S3Env()) songd.SetEnv(k, v);
    songd.Start();
    auto download = Http("GET", songd.Url("/api/v1/download/" + ids[1]));
    EXPECT_EQ(download.status, 302);
}

}  // namespace
}  // namespace songd::test
