// The fault campaign: the real `songd serve` against the real stores and the local Stripe and
// S3 stand-ins, with one fault injected at one step of a job's life per case, in the manner
// of SQLite's fault-injection tests: whatever the fault, the run must end in the one correct
// state, never in a corrupt one. Every case then checks the same rules:
//
//   1. every job `generate` acknowledged ends `completed` with its file (local or S3); `failed`
//      only where the render itself failed, never because a store, S3, the disk or Stripe
//      was briefly away (no case here injects a render failure);
//   2. no payment is bound to a job without a file;
//   3. after the next retention pass, no file is left (the pass runs as of a day past every
//      job's retention: every song expired, every folder and object no job owns swept);
//   4. songd answers /healthz within 5 s of the fault ending (for kill -9: of the restart).
//
// The table of cases (stable ids) is kCases below; tests/faults/README.md lists it with the
// outcome each case showed. Cases that fail on a branch show a defect of songd, not of the
// test: the assertions are the rules, never adjusted to what songd does.
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/wait.h>

#include <atomic>
#include <boost/json.hpp>
#include <chrono>
#include <filesystem>
#include <fstream>
#include <memory>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "core/clock.h"
#include "engine/engine.h"
#include "faults/fault_support.h"
#include "harness/http_client.h"
#include "harness/songd_process.h"
#include "harness/spawn.h"
#include "harness/wav.h"
#include "postgres/pg_test_support.h"
#include "s3/s3_test_server.h"
#include "storage/s3/s3_client.h"
#include "unit/payment/stripe_mock_process.h"

namespace songd::test {
namespace {

namespace fs = std::filesystem;
namespace json = boost::json;
using payment::testing::StripeMockProcess;
using songd::testing::S3TestServer;
using Clock = std::chrono::steady_clock;

constexpr const char* kSecretKey = "sk_test_FaultCampaignKey7e1d";
constexpr const char* kWebhookSecret = "whsec_FaultCampaignHook4a90";
constexpr int64_t kPrice = 120;
constexpr const char* kBucket = "songs";
constexpr const char* kS3Prefix = "songs/";
constexpr int kRetentionDays = 30;
constexpr int kLength = 95;
// Long enough for one lease recovery (30 s) and a render on a busy machine.
constexpr auto kJobDeadline = std::chrono::seconds(120);
constexpr auto kHealthDeadline = std::chrono::seconds(5);
// 95 s of audio: the raw float render is ~33.5 MB, the finished 16-bit file ~16.8 MB.
constexpr int kDiskMiB = 64;
constexpr int64_t kMiB = 1 << 20;

enum class Fault { kKill9, kPostgres, kS3Hang, kDiskFull, kStripeSlow };
enum class Step {
    kQueued,
    kClaimed,
    kRendering,
    kFinishing,
    kCompleting,
    kUploading,
    kPaying,
    kDownloading,
    kExpiring
};
/// What every acknowledged job must end as.
enum class Expect { kCompleted, kExpired };
enum Needs : unsigned { kLocal = 0, kS3 = 1, kPg = 2, kDisk = 4 };

class FaultRun;

/// @brief One row of the campaign: a fault at a step, and what every job must end as.
struct FaultCase {
    const char* id;  ///< stable, also the gtest name
    Fault fault;
    Step step;
    Expect expect;
    unsigned needs;
    const char* scenario;
    void (*run)(FaultRun&);
};

void PrintTo(const FaultCase& c, std::ostream* os) { *os << c.id; }

const char* FaultName(Fault f) {
    static constexpr const char* kNames[] = {"kill -9", "PostgreSQL stop/start", "S3 hang",
                                             "disk full", "Stripe slow"};
    return kNames[static_cast<int>(f)];
}

const char* StepName(Step s) {
    static constexpr const char* kNames[] = {"queued",    "claimed",     "rendering",
                                             "finishing", "completing",  "uploading",
                                             "paying",    "downloading", "expiring"};
    return kNames[static_cast<int>(s)];
}

/// @brief The fixture: Stripe stand-in always, S3 / PostgreSQL / tmpfs when the case needs
/// them, one songd, and the jobs it acknowledged.
class FaultRun : public ::testing::TestWithParam<FaultCase> {
  public:
    struct Acked {
        std::string id;
        int length = kLength;
    };

    void SetUp() override {
        const FaultCase& c = GetParam();
        stripe_ = std::make_unique<StripeMockProcess>();
        if (c.needs & kS3) {
            s3_ = std::make_unique<S3TestServer>(std::vector<std::string>{kBucket});
            core::Config direct = s3_->Config(kBucket, /*through_proxy=*/false);
            direct.s3_prefix = kS3Prefix;
            bucket_ = std::make_unique<storage::s3::S3Client>(direct);
        }
        if (c.needs & kPg) {
            pg_ = std::make_unique<PgServer>();
            db_ = std::make_unique<PgTestDatabase>();
        }
    }

    void TearDown() override {
        if (pg_) {
            try {
                pg_->Start();  // a case that failed half way may have left it stopped
            } catch (const std::exception&) {
                // running already
            }
        }
        const std::string line = GetParam().id + std::string(": ") + notes_;
        std::cout << "[ OBSERVED ] " << line << "\n";
        RecordProperty("observed", notes_);
        if (songd_) songd_->Kill();
        disk_.reset();
        db_.reset();
    }

    // ---- set-up ------------------------------------------------------------------------

