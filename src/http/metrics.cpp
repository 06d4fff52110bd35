#include "http/metrics.h"

#include <cstdio>
#include <string_view>

namespace songd::http {

std::string_view Metrics::MethodLabel(std::string_view method) {
    static constexpr std::string_view kKnown[] = {"GET",     "HEAD",  "POST",  "PUT",    "DELETE",
                                                  "OPTIONS", "PATCH", "TRACE", "CONNECT"};
    for (auto known : kKnown) {
        if (method == known) return known;
    }
    return "OTHER";
}

void Metrics::ObserveRequest(std::string_view method, std::string_view route, int status,
                             double seconds) {
    // Labels come from a closed set, so the series never grow with what clients send.
    std::string_view method_label = MethodLabel(method);
    if (status < 100 || status > 599) status = 0;
    std::lock_guard lock(mutex_);
    auto it = requests_.find(
        std::tuple<std::string_view, std::string_view, int>{method_label, route, status});
    if (it == requests_.end()) {
        it = requests_.emplace(std::tuple{std::string(method_label), std::string(route), status}, 0)
                 .first;
    }
    ++it->second;
    size_t i = 0;
    while (i < kBuckets.size() && seconds > kBuckets[i]) ++i;
    ++histogram_[i];
    duration_sum_ += seconds;
    ++duration_count_;
}

std::string Metrics::Render(const std::string& extra) const {
    // Copied under the lock, formatted outside it: the I/O threads take the same lock for
    // every request and must not wait for a scrape.
    decltype(requests_) requests;
    decltype(histogram_) histogram;
    double duration_sum = 0;
    int64_t duration_count = 0;
    {
        std::lock_guard lock(mutex_);
        requests = requests_;
        histogram = histogram_;
        duration_sum = duration_sum_;
        duration_count = duration_count_;
    }
    std::string out;
    out += "# HELP songd_http_requests_total HTTP requests by method, route and status.\n";
    out += "# TYPE songd_http_requests_total counter\n";
    for (const auto& [key, count] : requests) {
        const auto& [method, route, status] = key;
        out += "songd_http_requests_total{method=\"" + method + "\",route=\"" + route +
               "\",status=\"" + std::to_string(status) + "\"} " + std::to_string(count) + "\n";
    }
    out += "# HELP songd_http_request_duration_seconds Time to answer a request.\n";
    out += "# TYPE songd_http_request_duration_seconds histogram\n";
    int64_t cumulative = 0;
    char buf[64];
    for (size_t i = 0; i < kBuckets.size(); ++i) {
        cumulative += histogram[i];
        std::snprintf(buf, sizeof buf, "%g", kBuckets[i]);
        out += std::string("songd_http_request_duration_seconds_bucket{le=\"") + buf + "\"} " +
               std::to_string(cumulative) + "\n";
    }
    cumulative += histogram.back();
    out += "songd_http_request_duration_seconds_bucket{le=\"+Inf\"} " + std::to_string(cumulative) +
           "\n";
    std::snprintf(buf, sizeof buf, "%.6f", duration_sum);
    out += std::string("songd_http_request_duration_seconds_sum ") + buf + "\n";
    out += "songd_http_request_duration_seconds_count " + std::to_string(duration_count) + "\n";
    out += "# HELP songd_http_connections_open Client connections open now.\n";
    out += "# TYPE songd_http_connections_open gauge\n";
    out += "songd_http_connections_open " + std::to_string(connections_open.load()) + "\n";
    out += "# HELP songd_http_connections_refused_total Connections answered 503 over the caps.\n";
    out += "# TYPE songd_http_connections_refused_total counter\n";
    out +=
        "songd_http_connections_refused_total " + std::to_string(connections_refused.load()) + "\n";
    out += "# HELP songd_access_log_dropped_total Access log lines dropped (writer behind).\n";
    out += "# TYPE songd_access_log_dropped_total counter\n";
    out += "songd_access_log_dropped_total " + std::to_string(access_log_dropped.load()) + "\n";
    out += extra;
    return out;
}

}  // namespace songd::http
