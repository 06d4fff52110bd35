#include "storage/s3/s3_client.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <openssl/evp.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstring>
#include <ctime>

#include "core/atomic_file.h"
#include "core/clock.h"
#include "core/crypto.h"
#include "core/error.h"
#include "core/log.h"
#include "core/text.h"
#include "core/unique_fd.h"
#include "storage/s3/s3_xml.h"

namespace songd::storage::s3 {
namespace {

namespace fs = std::filesystem;
using core::Error;
using core::ErrorCode;

constexpr int64_t kMinPartSize = 5LL << 20;
constexpr int64_t kMaxParts = 10000;
constexpr size_t kMaxDeleteBatch = 1000;
constexpr size_t kMaxKeyBytes = 1024;
// S3's XML answers and error documents; object bodies go to a file, never to memory.
constexpr size_t kMaxAnswerBytes = size_t{1} << 20;

/// @brief Owns an EVP_MD_CTX.
class Digest {
  public:
    explicit Digest(const EVP_MD* md) : ctx_(EVP_MD_CTX_new()) {
        if (ctx_ == nullptr || EVP_DigestInit_ex(ctx_, md, nullptr) != 1) {
            EVP_MD_CTX_free(ctx_);
            throw Error(ErrorCode::kInternal, "OpenSSL digest initialisation failed");
        }
    }
    ~Digest() { EVP_MD_CTX_free(ctx_); }
    Digest(const Digest&) = delete;
    Digest& operator=(const Digest&) = delete;
    void Update(const void* data, size_t size) { EVP_DigestUpdate(ctx_, data, size); }
    std::string Final() {
        unsigned char out[EVP_MAX_MD_SIZE];
        unsigned int size = 0;
        EVP_DigestFinal_ex(ctx_, out, &size);
        return std::string(reinterpret_cast<char*>(out), size);
    }

