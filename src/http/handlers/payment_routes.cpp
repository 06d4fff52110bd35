// Payment endpoints: a job's PaymentIntent, the price, and Stripe's webhook.
#include <boost/json.hpp>
#include <charconv>

#include "core/clock.h"
#include "core/error.h"
#include "core/ids.h"
#include "core/json_text.h"
#include "core/text.h"
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
    payment::IntentOffer offer = ctx.payments->CreateIntent(id, core::NowMillis());
    json::object doc{{"payment_intent_id", offer.payment_intent_id},
                     {"client_secret", offer.client_secret},
                     {"amount", offer.amount},
                     {"currency", offer.currency},
                     {"publishable_key", offer.publishable_key}};
    Response r = Response::Json(200, core::JsonText(doc));
    r.SetHeader("Cache-Control", "no-store");  // carries the client secret
    return r;
}

/// `?audio_length=N` (default DEFAULT_AUDIO_LENGTH): the price a new song of that length is
/// fixed at, with the tiers so a page can show them all.
Response Price(ApiContext& ctx, Request& request) {
    int audio_length = ctx.config.default_audio_length;
    if (auto given = request.QueryParam("audio_length")) {
        const std::string text(core::Trim(*given));
        int value = 0;
        const auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
        const bool number = !text.empty() && ec == std::errc() && end == text.data() + text.size();
        if (!number || value < 95 || value > ctx.config.max_audio_length) {
            throw core::Error::Invalid(
                {{{"query", "audio_length"},
                  "audio_length must be a whole number of seconds from 95 to " +
                      std::to_string(ctx.config.max_audio_length)}});
        }
        audio_length = value;
    }
    const payment::Price price = ctx.payments->PriceFor(audio_length);
    json::array tiers;
    for (const auto& tier : ctx.config.price_tiers) {
        tiers.push_back(
            json::object{{"max_audio_length", tier.max_seconds}, {"price_cents", tier.cents}});
    }
    return Response::Json(200, core::JsonText(json::object{{"price_cents", price.price_cents},
                                                           {"currency", price.currency},
                                                           {"audio_length", price.audio_length},
                                                           {"tiers", std::move(tiers)}}));
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
