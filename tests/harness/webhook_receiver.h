#pragma once
/// @file
/// Receiver: runs tests/webhook_receiver/receiver.py (Standard Webhooks signatures checked
/// with Python's own hmac/base64) for a test, and reads what it recorded.
///
///   test::Receiver receiver;                       // any free port; or Receiver(port)
///   receiver.Mode(R"({"status": 503})");           // or {"hang": true}
///   auto accepted = test::Accepted(receiver, job_id);   // deliveries it answered 200
///
/// The child dies with the test process (PR_SET_PDEATHSIG) and is killed by the destructor.

#include <gtest/gtest.h>
#include <poll.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <boost/json.hpp>
#include <chrono>
#include <cstdlib>
#include <stdexcept>
#include <string>
#include <vector>

#include "harness/http_client.h"

namespace songd::test {

inline const std::string kWebhookSecret =
    "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSwc2VjcmV0";  // 33 key bytes

/// @brief One run of receiver.py; killed by the destructor (and with the test process).
class Receiver {
  public:
    explicit Receiver(int port = 0) {
        std::vector<std::string> args = {
            "/usr/bin/python3", SONGD_SOURCE_DIR "/tests/webhook_receiver/receiver.py",
            "--secret",         kWebhookSecret,
            "--port",           std::to_string(port)};
        std::vector<char*> argv;
        for (auto& a : args) argv.push_back(a.data());
        argv.push_back(nullptr);
        int fds[2];
        if (pipe(fds) != 0) throw std::runtime_error("pipe failed");
        pid_ = fork();
        if (pid_ == 0) {
            prctl(PR_SET_PDEATHSIG, SIGKILL);
            dup2(fds[1], STDOUT_FILENO);
            close(fds[0]);
            close(fds[1]);
            execv(argv[0], argv.data());
            _exit(127);
        }
        close(fds[1]);
        std::string line;
        const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(30);
        while (line.find('\n') == std::string::npos &&
               std::chrono::steady_clock::now() < deadline) {
            pollfd p{fds[0], POLLIN, 0};
            if (poll(&p, 1, 1000) <= 0) continue;
            char buffer[64];
            const ssize_t n = read(fds[0], buffer, sizeof buffer);
            if (n <= 0) break;
            line.append(buffer, static_cast<size_t>(n));
        }
        close(fds[0]);
        port_ = line.empty() ? -1 : std::atoi(line.c_str());
        if (port_ <= 0) throw std::runtime_error("the receiver did not start");
    }
    ~Receiver() { Stop(); }
    Receiver(const Receiver&) = delete;
    Receiver& operator=(const Receiver&) = delete;

    void Stop() {
        if (pid_ > 0) {
            kill(pid_, SIGKILL);
            waitpid(pid_, nullptr, 0);
            pid_ = -1;
        }
    }
    int port() const { return port_; }
    std::string Url(const std::string& path = "/hook") const {
        return "http://127.0.0.1:" + std::to_string(port_) + path;
    }
    void Mode(const std::string& json_body) {
        auto r = Http("POST", Url("/_control/mode"), {"Content-Type: application/json"}, json_body);
        ASSERT_EQ(r.status, 200) << r.error;
    }
    /// Every delivery attempt it saw, in arrival order.
    std::vector<boost::json::object> Deliveries() const {
        auto r = Http("GET", Url("/_control/deliveries"));
        std::vector<boost::json::object> out;
        if (r.status != 200) return out;
        const boost::json::value parsed = boost::json::parse(r.body);  // alive for the whole loop
        for (const auto& d : parsed.at("deliveries").as_array()) {
            out.push_back(d.as_object());
        }
        return out;
    }

  private:
    pid_t pid_ = -1;
    int port_ = -1;
};

inline std::string Str(const boost::json::object& o, const char* key) {
    const auto* v = o.if_contains(key);
    return v && v->is_string() ? std::string(v->as_string()) : "";
}

inline std::string BodyField(const boost::json::object& delivery, const char* key) {
    const auto* body = delivery.if_contains("body");
    if (!body || !body->is_object()) return "";
    return Str(body->as_object(), key);
}

/// The deliveries of one job that the receiver answered with 200 (accepted).
inline std::vector<boost::json::object> Accepted(const Receiver& r, const std::string& job_id) {
    std::vector<boost::json::object> out;
    for (auto& d : r.Deliveries()) {
        const auto& answered = d.at("answered");
        if (BodyField(d, "job_id") == job_id && answered.is_int64() && answered.as_int64() == 200) {
            out.push_back(d);
        }
    }
    return out;
}

}  // namespace songd::test
