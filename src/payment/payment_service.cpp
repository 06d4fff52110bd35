#include "payment/payment_service.h"

#include "core/error.h"
#include "core/ids.h"
#include "core/log.h"

namespace songd::payment {

// Canceled intents met in a row before CreateIntent gives up (someone keeps canceling them).
constexpr int kMaxIntentRenewals = 3;

PaymentService::PaymentService(const core::Config& config, jobs::PaymentLedger& store,
                               StripeApi& stripe)
    : policy_(PaymentPolicy::FromConfig(config)),
      require_payment_(config.require_payment),
      configured_(!config.stripe_secret_key.empty()),
      publishable_key_(config.stripe_publishable_key),
      store_(store),
      stripe_(stripe) {}

DownloadAccess PaymentService::AuthorizeDownload(const jobs::Job& job,
                                                 std::string_view payment_intent_id,
                                                 int64_t now_ms) {
    if (!require_payment_) return DownloadAccess::kFree;
    if (job.paid) return DownloadAccess::kAlreadyPaid;

    const std::string intent_id(payment_intent_id.empty()
                                    ? std::string_view(job.request.payment_intent_id)
                                    : payment_intent_id);
    if (intent_id.empty()) {
        throw PaymentRequired(MakeRejection(RejectReason::kNoPayment), policy_, job.id);
    }
    if (!IsPaymentIntentId(intent_id)) {
        throw PaymentRequired(MakeRejection(RejectReason::kMalformedId), policy_, job.id);
    }

    const std::optional<PaymentIntent> intent = stripe_.RetrievePaymentIntent(intent_id);
    if (!intent) {
        throw PaymentRequired(MakeRejection(RejectReason::kNoSuchIntent, intent_id), policy_,
                              job.id);
    }
    if (auto rejection = CheckIntent(*intent, job.id, policy_)) {
        core::LogEvent("info", "payment_rejected",
                       {{"job_id", job.id},
                        {"payment_intent_id", intent->id},
                        {"reason", RejectReasonName(rejection->reason)}});
        throw PaymentRequired(*rejection, policy_, job.id);
    }

    switch (store_.BindPayment(job.id, intent->id, now_ms)) {
        case jobs::BindResult::kBound:
        case jobs::BindResult::kAlreadyBoundHere:
            core::LogEvent(
                "info", "payment_bound",
                {{"job_id", job.id}, {"payment_intent_id", intent->id}, {"source", "download"}});
            return DownloadAccess::kPaidNow;
        case jobs::BindResult::kJobAlreadyPaid:
            // Paid meanwhile (the webhook, or another download with another intent).
            return DownloadAccess::kAlreadyPaid;
        case jobs::BindResult::kBoundToOtherJob:
            core::LogEvent("info", "payment_rejected",
                           {{"job_id", job.id},
                            {"payment_intent_id", intent->id},
                            {"reason", RejectReasonName(RejectReason::kBoundToOtherJob)}});
            throw PaymentRequired(MakeRejection(RejectReason::kBoundToOtherJob, intent->id),
                                  policy_, job.id);
        case jobs::BindResult::kNoSuchJob:
            break;
    }
    throw core::Error(core::ErrorCode::kNotFound, "job " + job.id + " does not exist");
}

IntentOffer PaymentService::CreateIntent(const std::string& job_id) {
    if (!configured_) {
        throw core::Error(core::ErrorCode::kForbidden, "payments are not configured");
    }
    const std::optional<jobs::Job> job =
        core::IsJobId(job_id) ? store_.Get(job_id) : std::optional<jobs::Job>();
    if (!job) throw core::Error(core::ErrorCode::kNotFound, "job " + job_id + " does not exist");
    if (job->status == jobs::JobStatus::kExpired) {
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

    std::string renewal;
    for (int i = 0; i < kMaxIntentRenewals; ++i) {
        const PaymentIntent intent = stripe_.CreatePaymentIntent(
            {.amount = policy_.price_cents,
             .currency = policy_.currency,
             .job_id = job_id,
             .idempotency_key =
                 IntentIdempotencyKey(job_id, policy_.price_cents, policy_.currency, renewal)});
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

}  // namespace songd::payment
