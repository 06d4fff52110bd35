#include "storage/s3/http_transfer.h"

#include <curl/curl.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <mutex>

#include "core/error.h"

namespace songd::storage::s3 {
namespace {

CURL* Easy(const CurlHandle& handle) { return static_cast<CURL*>(handle.get()); }

/// @brief Owns a curl_slist.
class SList {
  public:
    SList() = default;
    ~SList() { curl_slist_free_all(list_); }
    SList(const SList&) = delete;
    SList& operator=(const SList&) = delete;
    void Append(const std::string& line) {
        curl_slist* next = curl_slist_append(list_, line.c_str());
        if (next == nullptr)
            throw core::Error(core::ErrorCode::kInternal, "curl_slist_append failed");
        list_ = next;
    }
    curl_slist* get() const { return list_; }

  private:
    curl_slist* list_ = nullptr;
};

struct CallbackState {
    const TransferRequest* request = nullptr;
    TransferResult* result = nullptr;
    CURL* easy = nullptr;
    int64_t read_pos = 0;
    std::string callback_error;  ///< set when a callback aborted the transfer on purpose
};

size_t ReadBody(char* buffer, size_t size, size_t count, void* user) {
    auto* state = static_cast<CallbackState*>(user);
    const BodySource& body = state->request->body;
    int64_t remaining = body.Size() - state->read_pos;
    size_t want = static_cast<size_t>(std::min<int64_t>(remaining, int64_t(size * count)));
    if (want == 0) return 0;
    if (body.kind == BodySource::Kind::kMemory) {
        std::memcpy(buffer, body.memory.data() + state->read_pos, want);
        state->read_pos += static_cast<int64_t>(want);
        return want;
    }
    ssize_t got = pread(body.fd, buffer, want, body.offset + state->read_pos);
    if (got <= 0) {
        state->callback_error =
            got == 0 ? "the file ended before its announced size (changed "
                       "while uploading?)"
                     : std::string("reading the file failed: ") + std::strerror(errno);
        return CURL_READFUNC_ABORT;
    }
    state->read_pos += got;
    return static_cast<size_t>(got);
}

int SeekBody(void* user, curl_off_t offset, int origin) {
    auto* state = static_cast<CallbackState*>(user);
    if (origin != SEEK_SET || offset < 0 || offset > state->request->body.Size()) {
        return CURL_SEEKFUNC_FAIL;
    }
    state->read_pos = offset;
    return CURL_SEEKFUNC_OK;
}

size_t WriteBody(char* data, size_t size, size_t count, void* user) {
    auto* state = static_cast<CallbackState*>(user);
    size_t total = size * count;
    long status = 0;
    curl_easy_getinfo(state->easy, CURLINFO_RESPONSE_CODE, &status);
    if (state->request->download_fd >= 0 && status >= 200 && status < 300) {
        size_t written = 0;
        while (written < total) {
            ssize_t n = write(state->request->download_fd, data + written, total - written);
            if (n < 0 && errno == EINTR) continue;
            if (n <= 0) {
                state->callback_error =
                    std::string("writing the downloaded file failed: ") + std::strerror(errno);
                return 0;
            }
            written += static_cast<size_t>(n);
        }
        state->result->downloaded_bytes += static_cast<int64_t>(total);
        return total;
    }
    if (state->result->body.size() + total > state->request->max_body_bytes) {
        state->callback_error = "response body larger than " +
                                std::to_string(state->request->max_body_bytes) + " bytes";
        return 0;
    }
    state->result->body.append(data, total);
    return total;
}

size_t WriteHeader(char* data, size_t size, size_t count, void* user) {
    auto* state = static_cast<CallbackState*>(user);
    std::string_view line(data, size * count);
    if (line.starts_with("HTTP/")) {
        state->result->headers.clear();  // a new response (after a 100 or a redirect)
        return size * count;
    }
    size_t colon = line.find(':');
    if (colon == std::string_view::npos) return size * count;
    std::string name(line.substr(0, colon));
    std::transform(name.begin(), name.end(), name.begin(),
                   [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
    std::string_view value = line.substr(colon + 1);
    size_t first = value.find_first_not_of(" \t");
    size_t last = value.find_last_not_of(" \t\r\n");
    state->result->headers[name] =
        first == std::string_view::npos ? "" : std::string(value.substr(first, last - first + 1));
    return size * count;
}

// Network trouble that a later attempt may not meet; everything else is a configuration or
// local problem that retrying cannot fix.
bool IsRetryable(CURLcode code) {
    switch (code) {
        case CURLE_COULDNT_RESOLVE_HOST:
        case CURLE_COULDNT_RESOLVE_PROXY:
        case CURLE_COULDNT_CONNECT:
        case CURLE_OPERATION_TIMEDOUT:
        case CURLE_SEND_ERROR:
        case CURLE_RECV_ERROR:
        case CURLE_GOT_NOTHING:
        case CURLE_PARTIAL_FILE:
        case CURLE_SSL_CONNECT_ERROR:
        case CURLE_HTTP2:
        case CURLE_HTTP2_STREAM:
        case CURLE_WEIRD_SERVER_REPLY:
            return true;
        default:
            return false;
    }
}

void Check(CURLcode code, const char* what) {
    if (code != CURLE_OK) {
        throw core::Error(core::ErrorCode::kInternal, std::string("curl setup failed (") + what +
                                                          "): " + curl_easy_strerror(code));
    }
}

}  // namespace

int64_t BodySource::Size() const {
    switch (kind) {
        case Kind::kNone:
            return 0;
        case Kind::kMemory:
            return static_cast<int64_t>(memory.size());
        case Kind::kFileRange:
            return length;
    }
    return 0;
}

CurlHandle::CurlHandle() {
    static std::once_flag global_init;
    std::call_once(global_init, [] { curl_global_init(CURL_GLOBAL_DEFAULT); });
    handle_ = curl_easy_init();
    if (handle_ == nullptr) throw core::Error(core::ErrorCode::kInternal, "curl_easy_init failed");
}

CurlHandle::~CurlHandle() { curl_easy_cleanup(static_cast<CURL*>(handle_)); }

TransferResult Transfer(CurlHandle& handle, const TransferRequest& request,
                        const TransferSettings& settings) {
    CURL* easy = Easy(handle);
    curl_easy_reset(easy);  // keeps the connection cache
    TransferResult result;
    CallbackState state{.request = &request, .result = &result, .easy = easy};
    char error_buffer[CURL_ERROR_SIZE] = {0};

    SList headers;
    for (const auto& [name, value] : request.headers) headers.Append(name + ": " += value);
    headers.Append("Expect:");  // no 100-continue round trip: S3 answers errors after the body
    if (request.method == "POST" &&
        std::none_of(request.headers.begin(), request.headers.end(), [](const auto& h) {
            return strcasecmp(h.first.c_str(), "content-type") == 0;
        })) {
        headers.Append("Content-Type:");  // curl would add a form content type we did not sign
    }
    SList connect_to;
    for (const std::string& entry : settings.connect_to) connect_to.Append(entry);

    Check(curl_easy_setopt(easy, CURLOPT_URL, request.url.c_str()), "url");
    Check(curl_easy_setopt(easy, CURLOPT_PATH_AS_IS, 1L), "path as is");  // keys may hold ".."
    Check(curl_easy_setopt(easy, CURLOPT_NOSIGNAL, 1L), "nosignal");
    Check(curl_easy_setopt(easy, CURLOPT_ERRORBUFFER, error_buffer), "error buffer");
    Check(curl_easy_setopt(easy, CURLOPT_CONNECTTIMEOUT_MS, settings.connect_timeout_ms),
          "timeout");
    Check(curl_easy_setopt(easy, CURLOPT_LOW_SPEED_LIMIT, 1L), "low speed");
    Check(curl_easy_setopt(easy, CURLOPT_LOW_SPEED_TIME, settings.stall_timeout_seconds), "stall");
    Check(curl_easy_setopt(easy, CURLOPT_USERAGENT, settings.user_agent.c_str()), "user agent");
    Check(curl_easy_setopt(easy, CURLOPT_HTTPHEADER, headers.get()), "headers");
    if (connect_to.get() != nullptr) {
        Check(curl_easy_setopt(easy, CURLOPT_CONNECT_TO, connect_to.get()), "connect to");
    }
    Check(curl_easy_setopt(easy, CURLOPT_WRITEFUNCTION, WriteBody), "write");
    Check(curl_easy_setopt(easy, CURLOPT_WRITEDATA, &state), "write data");
    Check(curl_easy_setopt(easy, CURLOPT_HEADERFUNCTION, WriteHeader), "header");
    Check(curl_easy_setopt(easy, CURLOPT_HEADERDATA, &state), "header data");
    Check(curl_easy_setopt(easy, CURLOPT_READFUNCTION, ReadBody), "read");
    Check(curl_easy_setopt(easy, CURLOPT_READDATA, &state), "read data");
    Check(curl_easy_setopt(easy, CURLOPT_SEEKFUNCTION, SeekBody), "seek");
    Check(curl_easy_setopt(easy, CURLOPT_SEEKDATA, &state), "seek data");

    const curl_off_t body_size = request.body.Size();
    if (request.method == "HEAD") {
        Check(curl_easy_setopt(easy, CURLOPT_NOBODY, 1L), "head");
    } else if (request.method == "PUT") {
        Check(curl_easy_setopt(easy, CURLOPT_UPLOAD, 1L), "put");
        Check(curl_easy_setopt(easy, CURLOPT_INFILESIZE_LARGE, body_size), "put size");
    } else if (request.method == "POST") {
        Check(curl_easy_setopt(easy, CURLOPT_POST, 1L), "post");
        Check(curl_easy_setopt(easy, CURLOPT_POSTFIELDSIZE_LARGE, body_size), "post size");
    } else if (request.method != "GET") {
        Check(curl_easy_setopt(easy, CURLOPT_CUSTOMREQUEST, request.method.c_str()), "method");
    }

    CURLcode code = curl_easy_perform(easy);
    if (code != CURLE_OK) {
        if (!state.callback_error.empty()) {
            result.transport_error = state.callback_error;
            result.transport_retryable = false;
        } else {
            result.transport_error =
                std::string(curl_easy_strerror(code)) +
                (error_buffer[0] != '\0' ? std::string(": ") + error_buffer : std::string());
            result.transport_retryable = IsRetryable(code);
        }
        return result;
    }
    curl_easy_getinfo(easy, CURLINFO_RESPONSE_CODE, &result.status);
    return result;
}

}  // namespace songd::storage::s3
