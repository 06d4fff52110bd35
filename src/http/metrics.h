#pragma once
/// @file
/// Metrics: counters and a latency histogram kept in memory and rendered in the
/// Prometheus text format.
///
///   metrics.ObserveRequest("GET", "/api/v1/status/{job_id}", 200, 0.0004);
///   std::string text = metrics.Render(extra_lines);

#include <array>
#include <atomic>
#include <map>
#include <mutex>
#include <string>
#include <string_view>
#include <tuple>

namespace songd::http {

/// @brief Request counters by method, route and status, and a duration histogram.
class Metrics {
  public:
    /// `method` folds into one of the standard methods or "OTHER"; `route` must come from a
    /// closed set (a route pattern, or "unmatched"): every distinct label stays in memory.
    void ObserveRequest(std::string_view method, std::string_view route, int status,
                        double seconds);
    /// Prometheus text; `extra` is appended (gauges computed by the caller).
    std::string Render(const std::string& extra) const;

    /// Connections: open now, refused over MAX_CONNECTIONS / MAX_CONNECTIONS_PER_IP.
    std::atomic<int64_t> connections_open{0};
    std::atomic<int64_t> connections_refused{0};
    /// Access log lines dropped because the writer's buffer was full.
    std::atomic<int64_t> access_log_dropped{0};

    /// The standard method name, or "OTHER" for any other token.
    static std::string_view MethodLabel(std::string_view method);

  private:
    static constexpr std::array<double, 10> kBuckets = {0.0005, 0.001, 0.0025, 0.005, 0.01,
                                                        0.025,  0.05,  0.1,    0.5,   2.5};
    mutable std::mutex mutex_;
    /// Transparent: a request's series is found by views, a string is made only for a new one.
    std::map<std::tuple<std::string, std::string, int>, int64_t, std::less<>> requests_;
    std::array<int64_t, kBuckets.size() + 1> histogram_{};
    double duration_sum_ = 0;
    int64_t duration_count_ = 0;
};

}  // namespace songd::http
