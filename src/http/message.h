#pragma once
/// @file
/// HTTP request and response as handlers see them: plain structs, no Beast, so handlers
/// compile fast and are tested without a socket.
///
///   http::Response r = http::Response::Json(200, R"({"ok":true})");
///   r.SetHeader("ETag", "\"abc\"");

#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "core/unique_fd.h"

namespace songd::http {

using HeaderList = std::vector<std::pair<std::string, std::string>>;

/// Case-insensitive ASCII comparison, for header names.
bool IEquals(std::string_view a, std::string_view b);

/// @brief A parsed request.
struct Request {
    std::string method;
    std::string target;  ///< as received, e.g. "/api/v1/status/x?y=1"
    std::string path;    ///< percent-decoded path, without the query
    std::vector<std::pair<std::string, std::string>> query;  ///< decoded
    HeaderList headers;
    std::string body;
    std::string client_address;  ///< the client as the rate limiter keys it (see TRUSTED_PROXIES)
    std::string peer_address;    ///< the TCP peer
    std::string id;              ///< correlation id: X-Request-Id and every log line of it
    std::map<std::string, std::string> params;  ///< from the route pattern, e.g. job_id

    std::optional<std::string_view> Header(std::string_view name) const;
    std::optional<std::string> QueryParam(std::string_view name) const;
    /// The path with query values elided ("/download/x?payment_intent_id=…"), for logs.
    std::string LoggablePath() const;
};

/// @brief A byte range of an open file to send as the body; the server streams it. The file
/// was opened (and its size and validators taken from that descriptor) by the handler, so a
/// file deleted or replaced meanwhile still yields exactly the bytes the headers announced.
struct FileBody {
    std::shared_ptr<const core::UniqueFd> fd;
    uint64_t offset = 0;
    uint64_t length = 0;
};

struct LiveAnswer;

/// @brief A response: either `body` or `file`.
struct Response {
    int status = 200;
    HeaderList headers;
    std::string body;
    std::optional<FileBody> file;
    bool close = false;  ///< close the connection after sending
    /// Header lines written as they are after `headers` ("Name: value\r\n" each, static
    /// storage): the constant block every response carries, without a copy per response.
    std::string_view fixed_headers;
    /// Set: the server keeps answering without a thread: an event stream, or this response
    /// held until something changes (see LiveAnswer).
    std::shared_ptr<LiveAnswer> live;

    static Response Json(int status, std::string json);
    static Response Text(int status, std::string text, std::string content_type);
    static Response Empty(int status);

    void SetHeader(std::string name, std::string value);
    std::optional<std::string_view> Header(std::string_view name) const;
    uint64_t BodySize() const { return file ? file->length : body.size(); }
};

/// @brief What one look at a watched job gives (LiveAnswer::look).
struct LiveStep {
    std::string bytes;               ///< stream: to send now (may be empty)
    bool done = false;               ///< stream: close after `bytes`
    std::optional<Response> answer;  ///< held answer: the answer to send instead, once there
};

/// @brief An answer the I/O threads keep serving while a job changes. The server looks once
/// at once, then again whenever `subscribe`'s wake-up fires or `poll` passes; each look runs
/// on the blocking pool, the waits are timers. Two kinds:
///  - a stream (`stream`): the response's headers, then every look's bytes, a heartbeat
///    comment when nothing was sent for `heartbeat`, until a look says done;
///  - a held answer: the response as it is at `deadline`, unless a look gives an answer first.
struct LiveAnswer {
    /// Registers `wake` (callable on any thread, quick) for changes; dropping the handle
    /// unsubscribes.
    std::function<std::shared_ptr<void>(std::function<void()> wake)> subscribe;
    std::function<LiveStep()> look;
    std::chrono::milliseconds poll{0};  ///< 0: only wake-ups make it look again
    bool stream = false;
    std::chrono::milliseconds heartbeat{15'000};
    std::chrono::steady_clock::time_point deadline;
    std::shared_ptr<void> slot;  ///< held until the answer ends (e.g. a stream count)
};

/// Decodes %XX escapes; nullopt for malformed escapes or an encoded NUL.
std::optional<std::string> PercentDecode(std::string_view text, bool plus_is_space);

}  // namespace songd::http
