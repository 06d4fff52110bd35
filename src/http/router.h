#pragma once
/// @file
/// Router: method + path pattern → handler. Patterns use `{name}` for one path segment.
///
///   http::Router router;
///   router.Add("GET", "/api/v1/status/{job_id}", StatusHandler, http::Run::kBlocking);
///   auto match = router.Match(request);   // 404 / 405 decided here

#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "http/message.h"

namespace songd::http {

using Handler = std::function<Response(Request&)>;
/// Tried on the I/O thread before a blocking handler: an answer from memory (a cache), or
/// nullopt to go on to the pool. Must never block.
using InlineHandler = std::function<std::optional<Response>(Request&)>;

/// @brief Where a handler runs: on the I/O thread (only for work that never blocks), on the
/// blocking pool (database, files), or on the remote pool when it may wait on a third party
/// (Stripe, S3): a provider that hangs then fills only that pool, and status, generate and
/// queue keep answering.
enum class Run { kInline, kBlocking, kRemote };

/// @brief The routing table.
class Router {
  public:
    struct Route {
        std::string method;
        std::string pattern;
        std::vector<std::string> segments;
        Handler handler;
        Run run;
        std::string name;          ///< pattern, used as the metrics label
        uint64_t body_limit = 0;   ///< largest body accepted; 0: the server's default
        InlineHandler try_inline;  ///< optional: see InlineHandler
    };

    /// @brief Result of a lookup.
    struct Match {
        const Route* route = nullptr;      ///< null: see allowed
        std::vector<std::string> allowed;  ///< methods allowed on the path (405), empty: 404
    };

    void Add(std::string method, std::string pattern, Handler handler, Run run,
             uint64_t body_limit = 0, InlineHandler try_inline = {});
    /// Matches and fills `request.params`. HEAD matches GET routes.
    Match Find(Request& request) const;
    const std::vector<Route>& routes() const { return routes_; }

  private:
    std::vector<Route> routes_;
};

}  // namespace songd::http
