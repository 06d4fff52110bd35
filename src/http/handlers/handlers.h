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

/// generate (+ /api/generate), status, download, queue, health.
void RegisterJobRoutes(Api& api);

/// payments/{job_id}/intent, payments/price, /api/webhooks/stripe.
void RegisterPaymentRoutes(Api& api);

/// /healthz, /readyz, metrics, /openapi.json.
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

/// The OpenAPI 3.1 document of every endpoint, for the given prefix and metrics path.
std::string OpenApiDocument(const core::Config& config);

}  // namespace songd::http
