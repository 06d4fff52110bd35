#pragma once
/// @file
/// One blocking HTTP exchange over libcurl, for the S3 client. RAII owns every curl handle;
/// no CURLcode leaves this file: a transport failure is a `TransferResult` with text and a
/// retryable flag.
///
///   s3::CurlHandle handle;
///   s3::TransferRequest request{.method = "GET", .url = url, .headers = signed_headers};
///   s3::TransferResult result = s3::Transfer(handle, request);
///   if (!result.transport_error.empty()) { ... } else if (result.status == 200) { ... }

#include <cstdint>
#include <filesystem>
#include <map>
#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace songd::storage::s3 {

/// @brief Owns one CURL easy handle; reused across requests so connections stay alive.
class CurlHandle {
  public:
    CurlHandle();
    ~CurlHandle();
    CurlHandle(const CurlHandle&) = delete;
    CurlHandle& operator=(const CurlHandle&) = delete;
    void* get() const { return handle_; }

  private:
    void* handle_;
};

/// @brief Where a request body comes from. Each attempt reads it from the start again.
struct BodySource {
    enum class Kind { kNone, kMemory, kFileRange };
    Kind kind = Kind::kNone;
    std::string_view memory;  ///< kMemory: must outlive the transfer
    int fd = -1;              ///< kFileRange: read with pread, never moved
    int64_t offset = 0;
    int64_t length = 0;

    int64_t Size() const;
};

/// @brief Connection settings shared by every request of a client.
struct TransferSettings {
    long connect_timeout_ms = 10000;
    /// A transfer slower than 1 byte/s for this long is a network error (stalled peer).
    long stall_timeout_seconds = 60;
    /// curl CONNECT_TO entries ("host:port:connect-host:connect-port"), for DNS overrides.
    std::vector<std::string> connect_to;
    std::string user_agent = "songd";
};

/// @brief One HTTP request.
struct TransferRequest {
    std::string method;  ///< GET HEAD PUT POST DELETE
    std::string url;     ///< sent as is (curl does not normalise the path)
    std::vector<std::pair<std::string, std::string>> headers;
    BodySource body;
    /// When set, a 2xx body goes to this open file descriptor instead of `body`.
    int download_fd = -1;
    size_t max_body_bytes = 1 << 20;  ///< in-memory body cap; more is a transport error
};

/// @brief What came back. `transport_error` non-empty means no HTTP status was received.
struct TransferResult {
    long status = 0;
    std::map<std::string, std::string> headers;  ///< lowercase names
    std::string body;                            ///< error bodies and XML answers
    int64_t downloaded_bytes = 0;                ///< bytes written to download_fd
    std::string transport_error;
    bool transport_retryable = false;
};

/// Performs the request. Never throws for network trouble; throws core::Error(kInternal)
/// only when curl itself cannot be set up.
TransferResult Transfer(CurlHandle& handle, const TransferRequest& request,
                        const TransferSettings& settings);

}  // namespace songd::storage::s3
