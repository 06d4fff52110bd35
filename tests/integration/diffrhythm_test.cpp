// ENGINE=diffrhythm on the real binary against the stand-in DiffRhythm checkout
// (tests/diffrhythm/standin, Debian's python3-torch): both modes, the sampler settings, seeds,
// every stand-in fault, worker crashes, shutdown and two GPUs (acceptance 2, 3 and 4 of the
// DiffRhythm engine).
#include <dirent.h>
#include <gtest/gtest.h>
#include <sndfile.h>

#include <boost/json.hpp>
#include <cmath>
#include <fstream>
#include <map>
#include <set>
#include <sstream>
#include <vector>

#include "audio/mastering.h"
#include "engine/engine.h"
#include "harness/http_client.h"
#include "harness/reference_signals.h"
#include "harness/songd_process.h"
#include "harness/wav.h"

namespace songd::test {
namespace {

namespace fs = std::filesystem;
namespace json = boost::json;

constexpr const char* kStandin = SONGD_DIFFRHYTHM_STANDIN;
constexpr const char* kPython = SONGD_DIFFRHYTHM_PYTHON;

/// A songd with ENGINE=diffrhythm on the stand-in; its record and fault state in its folder.
std::unique_ptr<SongdProcess> DiffRhythm(const std::string& mode, Env extra = {}) {
    Env env{{"ENGINE", "diffrhythm"},
            {"DIFFRHYTHM_HOME", kStandin},
            {"DIFFRHYTHM_PYTHON", kPython},
            {"DIFFRHYTHM_MODE", mode},
            {"PREVIEW_SECONDS", "0"}};
    for (auto& [k, v] : extra) env[k] = v;
    auto s = std::make_unique<SongdProcess>(env);
    s->SetEnv("DIFFRHYTHM_STANDIN_RECORD", (s->dir() / "record.jsonl").string());
    s->SetEnv("DIFFRHYTHM_STANDIN_STATE_DIR", s->dir().string());
    return s;
}

json::object Get(SongdProcess& s, const std::string& path) {
    auto r = Http("GET", s.Url(path));
    EXPECT_EQ(r.status, 200) << path << " " << r.body << r.error;
    if (r.status != 200) return {};
    return json::parse(r.body).as_object();
}

bool WaitReady(SongdProcess& s, std::chrono::seconds timeout = std::chrono::seconds(90)) {
    return WaitFor([&] { return Http("GET", s.Url("/readyz")).status == 200; }, timeout);
}

std::string SubmitBody(SongdProcess& s, const std::string& body) {
    auto r = Http("POST", s.Url("/api/v1/generate"), {"Content-Type: application/json"}, body);
    EXPECT_EQ(r.status, 202) << r.body;
    if (r.status != 202) return "";
    return std::string(json::parse(r.body).at("job_id").as_string());
}

std::string Submit(SongdProcess& s, int length, const std::string& extra = "") {
    return SubmitBody(s, GenerateBody(length, extra));
}

/// Polls the job until it is completed or failed; `progress` gets every value seen while
/// processing.
json::object WaitFinal(SongdProcess& s, const std::string& id,
                       std::vector<int64_t>* progress = nullptr,
                       std::chrono::seconds timeout = std::chrono::seconds(120)) {
    json::object doc;
    bool done = WaitFor(
        [&] {
            doc = Get(s, "/api/v1/status/" + id);
            if (doc.empty()) return false;
            const std::string status(doc["status"].as_string());
            if (progress && status == "processing") progress->push_back(doc["progress"].as_int64());
            return status == "completed" || status == "failed";
        },
        timeout);
    EXPECT_TRUE(done) << "job " << id << " did not finish:\n" << s.Log();
    return doc;
}

std::string Status(const json::object& doc) {
    auto it = doc.find("status");
    return it == doc.end() ? "" : std::string(it->value().as_string());
}

std::string Field(const json::object& doc, const char* name) {
    auto it = doc.find(name);
    if (it == doc.end() || !it->value().is_string()) return "";
    return std::string(it->value().as_string());
}

std::vector<json::object> Records(SongdProcess& s) {
    std::vector<json::object> out;
    std::ifstream in(s.dir() / "record.jsonl");
    std::string line;
    while (std::getline(in, line)) {
        if (!line.empty()) out.push_back(json::parse(line).as_object());
    }
    return out;
}

/// The pids of the live worker processes /health lists.
std::vector<int64_t> WorkerPids(SongdProcess& s) {
    std::vector<int64_t> pids;
    auto doc = Get(s, "/api/v1/health");
    if (!doc.contains("diffrhythm")) return pids;
    for (const auto& w : doc["diffrhythm"].as_object()["workers"].as_array()) {
        const auto& pid = w.as_object().at("pid");
        if (pid.is_int64()) pids.push_back(pid.as_int64());
    }
    return pids;
}

/// Processes alive (zombies too), songd aside, whose environment mentions `text`: every
/// process songd started for this test (workers, infer.py and their children) carries the
/// test's folder in DIFFRHYTHM_STANDIN_RECORD.
std::vector<int> ProcessesMentioning(const std::string& text) {
    std::vector<int> found;
    DIR* proc = ::opendir("/proc");
    if (proc == nullptr) return found;
    while (dirent* e = ::readdir(proc)) {
        char* end = nullptr;
        const long pid = std::strtol(e->d_name, &end, 10);
        if (*end != '\0' || pid <= 0) continue;
        std::ifstream in(std::string("/proc/") + e->d_name + "/environ", std::ios::binary);
        std::stringstream ss;
        ss << in.rdbuf();
        if (ss.str().find(text) == std::string::npos) continue;
        std::ifstream comm_in(std::string("/proc/") + e->d_name + "/comm");
        std::string comm;
        std::getline(comm_in, comm);
        if (comm != "songd") found.push_back(static_cast<int>(pid));  // songd itself is not one
    }
    ::closedir(proc);
    return found;
}

/// Whether any process (zombies included) still belongs to process group `pgid`.
bool GroupAlive(int64_t pgid) {
    DIR* proc = ::opendir("/proc");
    if (proc == nullptr) return false;
    bool alive = false;
    while (dirent* e = ::readdir(proc)) {
        char* end = nullptr;
        std::strtol(e->d_name, &end, 10);
        if (*end != '\0') continue;
        std::ifstream in(std::string("/proc/") + e->d_name + "/stat");
        std::string stat;
        std::getline(in, stat);
        const auto close = stat.rfind(')');
        if (close == std::string::npos) continue;
        std::istringstream fields(stat.substr(close + 2));
        std::string state;
        long ppid = 0, pgrp = 0;
        fields >> state >> ppid >> pgrp;
        if (pgrp == pgid) alive = true;
    }
    ::closedir(proc);
    return alive;
}

/// Frames, rate and integrated loudness of WAV bytes.
struct Decoded {
    int64_t frames = 0;
    int rate = 0;
    int channels = 0;
    double lufs = 0;
};

Decoded Decode(SongdProcess& s, const std::string& bytes) {
    const fs::path path = s.dir() / "decode.wav";
    std::ofstream(path, std::ios::binary) << bytes;
    SF_INFO info{};
    SNDFILE* f = sf_open(path.c_str(), SFM_READ, &info);
    Decoded d;
    if (f == nullptr) return d;
    std::vector<float> samples(static_cast<size_t>(info.frames) * info.channels);
    sf_readf_float(f, samples.data(), info.frames);
    sf_close(f);
    d.frames = info.frames;
    d.rate = info.samplerate;
    d.channels = info.channels;
    if (info.channels == 2)
        d.lufs = audio::IntegratedLoudness(samples.data(), info.frames, 1.0, nullptr);
    return d;
}

std::string Download(SongdProcess& s, const std::string& id) {
    auto r = Http("GET", s.Url("/api/v1/download/" + id));
    EXPECT_EQ(r.status, 200) << r.body;
    return r.body;
}

// ---- worker mode ----

TEST(DiffRhythmWorker, SongCompletesAtExactLengthWithRisingProgressAndTheSamplerSettings) {
    auto songd = DiffRhythm("worker", {{"DIFFRHYTHM_STANDIN_STEP_SECONDS", "0.1"}});
    songd->Start();
    ASSERT_TRUE(WaitReady(*songd)) << songd->Log();
    // Readiness comes from a worker up, with lazy loading before any model is loaded.
    auto health = Get(*songd, "/api/v1/health");
    EXPECT_EQ(health["engine"], "diffrhythm");
    EXPECT_EQ(health["models_loaded"], false);
    auto queue = Get(*songd, "/api/v1/queue");
    EXPECT_EQ(queue["workers"], 1);
    EXPECT_EQ(queue["engine_workers"], 1);

    // draft is 8 steps / CFG 2.5; steps overrides the preset's steps, CFG stays the preset's.
    const std::string id = Submit(*songd, 95, R"(,"preset":"draft","steps":12,"seed":42)");
    std::vector<int64_t> progress;
    auto done = WaitFinal(*songd, id, &progress);
    ASSERT_EQ(Status(done), "completed") << done << songd->Log();
    std::set<int64_t> distinct(progress.begin(), progress.end());
    EXPECT_GE(distinct.size(), 3u) << "progress should rise while sampling";
    EXPECT_TRUE(std::is_sorted(progress.begin(), progress.end()));

    Decoded song = Decode(*songd, Download(*songd, id));
    EXPECT_EQ(song.frames, engine::TargetFrames(95));
    EXPECT_EQ(song.rate, 44100);
    EXPECT_EQ(song.channels, 2);
    EXPECT_NEAR(song.lufs, -14.0, 1.0) << "finished to the balanced master preset";

    // A second length class and a preset without overrides (preview: 4 steps, CFG 2.0).
    const std::string id2 = Submit(*songd, 120, R"(,"preset":"preview","seed":43)");
    auto done2 = WaitFinal(*songd, id2);
    ASSERT_EQ(Status(done2), "completed") << done2 << songd->Log();
    Decoded song2 = Decode(*songd, Download(*songd, id2));
    EXPECT_EQ(song2.frames, engine::TargetFrames(120));

    auto records = Records(*songd);
    ASSERT_EQ(records.size(), 2u);
    EXPECT_EQ(records[0]["mode"], "worker");
    EXPECT_EQ(records[0]["steps"], 12);
    EXPECT_EQ(records[0]["cfg_strength"].to_number<double>(), 2.5);
    EXPECT_EQ(records[0]["seed"], 42);
    EXPECT_EQ(records[0]["audio_length"], 95);
    EXPECT_EQ(records[0]["chunked"], true);
    EXPECT_EQ(records[0]["ref_prompt"], "pop, happy, piano");
    // The lyrics reach the model in their exact [mm:ss.xx] form.
    EXPECT_EQ(records[0]["lrc"], "[00:05.00]Morning light on the water\n[00:12.50]We sing along");
    EXPECT_EQ(records[1]["steps"], 4);
    EXPECT_EQ(records[1]["cfg_strength"].to_number<double>(), 2.0);
    EXPECT_EQ(records[1]["audio_length"], 120);
    EXPECT_EQ(records[0]["pid"], records[1]["pid"]) << "one persistent worker";

    health = Get(*songd, "/api/v1/health");
    EXPECT_EQ(health["models_loaded"], true);
    EXPECT_EQ(health["device"], "cpu");
    auto models = health["diffrhythm"].as_object()["models"].as_array();
    EXPECT_EQ(models.size(), 2u) << health;
}

// Lyrics as people write them reach the model as the LRC songd laid out; an instrumental
// reaches it as an empty LRC (worker mode), and cli mode runs infer.py without --lrc-path.
TEST(DiffRhythmWorker, PlainLyricsArriveLaidOutAndAnInstrumentalAsAnEmptyLrc) {
    for (const std::string mode : {"worker", "cli"}) {
        SCOPED_TRACE(mode);
        auto songd = DiffRhythm(mode);
        songd->Start();
        ASSERT_TRUE(WaitReady(*songd)) << songd->Log();
        const std::string plain = SubmitBody(
            *songd,
            R"({"lyrics":"[Verse]\nMorning light on the water\nWe sing along the shore\n\n)"
            R"([Chorus]\nHold the sun a little longer","style_prompt":"pop, piano","seed":5})");
        auto done = WaitFinal(*songd, plain);
        ASSERT_EQ(Status(done), "completed") << done << songd->Log();
        const std::string lrc = Field(done, "lyrics_lrc");
        EXPECT_NE(lrc.find("]Morning light on the water"), std::string::npos) << lrc;

