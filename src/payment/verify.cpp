#include "payment/verify.h"

#include <algorithm>
#include <cctype>

#include "core/text.h"

namespace songd::payment {
namespace {

std::string JsonString(std::string_view text) {
    // Values here are ids, ISO codes and paths we built: escaping quotes and backslashes is
    // enough, but control characters are dropped rather than trusted.
    std::string out = "\"";
    for (char c : text) {
        if (c == '"' || c == '\\') out += '\\';
        if (static_cast<unsigned char>(c) >= 0x20) out += c;
    }
    return out + "\"";
}

std::string StatusSentence(const PaymentIntent& intent) {
    const std::string& s = intent.status;
    std::string what;
    if (s == "requires_payment_method") {
        what = "is waiting for a payment method (no successful charge yet)";
    } else if (s == "requires_confirmation") {
        what = "has not been confirmed yet";
    } else if (s == "requires_action") {
        what = "is waiting for the customer to authenticate the payment";
    } else if (s == "processing") {
        what = "is still processing; try the download again once it has succeeded";
    } else if (s == "requires_capture") {
        what = "is authorised but not captured";
    } else if (s == "canceled") {
        what = "was canceled; create a new payment";
    } else {
        what = "has status \"" + s + "\", not succeeded";
    }
    return "PaymentIntent " + intent.id + " " + what + ".";
}

}  // namespace

PaymentPolicy PaymentPolicy::FromConfig(const core::Config& config) {
    PaymentPolicy policy;
    policy.price_cents = config.price_cents;
    policy.price_tiers = config.price_tiers;
    policy.currency = core::ToLower(config.price_currency);
    policy.live_key = IsLiveKey(config.stripe_secret_key);
    policy.api_prefix = config.api_prefix;
    return policy;
}

int64_t PaymentPolicy::PriceFor(int audio_length) const {
    core::Config prices;
    prices.price_cents = price_cents;
    prices.price_tiers = price_tiers;
    return prices.PriceCentsFor(audio_length);
}

int64_t PaymentPolicy::PriceOf(const jobs::Job& job) const {
    return job.price_cents > 0 ? job.price_cents : PriceFor(job.request.audio_length);
}

PaymentTarget PaymentTarget::Of(const jobs::Job& job, const PaymentPolicy& policy) {
    return {job.id, policy.PriceOf(job), job.request.payment_intent_id};
}

std::string NotPayableReason(const jobs::Job& job, int64_t now_ms) {
    if (job.status != jobs::JobStatus::kCompleted) {
        return std::string("job_") + jobs::JobStatusName(job.status);
    }
    if (job.expires_at <= now_ms) return "job_expired";
    return "";
}

bool IsLiveKey(std::string_view key) {
    return key.rfind("sk_live_", 0) == 0 || key.rfind("rk_live_", 0) == 0;
}

const char* RejectReasonName(RejectReason reason) {
    switch (reason) {
        case RejectReason::kNoPayment:
            return "no_payment";
        case RejectReason::kMalformedId:
            return "malformed_payment_intent_id";
        case RejectReason::kNoSuchIntent:
            return "no_such_payment_intent";
        case RejectReason::kLivemodeMismatch:
            return "livemode_mismatch";
        case RejectReason::kOtherJob:
            return "intent_for_other_job";
        case RejectReason::kNotSucceeded:
            return "not_succeeded";
        case RejectReason::kCurrencyMismatch:
            return "currency_mismatch";
        case RejectReason::kAmountShort:
            return "amount_short";
        case RejectReason::kBoundToOtherJob:
            return "intent_used_by_other_job";
        case RejectReason::kNoJobInMetadata:
            return "intent_without_job";
    }
    return "unknown";
}

std::optional<Rejection> CheckIntent(const PaymentIntent& intent, const PaymentTarget& target,
                                     const PaymentPolicy& policy) {
    // Mode first: a test-mode intent says nothing about money, whatever else it claims.
    if (intent.livemode != policy.live_key) {
        return Rejection{RejectReason::kLivemodeMismatch,
                         "PaymentIntent " + intent.id + " is a " +
                             (intent.livemode ? "live-mode" : "test-mode") +
                             " payment, but this service takes " +
                             (policy.live_key ? "live" : "test") + " payments."};
    }
    if (!intent.metadata_job_id.empty() && intent.metadata_job_id != target.job_id) {
        return Rejection{RejectReason::kOtherJob,
                         "PaymentIntent " + intent.id +
                             " was created to pay for another song; pay for this one."};
    }
    // Without metadata.job_id any payment in the account would do; only the one intent the
    // client named at generate (the old clients' flow) is trusted without it.
    if (intent.metadata_job_id.empty() &&
        (target.generate_intent_id.empty() || intent.id != target.generate_intent_id)) {
        return Rejection{RejectReason::kNoJobInMetadata,
                         "PaymentIntent " + intent.id +
                             " was not created for this song (it has no metadata.job_id and was "
                             "not given at generate); pay at intent_url."};
    }
    if (intent.status != "succeeded") {
        return Rejection{RejectReason::kNotSucceeded, StatusSentence(intent)};
    }
    if (core::ToLower(intent.currency) != policy.currency) {
        return Rejection{RejectReason::kCurrencyMismatch,
                         "PaymentIntent " + intent.id + " was paid in " +
                             core::ToLower(intent.currency) + ", but the price is in " +
                             policy.currency + "."};
    }
    if (intent.amount_received < target.price_cents) {
        return Rejection{
            RejectReason::kAmountShort,
            "PaymentIntent " + intent.id + " received " + std::to_string(intent.amount_received) +
                " but the price of this song is " + std::to_string(target.price_cents) +
                " (smallest " + policy.currency + " unit)."};
    }
    return std::nullopt;
}

Rejection MakeRejection(RejectReason reason, std::string_view intent_id) {
    const std::string id = IsPaymentIntentId(intent_id) ? std::string(intent_id) : "";
    switch (reason) {
        case RejectReason::kNoPayment:
            return {reason,
                    "This song must be paid for before download: create a payment at "
                    "intent_url, then download with its payment_intent_id."};
        case RejectReason::kMalformedId:
            return {reason,
                    "payment_intent_id is not a PaymentIntent id (it starts with pi_ "
                    "followed by letters and digits)."};
        case RejectReason::kNoSuchIntent:
            return {reason, "No such PaymentIntent: " + id + "."};
        case RejectReason::kBoundToOtherJob:
            return {reason, "PaymentIntent " + id +
                                " already unlocked another song; each payment unlocks one song."};
        default:
            return {reason, "The payment does not unlock this song."};
    }
}

core::Error PaymentRequired(const Rejection& rejection, const PaymentPolicy& policy,
                            const PaymentTarget& target) {
    core::Error error(core::ErrorCode::kPaymentRequired, rejection.detail);
    error.WithExtra("reason", JsonString(RejectReasonName(rejection.reason)))
        .WithExtra("amount", std::to_string(target.price_cents))
        .WithExtra("currency", JsonString(policy.currency))
        .WithExtra("intent_url",
                   JsonString(policy.api_prefix + "/payments/" + target.job_id + "/intent"));
    return error;
}

}  // namespace songd::payment
