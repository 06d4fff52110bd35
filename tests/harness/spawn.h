#pragma once
/// @file
/// SpawnSongd: starts the real `songd` binary (SONGD_BINARY) as a child, the one way every
/// test and benchmark does it — in a given folder, stdin from /dev/null, stdout and stderr
/// to a log file, and a clean environment (only what the caller sets, plus PATH, HOME and
/// LANG), so a developer's own SONGD settings never leak into a test.
///
///   pid_t pid = test::SpawnSongd(dir, {"cleanup", "--dry-run"}, env, dir / "run.log");
///   int status = 0;
///   ::waitpid(pid, &status, 0);
///
/// Header-only so benchmarks can use it without the gtest-based harness library.

#include <fcntl.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <map>
#include <string>
#include <vector>

namespace songd::test {

enum class LogMode { kTruncate, kAppend };

/// Forks and execs `songd args...`; returns the child's pid (-1 when fork failed). A child
/// that cannot exec exits with 127.
inline pid_t SpawnSongd(const std::filesystem::path& dir, const std::vector<std::string>& args,
                        const std::map<std::string, std::string>& env,
                        const std::filesystem::path& log, LogMode mode = LogMode::kTruncate) {
    // Everything the child needs is built before fork: only async-signal-safe calls after.
    std::vector<std::string> env_strings;
    for (const char* keep : {"PATH", "HOME", "LANG"}) {
        if (const char* v = std::getenv(keep)) env_strings.push_back(std::string(keep) + "=" + v);
    }
    for (const auto& [k, v] : env) env_strings.push_back(k + "=" + v);
    std::vector<char*> envp;
    for (auto& s : env_strings) envp.push_back(s.data());
    envp.push_back(nullptr);
    std::vector<std::string> argv_strings = {"songd"};
    argv_strings.insert(argv_strings.end(), args.begin(), args.end());
    std::vector<char*> argv;
    for (auto& s : argv_strings) argv.push_back(s.data());
    argv.push_back(nullptr);
    const int flags = O_WRONLY | O_CREAT | (mode == LogMode::kAppend ? O_APPEND : O_TRUNC);

    pid_t pid = ::fork();
    if (pid == 0) {
        if (::chdir(dir.c_str()) != 0) ::_exit(127);
        int fd = ::open(log.c_str(), flags, 0644);
        int devnull = ::open("/dev/null", O_RDONLY);
        if (fd < 0 || devnull < 0) ::_exit(127);
        ::dup2(fd, 1);
        ::dup2(fd, 2);
        ::dup2(devnull, 0);
        ::execve(SONGD_BINARY, argv.data(), envp.data());
        ::_exit(127);
    }
    return pid;
}

}  // namespace songd::test
