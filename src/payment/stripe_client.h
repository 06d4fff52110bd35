#pragma once
/// @file
/// Stripe's PaymentIntent API over HTTPS (net::HttpClient): form-encoded requests,
/// `Authorization: Bearer`, an `Idempotency-Key` on every create, connect and total timeouts,
/// and bounded retries (net::Retrier, full jitter) for network errors, 5xx and 429 (never for
/// other 4xx).
///
///   payment::StripeClient stripe(payment::StripeClientOptions::FromConfig(config));
///   payment::PaymentIntent created = stripe.CreatePaymentIntent(
///       {.amount = 99, .currency = "usd", .job_id = job.id,
///        .idempotency_key = payment::IntentIdempotencyKey(job.id, 99, "usd")});
///   std::optional<payment::PaymentIntent> found = stripe.RetrievePaymentIntent("pi_123");
///   if (!found) { /* Stripe says: no such PaymentIntent */ }
///
/// Failures are core::Error: Stripe unreachable, timing out, 5xx or 429 after the retries →
/// kUpstreamUnavailable with a Retry-After; a rejected API key → kUpstreamUnavailable too (it
/// is our outage, never the client's); any other refusal → kInternal. Neither the key nor a
/// client secret ever appears in an error or a log line.

#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "core/config.h"
#include "net/http_client.h"
#include "net/retry.h"
#include "payment/payment_intent.h"

namespace songd::payment {

/// @brief Connection and retry settings of the Stripe client.
struct StripeClientOptions {
    std::string api_base = "https://api.stripe.com";
    std::string secret_key;
    // Defaults bound a download waiting on Stripe to about 32 s in the worst case
    // (3 attempts of 10 s plus backoff) while leaving Stripe's slow tail room to answer.
    std::chrono::milliseconds connect_timeout{3000};
    std::chrono::milliseconds request_timeout{10000};  ///< per attempt, connect included
    /// 3 attempts (first try included); pauses doubling from 250 ms up to 2 s, full jitter.
    net::RetryPolicy retry{.max_attempts = 3,
                           .base_delay = std::chrono::milliseconds(250),
                           .max_delay = std::chrono::milliseconds(2000)};
    int retry_after_seconds = 10;  ///< Retry-After of our 503 when Stripe gave none

    /// STRIPE_API_BASE, STRIPE_SECRET_KEY and STRIPE_TIMEOUT; the rest keeps its defaults.
    static StripeClientOptions FromConfig(const core::Config& config);
};

/// @brief What a new PaymentIntent is for.
struct CreateIntentParams {
    int64_t amount = 0;    ///< smallest currency unit
    std::string currency;  ///< lowercase ISO code
    std::string job_id;    ///< stored as metadata[job_id]
    std::string idempotency_key;
    /// Sent as payment_method_types[]; empty means card. Never automatic payment methods:
    /// those include methods (SEPA, ACH) that succeed days after the download was refused.
    std::vector<std::string> payment_method_types;
};

/// The idempotency key of a job's PaymentIntent: the same job at the same price gets the
/// same intent back from Stripe (for 24 h), a changed price gets a new one. `renewal` names
/// an earlier intent that was canceled, so a fresh one can be made deterministically.
std::string IntentIdempotencyKey(const std::string& job_id, int64_t amount,
                                 const std::string& currency, const std::string& renewal = "");

/// @brief The two PaymentIntent operations songd needs; an interface so the payment logic can
/// be tested without a network.
class StripeApi {
  public:
    virtual ~StripeApi() = default;
    /// Creates a PaymentIntent for the given payment method types. Throws core::Error.
    virtual PaymentIntent CreatePaymentIntent(const CreateIntentParams& params) = 0;
    /// The intent, or nullopt when Stripe answers 404 resource_missing. Throws core::Error
    /// (kInvalidInput for an id that is not shaped like one).
    virtual std::optional<PaymentIntent> RetrievePaymentIntent(const std::string& id) = 0;
};

/// @brief StripeApi over libcurl. Thread-safe; blocking (run it on a worker thread).
class StripeClient final : public StripeApi {
  public:
    explicit StripeClient(StripeClientOptions options);

    PaymentIntent CreatePaymentIntent(const CreateIntentParams& params) override;
    std::optional<PaymentIntent> RetrievePaymentIntent(const std::string& id) override;

  private:
    /// Sends with retries; returns the final answer (2xx or a non-retryable status), or throws
    /// kUpstreamUnavailable once the attempts are used up.
    net::Response Call(const char* operation, net::Request request);

    StripeClientOptions options_;
    net::HttpClient http_;
    net::Retrier retrier_;
};

}  // namespace songd::payment