        const std::string inst = SubmitBody(
            *songd, R"({"instrumental":true,"style_prompt":"lofi, piano","audio_length":95})");
        auto inst_done = WaitFinal(*songd, inst);
        ASSERT_EQ(Status(inst_done), "completed") << inst_done << songd->Log();
        EXPECT_EQ(Decode(*songd, Download(*songd, inst)).frames, engine::TargetFrames(95));

        auto records = Records(*songd);
        ASSERT_EQ(records.size(), 2u);
        EXPECT_EQ(records[0]["lrc"], json::value(lrc))
            << "the layout the status shows is what the model got";
        EXPECT_EQ(records[1]["lrc"], "") << records[1];
    }
}

// A reference song (POST /uploads) reaches the model as its reference audio, in place of the
// style prompt.
TEST(DiffRhythmWorker, AnUploadedReferenceReachesTheModelAsItsReferenceAudio) {
    auto songd = DiffRhythm("worker");
    songd->Start();
    ASSERT_TRUE(WaitReady(*songd)) << songd->Log();
    const fs::path wav = songd->dir() / "reference.wav";
    WriteMono(wav, DrumLoop(100, 20));
    std::ifstream in(wav, std::ios::binary);
    const std::string bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    auto up = Http("POST", songd->Url("/api/v1/uploads"), {"Content-Type: audio/wav"}, bytes);
    ASSERT_EQ(up.status, 201) << up.body;
    const std::string upload(json::parse(up.body).at("upload_id").as_string());

    const std::string id =
        SubmitBody(*songd, R"({"lyrics":"[00:05.00]Morning light on the water","ref_audio_id":")" +
                               upload + R"("})");
    auto done = WaitFinal(*songd, id);
    ASSERT_EQ(Status(done), "completed") << done << songd->Log();
    auto records = Records(*songd);
    ASSERT_EQ(records.size(), 1u);
    ASSERT_TRUE(records[0]["ref_audio_path"].is_string()) << records[0];
    const fs::path ref(std::string(records[0]["ref_audio_path"].as_string()));
    EXPECT_NE(ref.string().find(upload), std::string::npos) << ref;
    EXPECT_TRUE(records[0]["ref_prompt"].is_null()) << records[0];
}

