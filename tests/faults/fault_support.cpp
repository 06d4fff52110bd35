#include "faults/fault_support.h"

#include <fcntl.h>
#include <signal.h>
#include <sys/mount.h>
#include <sys/statvfs.h>
#include <sys/wait.h>
#include <unistd.h>

#include <array>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <sstream>
#include <stdexcept>

#include "harness/songd_process.h"
#include "harness/spawn.h"

namespace songd::test {

namespace fs = std::filesystem;

namespace {

constexpr const char* kBallast = "ballast.bin";

std::string ReadText(const fs::path& path) {
    std::ifstream in(path, std::ios::binary);
    std::stringstream ss;
    ss << in.rdbuf();
    return ss.str();
}

std::string FirstLine(const fs::path& path) {
    std::ifstream in(path);
    std::string line;
    std::getline(in, line);
    return line;
}

}  // namespace

Tmpfs::Tmpfs(fs::path dir, int size_mib) : dir_(std::move(dir)) {
    std::error_code ec;
    fs::create_directories(dir_, ec);
    const std::string options = "size=" + std::to_string(size_mib) + "m";
    if (::mount("tmpfs", dir_.c_str(), "tmpfs", 0, options.c_str()) != 0) {
        error_ = "mount -t tmpfs -o " + options + " tmpfs " + dir_.string() +
                 " failed: " + std::strerror(errno) +
                 " (the disk-full cases need root, or CAP_SYS_ADMIN, to mount a small tmpfs)";
        return;
    }
    mounted_ = true;
}

Tmpfs::~Tmpfs() {
    if (mounted_) ::umount2(dir_.c_str(), MNT_DETACH);
}

int64_t Tmpfs::FreeBytes() const {
    struct statvfs st {};
    if (::statvfs(dir_.c_str(), &st) != 0) return -1;
    return static_cast<int64_t>(st.f_bavail) * static_cast<int64_t>(st.f_frsize);
}

int64_t Tmpfs::Fill(int64_t leave_bytes) {
    const fs::path ballast = dir_ / kBallast;
    int fd = ::open(ballast.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
    if (fd < 0) return FreeBytes();
    std::array<char, 64 * 1024> block{};
    block.fill('b');
    for (;;) {
        const int64_t left = FreeBytes() - leave_bytes;
        if (left <= 0) break;
        const size_t n = static_cast<size_t>(std::min<int64_t>(left, block.size()));
        if (::write(fd, block.data(), n) <= 0) break;  // ENOSPC: full
    }
    ::close(fd);
    return FreeBytes();
}

void Tmpfs::Drain() {
    std::error_code ec;
    fs::remove(dir_ / kBallast, ec);
}

PgServer::PgServer() {
    const fs::path state = SONGD_FAULTS_PG_STATE;
    data_dir_ = FirstLine(state / "data_dir");
    url_ = FirstLine(state / "url");
    if (data_dir_.empty() || url_.empty()) {
        throw std::runtime_error("no campaign PostgreSQL server in " + state.string() +
                                 " (the faults_servers ctest fixture starts it: run "
                                 "`ctest -L faults`, or tests/postgres/pg_server.sh start " +
                                 state.string() + ")");
    }
    // postgresql://user:password@127.0.0.1:PORT/db
    const size_t at = url_.rfind('@');
    const size_t colon = url_.find(':', at);
    const size_t slash = url_.find('/', colon);
    port_ = url_.substr(colon + 1, slash - colon - 1);
    for (const auto& entry : fs::directory_iterator("/usr/lib/postgresql")) {
        if (fs::exists(entry.path() / "bin" / "pg_ctl")) bin_ = (entry.path() / "bin").string();
    }
    if (bin_.empty()) throw std::runtime_error("no pg_ctl under /usr/lib/postgresql/*/bin");
}

std::string PgServer::Run(const std::string& command) const {
    const std::string as_user = ::geteuid() == 0 ? "runuser -u postgres -- " : "";
    const std::string full = as_user + command + " 2>&1";
    std::string output;
    FILE* pipe = ::popen(full.c_str(), "r");
    if (pipe == nullptr) throw std::runtime_error("cannot run " + full);
    std::array<char, 512> buffer{};
    while (std::fgets(buffer.data(), buffer.size(), pipe) != nullptr) output += buffer.data();
    const int status = ::pclose(pipe);
    if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
        throw std::runtime_error(full + " failed: " + output);
    }
    return output;
}

void PgServer::Stop() { Run(bin_ + "/pg_ctl -D " + data_dir_ + "/pgdata -m fast -w stop"); }

void PgServer::Start() {
    // The options of tests/postgres/pg_server.sh: same socket folder, address and port.
    Run(bin_ + "/pg_ctl -D " + data_dir_ + "/pgdata -l " + data_dir_ +
        "/server.log -w -t 60 -o \"-k " + data_dir_ + " -h 127.0.0.1 -p " + port_ +
        " -c fsync=off -c synchronous_commit=off -c full_page_writes=off -c max_connections=300"
        " -c shared_buffers=32MB\" start");
}

CommandExit RunSongdCommand(const fs::path& dir, const std::vector<std::string>& args,
                            const std::map<std::string, std::string>& env,
                            std::chrono::seconds deadline) {
    const fs::path log = dir / "command.log";
    CommandExit exit;
    const pid_t pid = SpawnSongd(dir, args, env, log);
    if (pid < 0) {
        exit.output = "cannot start songd";
        return exit;
    }
    int status = 0;
    const bool exited = WaitFor([&] { return ::waitpid(pid, &status, WNOHANG) == pid; }, deadline);
    if (!exited) {
        ::kill(pid, SIGKILL);
        ::waitpid(pid, &status, 0);
        exit.timed_out = true;
    }
    exit.code = WIFEXITED(status) ? WEXITSTATUS(status) : -WTERMSIG(status);
    exit.output = ReadText(log);
    return exit;
}

std::vector<std::string> RegularFiles(const fs::path& root) {
    std::vector<std::string> files;
    std::error_code ec;
    if (!fs::is_directory(root, ec)) return files;
    for (fs::recursive_directory_iterator it(root, ec), end; !ec && it != end; it.increment(ec)) {
        if (it->is_regular_file(ec)) files.push_back(fs::relative(it->path(), root).string());
    }
    return files;
}

}  // namespace songd::test
