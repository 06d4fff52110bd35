#pragma once
/// @file
/// In-memory stand-ins for the payment tests: a PaymentLedger that keeps jobs in a map (the
/// binding rules the real stores must follow) and a StripeApi that serves intents from a map
/// and counts its calls.
///
///   FakeJobStore store;
///   store.Put(MakeJob(kJobA));
///   FakeStripe stripe;
///   stripe.Put(SucceededIntent("pi_a", kJobA));

#include <algorithm>
#include <atomic>
#include <functional>
#include <map>
#include <mutex>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "core/error.h"
#include "jobs/job_store.h"
#include "payment/stripe_client.h"

namespace songd::payment::testing {

inline constexpr const char* kJobA = "0a1b2c3d-0000-4000-8000-00000000000a";
inline constexpr const char* kJobB = "0a1b2c3d-0000-4000-8000-00000000000b";
inline constexpr const char* kJobMissing = "0a1b2c3d-0000-4000-8000-0000000000ff";

/// Files kept until far in the future: a completed MakeJob is deliverable.
inline constexpr int64_t kFarFuture = 4'000'000'000'000;

inline jobs::Job MakeJob(const std::string& id,
                         jobs::JobStatus status = jobs::JobStatus::kCompleted) {
    jobs::Job job;
    job.id = id;
    job.status = status;
    job.expires_at = kFarFuture;
    return job;
}

/// A succeeded, fully paid test-mode intent for `job_id` at 99 usd cents.
inline PaymentIntent SucceededIntent(const std::string& id, const std::string& job_id) {
    PaymentIntent intent;
    intent.id = id;
    intent.status = "succeeded";
    intent.amount = 99;
    intent.amount_received = 99;
    intent.currency = "usd";
    intent.client_secret = id + "_secret_abcdefghijklmnop";
    intent.metadata_job_id = job_id;
    intent.livemode = false;
    return intent;
}

/// @brief The payment side of the job store, in memory. Thread-safe; counts every mutation
/// so tests can prove that a refused request changed nothing.
class FakeJobStore final : public jobs::PaymentLedger {
  public:
    void Put(const jobs::Job& job) {
        std::lock_guard lock(mutex_);
        jobs_[job.id] = job;
    }
    jobs::Job At(const std::string& id) {
        std::lock_guard lock(mutex_);
        return jobs_.at(id);
    }
    /// Every call that may change state (BindPayment, SetPaymentStatus, RecordEvent).
    int mutations() const { return mutations_.load(); }
    int bind_calls() const { return bind_calls_.load(); }
    int record_calls() const { return record_calls_.load(); }

    std::optional<jobs::Job> Get(const std::string& id) override {
        std::lock_guard lock(mutex_);
        auto it = jobs_.find(id);
        if (it == jobs_.end()) return std::nullopt;
        return it->second;
    }

    jobs::BindResult BindPayment(const std::string& id, const std::string& intent_id, int64_t now,
                                 int64_t keep_files_until) override {
        ++mutations_;
        ++bind_calls_;
        ThrowIfCrashed();
        if (crash_at_bind.exchange(false)) {
            crashed_ = true;
            throw core::Error(core::ErrorCode::kInternal, "the process died (fake)");
        }
        if (fail_binds > 0) {
            --fail_binds;
            throw core::Error(core::ErrorCode::kInternal, "database is locked (fake)");
        }
        std::lock_guard lock(mutex_);  // the one "transaction"
        auto job = jobs_.find(id);
        if (job == jobs_.end()) return jobs::BindResult::kNoSuchJob;
        if (auto bound = bindings_.find(intent_id); bound != bindings_.end()) {
            return bound->second == id ? jobs::BindResult::kAlreadyBoundHere
                                       : jobs::BindResult::kBoundToOtherJob;
        }
        if (job->second.paid) return jobs::BindResult::kJobAlreadyPaid;
        if (job->second.status != jobs::JobStatus::kCompleted || job->second.expires_at <= now) {
            return jobs::BindResult::kJobNotPayable;
        }
        bindings_[intent_id] = id;
        job->second.paid = true;
        job->second.paid_intent_id = intent_id;
        job->second.paid_at = now;
        job->second.payment_status = "succeeded";
        job->second.expires_at = std::max(job->second.expires_at, keep_files_until);
        ++job->second.version;
        return jobs::BindResult::kBound;
    }
    bool SetPaymentStatus(const std::string& id, const std::string& status) override {
        ++mutations_;
        std::lock_guard lock(mutex_);
        auto job = jobs_.find(id);
        if (job == jobs_.end()) return false;
        job->second.payment_status = status;
        ++job->second.version;
        return true;
    }
    bool RecordEvent(const std::string& event_id, int64_t) override {
        ++mutations_;
        ++record_calls_;
        ThrowIfCrashed();
        if (crash_at_record.exchange(false)) {
            crashed_ = true;
            throw core::Error(core::ErrorCode::kInternal, "the process died (fake)");
        }
        std::lock_guard lock(mutex_);
        return events_.insert(event_id).second;
    }
    void ForgetEvent(const std::string& event_id) override {
        ++mutations_;
        ThrowIfCrashed();
        std::lock_guard lock(mutex_);
        events_.erase(event_id);
    }
    bool HasEvent(const std::string& event_id) override {
        std::lock_guard lock(mutex_);
        return events_.count(event_id) > 0;
    }
    /// The next BindPayment calls throw, as a store that lost its database would.
    std::atomic<int> fail_binds{0};
    /// The process dies at the next BindPayment / RecordEvent: that call and every later
    /// write fail until Restart(), so nothing can be taken back on the way out.
    std::atomic<bool> crash_at_bind{false};
    std::atomic<bool> crash_at_record{false};
    void Restart() { crashed_ = false; }