TEST(DiffRhythmWorker, SameSeedGivesTheSameBytesAnotherSeedAnotherSong) {
    auto songd = DiffRhythm("worker");
    songd->Start();
    ASSERT_TRUE(WaitReady(*songd)) << songd->Log();
    const std::string a = Submit(*songd, 95, R"(,"preset":"preview","seed":5)");
    const std::string b = Submit(*songd, 95, R"(,"preset":"preview","seed":5)");
    const std::string c = Submit(*songd, 95, R"(,"preset":"preview","seed":6)");
    for (const auto& id : {a, b, c}) ASSERT_EQ(Status(WaitFinal(*songd, id)), "completed");
    // Compared, never printed: a song is megabytes.
    const std::string song_a = Download(*songd, a);
    ASSERT_GT(song_a.size(), 1000u);
    EXPECT_TRUE(song_a == Download(*songd, b)) << "the same seed gave other bytes";
    EXPECT_TRUE(song_a != Download(*songd, c)) << "another seed gave the same bytes";
}

TEST(DiffRhythmWorker, CrashOnceIsRetriedOnARestartedWorkerAndTheJobCompletes) {
    auto songd = DiffRhythm(
        "worker", {{"DIFFRHYTHM_STANDIN_FAULT", "crash"}, {"DIFFRHYTHM_STANDIN_FAULT_TIMES", "1"}});
    songd->Start();
    ASSERT_TRUE(WaitReady(*songd)) << songd->Log();
    auto first = WorkerPids(*songd);
    ASSERT_EQ(first.size(), 1u);
    const std::string id = Submit(*songd, 95, R"(,"preset":"preview")");
    auto done = WaitFinal(*songd, id);
    ASSERT_EQ(Status(done), "completed") << done << songd->Log();
    EXPECT_NE(songd->Log().find("diffrhythm_retry"), std::string::npos);
    EXPECT_FALSE(GroupAlive(first[0])) << "the crashed worker's group is gone";
    auto records = Records(*songd);
    ASSERT_EQ(records.size(), 1u);
    EXPECT_NE(records[0]["pid"].as_int64(), first[0]) << "made by the restarted worker";
    auto workers = Get(*songd, "/api/v1/health")["diffrhythm"].as_object()["workers"].as_array();
    EXPECT_EQ(workers[0].as_object()["restarts"], 1);
}

