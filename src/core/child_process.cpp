#include "core/child_process.h"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <utility>

#include "core/text.h"
#include "core/unique_fd.h"

extern char** environ;

namespace songd::core {
namespace {

using Clock = std::chrono::steady_clock;

// How often a wait looks at its cancel predicate; without a pidfd, also how often it looks
// for the child's exit.
constexpr int kPollMs = 50;
constexpr int kPollMsWithoutPidfd = 10;
constexpr size_t kChunk = 64 * 1024;
// A forked body that throws exits with this (EX_SOFTWARE).
constexpr int kBodyThrew = 70;

// What the child reports through the close-on-exec pipe when it cannot start.
enum Stage : int { kStageStreams = 1, kStageWorkingDir = 2, kStageExec = 3 };

std::string ErrnoText(int err) { return std::strerror(err); }

/// Moves `fd` to a number above 2, so the child's dup2 onto 0, 1 and 2 never clobbers it.
int AboveStdio(int fd) {
    if (fd < 0 || fd > 2) return fd;
    const int moved = ::fcntl(fd, F_DUPFD_CLOEXEC, 3);
    ::close(fd);
    return moved;
}

/// argv[0] found in `path_var`, as execvp would; "" (and `err`) when there is none.
std::string FindProgram(const std::string& name, const std::string& path_var,
                        const std::filesystem::path& working_dir, int& err) {
    if (name.find('/') != std::string::npos) return name;
    err = ENOENT;
    size_t start = 0;
    while (start <= path_var.size()) {
        size_t end = path_var.find(':', start);
        if (end == std::string::npos) end = path_var.size();
        std::string dir = path_var.substr(start, end - start);
        start = end + 1;
        if (dir.empty()) dir = ".";
        const std::string candidate = dir + "/" + name;
        // A relative PATH entry is relative to the directory the child will run in.
        const std::filesystem::path check = dir[0] == '/' || working_dir.empty()
                                                ? std::filesystem::path(candidate)
                                                : working_dir / candidate;
        struct stat st {};
        if (::stat(check.c_str(), &st) != 0 || !S_ISREG(st.st_mode)) continue;
        if (::access(check.c_str(), X_OK) == 0) return candidate;
        err = EACCES;
    }
    return "";
}

/// Everything the child uses, made before fork: plain values and pointers only.
struct ChildPlan {
    int in_fd = -1, out_fd = -1, err_fd = -1;  // dup2'd onto 0, 1, 2 (-1: inherited)
    bool err_to_out = false;
    int report_fd = -1;
    bool new_group = true;
    const char* working_dir = nullptr;
    const char* program = nullptr;
    char* const* argv = nullptr;
    char* const* envp = nullptr;
    const std::function<int()>* body = nullptr;
    int fd_limit = 1024;
};

void Report(int fd, int stage, int err) {
    const int message[2] = {stage, err};
    [[maybe_unused]] ssize_t n = ::write(fd, message, sizeof message);
}

/// Closes (or marks close-on-exec) every descriptor from `first` on.
void CloseFrom(int first, int limit, bool on_exec) {
    if (::close_range(first, ~0U, on_exec ? CLOSE_RANGE_CLOEXEC : 0) == 0) return;
    for (int fd = first; fd < limit; ++fd) {
        if (on_exec) {
            ::fcntl(fd, F_SETFD, FD_CLOEXEC);
        } else {
            ::close(fd);
        }
    }
}

// Between fork and exec: async-signal-safe calls only (the parent may have other threads
// holding locks the child would wait on forever).
[[noreturn]] void RunChild(const ChildPlan& plan) {
    if (plan.new_group) ::setpgid(0, 0);
    // The parent's handlers mean nothing here, and a signal it ignores (SIGPIPE, say) must
    // not stay ignored in a program that expects the default.
    struct sigaction default_action {};
    default_action.sa_handler = SIG_DFL;
    sigemptyset(&default_action.sa_mask);
    for (int sig = 1; sig < NSIG; ++sig) {
        if (sig != SIGKILL && sig != SIGSTOP) ::sigaction(sig, &default_action, nullptr);
    }
    if ((plan.in_fd >= 0 && ::dup2(plan.in_fd, 0) < 0) ||
        (plan.out_fd >= 0 && ::dup2(plan.out_fd, 1) < 0) || (plan.err_to_out && ::dup2(1, 2) < 0) ||
        (!plan.err_to_out && plan.err_fd >= 0 && ::dup2(plan.err_fd, 2) < 0)) {
        Report(plan.report_fd, kStageStreams, errno);
        ::_exit(127);
    }
    if (plan.working_dir != nullptr && ::chdir(plan.working_dir) != 0) {
        Report(plan.report_fd, kStageWorkingDir, errno);
        ::_exit(127);
    }
    sigset_t none;
    sigemptyset(&none);
    ::sigprocmask(SIG_SETMASK, &none, nullptr);
    if (plan.body != nullptr) {
        CloseFrom(3, plan.fd_limit, false);  // the report pipe too: the parent sees "started"
        int code = kBodyThrew;
        try {
            code = (*plan.body)();
        } catch (...) {
            // An exception must never unwind into the parent's code in the child.
        }
        ::_exit(code);
    }
    CloseFrom(3, plan.fd_limit, true);  // nothing the child did not ask for survives exec
    ::execve(plan.program, plan.argv, plan.envp);
    Report(plan.report_fd, kStageExec, errno);
    ::_exit(127);
}

void Keep(Capture& capture, std::string_view data, size_t limit) {
    capture.text.append(data);
    if (capture.text.size() > limit) {
        const size_t drop = capture.text.size() - limit;
        capture.text.erase(0, drop);
        capture.dropped += drop;
    }
}

}  // namespace

// ---- ExitStatus ----

ExitStatus ExitStatus::FromWaitStatus(int status) {
    ExitStatus result;
    if (WIFEXITED(status)) {
        result.code = WEXITSTATUS(status);
    } else if (WIFSIGNALED(status)) {
        result.code = -1;
        result.signal = WTERMSIG(status);
    } else {
        result.code = -1;
    }
    return result;
}

std::string ExitStatus::Describe() const {
    if (signal != 0) {
        const char* abbrev = ::sigabbrev_np(signal);
        return "killed by signal " + std::to_string(signal) +
               (abbrev != nullptr ? std::string(" (SIG") + abbrev + ")" : "");
    }
    if (code < 0) return "ended with an unknown status";
    return "exited with code " + std::to_string(code);
}

// ---- State ----

struct ChildProcess::State {
    std::string name;
    ErrorCode error_code = ErrorCode::kInternal;
    std::chrono::milliseconds kill_grace{0};
    size_t stdout_limit = 0, stderr_limit = 0, max_line = 0;
    bool own_group = true;
    bool stdin_piped = false, stdout_piped = false;

