#include "storage/s3/sigv4.h"

#include <algorithm>
#include <ctime>

#include "core/crypto.h"
#include "core/error.h"
#include "core/text.h"

namespace songd::storage::s3 {
namespace {

constexpr std::string_view kAlgorithm = "AWS4-HMAC-SHA256";

[[noreturn]] void Invalid(const std::string& detail) {
    throw core::Error(core::ErrorCode::kInvalidInput, "SigV4: " + detail);
}

bool IsHexHash(std::string_view text) {
    return text.size() == 64 && std::all_of(text.begin(), text.end(), [](char c) {
               return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f');
           });
}

void ValidateRequest(const SigningRequest& request, const SigningContext& context) {
    if (request.method.empty() ||
        !std::all_of(request.method.begin(), request.method.end(),
                     [](unsigned char c) { return c >= 'A' && c <= 'Z'; })) {
        Invalid("method must be an uppercase HTTP method, got '" + request.method + "'");
    }
    if (request.path.empty() || request.path.front() != '/') {
        Invalid("path must start with '/', got '" + request.path + "'");
    }
    if (!IsHexHash(request.payload_hash) && request.payload_hash != kUnsignedPayload &&
        request.payload_hash != "STREAMING-AWS4-HMAC-SHA256-PAYLOAD") {
        Invalid("payload hash must be lowercase hex SHA-256 or UNSIGNED-PAYLOAD, got '" +
                request.payload_hash + "'");
    }
    bool has_host = false;
    for (const auto& [name, value] : request.headers) {
        if (name.empty() || name.find_first_of("\r\n: \t") != std::string::npos) {
            Invalid("header name '" + name + "' is empty or holds a separator");
        }
        if (value.find_first_of("\r\n") != std::string::npos) {
            Invalid("header '" + name + "' holds a line break");
        }
        std::string lower = core::ToLower(name);
        if (lower == "host" && !core::CollapseWhitespace(value).empty()) has_host = true;
        if (lower == "authorization") Invalid("request already carries an Authorization header");
    }
    if (!has_host) Invalid("request has no Host header");
    const Credentials& c = context.credentials;
    if (c.access_key_id.empty() || c.secret_access_key.empty()) {
        Invalid("access key id and secret access key must both be set");
    }
    auto scope_part_ok = [](const std::string& part) {
        return !part.empty() && part.find_first_of("/ \r\n") == std::string::npos;
    };
    if (!scope_part_ok(context.region)) Invalid("region '" + context.region + "' is not valid");
    if (!scope_part_ok(context.service)) Invalid("service '" + context.service + "' is not valid");
    if (context.time_seconds < 0) Invalid("time must not be before 1970");
}

// Value of a header by lowercase name, or nullptr.
const std::string* FindHeader(const NameValues& headers, std::string_view lower_name) {
    for (const auto& [name, value] : headers) {
        if (core::ToLower(name) == lower_name) return &value;
    }
    return nullptr;
}

// Adds `name: value` unless present; a present header must agree, or the signature would
// cover a value other than the one the caller meant.
void EnsureHeader(NameValues& headers, const std::string& name, const std::string& value) {
    if (const std::string* existing = FindHeader(headers, name)) {
        if (core::CollapseWhitespace(*existing) != value) {
            Invalid("header " + name + " is '" + *existing + "' but the signature needs '" + value +
                    "'");
        }
        return;
    }
    headers.emplace_back(name, value);
}

struct CanonicalHeaders {
    std::string lines;
    std::string signed_names;
};

CanonicalHeaders Canonicalize(const NameValues& headers) {
    // Stable sort keeps repeated headers in the order they were given, as the spec joins them.
    std::vector<std::pair<std::string, std::string>> lowered;
    lowered.reserve(headers.size());
    for (const auto& [name, value] : headers)
        lowered.emplace_back(core::ToLower(name), core::CollapseWhitespace(value));
    std::stable_sort(lowered.begin(), lowered.end(),
                     [](const auto& a, const auto& b) { return a.first < b.first; });
    CanonicalHeaders out;
    for (size_t i = 0; i < lowered.size();) {
        const std::string& name = lowered[i].first;
        std::string value = lowered[i].second;
        size_t j = i + 1;
        for (; j < lowered.size() && lowered[j].first == name; ++j)
            value += "," + lowered[j].second;
        out.lines.append(name).append(":").append(value).append("\n");
        if (!out.signed_names.empty()) out.signed_names += ';';
        out.signed_names += name;
        i = j;
    }
    return out;
}

std::string CredentialScope(const SigningContext& context, const std::string& amz_date) {
    return amz_date.substr(0, 8) + "/" + context.region + "/" + context.service + "/aws4_request";
}

std::string StringToSign(const std::string& amz_date, const std::string& scope,
                         const std::string& canonical_request) {
    return std::string(kAlgorithm) + "\n" + amz_date + "\n" + scope + "\n" +
           core::Sha256Hex(canonical_request);
}

std::string Signature(const SigningContext& context, const std::string& amz_date,
                      const std::string& string_to_sign) {
    std::string key = SigningKey(context.credentials.secret_access_key, amz_date.substr(0, 8),
                                 context.region, context.service);
    return core::HexEncode(core::HmacSha256(key, string_to_sign));
}

}  // namespace

std::string CanonicalUri(std::string_view path) { return core::UrlEncode(path, true); }

std::string CanonicalQuery(const NameValues& query) {
    std::vector<std::pair<std::string, std::string>> encoded;
    encoded.reserve(query.size());
    for (const auto& [name, value] : query) {
        encoded.emplace_back(core::UrlEncode(name), core::UrlEncode(value));
    }
    std::sort(encoded.begin(), encoded.end());
    std::string out;
    for (const auto& [name, value] : encoded) {
        if (!out.empty()) out += '&';
        out.append(name).append("=").append(value);
    }
    return out;
}

std::string UriDecode(std::string_view text) {
    std::string out;
    if (!core::UrlDecode(text, out)) {
        throw core::Error(core::ErrorCode::kInvalidInput,
                          "malformed percent escape in '" + std::string(text) + "'");
    }
    return out;
}

std::string AmzDate(int64_t time_seconds) {
    std::time_t t = static_cast<std::time_t>(time_seconds);
    std::tm tm{};
    gmtime_r(&t, &tm);
    char buf[32];
    std::strftime(buf, sizeof buf, "%Y%m%dT%H%M%SZ", &tm);
    return buf;
}

std::string SigningKey(std::string_view secret, std::string_view date, std::string_view region,
                       std::string_view service) {
    std::string k_date = core::HmacSha256("AWS4" + std::string(secret), date);
    std::string k_region = core::HmacSha256(k_date, region);
    std::string k_service = core::HmacSha256(k_region, service);
    return core::HmacSha256(k_service, "aws4_request");
}

HeaderSignature SignWithHeaders(const SigningRequest& request, const SigningContext& context) {
    ValidateRequest(request, context);
    HeaderSignature out;
    out.amz_date = AmzDate(context.time_seconds);
    out.credential_scope = CredentialScope(context, out.amz_date);

    out.headers = request.headers;
    EnsureHeader(out.headers, "x-amz-date", out.amz_date);
    if (!context.credentials.session_token.empty()) {
        EnsureHeader(out.headers, "x-amz-security-token", context.credentials.session_token);
    }
    if (context.add_content_sha256) {
        EnsureHeader(out.headers, "x-amz-content-sha256", request.payload_hash);
    }

    out.canonical_uri = CanonicalUri(request.path);
    out.canonical_query = CanonicalQuery(request.query);
    CanonicalHeaders canonical = Canonicalize(out.headers);
    out.canonical_headers = canonical.lines;
    out.signed_headers = canonical.signed_names;
    out.canonical_request = request.method + "\n" + out.canonical_uri + "\n" + out.canonical_query +
                            "\n" + out.canonical_headers + "\n" + out.signed_headers + "\n" +
                            request.payload_hash;
    out.string_to_sign = StringToSign(out.amz_date, out.credential_scope, out.canonical_request);
    out.signature = Signature(context, out.amz_date, out.string_to_sign);
    out.authorization = std::string(kAlgorithm) +
                        " Credential=" + context.credentials.access_key_id + "/" +
                        out.credential_scope + ", SignedHeaders=" + out.signed_headers +
                        ", Signature=" + out.signature;
    out.headers.emplace_back("Authorization", out.authorization);
    return out;
}

QuerySignature SignWithQuery(const SigningRequest& request, const SigningContext& context,
                             int64_t expires_seconds) {
    ValidateRequest(request, context);
    if (expires_seconds < 1 || expires_seconds > kMaxPresignSeconds) {
        Invalid("presign expiry must be 1.." + std::to_string(kMaxPresignSeconds) +
                " seconds, got " + std::to_string(expires_seconds));
    }
    for (const auto& [name, value] : request.query) {
        std::string lower = core::ToLower(name);
        if (lower.starts_with("x-amz-") &&
            (lower == "x-amz-algorithm" || lower == "x-amz-credential" || lower == "x-amz-date" ||
             lower == "x-amz-expires" || lower == "x-amz-signedheaders" ||
             lower == "x-amz-signature" || lower == "x-amz-security-token")) {
            Invalid("query already holds the authentication parameter " + name);
        }
    }
    QuerySignature out;
    out.amz_date = AmzDate(context.time_seconds);
    out.credential_scope = CredentialScope(context, out.amz_date);
    CanonicalHeaders canonical = Canonicalize(request.headers);
    out.canonical_headers = canonical.lines;
    out.signed_headers = canonical.signed_names;

    NameValues query = request.query;
    query.emplace_back("X-Amz-Algorithm", std::string(kAlgorithm));
    query.emplace_back("X-Amz-Credential",
                       context.credentials.access_key_id + "/" + out.credential_scope);
    query.emplace_back("X-Amz-Date", out.amz_date);
    query.emplace_back("X-Amz-Expires", std::to_string(expires_seconds));
    query.emplace_back("X-Amz-SignedHeaders", out.signed_headers);
    if (!context.credentials.session_token.empty()) {
        query.emplace_back("X-Amz-Security-Token", context.credentials.session_token);
    }
    out.canonical_uri = CanonicalUri(request.path);
    out.canonical_query = CanonicalQuery(query);
    out.canonical_request = request.method + "\n" + out.canonical_uri + "\n" + out.canonical_query +
                            "\n" + out.canonical_headers + "\n" + out.signed_headers + "\n" +
                            request.payload_hash;
    out.string_to_sign = StringToSign(out.amz_date, out.credential_scope, out.canonical_request);
    out.signature = Signature(context, out.amz_date, out.string_to_sign);
    out.query = out.canonical_query + "&X-Amz-Signature=" + out.signature;
    return out;
}

}  // namespace songd::storage::s3
