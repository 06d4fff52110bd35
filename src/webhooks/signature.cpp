#include "webhooks/signature.h"

#include "core/crypto.h"

namespace songd::webhooks {

std::optional<std::string> DecodeWebhookSecret(std::string_view secret) {
    constexpr std::string_view kPrefix = "whsec_";
    if (!secret.starts_with(kPrefix)) return std::nullopt;
    return core::Base64Decode(secret.substr(kPrefix.size()));
}

std::string SignWebhook(std::string_view key, std::string_view id, int64_t timestamp_seconds,
                        std::string_view body) {
    std::string signed_content;
    signed_content.reserve(id.size() + body.size() + 24);
    signed_content.append(id).append(".").append(std::to_string(timestamp_seconds)).append(".");
    signed_content.append(body);
    return "v1," + core::Base64Encode(core::HmacSha256(key, signed_content));
}

}  // namespace songd::webhooks
