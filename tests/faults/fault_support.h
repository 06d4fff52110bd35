#pragma once
/// @file
/// The fault switches of the fault campaign (tests/faults): a small tmpfs that can be filled
/// to the last byte, the campaign's PostgreSQL server stopped and started under a running
/// songd, and songd commands run to their exit with a deadline.
///
///   test::Tmpfs disk(songd.output_dir(), 64);       // mount -t tmpfs -o size=64m
///   disk.Fill(0);                                   // the disk is full
///   disk.Drain();                                   // the fault ends
///   test::PgServer pg;                              // the campaign's server (ctest fixture)
///   pg.Stop();  pg.Start();                         // same data folder, same port

#include <sys/types.h>

#include <chrono>
#include <filesystem>
#include <map>
#include <string>
#include <vector>

namespace songd::test {

/// @brief A tmpfs mounted on a folder for one test, unmounted by the destructor.
class Tmpfs {
  public:
    /// Mounts a tmpfs of `size_mib` MiB on `dir` (created when missing). Needs root; when the
    /// mount is refused, `error()` says why and `mounted()` is false.
    Tmpfs(std::filesystem::path dir, int size_mib);
    ~Tmpfs();
    Tmpfs(const Tmpfs&) = delete;
    Tmpfs& operator=(const Tmpfs&) = delete;

    bool mounted() const { return mounted_; }
    const std::string& error() const { return error_; }
    /// Writes a ballast file until at most `leave_bytes` stay free; returns the bytes free.
    int64_t Fill(int64_t leave_bytes);
    /// Deletes the ballast: the disk has room again.
    void Drain();
    int64_t FreeBytes() const;

  private:
    std::filesystem::path dir_;
    bool mounted_ = false;
    std::string error_;
};

/// @brief The campaign's throw-away PostgreSQL server (tests/postgres/pg_server.sh, started
/// by the `faults_servers` ctest fixture), which tests may stop and start again on
/// the same data folder and port.
class PgServer {
  public:
    /// Reads the server's state folder (SONGD_FAULTS_PG_STATE); throws when there is none.
    PgServer();
    /// `pg_ctl stop -m fast`; throws when it fails.
    void Stop();
    /// `pg_ctl start` with the options pg_server.sh started it with; throws when it fails.
    void Start();
    const std::string& url() const { return url_; }

  private:
    std::string Run(const std::string& command) const;

    std::string data_dir_;
    std::string url_;
    std::string port_;
    std::string bin_;
};

/// @brief How a songd command run with a deadline ended.
struct CommandExit {
    int code = -1;
    bool timed_out = false;
    std::string output;
};

/// Runs `songd args...` in `dir` with `env` until it exits or `deadline` passes (then it is
/// killed and `timed_out` is set).
CommandExit RunSongdCommand(const std::filesystem::path& dir, const std::vector<std::string>& args,
                            const std::map<std::string, std::string>& env,
                            std::chrono::seconds deadline);

/// Every regular file under `root`, relative to it.
std::vector<std::string> RegularFiles(const std::filesystem::path& root);

}  // namespace songd::test
