// The DiffRhythm worker supervisor against a fake worker (a small Python script speaking the
// protocol, told by each request's lyrics how to misbehave): scheduling, restarts, protocol
// errors, cancellation with the whole process group, the load timeout and shutdown.
#include <gtest/gtest.h>
#include <signal.h>
#include <unistd.h>

#include <atomic>
#include <fstream>
#include <thread>

#include "core/error.h"
#include "engine/diffrhythm/supervisor.h"

namespace songd::engine::diffrhythm {
namespace {

namespace fs = std::filesystem;
using namespace std::chrono_literals;

// Lyrics pick the behaviour: crash, junk, hang (with a grandchild in its group), error,
// slow (0.4 s), anything else: a normal song. NOT_READY in the environment: never ready.
constexpr const char* kFakeWorker = R"PY(
import json, os, signal, subprocess, sys, time
out = sys.stdout
def send(**event):
    out.write(json.dumps(event) + "\n"); out.flush()
if os.environ.get("NOT_READY"):
    time.sleep(1000)
send(event="hello", protocol=1, device="cpu", torch="0", pid=os.getpid())
if "--preload" in sys.argv:
    send(event="loaded", model="95", seconds=0.0)
send(event="ready", models_loaded=["95"] if "--preload" in sys.argv else [])
for line in sys.stdin:
    req = json.loads(line)
    rid, what = req["id"], req["lyrics"]
    send(id=rid, event="progress", percent=10, phase="sampling")
    if what == "crash":
        os.kill(os.getpid(), signal.SIGKILL)
    if what == "junk":
        out.write("Loading checkpoint shards: 100%\n"); out.flush()
    if what == "hang":
        child = subprocess.Popen(["sleep", "1000"])
        with open(req["output_path"] + ".pids", "w") as f:
            f.write("%d %d" % (os.getpid(), child.pid))
        time.sleep(1000)
    if what == "error":
        send(id=rid, event="error", code="out_of_memory", message="CUDA out of memory")
        continue
    if what == "slow":
        time.sleep(0.4)
    with open(req["output_path"], "wb") as f:
        f.write(b"RIFF" + b"\0" * 100)
    with open(req["output_path"] + ".who", "w") as f:
        f.write("%s %s %d %f %f" % (os.environ.get("CUDA_VISIBLE_DEVICES", "-"), req["steps"], os.getpid(), time.time(), time.time()))
    send(id=rid, event="progress", percent=90, phase="saving")
    send(id=rid, event="done", output_path=req["output_path"], seconds=0.1)
)PY";

class DiffRhythmSupervisor : public ::testing::Test {
  protected:
    void SetUp() override {
        char tmpl[] = "/tmp/songd-dr-sup-XXXXXX";
        dir_ = ::mkdtemp(tmpl);
        std::ofstream(dir_ / "fake_worker.py") << kFakeWorker;
        options_.python = "/usr/bin/python3";
        options_.script = dir_ / "fake_worker.py";
        options_.home = dir_;
        options_.backoff_first = 50ms;
        options_.kill_grace = 500ms;
        options_.load_timeout = 20s;
    }
    void TearDown() override {
        std::error_code ec;
        fs::remove_all(dir_, ec);
    }

    Request Song(const std::string& id, const std::string& lyrics) const {
        Request r;
        r.id = id;
        r.lyrics = lyrics;
        r.style_prompt = "pop";
        r.steps = 7;
        r.output_path = (dir_ / (id + ".wav")).string();
        return r;
    }

    static bool WaitFor(const std::function<bool()>& condition,
                        std::chrono::milliseconds timeout = 30s) {
        const auto deadline = std::chrono::steady_clock::now() + timeout;
        while (std::chrono::steady_clock::now() < deadline) {
            if (condition()) return true;
            std::this_thread::sleep_for(20ms);
        }
        return condition();
    }

    static bool Alive(pid_t pid) { return ::kill(pid, 0) == 0; }

