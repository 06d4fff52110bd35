// core::ChildProcess on real programs (/bin/sh, sleep, yes): output, exit status, start
// errors, deadlines, cancellation, floods, kills of whole process groups, and reaping.

#include "core/child_process.h"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <thread>

namespace songd::core {
namespace {

namespace fs = std::filesystem;
using Clock = std::chrono::steady_clock;
using std::chrono::milliseconds;
using std::chrono::seconds;

ChildProcess::Options Sh(const std::string& script) {
    ChildProcess::Options options;
    options.argv = {"/bin/sh", "-c", script};
    return options;
}

/// True once `pid` no longer runs: no such process, or a zombie waiting for init.
bool IsGone(pid_t pid) {
    if (::kill(pid, 0) != 0 && errno == ESRCH) return true;
    std::ifstream stat("/proc/" + std::to_string(pid) + "/stat");
    std::string text((std::istreambuf_iterator<char>(stat)), std::istreambuf_iterator<char>());
    const size_t close = text.rfind(')');
    return text.empty() ||
           (close != std::string::npos && close + 2 < text.size() && text[close + 2] == 'Z');
}

/// Polls until `pid` is gone or 10 s passed.
bool BecomesGone(pid_t pid) {
    const auto deadline = Clock::now() + seconds(10);
    while (Clock::now() < deadline) {
        if (IsGone(pid)) return true;
        std::this_thread::sleep_for(milliseconds(5));
    }
    return IsGone(pid);
}

/// True when `pid` is no child of ours any more (reaped): waitpid says ECHILD.
bool Reaped(pid_t pid) {
    int status = 0;
    return ::waitpid(pid, &status, WNOHANG) < 0 && errno == ECHILD;
}

std::string ReadLineOrFail(ChildProcess& child) {
    auto line = child.ReadLine({.cancelled = {}, .deadline = Clock::now() + seconds(30)});
    EXPECT_EQ(line.outcome, Outcome::kDone);
    return line.line;
}

fs::path TempDir() {
    char tmpl[] = "/tmp/songd-child-XXXXXX";
    return ::mkdtemp(tmpl);
}

std::string ReadFile(const fs::path& path) {
    std::ifstream in(path);
    std::stringstream ss;
    ss << in.rdbuf();
    return ss.str();
}

TEST(ChildProcess, RunsAProgramAndReportsItsExitCodeAndOutput) {
    auto child = ChildProcess::Spawn(Sh("echo out; echo err >&2; exit 3"));
    EXPECT_GT(child.pid(), 0);
    const WaitResult result = child.Wait();
    EXPECT_EQ(result.outcome, Outcome::kDone);
    EXPECT_EQ(result.status.code, 3);
    EXPECT_EQ(result.status.signal, 0);
    EXPECT_FALSE(result.status.Success());
    EXPECT_EQ(result.status.Describe(), "exited with code 3");
    EXPECT_EQ(child.stdout_capture().text, "out\n");
    EXPECT_EQ(child.stderr_capture().text, "err\n");
    EXPECT_EQ(child.StderrTail(), "err");
    EXPECT_FALSE(child.Running());
    EXPECT_TRUE(Reaped(child.pid()));
}

TEST(ChildProcess, FindsTheProgramInPathAndPassesArguments) {
    ChildProcess::Options options;
    options.argv = {"printf", "%s|%s", "two words", "x"};
    auto child = ChildProcess::Spawn(options);
    EXPECT_TRUE(child.Wait().status.Success());
    EXPECT_EQ(child.stdout_capture().text, "two words|x");
}

TEST(ChildProcess, RunsAProgramUnderAnotherName) {
    ChildProcess::Options options;
    options.program = "/bin/sh";
    options.argv = {"songd-shell", "-c", "echo $0"};
    auto child = ChildProcess::Spawn(options);
    EXPECT_TRUE(child.Wait().status.Success());
    EXPECT_EQ(child.stdout_capture().text, "songd-shell\n");
}

TEST(ChildProcess, ASignalDeathIsDescribedAsSuch) {
    auto child = ChildProcess::Spawn(Sh("kill -9 $$"));
    const auto status = child.Wait().status;
    EXPECT_EQ(status.signal, SIGKILL);
    EXPECT_EQ(status.Describe(), "killed by signal 9 (SIGKILL)");
}

TEST(ChildProcess, AMissingProgramIsAClearErrorFromSpawn) {
    ChildProcess::Options options;
    options.argv = {"songd-no-such-program"};
    options.error_code = ErrorCode::kRenderFailed;
    try {
        ChildProcess::Spawn(options);
        FAIL() << "expected an error";
    } catch (const Error& e) {
        EXPECT_EQ(e.code(), ErrorCode::kRenderFailed);
        EXPECT_STREQ(e.what(), "cannot start 'songd-no-such-program': No such file or directory");
    }
    // An explicit path is only found out by exec, in the child: the failure comes back
    // through the close-on-exec pipe, still as an error from Spawn.
    options.argv = {"/nonexistent/songd-program"};
    try {
        ChildProcess::Spawn(options);
        FAIL() << "expected an error";
    } catch (const Error& e) {
        EXPECT_STREQ(e.what(),
                     "cannot start '/nonexistent/songd-program': No such file or directory");
    }
}

TEST(ChildProcess, ANonExecutableFileAndAMissingWorkingDirectoryAreClearErrors) {
    const fs::path dir = TempDir();
    const fs::path script = dir / "script.sh";
    std::ofstream(script) << "#!/bin/sh\necho hi\n";
    ChildProcess::Options options;
    options.argv = {script.string()};
    try {
        ChildProcess::Spawn(options);
        FAIL() << "expected an error";
    } catch (const Error& e) {
        EXPECT_EQ(std::string(e.what()),
                  "cannot start '" + script.string() + "': Permission denied");
    }
    fs::permissions(script, fs::perms::owner_exec, fs::perm_options::add);
    EXPECT_TRUE(ChildProcess::Spawn(options).Wait().status.Success());

    options = Sh("true");
    options.working_dir = dir / "missing";
    try {
        ChildProcess::Spawn(options);
        FAIL() << "expected an error";
    } catch (const Error& e) {
        EXPECT_EQ(std::string(e.what()),
                  "cannot start '/bin/sh': cannot enter the working directory '" +
                      (dir / "missing").string() + "': No such file or directory");
    }
    fs::remove_all(dir);
}

TEST(ChildProcess, SetsTheWorkingDirectoryAndTheEnvironment) {
    const fs::path dir = TempDir();
    ::setenv("SONGD_CHILD_TEST_KEPT", "kept", 1);
    ::setenv("SONGD_CHILD_TEST_REPLACED", "old", 1);
    auto options = Sh("pwd; echo \"$SONGD_CHILD_TEST_KEPT,$SONGD_CHILD_TEST_REPLACED,$ADDED\"");
    options.working_dir = dir;
    options.env = {{"SONGD_CHILD_TEST_REPLACED", "new"}, {"ADDED", "a=b"}};
    auto child = ChildProcess::Spawn(options);
    EXPECT_TRUE(child.Wait().status.Success());
    EXPECT_EQ(child.stdout_capture().text, fs::canonical(dir).string() + "\nkept,new,a=b\n");

    options.inherit_env = false;  // only what `env` says
    auto clean = ChildProcess::Spawn(options);
    EXPECT_TRUE(clean.Wait().status.Success());
    EXPECT_EQ(clean.stdout_capture().text, fs::canonical(dir).string() + "\n,new,a=b\n");
    ::unsetenv("SONGD_CHILD_TEST_KEPT");
    ::unsetenv("SONGD_CHILD_TEST_REPLACED");
    fs::remove_all(dir);
}

TEST(ChildProcess, AHangIsKilledAtTheDeadline) {
    auto child = ChildProcess::Spawn(Sh("exec sleep 1000"));
    const pid_t pid = child.pid();
    const WaitResult result =
        child.Wait({.cancelled = {}, .deadline = Clock::now() + milliseconds(200)});
    EXPECT_EQ(result.outcome, Outcome::kTimedOut);
    EXPECT_EQ(result.status.signal, SIGTERM);
    EXPECT_FALSE(child.Running());
    EXPECT_TRUE(Reaped(pid));
}

TEST(ChildProcess, CancelIsCheckedWhileWaitingAndStopsTheChild) {
    auto child = ChildProcess::Spawn(Sh("exec sleep 1000"));
    // The only way out of this wait (no deadline, a child sleeping 1000 s) is the predicate
    // being asked again and again while the child runs.
    int calls = 0;
    const auto start = Clock::now();
    const WaitResult result = child.Wait({.cancelled = [&] { return ++calls >= 4; }});
    const auto elapsed = Clock::now() - start;
    EXPECT_EQ(result.outcome, Outcome::kCancelled);
    EXPECT_EQ(calls, 4);
    EXPECT_EQ(result.status.signal, SIGTERM);
    // Three poll periods passed before the fourth call said yes: at least one 50 ms period
    // each (the deadline-free wait does not spin).
    EXPECT_GE(elapsed, milliseconds(150));
    std::cout << "cancelled after " << std::chrono::duration<double>(elapsed).count() << " s\n";
}

TEST(ChildProcess, AFloodOfOutputNeitherBlocksNorGrowsTheCapture) {
    rusage before{};
    ::getrusage(RUSAGE_SELF, &before);
    auto options = Sh("yes | head -c 50000000 >&2; yes | head -c 30000000; echo; echo done >&2");
    options.stderr_limit = 64 * 1024;
    options.stdout_limit = 1024 * 1024;
    auto child = ChildProcess::Spawn(options);
    const WaitResult result =
        child.Wait({.cancelled = {}, .deadline = Clock::now() + seconds(120)});
    ASSERT_EQ(result.outcome, Outcome::kDone);
    EXPECT_TRUE(result.status.Success()) << result.status.Describe();
    const Capture& err = child.stderr_capture();
    EXPECT_EQ(err.text.size(), 64u * 1024);
    EXPECT_EQ(err.dropped + err.text.size(), 50000000u + 5);
    EXPECT_EQ(err.text.substr(err.text.size() - 10), "\ny\ny\ndone\n");
    const Capture& out = child.stdout_capture();
    EXPECT_EQ(out.text.size(), 1024u * 1024);
    EXPECT_EQ(out.dropped + out.text.size(), 30000000u + 1);
    rusage after{};
    ::getrusage(RUSAGE_SELF, &after);
    // 80 MB went through; the peak resident size may not grow by anything like it.
    EXPECT_LT(after.ru_maxrss - before.ru_maxrss, 20 * 1024) << "KiB";
}

TEST(ChildProcess, AChildIgnoringSigtermIsKilledAfterTheGracePeriod) {
    auto child = ChildProcess::Spawn(Sh("trap '' TERM; echo ready; exec sleep 1000"));
    ASSERT_EQ(ReadLineOrFail(child), "ready");
    const auto start = Clock::now();
    const ExitStatus status = child.Kill(milliseconds(300));
    EXPECT_GE(Clock::now() - start, milliseconds(300));  // SIGTERM had its chance first
    EXPECT_EQ(status.signal, SIGKILL);
    EXPECT_FALSE(child.Running());
    EXPECT_TRUE(Reaped(child.pid()));
}

TEST(ChildProcess, KillWithoutGraceSendsSigkillAtOnce) {
    auto child = ChildProcess::Spawn(Sh("exec sleep 1000"));
    EXPECT_EQ(child.Kill(milliseconds(0)).signal, SIGKILL);
}

TEST(ChildProcess, KillTakesTheGrandchildrenToo) {
    auto child = ChildProcess::Spawn(Sh("sleep 1000 & echo $!; wait"));
    const pid_t grandchild = std::stoi(ReadLineOrFail(child));
    ASSERT_FALSE(IsGone(grandchild));
    EXPECT_EQ(child.Kill().signal, SIGTERM);
    EXPECT_TRUE(BecomesGone(grandchild));
}

TEST(ChildProcess, AGrandchildIgnoringSigtermIsKilledWhenTheLeaderGoes) {
    // The leader dies of SIGTERM at once; the grandchild ignores it and is SIGKILLed.
    auto child = ChildProcess::Spawn(Sh("(trap '' TERM; exec sleep 1000) & echo $!; wait"));
    const pid_t grandchild = std::stoi(ReadLineOrFail(child));
    EXPECT_EQ(child.Kill(seconds(30)).signal, SIGTERM);
    EXPECT_TRUE(BecomesGone(grandchild));
}

TEST(ChildProcess, AGrandchildLeftBehindByANormalExitIsKilled) {
    // It also holds stdout open: the wait must end on the leader's exit, not on EOF.
    auto child = ChildProcess::Spawn(Sh("sleep 1000 & echo $!"));
    const pid_t grandchild = std::stoi(ReadLineOrFail(child));
    const WaitResult result = child.Wait({.cancelled = {}, .deadline = Clock::now() + seconds(60)});
    EXPECT_EQ(result.outcome, Outcome::kDone);
    EXPECT_TRUE(result.status.Success());
    EXPECT_TRUE(BecomesGone(grandchild));
}

TEST(ChildProcess, NoZombieAfterDestruction) {
    pid_t running = -1, finished = -1;
    {
        auto child = ChildProcess::Spawn(Sh("exec sleep 1000"));
        running = child.pid();
    }
    EXPECT_TRUE(Reaped(running));
    EXPECT_TRUE(IsGone(running));
    {
        auto child = ChildProcess::Spawn(Sh("exit 0"));
        finished = child.pid();
        // Never waited for: it exits on its own, and the destructor reaps it.
        ASSERT_TRUE([&] {
            const auto deadline = Clock::now() + seconds(10);
            while (Clock::now() < deadline) {
                siginfo_t info{};
                if (::waitid(P_PID, static_cast<id_t>(finished), &info,
                             WEXITED | WNOHANG | WNOWAIT) == 0 &&
                    info.si_pid == finished) {
                    return true;
                }
                std::this_thread::sleep_for(milliseconds(5));
            }
            return false;
        }());
    }
    EXPECT_TRUE(Reaped(finished));
}

TEST(ChildProcess, AChildReapedBehindItsBackEndsWithAnUnknownStatus) {
    // A stray waitpid() elsewhere in the process takes the child's status first.
    auto child = ChildProcess::Spawn(Sh("echo last; exit 0"));
    int status = 0;
    ASSERT_EQ(::waitpid(child.pid(), &status, 0), child.pid());
    EXPECT_EQ(ReadLineOrFail(child), "last");
    EXPECT_EQ(child.ReadLine().outcome, Outcome::kClosed);
    const WaitResult result = child.Wait();
    EXPECT_EQ(result.outcome, Outcome::kDone);
    EXPECT_EQ(result.status.Describe(), "ended with an unknown status");
    EXPECT_FALSE(child.Running());
}

TEST(ChildProcess, MovingKeepsOneOwner) {
    auto a = ChildProcess::Spawn(Sh("exit 4"));
    const pid_t pid = a.pid();
    ChildProcess b = std::move(a);
    EXPECT_EQ(b.pid(), pid);
    EXPECT_EQ(b.Wait().status.code, 4);
    auto c = ChildProcess::Spawn(Sh("exec sleep 1000"));
    const pid_t replaced = c.pid();
    c = std::move(b);  // the sleeping child is killed and reaped
    EXPECT_TRUE(Reaped(replaced));
}

TEST(ChildProcess, SpeaksLinesOverStdinAndStdout) {
    auto options = Sh("while read line; do echo \"got $line\"; done; echo bye; printf tail");
    options.stdin_mode = Stdio::Pipe();
    auto child = ChildProcess::Spawn(options);
    const StopWhen stop{.cancelled = {}, .deadline = Clock::now() + seconds(30)};
    ASSERT_EQ(child.Write("{\"a\":1}\n", stop), Outcome::kDone);
    EXPECT_EQ(ReadLineOrFail(child), "got {\"a\":1}");
    ASSERT_EQ(child.Write("two\nthree\n", stop), Outcome::kDone);
    EXPECT_EQ(ReadLineOrFail(child), "got two");
    EXPECT_EQ(ReadLineOrFail(child), "got three");
    child.CloseStdin();
    EXPECT_EQ(ReadLineOrFail(child), "bye");
    EXPECT_EQ(ReadLineOrFail(child), "tail");  // the last line, without '\n'
    EXPECT_EQ(child.ReadLine(stop).outcome, Outcome::kClosed);
    EXPECT_TRUE(child.Wait().status.Success());
}

TEST(ChildProcess, ReadLineTimesOutAndCancelsWithoutKilling) {
    auto child = ChildProcess::Spawn(Sh("exec sleep 1000"));
    auto line = child.ReadLine({.cancelled = {}, .deadline = Clock::now() + milliseconds(100)});
    EXPECT_EQ(line.outcome, Outcome::kTimedOut);
    EXPECT_TRUE(child.Running());
    int calls = 0;
    line = child.ReadLine({.cancelled = [&] { return ++calls >= 3; }});
    EXPECT_EQ(line.outcome, Outcome::kCancelled);
    EXPECT_TRUE(child.Running());
    EXPECT_FALSE(child.TryWait().has_value());
}

TEST(ChildProcess, ALineOverTheLimitIsAnError) {
    auto options = Sh("head -c 5000 /dev/zero; exec sleep 1000");
    options.max_line = 1000;
    options.name = "worker";
    auto child = ChildProcess::Spawn(options);
    try {
        child.ReadLine({.cancelled = {}, .deadline = Clock::now() + seconds(30)});
        FAIL() << "expected an error";
    } catch (const Error& e) {
        EXPECT_STREQ(e.what(), "'worker': wrote a line longer than 1000 bytes");
    }
}

TEST(ChildProcess, WritingToAChildThatClosedStdinIsClosedNotSigpipe) {
    auto options = Sh("exec 0<&-; echo ready; exec sleep 1000");
    options.stdin_mode = Stdio::Pipe();
    auto child = ChildProcess::Spawn(options);
    ASSERT_EQ(ReadLineOrFail(child), "ready");
    // Without SIGPIPE handling this write would kill the test binary.
    EXPECT_EQ(child.Write(std::string(1 << 20, 'x')), Outcome::kClosed);
    EXPECT_TRUE(child.Running());
}

TEST(ChildProcess, WritingToAnExitedChildIsClosed) {
    auto options = Sh("exit 0");
    options.stdin_mode = Stdio::Pipe();
    auto child = ChildProcess::Spawn(options);
    EXPECT_EQ(child.Write(std::string(1 << 20, 'x')), Outcome::kClosed);
    EXPECT_TRUE(child.Wait().status.Success());
}

TEST(ChildProcess, StreamsGoToFilesNullOrTheSameFile) {
    const fs::path dir = TempDir();
    auto options = Sh("echo one; echo two >&2; cat");
    options.stdin_mode = Stdio::Null();
    options.stdout_mode = Stdio::File(dir / "log");
    options.stderr_mode = Stdio::SameAsStdout();
    EXPECT_TRUE(ChildProcess::Spawn(options).Wait().status.Success());
    EXPECT_EQ(ReadFile(dir / "log"), "one\ntwo\n");
    options.stdout_mode = Stdio::File(dir / "log", /*append=*/true);
    EXPECT_TRUE(ChildProcess::Spawn(options).Wait().status.Success());
    EXPECT_EQ(ReadFile(dir / "log"), "one\ntwo\none\ntwo\n");
    options.stdout_mode = Stdio::File(dir / "no-such-dir" / "log");
    EXPECT_THROW(ChildProcess::Spawn(options), Error);
    fs::remove_all(dir);
}

TEST(ChildProcess, TheChildGetsNoStrayDescriptors) {
    const int stray = ::open("/dev/null", O_RDONLY);  // no O_CLOEXEC, like a careless library
    ASSERT_GE(stray, 3);
    const std::string fd = std::to_string(stray);
    auto child = ChildProcess::Spawn(
        Sh("if [ -e /proc/self/fd/" + fd + " ]; then echo open; else echo closed; fi"));
    EXPECT_TRUE(child.Wait().status.Success());
    EXPECT_EQ(child.stdout_capture().text, "closed\n");
    ::close(stray);
}

TEST(ChildProcess, TheParentsIgnoredOrBlockedSignalsDoNotCarryOver) {
    // songd ignores SIGPIPE; a worker thread may block signals. Neither may reach the child.
    struct sigaction ignore {
    }, old_action{};
    ignore.sa_handler = SIG_IGN;
    ::sigaction(SIGTERM, &ignore, &old_action);
    sigset_t term, old_mask;
    sigemptyset(&term);
    sigaddset(&term, SIGTERM);
    ::pthread_sigmask(SIG_BLOCK, &term, &old_mask);
    auto child = ChildProcess::Spawn(Sh("exec sleep 1000"));
    ::pthread_sigmask(SIG_SETMASK, &old_mask, nullptr);
    ::sigaction(SIGTERM, &old_action, nullptr);
    EXPECT_EQ(child.Kill(seconds(30)).signal, SIGTERM);
}

TEST(ChildProcess, TryWaitReportsTheExitOnceItHappened) {
    auto child = ChildProcess::Spawn(Sh("exec sleep 1000"));
    EXPECT_FALSE(child.TryWait().has_value());
    child.Signal(SIGTERM);
    std::optional<ExitStatus> status;
    const auto deadline = Clock::now() + seconds(10);
    while (!status && Clock::now() < deadline) {
        status = child.TryWait();
        if (!status) std::this_thread::sleep_for(milliseconds(5));
    }
    ASSERT_TRUE(status.has_value());
    EXPECT_EQ(status->signal, SIGTERM);
    EXPECT_FALSE(child.Running());
}

TEST(ChildProcess, ReleaseHandsThePidToTheCaller) {
    ChildProcess::Options options = Sh("exit 5");
    options.new_process_group = false;
    pid_t pid = ChildProcess::Spawn(options).Release();
    ASSERT_GT(pid, 0);
    int status = 0;
    ASSERT_EQ(::waitpid(pid, &status, 0), pid);
    EXPECT_EQ(ExitStatus::FromWaitStatus(status).code, 5);
}

TEST(ChildProcess, ForkRunsAFunctionInTheChild) {
    ChildProcess::Options options;
    options.name = "worker function";
    auto child = ChildProcess::Fork(
        [] {
            const char text[] = "from the child\n";
            return ::write(1, text, sizeof text - 1) == sizeof text - 1 ? 7 : 1;
        },
        options);
    EXPECT_EQ(child.Wait().status.code, 7);
    EXPECT_EQ(child.stdout_capture().text, "from the child\n");

    auto thrower = ChildProcess::Fork([]() -> int { throw std::runtime_error("no"); }, options);
    EXPECT_EQ(thrower.Wait().status.code, 70);

    options.working_dir = "/nonexistent-dir";
    EXPECT_THROW(ChildProcess::Fork([] { return 0; }, options), Error);
}

}  // namespace
}  // namespace songd::core
