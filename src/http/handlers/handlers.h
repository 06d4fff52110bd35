#pragma once
/// @file
/// Route registration. Each Register* adds one family of endpoints to the API.
///
///   http::Api api(context);
///   http::RegisterJobRoutes(api);
///   http::RegisterSystemRoutes(api);

#include <string>

#include "http/api.h"
#include "jobs/job.h"

namespace songd::http {

/// generate (+ /api/generate), status, download, queue, health, jobs/{job_id}/lyrics.
void RegisterJobRoutes(Api& api);

/// payments/{job_id}/intent, payments/price, /api/webhooks/stripe.
void RegisterPaymentRoutes(Api& api);

/// /healthz, /readyz, metrics, /openapi.json, /docs.
void RegisterSystemRoutes(Api& api);

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
