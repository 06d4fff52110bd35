#pragma once
/// @file
/// A small blocking HTTP client on libcurl. Every CURL handle lives in an RAII holder, idle
/// handles are pooled so keep-alive connections (and TLS sessions) are reused, and no CURLcode
/// leaves this file: a request that gets no HTTP answer throws `TransportError`.
///
///   payment::HttpClient http;
///   payment::HttpRequest request;
///   request.method = "POST";
///   request.url = "http://127.0.0.1:12111/v1/payment_intents";
///   request.headers = {{"Content-Type", "application/x-www-form-urlencoded"}};
///   request.body = "amount=99&currency=usd";
///   payment::HttpResponse response = http.Send(request);   // any HTTP status is an answer
///
/// Blocking: call it from a worker thread, never from an I/O thread.

#include <chrono>
#include <cstddef>
#include <memory>
#include <mutex>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace songd::payment {

using HeaderList = std::vector<std::pair<std::string, std::string>>;

/// @brief One request. Header values may hold secrets: they are never logged or put in errors.
struct HttpRequest {
    std::string method = "GET";
    std::string url;
    HeaderList headers;
    std::string body;
    std::chrono::milliseconds connect_timeout{5000};
    std::chrono::milliseconds total_timeout{15000};
    /// Bodies beyond this are refused (the transfer fails with kOther), so a broken upstream
    /// cannot make us buffer without bound.
    std::size_t max_response_bytes = std::size_t{4} << 20;
};

/// @brief Any HTTP answer, whatever its status.
struct HttpResponse {
    long status = 0;
    HeaderList headers;  ///< names in lowercase, in arrival order
    std::string body;

    /// First header with this name (case-insensitive), if any.
    std::optional<std::string> Header(std::string_view name) const;
};

/// @brief Why a request got no HTTP answer.
enum class TransportFailure {
    kConnect,  ///< name resolution or TCP/TLS connection failed
    kTimeout,  ///< connect or total timeout elapsed
    kSend,     ///< the connection broke while sending
    kReceive,  ///< the connection broke, or closed, before a whole answer arrived
    kRequest,  ///< the request itself is unusable (bad URL, unsupported scheme): never retry
    kOther,    ///< anything else (response too large, out of memory, TLS verification...)
};

/// @brief A request that got no HTTP answer. `what()` names the failure, never a header.
class TransportError : public std::runtime_error {
  public:
    TransportError(TransportFailure failure, const std::string& what)
        : std::runtime_error(what), failure_(failure) {}
    TransportFailure failure() const { return failure_; }
    /// Whether the same request may succeed a moment later.
    bool retryable() const { return failure_ != TransportFailure::kRequest; }

  private:
    TransportFailure failure_;
};

/// @brief Thread-safe blocking HTTP client with a pool of reusable CURL handles.
class HttpClient {
  public:
    HttpClient();
    ~HttpClient();
    HttpClient(const HttpClient&) = delete;
    HttpClient& operator=(const HttpClient&) = delete;

    /// Sends the request and waits for the whole answer. Throws TransportError.
    HttpResponse Send(const HttpRequest& request);

    /// Percent-encodes everything but RFC 3986 unreserved characters (form and path parts).
    static std::string UrlEncode(std::string_view text);

  private:
    class Handle;
    std::unique_ptr<Handle> Acquire();
    void Release(std::unique_ptr<Handle> handle);

    std::mutex mutex_;
    std::vector<std::unique_ptr<Handle>> idle_;
};

}  // namespace songd::payment
