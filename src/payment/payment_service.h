#pragma once
/// @file
/// Payment at download: decides whether a job may be downloaded, binding a verified Stripe
/// PaymentIntent to it, and creates the PaymentIntent a client pays.
///
///   payment::StripeClient stripe(payment::StripeClientOptions::FromConfig(config));
///   payment::PaymentService payments(config, *store, stripe);
///
///   // GET {p}/download/{job_id}?payment_intent_id=pi_...   (job completed, files present)
///   payments.AuthorizeDownload(job, query_intent_id, core::NowMillis(), client_address);
///
///   // POST {p}/payments/{job_id}/intent           (only for a completed, unexpired job)
///   payment::IntentOffer offer = payments.CreateIntent(job_id);
///
/// Blocking (Stripe, the store): run on a worker thread. A paid job never reaches Stripe; an
/// unpaid one reaches it through a VerificationGuard (rate limits, negative cache, bounded
/// concurrency). A payment that cannot be applied (the job is not deliverable) is recorded
/// in stats() for a refund.

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "core/clock.h"
#include "core/config.h"
#include "jobs/job.h"
#include "jobs/job_store.h"
#include "payment/payment_stats.h"
#include "payment/stripe_client.h"
#include "payment/verification_guard.h"
#include "payment/verify.h"

namespace songd::payment {

/// @brief How a download was allowed.
enum class DownloadAccess {
    kFree,         ///< payment not required (REQUIRE_PAYMENT_FOR_GENERATION=false)
    kAlreadyPaid,  ///< the job was paid before; Stripe not asked
    kPaidNow,      ///< the given PaymentIntent was verified and is now bound to the job
};

/// @brief The answer of `POST {p}/payments/{job_id}/intent`. `client_secret` goes to that
/// client only: never log it.
struct IntentOffer {
    std::string payment_intent_id;
    std::string client_secret;
    int64_t amount = 0;
    std::string currency;
    std::string publishable_key;
};

/// @brief The price document of `GET {p}/payments/price`.
struct Price {
    int64_t price_cents = 0;
    std::string currency;
    int audio_length = 0;
};

/// @brief The `payment` member of the status document: no secret can reach it by construction.
struct PaymentSummary {
    bool required = false;
    bool paid = false;
    int64_t amount = 0;
    std::string currency;
    int64_t paid_at = 0;  ///< ms since the epoch; 0 while unpaid
};

/// @brief Orchestrates Stripe, the verification rules and the job store.
class PaymentService {
  public:
    /// Keeps references to `store` and `stripe`: they must outlive the service.
    PaymentService(const core::Config& config, jobs::PaymentLedger& store, StripeApi& stripe,
                   GuardLimits limits = {});

    /// Returns how the download is allowed, or throws core::Error:
    /// kPaymentRequired (402, extras reason/amount/currency/intent_url) when the job is not
    /// paid and `payment_intent_id` (else the one stored at generate) does not pay for it;
    /// kRateLimited (429, Retry-After) when `client_address` or the job checked too many
    /// payments this minute; kUpstreamUnavailable (503, Retry-After) when Stripe cannot
    /// answer or too many checks wait on it; kGone when the verified payment came too late
    /// (the job expired: recorded as unapplied); kNotFound when the job vanished. Does not
    /// check the job's status or files: the caller does that first.
    DownloadAccess AuthorizeDownload(const jobs::Job& job, std::string_view payment_intent_id,
                                     int64_t now_ms, std::string_view client_address = "");

    /// Creates (or, for the same job and price, gets back) the job's PaymentIntent, for the
    /// job's own price and only while it is completed and unexpired. Throws kNotFound (no
    /// job), kGone (expired), kConflict (already paid: extra `download_url`; failed; not
    /// completed yet), kForbidden (payments not configured), kUpstreamUnavailable.
    IntentOffer CreateIntent(const std::string& job_id, int64_t now_ms = core::NowMillis());

    /// What the status document shows about the job's payment.
    PaymentSummary Summarize(const jobs::Job& job) const {
        return {require_payment_, job.paid, policy_.PriceOf(job), policy_.currency, job.paid_at};
    }

    /// The price of a new song `audio_length` seconds long.
    Price PriceFor(int audio_length) const {
        return {policy_.PriceFor(audio_length), policy_.currency, audio_length};
    }
    const PaymentPolicy& policy() const { return policy_; }
    PaymentStats& stats() { return stats_; }
    /// Prometheus text: unapplied payments and what the verification guard turned away.
    std::string Prometheus() const;

  private:
    /// The payment arrived but the job is not deliverable: log and count it for a refund.
    void RecordUnapplied(const jobs::Job& job, const PaymentIntent& intent, int64_t now_ms);

    PaymentPolicy policy_;
    bool require_payment_;
    bool configured_;
    std::string publishable_key_;
    std::vector<std::string> payment_method_types_;
    int64_t paid_retention_ms_;
    jobs::PaymentLedger& store_;
    StripeApi& stripe_;
    VerificationGuard guard_;
    PaymentStats stats_;
};

}  // namespace songd::payment
