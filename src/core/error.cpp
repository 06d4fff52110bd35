#include "core/error.h"

namespace songd::core {

Error Error::Invalid(std::vector<FieldError> fields) {
    std::string detail = "invalid request";
    if (!fields.empty()) {
        std::string where;
        for (const auto& part : fields.front().loc) {
            if (!where.empty()) where += '.';
            where += part;
        }
        detail = where.empty() ? fields.front().msg : where + ": " + fields.front().msg;
    }
    Error error(ErrorCode::kInvalidInput, detail);
    error.fields_ = std::move(fields);
    return error;
}

const char* ErrorCodeName(ErrorCode code) {
    switch (code) {
        case ErrorCode::kInvalidInput:
            return "invalid_input";
        case ErrorCode::kMalformedRequest:
            return "malformed_request";
        case ErrorCode::kNotFound:
            return "not_found";
        case ErrorCode::kMethodNotAllowed:
            return "method_not_allowed";
        case ErrorCode::kConflict:
            return "conflict";
        case ErrorCode::kGone:
            return "gone";
        case ErrorCode::kPayloadTooLarge:
            return "payload_too_large";
        case ErrorCode::kUnsupportedMediaType:
            return "unsupported_media_type";
        case ErrorCode::kUnauthorized:
            return "unauthorized";
        case ErrorCode::kForbidden:
            return "forbidden";
        case ErrorCode::kPaymentRequired:
            return "payment_required";
        case ErrorCode::kRateLimited:
            return "rate_limited";
        case ErrorCode::kUpstreamUnavailable:
            return "upstream_unavailable";
        case ErrorCode::kBadSignature:
            return "bad_signature";
        case ErrorCode::kTimeout:
            return "timeout";
        case ErrorCode::kRenderFailed:
            return "render_failed";
        case ErrorCode::kInternal:
            return "internal";
    }
    return "internal";
}

}  // namespace songd::core