TEST(DiffRhythmWorker, CrashEveryTimeFailsAfterTheAttemptsWithAClearCode) {
    auto songd = DiffRhythm("worker", {{"DIFFRHYTHM_STANDIN_FAULT", "crash"}});
    songd->Start();
    ASSERT_TRUE(WaitReady(*songd)) << songd->Log();
    const std::string id = Submit(*songd, 95, R"(,"preset":"preview")");
    auto done = WaitFinal(*songd, id);
    ASSERT_EQ(Status(done), "failed") << done;
    EXPECT_EQ(Field(done, "error_code"), "render_failed");
    EXPECT_NE(Field(done, "error").find("worker_lost"), std::string::npos) << done;
    EXPECT_NE(Field(done, "error").find("3 times"), std::string::npos) << done;
    EXPECT_EQ(Field(done, "error").find("Traceback"), std::string::npos) << "no stderr in answers";
}

TEST(DiffRhythmWorker, HangTimesOutAndTheWorkersWholeGroupIsGone) {
    auto songd = DiffRhythm("worker", {{"DIFFRHYTHM_STANDIN_FAULT", "hang"},
                                       {"DIFFRHYTHM_STANDIN_FAULT_TIMES", "1"},
                                       {"GENERATION_TIMEOUT", "6"}});
    songd->Start();
    ASSERT_TRUE(WaitReady(*songd)) << songd->Log();
    auto first = WorkerPids(*songd);
    ASSERT_EQ(first.size(), 1u);
    const std::string id = Submit(*songd, 95, R"(,"preset":"preview")");
    auto done = WaitFinal(*songd, id);
    ASSERT_EQ(Status(done), "failed") << done;
    EXPECT_EQ(Field(done, "error_code"), "timeout");
    EXPECT_TRUE(WaitFor([&] { return !GroupAlive(first[0]); }, std::chrono::seconds(10)))
        << "the hung worker's process group is gone";
    // A fresh worker serves the next job.
    ASSERT_TRUE(WaitReady(*songd));
    const std::string next = Submit(*songd, 95, R"(,"preset":"preview")");
    EXPECT_EQ(Status(WaitFinal(*songd, next)), "completed") << songd->Log();
}

