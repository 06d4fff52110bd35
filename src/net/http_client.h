#pragma once
/// @file
/// songd's one HTTP client, on libcurl (Stripe, S3 and the test harness use it). Every CURL
/// handle lives in an RAII holder in a core::ResourcePool, so keep-alive connections (and TLS
/// sessions) are reused; no CURLcode leaves http_client.cpp: a request that gets no whole HTTP
/// answer throws `TransportError`, whose kind says whether trying again can help.
///
///   net::HttpClient http;
///   net::Request request{.method = "POST", .url = "http://127.0.0.1:12111/v1/payment_intents"};
///   request.headers = {{"Content-Type", "application/x-www-form-urlencoded"}};
///   std::string form = "amount=99&currency=usd";
///   request.body = net::RequestBody::Memory(form);            // or FileRange(fd, offset, n)
///   request.timeouts = {.connect = 3s, .total = 10s};
///   net::Response response = http.Send(request);              // any HTTP status is an answer
///   if (response.status == 200) Use(response.body, response.Header("etag"));
///
/// Headers go out exactly as given (curl adds no "Expect: 100-continue" and no form
/// Content-Type); response header names are lowercase. Header values may be secrets: they
/// are never put in an error or a log line. Blocking: call it from a worker thread.

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "core/resource_pool.h"

namespace songd::net {

using HeaderList = std::vector<std::pair<std::string, std::string>>;

/// @brief Where a request body comes from. Each Send reads it from the start again, so a
/// retried request sends the same bytes.
class RequestBody {
  public:
    RequestBody() = default;
    /// `bytes` must outlive every Send that uses this body.
    static RequestBody Memory(std::string_view bytes);
    /// `length` bytes of `fd` from `offset`, read with pread (the file position is untouched).
    static RequestBody FileRange(int fd, int64_t offset, int64_t length);

    bool empty() const { return size() == 0; }
    int64_t size() const { return kind_ == Kind::kFileRange ? length_ : int64_t(memory_.size()); }
    /// Copies up to `size` bytes from `position` of the body; -1 with errno when a read fails,
    /// 0 when the file ends early.
    int64_t Read(int64_t position, char* buffer, std::size_t size) const;

  private:
    enum class Kind { kMemory, kFileRange };
    Kind kind_ = Kind::kMemory;
    std::string_view memory_;
    int fd_ = -1;
    int64_t offset_ = 0;
    int64_t length_ = 0;
};

/// @brief How long a request may take. Zero turns a limit off (never `connect`).
struct Timeouts {
    std::chrono::milliseconds connect{10'000};  ///< name resolution and TCP/TLS connect
    std::chrono::milliseconds total{0};         ///< the whole exchange, connect included
    /// Slower than 1 byte/s for this long is a timeout (a stalled peer), whatever the size.
    std::chrono::seconds stall{0};
};

/// @brief One request.
struct Request {
    std::string method = "GET";  ///< GET HEAD PUT POST DELETE, or any other token
    std::string url;             ///< http(s) only; sent as is (no "." or ".." folding)
    HeaderList headers;          ///< an empty value sends the header empty
    RequestBody body;
    /// When >= 0, a 2xx body is written here instead of `Response::body`; the descriptor is
    /// truncated to 0 bytes first, so a retried download starts over.
    int download_fd = -1;
    /// Bodies kept in memory beyond this fail the request (TransportError kOther), so a broken
    /// upstream cannot make us buffer without bound.
    std::size_t max_response_bytes = std::size_t{4} << 20;
    Timeouts timeouts;
    /// curl CONNECT_TO entries ("host:port:connect-host:connect-port"): where to connect for
    /// a name, while Host and TLS still use the name.
    std::vector<std::string> connect_to;
    /// When set, called with every address (numeric IPv4/IPv6 text) curl is about to connect
    /// to, after name resolution; false refuses it (TransportError kRequest when no allowed
    /// address answered). Client webhooks use it against SSRF: the check is on the address
    /// actually connected, so a name that resolves to a private address is caught too.
    std::function<bool(const std::string& address)> allow_address;
};

/// @brief Any HTTP answer, whatever its status.
struct Response {
    long status = 0;
    HeaderList headers;  ///< names in lowercase, in arrival order (the final answer's only)
    std::string body;    ///< the body, unless it went to `download_fd`
    int64_t downloaded_bytes = 0;  ///< bytes written to `download_fd`

    /// First header with this name (case-insensitive), if any.
    std::optional<std::string> Header(std::string_view name) const;
};

/// @brief Why a request got no whole HTTP answer.
enum class TransportFailure {
    kConnect,  ///< name resolution or TCP/TLS connection failed
    kTimeout,  ///< connect, total or stall timeout elapsed
    kSend,     ///< the connection broke while sending
    kReceive,  ///< the connection broke, or closed, before a whole answer arrived
    kRequest,  ///< the request itself is unusable (bad URL, unsupported scheme): never retry
    kOther,    ///< anything else: body over the cap, a body file unreadable, TLS verification...
};

/// Lowercase name of a failure kind ("connect", "timeout", ...), for logs and tests.
const char* FailureName(TransportFailure failure);

/// @brief A request that got no whole HTTP answer. `what()` names the failure (curl's text),
/// never a header.
class TransportError : public std::runtime_error {
  public:
    TransportError(TransportFailure failure, const std::string& what)
        : std::runtime_error(what), failure_(failure) {}
    TransportFailure failure() const { return failure_; }
    /// Network trouble (connect, timeout, send, receive) that the same request may not meet
    /// a moment later. Callers with a wider rule look at failure() themselves; kRequest is
    /// never worth another try.
    bool retryable() const {
        return failure_ == TransportFailure::kConnect || failure_ == TransportFailure::kTimeout ||
               failure_ == TransportFailure::kSend || failure_ == TransportFailure::kReceive;
    }

  private:
    TransportFailure failure_;
};

/// @brief Settings of one HttpClient.
struct ClientOptions {
    core::PoolOptions pool{.max_idle = 8, .exhausted_message = "every HTTP handle stayed busy"};
};

/// @brief Thread-safe blocking HTTP client with a pool of reusable CURL handles.
class HttpClient {
  public:
    explicit HttpClient(ClientOptions options = {});
    ~HttpClient();
    HttpClient(const HttpClient&) = delete;
    HttpClient& operator=(const HttpClient&) = delete;

    /// Sends the request once and waits for the whole answer. Throws TransportError.
    Response Send(const Request& request);

    /// Handles open (lent or idle), for tests.
    std::size_t OpenHandles() const { return pool_.Open(); }

  private:
    class Handle;
    core::ResourcePool<Handle> pool_;
};

}  // namespace songd::net
