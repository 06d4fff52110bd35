#include "harness/http_client.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <memory>

#include "core/text.h"
#include "net/http_client.h"

namespace songd::test {

std::string HttpResult::Header(const std::string& name) const {
    auto it = headers.find(name);
    return it == headers.end() ? "" : it->second;
}

HttpResult Http(const std::string& method, const std::string& url,
                const std::vector<std::string>& headers, const std::string& body) {
    net::Request request{.method = method, .url = url};
    bool has_content_type = false;
    for (const std::string& line : headers) {
        const auto colon = line.find(':');
        if (colon == std::string::npos) continue;
        std::string name(core::Trim(std::string_view(line).substr(0, colon)));
        std::string value(core::Trim(std::string_view(line).substr(colon + 1)));
        // "Name:" with nothing after it removes a header, as curl reads it: send nothing.
        if (value.empty()) continue;
        has_content_type = has_content_type || core::ToLower(name) == "content-type";
        request.headers.emplace_back(std::move(name), std::move(value));
    }
    if ((method == "POST" || !body.empty()) && !has_content_type) {
        // What a form-posting client (curl, a browser) sends with a body by default.
        request.headers.emplace_back("Content-Type", "application/x-www-form-urlencoded");
    }
    request.body = net::RequestBody::Memory(body);
    // Whole songs come back in one answer: no cap worth having in a test.
    request.max_response_bytes = std::size_t{1} << 30;
    request.timeouts = {.connect = std::chrono::seconds(60), .total = std::chrono::seconds(60)};

    HttpResult result;
    try {
        // A client (and so a connection) per call, never a retry: tests see each failure.
        net::HttpClient client;
        net::Response response = client.Send(request);
        result.status = response.status;
        for (auto& [name, value] : response.headers) {
            result.headers.emplace(std::move(name), std::move(value));
        }
        result.body = std::move(response.body);
    } catch (const net::TransportError& error) {
        result.error = std::string(net::FailureName(error.failure())) + ": " + error.what();
    }
    return result;
}

std::string RawExchange(int port, const std::string& bytes, int max_wait_ms) {
    int fd = ::socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_port = htons(static_cast<uint16_t>(port));
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0) {
        ::close(fd);
        return "<connect failed>";
    }
    size_t sent = 0;
    while (sent < bytes.size()) {
        ssize_t n = ::send(fd, bytes.data() + sent, bytes.size() - sent, MSG_NOSIGNAL);
        if (n <= 0) break;
        sent += static_cast<size_t>(n);
    }
    std::string out;
    auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(max_wait_ms);
    char buf[65536];
    while (std::chrono::steady_clock::now() < deadline) {
        pollfd p{fd, POLLIN, 0};
        int left = static_cast<int>(std::chrono::duration_cast<std::chrono::milliseconds>(
                                        deadline - std::chrono::steady_clock::now())
                                        .count());
        if (::poll(&p, 1, std::max(1, left)) <= 0) continue;
        ssize_t n = ::recv(fd, buf, sizeof buf, 0);
        if (n <= 0) {
            out += "<closed>";
            break;
        }
        out.append(buf, static_cast<size_t>(n));
    }
    ::close(fd);
    return out;
}

}  // namespace songd::test
