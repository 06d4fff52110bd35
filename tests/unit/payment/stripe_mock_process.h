#pragma once
/// @file
/// Runs tests/stripe_mock/stripe_mock.py as a child process for a test and talks to its
/// control endpoints.
///
///   StripeMockProcess mock;                       // waits (with a deadline) for its port
///   mock.Control("POST", "/_mock/faults", R"({"kind":"500","count":2})");
///   int64_t n = mock.Count("/v1/payment_intents/pi_123");
///
/// The child dies with the test process (PR_SET_PDEATHSIG) and is killed by the destructor.

#include <poll.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <boost/json.hpp>
#include <chrono>
#include <stdexcept>
#include <string>
#include <vector>

#include "net/http_client.h"

namespace songd::payment::testing {

/// @brief The local Stripe stand-in, started for the lifetime of this object.
class StripeMockProcess {
  public:
    explicit StripeMockProcess(std::vector<std::string> extra_args = {}) {
        std::vector<std::string> args = {
            "python3", SONGD_SOURCE_DIR "/tests/stripe_mock/stripe_mock.py", "serve"};
        args.insert(args.end(), extra_args.begin(), extra_args.end());
        std::vector<char*> argv;
        for (auto& arg : args) argv.push_back(arg.data());
        argv.push_back(nullptr);

        int fds[2];
        if (pipe(fds) != 0) throw std::runtime_error("pipe failed");
        pid_ = fork();
        if (pid_ < 0) throw std::runtime_error("fork failed");
        if (pid_ == 0) {
            prctl(PR_SET_PDEATHSIG, SIGKILL);
            dup2(fds[1], STDOUT_FILENO);
            close(fds[0]);
            close(fds[1]);
            execvp(argv[0], argv.data());
            _exit(127);
        }
        close(fds[1]);
        port_ = ReadPort(fds[0]);
        close(fds[0]);
        if (port_ <= 0) {
            Stop();
            throw std::runtime_error("stripe mock did not report a port within the deadline");
        }
    }

    ~StripeMockProcess() { Stop(); }
    StripeMockProcess(const StripeMockProcess&) = delete;
    StripeMockProcess& operator=(const StripeMockProcess&) = delete;

    int port() const { return port_; }
    std::string base_url() const { return "http://127.0.0.1:" + std::to_string(port_); }

    /// Kills the server; later requests to its port are refused.
    void Stop() {
        if (pid_ > 0) {
            kill(pid_, SIGKILL);
            waitpid(pid_, nullptr, 0);
            pid_ = -1;
        }
    }

    /// A control request; returns the JSON answer. Throws when the answer is not 200.
    boost::json::value Control(const std::string& method, const std::string& path,
                               const std::string& json_body = "") {
        net::Request request;
        request.method = method;
        request.url = base_url() + path;
        request.body = net::RequestBody::Memory(json_body);
        request.headers = {{"Content-Type", "application/json"}};
        const net::Response response = http_.Send(request);
        if (response.status != 200) {
            throw std::runtime_error("control " + path + " answered " +
                                     std::to_string(response.status) + ": " + response.body);
        }
        return boost::json::parse(response.body);
    }

    /// Stripe API requests seen for `path` (any method).
    int64_t Count(const std::string& path) {
        const auto report = Control("GET", "/_mock/requests");
        const auto* n = report.at("counts").as_object().if_contains(path);
        return n == nullptr ? 0 : n->as_int64();
    }

    int64_t Total() { return Control("GET", "/_mock/requests").at("total").as_int64(); }

  private:
    static int ReadPort(int fd) {
        const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(30);
        std::string line;
        while (line.find('\n') == std::string::npos) {
            const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
                deadline - std::chrono::steady_clock::now());
            if (left.count() <= 0) return -1;
            pollfd p{fd, POLLIN, 0};
            if (poll(&p, 1, static_cast<int>(left.count())) <= 0) return -1;
            char buffer[64];
            const ssize_t n = read(fd, buffer, sizeof buffer);
            if (n <= 0) return -1;  // the child exited before printing
            line.append(buffer, static_cast<size_t>(n));
        }
        try {
            return std::stoi(line);
        } catch (const std::exception&) {
            return -1;
        }
    }

    pid_t pid_ = -1;
    int port_ = -1;
    net::HttpClient http_;
};

}  // namespace songd::payment::testing