struct ReportedFault {
    std::string fault;
    std::string error_contains;
};

class DiffRhythmWorkerReported : public ::testing::TestWithParam<ReportedFault> {};

TEST_P(DiffRhythmWorkerReported, FailsTheJobWithItsCodeAndTheWorkerServesOn) {
    auto songd = DiffRhythm("worker", {{"DIFFRHYTHM_STANDIN_FAULT", GetParam().fault},
                                       {"DIFFRHYTHM_STANDIN_FAULT_TIMES", "1"}});
    songd->Start();
    ASSERT_TRUE(WaitReady(*songd)) << songd->Log();
    auto pids = WorkerPids(*songd);
    const std::string id = Submit(*songd, 95, R"(,"preset":"preview")");
    auto done = WaitFinal(*songd, id);
    ASSERT_EQ(Status(done), "failed") << done;
    EXPECT_EQ(Field(done, "error_code"), "render_failed");
    EXPECT_NE(Field(done, "error").find(GetParam().error_contains), std::string::npos) << done;
    const std::string next = Submit(*songd, 95, R"(,"preset":"preview")");
    EXPECT_EQ(Status(WaitFinal(*songd, next)), "completed") << songd->Log();
    EXPECT_EQ(WorkerPids(*songd), pids) << "the same worker, not restarted";
}

