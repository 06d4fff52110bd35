#pragma once
/// @file
/// Route registration. Each Register* adds one family of endpoints to the API.
///
///   http::Api api(context);
///   http::RegisterJobRoutes(api);
///   http::RegisterSystemRoutes(api);

#include <cstdint>
#include <string>

#include "http/api.h"
#include "jobs/job.h"

namespace songd::http {

/// generate (+ /api/generate), status, download, queue, health.
void RegisterJobRoutes(Api& api);

/// payments/{job_id}/intent, payments/price, /api/webhooks/stripe.
void RegisterPaymentRoutes(Api& api);

/// uploads (reference songs): POST {p}/uploads, GET {p}/uploads/{upload_id}.
void RegisterUploadRoutes(Api& api);

/// The most an uploaded file may have (20 MB); the body may have a little more (multipart).
constexpr uint64_t kMaxUploadBytes = uint64_t{20} * 1024 * 1024;

/// /healthz, /readyz, metrics, /openapi.json, /docs.
void RegisterSystemRoutes(Api& api);

/// Validates a generate body into a request; throws core::Error::Invalid listing every
/// problem (FastAPI's `loc`/`msg` shape).
jobs::GenerateRequest ParseGenerateBody(const std::string& body, const core::Config& config);

/// The OpenAPI 3.1 document of every endpoint, for the given prefix and metrics path.
std::string OpenApiDocument(const core::Config& config);

}  // namespace songd::http
