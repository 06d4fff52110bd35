#include "payment/payment_service.h"

#include "core/error.h"
#include "core/ids.h"
#include "core/log.h"
#include "core/text.h"

namespace songd::payment {

// Canceled intents met in a row before CreateIntent gives up (someone keeps canceling them).
constexpr int kMaxIntentRenewals = 3;
constexpr int64_t kDayMs = 24LL * 3600 * 1000;

PaymentService::PaymentService(const core::Config& config, jobs::PaymentLedger& store,
                               StripeApi& stripe, GuardLimits limits)
    : policy_(PaymentPolicy::FromConfig(config)),
      require_payment_(config.require_payment),
      configured_(!config.stripe_secret_key.empty()),
      publishable_key_(config.stripe_publishable_key),
      payment_method_types_(config.stripe_payment_method_types),
      paid_retention_ms_(static_cast<int64_t>(config.paid_retention_days) * kDayMs),
      store_(store),
      stripe_(stripe),
      guard_(limits) {}

void PaymentService::RecordUnapplied(const jobs::Job& job, const PaymentIntent& intent,
                                     int64_t now_ms) {
    // Read again: the job the caller holds may be older than the refusal.
    const std::optional<jobs::Job> now_job = store_.Get(job.id);
    std::string reason = now_job ? NotPayableReason(*now_job, now_ms) : "no_such_job";
    if (reason.empty()) reason = "job_not_payable";
    stats_.RecordUnapplied({job.id, intent.id, intent.amount_received,
                            core::ToLower(intent.currency), reason, "download"});
}

DownloadAccess PaymentService::AuthorizeDownload(const jobs::Job& job,
                                                 std::string_view payment_intent_id, int64_t now_ms,
                                                 std::string_view client_address) {
    if (!require_payment_) return DownloadAccess::kFree;
    if (job.paid) return DownloadAccess::kAlreadyPaid;

    const PaymentTarget target = PaymentTarget::Of(job, policy_);
    const std::string intent_id(payment_intent_id.empty()
                                    ? std::string_view(job.request.payment_intent_id)
                                    : payment_intent_id);
    if (intent_id.empty()) {
        throw PaymentRequired(MakeRejection(RejectReason::kNoPayment), policy_, target);
    }
    if (!IsPaymentIntentId(intent_id)) {
        throw PaymentRequired(MakeRejection(RejectReason::kMalformedId), policy_, target);
    }
    // A refusal seen a moment ago is answered again without Stripe; then the budgets.
    if (auto known = guard_.Remembered(job.id, intent_id, now_ms)) {
        throw PaymentRequired(*known, policy_, target);
    }
    guard_.Admit(client_address, job.id, now_ms);

    std::optional<PaymentIntent> intent;
    {
        VerificationGuard::Permit permit = guard_.AcquireStripeSlot();
        intent = stripe_.RetrievePaymentIntent(intent_id);
    }
    if (!intent) {
        const Rejection rejection = MakeRejection(RejectReason::kNoSuchIntent, intent_id);
        guard_.Remember(job.id, intent_id, rejection, now_ms);
        throw PaymentRequired(rejection, policy_, target);
    }
    if (auto rejection = CheckIntent(*intent, target, policy_)) {
        core::LogEvent("info", "payment_rejected",
                       {{"job_id", job.id},
                        {"payment_intent_id", intent->id},
                        {"reason", RejectReasonName(rejection->reason)}});
        guard_.Remember(job.id, intent_id, *rejection, now_ms);
        throw PaymentRequired(*rejection, policy_, target);
    }

    switch (store_.BindPayment(job.id, intent->id, now_ms, now_ms + paid_retention_ms_)) {
        case jobs::BindResult::kBound:
        case jobs::BindResult::kAlreadyBoundHere:
            core::LogEvent(
                "info", "payment_bound",
                {{"job_id", job.id}, {"payment_intent_id", intent->id}, {"source", "download"}});
            return DownloadAccess::kPaidNow;
        case jobs::BindResult::kJobAlreadyPaid:
            // Paid meanwhile (the webhook, or another download with another intent).
            return DownloadAccess::kAlreadyPaid;
        case jobs::BindResult::kBoundToOtherJob: {
            core::LogEvent("info", "payment_rejected",
                           {{"job_id", job.id},
                            {"payment_intent_id", intent->id},
                            {"reason", RejectReasonName(RejectReason::kBoundToOtherJob)}});
            const Rejection rejection = MakeRejection(RejectReason::kBoundToOtherJob, intent->id);
            guard_.Remember(job.id, intent_id, rejection, now_ms);
            throw PaymentRequired(rejection, policy_, target);
        }
        case jobs::BindResult::kJobNotPayable:
            // The caller saw it completed; it expired (or changed) since. The money is taken.
            RecordUnapplied(job, *intent, now_ms);
            throw core::Error(core::ErrorCode::kGone,
                              "job " + job.id +
                                  " has expired and its files are being deleted; the payment " +
                                  intent->id + " was not applied and will be refunded");
        case jobs::BindResult::kNoSuchJob:
            break;
    }
    throw core::Error(core::ErrorCode::kNotFound, "job " + job.id + " does not exist");
}

IntentOffer PaymentService::CreateIntent(const std::string& job_id, int64_t now_ms) {
    if (!configured_) {
        throw core::Error(core::ErrorCode::kForbidden, "payments are not configured");
    }
    const std::optional<jobs::Job> job =
        core::IsJobId(job_id) ? store_.Get(job_id) : std::optional<jobs::Job>();
    if (!job) throw core::Error(core::ErrorCode::kNotFound, "job " + job_id + " does not exist");
    if (job->status == jobs::JobStatus::kExpired ||
        (job->status == jobs::JobStatus::kCompleted && job->expires_at <= now_ms)) {
        throw core::Error(core::ErrorCode::kGone,
                          "job " + job_id + " has expired and its files were deleted");
    }
    if (job->paid) {
        const std::string url = policy_.api_prefix + "/download/" + job_id;
        throw core::Error(core::ErrorCode::kConflict, "job " + job_id + " is already paid")
            .WithExtra("download_url", "\"" + url + "\"");
    }
    if (job->status == jobs::JobStatus::kFailed) {
        throw core::Error(core::ErrorCode::kConflict,
                          "job " + job_id + " failed; there is no song to pay for");
    }
    if (job->status == jobs::JobStatus::kCanceled) {
        throw core::Error(core::ErrorCode::kConflict,
                          "job " + job_id + " was canceled; there is no song to pay for");
    }
    if (job->status != jobs::JobStatus::kCompleted) {
        // Never charge for a song that may still fail: pay once it is there (and previewed).
        throw core::Error(core::ErrorCode::kConflict,
                          "job " + job_id + " is " + jobs::JobStatusName(job->status) +
                              "; a payment can be made once the song is completed");
    }

    const int64_t amount = policy_.PriceOf(*job);
    std::string renewal;
    for (int i = 0; i < kMaxIntentRenewals; ++i) {
        const PaymentIntent intent = stripe_.CreatePaymentIntent(
            {.amount = amount,
             .currency = policy_.currency,
             .job_id = job_id,
             .idempotency_key = IntentIdempotencyKey(job_id, amount, policy_.currency, renewal),
             .payment_method_types = payment_method_types_});
        // The idempotency key hands back the same intent for a day; one canceled since then
        // cannot be paid, so a new key derived from it makes a fresh one.
        if (intent.status == "canceled") {
            renewal = intent.id;
            continue;
        }
        return {intent.id, intent.client_secret, intent.amount, intent.currency, publishable_key_};
    }
    throw core::Error(core::ErrorCode::kConflict,
                      "every payment created for job " + job_id + " was canceled; try again");
}

std::string PaymentService::Prometheus() const {
    const GuardCounts counts = guard_.counts();
    return stats_.Prometheus() +
           "# HELP songd_payment_checks_refused_total Download payment checks answered without "
           "Stripe.\n# TYPE songd_payment_checks_refused_total counter\n"
           "songd_payment_checks_refused_total{why=\"rate_limited\"} " +
           std::to_string(counts.rate_limited) +
           "\nsongd_payment_checks_refused_total{why=\"remembered\"} " +
           std::to_string(counts.remembered) +
           "\nsongd_payment_checks_refused_total{why=\"stripe_busy\"} " +
           std::to_string(counts.busy) + "\n";
}

}  // namespace songd::payment
