// Payment endpoints: a job's PaymentIntent, the price, and Stripe's webhook.
#include <boost/json.hpp>

#include "core/clock.h"
#include "core/error.h"
#include "core/ids.h"
#include "core/json_text.h"
#include "http/handlers/handlers.h"
#include "payment/payment_service.h"
#include "payment/webhook.h"

namespace songd::http {

namespace json = boost::json;

namespace {

Response CreateIntent(ApiContext& ctx, Request& request) {
    const auto& id = request.params.at("job_id");
    if (!core::IsJobId(id)) {
        throw core::Error(core::ErrorCode::kNotFound, "job not found: the id is not a job id");
    }
    payment::IntentOffer offer = ctx.payments->CreateIntent(id);
    json::object doc{{"payment_intent_id", offer.payment_intent_id},
                     {"client_secret", offer.client_secret},
                     {"amount", offer.amount},
                     {"currency", offer.currency},
                     {"publishable_key", offer.publishable_key}};
    Response r = Response::Json(200, core::JsonText(doc));
    r.SetHeader("Cache-Control", "no-store");  // carries the client secret
    return r;
}

Response Price(ApiContext& ctx, Request&) {
    payment::Price price = ctx.payments->CurrentPrice();
    return Response::Json(200, core::JsonText(json::object{{"price_cents", price.price_cents},
                                                           {"currency", price.currency}}));
}

Response Webhook(ApiContext& ctx, Request& request) {
    payment::WebhookResult result = ctx.webhook->Handle(
        request.Header("Stripe-Signature").value_or(""), request.body, core::NowMillis());
    return Response::Json(
        200, core::JsonText(json::object{
                 {"received", true}, {"outcome", payment::WebhookOutcomeName(result.outcome)}}));
}

}  // namespace

void RegisterPaymentRoutes(Api& api) {
    auto& ctx = api.context();
    if (!ctx.payments || !ctx.webhook) return;
    const std::string& p = ctx.config.api_prefix;
    auto bind = [&ctx](Response (*fn)(ApiContext&, Request&)) {
        return [&ctx, fn](Request& r) { return fn(ctx, r); };
    };
    api.router().Add("POST", p + "/payments/{job_id}/intent", bind(CreateIntent), Run::kRemote);
    api.router().Add("GET", p + "/payments/price", bind(Price), Run::kBlocking);
    api.router().Add("POST", "/api/webhooks/stripe", bind(Webhook), Run::kBlocking);
}

}  // namespace songd::http
