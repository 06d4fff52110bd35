#pragma once
/// @file
/// Starts s3rver and its fault proxy (tests/s3/server/launch.js) on free loopback ports for
/// one test program, and talks to the proxy's fault controls.
///
///   S3TestServer server({"songs"});
///   core::Config config = server.Config("songs", /*through_proxy=*/true);
///   server.SetFaults(R"([{"method":"PUT","status":503,"code":"SlowDown","times":2}])");
///   auto log = server.Log();   // every request the proxy saw

#include <sys/types.h>

#include <optional>
#include <string>
#include <vector>

#include "core/config.h"

namespace songd::testing {

/// @brief One request the fault proxy saw.
struct ProxyLogEntry {
    std::string method;
    std::string url;
    std::string fault;  ///< empty when forwarded
    /// The body matched its x-amz-content-sha256 / Content-MD5; nullopt: none announced.
    std::optional<bool> sha256_ok;
    std::optional<bool> md5_ok;
};

/// @brief A running s3rver plus fault proxy; stopped by the destructor.
class S3TestServer {
  public:
    /// `constant_time_delete`: see launch.js --constant-time-delete (benchmarks that
    /// delete very many objects under one prefix).
    explicit S3TestServer(const std::vector<std::string>& buckets,
                          bool constant_time_delete = false);
    ~S3TestServer();
    S3TestServer(const S3TestServer&) = delete;
    S3TestServer& operator=(const S3TestServer&) = delete;

    int s3rver_port() const { return s3rver_port_; }
    int proxy_port() const { return proxy_port_; }
    /// A config for `bucket` with s3rver's credentials, through the proxy or direct.
    core::Config Config(const std::string& bucket, bool through_proxy) const;

    void SetFaults(const std::string& rules_json);
    std::vector<ProxyLogEntry> Log();
    void ClearLog();

  private:
    pid_t pid_ = -1;
    int stdin_fd_ = -1;
    int s3rver_port_ = 0;
    int proxy_port_ = 0;
    std::string data_dir_;
};

/// Peak resident set size of this process since the last ResetPeakRss, in bytes.
int64_t PeakRssBytes();
/// Current resident set size, in bytes.
int64_t CurrentRssBytes();
/// Resets the peak (writes 5 to /proc/self/clear_refs); false when the kernel refuses.
bool ResetPeakRss();

}  // namespace songd::testing
