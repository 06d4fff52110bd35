#include "s3_test_server.h"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <boost/json.hpp>
#include <chrono>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <stdexcept>

#include "net/http_client.h"

extern char** environ;

namespace songd::testing {
namespace {

namespace fs = std::filesystem;
namespace json = boost::json;

net::Response Control(int port, const std::string& method, const std::string& path,
                      const std::string& body) {
    net::Request request{.method = method,
                         .url = "http://127.0.0.1:" + std::to_string(port) + path,
                         .body = net::RequestBody::Memory(body)};
    if (method == "POST") request.headers.emplace_back("Content-Type", "application/json");
    net::Response result;
    try {
        result = net::HttpClient().Send(request);
    } catch (const net::TransportError& error) {
        throw std::runtime_error("fault proxy control " + path + " failed: " + error.what());
    }
    if (result.status >= 300) {
        throw std::runtime_error("fault proxy control " + path + " failed: HTTP " +
                                 std::to_string(result.status));
    }
    return result;
}

int64_t StatusField(const char* field) {
    std::ifstream in("/proc/self/status");
    std::string line;
    while (std::getline(in, line)) {
        if (line.starts_with(field))
            return std::strtoll(line.c_str() + std::strlen(field), nullptr, 10) * 1024;
    }
    return -1;
}

}  // namespace

S3TestServer::S3TestServer(const std::vector<std::string>& buckets, bool constant_time_delete) {
    fs::path launcher = fs::path(SONGD_S3_SERVER_DIR) / "launch.js";
    if (!fs::exists(fs::path(SONGD_S3_SERVER_DIR) / "node_modules" / "s3rver")) {
        throw std::runtime_error("s3rver is not installed: run tests/s3/setup.sh");
    }
    char dir_template[] = "/tmp/songd-s3rver-XXXXXX";
    if (mkdtemp(dir_template) == nullptr) throw std::runtime_error("mkdtemp failed");
    data_dir_ = dir_template;

    // s3rver encrypts ListObjectsV2 continuation tokens with DES, which OpenSSL 3 keeps in
    // its legacy provider.
    std::vector<std::string> args = {SONGD_NODE, "--openssl-legacy-provider", launcher.string(),
                                     "--dir", data_dir_};
    for (const std::string& bucket : buckets) {
        args.push_back("--bucket");
        args.push_back(bucket);
    }
    if (constant_time_delete) args.push_back("--constant-time-delete");
    std::vector<char*> argv;
    for (std::string& arg : args) argv.push_back(arg.data());
    argv.push_back(nullptr);

    int in_pipe[2];
    int out_pipe[2];
    if (pipe(in_pipe) != 0 || pipe(out_pipe) != 0) throw std::runtime_error("pipe failed");
    for (int fd : {in_pipe[0], in_pipe[1], out_pipe[0], out_pipe[1]})
        fcntl(fd, F_SETFD, FD_CLOEXEC);
    posix_spawn_file_actions_t actions;
    posix_spawn_file_actions_init(&actions);
    posix_spawn_file_actions_adddup2(&actions, in_pipe[0], 0);
    posix_spawn_file_actions_adddup2(&actions, out_pipe[1], 1);
    int rc = posix_spawn(&pid_, argv[0], &actions, nullptr, argv.data(), environ);
    posix_spawn_file_actions_destroy(&actions);
    close(in_pipe[0]);
    close(out_pipe[1]);
    stdin_fd_ = in_pipe[1];
    if (rc != 0) {
        close(out_pipe[0]);
        throw std::runtime_error("cannot start node: " + std::string(std::strerror(rc)));
    }

    // Wait for the one line with the ports, with a deadline (node start is a second or two).
    std::string line;
    auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(30);
    while (line.find('\n') == std::string::npos) {
        auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
            deadline - std::chrono::steady_clock::now());
        pollfd pfd{.fd = out_pipe[0], .events = POLLIN, .revents = 0};
        if (left.count() <= 0 || poll(&pfd, 1, static_cast<int>(left.count())) <= 0) break;
        char buf[256];
        ssize_t n = read(out_pipe[0], buf, sizeof buf);
        if (n <= 0) break;
        line.append(buf, static_cast<size_t>(n));
    }
    close(out_pipe[0]);
    if (line.find('\n') == std::string::npos) {
        throw std::runtime_error("s3rver launcher did not report its ports: '" + line + "'");
    }
    json::object ports = json::parse(line.substr(0, line.find('\n'))).as_object();
    s3rver_port_ = static_cast<int>(ports.at("s3rver").to_number<int64_t>());
    proxy_port_ = static_cast<int>(ports.at("proxy").to_number<int64_t>());
}

S3TestServer::~S3TestServer() {
    if (stdin_fd_ >= 0) close(stdin_fd_);  // the launcher exits when its stdin closes
    if (pid_ > 0) {
        kill(pid_, SIGTERM);
        int status = 0;
        waitpid(pid_, &status, 0);
    }
    std::error_code ignored;
    if (!data_dir_.empty()) fs::remove_all(data_dir_, ignored);
}

core::Config S3TestServer::Config(const std::string& bucket, bool through_proxy) const {
    core::Config config;
    config.s3_enabled = true;
    config.s3_bucket = bucket;
    config.s3_region = "us-east-1";
    config.s3_access_key = "S3RVER";  // s3rver's built-in account
    config.s3_secret_key = "S3RVER";
    config.s3_prefix = "songs/";
    config.s3_endpoint =
        "http://127.0.0.1:" + std::to_string(through_proxy ? proxy_port_ : s3rver_port_);
    return config;
}

void S3TestServer::SetFaults(const std::string& rules_json) {
    Control(proxy_port_, "POST", "/__faults", rules_json);
}

std::vector<ProxyLogEntry> S3TestServer::Log() {
    net::Response result = Control(proxy_port_, "GET", "/__log", "");
    std::vector<ProxyLogEntry> entries;
    json::value parsed = json::parse(result.body);
    for (const json::value& item : parsed.as_array()) {
        const json::object& o = item.as_object();
        ProxyLogEntry entry{
            .method = json::value_to<std::string>(o.at("method")),
            .url = json::value_to<std::string>(o.at("url")),
            .fault = o.at("fault").is_null() ? "" : json::value_to<std::string>(o.at("fault"))};
        if (o.contains("sha256_ok")) entry.sha256_ok = o.at("sha256_ok").as_bool();
        if (o.contains("md5_ok")) entry.md5_ok = o.at("md5_ok").as_bool();
        entries.push_back(std::move(entry));
    }
    return entries;
}

void S3TestServer::ClearLog() { Control(proxy_port_, "DELETE", "/__log", ""); }

int64_t PeakRssBytes() { return StatusField("VmHWM:"); }
int64_t CurrentRssBytes() { return StatusField("VmRSS:"); }

bool ResetPeakRss() {
    std::ofstream out("/proc/self/clear_refs");
    out << "5";
    out.flush();
    return static_cast<bool>(out);
}

}  // namespace songd::testing
