#include "http/metrics.h"

#include <cstdio>

namespace songd::http {

void Metrics::ObserveRequest(const std::string& method, const std::string& route, int status,
                             double seconds) {
    std::lock_guard lock(mutex_);
    ++requests_[{method, route, status}];
    size_t i = 0;
    while (i < kBuckets.size() && seconds > kBuckets[i]) ++i;
    ++histogram_[i];
    duration_sum_ += seconds;
    ++duration_count_;
}

std::string Metrics::Render(const std::string& extra) const {
    std::string out;
    std::lock_guard lock(mutex_);
    out += "# HELP songd_http_requests_total HTTP requests by method, route and status.\n";
    out += "# TYPE songd_http_requests_total counter\n";
    for (const auto& [key, count] : requests_) {
        const auto& [method, route, status] = key;
        out += "songd_http_requests_total{method=\"" + method + "\",route=\"" + route +
               "\",status=\"" + std::to_string(status) + "\"} " + std::to_string(count) + "\n";
    }
    out += "# HELP songd_http_request_duration_seconds Time to answer a request.\n";
    out += "# TYPE songd_http_request_duration_seconds histogram\n";
    int64_t cumulative = 0;
    char buf[64];
    for (size_t i = 0; i < kBuckets.size(); ++i) {
        cumulative += histogram_[i];
        std::snprintf(buf, sizeof buf, "%g", kBuckets[i]);
        out += std::string("songd_http_request_duration_seconds_bucket{le=\"") + buf + "\"} " +
               std::to_string(cumulative) + "\n";
    }
    cumulative += histogram_.back();
    out += "songd_http_request_duration_seconds_bucket{le=\"+Inf\"} " + std::to_string(cumulative) +
           "\n";
    std::snprintf(buf, sizeof buf, "%.6f", duration_sum_);
    out += std::string("songd_http_request_duration_seconds_sum ") + buf + "\n";
    out += "songd_http_request_duration_seconds_count " + std::to_string(duration_count_) + "\n";
    out += extra;
    return out;
}

}  // namespace songd::http