    pid_t pid = -1;
    UniqueFd pidfd, in, out, err;
    bool exited = false;  // seen with WNOWAIT: a zombie still holding its pid and group
    bool reaped = false;
    bool lost = false;  // reaped by someone else
    ExitStatus status;
    Capture out_capture, err_capture;
    std::string lines;  // stdout read for ReadLine (or while writing), not yet returned
    bool to_lines = false;
    const std::function<void(std::string_view)>* sink = nullptr;
    std::string chunk;

    [[noreturn]] void Fail(const std::string& what) const {
        throw Error(error_code, "'" + name + "': " + what);
    }

    void OnStdout(std::string_view data) {
        if (to_lines) {
            lines.append(data);
            if (lines.size() > max_line) {
                Fail(lines.find('\n') == std::string::npos
                         ? "wrote a line longer than " + std::to_string(max_line) + " bytes"
                         : "wrote more than " + std::to_string(max_line) + " bytes not read");
            }
        } else if (sink != nullptr && *sink) {
            (*sink)(data);
        } else {
            Keep(out_capture, data, stdout_limit);
        }
    }

    /// One read from a pipe; false when nothing more came now (EAGAIN) or ever (EOF).
    bool ReadSome(UniqueFd& fd, bool is_stdout) {
        chunk.resize(kChunk);
        const ssize_t n = ::read(fd.get(), chunk.data(), chunk.size());
        if (n > 0) {
            const std::string_view data(chunk.data(), static_cast<size_t>(n));
            if (is_stdout) {
                OnStdout(data);
            } else {
                Keep(err_capture, data, stderr_limit);
            }
            return true;
        }
        if (n < 0 && errno == EINTR) return true;
        if (n == 0 || errno != EAGAIN) fd.Reset();  // end of file, or a broken pipe
        return false;
    }

