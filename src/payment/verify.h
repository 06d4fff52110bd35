#pragma once
/// @file
/// Whether a PaymentIntent pays for a job: pure decision logic, no I/O. Used by the download
/// check and by the webhook, so both apply exactly the same rules.
///
///   payment::PaymentPolicy policy = payment::PaymentPolicy::FromConfig(config);
///   if (auto rejection = payment::CheckIntent(intent, job.id, policy)) {
///       throw payment::PaymentRequired(*rejection, policy, job.id);   // 402, reason named
///   }
///
/// Binding (one PaymentIntent unlocks one job) is not decided here: the job store enforces it
/// atomically in JobStore::BindPayment.

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "core/config.h"
#include "core/error.h"
#include "payment/payment_intent.h"

namespace songd::payment {

/// @brief What a payment must be to unlock a download.
struct PaymentPolicy {
    int64_t price_cents = 0;
    std::string currency;   ///< lowercase ISO code
    bool live_key = false;  ///< STRIPE_SECRET_KEY is sk_live_/rk_live_: only live intents count
    std::string api_prefix = "/api/v1";

    static PaymentPolicy FromConfig(const core::Config& config);
};

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
};

/// Machine name of a reason, e.g. "amount_short".
const char* RejectReasonName(RejectReason reason);

/// @brief A refusal: the reason and one clear sentence for the client.
struct Rejection {
    RejectReason reason;
    std::string detail;
};

/// nullopt when `intent` pays for `job_id` under `policy`; else the first rule it breaks.
std::optional<Rejection> CheckIntent(const PaymentIntent& intent, std::string_view job_id,
                                     const PaymentPolicy& policy);

/// The sentence for a reason that is decided outside CheckIntent (no payment, unknown id,
/// bound elsewhere). `intent_id` is only quoted when it is shaped like an id.
Rejection MakeRejection(RejectReason reason, std::string_view intent_id = "");

/// The 402 error: detail from the rejection, extras `reason`, `amount`, `currency` and
/// `intent_url` ("{API_PREFIX}/payments/{job_id}/intent") so a client knows how to pay.
core::Error PaymentRequired(const Rejection& rejection, const PaymentPolicy& policy,
                            const std::string& job_id);

}  // namespace songd::payment