INSTANTIATE_TEST_SUITE_P(Faults, DiffRhythmWorkerReported,
                         ::testing::Values(ReportedFault{"nofile", "internal"},
                                           ReportedFault{"oom", "out_of_memory"},
                                           ReportedFault{"nan", "NaN"}),
                         [](const auto& info) { return info.param.fault; });

class DiffRhythmWorkerHarmless : public ::testing::TestWithParam<std::string> {};

TEST_P(DiffRhythmWorkerHarmless, TheSongStillCompletes) {
    auto songd = DiffRhythm("worker", {{"DIFFRHYTHM_STANDIN_FAULT", GetParam()}});
    songd->Start();
    ASSERT_TRUE(WaitReady(*songd)) << songd->Log();
    auto pids = WorkerPids(*songd);
    const std::string id = Submit(*songd, 95, R"(,"preset":"preview")");
    auto done = WaitFinal(*songd, id);
    ASSERT_EQ(Status(done), "completed") << done << songd->Log().substr(0, 4000);
    EXPECT_EQ(WorkerPids(*songd), pids) << "no protocol error, no restart";
    // 10 MB of stderr is drained and only its last 64 KiB ever reach the log.
    EXPECT_LT(songd->Log().size(), 1u << 20);
}

INSTANTIATE_TEST_SUITE_P(Faults, DiffRhythmWorkerHarmless,
                         ::testing::Values("garbage", "stderr_flood"));

TEST(DiffRhythmWorker, ALoadPastTheLoadTimeoutKillsTheWorkerAndIsReported) {
    auto songd = DiffRhythm("worker", {{"DIFFRHYTHM_STANDIN_FAULT", "slow_load"},
                                       {"DIFFRHYTHM_STANDIN_FAULT_TIMES", "1"},
                                       {"DIFFRHYTHM_STANDIN_LOAD_SECONDS", "600"},
                                       {"DIFFRHYTHM_PRELOAD", "95"},
                                       {"DIFFRHYTHM_LOAD_TIMEOUT", "4"}});
    songd->Start();
    // Not ready while the first worker loads, killed at the timeout, ready once the next loads.
    auto r = Http("GET", songd->Url("/readyz"));
    EXPECT_EQ(r.status, 503) << r.body;
    ASSERT_TRUE(
        WaitFor([&] { return songd->Log().find("DIFFRHYTHM_LOAD_TIMEOUT") != std::string::npos; },
                std::chrono::seconds(60)))
        << songd->Log();
    ASSERT_TRUE(WaitReady(*songd)) << songd->Log();
    auto health = Get(*songd, "/api/v1/health");
    EXPECT_EQ(health["models_loaded"], true) << health;
    auto worker = health["diffrhythm"].as_object()["workers"].as_array()[0].as_object();
    EXPECT_EQ(worker["restarts"], 1);
    // Only the live worker is left: the slow one was killed with its group.
    auto left = ProcessesMentioning(songd->dir().string());
    EXPECT_EQ(left.size(), 1u);
}

TEST(DiffRhythmWorker, SigtermLeavesNoPythonProcess) {
    auto songd = DiffRhythm("worker", {{"DIFFRHYTHM_STANDIN_STEP_SECONDS", "0.5"}});
    songd->Start();
    ASSERT_TRUE(WaitReady(*songd)) << songd->Log();
    const std::string id = Submit(*songd, 95, R"(,"preset":"draft")");
    ASSERT_TRUE(WaitFor([&] { return JobStatusName(*songd, id) == "processing"; }));
    ASSERT_FALSE(ProcessesMentioning(songd->dir().string()).empty());
    EXPECT_EQ(songd->Stop(), 0);
    EXPECT_EQ(ProcessesMentioning(songd->dir().string()), std::vector<int>{});
}

