#pragma once
/// @file
/// Api: the application behind the HTTP server — the route table and the cross-cutting
/// rules every request passes (CORS, API key, rate limit, security headers, logging,
/// metrics). It knows HTTP statuses; it knows nothing of sockets.
///
///   http::Api api(context);
///   auto run = api.Prepare(request, api.router().Find(request));   // route, CORS, key, rate
///   http::Response r = api.Execute(request, run);   // on the pool when run says so
///   api.Finish(request, r, seconds);        // headers, log line, metrics

#include <atomic>
#include <chrono>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <unordered_map>

#include "core/config.h"
#include "http/access_log.h"
#include "http/message.h"
#include "http/metrics.h"
#include "http/router.h"
#include "http/status_cache.h"
#include "jobs/job_changes.h"
#include "jobs/job_store.h"
#include "jobs/worker_pool.h"
#include "storage/reference_storage.h"
#include "storage/song_storage.h"

namespace songd::payment {
class PaymentService;
class WebhookHandler;
}  // namespace songd::payment

namespace songd::http {

/// @brief What handlers share: configuration, the store, the workers, counters.
struct ApiContext {
    const core::Config& config;
    jobs::JobStore& store;
    jobs::WorkerPool* workers = nullptr;  ///< null when this process runs no workers
    Metrics& metrics;
    std::atomic<bool>& shutting_down;
    std::function<std::string()> extra_metrics;   ///< more Prometheus lines (S3, retention…)
    storage::SongStorage* storage = nullptr;      ///< local files and the optional S3 copy
    payment::PaymentService* payments = nullptr;  ///< Stripe: verification, intents
    payment::WebhookHandler* webhook = nullptr;   ///< Stripe events
    jobs::JobChanges* changes = nullptr;  ///< job changes of this process (events, Prefer: wait)
    /// Event streams open now (MAX_EVENT_STREAMS); shared with each stream's slot.
    std::shared_ptr<std::atomic<int>> event_streams = std::make_shared<std::atomic<int>>(0);
    storage::ReferenceStorage* references = nullptr;  ///< uploaded reference songs
    StatusCache* status_cache = nullptr;              ///< null: status always reads the store
};

/// @brief Per-client-address token bucket: RATE_LIMIT_PER_HOUR requests an hour.
class RateLimiter {
  public:
    explicit RateLimiter(int per_hour) : per_hour_(per_hour) {}
    /// nullopt when allowed; otherwise seconds until the next request is allowed.
    std::optional<int> Take(const std::string& client, std::chrono::steady_clock::time_point now);

  private:
    struct Bucket {
        double tokens;
        std::chrono::steady_clock::time_point updated;
    };
    int per_hour_;
    std::mutex mutex_;
    std::unordered_map<std::string, Bucket> buckets_;
};

/// @brief The decision taken on the I/O thread for one request.
struct Prepared {
    const Router::Route* route = nullptr;
    std::optional<Response> early;  ///< answered already (404, 405, 401, 429, preflight)
    Run run = Run::kInline;
};

/// A fresh correlation id (20 hex characters), sent as X-Request-Id and logged with the request.
std::string NewRequestId();

/// For a 5xx problem+json answer: logs the full detail under `request.id` and leaves the client
/// a generic detail plus that id, so no database host, bucket, key or upstream message leaves
/// the service. 4xx answers are untouched.
void SanitizeServerError(const Request& request, Response& response);

/// @brief Route table plus middleware.
class Api {
  public:
    explicit Api(ApiContext context);

    /// `match` is router().Find(request), taken once per request by the server.
    Prepared Prepare(Request& request, const Router::Match& match);
    /// The largest body the route of `request` (method and path set) accepts: its own limit,
    /// else `fallback`. Called after the headers, before the body is read.
    static uint64_t BodyLimit(const Router::Match& match, uint64_t fallback);
    /// For a route with its own (large) body limit: the 401 of a missing or wrong API key,
    /// decided from the headers, so an upload's body is not read only to be refused.
    std::optional<Response> RefuseBeforeBody(const Request& request,
                                             const Router::Match& match) const;
    Response Execute(Request& request, const Prepared& prepared);
    /// On the I/O thread, for a route with an inline handler: its answer from memory, or
    /// nullopt when Execute must run (on the pool).
    std::optional<Response> TryInline(Request& request, const Prepared& prepared);
    /// Adds CORS and security headers, writes the log line and the metrics.
    void Finish(const Request& request, const Prepared& prepared, Response& response,
                double seconds);

    Router& router() { return router_; }
    ApiContext& context() { return context_; }

  private:
    void AddCorsHeaders(const Request& request, Response& response) const;
    std::optional<Response> CheckApiKey(const Request& request) const;

    ApiContext context_;
    Router router_;
    RateLimiter limiter_;
    std::unique_ptr<AccessLog> access_log_;  ///< null: ACCESS_LOG=false or LOG_LEVEL above info
};

}  // namespace songd::http