  private:
    void ThrowIfCrashed() const {
        if (crashed_) throw core::Error(core::ErrorCode::kInternal, "the process is dead (fake)");
    }

    std::atomic<bool> crashed_{false};
    std::mutex mutex_;
    std::map<std::string, jobs::Job> jobs_;
    std::map<std::string, std::string> bindings_;  // intent id → job id
    std::set<std::string> events_;
    std::atomic<int> mutations_{0};
    std::atomic<int> bind_calls_{0};
    std::atomic<int> record_calls_{0};
};

/// @brief StripeApi from a map. `fail_with` makes every call throw (an outage).
class FakeStripe final : public StripeApi {
  public:
    void Put(const PaymentIntent& intent) {
        std::lock_guard lock(mutex_);
        intents_[intent.id] = intent;
    }
    int retrieve_calls() const { return retrieve_calls_.load(); }
    int create_calls() const { return create_calls_.load(); }
    std::vector<CreateIntentParams> created() {
        std::lock_guard lock(mutex_);
        return created_;
    }
    std::optional<core::Error> fail_with;
    /// Runs inside every retrieve before it answers (e.g. to hold a call in flight).
    std::function<void()> on_retrieve;
    /// Status of the intents CreatePaymentIntent makes, e.g. "canceled" to force renewals.
    std::string create_status = "requires_payment_method";

    PaymentIntent CreatePaymentIntent(const CreateIntentParams& params) override {
        ++create_calls_;
        if (fail_with) throw *fail_with;
        std::lock_guard lock(mutex_);
        created_.push_back(params);
        // Same key, same intent, as Stripe's idempotency does.
        auto& intent = by_key_[params.idempotency_key];
        if (intent.id.empty()) {
            intent.id = "pi_created" + std::to_string(by_key_.size());
            intent.client_secret = intent.id + "_secret_zzzzzzzzzzzz";
            intent.status = create_status;
            intent.amount = params.amount;
            intent.currency = params.currency;
            intent.metadata_job_id = params.job_id;
        }
        return intent;
    }
    std::optional<PaymentIntent> RetrievePaymentIntent(const std::string& id) override {
        ++retrieve_calls_;
        if (on_retrieve) on_retrieve();
        if (fail_with) throw *fail_with;
        std::lock_guard lock(mutex_);
        auto it = intents_.find(id);
        if (it == intents_.end()) return std::nullopt;
        return it->second;
    }

  private:
    std::mutex mutex_;
    std::map<std::string, PaymentIntent> intents_;
    std::map<std::string, PaymentIntent> by_key_;
    std::vector<CreateIntentParams> created_;
    std::atomic<int> retrieve_calls_{0};
    std::atomic<int> create_calls_{0};
};

/// A config with payments on: test key, webhook secret, 99 usd cents.
inline core::Config PaymentConfig() {
    core::Config config;
    config.require_payment = true;
    config.stripe_secret_key = "sk_test_unitkey0123456789";
    config.stripe_publishable_key = "pk_test_unitkey0123456789";
    config.stripe_webhook_secret = "whsec_unittestsecret0123";
    config.price_cents = 99;
    config.price_currency = "usd";
    config.api_prefix = "/api/v1";
    return config;
}

}  // namespace songd::payment::testing
