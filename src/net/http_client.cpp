#include "net/http_client.h"

#include <arpa/inet.h>
#include <curl/curl.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <mutex>

#include "core/text.h"

namespace songd::net {
namespace {

void GlobalInitOnce() {
    static std::once_flag once;
    static CURLcode result = CURLE_OK;
    std::call_once(once, [] { result = curl_global_init(CURL_GLOBAL_DEFAULT); });
    if (result != CURLE_OK) {
        throw TransportError(TransportFailure::kOther, "libcurl could not initialise");
    }
}

/// @brief Owns a curl_slist.
class SList {
  public:
    SList() = default;
    ~SList() { curl_slist_free_all(list_); }
    SList(const SList&) = delete;
    SList& operator=(const SList&) = delete;
    void Append(const std::string& line) {
        curl_slist* grown = curl_slist_append(list_, line.c_str());
        if (grown == nullptr) throw TransportError(TransportFailure::kOther, "out of memory");
        list_ = grown;
    }
    curl_slist* get() const { return list_; }

  private:
    curl_slist* list_ = nullptr;
};

/// The one mapping of curl's result codes to failure kinds.
TransportFailure Classify(CURLcode code) {
    switch (code) {
        case CURLE_COULDNT_RESOLVE_HOST:
        case CURLE_COULDNT_RESOLVE_PROXY:
        case CURLE_COULDNT_CONNECT:
        case CURLE_SSL_CONNECT_ERROR:
            return TransportFailure::kConnect;
        case CURLE_OPERATION_TIMEDOUT:
            return TransportFailure::kTimeout;
        case CURLE_SEND_ERROR:
            return TransportFailure::kSend;
        case CURLE_RECV_ERROR:
        case CURLE_GOT_NOTHING:
        case CURLE_PARTIAL_FILE:
        case CURLE_WEIRD_SERVER_REPLY:
        case CURLE_HTTP2:
        case CURLE_HTTP2_STREAM:
            return TransportFailure::kReceive;
        case CURLE_URL_MALFORMAT:
        case CURLE_UNSUPPORTED_PROTOCOL:
            return TransportFailure::kRequest;
        default:
            return TransportFailure::kOther;
    }
}

/// What the callbacks of one transfer share.
struct Transfer {
    const Request* request = nullptr;
    CURL* curl = nullptr;
    Response response;
    int64_t read_position = 0;
    /// Set when a callback stopped the transfer on purpose; becomes the error text (kOther).
    std::string callback_error;
    /// An address `allow_address` refused (the request fails with kRequest if nothing else
    /// connected).
    std::string refused_address;
};

// Opens the socket of a connection only for an address the request allows.
curl_socket_t OpenCheckedSocket(void* user, curlsocktype purpose, curl_sockaddr* address) {
    auto* transfer = static_cast<Transfer*>(user);
    if (purpose == CURLSOCKTYPE_IPCXN && transfer->request->allow_address) {
        char text[INET6_ADDRSTRLEN] = {};
        const void* raw = nullptr;
        if (address->family == AF_INET) {
            raw = &reinterpret_cast<const sockaddr_in*>(&address->addr)->sin_addr;
        } else if (address->family == AF_INET6) {
            raw = &reinterpret_cast<const sockaddr_in6*>(&address->addr)->sin6_addr;
        }
        if (raw == nullptr || inet_ntop(address->family, raw, text, sizeof text) == nullptr ||
            !transfer->request->allow_address(text)) {
            transfer->refused_address = raw != nullptr && text[0] != '\0' ? text : "(unknown)";
            return CURL_SOCKET_BAD;
        }
    }
    return ::socket(address->family, address->socktype | SOCK_CLOEXEC, address->protocol);
}

size_t ReadBody(char* buffer, size_t size, size_t count, void* user) {
    auto* transfer = static_cast<Transfer*>(user);
    const RequestBody& body = transfer->request->body;
    const int64_t left = body.size() - transfer->read_position;
    const size_t want = static_cast<size_t>(std::min<int64_t>(left, int64_t(size * count)));
    if (want == 0) return 0;
    const int64_t got = body.Read(transfer->read_position, buffer, want);
    if (got <= 0) {
        transfer->callback_error =
            got == 0 ? "the request body file ended before its announced size (changed while "
                       "sending?)"
                     : std::string("reading the request body file failed: ") + std::strerror(errno);
        return CURL_READFUNC_ABORT;
    }
    transfer->read_position += got;
    return static_cast<size_t>(got);
}

// curl rewinds the body when it must send it again (a reused connection that turned out dead,
// an auth round trip).
int SeekBody(void* user, curl_off_t offset, int origin) {
    auto* transfer = static_cast<Transfer*>(user);
    if (origin != SEEK_SET || offset < 0 || offset > transfer->request->body.size()) {
        return CURL_SEEKFUNC_FAIL;
    }
    transfer->read_position = offset;
    return CURL_SEEKFUNC_OK;
}

size_t WriteBody(char* data, size_t size, size_t count, void* user) {
    auto* transfer = static_cast<Transfer*>(user);
    const size_t total = size * count;
    const int fd = transfer->request->download_fd;
    long status = 0;
    curl_easy_getinfo(transfer->curl, CURLINFO_RESPONSE_CODE, &status);
    if (fd >= 0 && status >= 200 && status < 300) {
        for (size_t written = 0; written < total;) {
            const ssize_t n = ::write(fd, data + written, total - written);
            if (n < 0 && errno == EINTR) continue;
            if (n <= 0) {
                transfer->callback_error =
                    std::string("writing the downloaded body failed: ") + std::strerror(errno);
                return 0;  // curl aborts with CURLE_WRITE_ERROR
            }
            written += static_cast<size_t>(n);
        }
        transfer->response.downloaded_bytes += static_cast<int64_t>(total);
        return total;
    }
    const size_t limit = transfer->request->max_response_bytes;
    if (transfer->response.body.size() + total > limit) {
        transfer->callback_error = "response body larger than " + std::to_string(limit) + " bytes";
        return 0;
    }
    transfer->response.body.append(data, total);
    return total;
}

size_t WriteHeader(char* data, size_t size, size_t count, void* user) {
    auto* transfer = static_cast<Transfer*>(user);
    const size_t n = size * count;
    const std::string_view line(data, n);
    if (line.starts_with("HTTP/")) {
        // A new status line (after a 100 Continue, say): only the last block counts.
        transfer->response.headers.clear();
        return n;
    }
    const size_t colon = line.find(':');
    if (colon != std::string_view::npos) {
        transfer->response.headers.emplace_back(core::ToLower(core::Trim(line.substr(0, colon))),
                                                std::string(core::Trim(line.substr(colon + 1))));
    }
    return n;
}

void Set(CURLcode code, const char* option) {
    if (code != CURLE_OK) {
        throw TransportError(TransportFailure::kOther, std::string("curl option ") + option +
                                                           " failed: " + curl_easy_strerror(code));
    }
}

bool HasHeader(const HeaderList& headers, std::string_view name) {
    return std::any_of(headers.begin(), headers.end(),
                       [&](const auto& header) { return core::ToLower(header.first) == name; });
}

}  // namespace

RequestBody RequestBody::Memory(std::string_view bytes) {
    RequestBody body;
    body.kind_ = Kind::kMemory;
    body.memory_ = bytes;
    return body;
}

RequestBody RequestBody::FileRange(int fd, int64_t offset, int64_t length) {
    RequestBody body;
    body.kind_ = Kind::kFileRange;
    body.fd_ = fd;
    body.offset_ = offset;
    body.length_ = std::max<int64_t>(0, length);
    return body;
}

int64_t RequestBody::Read(int64_t position, char* buffer, std::size_t size) const {
    if (kind_ == Kind::kMemory) {
        const auto start = static_cast<std::size_t>(std::min<int64_t>(position, this->size()));
        const std::size_t n = std::min(size, memory_.size() - start);
        std::memcpy(buffer, memory_.data() + start, n);
        return static_cast<int64_t>(n);
    }
    while (true) {
        const ssize_t n = ::pread(fd_, buffer, size, offset_ + position);
        if (n < 0 && errno == EINTR) continue;
        return n;
    }
}

std::optional<std::string> Response::Header(std::string_view name) const {
    const std::string wanted = core::ToLower(name);
    for (const auto& [key, value] : headers) {
        if (key == wanted) return value;
    }
    return std::nullopt;
}

const char* FailureName(TransportFailure failure) {
    switch (failure) {
        case TransportFailure::kConnect:
            return "connect";
        case TransportFailure::kTimeout:
            return "timeout";
        case TransportFailure::kSend:
            return "send";
        case TransportFailure::kReceive:
            return "receive";
        case TransportFailure::kRequest:
            return "request";
        case TransportFailure::kOther:
            return "other";
    }
    return "other";
}

/// @brief RAII owner of one CURL easy handle.
class HttpClient::Handle {
  public:
    Handle() : curl_(curl_easy_init()) {
        if (curl_ == nullptr) {
            throw TransportError(TransportFailure::kOther, "libcurl could not create a handle");
        }
    }
    ~Handle() { curl_easy_cleanup(curl_); }
    Handle(const Handle&) = delete;
    Handle& operator=(const Handle&) = delete;

