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

/// generate (+ /api/generate), status, download, queue, health, jobs/{job_id}/lyrics.
void RegisterJobRoutes(Api& api);

/// payments/{job_id}/intent, payments/price, /api/webhooks/stripe.
void RegisterPaymentRoutes(Api& api);

/// uploads (reference songs): POST {p}/uploads, GET {p}/uploads/{upload_id}.
void RegisterUploadRoutes(Api& api);

/// The most an uploaded file may have (20 MB); the body may have a little more (multipart).
constexpr uint64_t kMaxUploadBytes = uint64_t{20} * 1024 * 1024;

/// /healthz, /readyz, metrics, /openapi.json, /docs.
void RegisterSystemRoutes(Api& api);

/// The page at / (unless WEB_ENABLED=false), its files under /static/, Swagger UI at /docs.
void RegisterWebRoutes(Api& api);

/// The page's Content-Security-Policy: this server, plus the origin of STRIPE_JS_URL when
/// payments are on (and Stripe's frame and API origins when it is Stripe's own).
std::string PageContentSecurityPolicy(const core::Config& config);

/// "https://host:port" of an absolute URL; empty when it has no scheme.
std::string UrlOrigin(const std::string& url);

/// Validates a generate body into a request; throws core::Error::Invalid listing every
/// problem (FastAPI's `loc`/`msg` shape).
jobs::GenerateRequest ParseGenerateBody(const std::string& body, const core::Config& config);

/// Fixes the LRC a new job renders (request.lyrics_lrc, lyrics_bpm) once its seed is known:
/// plain lyrics are laid out at the tempo its style and seed give. Throws core::Error::Invalid
/// (loc body.lyrics), e.g. when the lines do not fit the length.
void FixRenderedLyrics(jobs::GenerateRequest& request, uint64_t seed);

/// The OpenAPI 3.1 document of every endpoint, for the given prefix and metrics path.
std::string OpenApiDocument(const core::Config& config);

}  // namespace songd::http