    void CheckExited() {
        if (exited || reaped) return;
        siginfo_t info{};
        if (::waitid(P_PID, static_cast<id_t>(pid), &info, WEXITED | WNOHANG | WNOWAIT) == 0) {
            if (info.si_pid == pid) exited = true;
        } else if (errno == ECHILD) {
            // Someone else reaped it (a waitpid(-1) elsewhere): gone, status unknown, and
            // its pid (and group id) may already be another process's.
            exited = lost = true;
        }
    }

    int PollTimeout(std::optional<Clock::time_point> deadline) const {
        int timeout = pidfd ? kPollMs : kPollMsWithoutPidfd;
        if (deadline) {
            const auto left =
                std::chrono::ceil<std::chrono::milliseconds>(*deadline - Clock::now()).count();
            timeout = static_cast<int>(std::clamp<int64_t>(left, 0, timeout));
        }
        return timeout;
    }

    /// Waits up to `timeout_ms` for output, the exit or `extra_fd`; reads what came.
    /// Returns the events seen on `extra_fd`.
    short Poll(int timeout_ms, int extra_fd = -1, short extra_events = 0) {
        pollfd fds[4];
        int count = 0, out_at = -1, err_at = -1, pid_at = -1, extra_at = -1;
        auto add = [&](int fd, short events, int& at) {
            at = count;
            fds[count++] = pollfd{fd, events, 0};
        };
        if (out) add(out.get(), POLLIN, out_at);
        if (err) add(err.get(), POLLIN, err_at);
        if (pidfd && !exited) add(pidfd.get(), POLLIN, pid_at);
        if (extra_fd >= 0) add(extra_fd, extra_events, extra_at);
        const int ready = ::poll(fds, static_cast<nfds_t>(count), timeout_ms);
        if (ready < 0 && errno != EINTR) Fail("poll failed: " + ErrnoText(errno));
        if (ready <= 0) return 0;
        if (out_at >= 0 && fds[out_at].revents != 0) ReadSome(out, true);
        if (err_at >= 0 && fds[err_at].revents != 0) ReadSome(err, false);
        if (pid_at >= 0 && fds[pid_at].revents != 0) CheckExited();
        return extra_at >= 0 ? fds[extra_at].revents : 0;
    }

    /// Reads what the pipes hold now, without waiting (bounded: a writer outside the group
    /// could go on forever).
    void Drain() {
        for (int i = 0; i < 1024 && out && ReadSome(out, true); ++i) {
        }
        for (int i = 0; i < 1024 && err && ReadSome(err, false); ++i) {
        }
    }

    /// The leader has exited: kill what it left in its group, read the rest, reap.
    void Finish() {
        if (reaped) return;
        if (own_group && !lost) ::kill(-pid, SIGKILL);  // the zombie leader keeps the id ours
        Drain();
        int wait_status = 0;
        pid_t got = -1;
        while (!lost && (got = ::waitpid(pid, &wait_status, 0)) < 0 && errno == EINTR) {
        }
        status = got == pid ? ExitStatus::FromWaitStatus(wait_status) : ExitStatus{-1, 0};
        reaped = true;
        pidfd.Reset();
        in.Reset();
        out.Reset();
        err.Reset();
    }

