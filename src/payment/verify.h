#pragma once
/// @file
/// Whether a PaymentIntent pays for a job: pure decision logic, no I/O. Used by the download
/// check and by the webhook, so both apply exactly the same rules.
///
///   payment::PaymentPolicy policy = payment::PaymentPolicy::FromConfig(config);
///   payment::PaymentTarget target = payment::PaymentTarget::Of(job, policy);
///   if (auto rejection = payment::CheckIntent(intent, target, policy)) {
///       throw payment::PaymentRequired(*rejection, policy, target);   // 402, reason named
///   }
///
/// Binding (one PaymentIntent unlocks one job) is not decided here: the job store enforces it
/// atomically in JobStore::BindPayment.

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "core/config.h"
#include "core/error.h"
#include "jobs/job.h"
#include "payment/payment_intent.h"

namespace songd::payment {

/// @brief What a payment must be to unlock a download.
struct PaymentPolicy {
    int64_t price_cents = 0;  ///< PRICE_CENTS: the price of every length without tiers
    std::vector<core::Config::PriceTier> price_tiers;  ///< PRICE_TIERS, ascending
    std::string currency;                              ///< lowercase ISO code
    bool live_key = false;  ///< STRIPE_SECRET_KEY is sk_live_/rk_live_: only live intents count
    std::string api_prefix = "/api/v1";

    static PaymentPolicy FromConfig(const core::Config& config);

    /// The price today of a song `audio_length` seconds long (what a new job is fixed at).
    int64_t PriceFor(int audio_length) const;
    /// The job's own price: fixed when it was created; jobs older than that pay PriceFor.
    int64_t PriceOf(const jobs::Job& job) const;
};

/// @brief The job a payment is checked against.
struct PaymentTarget {
    std::string job_id;
    int64_t price_cents = 0;  ///< the job's own price
    /// The intent id the client gave at generate: the old backend's clients created their
    /// intent before the job existed, so only this one id may lack metadata.job_id.
    std::string generate_intent_id;

    static PaymentTarget Of(const jobs::Job& job, const PaymentPolicy& policy);
};

/// Why a job cannot take a payment now ("job_queued", "job_expired", ...), for the
/// unapplied-payment record; empty when it can (completed, expires_at > now). The store
/// decides atomically (JobStore::BindPayment); this only names the reason.
std::string NotPayableReason(const jobs::Job& job, int64_t now_ms);

/// True for a live-mode secret or restricted key (sk_live_..., rk_live_...).
bool IsLiveKey(std::string_view secret_key);

/// @brief Why a payment does not unlock a job; the value names are stable (`reason` in 402s).
enum class RejectReason {
    kNoPayment,         ///< no payment_intent_id given or stored
    kMalformedId,       ///< the given id is not shaped like a PaymentIntent id
    kNoSuchIntent,      ///< Stripe does not know the id
    kLivemodeMismatch,  ///< test-mode intent with a live key, or the reverse
    kOtherJob,          ///< metadata.job_id names another job
    kNotSucceeded,      ///< requires_payment_method, processing, canceled, ...
    kCurrencyMismatch,  ///< paid in another currency
    kAmountShort,       ///< amount_received below the price
    kBoundToOtherJob,   ///< the intent already unlocked another job
    kNoJobInMetadata,   ///< no metadata.job_id, and not the intent given at generate
};

/// Machine name of a reason, e.g. "amount_short".
const char* RejectReasonName(RejectReason reason);

/// @brief A refusal: the reason and one clear sentence for the client.
struct Rejection {
    RejectReason reason;
    std::string detail;
};

/// nullopt when `intent` pays for `target` under `policy`; else the first rule it breaks.
/// metadata.job_id must name the job, except for the target's generate_intent_id.
std::optional<Rejection> CheckIntent(const PaymentIntent& intent, const PaymentTarget& target,
                                     const PaymentPolicy& policy);

/// The sentence for a reason that is decided outside CheckIntent (no payment, unknown id,
/// bound elsewhere). `intent_id` is only quoted when it is shaped like an id.
Rejection MakeRejection(RejectReason reason, std::string_view intent_id = "");

/// The 402 error: detail from the rejection, extras `reason`, `amount` (the job's price),
/// `currency` and `intent_url` ("{API_PREFIX}/payments/{job_id}/intent") so a client knows
/// how to pay.
core::Error PaymentRequired(const Rejection& rejection, const PaymentPolicy& policy,
                            const PaymentTarget& target);

}  // namespace songd::payment
