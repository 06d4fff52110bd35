#include "http/problem.h"

#include <boost/json.hpp>

#include "core/json_text.h"

namespace songd::http {

namespace json = boost::json;

int StatusFor(core::ErrorCode code) {
    using core::ErrorCode;
    switch (code) {
        case ErrorCode::kInvalidInput:
            return 422;
        case ErrorCode::kMalformedRequest:
            return 400;
        case ErrorCode::kNotFound:
            return 404;
        case ErrorCode::kMethodNotAllowed:
            return 405;
        case ErrorCode::kConflict:
            return 409;
        case ErrorCode::kGone:
            return 410;
        case ErrorCode::kPayloadTooLarge:
            return 413;
        case ErrorCode::kUnsupportedMediaType:
            return 415;
        case ErrorCode::kUnauthorized:
            return 401;
        case ErrorCode::kForbidden:
            return 403;
        case ErrorCode::kPaymentRequired:
            return 402;
        case ErrorCode::kRateLimited:
            return 429;
        case ErrorCode::kUpstreamUnavailable:
            return 503;
        case ErrorCode::kBadSignature:
            return 400;
        case ErrorCode::kTimeout:
            return 504;
        case ErrorCode::kRenderFailed:
            return 500;
        case ErrorCode::kInternal:
            return 500;
    }
    return 500;
}

const char* ReasonPhrase(int status) {
    switch (status) {
        case 200:
            return "OK";
        case 202:
            return "Accepted";
        case 204:
            return "No Content";
        case 206:
            return "Partial Content";
        case 302:
            return "Found";
        case 304:
            return "Not Modified";
        case 400:
            return "Bad Request";
        case 401:
            return "Unauthorized";
        case 402:
            return "Payment Required";
        case 403:
            return "Forbidden";
        case 404:
            return "Not Found";
        case 405:
            return "Method Not Allowed";
        case 408:
            return "Request Timeout";
        case 409:
            return "Conflict";
        case 410:
            return "Gone";
        case 411:
            return "Length Required";
        case 413:
            return "Content Too Large";
        case 415:
            return "Unsupported Media Type";
        case 416:
            return "Range Not Satisfiable";
        case 422:
            return "Unprocessable Content";
        case 429:
            return "Too Many Requests";
        case 431:
            return "Request Header Fields Too Large";
        case 500:
            return "Internal Server Error";
        case 501:
            return "Not Implemented";
        case 503:
            return "Service Unavailable";
        case 504:
            return "Gateway Timeout";
    }
    return "Error";
}

namespace {

Response Render(int status, const std::string& detail, const core::Error* error) {
    json::object doc;
    doc["type"] = error ? std::string("urn:songd:error:") + core::ErrorCodeName(error->code())
                        : std::string("about:blank");
    doc["title"] = ReasonPhrase(status);
    doc["status"] = status;
    doc["detail"] = detail;
    if (error && !error->fields().empty()) {
        json::array errors;
        for (const auto& f : error->fields()) {
            json::array loc;
            for (const auto& part : f.loc) loc.emplace_back(part);
            errors.emplace_back(json::object{{"loc", loc}, {"msg", f.msg}});
        }
        doc["errors"] = std::move(errors);
    }
    if (error) {
        for (const auto& [name, value] : error->extra()) {
            boost::system::error_code ec;
            auto parsed = json::parse(value, ec);
            doc[name] = ec ? json::value(value) : parsed;
        }
    }
    Response r;
    r.status = status;
    r.body = core::JsonText(doc);
    r.headers.emplace_back("Content-Type", "application/problem+json");
    if (error && error->retry_after()) {
        r.headers.emplace_back("Retry-After", std::to_string(*error->retry_after()));
    }
    return r;
}

}  // namespace

Response ProblemResponse(const core::Error& error) {
    return Render(StatusFor(error.code()), error.what(), &error);
}

Response ProblemResponse(int status, const std::string& detail) {
    return Render(status, detail, nullptr);
}

}  // namespace songd::http
