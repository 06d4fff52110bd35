#pragma once
/// @file
/// ChildProcess: one child process (a program, or a function run in a fork) in its own process
/// group, with its standard streams as pipes, files or /dev/null; waits that watch a cancel
/// predicate and a deadline while draining output; and a kill that takes the whole group.
///
///   core::ChildProcess::Options options;
///   options.argv = {"python3", "infer/infer.py", "--worker"};
///   options.working_dir = "/opt/DiffRhythm";
///   options.env = {{"PYTHONUNBUFFERED", "1"}};
///   options.stdin_mode = core::Stdio::Pipe();
///   auto child = core::ChildProcess::Spawn(options);  // "cannot start 'python3': No such ..."
///   core::StopWhen stop{.cancelled = [&] { return token.Cancelled(); },
///                       .deadline = Clock::now() + std::chrono::seconds(30)};
///   if (child.Write("{\"job\":1}\n", stop) != core::Outcome::kDone) ...;
///   core::LineResult reply = child.ReadLine(stop);  // one JSON line, or why there is none
///   child.Kill();                                   // SIGTERM to the group, grace, SIGKILL
///   core::WaitResult end = child.Wait(stop);        // end.status.Describe(): "exited with code 3"
///   child.stderr_capture().text;                    // the last 64 KiB written to stderr
///
/// Everything the child needs (argv, environment, file descriptors) is made before fork; only
/// async-signal-safe calls run between fork and exec. Every descriptor is close-on-exec, and
/// the child closes every descriptor it did not ask for. When the leader exits (or is killed),
/// whatever it left running in its process group is SIGKILLed before it is reaped; the
/// destructor kills and reaps a child still running, so no path leaves a zombie. One thread
/// uses a ChildProcess at a time; stop a wait from another thread through its cancel predicate.

#include <sys/types.h>

#include <chrono>
#include <cstdint>
#include <filesystem>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "core/error.h"

namespace songd::core {

/// @brief Where one of the child's standard streams goes.
struct Stdio {
    enum class Kind {
        kInherit,  ///< the parent's own stream
        kNull,     ///< /dev/null
        kPipe,     ///< a pipe to the parent (read with ReadLine/Wait, written with Write)
        kFile,     ///< a file (created 0644; truncated unless `append`)
        kStdout,   ///< stderr only: wherever stdout goes (2>&1)
    };
    Kind kind = Kind::kNull;
    std::filesystem::path file;
    bool append = false;

    static Stdio Inherit() { return {Kind::kInherit, {}, false}; }
    static Stdio Null() { return {Kind::kNull, {}, false}; }
    static Stdio Pipe() { return {Kind::kPipe, {}, false}; }
    static Stdio File(std::filesystem::path path, bool append = false) {
        return {Kind::kFile, std::move(path), append};
    }
    static Stdio SameAsStdout() { return {Kind::kStdout, {}, false}; }
};

/// @brief When a wait, read or write gives up: a cancel predicate (checked at least every
/// 50 ms) and an optional deadline.
struct StopWhen {
    std::function<bool()> cancelled;
    std::optional<std::chrono::steady_clock::time_point> deadline;
};

/// @brief How a wait, read or write ended.
enum class Outcome {
    kDone,       ///< the child exited (Wait), a line came (ReadLine), all was written (Write)
    kClosed,     ///< the child closed the stream (stdout EOF, stdin broken) or has exited
    kCancelled,  ///< the cancel predicate said so
    kTimedOut,   ///< the deadline passed
};

/// @brief How the child ended: an exit code, or the signal that killed it.
struct ExitStatus {
    int code = 0;    ///< exit code (0..255) when `signal` is 0
    int signal = 0;  ///< the signal that killed it, or 0

