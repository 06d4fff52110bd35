#include "http/api.h"

#include <algorithm>
#include <boost/json.hpp>
#include <cmath>
#include <cstdio>

#include "core/clock.h"
#include "core/crypto.h"
#include "core/error.h"
#include "core/ids.h"
#include "core/json_text.h"
#include "core/log.h"
#include "http/problem.h"

namespace songd::http {

namespace json = boost::json;

std::optional<int> RateLimiter::Take(const std::string& client,
                                     std::chrono::steady_clock::time_point now) {
    std::lock_guard lock(mutex_);
    const double rate = per_hour_ / 3600.0;  // tokens per second
    auto [it, inserted] = buckets_.try_emplace(client, Bucket{static_cast<double>(per_hour_), now});
    Bucket& b = it->second;
    const double elapsed = std::chrono::duration<double>(now - b.updated).count();
    b.tokens = std::min<double>(per_hour_, b.tokens + elapsed * rate);
    b.updated = now;
    if (b.tokens >= 1.0) {
        b.tokens -= 1.0;
        if (buckets_.size() > 100000) {
            // Bound memory: drop buckets that have refilled completely.
            for (auto i = buckets_.begin(); i != buckets_.end();) {
                double e = std::chrono::duration<double>(now - i->second.updated).count();
                i = (i->second.tokens + e * rate >= per_hour_) ? buckets_.erase(i) : std::next(i);
            }
        }
        return std::nullopt;
    }
    return std::max(1, static_cast<int>(std::ceil((1.0 - b.tokens) / rate)));
}

Api::Api(ApiContext context)
    : context_(std::move(context)), limiter_(context_.config.rate_limit_per_hour) {
    if (context_.config.access_log && core::LogEnabled("info")) {
        access_log_ =
            std::make_unique<AccessLog>(static_cast<size_t>(context_.config.access_log_buffer),
                                        &context_.metrics.access_log_dropped);
    }
}

namespace {

bool EndsWith(const std::string& text, std::string_view tail) {
    return text.size() >= tail.size() &&
           text.compare(text.size() - tail.size(), tail.size(), tail) == 0;
}

/// Generate and uploads: the API key and the rate limit apply (one limiter for both).
bool IsGenerateRoute(const Router::Route& route) {
    return route.method == "POST" &&
           (EndsWith(route.pattern, "/generate") || EndsWith(route.pattern, "/uploads"));
}

/// Cancel (POST …/jobs/{job_id}/cancel, DELETE …/jobs/{job_id}) changes a job as generate
/// does, so it takes the same X-API-Key.
bool IsCancelRoute(const Router::Route& route) {
    return (route.method == "POST" && EndsWith(route.pattern, "/jobs/{job_id}/cancel")) ||
           (route.method == "DELETE" && EndsWith(route.pattern, "/jobs/{job_id}"));
}

}  // namespace

Prepared Api::Prepare(Request& request, const Router::Match& match) {
    Prepared prepared;
    const auto& config = context_.config;
    if (request.method == "OPTIONS" && request.Header("Origin") &&
        request.Header("Access-Control-Request-Method")) {
        Response r = Response::Empty(match.route || !match.allowed.empty() ? 204 : 404);
        r.SetHeader("Access-Control-Allow-Methods", "GET, POST, DELETE, HEAD, OPTIONS");
        if (auto h = request.Header("Access-Control-Request-Headers")) {
            r.SetHeader("Access-Control-Allow-Headers", std::string(*h));
        }
        r.SetHeader("Access-Control-Max-Age", "600");
        prepared.early = std::move(r);
        return prepared;
    }
    if (!match.route) {
        if (match.allowed.empty()) {
            prepared.early = ProblemResponse(404, "no endpoint at " + request.path);
        } else {
            std::string allow;
            for (const auto& m : match.allowed) allow += (allow.empty() ? "" : ", ") + m;
            if (std::find(match.allowed.begin(), match.allowed.end(), "GET") !=
                match.allowed.end()) {
                allow += ", HEAD";
            }
            Response r = ProblemResponse(405, "method " + request.method + " is not allowed on " +
                                                  request.path + "; allowed: " + allow);
            r.SetHeader("Allow", allow);
            prepared.early = std::move(r);
        }
        return prepared;
    }
    prepared.route = match.route;
    if (IsGenerateRoute(*match.route) || IsCancelRoute(*match.route)) {
        if (auto refused = CheckApiKey(request)) {
            prepared.early = std::move(*refused);
            return prepared;
        }
    }
    if (IsGenerateRoute(*match.route)) {
        if (config.enable_rate_limit) {
            if (auto wait =
                    limiter_.Take(request.client_address, std::chrono::steady_clock::now())) {
                Response r = ProblemResponse(
                    429, "rate limit of " + std::to_string(config.rate_limit_per_hour) +
                             " generations and uploads per hour exceeded; retry in " +
                             std::to_string(*wait) + " s");
                r.SetHeader("Retry-After", std::to_string(*wait));
                prepared.early = std::move(r);
                return prepared;
            }
        }
    }
    prepared.run = match.route->run;
    return prepared;
}

std::optional<Response> Api::CheckApiKey(const Request& request) const {
    const auto& config = context_.config;
    if (config.api_key.empty()) return std::nullopt;
    auto key = request.Header("X-API-Key");
    if (key && core::ConstantTimeEquals(*key, config.api_key)) return std::nullopt;
    return ProblemResponse(401, "Invalid or missing API key");
}

std::optional<Response> Api::RefuseBeforeBody(const Request& request,
                                              const Router::Match& match) const {
    if (!match.route || match.route->body_limit == 0 || !IsGenerateRoute(*match.route)) {
        return std::nullopt;
    }
    return CheckApiKey(request);
}

uint64_t Api::BodyLimit(const Router::Match& match, uint64_t fallback) {
    return match.route && match.route->body_limit > 0 ? match.route->body_limit : fallback;
}

Response Api::Execute(Request& request, const Prepared& prepared) {
    if (prepared.early) return *prepared.early;
    // The full message travels in the response to Finish, which keeps 5xx details for the log.
    try {
        return prepared.route->handler(request);
    } catch (const core::Error& e) {
        return ProblemResponse(e);
    } catch (const std::exception& e) {
        return ProblemResponse(500, e.what());
    }
}

std::optional<Response> Api::TryInline(Request& request, const Prepared& prepared) {
    if (prepared.early || !prepared.route || !prepared.route->try_inline) return std::nullopt;
    try {
        return prepared.route->try_inline(request);
    } catch (const std::exception&) {
        return std::nullopt;  // the pool path answers, with its own error handling
    }
}

std::string NewRequestId() {
    // A random prefix per process and a counter: unique across restarts and nodes, no syscall.
    static const std::string prefix = core::NewJobId().substr(0, 8);
    static std::atomic<uint64_t> counter{0};
    uint64_t n = ++counter;
    std::string id = prefix + "000000000000";  // the counter in 12 hex digits
    for (size_t i = id.size(); i-- > prefix.size(); n >>= 4) id[i] = "0123456789abcdef"[n & 15];
    return id;
}

namespace {

const char* GenericDetail(int status) {
    switch (status) {
        case 502:
        case 503:
            return "a service this request depends on is unavailable; retry later";
        case 504:
            return "the request timed out; retry later";
        default:
            return "internal error";
    }
}

}  // namespace

void SanitizeServerError(const Request& request, Response& response) {
    if (response.status < 500) return;
    auto type = response.Header("Content-Type");
    if (!type || *type != "application/problem+json") return;
    boost::system::error_code ec;
    json::value parsed = json::parse(response.body, ec);
    std::string detail = response.body;
    json::object doc;
    if (!ec && parsed.is_object()) {
        const auto& original = parsed.as_object();
        if (auto* d = original.if_contains("detail"); d && d->is_string()) {
            detail = std::string(d->get_string());
        }
        // type and title name the kind of failure, never an address, a bucket or a key.
        for (const char* keep : {"type", "title", "status"}) {
            if (auto* v = original.if_contains(keep)) doc[keep] = *v;
        }
    }
    doc["detail"] = std::string(GenericDetail(response.status)) +
                    "; the details are in the server log under request id " + request.id;
    doc["request_id"] = request.id;
    response.body = core::JsonText(doc);
    core::LogEvent("error", "request_failed",
                   {{"request_id", request.id},
                    {"method", request.method},
                    {"path", request.LoggablePath()},
                    {"status", std::to_string(response.status)},
                    {"error", detail}});
}

void Api::AddCorsHeaders(const Request& request, Response& response) const {
    auto origin = request.Header("Origin");
    if (!origin) return;
    const auto& allowed = context_.config.cors_origins;
    if (std::find(allowed.begin(), allowed.end(), "*") != allowed.end()) {
        response.SetHeader("Access-Control-Allow-Origin", "*");
    } else if (std::find(allowed.begin(), allowed.end(), std::string(*origin)) != allowed.end()) {
        response.SetHeader("Access-Control-Allow-Origin", std::string(*origin));
        response.SetHeader("Vary", "Origin");
    } else {
        return;
    }
    response.SetHeader(
        "Access-Control-Expose-Headers",
        "Location, ETag, Retry-After, Content-Disposition, Content-Range, X-Request-Id, "
        "Preference-Applied");
}

void Api::Finish(const Request& request, const Prepared& prepared, Response& response,
                 double seconds) {
    // The security headers the old backend sent on every response: one constant block, written
    // as it is after the response's own headers.
    response.fixed_headers =
        "X-Content-Type-Options: nosniff\r\n"
        "X-Frame-Options: DENY\r\n"
        "X-XSS-Protection: 1; mode=block\r\n"
        "Strict-Transport-Security: max-age=31536000; includeSubDomains\r\n";
    AddCorsHeaders(request, response);
    if (!request.id.empty()) response.SetHeader("X-Request-Id", request.id);
    SanitizeServerError(request, response);
    const std::string_view route =
        prepared.route ? std::string_view(prepared.route->name) : "unmatched";
    context_.metrics.ObserveRequest(request.method, route, response.status, seconds);
    if (access_log_) {
        access_log_->Push({core::NowMillis(), request.method, request.LoggablePath(),
                           response.status, response.BodySize(), seconds, request.client_address,
                           request.id});
    }
}

}  // namespace songd::http
