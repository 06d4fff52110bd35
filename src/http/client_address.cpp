#include "http/client_address.h"

#include <arpa/inet.h>

#include "core/text.h"

namespace songd::http {

namespace {

/// An address as X-Forwarded-For or Forwarded carries it ("1.2.3.4", "1.2.3.4:80",
/// "[2001:db8::1]:443", "\"[2001:db8::1]\"") reduced to the bare address; "" when it is not
/// an IP address (unknown, obfuscated identifiers, garbage).
std::string BareAddress(std::string_view text) {
    text = core::Trim(text);
    if (text.size() >= 2 && text.front() == '"' && text.back() == '"') {
        text = text.substr(1, text.size() - 2);
    }
    if (!text.empty() && text.front() == '[') {
        auto close = text.find(']');
        if (close == std::string_view::npos) return "";
        text = text.substr(1, close - 1);
    } else if (text.find(':') != std::string_view::npos && text.find(':') == text.rfind(':')) {
        text = text.substr(0, text.find(':'));  // IPv4 with a port
    }
    std::string addr(text);
    unsigned char buf[16];
    if (inet_pton(AF_INET, addr.c_str(), buf) == 1 || inet_pton(AF_INET6, addr.c_str(), buf) == 1) {
        return addr;
    }
    return "";
}

/// Every hop, left to right, from all X-Forwarded-For fields (in order) or, when there are
/// none, from the `for=` parameters of all Forwarded fields.
std::vector<std::string_view> Hops(const HeaderList& headers) {
    std::vector<std::string_view> hops;
    auto split = [&hops](std::string_view value, bool forwarded) {
        size_t pos = 0;
        while (pos <= value.size()) {
            size_t comma = value.find(',', pos);
            if (comma == std::string_view::npos) comma = value.size();
            std::string_view item = core::Trim(value.substr(pos, comma - pos));
            if (forwarded) {
                // for=...;proto=...;by=...: take the for parameter, if any.
                std::string_view found;
                size_t p = 0;
                while (p <= item.size()) {
                    size_t semi = item.find(';', p);
                    if (semi == std::string_view::npos) semi = item.size();
                    std::string_view pair = core::Trim(item.substr(p, semi - p));
                    if (pair.size() > 4 && IEquals(pair.substr(0, 4), "for=")) {
                        found = pair.substr(4);
                    }
                    p = semi + 1;
                }
                if (!found.empty()) hops.push_back(found);
            } else {
                hops.push_back(item);
            }
            pos = comma + 1;
        }
    };
    for (const auto& [name, value] : headers) {
        if (IEquals(name, "X-Forwarded-For")) split(value, false);
    }
    if (hops.empty()) {
        for (const auto& [name, value] : headers) {
            if (IEquals(name, "Forwarded")) split(value, true);
        }
    }
    return hops;
}

}  // namespace

bool IsTrusted(const std::string& ip, const std::vector<core::IpNetwork>& networks) {
    for (const auto& net : networks) {
        if (net.Contains(ip)) return true;
    }
    return false;
}

std::string ClientAddress(const std::string& peer, const HeaderList& headers,
                          const std::vector<core::IpNetwork>& trusted) {
    if (trusted.empty() || !IsTrusted(peer, trusted)) return peer;
    std::string client = peer;
    auto hops = Hops(headers);
    for (auto it = hops.rbegin(); it != hops.rend(); ++it) {
        std::string addr = BareAddress(*it);
        if (addr.empty()) break;  // not an address: believe nothing further left
        client = addr;
        if (!IsTrusted(addr, trusted)) break;
    }
    return client;
}

}  // namespace songd::http
