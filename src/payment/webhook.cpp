#include "payment/webhook.h"

#include <boost/json.hpp>
#include <charconv>
#include <stdexcept>
#include <vector>

#include "core/crypto.h"
#include "core/error.h"
#include "core/ids.h"
#include "core/log.h"
#include "core/text.h"

namespace songd::payment {
namespace {

namespace json = boost::json;

std::string HmacSha256Hex(std::string_view key, std::string_view data) {
    return core::HexEncode(core::HmacSha256(key, data));
}

[[noreturn]] void BadSignature(const std::string& why) {
    throw core::Error(core::ErrorCode::kBadSignature, why);
}

bool IsIntentEvent(const std::string& type) {
    return type == "payment_intent.succeeded" || type == "payment_intent.payment_failed" ||
           type == "payment_intent.canceled";
}

}  // namespace

void VerifyStripeSignature(std::string_view header, std::string_view raw_body,
                           std::string_view secret, int64_t now_seconds,
                           int64_t tolerance_seconds) {
    if (core::Trim(header).empty()) BadSignature("Stripe-Signature header is missing");

    std::optional<int64_t> timestamp;
    std::string_view timestamp_text;
    std::vector<std::string_view> signatures;
    while (!header.empty()) {
        const auto comma = header.find(',');
        const std::string_view item = core::Trim(header.substr(0, comma));
        header = comma == std::string_view::npos ? std::string_view() : header.substr(comma + 1);
        const auto equals = item.find('=');
        if (equals == std::string_view::npos) continue;
        const std::string_view key = item.substr(0, equals);
        const std::string_view value = item.substr(equals + 1);
        if (key == "t" && !timestamp) {
            int64_t parsed = 0;
            const auto [end, ec] =
                std::from_chars(value.data(), value.data() + value.size(), parsed);
            if (ec != std::errc() || end != value.data() + value.size() || parsed < 0) {
                BadSignature("Stripe-Signature timestamp is not a number");
            }
            timestamp = parsed;
            timestamp_text = value;
        } else if (key == "v1") {
            signatures.push_back(value);
        }
    }
    if (!timestamp) BadSignature("Stripe-Signature has no timestamp (t=)");
    if (signatures.empty()) BadSignature("Stripe-Signature has no v1 signature");

    // Signed exactly as received: the raw body bytes, never a re-serialisation.
    std::string signed_payload;
    signed_payload.reserve(timestamp_text.size() + 1 + raw_body.size());
    signed_payload.append(timestamp_text).append(".").append(raw_body);
    const std::string expected = HmacSha256Hex(secret, signed_payload);

    bool matched = false;
    for (const std::string_view candidate : signatures) {
        // Every candidate is compared, so timing says nothing about which one matched.
        matched = core::ConstantTimeEquals(expected, candidate) || matched;
    }
    if (!matched) BadSignature("no Stripe-Signature v1 signature matches the payload");

    const int64_t age = now_seconds - *timestamp;
    if (age > tolerance_seconds || age < -tolerance_seconds) {
        BadSignature("Stripe-Signature timestamp is outside the " +
                     std::to_string(tolerance_seconds) + " s tolerance");
    }
}

std::string SignStripePayload(std::string_view raw_body, std::string_view secret,
                              int64_t timestamp) {
    const std::string t = std::to_string(timestamp);
    std::string payload = t;
    payload.append(".").append(raw_body);
    return "t=" + t + ",v1=" + HmacSha256Hex(secret, payload);
}

WebhookEvent ParseWebhookEvent(std::string_view raw_body) {
    boost::system::error_code ec;
    json::value value = json::parse(json::string_view(raw_body.data(), raw_body.size()), ec);
    if (ec || !value.is_object()) {
        throw core::Error(core::ErrorCode::kMalformedRequest, "webhook body is not a JSON object");
    }
    const json::object& root = value.get_object();
    auto text = [&](const char* name) -> std::string {
        const auto* member = root.if_contains(name);
        if (member == nullptr || !member->is_string()) {
            throw core::Error(core::ErrorCode::kMalformedRequest,
                              std::string("webhook event has no string \"") + name + "\"");
        }
        return std::string(member->get_string());
    };
    WebhookEvent event;
    event.id = text("id");
    event.type = text("type");
    const auto* data = root.if_contains("data");
    const json::value* object =
        data != nullptr && data->is_object() ? data->get_object().if_contains("object") : nullptr;
    const json::value* kind = object != nullptr && object->is_object()
                                  ? object->get_object().if_contains("object")
                                  : nullptr;
    if (kind != nullptr && kind->is_string() && kind->get_string() == "payment_intent") {
        try {
            event.intent = PaymentIntentFromJson(*object);
            event.has_intent = true;
        } catch (const std::invalid_argument& error) {
            throw core::Error(core::ErrorCode::kMalformedRequest,
                              std::string("webhook event data.object: ") + error.what());
        }
    }
    return event;
}

const char* WebhookOutcomeName(WebhookOutcome outcome) {
    switch (outcome) {
        case WebhookOutcome::kPaid:
            return "paid";
        case WebhookOutcome::kAlreadyPaid:
            return "already_paid";
        case WebhookOutcome::kStatusRecorded:
            return "status_recorded";
        case WebhookOutcome::kRejected:
            return "rejected";
        case WebhookOutcome::kUnapplied:
            return "unapplied";
        case WebhookOutcome::kDuplicate:
            return "duplicate";
        case WebhookOutcome::kIgnored:
            return "ignored";
    }
    return "ignored";
}

WebhookHandler::WebhookHandler(const core::Config& config, jobs::PaymentLedger& store,
                               PaymentStats* stats)
    : secret_(config.stripe_webhook_secret),
      policy_(PaymentPolicy::FromConfig(config)),
      paid_retention_ms_(static_cast<int64_t>(config.paid_retention_days) * 24 * 3600 * 1000),
      store_(store),
      stats_(stats != nullptr ? stats : &own_stats_) {}

WebhookResult WebhookHandler::Handle(std::string_view signature_header, std::string_view raw_body,
                                     int64_t now_ms) {
    if (secret_.empty()) {
        throw core::Error(core::ErrorCode::kForbidden,
                          "webhooks are not configured (STRIPE_WEBHOOK_SECRET is not set)");
    }
    VerifyStripeSignature(signature_header, raw_body, secret_, now_ms / 1000);
    const WebhookEvent event = ParseWebhookEvent(raw_body);

    WebhookResult result;
    result.event_id = event.id;
    result.event_type = event.type;
    if (core::IsJobId(event.intent.metadata_job_id)) result.job_id = event.intent.metadata_job_id;
    if (!IsIntentEvent(event.type) || !event.has_intent) {
        result.detail = "event type not handled";
    } else if (store_.HasEvent(event.id)) {
        result.outcome = WebhookOutcome::kDuplicate;
        result.detail = "event already processed";
    } else {
        // Applied, then recorded: an error or a crash in between leaves the event unrecorded,
        // so Stripe's redelivery applies it (again: binding the same intent is a no-op).
        try {
            result = Apply(event, now_ms);
        } catch (const std::exception& e) {
            core::LogEvent("error", "stripe_webhook_apply_failed",
                           {{"event_id", event.id}, {"error", e.what()}});
            throw;
        }
        store_.RecordEvent(event.id, now_ms);
    }
    core::LogEvent("info", "stripe_webhook",
                   {{"event_id", result.event_id},
                    {"type", result.event_type},
                    {"job_id", result.job_id},
                    {"outcome", WebhookOutcomeName(result.outcome)},
                    {"detail", result.detail}});
    return result;
}

WebhookResult WebhookHandler::ApplySucceeded(const PaymentIntent& intent, WebhookResult result,
                                             int64_t now_ms) {
    auto unapplied = [&](const std::string& reason, const std::string& detail) {
        stats_->RecordUnapplied({result.job_id, intent.id, intent.amount_received,
                                 core::ToLower(intent.currency), reason, "webhook"});
        result.outcome = WebhookOutcome::kUnapplied;
        result.detail = detail;
        return result;
    };
    const std::optional<jobs::Job> job = store_.Get(result.job_id);
    if (!job) return unapplied("no_such_job", "no such job");
    if (auto rejection = CheckIntent(intent, PaymentTarget::Of(*job, policy_), policy_)) {
        // Money short or in another currency was still taken: refund it. Other refusals
        // (test mode, another job) are not this job's money.
        if (rejection->reason == RejectReason::kAmountShort ||
            rejection->reason == RejectReason::kCurrencyMismatch) {
            return unapplied(RejectReasonName(rejection->reason), rejection->detail);
        }
        result.outcome = WebhookOutcome::kRejected;
        result.detail = rejection->detail;
        return result;
    }
    switch (store_.BindPayment(result.job_id, intent.id, now_ms, now_ms + paid_retention_ms_)) {
        case jobs::BindResult::kBound:
            result.outcome = WebhookOutcome::kPaid;
            break;
        case jobs::BindResult::kAlreadyBoundHere:
            result.outcome = WebhookOutcome::kAlreadyPaid;
            break;
        case jobs::BindResult::kJobAlreadyPaid:
            // Paid twice (by another intent): the second payment buys nothing.
            return unapplied("job_already_paid", "job already paid by another payment");
        case jobs::BindResult::kBoundToOtherJob:
            result.outcome = WebhookOutcome::kRejected;
            result.detail = MakeRejection(RejectReason::kBoundToOtherJob, intent.id).detail;
            break;
        case jobs::BindResult::kJobNotPayable: {
            // Read again for the reason: the store refused on the state at bind time.
            const std::optional<jobs::Job> now_job = store_.Get(result.job_id);
            std::string reason = now_job ? NotPayableReason(*now_job, now_ms) : "no_such_job";
            if (reason.empty()) reason = "job_not_payable";
            return unapplied(reason, "job cannot take a payment (" + reason + ")");
        }
        case jobs::BindResult::kNoSuchJob:
            return unapplied("no_such_job", "no such job");
    }
    return result;
}

WebhookResult WebhookHandler::Apply(const WebhookEvent& event, int64_t now_ms) {
    WebhookResult result;
    result.event_id = event.id;
    result.event_type = event.type;
    const PaymentIntent& intent = event.intent;
    if (!core::IsJobId(intent.metadata_job_id)) {
        result.detail = "PaymentIntent " + intent.id + " has no songd job in metadata.job_id";
        return result;
    }
    result.job_id = intent.metadata_job_id;

    if (event.type == "payment_intent.succeeded") return ApplySucceeded(intent, result, now_ms);

    // payment_failed / canceled: remembered for the status document, unless the job is paid
    // (a late failure of a retried attempt must not make a paid job look unpaid).
    const std::optional<jobs::Job> job = store_.Get(result.job_id);
    if (!job) {
        result.detail = "no such job";
    } else if (job->paid) {
        result.detail = "job already paid";
    } else {
        const std::string status = !intent.status.empty() ? intent.status
                                   : event.type == "payment_intent.canceled"
                                       ? "canceled"
                                       : "requires_payment_method";
        if (store_.SetPaymentStatus(result.job_id, status)) {
            result.outcome = WebhookOutcome::kStatusRecorded;
        } else {
            result.detail = "job gone or paid meanwhile";
        }
    }
    return result;
}

}  // namespace songd::payment
