// Metrics labels come from a closed set: what clients send never grows memory.
#include "http/metrics.h"

#include <gtest/gtest.h>

#include <atomic>
#include <thread>

namespace songd::http {
namespace {

size_t CountSeries(const std::string& text) {
    size_t n = 0;
    for (size_t pos = 0; (pos = text.find("songd_http_requests_total{", pos)) != std::string::npos;
         ++pos) {
        ++n;
    }
    return n;
}

TEST(Metrics, UnknownMethodsFoldIntoOneLabel) {
    Metrics metrics;
    for (int i = 0; i < 10000; ++i) {
        metrics.ObserveRequest("MADEUP" + std::to_string(i), "unmatched", 405, 0.0001);
    }
    metrics.ObserveRequest("GET", "/healthz", 200, 0.0001);
    metrics.ObserveRequest("get", "/healthz", 200, 0.0001);  // methods are case-sensitive
    const std::string text = metrics.Render("");
    EXPECT_EQ(CountSeries(text), 3u) << text.substr(0, 2000);
    EXPECT_NE(text.find(R"(method="OTHER",route="unmatched",status="405"} 10000)"),
              std::string::npos);
    EXPECT_NE(text.find(R"(method="GET",route="/healthz",status="200"} 1)"), std::string::npos);
    EXPECT_NE(text.find(R"(method="OTHER",route="/healthz",status="200"} 1)"), std::string::npos);
    EXPECT_EQ(text.find("MADEUP"), std::string::npos);
    EXPECT_NE(text.find("songd_http_request_duration_seconds_count 10002"), std::string::npos);
}

TEST(Metrics, MethodLabelKeepsTheStandardMethods) {
    for (const char* m : {"GET", "HEAD", "POST", "PUT", "DELETE", "OPTIONS", "PATCH"}) {
        EXPECT_EQ(Metrics::MethodLabel(m), m);
    }
    EXPECT_EQ(Metrics::MethodLabel("BREW"), "OTHER");
    EXPECT_EQ(Metrics::MethodLabel(""), "OTHER");
    EXPECT_EQ(Metrics::MethodLabel("GET\n"), "OTHER");
}

TEST(Metrics, RenderingWhileRequestsAreCountedLosesNothing) {
    Metrics metrics;
    std::atomic<bool> done{false};
    std::thread scraper([&] {
        while (!done) EXPECT_FALSE(metrics.Render("").empty());
    });
    for (int i = 0; i < 20000; ++i) metrics.ObserveRequest("GET", "/x", 200, 0.001);
    done = true;
    scraper.join();
    EXPECT_NE(metrics.Render("").find(R"(route="/x",status="200"} 20000)"), std::string::npos);
}

}  // namespace
}  // namespace songd::http