TEST(DiffRhythmWorker, TwoGpusTwoProcessesFourJobsNeverTwoAtOnceOnOne) {
    auto songd = DiffRhythm(
        "worker", {{"DIFFRHYTHM_GPUS", "0,1"}, {"DIFFRHYTHM_STANDIN_STEP_SECONDS", "0.1"}});
    songd->Start();
    ASSERT_TRUE(WaitFor([&] { return WorkerPids(*songd).size() == 2; }, std::chrono::seconds(90)));
    ASSERT_TRUE(WaitFor(
        [&] {
            auto workers = Get(*songd, "/api/v1/health")["diffrhythm"].as_object()["workers"];
            for (const auto& w : workers.as_array()) {
                if (w.as_object().at("state") != "idle") return false;
            }
            return true;
        },
        std::chrono::seconds(90)));
    auto queue = Get(*songd, "/api/v1/queue");
    EXPECT_EQ(queue["workers"], 2);
    std::vector<std::string> ids;
    for (int i = 0; i < 4; ++i) ids.push_back(Submit(*songd, 95, R"(,"preset":"draft")"));
    for (const auto& id : ids) ASSERT_EQ(Status(WaitFinal(*songd, id)), "completed");

    auto records = Records(*songd);
    ASSERT_EQ(records.size(), 4u);
    std::map<int64_t, std::vector<std::pair<double, double>>> by_pid;
    std::set<std::string> devices;
    for (auto& r : records) {
        by_pid[r["pid"].as_int64()].emplace_back(r["start"].to_number<double>(),
                                                 r["end"].to_number<double>());
        devices.insert(std::string(r["cuda_visible_devices"].as_string()));
    }
    EXPECT_EQ(by_pid.size(), 2u) << "both workers took jobs";
    EXPECT_EQ(devices, (std::set<std::string>{"0", "1"}));
    for (auto& [pid, spans] : by_pid) {
        std::sort(spans.begin(), spans.end());
        for (size_t i = 1; i < spans.size(); ++i) {
            EXPECT_LE(spans[i - 1].second, spans[i].first) << "two jobs at once on pid " << pid;
        }
    }
}

// ---- cli mode ----

TEST(DiffRhythmCli, SongCompletesAtExactLengthAndSamplerSettingsAreIgnored) {
    auto songd = DiffRhythm("cli", {{"DIFFRHYTHM_STANDIN_STEP_SECONDS", "0.1"}});
    songd->Start();
    ASSERT_TRUE(WaitReady(*songd)) << songd->Log();
    const std::string id = Submit(*songd, 120, R"(,"preset":"draft","steps":12,"seed":9)");
    std::vector<int64_t> progress;
    auto done = WaitFinal(*songd, id, &progress);
    ASSERT_EQ(Status(done), "completed") << done << songd->Log();
    std::set<int64_t> distinct(progress.begin(), progress.end());
    EXPECT_GE(distinct.size(), 2u) << "progress should rise";
    EXPECT_TRUE(std::is_sorted(progress.begin(), progress.end()));
    Decoded song = Decode(*songd, Download(*songd, id));
    EXPECT_EQ(song.frames, engine::TargetFrames(120));
    EXPECT_NEAR(song.lufs, -14.0, 1.0);
    auto records = Records(*songd);
    ASSERT_EQ(records.size(), 1u);
    EXPECT_EQ(records[0]["mode"], "cli");
    EXPECT_EQ(records[0]["steps"], 32) << "upstream's fixed steps: ours are ignored in cli mode";
    EXPECT_EQ(records[0]["lrc"], "[00:05.00]Morning light on the water\n[00:12.50]We sing along");
    EXPECT_EQ(records[0]["chunked"], true);
    EXPECT_EQ(ProcessesMentioning(songd->dir().string()), std::vector<int>{});
}

struct CliFault {
    std::string fault;
    std::string code;
    std::string error_contains;
};

class DiffRhythmCliFaults : public ::testing::TestWithParam<CliFault> {};