    fs::path dir_;
    SupervisorOptions options_;
};

TEST_F(DiffRhythmSupervisor, RunsARequestAndRelaysProgress) {
    options_.preload = {95};
    Supervisor s(options_);
    EXPECT_FALSE(s.Status().ready);
    s.Start();
    ASSERT_TRUE(WaitFor([&] { return s.Status().ready; })) << s.Status().reason;
    auto workers = s.Workers();
    ASSERT_EQ(workers.size(), 1u);
    EXPECT_EQ(workers[0].state, "idle");
    EXPECT_EQ(workers[0].device, "cpu");
    EXPECT_EQ(workers[0].models_loaded, std::vector<std::string>{"95"});
    std::vector<int> progress;
    CancelToken cancel;
    RunResult r = s.Run(
        Song("a", "la la"), [&](int p, const std::string&) { progress.push_back(p); }, cancel);
    EXPECT_EQ(r.outcome, RunResult::Outcome::kDone) << r.message;
    EXPECT_EQ(r.output_path, (dir_ / "a.wav").string());
    EXPECT_EQ(progress, (std::vector<int>{10, 90}));
    RunResult e = s.Run(Song("b", "error"), nullptr, cancel);
    EXPECT_EQ(e.outcome, RunResult::Outcome::kError);
    EXPECT_EQ(e.code, "out_of_memory");
    EXPECT_EQ(s.Workers()[0].pid, workers[0].pid) << "an error report keeps the worker";
    s.Stop();
    EXPECT_EQ(s.Status().reason, "stopped");
}

TEST_F(DiffRhythmSupervisor, ACrashOrJunkOnStdoutLosesTheWorkerWhichIsRestarted) {
    Supervisor s(options_);
    s.Start();
    ASSERT_TRUE(WaitFor([&] { return s.Status().ready; }));
    const pid_t first = static_cast<pid_t>(s.Workers()[0].pid);
    CancelToken cancel;
    RunResult crash = s.Run(Song("c", "crash"), nullptr, cancel);
    EXPECT_EQ(crash.outcome, RunResult::Outcome::kWorkerLost);
    EXPECT_NE(crash.message.find("signal 9"), std::string::npos) << crash.message;
    EXPECT_FALSE(Alive(first)) << "reaped, no zombie";
    ASSERT_TRUE(WaitFor([&] { return s.Status().ready; }));
    EXPECT_EQ(s.Workers()[0].restarts, 1);
    const pid_t second = static_cast<pid_t>(s.Workers()[0].pid);
    EXPECT_NE(second, first);
    RunResult junk = s.Run(Song("j", "junk"), nullptr, cancel);
    EXPECT_EQ(junk.outcome, RunResult::Outcome::kWorkerLost);
    EXPECT_NE(junk.message.find("protocol error"), std::string::npos) << junk.message;
    EXPECT_FALSE(Alive(second)) << "a worker that breaks the protocol is killed";
    ASSERT_TRUE(WaitFor([&] { return s.Status().ready; }));
    EXPECT_EQ(s.Run(Song("ok", "la"), nullptr, cancel).outcome, RunResult::Outcome::kDone);
}

TEST_F(DiffRhythmSupervisor, CancelKillsTheWorkersWholeGroupAndAFreshOneStarts) {
    Supervisor s(options_);
    s.Start();
    ASSERT_TRUE(WaitFor([&] { return s.Status().ready; }));
    CancelToken cancel(std::chrono::steady_clock::now() + 1500ms);
    try {
        s.Run(Song("h", "hang"), nullptr, cancel);
        FAIL() << "a hung request returned";
    } catch (const core::Error& e) {
        EXPECT_EQ(e.code(), core::ErrorCode::kTimeout);
    }
    std::ifstream in(dir_ / "h.wav.pids");
    pid_t worker = 0, grandchild = 0;
    in >> worker >> grandchild;
    ASSERT_GT(grandchild, 0);
    EXPECT_FALSE(Alive(worker));
    EXPECT_TRUE(WaitFor([&] { return !Alive(grandchild); }, 5s)) << "the group is gone";
    ASSERT_TRUE(WaitFor([&] { return s.Status().ready; }));
    CancelToken fresh;
    EXPECT_EQ(s.Run(Song("after", "la"), nullptr, fresh).outcome, RunResult::Outcome::kDone);
}

TEST_F(DiffRhythmSupervisor, TwoGpusServeOneRequestEachAtATime) {
    options_.gpus = {0, 1};
    Supervisor s(options_);
    s.Start();
    ASSERT_TRUE(WaitFor([&] {
        auto w = s.Workers();
        return w[0].state == "idle" && w[1].state == "idle";
    }));
    std::vector<std::thread> threads;
    std::atomic<int> done{0};
    for (int i = 0; i < 4; ++i) {
        threads.emplace_back([&, i] {
            CancelToken cancel;
            if (s.Run(Song("s" + std::to_string(i), "slow"), nullptr, cancel).outcome ==
                RunResult::Outcome::kDone) {
                ++done;
            }
        });
    }
    for (auto& t : threads) t.join();
    EXPECT_EQ(done.load(), 4);
    std::map<std::string, std::vector<std::pair<double, double>>> by_pid;
    std::set<std::string> gpus;
    for (int i = 0; i < 4; ++i) {
        std::ifstream in(dir_ / ("s" + std::to_string(i) + ".wav.who"));
        std::string gpu, steps, pid;
        double start = 0, end = 0;
        in >> gpu >> steps >> pid >> start >> end;
        gpus.insert(gpu);
        EXPECT_EQ(steps, "7");
        by_pid[pid].emplace_back(start, end);
    }
    EXPECT_EQ(gpus, (std::set<std::string>{"0", "1"}));
    EXPECT_EQ(by_pid.size(), 2u);
}

TEST_F(DiffRhythmSupervisor, AWorkerNeverReadyIsKilledAtTheLoadTimeout) {
    options_.load_timeout = 300ms;
    options_.env = {{"NOT_READY", "1"}};
    Supervisor s(options_);
    s.Start();
    ASSERT_TRUE(WaitFor([&] {
        return s.Status().reason.find("DIFFRHYTHM_LOAD_TIMEOUT") != std::string::npos;
    })) << s.Status().reason;
    EXPECT_FALSE(s.Status().ready);
    EXPECT_TRUE(WaitFor([&] { return s.Workers()[0].restarts >= 1; }));
    // A request waits for a worker until its own deadline.
    CancelToken cancel(std::chrono::steady_clock::now() + 200ms);
    EXPECT_THROW(s.Run(Song("x", "la"), nullptr, cancel), core::Error);
}

TEST_F(DiffRhythmSupervisor, StopEndsEveryWorker) {
    options_.gpus = {0, 1};
    Supervisor s(options_);
    s.Start();
    ASSERT_TRUE(WaitFor([&] {
        auto w = s.Workers();
        return w[0].pid != 0 && w[1].pid != 0 && w[0].state == "idle" && w[1].state == "idle";
    }));
    auto workers = s.Workers();
    s.Stop();
    for (const auto& w : workers) EXPECT_FALSE(Alive(static_cast<pid_t>(w.pid))) << w.pid;
    CancelToken cancel;
    EXPECT_THROW(s.Run(Song("late", "la"), nullptr, cancel), core::Error);
}

}  // namespace
}  // namespace songd::engine::diffrhythm
