#pragma once
/// @file
/// SongdProcess: runs the real `songd serve` binary for a test, in its own temporary
/// folder, on a free loopback port, and stops it.
///
///   test::SongdProcess songd({{"ENGINE", "tone"}, {"WORKERS", "1"}});
///   songd.Start();                                   // waits for /healthz
///   auto r = test::Http("GET", songd.Url("/api/v1/queue"));
///   songd.Kill();                                    // SIGKILL, like a crash
///   songd.Start();                                   // same folder, same database

#include <chrono>
#include <filesystem>
#include <functional>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "core/child_process.h"

namespace songd::test {

using Env = std::map<std::string, std::string>;

/// @brief A songd server process owned by a test.
class SongdProcess {
  public:
    explicit SongdProcess(std::map<std::string, std::string> env = {});
    ~SongdProcess();

    /// Starts `songd serve` and waits until /healthz answers; fails the test otherwise.
    void Start();
    /// SIGTERM, then waits for the exit; returns the exit status (or -signal).
    int Stop();
    /// SIGKILL: no chance to clean up.
    void Kill();
    bool Running() const { return child_.has_value(); }

    std::string Url(const std::string& path) const;
    int port() const { return port_; }
    /// The server's process id (-1 when not running), e.g. to read /proc/<pid>/status.
    int pid() const { return child_ ? static_cast<int>(child_->pid()) : -1; }
    const std::filesystem::path& dir() const { return dir_; }
    std::filesystem::path output_dir() const { return dir_ / "output"; }
    /// Everything the server wrote to stderr, over every start.
    std::string Log() const;
    void SetEnv(const std::string& name, const std::string& value) { env_[name] = value; }
    /// Start() runs songd with this open-file limit, soft and hard (through prlimit), so it
    /// cannot raise it.
    void SetOpenFileLimit(int limit) {
        launcher_ = {"/usr/bin/prlimit",
                     "--nofile=" + std::to_string(limit) + ":" + std::to_string(limit), "--"};
    }

    /// Runs `songd` with arguments to completion in the same folder; returns exit code and
    /// stderr+stdout.
    std::pair<int, std::string> RunCommand(const std::vector<std::string>& args,
                                           const std::map<std::string, std::string>& env) const;

  private:
    std::map<std::string, std::string> env_;
    std::filesystem::path dir_;
    int port_ = 0;
    std::optional<core::ChildProcess> child_;
    std::vector<std::string> launcher_;  ///< runs songd: empty, or SetOpenFileLimit's prlimit
};

/// Polls `condition` every 20 ms until it holds or `timeout` passes; returns whether it held.
bool WaitFor(const std::function<bool()>& condition,
             std::chrono::milliseconds timeout = std::chrono::seconds(30));

/// A free TCP port on 127.0.0.1.
int FreePort();

/// The JSON body of a valid generate request.
std::string GenerateBody(int audio_length = 95, const std::string& extra = "");

/// Submits GenerateBody(audio_length); the job id, or "" (and a test failure) when the
/// service did not answer 202.
std::string SubmitJob(SongdProcess& s, int audio_length = 95);

/// The job's status ("queued", "completed", ...), or "http-<code><error>" when the status
/// request did not answer 200 (so polling loops see a failure instead of throwing).
std::string JobStatusName(SongdProcess& s, const std::string& id);

}  // namespace songd::test