    CURL* get() const { return curl_; }

  private:
    CURL* curl_;
};

HttpClient::HttpClient(ClientOptions options)
    : pool_(std::move(options.pool), [] { return std::make_unique<Handle>(); }) {
    GlobalInitOnce();
}

HttpClient::~HttpClient() = default;

Response HttpClient::Send(const Request& request) {
    if (request.download_fd >= 0) {
        if (::ftruncate(request.download_fd, 0) != 0 ||
            ::lseek(request.download_fd, 0, SEEK_SET) != 0) {
            throw TransportError(
                TransportFailure::kOther,
                std::string("cannot reset the download file: ") + std::strerror(errno));
        }
    }
    auto lease = pool_.Acquire();
    CURL* curl = lease->get();
    // Clears every option of the previous request but keeps the connection cache, which is
    // the point of pooling.
    curl_easy_reset(curl);

    SList headers;
    for (const auto& [name, value] : request.headers) {
        // "Name;" is curl's way to send a header with an empty value ("Name:" would remove it).
        headers.Append(value.empty() ? name + ";" : name + ": " + value);
    }
    // No "100 Continue" round trip (servers answer errors after the body anyway), and no
    // form Content-Type that the caller did not ask for (S3 signs the headers it sends).
    headers.Append("Expect:");
    if (!HasHeader(request.headers, "content-type")) headers.Append("Content-Type:");
    SList connect_to;
    for (const std::string& entry : request.connect_to) connect_to.Append(entry);

    Transfer transfer{.request = &request, .curl = curl};
    char error_buffer[CURL_ERROR_SIZE] = {};

    Set(curl_easy_setopt(curl, CURLOPT_URL, request.url.c_str()), "url");
    Set(curl_easy_setopt(curl, CURLOPT_PROTOCOLS_STR, "http,https"), "protocols");
    Set(curl_easy_setopt(curl, CURLOPT_PATH_AS_IS, 1L), "path as is");  // S3 keys may hold ".."
    Set(curl_easy_setopt(curl, CURLOPT_NOSIGNAL, 1L), "nosignal");  // no SIGALRM: we are threaded
    Set(curl_easy_setopt(curl, CURLOPT_FOLLOWLOCATION, 0L), "follow");
    Set(curl_easy_setopt(curl, CURLOPT_ERRORBUFFER, error_buffer), "error buffer");
    Set(curl_easy_setopt(curl, CURLOPT_CONNECTTIMEOUT_MS,
                         static_cast<long>(std::max<int64_t>(1, request.timeouts.connect.count()))),
        "connect timeout");
    if (request.timeouts.total.count() > 0) {
        Set(curl_easy_setopt(curl, CURLOPT_TIMEOUT_MS,
                             static_cast<long>(request.timeouts.total.count())),
            "timeout");
    }
    if (request.timeouts.stall.count() > 0) {
        Set(curl_easy_setopt(curl, CURLOPT_LOW_SPEED_LIMIT, 1L), "low speed");
        Set(curl_easy_setopt(curl, CURLOPT_LOW_SPEED_TIME,
                             static_cast<long>(request.timeouts.stall.count())),
            "stall");
    }
    Set(curl_easy_setopt(curl, CURLOPT_HTTPHEADER, headers.get()), "headers");
    if (connect_to.get() != nullptr) {
        Set(curl_easy_setopt(curl, CURLOPT_CONNECT_TO, connect_to.get()), "connect to");
    }
    Set(curl_easy_setopt(curl, CURLOPT_WRITEFUNCTION, &WriteBody), "write");
    Set(curl_easy_setopt(curl, CURLOPT_WRITEDATA, &transfer), "write data");
    Set(curl_easy_setopt(curl, CURLOPT_HEADERFUNCTION, &WriteHeader), "header");
    Set(curl_easy_setopt(curl, CURLOPT_HEADERDATA, &transfer), "header data");
    Set(curl_easy_setopt(curl, CURLOPT_READFUNCTION, &ReadBody), "read");
    Set(curl_easy_setopt(curl, CURLOPT_READDATA, &transfer), "read data");
    Set(curl_easy_setopt(curl, CURLOPT_SEEKFUNCTION, &SeekBody), "seek");
    Set(curl_easy_setopt(curl, CURLOPT_SEEKDATA, &transfer), "seek data");
    if (request.allow_address) {
        Set(curl_easy_setopt(curl, CURLOPT_OPENSOCKETFUNCTION, &OpenCheckedSocket), "open socket");
        Set(curl_easy_setopt(curl, CURLOPT_OPENSOCKETDATA, &transfer), "open socket data");
    }

    const auto body_size = static_cast<curl_off_t>(request.body.size());
    if (request.method == "HEAD") {
        Set(curl_easy_setopt(curl, CURLOPT_NOBODY, 1L), "head");
    } else if (request.method == "PUT") {
        Set(curl_easy_setopt(curl, CURLOPT_UPLOAD, 1L), "put");
        Set(curl_easy_setopt(curl, CURLOPT_INFILESIZE_LARGE, body_size), "put size");
    } else if (request.method == "POST" || body_size > 0) {
        // A body with another method (DELETE with a body, say): POST's framing, its name.
        Set(curl_easy_setopt(curl, CURLOPT_POST, 1L), "post");
        Set(curl_easy_setopt(curl, CURLOPT_POSTFIELDSIZE_LARGE, body_size), "post size");
        if (request.method != "POST") {
            Set(curl_easy_setopt(curl, CURLOPT_CUSTOMREQUEST, request.method.c_str()), "method");
        }
    } else if (request.method != "GET") {
        Set(curl_easy_setopt(curl, CURLOPT_CUSTOMREQUEST, request.method.c_str()), "method");
    }

    const CURLcode code = curl_easy_perform(curl);
    if (code != CURLE_OK) {
        // A handle that failed mid-transfer is not worth keeping; its connection is gone.
        lease.Discard();
        if (!transfer.callback_error.empty()) {
            throw TransportError(TransportFailure::kOther, transfer.callback_error);
        }
        if (!transfer.refused_address.empty() && code == CURLE_COULDNT_CONNECT) {
            throw TransportError(TransportFailure::kRequest,
                                 "connecting to " + transfer.refused_address + " is not allowed");
        }
        std::string what = curl_easy_strerror(code);
        if (error_buffer[0] != '\0') what += std::string(": ") + error_buffer;
        throw TransportError(Classify(code), what);
    }
    curl_easy_getinfo(curl, CURLINFO_RESPONSE_CODE, &transfer.response.status);
    return std::move(transfer.response);
}

}  // namespace songd::net
