#pragma once
/// @file
/// Server: the HTTP/1.1 listener on Boost.Beast with C++20 coroutines. The only file that
/// includes Beast. Blocking handler work runs on a separate thread pool and is awaited, so
/// the I/O threads only parse and write.
///
///   http::Server server(config, api);
///   server.Listen();        // binds HOST:PORT, throws with a clear message on failure
///   std::thread t([&] { server.Run(); });
///   server.Shutdown();      // stop accepting, let in-flight requests finish (≤ 8 s)

#include <atomic>
#include <cstdint>
#include <memory>

#include "core/config.h"
#include "http/api.h"

namespace songd::http {

/// Limits applied to every connection.
struct ServerLimits {
    uint64_t body_limit = 1024 * 1024;  ///< 413 above, unless the route sets its own
    /// The largest limit a route sets (Router::Route::body_limit), for the header parse.
    uint64_t largest_body_limit = 0;
    uint32_t header_limit = 64 * 1024;  ///< 431 above
    int read_timeout_seconds = 15;      ///< idle or slow clients are dropped
    int write_timeout_seconds = 60;
};

/// @brief The HTTP server.
class Server {
  public:
    Server(const core::Config& config, Api& api, ServerLimits limits = {});
    ~Server();
    /// Binds HOST:PORT and resolves MAX_CONNECTIONS against the open-file limit (raising the
    /// soft limit to the hard one); throws with a clear message on failure.
    void Listen();
    uint16_t port() const;
    /// MAX_CONNECTIONS in effect (after Listen).
    int max_connections() const;
    /// Runs the I/O threads; returns after Shutdown.
    void Run();
    /// Thread-safe; idempotent.
    void Shutdown();

  private:
    void ResolveConnectionLimit();
    struct Impl;
    std::unique_ptr<Impl> impl_;
};

}  // namespace songd::http
