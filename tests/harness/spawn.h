#pragma once
/// @file
/// SpawnSongd: starts the real `songd` binary (SONGD_BINARY) as a child, the one way every
/// test and benchmark does it — in a given folder, stdin from /dev/null, stdout and stderr
/// to a log file, and a clean environment (only what the caller sets, plus PATH, HOME and
/// LANG), so a developer's own SONGD settings never leak into a test.
///
///   core::ChildProcess songd = test::StartSongd(dir, {"cleanup", "--dry-run"}, env, log);
///   core::ExitStatus status = songd.Wait().status;      // status.code, status.signal
///
///   pid_t pid = test::SpawnSongd(dir, {"cleanup"}, env, dir / "run.log");  // reap it yourself
///   ::waitpid(pid, &status, 0);
///
/// Header-only (on core::ChildProcess from songd_lib) so benchmarks can use it without the
/// gtest-based harness library. songd stays in the caller's process group, so an interrupted
/// test run (Ctrl-C) stops it too.

#include <sys/types.h>

#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <map>
#include <string>
#include <vector>

#include "core/child_process.h"

namespace songd::test {

enum class LogMode { kTruncate, kAppend };

/// Starts `songd args...`; throws core::Error when it cannot. A `launcher` (e.g.
/// {"/usr/bin/prlimit", "--nofile=128:128", "--"}) runs `launcher... SONGD_BINARY args...`
/// instead; it must exec songd in its own process.
inline core::ChildProcess StartSongd(const std::filesystem::path& dir,
                                     const std::vector<std::string>& args,
                                     const std::map<std::string, std::string>& env,
                                     const std::filesystem::path& log,
                                     LogMode mode = LogMode::kTruncate,
                                     const std::vector<std::string>& launcher = {}) {
    core::ChildProcess::Options options;
    if (launcher.empty()) {
        options.program = SONGD_BINARY;
        options.argv = {"songd"};
    } else {
        options.argv = launcher;
        options.argv.push_back(SONGD_BINARY);
    }
    options.argv.insert(options.argv.end(), args.begin(), args.end());
    options.name = "songd";
    options.working_dir = dir;
    options.inherit_env = false;
    for (const char* keep : {"PATH", "HOME", "LANG"}) {
        if (const char* value = std::getenv(keep)) options.env[keep] = value;
    }
    for (const auto& [key, value] : env) options.env[key] = value;
    options.stdin_mode = core::Stdio::Null();
    options.stdout_mode = core::Stdio::File(log, mode == LogMode::kAppend);
    options.stderr_mode = core::Stdio::SameAsStdout();
    options.new_process_group = false;
    return core::ChildProcess::Spawn(options);
}

/// Starts `songd args...` and hands its pid to the caller, who reaps it; -1 (and the reason
/// on stderr) when it cannot start.
inline pid_t SpawnSongd(const std::filesystem::path& dir, const std::vector<std::string>& args,
                        const std::map<std::string, std::string>& env,
                        const std::filesystem::path& log, LogMode mode = LogMode::kTruncate) {
    try {
        return StartSongd(dir, args, env, log, mode).Release();
    } catch (const std::exception& e) {
        std::fprintf(stderr, "SpawnSongd: %s\n", e.what());
        return -1;
    }
}

}  // namespace songd::test