    /// Starts songd with the campaign's settings plus `overrides`; false (and a failure)
    /// when it could not start.
    bool Launch(const Env& overrides = {}) {
        env_ = Env{{"WORKERS", "1"},
                   {"ENGINE", "tone"},
                   {"REQUIRE_PAYMENT_FOR_GENERATION", "true"},
                   {"STRIPE_SECRET_KEY", kSecretKey},
                   {"STRIPE_WEBHOOK_SECRET", kWebhookSecret},
                   {"STRIPE_PUBLISHABLE_KEY", "pk_test_FaultCampaign"},
                   {"STRIPE_API_BASE", stripe_->base_url()},
                   {"STRIPE_TIMEOUT", "2"},
                   {"PRICE_CENTS", std::to_string(kPrice)},
                   {"PRICE_CURRENCY", "usd"},
                   {"FILE_RETENTION_DAYS", std::to_string(kRetentionDays)},
                   {"CLEANUP_ENABLED", "false"}};  // the campaign runs the passes itself
        if (s3_) {
            env_.insert({{"S3_ENABLED", "true"},
                         {"S3_BUCKET", kBucket},
                         {"S3_REGION", "us-east-1"},
                         {"S3_ACCESS_KEY", "S3RVER"},
                         {"S3_SECRET_KEY", "S3RVER"},
                         {"S3_PREFIX", kS3Prefix},
                         {"S3_ENDPOINT", "http://127.0.0.1:" + std::to_string(s3_->proxy_port())},
                         {"S3_FORCE_PATH_STYLE", "true"},
                         {"S3_RECONCILE_SECONDS", "1"}});
        }
        if (db_) env_["DATABASE_URL"] = db_->url();
        for (const auto& [name, value] : overrides) env_[name] = value;
        songd_ = std::make_unique<SongdProcess>(env_);
        env_["OUTPUT_DIR"] = songd_->output_dir().string();
        if (!env_.count("DATABASE_URL")) {
            env_["DATABASE_URL"] = "sqlite:" + (songd_->dir() / "data" / "songd.db").string();
        }
        env_["LOG_FORMAT"] = "text";
        if (GetParam().needs & kDisk) {
            disk_ = std::make_unique<Tmpfs>(songd_->output_dir(), kDiskMiB);
            if (!disk_->mounted()) {
                ADD_FAILURE() << disk_->error();
                return false;
            }
        }
        songd_->Start();
        return songd_->Running() && !::testing::Test::HasFatalFailure();
    }

    void SetEnv(const std::string& name, const std::string& value) {
        env_[name] = value;
        songd_->SetEnv(name, value);
    }

    // ---- observing ---------------------------------------------------------------------

    void Note(const std::string& text) {
        if (!notes_.empty()) notes_ += "; ";
        notes_ += text;
    }

    std::string Submit(int length = kLength) {
        std::string id = SubmitJob(*songd_, length);
        if (!id.empty()) jobs_.push_back({id, length});
        return id;
    }

    json::object Status(const std::string& id) {
        auto r = Http("GET", songd_->Url("/api/v1/status/" + id));
        if (r.status != 200) return {};
        boost::system::error_code ec;
        json::value v = json::parse(r.body, ec);
        return !ec && v.is_object() ? v.as_object() : json::object{};
    }

    static std::string Text(const json::object& doc, const char* name) {
        const auto* v = doc.if_contains(name);
        return v && v->is_string() ? std::string(v->as_string()) : "";
    }

    std::string State(const std::string& id) { return JobStatusName(*songd_, id); }

    int Progress(const std::string& id) {
        auto doc = Status(id);
        const auto* p = doc.if_contains("progress");
        return p && p->is_int64() ? static_cast<int>(p->as_int64()) : -1;
    }

    bool Paid(const json::object& doc) {
        const auto* payment = doc.if_contains("payment");
        if (!payment || !payment->is_object()) return false;
        const auto* paid = payment->as_object().if_contains("paid");
        return paid && paid->is_bool() && paid->as_bool();
    }

    bool WaitState(const std::string& id, const std::string& state,
                   std::chrono::milliseconds timeout = kJobDeadline) {
        return WaitFor([&] { return State(id) == state; }, timeout);
    }

    fs::path LocalSong(const std::string& id) const {
        return songd_->output_dir() / id / "output_fixed.wav";
    }

    std::string SongKey(const std::string& id) const {
        return std::string(kS3Prefix) + id + "/output_fixed.wav";
    }

    static std::string ReadAll(const fs::path& path) {
        std::ifstream in(path, std::ios::binary);
        std::stringstream ss;
        ss << in.rdbuf();
        return ss.str();
    }

    /// The job's song is where songd says: a whole WAV of the right length on disk, or
    /// (with S3) the object in the bucket.
    bool HasFile(const Acked& job) {
        if (bucket_) {
            auto doc = Status(job.id);
            if (!doc.contains("s3_url") || !doc["s3_url"].is_string()) return false;
            return bucket_->HeadObject(SongKey(job.id)).has_value();
        }
        WavInfo wav = ParseWav(ReadAll(LocalSong(job.id)));
        return wav.valid && wav.frames == engine::TargetFrames(job.length);
    }

    /// A succeeded PaymentIntent of the full price for `job_id`, made at the stand-in.
    std::string PaidIntent(const std::string& job_id) {
        json::object fields{{"amount", kPrice},
                            {"currency", "usd"},
                            {"status", "succeeded"},
                            {"metadata", json::object{{"job_id", job_id}}}};
        auto doc = stripe_->Control("POST", "/_mock/payment_intents", json::serialize(fields));
        return std::string(doc.at("id").as_string());
    }