TEST_P(DiffRhythmCliFaults, FailTheJobAndLeaveNoProcess) {
    auto songd = DiffRhythm(
        "cli", {{"DIFFRHYTHM_STANDIN_FAULT", GetParam().fault}, {"GENERATION_TIMEOUT", "8"}});
    songd->Start();
    ASSERT_TRUE(WaitReady(*songd)) << songd->Log();
    const std::string id = Submit(*songd, 95, R"(,"preset":"preview")");
    auto done = WaitFinal(*songd, id);
    ASSERT_EQ(Status(done), "failed") << done;
    EXPECT_EQ(Field(done, "error_code"), GetParam().code);
    EXPECT_NE(Field(done, "error").find(GetParam().error_contains), std::string::npos) << done;
    EXPECT_TRUE(WaitFor([&] { return ProcessesMentioning(songd->dir().string()).empty(); },
                        std::chrono::seconds(10)));
}

INSTANTIATE_TEST_SUITE_P(
    Faults, DiffRhythmCliFaults,
    ::testing::Values(CliFault{"nofile", "render_failed", "without writing output.wav"},
                      CliFault{"crash", "render_failed", "killed by signal 9"},
                      CliFault{"hang", "timeout", "GENERATION_TIMEOUT"},
                      // upstream writes a NaN song as silence; finishing refuses it
                      CliFault{"nan", "render_failed", "silence"}),
    [](const auto& info) { return info.param.fault; });

// ---- start-up checks (acceptance 4) ----

TEST(DiffRhythmStart, ServeRefusesABadCheckoutOrPythonWithOneLine) {
    SongdProcess dir;  // only for its folder
    const fs::path empty = dir.dir() / "not-a-checkout";
    fs::create_directories(empty / "infer");
    // A Python that cannot import torch: Debian's, without its site packages.
    const fs::path bare = dir.dir() / "bare-python";
    std::ofstream(bare) << "#!/bin/sh\nexec " << kPython << " -I -S \"$@\"\n";
    fs::permissions(bare, fs::perms::owner_all);
    struct Case {
        Env env;
        std::string expected;
    };
    const std::vector<Case> cases = {
        {{}, "DIFFRHYTHM_HOME"},
        {{{"DIFFRHYTHM_HOME", (dir.dir() / "missing").string()}}, "DIFFRHYTHM_HOME"},
        {{{"DIFFRHYTHM_HOME", empty.string()}}, "infer/infer.py is missing"},
        {{{"DIFFRHYTHM_HOME", kStandin}, {"DIFFRHYTHM_PYTHON", bare.string()}},
         "cannot import torch"},
        {{{"DIFFRHYTHM_HOME", kStandin}, {"DIFFRHYTHM_PYTHON", "/nonexistent/python3"}},
         "DIFFRHYTHM_PYTHON"},
    };
    for (const auto& c : cases) {
        Env env = c.env;
        env["ENGINE"] = "diffrhythm";
        env.try_emplace("DIFFRHYTHM_PYTHON", kPython);
        env["PORT"] = std::to_string(FreePort());
        env["OUTPUT_DIR"] = (dir.dir() / "output").string();
        env["DATABASE_URL"] = "sqlite:" + (dir.dir() / "songd.db").string();
        SCOPED_TRACE(c.expected);
        auto [code, output] = dir.RunCommand({"serve"}, env);
        EXPECT_EQ(code, 2) << output;
        EXPECT_EQ(std::count(output.begin(), output.end(), '\n'), 1) << output;
        EXPECT_NE(output.find(c.expected), std::string::npos) << output;
    }
}

TEST(DiffRhythmStart, WorkersMustMatchTheEngineWorkers) {
    SongdProcess dir;
    auto [code, output] = dir.RunCommand(
        {"serve"}, {{"ENGINE", "diffrhythm"},
                    {"DIFFRHYTHM_HOME", kStandin},
                    {"DIFFRHYTHM_GPUS", "0,1"},
                    {"WORKERS", "3"},
                    {"OUTPUT_DIR", (dir.dir() / "output").string()},
                    {"DATABASE_URL", "sqlite:" + (dir.dir() / "songd.db").string()}});
    EXPECT_EQ(code, 2) << output;
    EXPECT_NE(output.find("WORKERS='3': must be 2"), std::string::npos) << output;
}

}  // namespace
}  // namespace songd::test
