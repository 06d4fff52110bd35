#include "webhooks/url_policy.h"

#include <arpa/inet.h>
#include <netinet/in.h>

#include <algorithm>
#include <array>
#include <cctype>
#include <cstdint>
#include <cstring>

#include "core/text.h"

namespace songd::webhooks {

namespace {

bool IsPublicV4(uint32_t a) {  // host order
    auto in = [a](uint32_t net, int bits) {
        const uint32_t mask = bits == 0 ? 0 : ~uint32_t{0} << (32 - bits);
        return (a & mask) == net;
    };
    return !(in(0x00000000, 8) ||   // "this" network, 0.0.0.0
             in(0x0A000000, 8) ||   // 10/8
             in(0x64400000, 10) ||  // 100.64/10 shared (CGNAT)
             in(0x7F000000, 8) ||   // loopback
             in(0xA9FE0000, 16) ||  // link-local (cloud metadata 169.254.169.254)
             in(0xAC100000, 12) ||  // 172.16/12
             in(0xC0000000, 24) ||  // 192.0.0/24 protocol assignments
             in(0xC0000200, 24) ||  // TEST-NET-1
             in(0xC0A80000, 16) ||  // 192.168/16
             in(0xC6120000, 15) ||  // 198.18/15 benchmarking
             in(0xC6336400, 24) ||  // TEST-NET-2
             in(0xCB007100, 24) ||  // TEST-NET-3
             in(0xE0000000, 4) ||   // multicast
             in(0xF0000000, 4));    // reserved, broadcast
}

bool IsPublicV6(const std::array<unsigned char, 16>& b) {
    static const unsigned char kZero[16] = {};
    if (std::memcmp(b.data(), kZero, 15) == 0 && (b[15] == 0 || b[15] == 1))
        return false;  // :: ::1
    auto v4_at_end = [&b] {
        return (uint32_t{b[12]} << 24) | (uint32_t{b[13]} << 16) | (uint32_t{b[14]} << 8) | b[15];
    };
    // IPv4-mapped ::ffff:a.b.c.d and IPv4-compatible ::a.b.c.d: the IPv4 rules.
    static const unsigned char kMapped[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};
    if (std::memcmp(b.data(), kMapped, 12) == 0 || std::memcmp(b.data(), kZero, 12) == 0) {
        return IsPublicV4(v4_at_end());
    }
    // NAT64 64:ff9b::/96 reaches the embedded IPv4 address.
    static const unsigned char kNat64[12] = {0, 0x64, 0xff, 0x9b, 0, 0, 0, 0, 0, 0, 0, 0};
    if (std::memcmp(b.data(), kNat64, 12) == 0) return IsPublicV4(v4_at_end());
    if ((b[0] & 0xfe) == 0xfc) return false;                  // fc00::/7 unique local
    if (b[0] == 0xfe && (b[1] & 0xc0) == 0x80) return false;  // fe80::/10 link-local
    if (b[0] == 0xfe && (b[1] & 0xc0) == 0xc0) return false;  // fec0::/10 site-local (old)
    if (b[0] == 0xff) return false;                           // multicast
    if (b[0] == 0x20 && b[1] == 0x01 && b[2] == 0x0d && b[3] == 0xb8) return false;  // docs
    return true;
}

}  // namespace

bool IsPublicAddress(const std::string& address) {
    in_addr v4{};
    if (inet_pton(AF_INET, address.c_str(), &v4) == 1) return IsPublicV4(ntohl(v4.s_addr));
    std::array<unsigned char, 16> v6{};
    if (inet_pton(AF_INET6, address.c_str(), v6.data()) == 1) return IsPublicV6(v6);
    return false;
}

std::optional<std::string> CheckWebhookUrl(const std::string& url, bool allow_private) {
    if (url.empty()) return "webhook_url must not be empty";
    if (url.size() > kMaxWebhookUrlLength) {
        return "webhook_url must be at most " + std::to_string(kMaxWebhookUrlLength) +
               " characters";
    }
    for (unsigned char c : url) {
        if (c <= 0x20 || c >= 0x7f) {
            return "webhook_url must be an absolute http:// or https:// URL without spaces or "
                   "non-ASCII characters (percent-encode them)";
        }
    }
    const std::string lower = core::ToLower(url);
    size_t authority_start = 0;
    if (lower.starts_with("http://")) {
        authority_start = 7;
    } else if (lower.starts_with("https://")) {
        authority_start = 8;
    } else {
        const auto colon = url.find(':');
        return "webhook_url must use http or https" +
               (colon == std::string::npos ? std::string()
                                           : ", not " + core::ToLower(url.substr(0, colon)));
    }
    if (url.find('#') != std::string::npos) return "webhook_url must not contain a #fragment";
    const size_t authority_end = url.find_first_of("/?", authority_start);
    const std::string authority = url.substr(
        authority_start,
        authority_end == std::string::npos ? std::string::npos : authority_end - authority_start);
    if (authority.find('@') != std::string::npos) {
        return "webhook_url must not contain a user name or password (user:pass@)";
    }
    std::string host;
    std::string port;
    bool has_port = false;
    bool ipv6 = false;
    if (!authority.empty() && authority.front() == '[') {
        const auto close = authority.find(']');
        if (close == std::string::npos) return "webhook_url has an unclosed [IPv6 address]";
        host = authority.substr(1, close - 1);
        ipv6 = true;
        const std::string rest = authority.substr(close + 1);
        if (!rest.empty()) {
            if (rest.front() != ':') return "webhook_url has text after its [IPv6 address]";
            port = rest.substr(1);
            has_port = true;
        }
        in6_addr v6{};
        if (inet_pton(AF_INET6, host.c_str(), &v6) != 1) {
            return "webhook_url's [IPv6 address] is not valid";
        }
    } else {
        const auto colon = authority.find(':');
        host = authority.substr(0, colon);
        if (colon != std::string::npos) {
            port = authority.substr(colon + 1);
            has_port = true;
        }
        for (unsigned char c : host) {
            if (!(std::isalnum(c) || c == '-' || c == '.' || c == '_')) {
                return "webhook_url's host may hold only letters, digits, '-', '.' and '_'";
            }
        }
    }
    if (host.empty()) return "webhook_url must name a host";
    if (has_port) {
        const bool digits =
            !port.empty() && port.size() <= 5 &&
            std::all_of(port.begin(), port.end(), [](unsigned char c) { return std::isdigit(c); });
        if (!digits || std::stoi(port) < 1 || std::stoi(port) > 65535) {
            return "webhook_url's port must be a number from 1 to 65535";
        }
    }
    if (allow_private) return std::nullopt;
    const std::string refused =
        "webhook_url must reach a public address; loopback, private and link-local addresses "
        "are refused (WEBHOOK_ALLOW_PRIVATE=true allows them)";
    if (ipv6) return IsPublicAddress(host) ? std::nullopt : std::optional<std::string>(refused);
    host = core::ToLower(host);
    while (!host.empty() && host.back() == '.') host.pop_back();
    if (host == "localhost" || host.ends_with(".localhost")) return refused;
    // inet_aton also reads the forms a resolver accepts (2130706433, 0x7f.1, 127.1).
    in_addr v4{};
    if (inet_aton(host.c_str(), &v4) != 0 && !IsPublicV4(ntohl(v4.s_addr))) return refused;
    return std::nullopt;
}

}  // namespace songd::webhooks
