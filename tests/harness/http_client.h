#pragma once
/// @file
/// A small blocking HTTP client for tests, on net::HttpClient (a fresh connection per call,
/// no retries: a test sees every failure), and raw socket exchanges.
///
///   auto r = test::Http("GET", base + "/healthz");
///   EXPECT_EQ(r.status, 200);

#include <map>
#include <string>
#include <vector>

namespace songd::test {

/// @brief One response, headers keyed by lowercase name.
struct HttpResult {
    long status = 0;
    std::multimap<std::string, std::string> headers;
    std::string body;
    std::string error;  ///< transport error, empty on success

    std::string Header(const std::string& lowercase_name) const;
};

HttpResult Http(const std::string& method, const std::string& url,
                const std::vector<std::string>& headers = {}, const std::string& body = "");

/// Sends raw bytes on a fresh connection and returns everything read until the server
/// closes or `max_wait_ms` passes.
std::string RawExchange(int port, const std::string& bytes, int max_wait_ms);

}  // namespace songd::test
