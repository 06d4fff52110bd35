#pragma once
/// @file
/// The client a request comes from, for the rate limiter and the logs: the TCP peer, unless
/// that peer is a trusted proxy (TRUSTED_PROXIES), then the right-most address of
/// X-Forwarded-For (or, without it, `Forwarded: for=`) that is not itself a trusted proxy.
/// Addresses left of it were written by the client and are never believed.
///
///   std::string client = http::ClientAddress("10.0.0.5", request.headers, config.trusted_proxies);
///   // peer 10.0.0.5 trusted, "X-Forwarded-For: 6.6.6.6, 203.0.113.9" → "203.0.113.9"

#include <string>
#include <string_view>
#include <vector>

#include "core/config.h"
#include "http/message.h"

namespace songd::http {

/// True when `ip` lies in one of `networks`.
bool IsTrusted(const std::string& ip, const std::vector<core::IpNetwork>& networks);

/// See the file comment. `peer` is the TCP peer address as text.
std::string ClientAddress(const std::string& peer, const HeaderList& headers,
                          const std::vector<core::IpNetwork>& trusted);

}  // namespace songd::http
