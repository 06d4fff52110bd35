#include "payment/http_client.h"

#include <curl/curl.h>

#include <algorithm>
#include <cctype>

namespace songd::payment {
namespace {

// More idle handles than this are freed: they only keep connections warm.
constexpr std::size_t kMaxIdleHandles = 8;

void GlobalInitOnce() {
    static std::once_flag once;
    std::call_once(once, [] {
        if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK) {
            throw TransportError(TransportFailure::kOther, "libcurl could not initialise");
        }
    });
}

struct SlistDeleter {
    void operator()(curl_slist* list) const { curl_slist_free_all(list); }
};
using SlistPtr = std::unique_ptr<curl_slist, SlistDeleter>;

std::string Lower(std::string_view text) {
    std::string out(text);
    std::transform(out.begin(), out.end(), out.begin(),
                   [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
    return out;
}

std::string_view Trim(std::string_view text) {
    while (!text.empty() && (text.front() == ' ' || text.front() == '\t')) text.remove_prefix(1);
    while (!text.empty() && (text.back() == ' ' || text.back() == '\t' || text.back() == '\r' ||
                             text.back() == '\n')) {
        text.remove_suffix(1);
    }
    return text;
}

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

struct Transfer {
    HttpResponse response;
    std::size_t limit = 0;
    bool too_large = false;
};

size_t OnBody(char* data, size_t size, size_t count, void* user) {
    auto* transfer = static_cast<Transfer*>(user);
    const size_t n = size * count;
    if (transfer->response.body.size() + n > transfer->limit) {
        transfer->too_large = true;
        return 0;  // makes curl abort the transfer with CURLE_WRITE_ERROR
    }
    transfer->response.body.append(data, n);
    return n;
}

size_t OnHeader(char* data, size_t size, size_t count, void* user) {
    auto* transfer = static_cast<Transfer*>(user);
    const size_t n = size * count;
    std::string_view line(data, n);
    if (line.rfind("HTTP/", 0) == 0) {
        // A new status line (after a 100 Continue, say): only the last block counts.
        transfer->response.headers.clear();
        return n;
    }
    const auto colon = line.find(':');
    if (colon != std::string_view::npos) {
        transfer->response.headers.emplace_back(Lower(Trim(line.substr(0, colon))),
                                                std::string(Trim(line.substr(colon + 1))));
    }
    return n;
}

}  // namespace

/// RAII owner of one CURL easy handle.
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

std::optional<std::string> HttpResponse::Header(std::string_view name) const {
    const std::string wanted = Lower(name);
    for (const auto& [key, value] : headers) {
        if (key == wanted) return value;
    }
    return std::nullopt;
}

HttpClient::HttpClient() { GlobalInitOnce(); }
HttpClient::~HttpClient() = default;

std::unique_ptr<HttpClient::Handle> HttpClient::Acquire() {
    {
        std::lock_guard lock(mutex_);
        if (!idle_.empty()) {
            auto handle = std::move(idle_.back());
            idle_.pop_back();
            return handle;
        }
    }
    return std::make_unique<Handle>();
}

void HttpClient::Release(std::unique_ptr<Handle> handle) {
    // reset clears every option (headers pointing at freed lists included) but keeps the
    // connection cache, which is the point of pooling.
    curl_easy_reset(handle->get());
    std::lock_guard lock(mutex_);
    if (idle_.size() < kMaxIdleHandles) idle_.push_back(std::move(handle));
}

HttpResponse HttpClient::Send(const HttpRequest& request) {
    auto handle = Acquire();
    CURL* curl = handle->get();

    SlistPtr headers;
    for (const auto& [name, value] : request.headers) {
        std::string line = name;
        line.append(": ").append(value);
        curl_slist* grown = curl_slist_append(headers.get(), line.c_str());
        if (grown == nullptr) throw TransportError(TransportFailure::kOther, "out of memory");
        (void)headers.release();
        headers.reset(grown);
    }
    // Without this, curl waits for "100 Continue" before sending larger bodies.
    if (curl_slist* grown = curl_slist_append(headers.get(), "Expect:")) {
        (void)headers.release();
        headers.reset(grown);
    }

    Transfer transfer;
    transfer.limit = request.max_response_bytes;
    char error_buffer[CURL_ERROR_SIZE] = {};

    curl_easy_setopt(curl, CURLOPT_URL, request.url.c_str());
    curl_easy_setopt(curl, CURLOPT_PROTOCOLS_STR, "http,https");
    curl_easy_setopt(curl, CURLOPT_NOSIGNAL, 1L);  // timeouts without SIGALRM: we are threaded
    curl_easy_setopt(curl, CURLOPT_FOLLOWLOCATION, 0L);
    curl_easy_setopt(curl, CURLOPT_CONNECTTIMEOUT_MS,
                     static_cast<long>(request.connect_timeout.count()));
    curl_easy_setopt(curl, CURLOPT_TIMEOUT_MS, static_cast<long>(request.total_timeout.count()));
    curl_easy_setopt(curl, CURLOPT_HTTPHEADER, headers.get());
    curl_easy_setopt(curl, CURLOPT_WRITEFUNCTION, &OnBody);
    curl_easy_setopt(curl, CURLOPT_WRITEDATA, &transfer);
    curl_easy_setopt(curl, CURLOPT_HEADERFUNCTION, &OnHeader);
    curl_easy_setopt(curl, CURLOPT_HEADERDATA, &transfer);
    curl_easy_setopt(curl, CURLOPT_ERRORBUFFER, error_buffer);
    if (request.method == "GET") {
        curl_easy_setopt(curl, CURLOPT_HTTPGET, 1L);
    } else {
        if (request.method != "POST") {
            curl_easy_setopt(curl, CURLOPT_CUSTOMREQUEST, request.method.c_str());
        }
        curl_easy_setopt(curl, CURLOPT_POST, 1L);
        curl_easy_setopt(curl, CURLOPT_POSTFIELDS, request.body.data());
        curl_easy_setopt(curl, CURLOPT_POSTFIELDSIZE_LARGE,
                         static_cast<curl_off_t>(request.body.size()));
    }

    const CURLcode code = curl_easy_perform(curl);
    if (code != CURLE_OK) {
        // A handle that failed mid-transfer is not worth keeping; its connection is gone.
        std::string what = curl_easy_strerror(code);
        if (error_buffer[0] != '\0') what += std::string(": ") + error_buffer;
        if (transfer.too_large) {
            what = "response larger than " + std::to_string(request.max_response_bytes) + " bytes";
        }
        throw TransportError(transfer.too_large ? TransportFailure::kOther : Classify(code), what);
    }
    curl_easy_getinfo(curl, CURLINFO_RESPONSE_CODE, &transfer.response.status);
    Release(std::move(handle));
    return std::move(transfer.response);
}

std::string HttpClient::UrlEncode(std::string_view text) {
    static constexpr char kHex[] = "0123456789ABCDEF";
    std::string out;
    out.reserve(text.size());
    for (unsigned char c : text) {
        if (std::isalnum(c) || c == '-' || c == '_' || c == '.' || c == '~') {
            out += static_cast<char>(c);
        } else {
            out += '%';
            out += kHex[c >> 4];
            out += kHex[c & 15];
        }
    }
    return out;
}

}  // namespace songd::payment