    void StripeFault(const std::string& kind, int count, double seconds) {
        json::object f{{"kind", kind}, {"count", count}, {"seconds", seconds}};
        stripe_->Control("POST", "/_mock/faults", json::serialize(f));
    }

    void ClearStripeFaults() { stripe_->Control("POST", "/_mock/faults/clear"); }

    HttpResult Download(const std::string& id, const std::string& intent = "",
                        const std::string& format = "") {
        std::string url = songd_->Url("/api/v1/download/" + id);
        std::string sep = "?";
        if (!intent.empty()) {
            url += sep + "payment_intent_id=" + intent;
            sep = "&";
        }
        if (!format.empty()) url += sep + "format=" + format;
        return Http("GET", url);
    }

    /// The song the download answer delivers: the body, or what the S3 redirect points at.
    std::string Delivered(const HttpResult& r) {
        if (r.status == 302) return Http("GET", r.Header("location")).body;
        return r.status == 200 ? r.body : "";
    }

    /// Submits `n` jobs, waits for them to complete (and reach S3), and with `pay` pays and
    /// downloads each: the state a fault at a later step starts from.
    bool PrepareCompleted(int n, bool pay) {
        std::vector<std::string> ids;
        for (int i = 0; i < n; ++i) ids.push_back(Submit());
        for (const auto& id : ids) {
            if (id.empty() || !WaitState(id, "completed")) {
                ADD_FAILURE() << "job " << id << " did not complete before the fault: "
                              << json::serialize(Status(id)) << "\n"
                              << songd_->Log();
                return false;
            }
            if (bucket_ &&
                !WaitFor([&] { return Status(id)["s3_url"].is_string(); }, kJobDeadline)) {
                ADD_FAILURE() << "job " << id << " did not reach S3 before the fault";
                return false;
            }
            if (pay) {
                auto r = Download(id, PaidIntent(id));
                if (r.status != 200 && r.status != 302) {
                    ADD_FAILURE() << "paying " << id << " before the fault: " << r.status << " "
                                  << r.body;
                    return false;
                }
            }
        }
        return true;
    }

    // ---- the fault ending --------------------------------------------------------------

    /// Rule 4: /healthz answers within 5 s of the fault ending.
    void FaultEnded(const std::string& what) {
        const auto started = Clock::now();
        const bool up = WaitFor([&] { return Http("GET", songd_->Url("/healthz")).status == 200; },
                                kHealthDeadline);
        const double s = std::chrono::duration<double>(Clock::now() - started).count();
        EXPECT_TRUE(up) << "/healthz did not answer within 5 s of " << what;
        Note("healthz " + std::to_string(static_cast<int>(s * 1000)) + " ms after " + what);
    }

    void KillSongd() { songd_->Kill(); }

    /// kill -9 ends when songd runs again: it must answer /healthz within 5 s of the start.
    void Restart() {
        const auto started = Clock::now();
        songd_->Start();
        const double s = std::chrono::duration<double>(Clock::now() - started).count();
        EXPECT_TRUE(songd_->Running()) << songd_->Log();
        EXPECT_LE(s, 5.0) << "/healthz answered " << s << " s after the restart";
        Note("healthz " + std::to_string(static_cast<int>(s * 1000)) + " ms after restart");
    }

    // ---- the rules ---------------------------------------------------------------------

    void Verify() {
        if (::testing::Test::HasFatalFailure()) return;
        if (GetParam().expect == Expect::kCompleted) {
            VerifyCompleted();
            VerifyPaidOnlyWithFile();
            VerifyRetentionPass();
        } else {
            // The case ran a pass as of a day past every retention: its jobs are due, and a
            // due job's file may go before its record says expired. The rules hold once the
            // next pass is over.
            VerifyRetentionPass();
            VerifyPaidOnlyWithFile();
        }
    }

    /// Rules 1 and 2: every acknowledged job completed with its file; paying for it
    /// delivers exactly that song.
    void VerifyCompleted() {
        ASSERT_FALSE(jobs_.empty()) << "no job was acknowledged";
        for (const Acked& job : jobs_) {
            WaitFor(
                [&] {
                    const std::string s = State(job.id);
                    return s == "completed" || s == "failed" || s == "canceled" || s == "expired";
                },
                kJobDeadline);
            auto doc = Status(job.id);
            const std::string state = Text(doc, "status");
            if (state != "completed") {
                Note(job.id.substr(0, 8) + " ended " + (state.empty() ? "unknown" : state) +
                     (doc.contains("error_code")
                          ? " (" + Text(doc, "error_code") + ": " + Text(doc, "error") + ")"
                          : ""));
            }
            EXPECT_EQ(state, "completed")
                << "job " << job.id << " acknowledged by generate: " << json::serialize(doc);
            if (state != "completed") continue;
            if (bucket_) {
                WaitFor([&] { return HasFile(job); }, kJobDeadline);
            }
            const bool file = HasFile(job);
            if (!file) Note(job.id.substr(0, 8) + " completed WITHOUT its file");
            EXPECT_TRUE(file) << "job " << job.id << " completed without its file ("
                              << (bucket_ ? "S3 object " + SongKey(job.id)
                                          : LocalSong(job.id).string())
                              << ")";
            // The client pays (unless it did during the case) and downloads its song.
            auto r = Paid(doc) ? Download(job.id) : Download(job.id, PaidIntent(job.id));
            WavInfo wav = ParseWav(Delivered(r));
            EXPECT_TRUE(wav.valid && wav.frames == engine::TargetFrames(job.length))
                << "download of " << job.id << " answered " << r.status << " "
                << r.body.substr(0, 300);
            if (!wav.valid)
                Note(job.id.substr(0, 8) + " download answered " + std::to_string(r.status));
        }
    }

