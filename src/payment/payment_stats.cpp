#include "payment/payment_stats.h"

#include "core/log.h"

namespace songd::payment {

void PaymentStats::RecordUnapplied(const UnappliedPayment& payment) {
    core::LogEvent("warning", "payment_unapplied",
                   {{"job_id", payment.job_id},
                    {"payment_intent_id", payment.intent_id},
                    {"amount", std::to_string(payment.amount)},
                    {"currency", payment.currency},
                    {"reason", payment.reason},
                    {"source", payment.source},
                    {"action", "refund"}});
    std::lock_guard lock(mutex_);
    ++unapplied_[payment.reason];
}

int64_t PaymentStats::Unapplied() const {
    std::lock_guard lock(mutex_);
    int64_t total = 0;
    for (const auto& [reason, n] : unapplied_) total += n;
    return total;
}

std::string PaymentStats::Prometheus() const {
    return "# HELP songd_payments_unapplied_total Payments received for a song that could not be "
           "delivered (to refund; see the payment_unapplied log lines).\n"
           "# TYPE songd_payments_unapplied_total counter\n"
           "songd_payments_unapplied_total " +
           std::to_string(Unapplied()) + "\n";
}

}  // namespace songd::payment