  private:
    EVP_MD_CTX* ctx_;
};

// Reads exactly `size` bytes at `offset`, or throws: a short file is an error, never a
// silently shorter object.
void ReadFully(int fd, char* buffer, int64_t size, int64_t offset, const fs::path& file) {
    int64_t done = 0;
    while (done < size) {
        ssize_t n = pread(fd, buffer + done, static_cast<size_t>(size - done), offset + done);
        if (n < 0 && errno == EINTR) continue;
        if (n <= 0) {
            throw Error(ErrorCode::kInternal,
                        "reading " + file.string() + " for upload failed: " +
                            (n == 0 ? std::string("file shorter than expected")
                                    : std::string(std::strerror(errno))));
        }
        done += n;
    }
}

std::string Sha256OfFile(int fd, int64_t size, const fs::path& file) {
    Digest digest(EVP_sha256());
    std::string buffer(1 << 20, '\0');
    for (int64_t offset = 0; offset < size;) {
        int64_t n = std::min<int64_t>(static_cast<int64_t>(buffer.size()), size - offset);
        ReadFully(fd, buffer.data(), n, offset, file);
        digest.Update(buffer.data(), static_cast<size_t>(n));
        offset += n;
    }
    return core::HexEncode(digest.Final());
}

std::string StatusCodeName(long status) {
    switch (status) {
        case 301:
            return "PermanentRedirect";
        case 400:
            return "BadRequest";
        case 403:
            return "Forbidden";
        case 404:
            return "NotFound";
        case 409:
            return "Conflict";
        case 412:
            return "PreconditionFailed";
        default:
            return "HTTP" + std::to_string(status);
    }
}

int64_t ParseHttpDateMillis(const std::string& text) {
    std::tm tm{};
    if (strptime(text.c_str(), "%a, %d %b %Y %H:%M:%S GMT", &tm) == nullptr) return 0;
    return static_cast<int64_t>(timegm(&tm)) * 1000;
}

bool IsSafeToken(const std::string& text) {
    return !text.empty() && std::all_of(text.begin(), text.end(), [](unsigned char c) {
        return std::isalnum(c) || c == '-' || c == '_' || c == '.';
    });
}

ObjectInfo InfoFromHeaders(const std::string& key, const net::Response& response) {
    ObjectInfo info;
    info.key = key;
    if (auto length = response.Header("content-length")) {
        info.size = std::strtoll(length->c_str(), nullptr, 10);
    }
    info.etag = response.Header("etag").value_or("");
    info.content_type = response.Header("content-type").value_or("");
    if (auto modified = response.Header("last-modified")) {
        info.last_modified_ms = ParseHttpDateMillis(*modified);
    }
    for (const auto& [name, value] : response.headers) {
        if (name.starts_with("x-amz-meta-")) info.metadata[name.substr(11)] = value;
    }
    return info;
}

}  // namespace

struct S3Client::Call {
    std::string operation;  ///< S3 API name, for messages and logs
    std::string method;
    std::string key;  ///< empty: a bucket-level request
    NameValues query;
    NameValues headers;  ///< besides Host and what signing adds
    net::RequestBody body;
    std::string payload_hash = std::string(kEmptyPayloadHash);
    int download_fd = -1;
    bool error_body_on_success = false;  ///< a 2xx whose body is <Error> is a failure
    bool not_found_ok = false;           ///< 404 is an answer, not an error
};

/// One attempt's outcome: S3's answer, or why none came (`transport_error` non-empty).
struct S3Client::Response : net::Response {
    std::string transport_error;
    bool transport_retryable = false;
    std::string code;  ///< S3 error code, when there is one
    std::string message;
    std::string request_id;
};

bool IsRetryableS3Error(long status, const std::string& code) {
    if (status == 500 || status == 502 || status == 503 || status == 504 || status == 429) {
        return true;
    }
    return code == "SlowDown" || code == "RequestTimeout" || code == "InternalError" ||
           code == "ServiceUnavailable";
}

std::string DownloadDisposition(const std::string& job_id, const std::string& extension) {
    if (!IsSafeToken(job_id) || !IsSafeToken(extension)) {
        throw Error(ErrorCode::kInvalidInput,
                    "download file name parts must be letters, digits, '-', '_' or '.'");
    }
    return "attachment; filename=\"song-" + job_id + "." + extension + "\"";
}

S3Client::S3Client(const core::Config& config, ClientOptions options)
    : bucket_(config.s3_bucket),
      prefix_(config.s3_prefix),
      region_(config.s3_region),
      credentials_{config.s3_access_key, config.s3_secret_key, config.s3_session_token},
      default_presign_expires_(config.s3_presign_expires),
      options_(std::move(options)),
      retrier_(options_.retry) {
    auto invalid = [](const std::string& variable, const std::string& why) {
        return Error(ErrorCode::kInvalidInput, variable + " " + why);
    };
    if (bucket_.empty()) throw invalid("S3_BUCKET", "must be set to use S3");
    if (region_.empty()) throw invalid("S3_REGION", "must be set to use S3");
    if (credentials_.access_key_id.empty()) throw invalid("S3_ACCESS_KEY", "must be set to use S3");
    if (credentials_.secret_access_key.empty()) {
        throw invalid("S3_SECRET_KEY", "must be set to use S3");
    }
    if (default_presign_expires_ < 1 || default_presign_expires_ > kMaxPresignSeconds) {
        throw invalid("S3_PRESIGN_EXPIRES", "must be 1..604800 seconds");
    }
    if (options_.part_size < kMinPartSize) {
        throw Error(ErrorCode::kInvalidInput, "S3 part size must be at least 5 MiB");
    }
    if (options_.retry.max_attempts < 1) {
        throw Error(ErrorCode::kInvalidInput, "S3 retry policy needs at least one attempt");
    }

    std::string host;
    if (config.s3_endpoint.empty()) {
        scheme_ = "https";
        endpoint_host_ = "s3." + region_ + ".amazonaws.com";
        host = endpoint_host_;
    } else {
        const std::string& endpoint = config.s3_endpoint;
        size_t sep = endpoint.find("://");
        scheme_ = sep == std::string::npos ? "" : core::ToLower(endpoint.substr(0, sep));
        if (scheme_ != "http" && scheme_ != "https") {
            throw invalid("S3_ENDPOINT", "'" + endpoint + "' must start with http:// or https://");
        }
        std::string rest = endpoint.substr(sep + 3);
        size_t slash = rest.find('/');
        endpoint_host_ = rest.substr(0, slash);
        if (slash != std::string::npos && rest.substr(slash) != "/") {
            throw invalid("S3_ENDPOINT", "'" + endpoint + "' must not have a path");
        }
        if (endpoint_host_.empty() || endpoint_host_.find_first_of("@?# ") != std::string::npos) {
            throw invalid("S3_ENDPOINT", "'" + endpoint + "' has no usable host");
        }
        host = endpoint_host_;
        if (host.front() == '[') {
            host = host.substr(0, host.find(']') + 1);
        } else if (size_t colon = host.rfind(':'); colon != std::string::npos) {
            host = host.substr(0, colon);
        }
    }
    in6_addr v6{};
    in_addr v4{};
    bool is_ip = host.front() == '['
                     ? inet_pton(AF_INET6, host.substr(1, host.size() - 2).c_str(), &v6) == 1
                     : inet_pton(AF_INET, host.c_str(), &v4) == 1;
    // Virtual-hosted names need DNS for {bucket}.{host}: impossible for an IP or localhost,
    // and a dotted bucket breaks the TLS wildcard certificate.
    path_style_ = config.s3_force_path_style || is_ip || core::ToLower(host) == "localhost" ||
                  bucket_.find('.') != std::string::npos;
}

S3Client::~S3Client() = default;

std::string S3Client::JobObjectKey(const std::string& job_id, const std::string& file_name) const {
    return prefix_ + job_id + "/" + file_name;
}

std::string S3Client::S3Url(const std::string& key) const { return "s3://" + bucket_ + "/" + key; }

std::string S3Client::Authority() const {
    return path_style_ ? endpoint_host_ : bucket_ + "." + endpoint_host_;
}

std::string S3Client::ObjectPath(const std::string& key) const {
    if (key.empty()) return path_style_ ? "/" + bucket_ : "/";
    return path_style_ ? "/" + bucket_ + "/" + key : "/" + key;
}

void S3Client::ValidateKey(const std::string& key) const {
    if (key.empty() || key.size() > kMaxKeyBytes || key.find('\0') != std::string::npos) {
        throw Error(ErrorCode::kInvalidInput,
                    "S3 object key must be 1..1024 bytes without NUL, got " +
                        std::to_string(key.size()) + " bytes");
    }
}

S3Client::Response S3Client::Attempt(const Call& call) {
    SigningRequest signing{.method = call.method,
                           .path = ObjectPath(call.key),
                           .query = call.query,
                           .headers = {{"Host", Authority()}},
                           .payload_hash = call.payload_hash};
    signing.headers.insert(signing.headers.end(), call.headers.begin(), call.headers.end());
    SigningContext context{.credentials = credentials_,
                           .region = region_,
                           .service = "s3",
                           .time_seconds = core::NowMillis() / 1000};
    HeaderSignature signature = SignWithHeaders(signing, context);

    net::Request request{.method = call.method,
                         .url = scheme_ + "://" + Authority() + signature.canonical_uri,
                         .headers = signature.headers,
                         .body = call.body,
                         .download_fd = call.download_fd,
                         .max_response_bytes = kMaxAnswerBytes,
                         .timeouts = options_.timeouts,
                         .connect_to = options_.connect_to};
    if (!signature.canonical_query.empty()) request.url += "?" + signature.canonical_query;
    if (!options_.user_agent.empty())
        request.headers.emplace_back("User-Agent", options_.user_agent);
    stats_.requests++;
    Response response;
    try {
        static_cast<net::Response&>(response) = http_.Send(request);
    } catch (const net::TransportError& error) {
        response.transport_error = error.what();
        response.transport_retryable = error.retryable();
        return response;
    }
    if (XmlRootName(response.body) == "Error") {
        response.code = XmlText(response.body, "Code").value_or("");
        response.message = XmlText(response.body, "Message").value_or("");
        response.request_id = XmlText(response.body, "RequestId").value_or("");
    }
    if (response.code.empty() && (response.status < 200 || response.status >= 300)) {
        response.code = StatusCodeName(response.status);
    }
    if (response.request_id.empty()) {
        response.request_id = response.Header("x-amz-request-id").value_or("");
    }
    return response;
}

S3Client::Response S3Client::Execute(const Call& call) {
    auto answered = [&](const Response& response) {
        if (!response.transport_error.empty()) return false;
        const bool success = response.status >= 200 && response.status < 300 &&
                             !(call.error_body_on_success && !response.code.empty());
        return success || (call.not_found_ok && response.status == 404);
    };
    net::RetryRules<Response> rules{
        .retryable =
            [&](const Response& response) {
                if (answered(response)) return false;
                return response.transport_error.empty()
                           ? IsRetryableS3Error(response.status, response.code)
                           : response.transport_retryable;
            },
        .before_retry =
            [&](const Response& response, int attempt, std::chrono::milliseconds delay) {
                stats_.retries++;
                const bool transport_ok = response.transport_error.empty();
                core::LogEvent(
                    "warning", "s3_retry",
                    {{"operation", call.operation},
                     {"object", S3Url(call.key)},
                     {"attempt", std::to_string(attempt)},
                     {"reason", transport_ok ? std::to_string(response.status) + " " + response.code
                                             : response.transport_error},
                     {"delay_ms", std::to_string(delay.count())}});
            }};
    auto [response, attempts] = retrier_.Run<Response>([&](int) { return Attempt(call); }, rules);
    if (!answered(response)) Fail(call, response, attempts);
    return std::move(response);
}

void S3Client::Fail(const Call& call, const Response& response, int attempts) {
    stats_.failures++;
    std::string what = "S3 " + call.operation + " " + S3Url(call.key);
    std::string tries =
        " (" + std::to_string(attempts) + " attempt" + (attempts == 1 ? "" : "s") + ")";
    ErrorCode code = ErrorCode::kInternal;
    std::string detail;
    if (!response.transport_error.empty()) {
        code =
            response.transport_retryable ? ErrorCode::kUpstreamUnavailable : ErrorCode::kInternal;
        detail = what + " failed: " + response.transport_error + tries;
        if (code == ErrorCode::kInternal &&
            response.transport_error.find("SSL") != std::string::npos) {
            detail += "; check S3_ENDPOINT";
        }
    } else {
        detail = what + " failed: HTTP " + std::to_string(response.status) + " " + response.code;
        if (!response.message.empty()) detail += ": " + response.message;
        if (!response.request_id.empty()) detail += " [request id " + response.request_id + "]";
        detail += tries;
        if (IsRetryableS3Error(response.status, response.code)) {
            code = ErrorCode::kUpstreamUnavailable;
        } else if (response.code == "RequestTimeTooSkewed") {
            // Signing again with the same clock cannot help.
            detail +=
                "; this machine's clock is more than 15 minutes off S3's: fix the time "
                "(NTP)";
        } else if (response.status == 401 || response.status == 403 ||
                   response.code == "InvalidAccessKeyId" ||
                   response.code == "SignatureDoesNotMatch" || response.code == "ExpiredToken" ||
                   response.code == "InvalidToken") {
            code = ErrorCode::kForbidden;
            detail +=
                "; S3 refused the credentials or permissions: check S3_ACCESS_KEY, "
                "S3_SECRET_KEY, S3_SESSION_TOKEN and the bucket policy";
        } else if (response.status == 404) {
            code = ErrorCode::kNotFound;
            if (response.code == "NoSuchBucket" || call.key.empty()) detail += "; check S3_BUCKET";
        } else if (response.status == 301 || response.code == "AuthorizationHeaderMalformed" ||
                   response.code == "PermanentRedirect") {
            detail += "; check S3_REGION and S3_ENDPOINT";
        }
    }
    // Debug only: the detail travels in the exception and the caller reports it (once, for
    // the reconciler), so a broken key does not fill the log with one error per attempt.
    core::LogEvent("debug", "s3_request_failed",
                   {{"operation", call.operation},
                    {"object", S3Url(call.key)},
                    {"status", std::to_string(response.status)},
                    {"code", response.transport_error.empty() ? response.code : "network"},
                    {"attempts", std::to_string(attempts)},
                    {"detail", detail}});
    throw Error(code, detail);
}

PutResult S3Client::PutObjectFromFile(const std::string& key, const fs::path& file,
                                      const PutOptions& options) {
    ValidateKey(key);
    for (const auto& [name, value] : options.metadata) {
        bool name_ok = !name.empty() && std::all_of(name.begin(), name.end(), [](unsigned char c) {
            return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-';
        });
        bool value_ok = std::all_of(value.begin(), value.end(),
                                    [](unsigned char c) { return c >= 0x20 && c < 0x7F; });
        if (!name_ok || !value_ok) {
            throw Error(ErrorCode::kInvalidInput,
                        "S3 metadata '" + name +
                            "': names are lowercase letters, digits and '-', values printable "
                            "ASCII");
        }
    }
    if (options.content_type.empty() ||
        options.content_type.find_first_of("\r\n") != std::string::npos) {
        throw Error(ErrorCode::kInvalidInput, "S3 content type must be a non-empty single line");
    }
    core::UniqueFd fd(open(file.c_str(), O_RDONLY | O_CLOEXEC));
    if (!fd) {
        throw Error(ErrorCode::kNotFound,
                    "cannot open " + file.string() + " for upload: " + std::strerror(errno));
    }
    struct stat st {};
    if (fstat(fd.get(), &st) != 0 || !S_ISREG(st.st_mode)) {
        throw Error(ErrorCode::kInvalidInput, file.string() + " is not a regular file");
    }
    int64_t size = st.st_size;
    PutResult result = size > options_.multipart_threshold
                           ? PutMultipart(key, file, fd.get(), size, options)
                           : PutSingle(key, file, fd.get(), size, options);
    stats_.bytes_uploaded += static_cast<uint64_t>(size);
    return result;
}

PutResult S3Client::PutSingle(const std::string& key, const fs::path& file, int fd, int64_t size,
                              const PutOptions& options) {
    // Signed payload: the file is read twice (hash, then send) instead of UNSIGNED-PAYLOAD,
    // so S3 rejects a body that differs from what was hashed, also over plain http.
    Call call{.operation = "PutObject", .method = "PUT", .key = key};
    call.headers.emplace_back("Content-Type", options.content_type);
    for (const auto& [name, value] : options.metadata) {
        call.headers.emplace_back("x-amz-meta-" + name, value);
    }
    call.body = net::RequestBody::FileRange(fd, 0, size);
    call.payload_hash = Sha256OfFile(fd, size, file);
    Response response = Execute(call);
    return PutResult{.etag = response.Header("etag").value_or(""), .size = size, .parts = 0};
}

PutResult S3Client::PutMultipart(const std::string& key, const fs::path& file, int fd, int64_t size,
                                 const PutOptions& options) {
    int64_t part_size = std::max(options_.part_size, (size + kMaxParts - 1) / kMaxParts);
    int64_t part_count = (size + part_size - 1) / part_size;

    Call create{.operation = "CreateMultipartUpload",
                .method = "POST",
                .key = key,
                .query = {{"uploads", ""}}};
    create.headers.emplace_back("Content-Type", options.content_type);
    for (const auto& [name, value] : options.metadata) {
        create.headers.emplace_back("x-amz-meta-" + name, value);
    }
    Response created = Execute(create);
    std::string upload_id = XmlText(created.body, "UploadId").value_or("");
    if (upload_id.empty()) {
        throw Error(ErrorCode::kInternal,
                    "S3 CreateMultipartUpload " + S3Url(key) + " answered without an UploadId");
    }

    try {
        // The one part buffer: memory stays at part_size whatever the file size.
        std::string buffer(static_cast<size_t>(std::min(part_size, size)), '\0');
        std::string complete_xml = "<CompleteMultipartUpload>";
        for (int64_t part = 1; part <= part_count; ++part) {
            int64_t offset = (part - 1) * part_size;
            int64_t length = std::min(part_size, size - offset);
            ReadFully(fd, buffer.data(), length, offset, file);
            std::string_view bytes(buffer.data(), static_cast<size_t>(length));
            Call upload{.operation = "UploadPart",
                        .method = "PUT",
                        .key = key,
                        .query = {{"partNumber", std::to_string(part)}, {"uploadId", upload_id}}};
            upload.body = net::RequestBody::Memory(bytes);
            upload.payload_hash = core::Sha256Hex(bytes);
            Response uploaded = Execute(upload);
            std::string etag = uploaded.Header("etag").value_or("");
            if (etag.empty()) {
                throw Error(ErrorCode::kInternal, "S3 UploadPart " + std::to_string(part) + " of " +
                                                      S3Url(key) + " answered without an ETag");
            }
            complete_xml += "<Part><PartNumber>" + std::to_string(part) + "</PartNumber><ETag>" +
                            XmlEscape(etag) + "</ETag></Part>";
        }
        complete_xml += "</CompleteMultipartUpload>";

        Call complete{.operation = "CompleteMultipartUpload",
                      .method = "POST",
                      .key = key,
                      .query = {{"uploadId", upload_id}}};
        complete.headers.emplace_back("Content-Type", "application/xml");
        complete.body = net::RequestBody::Memory(complete_xml);
        complete.payload_hash = core::Sha256Hex(complete_xml);
        // S3 may answer 200 and report the failure in the body.
        complete.error_body_on_success = true;
        Response completed = Execute(complete);
        return PutResult{.etag = XmlText(completed.body, "ETag").value_or(""),
                         .size = size,
                         .parts = static_cast<int>(part_count)};
    } catch (...) {
        // Parts of an abandoned upload are stored (and billed) until aborted.
        try {
            Call abort{.operation = "AbortMultipartUpload",
                       .method = "DELETE",
                       .key = key,
                       .query = {{"uploadId", upload_id}},
                       .not_found_ok = true};
            Execute(abort);
        } catch (const Error& e) {
            core::LogEvent("error", "s3_abort_failed",
                           {{"object", S3Url(key)}, {"detail", e.what()}});
        }
        throw;
    }
}

ObjectInfo S3Client::GetObjectToFile(const std::string& key, const fs::path& destination) {
    ValidateKey(key);
    core::TempFile temp(destination);  // removed unless committed
    core::UniqueFd fd(open(temp.path().c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644));
    if (!fd) {
        throw Error(ErrorCode::kInternal, "cannot create " + temp.path().string() +
                                              " for download: " + std::strerror(errno));
    }
    Call call{.operation = "GetObject", .method = "GET", .key = key, .download_fd = fd.get()};
    Response response = Execute(call);
    ObjectInfo info = InfoFromHeaders(key, response);
    if (response.Header("content-length") && info.size != response.downloaded_bytes) {
        throw Error(ErrorCode::kUpstreamUnavailable, "S3 GetObject " + S3Url(key) + " delivered " +
                                                         std::to_string(response.downloaded_bytes) +
                                                         " of " + std::to_string(info.size) +
                                                         " bytes");
    }
    info.size = response.downloaded_bytes;
    if (::close(fd.Release()) != 0) {
        throw Error(ErrorCode::kInternal,
                    "cannot write " + temp.path().string() + ": " + std::strerror(errno));
    }
    temp.Commit();  // fsync, rename over `destination`, fsync the folder
    return info;
}

void S3Client::CheckBucket() {
    Call call{.operation = "HeadBucket", .method = "HEAD"};
    Response response = Execute(call);
    (void)response;
}

std::optional<ObjectInfo> S3Client::HeadObject(const std::string& key) {
    ValidateKey(key);
    Call call{.operation = "HeadObject", .method = "HEAD", .key = key, .not_found_ok = true};
    Response response = Execute(call);
    if (response.status == 404) return std::nullopt;
    return InfoFromHeaders(key, response);
}

void S3Client::DeleteObject(const std::string& key) {
    ValidateKey(key);
    Call call{.operation = "DeleteObject", .method = "DELETE", .key = key, .not_found_ok = true};
    Execute(call);
}

std::vector<DeleteFailure> S3Client::DeleteObjects(const std::vector<std::string>& keys) {
    for (const std::string& key : keys) ValidateKey(key);
    std::vector<DeleteFailure> failures;
    for (size_t start = 0; start < keys.size(); start += kMaxDeleteBatch) {
        size_t end = std::min(keys.size(), start + kMaxDeleteBatch);
        std::string xml = "<?xml version=\"1.0\" encoding=\"UTF-8\"?><Delete><Quiet>true</Quiet>";
        for (size_t i = start; i < end; ++i) {
            xml += "<Object><Key>" + XmlEscape(keys[i]) + "</Key></Object>";
        }
        xml += "</Delete>";
        Digest md5(EVP_md5());
        md5.Update(xml.data(), xml.size());
        Call call{.operation = "DeleteObjects", .method = "POST", .query = {{"delete", ""}}};
        call.headers = {{"Content-Type", "application/xml"},
                        {"Content-MD5", core::Base64Encode(md5.Final())}};
        call.body = net::RequestBody::Memory(xml);
        call.payload_hash = core::Sha256Hex(xml);
        Response response = Execute(call);
        for (std::string_view error : XmlElements(response.body, "Error")) {
            failures.push_back(DeleteFailure{.key = XmlText(error, "Key").value_or(""),
                                             .code = XmlText(error, "Code").value_or(""),
                                             .message = XmlText(error, "Message").value_or("")});
        }
    }
    return failures;
}

ListPage S3Client::ListObjectsPage(const std::string& prefix, const std::string& continuation_token,
                                   int max_keys) {
    if (max_keys < 1 || max_keys > 1000) {
        throw Error(ErrorCode::kInvalidInput, "ListObjectsV2 max-keys must be 1..1000");
    }
    Call call{.operation = "ListObjectsV2", .method = "GET"};
    call.query = {{"list-type", "2"},
                  {"encoding-type", "url"},
                  {"prefix", prefix},
                  {"max-keys", std::to_string(max_keys)}};
    if (!continuation_token.empty())
        call.query.emplace_back("continuation-token", continuation_token);
    Response response = Execute(call);
    try {
        return ParseListObjectsV2(response.body);
    } catch (const Error& e) {
        throw Error(e.code(), "S3 ListObjectsV2 " + S3Url(prefix) + ": " + e.what());
    }
}

ListPage ParseListObjectsV2(std::string_view xml) {
    if (XmlRootName(xml) != "ListBucketResult") {
        throw Error(ErrorCode::kInternal, "answer is not a ListBucketResult");
    }
    bool url_encoded = XmlText(xml, "EncodingType").value_or("") == "url";
    ListPage page;
    for (std::string_view item : XmlElements(xml, "Contents")) {
        ObjectInfo info;
        info.key = XmlText(item, "Key").value_or("");
        if (url_encoded) {
            // S3 encodes a space as '+' here (form encoding), and '+' itself as %2B.
            std::replace(info.key.begin(), info.key.end(), '+', ' ');
            info.key = UriDecode(info.key);
        }
        info.size = std::strtoll(XmlText(item, "Size").value_or("0").c_str(), nullptr, 10);
        info.etag = XmlText(item, "ETag").value_or("");
        if (auto modified = XmlText(item, "LastModified")) {
            info.last_modified_ms = core::ParseIso8601(*modified).value_or(0);
        }
        page.objects.push_back(std::move(info));
    }
    if (XmlText(xml, "IsTruncated").value_or("false") == "true") {
        page.next_continuation_token = XmlText(xml, "NextContinuationToken").value_or("");
        if (page.next_continuation_token.empty()) {
            throw Error(ErrorCode::kInternal, "answer is truncated but has no continuation token");
        }
    }
    return page;
}

void S3Client::ForEachObject(const std::string& prefix,
                             const std::function<bool(const ObjectInfo&)>& visit) {
    std::string token;
    do {
        ListPage page = ListObjectsPage(prefix, token);
        for (const ObjectInfo& info : page.objects) {
            if (!visit(info)) return;
        }
        token = page.next_continuation_token;
    } while (!token.empty());
}

std::string S3Client::PresignGet(const std::string& key, const PresignOptions& options) const {
    ValidateKey(key);
    int64_t expires =
        options.expires_seconds == 0 ? default_presign_expires_ : options.expires_seconds;
    SigningRequest request{.method = "GET",
                           .path = ObjectPath(key),
                           .headers = {{"Host", Authority()}},
                           .payload_hash = std::string(kUnsignedPayload)};
    if (!options.content_disposition.empty()) {
        request.query.emplace_back("response-content-disposition", options.content_disposition);
    }
    SigningContext context{
        .credentials = credentials_,
        .region = region_,
        .service = "s3",
        .time_seconds = options.now_seconds != 0 ? options.now_seconds : core::NowMillis() / 1000};
    QuerySignature signature = SignWithQuery(request, context, expires);
    return scheme_ + "://" + Authority() + signature.canonical_uri + "?" + signature.query;
}

}  // namespace songd::storage::s3