    /// Rule 2: a job marked paid has its file.
    void VerifyPaidOnlyWithFile() {
        for (const Acked& job : jobs_) {
            auto doc = Status(job.id);
            if (!Paid(doc) || Text(doc, "status") == "expired") continue;
            const bool file = HasFile(job);
            if (!file) Note(job.id.substr(0, 8) + " PAID WITHOUT A FILE");
            EXPECT_TRUE(file) << "a payment is bound to job " << job.id
                              << ", which has no file: " << json::serialize(doc);
        }
    }

    /// Rule 3: the next retention pass (as of a day past every job's retention) leaves no
    /// file and no object, and every finished song is expired.
    void VerifyRetentionPass() {
        const int64_t as_of = core::NowMillis() + (kRetentionDays + 2) * core::kMillisPerDay;
        CommandExit pass =
            RunSongdCommand(songd_->dir(), {"cleanup", "--as-of", core::FormatIso8601(as_of)},
                            CommandEnv(), std::chrono::seconds(120));
        EXPECT_FALSE(pass.timed_out) << "the retention pass did not end: " << pass.output;
        EXPECT_EQ(pass.code, 0) << pass.output;
        const auto files = RegularFiles(songd_->output_dir());
        std::string listed;
        for (const auto& f : files) listed += "  " + f + "\n";
        EXPECT_TRUE(files.empty()) << files.size() << " files left after the retention pass:\n"
                                   << listed << pass.output;
        if (!files.empty()) Note(std::to_string(files.size()) + " files left after the pass");
        if (bucket_) {
            std::vector<std::string> keys;
            bucket_->ForEachObject("", [&](const storage::s3::ObjectInfo& o) {
                keys.push_back(o.key);
                return true;
            });
            EXPECT_TRUE(keys.empty()) << keys.size() << " objects left after the retention pass, "
                                      << "first: " << (keys.empty() ? "" : keys.front());
            if (!keys.empty()) Note(std::to_string(keys.size()) + " S3 objects left");
        }
        if (songd_->Running()) {
            for (const Acked& job : jobs_) {
                // The pass ran in another process: on PostgreSQL this node's status cache may
                // show the old document for up to STATUS_CACHE_MAX_AGE_MS (500 ms), so allow 2 s.
                std::string state;
                WaitFor(
                    [&] {
                        state = State(job.id);
                        return state == "expired" || state == "failed" || state == "http-404";
                    },
                    std::chrono::seconds(2));
                if (state == "failed" || state == "http-404") continue;  // rule 1 reported it
                EXPECT_EQ(state, "expired") << "job " << job.id << " after the retention pass";
            }
        }
    }

    Env CommandEnv() const {
        Env env = env_;
        env.erase("PORT");
        return env;
    }

    /// Starts `songd cleanup` as of a day past every retention, in the background.
    pid_t SpawnPass() {
        const int64_t as_of = core::NowMillis() + (kRetentionDays + 2) * core::kMillisPerDay;
        return SpawnSongd(songd_->dir(), {"cleanup", "--as-of", core::FormatIso8601(as_of)},
                          CommandEnv(), songd_->dir() / "faulted-pass.log");
    }

