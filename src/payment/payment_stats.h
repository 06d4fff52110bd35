#pragma once
/// @file
/// Payments that took money but could not be applied to a song (the job was not completed,
/// had expired, or does not exist): each one is a warning log line with everything a refund
/// needs, and a Prometheus counter to alert on.
///
///   payments.stats().RecordUnapplied({job_id, intent.id, intent.amount_received, "usd",
///                                      "job_expired", "webhook"});
///   std::string text = payments.stats().Prometheus();   // songd_payments_unapplied_total

#include <cstdint>
#include <map>
#include <mutex>
#include <string>

namespace songd::payment {

/// @brief One payment to refund.
struct UnappliedPayment {
    std::string job_id;
    std::string intent_id;
    int64_t amount = 0;  ///< received, smallest currency unit
    std::string currency;
    std::string reason;  ///< e.g. job_processing, job_expired, no_such_job, amount_short
    std::string source;  ///< webhook | download
};

/// @brief Counters of the payment paths; thread-safe.
class PaymentStats {
  public:
    /// Logs `payment_unapplied` (warning) and counts it by reason.
    void RecordUnapplied(const UnappliedPayment& payment);
    int64_t Unapplied() const;
    /// Prometheus text: songd_payments_unapplied_total.
    std::string Prometheus() const;

  private:
    mutable std::mutex mutex_;
    std::map<std::string, int64_t> unapplied_;  ///< by reason (the log line names it)
};

}  // namespace songd::payment
