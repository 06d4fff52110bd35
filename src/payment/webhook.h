#pragma once
/// @file
/// Stripe webhooks: the `Stripe-Signature` check and the handling of PaymentIntent events.
///
///   payment::WebhookHandler webhook(config, *store);
///   // POST /api/webhooks/stripe, with the raw body bytes exactly as received
///   payment::WebhookResult result =
///       webhook.Handle(request["Stripe-Signature"], raw_body, core::NowMillis());
///   // 200 for every result; core::Error kBadSignature → 400, kForbidden → 403
///
/// The signature is HMAC-SHA256 with the endpoint secret over "{t}.{raw body}"; every v1 in
/// the header is tried in constant time and `t` must be within 300 s of now. Nothing is read
/// or written before the signature holds. Events are deduplicated by id in the job store:
/// applied first, recorded after, so a crash in between means Stripe's redelivery applies it
/// again (every application is idempotent) instead of the event being lost.

#include <cstdint>
#include <string>
#include <string_view>

#include "core/config.h"
#include "jobs/job_store.h"
#include "payment/payment_intent.h"
#include "payment/payment_stats.h"
#include "payment/verify.h"

namespace songd::payment {

/// Stripe's default tolerance between the signed timestamp and now.
constexpr int64_t kSignatureToleranceSeconds = 300;

/// Throws core::Error(kBadSignature) unless `header` carries a v1 signature of
/// "{t}.{raw_body}" under `secret` with |now - t| ≤ tolerance. The error never quotes the
/// secret or an expected signature.
void VerifyStripeSignature(std::string_view header, std::string_view raw_body,
                           std::string_view secret, int64_t now_seconds,
                           int64_t tolerance_seconds = kSignatureToleranceSeconds);

/// The `Stripe-Signature` value Stripe would send for `raw_body` at `timestamp`
/// ("t={timestamp},v1={hex hmac}"): for tests and for the local Stripe stand-in.
std::string SignStripePayload(std::string_view raw_body, std::string_view secret,
                              int64_t timestamp);

/// @brief A PaymentIntent event, as far as songd reads it.
struct WebhookEvent {
    std::string id;           ///< evt_...
    std::string type;         ///< e.g. payment_intent.succeeded
    bool has_intent = false;  ///< data.object is a payment_intent
    PaymentIntent intent;
};

/// Parses an event document; throws core::Error(kMalformedRequest) when it is not one.
WebhookEvent ParseWebhookEvent(std::string_view raw_body);

/// @brief What handling an event did (the HTTP answer is 200 for all of them).
enum class WebhookOutcome {
    kPaid,            ///< payment_intent.succeeded bound the intent to its job
    kAlreadyPaid,     ///< succeeded, and this intent was already bound to the job
    kStatusRecorded,  ///< payment_failed / canceled recorded on the job
    kRejected,        ///< succeeded, but the intent breaks a rule (amount, currency, mode, bound)
    kUnapplied,       ///< money for nothing (job not deliverable, paid already, short): to refund
    kDuplicate,       ///< this event id was handled before
    kIgnored,         ///< another event type, no or unknown job id
};

const char* WebhookOutcomeName(WebhookOutcome outcome);

/// @brief The result of one delivery, for the log line and the metrics.
struct WebhookResult {
    WebhookOutcome outcome = WebhookOutcome::kIgnored;
    std::string event_id;
    std::string event_type;
    std::string job_id;
    std::string detail;  ///< why rejected or ignored; no secrets
};

/// @brief Verifies and applies Stripe webhook deliveries.
class WebhookHandler {
  public:
    /// Keeps a reference to `store`: it must outlive the handler. Unapplied payments are
    /// counted in `stats` when given (the PaymentService's, so one metric shows both paths).
    WebhookHandler(const core::Config& config, jobs::PaymentLedger& store,
                   PaymentStats* stats = nullptr);

    /// Throws core::Error: kForbidden when no STRIPE_WEBHOOK_SECRET is configured,
    /// kBadSignature for a missing or bad signature, kMalformedRequest for a signed body that
    /// is not an event. Nothing is recorded in those cases.
    WebhookResult Handle(std::string_view signature_header, std::string_view raw_body,
                         int64_t now_ms);

    const PaymentStats& stats() const { return *stats_; }

  private:
    WebhookResult Apply(const WebhookEvent& event, int64_t now_ms);
    WebhookResult ApplySucceeded(const PaymentIntent& intent, WebhookResult result, int64_t now_ms);

    std::string secret_;
    PaymentPolicy policy_;
    int64_t paid_retention_ms_;
    jobs::PaymentLedger& store_;
    PaymentStats own_stats_;
    PaymentStats* stats_;
};

}  // namespace songd::payment