    std::unique_ptr<StripeMockProcess> stripe_;
    std::unique_ptr<S3TestServer> s3_;
    std::unique_ptr<storage::s3::S3Client> bucket_;
    std::unique_ptr<PgServer> pg_;
    std::unique_ptr<PgTestDatabase> db_;
    std::unique_ptr<SongdProcess> songd_;
    std::unique_ptr<Tmpfs> disk_;  // unmounted (TearDown) after songd is gone
    Env env_;
    std::vector<Acked> jobs_;
    std::string notes_;
};

bool InLog(FaultRun& t, const std::string& needle) {
    return t.songd_->Log().find(needle) != std::string::npos;
}

/// Waits for `pid` to exit within `timeout`; kills it otherwise. Returns a description.
std::string Reap(pid_t pid, std::chrono::seconds timeout) {
    int status = 0;
    if (WaitFor([&] { return ::waitpid(pid, &status, WNOHANG) == pid; }, timeout)) {
        return WIFEXITED(status) ? "exit " + std::to_string(WEXITSTATUS(status))
                                 : "signal " + std::to_string(WTERMSIG(status));
    }
    ::kill(pid, SIGKILL);
    ::waitpid(pid, &status, 0);
    return "still running after " + std::to_string(timeout.count()) + " s (killed)";
}

// ---- kill -9 (SQLite: the restart recovers every in-flight job at once) -----------------

void Kill9Queued(FaultRun& t) {
    ASSERT_TRUE(t.Launch({{"TONE_RENDER_MS", "4000"}}));
    const std::string first = t.Submit();
    ASSERT_TRUE(t.WaitState(first, "processing"));
    const std::string queued = t.Submit();
    ASSERT_FALSE(queued.empty());
    t.Note("second job " + t.State(queued) + " at the kill");
    t.KillSongd();
    t.SetEnv("TONE_RENDER_MS", "0");
    t.Restart();
    t.Verify();
}

void Kill9Claimed(FaultRun& t) {
    ASSERT_TRUE(t.Launch({{"TONE_RENDER_MS", "8000"}}));
    const std::string id = t.Submit();
    ASSERT_TRUE(t.WaitState(id, "processing"));
    t.Note("progress " + std::to_string(t.Progress(id)) + " at the kill");
    t.KillSongd();
    t.SetEnv("TONE_RENDER_MS", "0");
    t.Restart();
    t.Verify();
}

void Kill9Rendering(FaultRun& t) {
    ASSERT_TRUE(t.Launch({{"TONE_RENDER_MS", "4000"}}));
    const std::string id = t.Submit();
    ASSERT_TRUE(WaitFor([&] { return t.Progress(id) >= 40; }, kJobDeadline));
    t.Note("progress " + std::to_string(t.Progress(id)) + " at the kill");
    t.KillSongd();
    t.SetEnv("TONE_RENDER_MS", "0");
    t.Restart();
    t.Verify();
}

void Kill9Finishing(FaultRun& t) {
    // A long song, so finishing (loudness, true peak, dither) lasts a while.
    ASSERT_TRUE(t.Launch({{"TONE_RENDER_MS", "1000"}}));
    const std::string id = t.Submit(285);
    ASSERT_TRUE(WaitFor([&] { return t.Progress(id) >= 95; }, kJobDeadline));
    t.KillSongd();
    t.Note(std::string("output_fixed.wav ") + (fs::exists(t.LocalSong(id)) ? "present" : "absent") +
           " at the kill");
    t.SetEnv("TONE_RENDER_MS", "0");
    t.Restart();
    t.Verify();
}

void Kill9Completing(FaultRun& t) {
    // The song is safe on disk, the preview is being encoded, the store not yet told.
    ASSERT_TRUE(t.Launch({{"TONE_RENDER_MS", "300"}, {"PREVIEW_SECONDS", "30"}}));
    const std::string id = t.Submit(285);
    const bool window = WaitFor([&] { return fs::exists(t.LocalSong(id)); }, kJobDeadline);
    t.KillSongd();
    ASSERT_TRUE(window) << "the song never appeared on disk";
    t.Restart();
    t.Note("status " + t.State(id) + " right after the restart");
    t.Verify();
}

void Kill9Uploading(FaultRun& t) {
    ASSERT_TRUE(t.Launch());
    t.s3_->SetFaults(R"([{"method":"PUT","action":"hang","times":-1},
                         {"method":"POST","action":"hang","times":-1}])");
    const std::string id = t.Submit();
    ASSERT_TRUE(t.WaitState(id, "completed"));
    ASSERT_TRUE(WaitFor([&] {
        for (const auto& e : t.s3_->Log()) {
            if (e.fault == "hang") return true;
        }
        return false;
    })) << "no upload reached S3";
    t.KillSongd();  // with the upload hanging
    t.s3_->SetFaults("[]");
    t.Restart();
    t.Verify();
}

void Kill9Paying(FaultRun& t) {
    ASSERT_TRUE(t.Launch());
    ASSERT_TRUE(t.PrepareCompleted(1, /*pay=*/false));
    const std::string id = t.jobs_.front().id;
    const std::string intent = t.PaidIntent(id);
    t.StripeFault("delay", 1, 5);
    std::thread client([&] { t.Download(id, intent); });
    const bool asked =
        WaitFor([&] { return t.stripe_->Count("/v1/payment_intents/" + intent) > 0; });
    t.KillSongd();  // while songd waits for Stripe's answer
    client.join();
    ASSERT_TRUE(asked) << "songd never asked Stripe about the intent";
    t.ClearStripeFaults();
    t.Restart();
    // The client tries again with the same payment: it gets its song.
    auto r = t.Download(id, intent);
    t.Note("retried download answered " + std::to_string(r.status));
    EXPECT_EQ(r.status, 200) << r.body;
    t.Verify();
}

void Kill9Downloading(FaultRun& t) {
    ASSERT_TRUE(t.Launch());
    ASSERT_TRUE(t.PrepareCompleted(1, /*pay=*/true));
    const std::string id = t.jobs_.front().id;
    std::atomic<long> status{-1};
    std::thread client([&] { status = t.Download(id).status; });
    WaitFor([&] { return InLog(t, "/download/" + id) || status != -1; },
            std::chrono::milliseconds(500));
    t.KillSongd();
    client.join();
    t.Note("download in flight answered " + std::to_string(status.load()));
    t.Restart();
    t.Verify();
}

void Kill9Expiring(FaultRun& t) {
    ASSERT_TRUE(t.Launch());
    ASSERT_TRUE(t.PrepareCompleted(3, /*pay=*/false));
    const pid_t pass = t.SpawnPass();
    ASSERT_GT(pass, 0);
    // Kill the pass once it deleted something (or it ended).
    int status = 0;
    bool ended = false;
    WaitFor(
        [&] {
            for (const auto& job : t.jobs_) {
                if (!fs::exists(t.songd_->output_dir() / job.id)) return true;
            }
            ended = ::waitpid(pass, &status, WNOHANG) == pass;
            return ended;
        },
        std::chrono::seconds(30));
    int gone = 0;
    for (const auto& job : t.jobs_) gone += fs::exists(t.songd_->output_dir() / job.id) ? 0 : 1;
    if (!ended) {
        ::kill(pass, SIGKILL);
        ::waitpid(pass, &status, 0);
    }
    t.Note(std::string(ended ? "pass ended before the kill" : "pass killed") + " with " +
           std::to_string(gone) + "/3 job folders deleted");
    // A client pays for a song the killed pass already deleted: it must not get a payment
    // bound to a job without a file (rule 2, checked right away: the next pass expires it).
    for (const auto& job : t.jobs_) {
        if (fs::exists(t.songd_->output_dir() / job.id)) continue;
        auto r = t.Download(job.id, t.PaidIntent(job.id));
        t.Note(job.id.substr(0, 8) + " folder gone, status " + t.State(job.id) +
               ", paying download answered " + std::to_string(r.status));
    }
    t.VerifyPaidOnlyWithFile();
    t.FaultEnded("the killed pass");
    t.Verify();
}

// ---- PostgreSQL stopped and started under a running songd --------------------------------

void PgRendering(FaultRun& t) {
    ASSERT_TRUE(t.Launch({{"TONE_RENDER_MS", "5000"}}));
    const std::string rendering = t.Submit();
    const std::string queued = t.Submit();
    ASSERT_TRUE(WaitFor([&] { return t.Progress(rendering) >= 20; }, kJobDeadline));
    t.pg_->Stop();
    // A client submits during the outage: acknowledged means durable, anything else is a
    // clear refusal.
    auto during = Http("POST", t.songd_->Url("/api/v1/generate"),
                       {"Content-Type: application/json"}, GenerateBody(kLength));
    t.Note("generate during the outage answered " + std::to_string(during.status));
    if (during.status == 202) {
        t.jobs_.push_back(
            {std::string(json::parse(during.body).at("job_id").as_string()), kLength});
    } else {
        EXPECT_EQ(during.status, 503) << during.body;
    }
    // Down until songd met the outage (a progress write, a claim or a lease renewal failed).
    const bool met = WaitFor(
        [&] {
            return InLog(t, "progress_failed") || InLog(t, "claim_failed") ||
                   InLog(t, "lease_renew_failed") || InLog(t, "from=processing");
        },
        std::chrono::seconds(20));
    t.pg_->Start();
    t.Note(met ? "songd met the outage" : "songd logged nothing in 20 s of outage");
    t.FaultEnded("PostgreSQL restart");
    t.Verify();
}

void PgCompleting(FaultRun& t) {
    ASSERT_TRUE(t.Launch({{"TONE_RENDER_MS", "2000"}}));
    const std::string id = t.Submit();
    ASSERT_TRUE(WaitFor([&] { return t.Progress(id) >= 50; }, kJobDeadline));
    t.pg_->Stop();
    // Down until the worker finished the song and tried to record it.
    const std::string ended = "job_id=" + id + " from=processing";
    const bool tried = WaitFor([&] { return InLog(t, ended); }, std::chrono::seconds(30));
    t.pg_->Start();
    const std::string log = t.songd_->Log();
    const size_t at = log.find(ended);
    t.Note(tried ? "worker: " + log.substr(at, log.find('\n', at) - at)
                 : "the worker did not finish within 30 s of outage");
    t.FaultEnded("PostgreSQL restart");
    t.Verify();
}

void PgPaying(FaultRun& t) {
    ASSERT_TRUE(t.Launch());
    ASSERT_TRUE(t.PrepareCompleted(1, /*pay=*/false));
    const std::string id = t.jobs_.front().id;
    const std::string intent = t.PaidIntent(id);
    t.pg_->Stop();
    auto during = t.Download(id, intent);
    t.pg_->Start();
    t.Note("download during the outage answered " + std::to_string(during.status));
    // Never the song without a recorded payment, never a 402 for our own outage.
    EXPECT_NE(during.status, 200);
    EXPECT_NE(during.status, 402) << during.body;
    t.FaultEnded("PostgreSQL restart");
    auto after = t.Download(id, intent);
    EXPECT_EQ(after.status, 200) << after.body;
    t.Verify();
}

void PgExpiring(FaultRun& t) {
    ASSERT_TRUE(t.Launch());
    ASSERT_TRUE(t.PrepareCompleted(2, /*pay=*/true));
    t.pg_->Stop();
    const pid_t pass = t.SpawnPass();
    ASSERT_GT(pass, 0);
    const std::string ended = Reap(pass, std::chrono::seconds(60));
    int kept = 0;
    for (const auto& job : t.jobs_) kept += t.HasFile(job) ? 1 : 0;
    t.pg_->Start();
    t.Note("the pass without PostgreSQL: " + ended + ", " + std::to_string(kept) + "/2 songs kept");
    // A pass that cannot reach the store deletes nothing: every song is still paid for.
    EXPECT_EQ(kept, 2);
    t.FaultEnded("PostgreSQL restart");
    t.Verify();
}

// ---- S3 that accepts connections and never answers -----------------------------------------

bool ProxySawHang(FaultRun& t) {
    for (const auto& e : t.s3_->Log()) {
        if (e.fault == "hang") return true;
    }
    return false;
}

void S3HangUploading(FaultRun& t) {
    ASSERT_TRUE(t.Launch());
    t.s3_->SetFaults(R"([{"method":"PUT","action":"hang","times":-1},
                         {"method":"POST","action":"hang","times":-1}])");
    const std::string id = t.Submit();
    ASSERT_TRUE(t.WaitState(id, "completed")) << "the job waited behind the hanging upload";
    ASSERT_TRUE(WaitFor([&] { return ProxySawHang(t); })) << "no upload reached S3";
    t.s3_->SetFaults("[]");
    t.FaultEnded("S3 answering again");
    t.Verify();
}

