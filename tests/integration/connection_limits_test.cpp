// The HTTP front door against floods and forged headers, on the real binary: connection caps
// (MAX_CONNECTIONS, MAX_CONNECTIONS_PER_IP) answer a short 503 and leave open connections
// working; keep-alive connections wear out; the rate limiter believes X-Forwarded-For only
// from TRUSTED_PROXIES; request values cannot forge text log lines; out of descriptors, a
// waiting connection is closed at accept instead of left in the kernel backlog.
#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstring>
#include <sstream>
#include <string>
#include <vector>

#include "core/unique_fd.h"
#include "harness/http_client.h"
#include "harness/songd_process.h"

namespace songd::test {
namespace {

/// A TCP connection to songd from `source` (a loopback address), held open by the test.
core::UniqueFd Connect(int port, const char* source = "127.0.0.1") {
    core::UniqueFd fd(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
    sockaddr_in local{};
    local.sin_family = AF_INET;
    ::inet_pton(AF_INET, source, &local.sin_addr);
    if (::bind(fd.get(), reinterpret_cast<sockaddr*>(&local), sizeof local) != 0) return {};
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_port = htons(static_cast<uint16_t>(port));
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (::connect(fd.get(), reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0) return {};
    return fd;
}

/// Sends `bytes` and reads until the server closes or `max_wait_ms` passes.
std::string Exchange(const core::UniqueFd& fd, const std::string& bytes, int max_wait_ms,
                     bool until_close = true) {
    if (!bytes.empty()) ::send(fd.get(), bytes.data(), bytes.size(), MSG_NOSIGNAL);
    std::string out;
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(max_wait_ms);
    char buf[16384];
    while (std::chrono::steady_clock::now() < deadline) {
        pollfd p{fd.get(), POLLIN, 0};
        if (::poll(&p, 1, 20) <= 0) continue;
        ssize_t n = ::recv(fd.get(), buf, sizeof buf, 0);
        if (n <= 0) {
            out += "<closed>";
            break;
        }
        out.append(buf, static_cast<size_t>(n));
        if (!until_close && out.find("\r\n\r\n") != std::string::npos) {
            // one small answer with Content-Length: enough when its body is in
            auto cl = out.find("Content-Length: ");
            if (cl != std::string::npos) {
                size_t len = std::stoul(out.substr(cl + 16));
                if (out.size() >= out.find("\r\n\r\n") + 4 + len) break;
            }
        }
    }
    return out;
}

const std::string kHealth = "GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n";

/// True once a fresh connection from `source` gets 200 for /healthz.
bool Admitted(int port, const char* source = "127.0.0.1") {
    auto fd = Connect(port, source);
    return fd && Exchange(fd, kHealth, 5000, false).rfind("HTTP/1.1 200", 0) == 0;
}

void ExpectRefused(const std::string& answer) {
    EXPECT_EQ(answer.rfind("HTTP/1.1 503", 0), 0u) << answer;
    EXPECT_NE(answer.find("Content-Type: application/problem+json"), std::string::npos) << answer;
    EXPECT_NE(answer.find("Connection: close"), std::string::npos) << answer;
    EXPECT_NE(answer.find("Retry-After: 1"), std::string::npos) << answer;
    EXPECT_NE(answer.find("<closed>"), std::string::npos) << "the refused connection stays open";
}

TEST(ConnectionLimits, OverTheCapANewConnectionGets503AndOpenOnesKeepWorking) {
    SongdProcess songd({{"MAX_CONNECTIONS", "3"}, {"MAX_CONNECTIONS_PER_IP", "0"}});
    songd.Start();
    std::vector<core::UniqueFd> held;
    for (int i = 0; i < 3; ++i) {
        held.push_back(Connect(songd.port()));
        ASSERT_TRUE(held.back());
    }
    // The three are accepted in order before the fourth; the fourth is answered at once.
    auto fourth = Connect(songd.port());
    ASSERT_TRUE(fourth);
    ExpectRefused(Exchange(fourth, "", 5000));
    // Every held connection still answers, on the same connection.
    for (auto& fd : held) {
        EXPECT_EQ(Exchange(fd, kHealth, 5000, false).rfind("HTTP/1.1 200", 0), 0u);
    }
    // A slot freed is a slot usable again.
    held.pop_back();
    EXPECT_TRUE(WaitFor([&] { return Admitted(songd.port()); }, std::chrono::seconds(10)));
    held.clear();
    HttpResult metrics;
    ASSERT_TRUE(WaitFor([&] {
        metrics = Http("GET", songd.Url("/api/v1/metrics"));
        return metrics.status == 200;
    }));
    EXPECT_NE(metrics.body.find("songd_http_connections_refused_total "), std::string::npos);
    EXPECT_EQ(metrics.body.find("songd_http_connections_refused_total 0\n"), std::string::npos)
        << metrics.body;
}

TEST(ConnectionLimits, PerAddressCapLeavesOtherAddressesAlone) {
    SongdProcess songd(Env{{"MAX_CONNECTIONS_PER_IP", "2"}});
    songd.Start();
    std::vector<core::UniqueFd> held;
    for (int i = 0; i < 2; ++i) {
        held.push_back(Connect(songd.port(), "127.0.0.2"));
        ASSERT_TRUE(held.back());
    }
    auto third = Connect(songd.port(), "127.0.0.2");
    ASSERT_TRUE(third);
    ExpectRefused(Exchange(third, kHealth, 5000));
    EXPECT_TRUE(Admitted(songd.port(), "127.0.0.3"));
    EXPECT_TRUE(Admitted(songd.port(), "127.0.0.1"));
    held.clear();
    EXPECT_TRUE(
        WaitFor([&] { return Admitted(songd.port(), "127.0.0.2"); }, std::chrono::seconds(10)));
}

TEST(ConnectionLimits, AKeepAliveConnectionClosesAfterItsRequestCap) {
    SongdProcess songd(Env{{"HTTP_KEEPALIVE_MAX_REQUESTS", "3"}});
    songd.Start();
    auto fd = Connect(songd.port());
    ASSERT_TRUE(fd);
    std::string pipelined;
    for (int i = 0; i < 5; ++i) pipelined += kHealth;
    const std::string answer = Exchange(fd, pipelined, 10000);
    size_t answers = 0;
    for (size_t pos = 0; (pos = answer.find("HTTP/1.1 200", pos)) != std::string::npos; ++pos) {
        ++answers;
    }
    EXPECT_EQ(answers, 3u) << answer;
    EXPECT_NE(answer.find("Connection: close"), std::string::npos) << answer;
    EXPECT_NE(answer.find("<closed>"), std::string::npos) << answer;
}

/// The value of an unlabelled series in Prometheus text; -1 when it is absent.
long long MetricValue(const std::string& text, const std::string& name) {
    const auto pos = text.find("\n" + name + " ");
    if (pos == std::string::npos) return -1;
    return std::stoll(text.substr(pos + name.size() + 2));
}

TEST(ConnectionLimits, OutOfDescriptorsAWaitingConnectionIsClosedNotLeftInTheBacklog) {
    // Open-file limit 128: a reserve of 32 and MAX_CONNECTIONS 96. Each 503 refusal holds a
    // descriptor from the reserve for up to 1 s (an idle client sends nothing to drain), so
    // a flood over the cap uses the reserve up and accept fails with EMFILE.
    SongdProcess songd(Env{{"MAX_CONNECTIONS_PER_IP", "0"}});
    songd.SetOpenFileLimit(128);
    songd.Start();
    const int port = songd.port();
    ASSERT_NE(songd.Log().find("open_file_limit=128 "), std::string::npos) << songd.Log();
    ASSERT_NE(songd.Log().find("max_connections=96 "), std::string::npos) << songd.Log();
    constexpr int kCap = 96;

    auto probe = Connect(port);
    ASSERT_TRUE(probe);
    auto ask = [&](const std::string& path) {
        return Exchange(probe, "GET " + path + " HTTP/1.1\r\nHost: x\r\n\r\n", 10000, false);
    };
    auto healthy = [&] { return ask("/healthz").rfind("HTTP/1.1 200", 0) == 0; };
    auto metric = [&](const std::string& name) {
        return MetricValue(ask("/api/v1/metrics"), name);
    };
    ASSERT_TRUE(healthy());
    // Start()'s own health check may not be released yet: wait until the probe is alone.
    ASSERT_TRUE(WaitFor([&] { return metric("songd_http_connections_open") == 1; }));
    std::vector<core::UniqueFd> held;
    for (int i = 1; i < kCap; ++i) {
        held.push_back(Connect(port));
        ASSERT_TRUE(held.back()) << std::strerror(errno);
    }
    ASSERT_TRUE(WaitFor([&] { return metric("songd_http_connections_open") == kCap; }))
        << songd.Log();

    constexpr int kFlood = 300;
    std::vector<core::UniqueFd> flood;
    for (int i = 0; i < kFlood; ++i) {
        flood.push_back(Connect(port));
        ASSERT_TRUE(flood.back()) << "connect " << i << ": " << std::strerror(errno);
    }
    EXPECT_TRUE(healthy()) << "the probe during the flood";

    // Every flood connection ends: a 503 and a close, or a close without an answer.
    std::vector<std::string> got(kFlood);
    std::vector<int> ended(kFlood, 0);  // 0 open, 1 end of stream, 2 error (reset)
    int open = kFlood;
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(60);
    while (open > 0 && std::chrono::steady_clock::now() < deadline) {
        std::vector<pollfd> fds;
        std::vector<int> index;
        for (int i = 0; i < kFlood; ++i) {
            if (ended[i] != 0) continue;
            fds.push_back({flood[i].get(), POLLIN, 0});
            index.push_back(i);
        }
        if (::poll(fds.data(), fds.size(), 50) <= 0) continue;
        for (size_t k = 0; k < fds.size(); ++k) {
            if (fds[k].revents == 0) continue;
            const int i = index[k];
            char buf[4096];
            const ssize_t n = ::recv(flood[i].get(), buf, sizeof buf, 0);
            if (n > 0) {
                got[i].append(buf, static_cast<size_t>(n));
                continue;
            }
            ended[i] = n == 0 ? 1 : 2;
            if (n < 0) got[i] += std::string("<") + std::strerror(errno) + ">";
            --open;
        }
    }
    ASSERT_EQ(open, 0) << "flood connections left waiting:\n" << songd.Log();
    int answered = 0, closed = 0;
    for (int i = 0; i < kFlood; ++i) {
        EXPECT_EQ(ended[i], 1) << "connection " << i << " did not end cleanly: " << got[i];
        if (got[i].empty()) {
            ++closed;
        } else if (got[i].rfind("HTTP/1.1 503", 0) == 0) {
            ++answered;
        } else {
            ADD_FAILURE() << "connection " << i << ": " << got[i];
        }
    }
    // With 32 descriptors in reserve the 512-refusal limit cannot be reached: a connection
    // closed without an answer was closed at accept because descriptors ran out.
    EXPECT_GT(answered, 0) << closed << " closed at accept";
    EXPECT_GT(closed, 0) << answered << " answered 503; nothing was closed at accept";

    EXPECT_TRUE(healthy()) << "the probe after the flood";
    EXPECT_GE(metric("songd_http_connections_refused_total"), kFlood);
    const std::string log = songd.Log();
    bool shed_logged = false;
    std::istringstream lines(log);
    for (std::string line; std::getline(lines, line);) {
        if (line.find("connections_refused") != std::string::npos &&
            line.find("EMFILE") != std::string::npos) {
            shed_logged = true;
        }
    }
    EXPECT_TRUE(shed_logged) << log;
    EXPECT_EQ(log.find("accept_failed"), std::string::npos) << log;

    // Once the flood and the idle connections are gone, new connections are served again.
    flood.clear();
    held.clear();
    EXPECT_TRUE(WaitFor([&] { return Admitted(port); }, std::chrono::seconds(30))) << log;
    EXPECT_TRUE(healthy());
}

/// Submits a generate request with extra headers; the status.
long Generate(SongdProcess& songd, const std::vector<std::string>& headers) {
    std::vector<std::string> all = headers;
    all.push_back("Content-Type: application/json");
    return Http("POST", songd.Url("/api/v1/generate"), all, GenerateBody()).status;
}

TEST(TrustedProxies, ForwardedForFromAnUntrustedPeerIsIgnored) {
    SongdProcess songd({{"ENABLE_RATE_LIMIT", "true"}, {"RATE_LIMIT_PER_HOUR", "1"}});
    songd.Start();
    EXPECT_EQ(Generate(songd, {"X-Forwarded-For: 198.51.100.1"}), 202);
    // A client that makes up a new address for every request is still one client.
    EXPECT_EQ(Generate(songd, {"X-Forwarded-For: 198.51.100.2"}), 429);
    EXPECT_EQ(Generate(songd, {"Forwarded: for=198.51.100.3"}), 429);
}

TEST(TrustedProxies, FromATrustedPeerTheRightMostUntrustedAddressIsTheClient) {
    SongdProcess songd({{"ENABLE_RATE_LIMIT", "true"},
                        {"RATE_LIMIT_PER_HOUR", "1"},
                        {"TRUSTED_PROXIES", "127.0.0.0/8, 10.0.0.0/8, ::1"}});
    songd.Start();
    EXPECT_EQ(Generate(songd, {"X-Forwarded-For: 198.51.100.1"}), 202);
    EXPECT_EQ(Generate(songd, {"X-Forwarded-For: 198.51.100.2"}), 202);
    EXPECT_EQ(Generate(songd, {"X-Forwarded-For: 198.51.100.1"}), 429);
    // What the client wrote left of the proxy's entry is not believed; inner proxies are
    // skipped.
    EXPECT_EQ(Generate(songd, {"X-Forwarded-For: 203.0.113.77, 198.51.100.2, 10.1.2.3"}), 429);
    EXPECT_EQ(Generate(songd, {"Forwarded: for=\"[2001:db8::7]:443\";proto=https"}), 202);
    EXPECT_EQ(Generate(songd, {"Forwarded: for=\"[2001:db8::7]\""}), 429);
    // No header at all: the proxy itself is the client.
    EXPECT_EQ(Generate(songd, {}), 202);
    EXPECT_EQ(Generate(songd, {}), 429);
    songd.Stop();
    EXPECT_NE(songd.Log().find("client=198.51.100.1"), std::string::npos);
}

TEST(TextLog, RequestValuesCannotForgeLinesOrSendTerminalCodes) {
    SongdProcess songd;  // LOG_FORMAT=text
    songd.Start();
    auto fd = Connect(songd.port());
    ASSERT_TRUE(fd);
    const std::string answer = Exchange(
        fd,
        "GET /nothing%0A2026-01-01T00:00:00.000Z%20error%20forged%1B%5B2J HTTP/1.1\r\nHost: x\r\n"
        "Connection: close\r\n\r\n",
        5000);
    EXPECT_EQ(answer.rfind("HTTP/1.1 404", 0), 0u) << answer;
    songd.Stop();
    const std::string log = songd.Log();
    EXPECT_EQ(log.find("\n2026-01-01T00:00:00.000Z error forged"), std::string::npos) << log;
    EXPECT_EQ(log.find('\x1b'), std::string::npos) << "an escape sequence reached the log";
    EXPECT_NE(log.find("\\n2026-01-01T00:00:00.000Z error forged\\x1b[2J"), std::string::npos)
        << log;
}

}  // namespace
}  // namespace songd::test
