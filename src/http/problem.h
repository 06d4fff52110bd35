#pragma once
/// @file
/// Errors as `application/problem+json` (RFC 9457), and the one table that maps
/// core::ErrorCode to an HTTP status.
///
///   http::Response r = http::ProblemResponse(core::Error(core::ErrorCode::kNotFound, "no job"));
///   // 404 {"type":"about:blank","title":"Not Found","status":404,"detail":"no job"}

#include "core/error.h"
#include "http/message.h"

namespace songd::http {

/// The HTTP status of an error code.
int StatusFor(core::ErrorCode code);

/// The standard reason phrase ("Not Found").
const char* ReasonPhrase(int status);

/// Renders an error; `detail` is always a string so FastAPI-era clients keep working.
Response ProblemResponse(const core::Error& error);

/// A problem for a status without a domain error (e.g. the router's 404).
Response ProblemResponse(int status, const std::string& detail);

}  // namespace songd::http
