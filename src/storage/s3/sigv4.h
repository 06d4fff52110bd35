#pragma once
/// @file
/// AWS Signature Version 4 with S3's rules, as pure functions over a request description.
///
///   s3::SigningRequest request{.method = "GET", .path = "/songs/42/output_fixed.wav",
///                              .headers = {{"Host", "bucket.s3.us-east-1.amazonaws.com"}},
///                              .payload_hash = s3::kEmptyPayloadHash};
///   s3::SigningContext context{.credentials = {"AKID", "secret", ""}, .region = "us-east-1",
///                              .service = "s3", .time_seconds = core::NowMillis() / 1000};
///   s3::HeaderSignature signed_request = s3::SignWithHeaders(request, context);
///   // send signed_request.headers (they include Authorization) to CanonicalUri(request.path)
///   //   + "?" + signed_request.canonical_query
///
///   s3::QuerySignature url = s3::SignWithQuery(request, context, 3600);   // presigned
///   // https://host + url.canonical_uri + "?" + url.query
///
/// Every intermediate string is returned, so tests compare them byte for byte with
/// published vectors. The canonical URI and query are also the bytes to put on the wire:
/// what is signed is exactly what is sent.
///
/// S3 rules, unlike the generic SigV4 rules: the path is URI-encoded once per byte (so a key
/// holding `%` signs as `%25`), `/` is kept, and the path is never normalised (`//`, `.`
/// and `..` segments are kept: they are part of the key).

#include <cstdint>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace songd::storage::s3 {

/// Hex SHA-256 of the empty string: the payload hash of a request without a body.
inline constexpr std::string_view kEmptyPayloadHash =
    "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";
/// Payload hash that tells S3 the body is not signed (presigned URLs).
inline constexpr std::string_view kUnsignedPayload = "UNSIGNED-PAYLOAD";

using NameValues = std::vector<std::pair<std::string, std::string>>;

/// @brief Long-term or temporary credentials; `session_token` empty for long-term keys.
struct Credentials {
    std::string access_key_id;
    std::string secret_access_key;
    std::string session_token;
};

/// @brief The parts of an HTTP request that SigV4 signs, before any encoding.
struct SigningRequest {
    std::string method;        ///< e.g. "GET"; sent as given
    std::string path;          ///< decoded path bytes, e.g. "/bucket/a b+c.wav"; starts with '/'
    NameValues query;          ///< decoded names and values; an empty value is signed as `name=`
    NameValues headers;        ///< as sent; must include Host; repeated names are joined with ','
    std::string payload_hash;  ///< lowercase hex SHA-256 of the body, or kUnsignedPayload
};

/// @brief Who signs, where and when.
struct SigningContext {
    Credentials credentials;
    std::string region;
    std::string service = "s3";
    int64_t time_seconds = 0;  ///< Unix time of the signature (X-Amz-Date)
    /// Adds `x-amz-content-sha256: payload_hash` (S3 requires it). The generic test suites
    /// sign without it, so they turn it off.
    bool add_content_sha256 = true;
};

/// @brief Result of Authorization-header signing.
struct HeaderSignature {
    std::string amz_date;           ///< 20130524T000000Z
    std::string credential_scope;   ///< 20130524/us-east-1/s3/aws4_request
    std::string canonical_uri;      ///< also the path to send
    std::string canonical_query;    ///< also the query string to send
    std::string canonical_headers;  ///< "name:value\n" lines
    std::string signed_headers;     ///< "host;x-amz-date"
    std::string canonical_request;
    std::string string_to_sign;
    std::string signature;      ///< lowercase hex
    std::string authorization;  ///< the Authorization header value
    /// Headers to send: the request's headers, then any added x-amz-date,
    /// x-amz-security-token, x-amz-content-sha256, then Authorization.
    NameValues headers;
};

/// @brief Result of query-string (presigned URL) signing.
struct QuerySignature {
    std::string amz_date;
    std::string credential_scope;
    std::string canonical_uri;    ///< also the path to send
    std::string canonical_query;  ///< without X-Amz-Signature
    std::string canonical_headers;
    std::string signed_headers;
    std::string canonical_request;
    std::string string_to_sign;
    std::string signature;
    std::string query;  ///< canonical_query + "&X-Amz-Signature=" + signature
};

/// Longest lifetime S3 accepts for a presigned URL (7 days).
inline constexpr int64_t kMaxPresignSeconds = 604800;

/// Signs with an Authorization header. Adds `x-amz-date` (and `x-amz-security-token` when a
/// session token is set, and `x-amz-content-sha256` when asked) unless the request already
/// carries them. Throws core::Error(kInvalidInput) for a request that cannot be signed
/// correctly: no Host, a path without a leading '/', a malformed payload hash, a header
/// that contradicts the context (another date, token or hash), a name or value with CR/LF.
HeaderSignature SignWithHeaders(const SigningRequest& request, const SigningContext& context);

/// Signs in the query string (a presigned URL) valid for `expires_seconds` (1..604800).
/// Every header of the request is signed (usually only Host); the session token is signed
/// as X-Amz-Security-Token. `add_content_sha256` is ignored: a presigned URL carries no
/// body hash header. Throws core::Error(kInvalidInput) as SignWithHeaders, and when the
/// query already holds an X-Amz-* authentication parameter.
QuerySignature SignWithQuery(const SigningRequest& request, const SigningContext& context,
                             int64_t expires_seconds);

// Building blocks, exposed for tests and for the client, which sends what it signs.

/// S3 canonical URI: core::UrlEncode(path, keep_slash=true), no normalisation.
std::string CanonicalUri(std::string_view path);

/// Encoded pairs sorted by name then value, joined with '&'; an empty value gives `name=`.
std::string CanonicalQuery(const NameValues& query);

/// Decodes %XX escapes (and nothing else: '+' stays '+', as S3 reads it); throws
/// core::Error(kInvalidInput) on a malformed escape.
std::string UriDecode(std::string_view text);

/// 20130524T000000Z for a Unix time.
std::string AmzDate(int64_t time_seconds);

/// The derived signing key: HMAC chain over date, region, service, "aws4_request".
std::string SigningKey(std::string_view secret, std::string_view date, std::string_view region,
                       std::string_view service);

}  // namespace songd::storage::s3
