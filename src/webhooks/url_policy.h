#pragma once
/// @file
/// Where client webhooks may go: http/https URLs of bounded length, and by default no
/// loopback, link-local, private or otherwise non-public address (SSRF). Checked at submit
/// for literal addresses and names like `localhost`, and again at delivery on the address
/// actually connected (net::Request::allow_address), which catches names that resolve to a
/// private address.
///
///   webhooks::CheckWebhookUrl("https://example.com/hook", false);  // nullopt: fine
///   webhooks::CheckWebhookUrl("http://127.0.0.1:9/x", false);      // "... is not public ..."
///   webhooks::IsPublicAddress("10.0.0.7");                          // false

#include <optional>
#include <string>

namespace songd::webhooks {

/// Longest webhook_url accepted.
inline constexpr size_t kMaxWebhookUrlLength = 2048;

/// True for a numeric IPv4 or IPv6 address on the public internet; false for loopback,
/// private, shared (100.64/10), link-local, multicast, reserved, unspecified and documentation
/// ranges, IPv6 unique-local, and IPv4-mapped/NAT64 forms of those; false for non-addresses.
bool IsPublicAddress(const std::string& address);

/// Why `url` cannot be a webhook URL, or nullopt when it can. `allow_private` lifts only the
/// address rule (WEBHOOK_ALLOW_PRIVATE).
std::optional<std::string> CheckWebhookUrl(const std::string& url, bool allow_private);

}  // namespace songd::webhooks
