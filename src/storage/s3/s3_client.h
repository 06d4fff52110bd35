#pragma once
/// @file
/// S3 (and S3-compatible) object storage client on net::HttpClient and songd's own SigV4.
///
///   s3::S3Client client(config);                          // core::Config, S3_* variables
///   std::string key = client.JobObjectKey(job_id);        // {S3_PREFIX}{job_id}/output_fixed.wav
///   client.PutObjectFromFile(key, wav_path, {.content_type = "audio/wav",
///                                            .metadata = {{"job-id", job_id}}});
///   std::string url = client.PresignGet(key, {.content_disposition =
///                                                 s3::DownloadDisposition(job_id, "wav")});
///   std::optional<s3::ObjectInfo> head = client.HeadObject(key);   // nullopt: not there
///
/// Every call blocks (network and file I/O): run it on a worker thread, never on an I/O
/// thread. The client is thread-safe; its net::HttpClient pools curl handles so connections
/// are reused, and net::Retrier paces the retries.
///
/// Failures are core::Error: kUpstreamUnavailable when S3 could not be reached or kept
/// failing after the retries (network errors, 5xx, 429, SlowDown, RequestTimeout,
/// InternalError); kForbidden when S3 refuses the credentials or the permission
/// (SignatureDoesNotMatch, InvalidAccessKeyId, AccessDenied...: never retried); kNotFound for
/// a missing key, bucket or upload; kInvalidInput for a bad argument; kInternal for any
/// other refusal. The detail names the operation, the object and S3's error code.

#include <atomic>
#include <chrono>
#include <cstdint>
#include <filesystem>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "core/config.h"
#include "net/http_client.h"
#include "net/retry.h"
#include "storage/s3/sigv4.h"