    void Signal(int sig) const {
        if (pid > 0 && !reaped && !lost) ::kill(own_group ? -pid : pid, sig);
    }

    /// Waits for the leader's exit until `deadline` (none: for ever), draining output.
    void AwaitExit(std::optional<Clock::time_point> deadline) {
        while (true) {
            CheckExited();
            if (exited) return;
            if (deadline && Clock::now() >= *deadline) return;
            Poll(PollTimeout(deadline));
        }
    }

    ExitStatus Kill(std::chrono::milliseconds grace) {
        if (reaped) return status;
        CheckExited();
        if (!exited && grace.count() > 0) {
            Signal(SIGTERM);
            AwaitExit(Clock::now() + grace);
        }
        if (!exited) {
            Signal(SIGKILL);
            AwaitExit(std::nullopt);
        }
        Finish();
        return status;
    }

    std::optional<Outcome> Stopped(const StopWhen& stop) const {
        if (stop.cancelled && stop.cancelled()) return Outcome::kCancelled;
        if (stop.deadline && Clock::now() >= *stop.deadline) return Outcome::kTimedOut;
        return std::nullopt;
    }

    /// write() without dying of SIGPIPE when the child has gone: the signal is blocked in
    /// this thread and, if the write raised it, consumed.
    ssize_t WriteNoSigpipe(const char* data, size_t size) {
        sigset_t pipe_set, old_set, pending;
        sigemptyset(&pipe_set);
        sigaddset(&pipe_set, SIGPIPE);
        ::pthread_sigmask(SIG_BLOCK, &pipe_set, &old_set);
        sigpending(&pending);
        const bool was_pending = sigismember(&pending, SIGPIPE) == 1;
        const ssize_t n = ::write(in.get(), data, size);
        const int write_errno = errno;
        if (n < 0 && write_errno == EPIPE && !was_pending) {
            const timespec zero{};
            while (::sigtimedwait(&pipe_set, nullptr, &zero) < 0 && errno == EINTR) {
            }
        }
        ::pthread_sigmask(SIG_SETMASK, &old_set, nullptr);
        errno = write_errno;
        return n;
    }
};

namespace {

/// Sets a flag for the duration of a call.
class FlagScope {
  public:
    FlagScope(bool& flag, bool value) : flag_(flag), old_(std::exchange(flag, value)) {}
    ~FlagScope() { flag_ = old_; }
    FlagScope(const FlagScope&) = delete;
    FlagScope& operator=(const FlagScope&) = delete;

