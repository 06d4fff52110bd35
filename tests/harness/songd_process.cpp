#include "harness/songd_process.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <unistd.h>

#include <boost/json.hpp>
#include <fstream>
#include <sstream>
#include <thread>

#include "harness/http_client.h"
#include "harness/spawn.h"

namespace songd::test {

namespace fs = std::filesystem;

namespace {

/// The exit code, or minus the signal that ended the process.
int ExitCode(const core::ExitStatus& status) {
    return status.signal != 0 ? -status.signal : status.code;
}

}  // namespace

int FreePort() {
    int fd = ::socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    ::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr);
    socklen_t len = sizeof addr;
    ::getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len);
    ::close(fd);
    return ntohs(addr.sin_port);
}

bool WaitFor(const std::function<bool()>& condition, std::chrono::milliseconds timeout) {
    auto deadline = std::chrono::steady_clock::now() + timeout;
    while (std::chrono::steady_clock::now() < deadline) {
        if (condition()) return true;
        std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
    return condition();
}

std::string GenerateBody(int audio_length, const std::string& extra) {
    return R"({"lyrics":"[00:05.00]Morning light on the water\n[00:12.50]We sing along","style_prompt":"pop, happy, piano","audio_length":)" +
           std::to_string(audio_length) + extra + "}";
}

std::string SubmitJob(SongdProcess& s, int audio_length) {
    auto r = Http("POST", s.Url("/api/v1/generate"), {"Content-Type: application/json"},
                  GenerateBody(audio_length));
    EXPECT_EQ(r.status, 202) << r.body;
    if (r.status != 202) return "";
    return std::string(boost::json::parse(r.body).at("job_id").as_string());
}

std::string JobStatusName(SongdProcess& s, const std::string& id) {
    auto r = Http("GET", s.Url("/api/v1/status/" + id));
    if (r.status != 200) return "http-" + std::to_string(r.status) + r.error;
    return std::string(boost::json::parse(r.body).at("status").as_string());
}

SongdProcess::SongdProcess(std::map<std::string, std::string> env) : env_(std::move(env)) {
    char tmpl[] = "/tmp/songd-test-XXXXXX";
    dir_ = ::mkdtemp(tmpl);
    env_.try_emplace("ENGINE", "tone");
    env_.try_emplace("LOG_FORMAT", "text");
    env_.try_emplace("ENABLE_RATE_LIMIT", "false");
    env_.try_emplace("HOST", "127.0.0.1");
    env_.try_emplace("OUTPUT_DIR", (dir_ / "output").string());
    env_.try_emplace("DATABASE_URL", "sqlite:" + (dir_ / "data" / "songd.db").string());
}

SongdProcess::~SongdProcess() {
    Kill();
    std::error_code ec;
    if (!::testing::Test::HasFailure()) fs::remove_all(dir_, ec);
}

std::string SongdProcess::Url(const std::string& path) const {
    return "http://127.0.0.1:" + std::to_string(port_) + path;
}

std::string SongdProcess::Log() const {
    std::ifstream in(dir_ / "songd.log");
    std::stringstream ss;
    ss << in.rdbuf();
    return ss.str();
}

void SongdProcess::Start() {
    ASSERT_FALSE(child_) << "already running";
    for (int attempt = 0; attempt < 3; ++attempt) {
        if (env_.count("PORT") == 0 || attempt > 0)
            port_ = FreePort();
        else
            port_ = std::stoi(env_["PORT"]);
        auto env = env_;
        env["PORT"] = std::to_string(port_);
        const size_t log_before = Log().size();
        try {
            child_.emplace(
                StartSongd(dir_, {"serve"}, env, dir_ / "songd.log", LogMode::kAppend, launcher_));
        } catch (const std::exception& e) {
            FAIL() << e.what();
        }
        bool up = WaitFor(
            [&] {
                if (child_->TryWait()) {
                    child_.reset();
                    return true;
                }
                return Http("GET", Url("/healthz")).status == 200;
            },
            std::chrono::seconds(30));
        if (child_ && up) return;
        if (Log().find("Address already in use", log_before) == std::string::npos) break;
    }
    FAIL() << "songd did not start:\n" << Log();
}

int SongdProcess::Stop() {
    if (!child_) return 0;
    child_->Signal(SIGTERM);
    const int code = ExitCode(child_->Wait().status);
    child_.reset();
    return code;
}

void SongdProcess::Kill() {
    if (!child_) return;
    child_->Kill(std::chrono::milliseconds(0));
    child_.reset();
}

std::pair<int, std::string> SongdProcess::RunCommand(
    const std::vector<std::string>& args, const std::map<std::string, std::string>& env) const {
    fs::path log = dir_ / "command.log";
    int code = -1;
    try {
        code = ExitCode(StartSongd(dir_, args, env, log).Wait().status);
    } catch (const std::exception& e) {
        ADD_FAILURE() << e.what();
    }
    std::ifstream in(log);
    std::stringstream ss;
    ss << in.rdbuf();
    return {code, ss.str()};
}

}  // namespace songd::test
