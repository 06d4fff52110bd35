#pragma once
/// @file
/// Standard Webhooks signatures (the scheme Replicate uses): the secret is `whsec_` + base64
/// of the key bytes; a delivery carries `webhook-signature: v1,<base64 HMAC-SHA256 of
/// "<webhook-id>.<webhook-timestamp>.<body>">`.
///
///   auto key = webhooks::DecodeWebhookSecret("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw");
///   std::string sig = webhooks::SignWebhook(*key, "msg_p5jXN8AQM9LWM0D4loKWxJek", 1614265330,
///                                           R"({"test": 2432232314})");
///   // "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace songd::webhooks {

/// Shortest key (decoded bytes) a WEBHOOK_SECRET may have.
inline constexpr size_t kMinWebhookKeyBytes = 24;

/// The key bytes of a `whsec_<base64>` secret; nullopt when it is not one.
std::optional<std::string> DecodeWebhookSecret(std::string_view secret);

/// The `webhook-signature` header value: "v1," + base64(HMAC-SHA256(key, id.timestamp.body)).
std::string SignWebhook(std::string_view key, std::string_view id, int64_t timestamp_seconds,
                        std::string_view body);

}  // namespace songd::webhooks