  private:
    bool& flag_;
    bool old_;
};

}  // namespace

// ---- starting ----

ChildProcess::ChildProcess(std::unique_ptr<State> state) : state_(std::move(state)) {}

ChildProcess ChildProcess::Spawn(const Options& options) { return Start(options, nullptr); }

ChildProcess ChildProcess::Fork(const std::function<int()>& body, const Options& options) {
    if (!body) throw Error(options.error_code, "ChildProcess::Fork needs a function to run");
    return Start(options, &body);
}

ChildProcess ChildProcess::Start(const Options& options, const std::function<int()>* body) {
    auto state = std::make_unique<State>();
    State& s = *state;
    s.name = !options.name.empty()      ? options.name
             : !options.program.empty() ? options.program
             : !options.argv.empty()    ? options.argv[0]
                                        : std::string("child process");
    s.error_code = options.error_code;
    s.kill_grace = options.kill_grace;
    s.stdout_limit = options.stdout_limit;
    s.stderr_limit = options.stderr_limit;
    s.max_line = options.max_line;
    s.own_group = options.new_process_group;
    auto fail = [&](const std::string& why) -> Error {
        return Error(options.error_code, "cannot start '" + s.name + "': " + why);
    };

    // The program, its arguments and its environment.
    std::string program;
    std::vector<std::string> env_strings;
    std::vector<char*> argv, envp;
    if (body == nullptr) {
        if (options.argv.empty() || options.argv[0].empty()) throw fail("no program given");
        std::string path_var = "/usr/local/bin:/usr/bin:/bin";
        if (auto it = options.env.find("PATH"); it != options.env.end()) {
            path_var = it->second;
        } else if (const char* parent_path = std::getenv("PATH");
                   options.inherit_env && parent_path != nullptr) {
            path_var = parent_path;
        }
        int err = 0;
        const std::string& file = options.program.empty() ? options.argv[0] : options.program;
        program = FindProgram(file, path_var, options.working_dir, err);
        if (program.empty()) throw fail(ErrnoText(err));
        for (const auto& arg : options.argv) argv.push_back(const_cast<char*>(arg.c_str()));
        argv.push_back(nullptr);
        if (options.inherit_env) {
            for (char** e = environ; e != nullptr && *e != nullptr; ++e) {
                const std::string_view entry(*e);
                if (options.env.count(std::string(entry.substr(0, entry.find('=')))) == 0) {
                    env_strings.emplace_back(entry);
                }
            }
        }
        for (const auto& [key, value] : options.env) {
            if (key.empty() || key.find('=') != std::string::npos) {
                throw fail("bad environment variable name '" + key + "'");
            }
            env_strings.push_back(key + "=" + value);
        }
        for (auto& entry : env_strings) envp.push_back(entry.data());
        envp.push_back(nullptr);
    } else if (!options.env.empty() || !options.inherit_env) {
        throw fail("a forked function keeps the parent's environment");
    }

    // The standard streams: the child's ends (dup2'd onto 0, 1, 2) and the parent's.
    auto open_stream = [&](const Stdio& mode, int target, UniqueFd& parent_end) {
        UniqueFd child_end;
        switch (mode.kind) {
            case Stdio::Kind::kInherit:
                break;
            case Stdio::Kind::kNull:
                child_end.Reset(
                    ::open("/dev/null", (target == 0 ? O_RDONLY : O_WRONLY) | O_CLOEXEC));
                if (!child_end) throw fail("cannot open /dev/null: " + ErrnoText(errno));
                break;
            case Stdio::Kind::kPipe: {
                int fds[2];
                if (::pipe2(fds, O_CLOEXEC) != 0)
                    throw fail("cannot make a pipe: " + ErrnoText(errno));
                const int read_end = AboveStdio(fds[0]), write_end = AboveStdio(fds[1]);
                child_end.Reset(target == 0 ? read_end : write_end);
                parent_end.Reset(target == 0 ? write_end : read_end);
                if (!child_end || !parent_end)
                    throw fail("cannot make a pipe: " + ErrnoText(errno));
                ::fcntl(parent_end.get(), F_SETFL, O_NONBLOCK);
                break;
            }
            case Stdio::Kind::kFile: {
                const int flags = target == 0
                                      ? O_RDONLY
                                      : O_WRONLY | O_CREAT | (mode.append ? O_APPEND : O_TRUNC);
                child_end.Reset(::open(mode.file.c_str(), flags | O_CLOEXEC, 0644));
                if (!child_end) {
                    throw fail("cannot open '" + mode.file.string() + "': " + ErrnoText(errno));
                }
                break;
            }
            case Stdio::Kind::kStdout:
                if (target != 2) throw fail("only stderr can go where stdout goes");
                break;
        }
        child_end.Reset(AboveStdio(child_end.Release()));
        return child_end;
    };
    UniqueFd child_in = open_stream(options.stdin_mode, 0, s.in);
    UniqueFd child_out = open_stream(options.stdout_mode, 1, s.out);
    UniqueFd child_err = open_stream(options.stderr_mode, 2, s.err);
    s.stdin_piped = options.stdin_mode.kind == Stdio::Kind::kPipe;
    s.stdout_piped = options.stdout_mode.kind == Stdio::Kind::kPipe;

    int report_fds[2];
    if (::pipe2(report_fds, O_CLOEXEC) != 0) throw fail("cannot make a pipe: " + ErrnoText(errno));
    UniqueFd report_read(AboveStdio(report_fds[0])), report_write(AboveStdio(report_fds[1]));

    const std::string working_dir = options.working_dir.string();
    rlimit files{};
    ChildPlan plan;
    plan.in_fd = child_in.get();
    plan.out_fd = child_out.get();
    plan.err_fd = child_err.get();
    plan.err_to_out = options.stderr_mode.kind == Stdio::Kind::kStdout;
    plan.report_fd = report_write.get();
    plan.new_group = options.new_process_group;
    plan.working_dir = working_dir.empty() ? nullptr : working_dir.c_str();
    plan.program = program.c_str();
    plan.argv = argv.data();
    plan.envp = envp.data();
    plan.body = body;
    if (::getrlimit(RLIMIT_NOFILE, &files) == 0) {
        plan.fd_limit = static_cast<int>(std::min<rlim_t>(files.rlim_cur, 1u << 16));
    }

    // Signals stay blocked across fork, so none reaches a parent's handler in the child
    // before it resets them.
    sigset_t all, old_mask;
    sigfillset(&all);
    ::pthread_sigmask(SIG_SETMASK, &all, &old_mask);
    const pid_t pid = ::fork();
    const int fork_errno = errno;
    if (pid == 0) RunChild(plan);
    ::pthread_sigmask(SIG_SETMASK, &old_mask, nullptr);
    if (pid < 0) throw fail(ErrnoText(fork_errno));

    // Also here, so the group exists before Spawn returns (EACCES: the child already exec'd).
    if (options.new_process_group) ::setpgid(pid, pid);
    s.pid = pid;
    report_write.Reset();
    child_in.Reset();
    child_out.Reset();
    child_err.Reset();

    int message[2] = {0, 0};
    ssize_t got;
    while ((got = ::read(report_read.get(), message, sizeof message)) < 0 && errno == EINTR) {
    }
    if (got > 0) {
        int wait_status = 0;
        while (::waitpid(pid, &wait_status, 0) < 0 && errno == EINTR) {
        }
        const std::string reason = ErrnoText(message[1]);
        if (message[0] == kStageWorkingDir) {
            throw fail("cannot enter the working directory '" + working_dir + "': " + reason);
        }
        if (message[0] == kStageStreams)
            throw fail("cannot set up its standard streams: " + reason);
        throw fail(reason);
    }
    // glibc 2.36's <sys/pidfd.h> lacks extern "C", hence the raw system call. -1 on kernels
    // before 5.3: waits then look for the exit more often.
    s.pidfd.Reset(static_cast<int>(::syscall(SYS_pidfd_open, pid, 0)));
    return ChildProcess(std::move(state));
}

// ---- lifetime ----

ChildProcess::ChildProcess(ChildProcess&&) noexcept = default;

ChildProcess& ChildProcess::operator=(ChildProcess&& other) noexcept {
    if (this != &other) {
        ChildProcess old(std::move(*this));
        state_ = std::move(other.state_);
    }
    return *this;
}

ChildProcess::~ChildProcess() {
    if (!state_ || state_->reaped || state_->pid <= 0) return;
    try {
        state_->sink = nullptr;
        state_->Kill(state_->kill_grace);
    } catch (...) {
        state_->Signal(SIGKILL);
        int status = 0;
        while (::waitpid(state_->pid, &status, 0) < 0 && errno == EINTR) {
        }
    }
}

pid_t ChildProcess::pid() const { return state_ ? state_->pid : -1; }

bool ChildProcess::Running() const { return state_ && !state_->reaped; }

pid_t ChildProcess::Release() {
    if (!state_) return -1;
    auto state = std::move(state_);
    return state->reaped ? -1 : state->pid;
}

// ---- I/O and waiting ----

Outcome ChildProcess::Write(std::string_view data, const StopWhen& stop) {
    State& s = *state_;
    if (!s.stdin_piped) s.Fail("stdin is not a pipe");
    FlagScope lines(s.to_lines, true);
    size_t written = 0;
    while (written < data.size()) {
        if (!s.in) return Outcome::kClosed;
        s.CheckExited();
        if (s.exited) {
            s.Finish();
            return Outcome::kClosed;
        }
        if (auto stopped = s.Stopped(stop)) return *stopped;
        const short events = s.Poll(s.PollTimeout(stop.deadline), s.in.get(), POLLOUT);
        if (events == 0) continue;
        const ssize_t n = s.WriteNoSigpipe(data.data() + written, data.size() - written);
        if (n > 0) {
            written += static_cast<size_t>(n);
        } else if (n < 0 && errno != EAGAIN && errno != EINTR) {
            s.in.Reset();  // EPIPE: the child closed its stdin or exited
            return Outcome::kClosed;
        }
    }
    return Outcome::kDone;
}

void ChildProcess::CloseStdin() {
    if (state_) state_->in.Reset();
}

LineResult ChildProcess::ReadLine(const StopWhen& stop) {
    State& s = *state_;
    if (!s.stdout_piped) s.Fail("stdout is not a pipe");
    FlagScope lines(s.to_lines, true);
    while (true) {
        if (const size_t end = s.lines.find('\n'); end != std::string::npos) {
            LineResult result{Outcome::kDone, s.lines.substr(0, end)};
            s.lines.erase(0, end + 1);
            return result;
        }
        if (!s.out) {  // end of file: a last line without '\n', then kClosed
            if (s.lines.empty()) return {Outcome::kClosed, {}};
            return {Outcome::kDone, std::exchange(s.lines, {})};
        }
        s.CheckExited();
        if (s.exited) {
            s.Finish();  // reads what is left, then closes stdout
            continue;
        }
        if (auto stopped = s.Stopped(stop)) return {*stopped, {}};
        s.Poll(s.PollTimeout(stop.deadline));
    }
}

WaitResult ChildProcess::Wait(const StopWhen& stop,
                              const std::function<void(std::string_view)>& on_stdout) {
    State& s = *state_;
    s.sink = &on_stdout;
    struct ClearSink {
        State& s;
        ~ClearSink() { s.sink = nullptr; }
    } clear{s};
    if (!s.lines.empty()) s.OnStdout(std::exchange(s.lines, {}));
    while (true) {
        if (s.reaped) return {Outcome::kDone, s.status};
        s.CheckExited();
        if (s.exited) {
            s.Finish();
            return {Outcome::kDone, s.status};
        }
        if (auto stopped = s.Stopped(stop)) {
            s.Kill(s.kill_grace);
            return {*stopped, s.status};
        }
        s.Poll(s.PollTimeout(stop.deadline));
    }
}

std::optional<ExitStatus> ChildProcess::TryWait() {
    if (!state_) return std::nullopt;
    State& s = *state_;
    if (!s.reaped) {
        s.Poll(0);
        s.CheckExited();
        if (!s.exited) return std::nullopt;
        s.Finish();
    }
    return s.status;
}

void ChildProcess::Signal(int signal) {
    if (state_) state_->Signal(signal);
}

ExitStatus ChildProcess::Kill(std::optional<std::chrono::milliseconds> grace) {
    if (!state_) return ExitStatus{-1, 0};
    return state_->Kill(grace.value_or(state_->kill_grace));
}

const Capture& ChildProcess::stdout_capture() const {
    static const Capture kEmpty;
    return state_ ? state_->out_capture : kEmpty;
}

const Capture& ChildProcess::stderr_capture() const {
    static const Capture kEmpty;
    return state_ ? state_->err_capture : kEmpty;
}

std::string ChildProcess::StderrTail(size_t max_bytes) const {
    const Capture& capture = stderr_capture();
    std::string_view text = Trim(capture.text);
    const bool cut = text.size() > max_bytes || capture.dropped > 0;
    if (text.size() > max_bytes) text = text.substr(text.size() - max_bytes);
    return text.empty() ? std::string() : (cut ? "..." : "") + std::string(text);
}

}  // namespace songd::core