void S3HangExpiring(FaultRun& t) {
    ASSERT_TRUE(t.Launch());
    ASSERT_TRUE(t.PrepareCompleted(2, /*pay=*/true));
    // Deletions (DeleteObjects is a POST, DeleteObject a DELETE) and listings hang.
    t.s3_->SetFaults(R"([{"method":"POST","action":"hang","times":-1},
                         {"method":"DELETE","action":"hang","times":-1},
                         {"method":"GET","action":"hang","times":-1}])");
    t.s3_->ClearLog();
    const pid_t pass = t.SpawnPass();
    ASSERT_GT(pass, 0);
    const bool hung = WaitFor([&] { return ProxySawHang(t); }, std::chrono::seconds(30));
    t.s3_->SetFaults("[]");
    t.FaultEnded("S3 answering again");
    t.Note(std::string(hung ? "the pass hung on S3" : "the pass never reached S3") + ", then " +
           Reap(pass, std::chrono::seconds(90)));
    t.Verify();
}

// ---- the disk full: OUTPUT_DIR on a small tmpfs ------------------------------------------

/// Waits until the job left the queue and the worker (or `limit` passed), then frees the disk.
void FullUntilTheJobMoved(FaultRun& t, const std::string& id) {
    WaitFor(
        [&] {
            const std::string s = t.State(id);
            return s != "queued" && s != "processing";
        },
        std::chrono::seconds(15));
    t.Note("status " + t.State(id) + " on the full disk");
    t.disk_->Drain();
    t.FaultEnded("freeing the disk");
}

