#pragma once
/// @file
/// Typed errors for domain code. Code throws `core::Error` with an `ErrorCode`;
/// the HTTP layer (http/problem.cpp) holds the one table that maps codes to statuses.
///
///   throw core::Error(core::ErrorCode::kNotFound, "job 42 does not exist");

#include <optional>
#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

namespace songd::core {

/// @brief What went wrong, independent of any transport.
enum class ErrorCode {
    kInvalidInput,          ///< request or value fails validation (422)
    kMalformedRequest,      ///< body is not parseable at all (400)
    kNotFound,              ///< no such resource (404)
    kMethodNotAllowed,      ///< route exists, method does not (405)
    kConflict,              ///< state forbids the action, e.g. job not completed (409)
    kGone,                  ///< resource existed and was deleted, e.g. expired job (410)
    kPayloadTooLarge,       ///< body over the limit (413)
    kUnsupportedMediaType,  ///< body is not JSON (415)
    kUnauthorized,          ///< missing or wrong API key (401)
    kForbidden,             ///< feature disabled or not allowed (403)
    kPaymentRequired,       ///< download needs a paid job (402)
    kRateLimited,           ///< too many requests (429)
    kUpstreamUnavailable,   ///< a dependency (Stripe, S3, database) is down (503)
    kBadSignature,          ///< webhook signature invalid (400)
    kTimeout,               ///< generation exceeded GENERATION_TIMEOUT
    kRenderFailed,          ///< the engine or audio finishing failed
    kInternal,              ///< a bug or an unexpected fault (500)
};

/// @brief One invalid field of a request: where (`loc`) and why (`msg`), as FastAPI reports it.
struct FieldError {
    std::vector<std::string> loc;
    std::string msg;
};

/// @brief The error type domain code throws.
class Error : public std::runtime_error {
  public:
    Error(ErrorCode code, std::string detail) : std::runtime_error(detail), code_(code) {}

    /// A validation error naming the fields; the detail summarises the first.
    static Error Invalid(std::vector<FieldError> fields);

    ErrorCode code() const { return code_; }
    const std::vector<FieldError>& fields() const { return fields_; }

    /// Seconds a client should wait before retrying (429, 503).
    std::optional<int> retry_after() const { return retry_after_; }
    Error& WithRetryAfter(int seconds) {
        retry_after_ = seconds;
        return *this;
    }

    /// Extra members for the problem document; values are JSON literals.
    const std::vector<std::pair<std::string, std::string>>& extra() const { return extra_; }
    Error& WithExtra(std::string name, std::string json_value) {
        extra_.emplace_back(std::move(name), std::move(json_value));
        return *this;
    }

  private:
    ErrorCode code_;
    std::vector<FieldError> fields_;
    std::optional<int> retry_after_;
    std::vector<std::pair<std::string, std::string>> extra_;
};

/// Short machine name of a code, used in job records (`error_code`) and metrics.
const char* ErrorCodeName(ErrorCode code);

}  // namespace songd::core