namespace songd::storage::s3 {

/// @brief Tuning that is not configuration: sizes, timeouts, retries.
struct ClientOptions {
    /// Attempts per request (the first included) and the full-jitter backoff between them:
    /// before retry n (0-based) a uniform pause in [0, min(10 s, 200 ms * 2^n)].
    net::RetryPolicy retry{.max_attempts = 5,
                           .base_delay = std::chrono::milliseconds(200),
                           .max_delay = std::chrono::milliseconds(10'000)};
    /// Files larger than this go up as multipart uploads.
    int64_t multipart_threshold = 16LL << 20;
    /// Part size; grown when a file would need more than 10,000 parts. At least 5 MiB.
    int64_t part_size = 8LL << 20;
    /// No total limit: a large upload takes what it takes, but a peer that stalls (slower
    /// than 1 byte/s for 60 s) is a network error.
    net::Timeouts timeouts{.connect = std::chrono::milliseconds(10'000),
                           .stall = std::chrono::seconds(60)};
    /// curl CONNECT_TO entries ("host:port:connect-host:connect-port"), for DNS overrides.
    std::vector<std::string> connect_to;
    std::string user_agent = "songd";
};

/// @brief What S3 knows about an object.
struct ObjectInfo {
    std::string key;
    int64_t size = 0;
    std::string etag;                             ///< as S3 sends it, quotes included
    std::string content_type;                     ///< HeadObject and GetObject only
    int64_t last_modified_ms = 0;                 ///< Unix milliseconds; 0 when S3 did not say
    std::map<std::string, std::string> metadata;  ///< x-amz-meta-* without the prefix
};

/// @brief Options for PutObjectFromFile.
struct PutOptions {
    std::string content_type = "application/octet-stream";
    /// Sent as x-amz-meta-{name}; names are lowercase letters, digits and '-'.
    std::vector<std::pair<std::string, std::string>> metadata;
};

/// @brief Result of PutObjectFromFile.
struct PutResult {
    std::string etag;
    int64_t size = 0;
    int parts = 0;  ///< 0 for a single PutObject
};

/// @brief Keys DeleteObjects could not delete, with S3's reason.
struct DeleteFailure {
    std::string key;
    std::string code;
    std::string message;
};

/// @brief One page of ListObjectsV2.
struct ListPage {
    std::vector<ObjectInfo> objects;
    std::string next_continuation_token;  ///< empty on the last page
};

/// @brief Options for PresignGet.
struct PresignOptions {
    /// 0: S3_PRESIGN_EXPIRES. Otherwise 1..604800.
    int64_t expires_seconds = 0;
    /// Sent back by S3 as Content-Disposition, e.g. DownloadDisposition(job_id, "wav").
    std::string content_disposition;
    /// Unix seconds of the signature; 0: now.
    int64_t now_seconds = 0;
};

/// @brief Counters for metrics; monotonically increasing.
struct ClientStats {
    std::atomic<uint64_t> requests{0};  ///< HTTP attempts sent
    std::atomic<uint64_t> retries{0};   ///< attempts that were retried
    std::atomic<uint64_t> failures{0};  ///< operations that ended in an error
    std::atomic<uint64_t> bytes_uploaded{0};
};

/// Whether an S3 answer is worth another attempt: 500, 502, 503, 504, 429, and the codes
/// SlowDown, RequestTimeout, InternalError, ServiceUnavailable (also inside a 200 body).
/// Signature, credential and permission errors never are.
bool IsRetryableS3Error(long status, const std::string& code);

/// Parses a ListObjectsV2 answer. Keys are URL-decoded when the answer says
/// `<EncodingType>url</EncodingType>` (the client asks for it, so keys with characters XML
/// cannot carry survive; servers that ignore the request send raw keys). Throws
/// core::Error(kInternal) for a document that is not a ListBucketResult.
ListPage ParseListObjectsV2(std::string_view xml);

/// `attachment; filename="song-{job_id}.{extension}"`. Throws kInvalidInput for a job id or
/// extension that could break the header (anything but letters, digits, '-', '_', '.').
std::string DownloadDisposition(const std::string& job_id, const std::string& extension);

/// @brief The S3 client. See the file comment.
class S3Client {
  public:
    /// Throws core::Error(kInvalidInput) naming the variable when S3_BUCKET, S3_REGION,
    /// the keys or S3_ENDPOINT cannot work.
    explicit S3Client(const core::Config& config, ClientOptions options = {});
    ~S3Client();
    S3Client(const S3Client&) = delete;
    S3Client& operator=(const S3Client&) = delete;

    /// `{S3_PREFIX}{job_id}/{file_name}`.
    std::string JobObjectKey(const std::string& job_id,
                             const std::string& file_name = "output_fixed.wav") const;
    /// `s3://{bucket}/{key}`, the status document's `s3_url`.
    std::string S3Url(const std::string& key) const;
    /// True when requests use path-style URLs (forced, or an IP / localhost endpoint).
    bool path_style() const { return path_style_; }
    const std::string& bucket() const { return bucket_; }
    const ClientStats& stats() const { return stats_; }

    /// HeadBucket: returns when the bucket exists and the credentials may use it. For a
    /// start-up or readiness check, so a wrong key or bucket is reported once, clearly.
    void CheckBucket();

    /// Uploads a file: one streamed PutObject (payload hash computed by reading the file
    /// first) up to the multipart threshold, a multipart upload above it (one part in
    /// memory at a time; aborted on failure).
    PutResult PutObjectFromFile(const std::string& key, const std::filesystem::path& file,
                                const PutOptions& options = {});

    /// Downloads to `destination` through a temporary file in the same folder, fsynced and
    /// renamed: `destination` is either complete or untouched.
    ObjectInfo GetObjectToFile(const std::string& key, const std::filesystem::path& destination);

    /// nullopt when the object does not exist.
    std::optional<ObjectInfo> HeadObject(const std::string& key);

    /// Deleting a missing key succeeds (S3 semantics).
    void DeleteObject(const std::string& key);

    /// Deletes in batches of up to 1000 (each with its Content-MD5). Returns the keys S3
    /// refused; throws when a whole batch failed.
    std::vector<DeleteFailure> DeleteObjects(const std::vector<std::string>& keys);

    /// One page of ListObjectsV2 under `prefix` (max_keys 1..1000).
    ListPage ListObjectsPage(const std::string& prefix, const std::string& continuation_token,
                             int max_keys = 1000);
    /// Every object under `prefix`, page by page; `visit` returns false to stop.
    void ForEachObject(const std::string& prefix,
                       const std::function<bool(const ObjectInfo&)>& visit);

    /// A presigned GET URL for `key`. Pure computation: no request is sent.
    std::string PresignGet(const std::string& key, const PresignOptions& options = {}) const;

  private:
    struct Response;
    struct Call;

    Response Execute(const Call& call);
    Response Attempt(const Call& call);
    [[noreturn]] void Fail(const Call& call, const Response& response, int attempts);

    PutResult PutSingle(const std::string& key, const std::filesystem::path& file, int fd,
                        int64_t size, const PutOptions& options);
    PutResult PutMultipart(const std::string& key, const std::filesystem::path& file, int fd,
                           int64_t size, const PutOptions& options);

    std::string Authority() const;                         ///< host[:port] for the bucket
    std::string ObjectPath(const std::string& key) const;  ///< decoded path
    void ValidateKey(const std::string& key) const;

    std::string scheme_;
    std::string endpoint_host_;  ///< host[:port] of the endpoint
    std::string bucket_;
    std::string prefix_;
    std::string region_;
    Credentials credentials_;
    int default_presign_expires_;
    bool path_style_ = false;
    ClientOptions options_;
    mutable ClientStats stats_;
    net::HttpClient http_;
    net::Retrier retrier_;
};

}  // namespace songd::storage::s3