void DiskFullRendering(FaultRun& t) {
    ASSERT_TRUE(t.Launch());
    t.Note("free " + std::to_string(t.disk_->Fill(0)) + " B");
    const std::string id = t.Submit();
    ASSERT_FALSE(id.empty());
    FullUntilTheJobMoved(t, id);
    t.Verify();
}

void DiskFullFinishing(FaultRun& t) {
    ASSERT_TRUE(t.Launch());
    // Room for the raw render (~33.5 MB), not for the finished file beside it (~16.8 MB).
    t.Note("free " + std::to_string(t.disk_->Fill(40 * kMiB) / kMiB) + " MiB");
    const std::string id = t.Submit();
    ASSERT_FALSE(id.empty());
    FullUntilTheJobMoved(t, id);
    t.Verify();
}

void DiskFullDownloading(FaultRun& t) {
    ASSERT_TRUE(t.Launch());
    ASSERT_TRUE(t.PrepareCompleted(1, /*pay=*/true));
    const std::string id = t.jobs_.front().id;
    t.disk_->Fill(0);
    auto wav = t.Download(id);
    EXPECT_EQ(wav.status, 200) << "a full disk stopped a plain download: " << wav.body;
    auto mp3_full = t.Download(id, "", "mp3");  // transcodes into the job's folder
    // No room to transcode is a passing outage: 503 with a retry, never a 500.
    if (mp3_full.status != 200) {
        EXPECT_EQ(mp3_full.status, 503) << mp3_full.body.substr(0, 300);
        EXPECT_FALSE(mp3_full.Header("retry-after").empty());
    }
    t.disk_->Drain();
    t.FaultEnded("freeing the disk");
    auto mp3 = t.Download(id, "", "mp3");
    t.Note("mp3 on the full disk answered " + std::to_string(mp3_full.status) + ", after " +
           std::to_string(mp3.status));
    EXPECT_EQ(mp3.status, 200) << mp3.body.substr(0, 300);
    EXPECT_GT(mp3.body.size(), 1000u);
    if (mp3_full.status == 200) {
        EXPECT_EQ(mp3_full.body, mp3.body) << "a truncated transcode was served";
    }
    t.Verify();
}

// ---- Stripe answering slowly ---------------------------------------------------------------

void StripeSlowPaying(FaultRun& t) {
    ASSERT_TRUE(t.Launch({{"STRIPE_TIMEOUT", "1"}}));
    ASSERT_TRUE(t.PrepareCompleted(1, /*pay=*/false));
    const std::string id = t.jobs_.front().id;
    const std::string intent = t.PaidIntent(id);
    t.StripeFault("delay", 10, 4);  // slower than STRIPE_TIMEOUT, every attempt
    auto during = t.Download(id, intent);
    t.Note("download with Stripe slow answered " + std::to_string(during.status));
    EXPECT_EQ(during.status, 503) << during.body.substr(0, 300);
    EXPECT_FALSE(during.Header("retry-after").empty());
    EXPECT_FALSE(t.Paid(t.Status(id)));
    t.ClearStripeFaults();
    t.FaultEnded("Stripe answering again");
    auto after = t.Download(id, intent);
    EXPECT_EQ(after.status, 200) << after.body.substr(0, 300);
    t.Verify();
}

void StripeSlowIntent(FaultRun& t) {
    ASSERT_TRUE(t.Launch({{"STRIPE_TIMEOUT", "1"}}));
    ASSERT_TRUE(t.PrepareCompleted(1, /*pay=*/false));
    const std::string id = t.jobs_.front().id;
    t.StripeFault("delay", 10, 4);
    auto during = Http("POST", t.songd_->Url("/api/v1/payments/" + id + "/intent"));
    t.Note("intent with Stripe slow answered " + std::to_string(during.status));
    EXPECT_EQ(during.status, 503) << during.body.substr(0, 300);
    t.ClearStripeFaults();
    t.FaultEnded("Stripe answering again");
    auto offer = Http("POST", t.songd_->Url("/api/v1/payments/" + id + "/intent"));
    ASSERT_EQ(offer.status, 200) << offer.body;
    const std::string intent(json::parse(offer.body).at("payment_intent_id").as_string());
    // The client pays it.
    t.stripe_->Control("POST", "/_mock/payment_intents/" + intent, R"({"status":"succeeded"})");
    auto r = t.Download(id, intent);
    EXPECT_EQ(r.status, 200) << r.body.substr(0, 300);
    t.Verify();
}