    bool Success() const { return signal == 0 && code == 0; }
    /// "exited with code 3", "killed by signal 9 (SIGKILL)".
    std::string Describe() const;
    /// Decodes a waitpid() status.
    static ExitStatus FromWaitStatus(int status);
};

/// @brief What Wait() returns. When cancelled or timed out, the child was killed first.
struct WaitResult {
    Outcome outcome = Outcome::kDone;
    ExitStatus status;
};

/// @brief What ReadLine() returns: a line (without its '\n') when `outcome` is kDone.
struct LineResult {
    Outcome outcome = Outcome::kDone;
    std::string line;
};

/// @brief The tail of a captured stream: at most the limit's last bytes, and how many
/// earlier bytes were dropped to stay within it.
struct Capture {
    std::string text;
    uint64_t dropped = 0;
};

/// @brief A child process and its process group; move-only, killed and reaped on destruction.
class ChildProcess {
  public:
    /// @brief How to start the child.
    struct Options {
        /// Spawn: the program and its arguments. argv[0] is looked up in PATH (the child's,
        /// when `env` sets it) unless it contains a '/'. Ignored by Fork.
        std::vector<std::string> argv;
        /// Spawn: the file to run when it is not argv[0] (which the program then sees as its
        /// name), looked up the same way.
        std::string program;
        /// Name in error messages; defaults to argv[0].
        std::string name;
        /// The child's working directory (empty: the parent's).
        std::filesystem::path working_dir;
        /// Variables added to, or replacing, the child's environment (Spawn only).
        std::map<std::string, std::string> env;
        /// Start from the parent's environment (false: only `env`).
        bool inherit_env = true;
        Stdio stdin_mode = Stdio::Null();
        Stdio stdout_mode = Stdio::Pipe();
        Stdio stderr_mode = Stdio::Pipe();
        /// Put the child in a new process group, so signals reach its descendants too.
        bool new_process_group = true;
        /// Time between SIGTERM and SIGKILL in Kill(), Wait()'s cancel and the destructor.
        std::chrono::milliseconds kill_grace{5000};
        /// Wait() keeps the last this many bytes of stdout (when it has no stdout callback).
        size_t stdout_limit = 16u << 20;
        /// The last this many bytes of stderr are kept.
        size_t stderr_limit = 64u << 10;
        /// Unread stdout (ReadLine's buffer) beyond this is an error: a line too long.
        size_t max_line = 16u << 20;
        /// The code of the core::Error this class throws.
        ErrorCode error_code = ErrorCode::kInternal;
    };

    /// Starts `options.argv`. Throws core::Error when it cannot start, e.g. "cannot start
    /// 'python3': No such file or directory" (a missing program, a bad working directory, an
    /// exec failure: never a silent exit code 127).
    static ChildProcess Spawn(const Options& options);

    /// Forks and runs `body` in the child, which exits with its return value (70 if it
    /// throws). For code that must run in a fresh process; the child of a threaded parent
    /// should stick to simple work. All descriptors but 0, 1 and 2 are closed in the child;
    /// `argv` and `env` are not used.
    static ChildProcess Fork(const std::function<int()>& body, const Options& options);

    ChildProcess(ChildProcess&&) noexcept;
    ChildProcess& operator=(ChildProcess&&) noexcept;
    ChildProcess(const ChildProcess&) = delete;
    ChildProcess& operator=(const ChildProcess&) = delete;
    /// Kills (with the grace period) and reaps the child when it is still running.
    ~ChildProcess();

    pid_t pid() const;
    /// False once the child was reaped (or Release()d).
    bool Running() const;

    /// Writes all of `data` to the child's stdin (a kPipe), reading its output meanwhile.
    /// kClosed when the child no longer reads stdin.
    Outcome Write(std::string_view data, const StopWhen& stop = {});
    /// Closes the child's stdin: it sees end of file.
    void CloseStdin();

    /// The next line of stdout (a kPipe), without its '\n'; kClosed at end of file, after any
    /// last unterminated line. Does not kill the child when cancelled or timed out.
    LineResult ReadLine(const StopWhen& stop = {});

    /// Waits for the child to exit, reading stdout and stderr meanwhile: stdout goes to
    /// `on_stdout` when given (it may throw; the child is then killed by the destructor),
    /// otherwise into stdout_capture(). When cancelled or past the deadline, Kill()s the child.
    WaitResult Wait(const StopWhen& stop = {},
                    const std::function<void(std::string_view)>& on_stdout = nullptr);

    /// The exit status if the child has exited (then it is reaped), without blocking.
    std::optional<ExitStatus> TryWait();

    /// Sends `signal` to the child's process group (to the child alone without one).
    void Signal(int signal);

    /// SIGTERM to the group; SIGKILL to what is left once the leader exited or `grace` passed
    /// (grace 0: SIGKILL at once); reaps the child. Returns how it ended.
    ExitStatus Kill(std::optional<std::chrono::milliseconds> grace = std::nullopt);

    /// Gives up ownership: returns the pid, which the caller must reap; the pipes close.
    pid_t Release();

    const Capture& stdout_capture() const;
    const Capture& stderr_capture() const;
    /// The end of stderr for an error message: its last `max_bytes`, trimmed, "" if none.
    std::string StderrTail(size_t max_bytes = 2000) const;

  private:
    struct State;
    explicit ChildProcess(std::unique_ptr<State> state);
    static ChildProcess Start(const Options& options, const std::function<int()>* body);

    std::unique_ptr<State> state_;
};

}  // namespace songd::core
