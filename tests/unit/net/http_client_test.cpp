// net::HttpClient against a tiny HTTP server in this process (a thread with a listening
// socket on 127.0.0.1:0), whose answers each test scripts: well-formed answers, answers cut
// short, silence, and no server at all.

#include "net/http_client.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <functional>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "core/text.h"
#include "core/unique_fd.h"
#include "net/retry.h"

namespace songd::net {
namespace {

using std::chrono::milliseconds;

/// What the server read of one request.
struct Received {
    std::string method;
    std::string target;
    HeaderList headers;  ///< names lowercase, as sent otherwise
    std::string body;

    std::optional<std::string> Header(const std::string& name) const {
        for (const auto& [key, value] : headers) {
            if (key == name) return value;
        }
        return std::nullopt;
    }
};

/// @brief A one-connection-at-a-time HTTP/1.1 server on 127.0.0.1. `answer` gets the client
/// socket and the request; it writes whatever it likes (or nothing). The connection is closed
/// afterwards unless `answer` returns false (then it stays open, silent, until the server is
/// destroyed).
class TestServer {
  public:
    using Answer = std::function<bool(int fd, const Received& request)>;

    explicit TestServer(Answer answer) : answer_(std::move(answer)) {
        listener_.Reset(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
        if (!listener_) throw std::runtime_error("socket failed");
        const int yes = 1;
        ::setsockopt(listener_.get(), SOL_SOCKET, SO_REUSEADDR, &yes, sizeof yes);
        sockaddr_in addr{};
        addr.sin_family = AF_INET;
        addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        socklen_t len = sizeof addr;
        if (::bind(listener_.get(), reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0 ||
            ::listen(listener_.get(), 16) != 0 ||
            ::getsockname(listener_.get(), reinterpret_cast<sockaddr*>(&addr), &len) != 0) {
            throw std::runtime_error("cannot listen on 127.0.0.1");
        }
        port_ = ntohs(addr.sin_port);
        int pipe_fds[2];
        if (::pipe2(pipe_fds, O_CLOEXEC) != 0) throw std::runtime_error("pipe failed");
        wake_read_.Reset(pipe_fds[0]);
        wake_write_.Reset(pipe_fds[1]);
        thread_ = std::thread([this] { Serve(); });
    }
    ~TestServer() {
        (void)!::write(wake_write_.get(), "x", 1);
        thread_.join();
    }

    int port() const { return port_; }
    std::string Url(const std::string& path) const {
        return "http://127.0.0.1:" + std::to_string(port_) + path;
    }
    std::vector<Received> requests() const {
        std::lock_guard lock(mutex_);
        return requests_;
    }

    static void Write(int fd, const std::string& bytes) {
        for (size_t sent = 0; sent < bytes.size();) {
            const ssize_t n = ::send(fd, bytes.data() + sent, bytes.size() - sent, MSG_NOSIGNAL);
            if (n <= 0) return;
            sent += static_cast<size_t>(n);
        }
    }

    /// A complete answer with Content-Length and Connection: close.
    static std::string Answer200(const std::string& body, const std::string& extra = "") {
        return "HTTP/1.1 200 OK\r\nContent-Length: " + std::to_string(body.size()) +
               "\r\nConnection: close\r\n" + extra + "\r\n" + body;
    }

  private:
    void Serve() {
        std::vector<core::UniqueFd> held;  // silent connections, closed on shutdown
        while (true) {
            pollfd fds[2] = {{listener_.get(), POLLIN, 0}, {wake_read_.get(), POLLIN, 0}};
            if (::poll(fds, 2, -1) < 0) continue;
            if (fds[1].revents != 0) return;
            core::UniqueFd client(::accept4(listener_.get(), nullptr, nullptr, SOCK_CLOEXEC));
            if (!client) continue;
            std::optional<Received> request = Read(client.get());
            if (!request) continue;
            {
                std::lock_guard lock(mutex_);
                requests_.push_back(*request);
            }
            if (!answer_(client.get(), *request)) held.push_back(std::move(client));
        }
    }

    /// Reads one request (head and Content-Length body); nullopt if the client went away.
    std::optional<Received> Read(int fd) {
        std::string data;
        size_t head_end = std::string::npos;
        size_t body_size = 0;
        const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(20);
        while (head_end == std::string::npos || data.size() < head_end + 4 + body_size) {
            const auto left = std::chrono::duration_cast<milliseconds>(
                deadline - std::chrono::steady_clock::now());
            pollfd p{fd, POLLIN, 0};
            if (left.count() <= 0 || ::poll(&p, 1, static_cast<int>(left.count())) <= 0) {
                return std::nullopt;
            }
            char buffer[65536];
            const ssize_t n = ::recv(fd, buffer, sizeof buffer, 0);
            if (n <= 0) return std::nullopt;
            data.append(buffer, static_cast<size_t>(n));
            if (head_end == std::string::npos) {
                head_end = data.find("\r\n\r\n");
                if (head_end != std::string::npos) {
                    const std::string head = core::ToLower(data.substr(0, head_end));
                    const size_t at = head.find("\r\ncontent-length:");
                    if (at != std::string::npos) {
                        body_size = std::strtoull(head.c_str() + at + 17, nullptr, 10);
                    }
                }
            }
        }
        Received request;
        std::string_view head(data.data(), head_end);
        size_t line_end = head.find("\r\n");
        std::string_view request_line = head.substr(0, line_end);
        const size_t space = request_line.find(' ');
        request.method = std::string(request_line.substr(0, space));
        request.target =
            std::string(request_line.substr(space + 1, request_line.rfind(' ') - space - 1));
        while (line_end != std::string_view::npos) {
            const size_t start = line_end + 2;
            line_end = head.find("\r\n", start);
            std::string_view line = head.substr(start, line_end - start);
            const size_t colon = line.find(':');
            if (colon == std::string_view::npos) continue;
            request.headers.emplace_back(core::ToLower(line.substr(0, colon)),
                                         std::string(core::Trim(line.substr(colon + 1))));
        }
        request.body = data.substr(head_end + 4, body_size);
        return request;
    }

    Answer answer_;
    core::UniqueFd listener_;
    core::UniqueFd wake_read_;
    core::UniqueFd wake_write_;
    int port_ = 0;
    mutable std::mutex mutex_;
    std::vector<Received> requests_;
    std::thread thread_;
};

/// Runs `call`, which must throw TransportError; returns it.
template <typename F>
TransportError TransportErrorOf(F&& call) {
    try {
        call();
    } catch (const TransportError& error) {
        return error;
    }
    ADD_FAILURE() << "no TransportError";
    return TransportError(TransportFailure::kOther, "none");
}

/// A port on 127.0.0.1 where nothing listens (bound, then closed).
int ClosedPort() {
    core::UniqueFd fd(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t len = sizeof addr;
    ::bind(fd.get(), reinterpret_cast<sockaddr*>(&addr), sizeof addr);
    ::getsockname(fd.get(), reinterpret_cast<sockaddr*>(&addr), &len);
    return ntohs(addr.sin_port);
}

/// A temporary file, removed at the end of the test.
class ScratchFile {
  public:
    ScratchFile() {
        char name[] = "/tmp/songd-net-test-XXXXXX";
        fd_.Reset(::mkstemp(name));
        path_ = name;
    }
    ~ScratchFile() { std::filesystem::remove(path_); }
    int fd() const { return fd_.get(); }
    void Write(const std::string& bytes) const {
        ASSERT_EQ(::pwrite(fd_.get(), bytes.data(), bytes.size(), 0), ssize_t(bytes.size()));
    }
    std::string Contents() const {
        std::string out(static_cast<size_t>(std::filesystem::file_size(path_)), '\0');
        EXPECT_EQ(::pread(fd_.get(), out.data(), out.size(), 0), ssize_t(out.size()));
        return out;
    }

  private:
    core::UniqueFd fd_;
    std::filesystem::path path_;
};

TEST(HttpClient, GetSendsHeadersAndReadsStatusHeadersAndBody) {
    TestServer server([](int fd, const Received&) {
        TestServer::Write(fd, TestServer::Answer200("hello", "X-Mixed-Case:  Value 1 \r\n"));
        return true;
    });
    HttpClient http;
    Response response = http.Send(
        {.url = server.Url("/path/../a?q=1"), .headers = {{"X-Token", "abc"}, {"X-Empty", ""}}});
    EXPECT_EQ(response.status, 200);
    EXPECT_EQ(response.body, "hello");
    EXPECT_EQ(response.Header("x-mixed-case"), "Value 1");
    EXPECT_EQ(response.Header("X-MIXED-CASE"), "Value 1");  // lookup ignores case
    EXPECT_EQ(response.Header("absent"), std::nullopt);
    for (const auto& [name, value] : response.headers) EXPECT_EQ(name, core::ToLower(name));

    const std::vector<Received> seen = server.requests();
    ASSERT_EQ(seen.size(), 1u);
    EXPECT_EQ(seen[0].method, "GET");
    EXPECT_EQ(seen[0].target, "/path/../a?q=1");  // sent as is
    EXPECT_EQ(seen[0].Header("x-token"), "abc");
    EXPECT_EQ(seen[0].Header("x-empty"), "");  // an empty value is sent empty
    EXPECT_EQ(seen[0].Header("expect"), std::nullopt);
    EXPECT_EQ(seen[0].Header("content-type"), std::nullopt);
}

TEST(HttpClient, PostSendsTheMemoryBodyAndAnyStatusIsAnAnswer) {
    TestServer server([](int fd, const Received& request) {
        TestServer::Write(fd, "HTTP/1.1 422 Unprocessable\r\nContent-Length: " +
                                  std::to_string(request.body.size()) +
                                  "\r\nConnection: close\r\n\r\n" + request.body);
        return true;
    });
    HttpClient http;
    const std::string form = "amount=99&currency=usd";
    Response response =
        http.Send({.method = "POST",
                   .url = server.Url("/v1/intents"),
                   .headers = {{"Content-Type", "application/x-www-form-urlencoded"}},
                   .body = RequestBody::Memory(form)});
    EXPECT_EQ(response.status, 422);
    EXPECT_EQ(response.body, form);
    const std::vector<Received> seen = server.requests();
    ASSERT_EQ(seen.size(), 1u);
    EXPECT_EQ(seen[0].method, "POST");
    EXPECT_EQ(seen[0].body, form);
    EXPECT_EQ(seen[0].Header("content-length"), std::to_string(form.size()));
    EXPECT_EQ(seen[0].Header("content-type"), "application/x-www-form-urlencoded");
}

TEST(HttpClient, OtherMethodsKeepTheirName) {
    TestServer server([](int fd, const Received&) {
        TestServer::Write(fd, "HTTP/1.1 204 No Content\r\nConnection: close\r\n\r\n");
        return true;
    });
    HttpClient http;
    const std::string xml = "<Delete/>";
    EXPECT_EQ(http.Send({.method = "DELETE", .url = server.Url("/k")}).status, 204);
    EXPECT_EQ(http.Send({.method = "HEAD", .url = server.Url("/k")}).status, 204);
    EXPECT_EQ(http.Send({.method = "PATCH",
                         .url = server.Url("/k"),
                         .headers = {{"Content-Type", "application/xml"}},
                         .body = RequestBody::Memory(xml)})
                  .status,
              204);
    const std::vector<Received> seen = server.requests();
    ASSERT_EQ(seen.size(), 3u);
    EXPECT_EQ(seen[0].method, "DELETE");
    EXPECT_EQ(seen[1].method, "HEAD");
    EXPECT_EQ(seen[2].method, "PATCH");
    EXPECT_EQ(seen[2].body, xml);
}

TEST(HttpClient, BodyOverTheCapIsAnErrorNotRetried) {
    TestServer server([](int fd, const Received&) {
        TestServer::Write(fd, TestServer::Answer200(std::string(100, 'x')));
        return true;
    });
    HttpClient http;
    const TransportError error =
        TransportErrorOf([&] { http.Send({.url = server.Url("/big"), .max_response_bytes = 10}); });
    EXPECT_EQ(error.failure(), TransportFailure::kOther);
    EXPECT_FALSE(error.retryable());
    EXPECT_NE(std::string(error.what()).find("larger than 10 bytes"), std::string::npos)
        << error.what();
    // Exactly at the cap is fine.
    EXPECT_EQ(http.Send({.url = server.Url("/big"), .max_response_bytes = 100}).body.size(), 100u);
}

TEST(HttpClient, AnswerCutShortIsARetryableReceiveError) {
    TestServer server([](int fd, const Received&) {
        TestServer::Write(fd, "HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\nonly this");
        return true;  // closed with 91 bytes missing
    });
    HttpClient http;
    const TransportError error = TransportErrorOf([&] { http.Send({.url = server.Url("/")}); });
    EXPECT_EQ(error.failure(), TransportFailure::kReceive) << error.what();
    EXPECT_TRUE(error.retryable());
    EXPECT_EQ(http.OpenHandles(), 0u);  // a handle that failed mid-transfer is not kept
}

TEST(HttpClient, ClosedWithoutAnyAnswerIsAReceiveError) {
    TestServer server([](int, const Received&) { return true; });
    HttpClient http;
    const TransportError error = TransportErrorOf([&] { http.Send({.url = server.Url("/")}); });
    EXPECT_EQ(error.failure(), TransportFailure::kReceive) << error.what();
    EXPECT_TRUE(error.retryable());
}

TEST(HttpClient, RefusedConnectionIsAConnectErrorThatNeverQuotesHeaders) {
    HttpClient http;
    const TransportError error = TransportErrorOf([&] {
        http.Send({.url = "http://127.0.0.1:" + std::to_string(ClosedPort()) + "/",
                   .headers = {{"Authorization", "Bearer sk_test_secretvalue"}}});
    });
    EXPECT_EQ(error.failure(), TransportFailure::kConnect) << error.what();
    EXPECT_TRUE(error.retryable());
    EXPECT_EQ(std::string(error.what()).find("sk_test_secretvalue"), std::string::npos);
}

TEST(HttpClient, SilentServerIsATimeout) {
    TestServer server([](int, const Received&) { return false; });  // holds the connection
    HttpClient http;
    const auto started = std::chrono::steady_clock::now();
    const TransportError error = TransportErrorOf([&] {
        http.Send({.url = server.Url("/"),
                   .timeouts = {.connect = milliseconds(5000), .total = milliseconds(300)}});
    });
    EXPECT_EQ(error.failure(), TransportFailure::kTimeout) << error.what();
    EXPECT_TRUE(error.retryable());
    // It was the total limit that ended it (curl may stop a millisecond or so early).
    EXPECT_GE(std::chrono::steady_clock::now() - started, milliseconds(250));
}

TEST(HttpClient, StalledServerIsATimeoutWithoutATotalLimit) {
    TestServer server([](int, const Received&) { return false; });
    HttpClient http;
    const TransportError error = TransportErrorOf([&] {
        http.Send({.url = server.Url("/"), .timeouts = {.stall = std::chrono::seconds(1)}});
    });
    EXPECT_EQ(error.failure(), TransportFailure::kTimeout) << error.what();
}

TEST(HttpClient, UnusableRequestsAreRequestErrors) {
    HttpClient http;
    for (const char* url : {"ftp://127.0.0.1/x", "file:///etc/passwd", "http://[::1"}) {
        SCOPED_TRACE(url);
        const TransportError error = TransportErrorOf([&] { http.Send({.url = url}); });
        EXPECT_EQ(error.failure(), TransportFailure::kRequest) << error.what();
        EXPECT_FALSE(error.retryable());
    }
}

TEST(HttpClient, FileRangeBodyIsReadFromTheStartOnEverySend) {
    TestServer server([](int fd, const Received&) {
        TestServer::Write(fd, TestServer::Answer200(""));
        return true;
    });
    ScratchFile file;
    file.Write("0123456789abcdef");
    HttpClient http;
    const Request request{.method = "PUT",
                          .url = server.Url("/object"),
                          .body = RequestBody::FileRange(file.fd(), 4, 6)};
    EXPECT_EQ(http.Send(request).status, 200);
    EXPECT_EQ(http.Send(request).status, 200);  // a retry sends the same bytes
    const std::vector<Received> seen = server.requests();
    ASSERT_EQ(seen.size(), 2u);
    for (const Received& r : seen) {
        EXPECT_EQ(r.method, "PUT");
        EXPECT_EQ(r.body, "456789");
        EXPECT_EQ(r.Header("content-length"), "6");
    }
    EXPECT_EQ(::lseek(file.fd(), 0, SEEK_CUR), 0);  // pread: the file position is untouched
}

TEST(HttpClient, FileShorterThanTheRangeFailsTheRequest) {
    TestServer server([](int fd, const Received&) {
        TestServer::Write(fd, TestServer::Answer200(""));
        return true;
    });
    ScratchFile file;
    file.Write("short");
    HttpClient http;
    const TransportError error = TransportErrorOf([&] {
        http.Send({.method = "PUT",
                   .url = server.Url("/object"),
                   .body = RequestBody::FileRange(file.fd(), 0, 100)});
    });
    EXPECT_EQ(error.failure(), TransportFailure::kOther) << error.what();
    EXPECT_FALSE(error.retryable());
    EXPECT_NE(std::string(error.what()).find("ended before"), std::string::npos) << error.what();
}

TEST(HttpClient, DownloadWritesA2xxBodyIntoTheFdAndNothingElse) {
    std::string big(3 << 20, '\0');
    for (size_t i = 0; i < big.size(); ++i) big[i] = static_cast<char>('a' + i % 26);
    TestServer server([&](int fd, const Received& request) {
        if (request.target == "/missing") {
            TestServer::Write(fd,
                              "HTTP/1.1 404 Not Found\r\nContent-Length: 9\r\n"
                              "Connection: close\r\n\r\nNoSuchKey");
        } else {
            TestServer::Write(fd, TestServer::Answer200(big));
        }
        return true;
    });
    ScratchFile file;
    file.Write("stale bytes from an earlier attempt that must go");
    HttpClient http;
    // Larger than the in-memory cap: the cap is for bodies kept in memory only.
    Response response = http.Send(
        {.url = server.Url("/song"), .download_fd = file.fd(), .max_response_bytes = 1024});
    EXPECT_EQ(response.status, 200);
    EXPECT_TRUE(response.body.empty());
    EXPECT_EQ(response.downloaded_bytes, int64_t(big.size()));
    EXPECT_TRUE(file.Contents() == big);

    // An error answer is kept in memory for the caller to read; the file is left empty.
    Response missing = http.Send({.url = server.Url("/missing"), .download_fd = file.fd()});
    EXPECT_EQ(missing.status, 404);
    EXPECT_EQ(missing.body, "NoSuchKey");
    EXPECT_EQ(missing.downloaded_bytes, 0);
    EXPECT_EQ(file.Contents(), "");
}

TEST(HttpClient, ConnectToSendsTheNameButConnectsElsewhere) {
    TestServer server([](int fd, const Received& request) {
        TestServer::Write(fd, TestServer::Answer200(request.Header("host").value_or("")));
        return true;
    });
    const std::string port = std::to_string(server.port());
    HttpClient http;
    Response response =
        http.Send({.url = "http://bucket.s3.example.invalid:" + port + "/k",
                   .connect_to = {"bucket.s3.example.invalid:" + port + ":127.0.0.1:" + port}});
    EXPECT_EQ(response.status, 200);
    EXPECT_EQ(response.body, "bucket.s3.example.invalid:" + port);
}

TEST(HttpClient, HandlesAreReusedAcrossRequests) {
    TestServer server([](int fd, const Received&) {
        TestServer::Write(fd, TestServer::Answer200("ok"));
        return true;
    });
    HttpClient http;
    for (int i = 0; i < 3; ++i) EXPECT_EQ(http.Send({.url = server.Url("/")}).body, "ok");
    EXPECT_EQ(http.OpenHandles(), 1u);
}

TEST(HttpClient, RetrierRecoversFromAnAnswerCutShort) {
    std::atomic<int> served{0};
    TestServer server([&](int fd, const Received&) {
        if (served++ == 0) {
            TestServer::Write(fd, "HTTP/1.1 200 OK\r\nContent-Length: 50\r\n\r\ncut");
        } else {
            TestServer::Write(fd, TestServer::Answer200("whole"));
        }
        return true;
    });
    HttpClient http;
    Retrier retrier({.max_attempts = 3}, [](milliseconds) {});
    struct Outcome {
        std::optional<Response> response;
        std::optional<TransportError> error;
    };
    auto [outcome, attempts] = retrier.Run<Outcome>(
        [&](int) {
            try {
                return Outcome{.response = http.Send({.url = server.Url("/")})};
            } catch (const TransportError& error) {
                return Outcome{.error = error};
            }
        },
        {.retryable = [](const Outcome& o) { return o.error && o.error->retryable(); }});
    EXPECT_EQ(attempts, 2);
    ASSERT_TRUE(outcome.response.has_value());
    EXPECT_EQ(outcome.response->body, "whole");
}

}  // namespace
}  // namespace songd::net