void StripeSlowWithinTimeout(FaultRun& t) {
    ASSERT_TRUE(t.Launch({{"STRIPE_TIMEOUT", "3"}}));
    ASSERT_TRUE(t.PrepareCompleted(1, /*pay=*/false));
    const std::string id = t.jobs_.front().id;
    const std::string intent = t.PaidIntent(id);
    t.StripeFault("delay", 1, 1.5);  // slow, but within STRIPE_TIMEOUT
    auto r = t.Download(id, intent);
    t.Note("slow download answered " + std::to_string(r.status));
    EXPECT_EQ(r.status, 200) << r.body.substr(0, 300);
    t.FaultEnded("Stripe answering again");
    t.Verify();
}

constexpr Expect kDone = Expect::kCompleted;

const FaultCase kCases[] = {
    {"K01_kill9_queued", Fault::kKill9, Step::kQueued, kDone, kLocal,
     "kill -9 with a job queued behind a rendering one; restart", Kill9Queued},
    {"K02_kill9_claimed", Fault::kKill9, Step::kClaimed, kDone, kLocal,
     "kill -9 as soon as a worker claimed the job; restart", Kill9Claimed},
    {"K03_kill9_rendering", Fault::kKill9, Step::kRendering, kDone, kLocal,
     "kill -9 at 40 % of the render; restart", Kill9Rendering},
    {"K04_kill9_finishing", Fault::kKill9, Step::kFinishing, kDone, kLocal,
     "kill -9 once the render is done (progress 95), while finishing; restart", Kill9Finishing},
    {"K05_kill9_completing", Fault::kKill9, Step::kCompleting, kDone, kLocal,
     "kill -9 once output_fixed.wav exists, before the store records completed; restart",
     Kill9Completing},
    {"K06_kill9_uploading", Fault::kKill9, Step::kUploading, kDone, kS3,
     "kill -9 while the S3 upload hangs; restart with S3 answering", Kill9Uploading},
    {"K07_kill9_paying", Fault::kKill9, Step::kPaying, kDone, kLocal,
     "kill -9 while a download waits for Stripe to confirm its intent; restart, same intent",
     Kill9Paying},
    {"K08_kill9_downloading", Fault::kKill9, Step::kDownloading, kDone, kLocal,
     "kill -9 during a paid download; restart", Kill9Downloading},
    {"K09_kill9_expiring", Fault::kKill9, Step::kExpiring, Expect::kExpired, kLocal,
     "kill -9 of `songd cleanup` once it deleted a song; a client pays for that song; the "
     "next pass",
     Kill9Expiring},
    {"P01_pg_rendering", Fault::kPostgres, Step::kRendering, kDone, kPg,
     "PostgreSQL stopped while one job renders and one is queued, a generate meanwhile; "
     "started again",
     PgRendering},
    {"P02_pg_completing", Fault::kPostgres, Step::kCompleting, kDone, kPg,
     "PostgreSQL stopped until the render ended and the worker tried to record it", PgCompleting},
    {"P03_pg_paying", Fault::kPostgres, Step::kPaying, kDone, kPg,
     "PostgreSQL stopped during a download with a succeeded intent; started again", PgPaying},
    {"P04_pg_expiring", Fault::kPostgres, Step::kExpiring, Expect::kExpired, kPg,
     "a retention pass while PostgreSQL is stopped; started again; the next pass", PgExpiring},
    {"S01_s3hang_uploading", Fault::kS3Hang, Step::kUploading, kDone, kS3,
     "every upload request hangs; S3 answers again", S3HangUploading},
    {"S02_s3hang_expiring", Fault::kS3Hang, Step::kExpiring, Expect::kExpired, kS3,
     "S3 deletions and listings hang during a retention pass; the next pass", S3HangExpiring},
    {"D01_diskfull_rendering", Fault::kDiskFull, Step::kRendering, kDone, kDisk,
     "OUTPUT_DIR full (0 bytes free) when the job is claimed; space freed", DiskFullRendering},
    {"D02_diskfull_finishing", Fault::kDiskFull, Step::kFinishing, kDone, kDisk,
     "room for the raw render but not the finished file; space freed", DiskFullFinishing},
    {"D03_diskfull_downloading", Fault::kDiskFull, Step::kDownloading, kDone, kDisk,
     "OUTPUT_DIR full during a WAV and an MP3 (transcoded) download; space freed",
     DiskFullDownloading},
    {"T01_stripeslow_paying", Fault::kStripeSlow, Step::kPaying, kDone, kLocal,
     "Stripe slower than STRIPE_TIMEOUT on the intent check at download", StripeSlowPaying},
    {"T02_stripeslow_intent", Fault::kStripeSlow, Step::kPaying, kDone, kLocal,
     "Stripe slower than STRIPE_TIMEOUT when the intent is created", StripeSlowIntent},
    {"T03_stripeslow_within_timeout", Fault::kStripeSlow, Step::kPaying, kDone, kLocal,
     "Stripe slow but within STRIPE_TIMEOUT at download", StripeSlowWithinTimeout},
};

TEST_P(FaultRun, EndsInTheOneCorrectState) {
    RecordProperty("fault", FaultName(GetParam().fault));
    RecordProperty("step", StepName(GetParam().step));
    RecordProperty("scenario", GetParam().scenario);
    GetParam().run(*this);
}

INSTANTIATE_TEST_SUITE_P(Campaign, FaultRun, ::testing::ValuesIn(kCases),
                         [](const ::testing::TestParamInfo<FaultCase>& info) {
                             return std::string(info.param.id);
                         });

}  // namespace
}  // namespace songd::test
