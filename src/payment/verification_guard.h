#pragma once
/// @file
/// Keeps download verification from turning into Stripe traffic: a per-minute budget per
/// client address and per job, a short memory of intent ids that were refused, and a bound on
/// concurrent Stripe calls, so a flood of bad `payment_intent_id`s costs one Stripe call each
/// at most and never occupies every thread that serves downloads and previews.
///
///   payment::VerificationGuard guard;                       // defaults below
///   if (auto known = guard.Remembered(job.id, intent_id, now)) throw ...402...;
///   guard.Admit(client_address, job.id, now);               // throws 429 + Retry-After
///   auto permit = guard.AcquireStripeSlot();                // throws 503 + Retry-After
///   ... ask Stripe ...; guard.Remember(job.id, intent_id, rejection, now) when refused
///
/// Thread-safe. Times are the caller's milliseconds, so tests control them.

#include <cstddef>
#include <cstdint>
#include <deque>
#include <map>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>

#include "payment/verify.h"

namespace songd::payment {

/// @brief The guard's budgets.
struct GuardLimits {
    int per_client_per_minute = 10;  ///< verifications reaching Stripe, per client address
    int per_job_per_minute = 10;     ///< and per job
    int64_t negative_ttl_ms = 60'000;
    size_t negative_capacity = 10'000;  ///< oldest refusals are forgotten first
    int max_concurrent_calls = 8;       ///< under the 16 threads of the remote pool
    int busy_retry_after_seconds = 2;
};

/// @brief Counts what the guard turned away, for the metrics.
struct GuardCounts {
    int64_t rate_limited = 0;
    int64_t remembered = 0;
    int64_t busy = 0;
};

/// @brief Rate limits, negative cache and Stripe concurrency of download verification.
class VerificationGuard {
  public:
    explicit VerificationGuard(GuardLimits limits = {});

    /// The refusal remembered for this job and intent within the TTL, or nullopt.
    std::optional<Rejection> Remembered(std::string_view job_id, std::string_view intent_id,
                                        int64_t now_ms);
    /// Remembers a refusal that asking Stripe again would not change.
    void Remember(std::string_view job_id, std::string_view intent_id, const Rejection& rejection,
                  int64_t now_ms);
    /// True for refusals that stay true (unknown id, wrong job, amount, ...); false for
    /// `not_succeeded`, which the customer may fix a second later.
    static bool IsLasting(RejectReason reason);

    /// Counts one verification for `client` and `job_id`; throws core::Error(kRateLimited)
    /// with a Retry-After when either used its budget this minute (nothing is counted then).
    void Admit(std::string_view client, std::string_view job_id, int64_t now_ms);

    /// @brief One Stripe call in flight; released on destruction.
    class Permit {
      public:
        explicit Permit(VerificationGuard* guard) : guard_(guard) {}
        Permit(Permit&& other) noexcept : guard_(other.guard_) { other.guard_ = nullptr; }
        Permit(const Permit&) = delete;
        Permit& operator=(const Permit&) = delete;
        Permit& operator=(Permit&&) = delete;
        ~Permit();

      private:
        VerificationGuard* guard_;
    };
    /// A slot for one Stripe call, or core::Error(kUpstreamUnavailable) with a Retry-After
    /// when `max_concurrent_calls` are in flight: waiting would hold a thread.
    Permit AcquireStripeSlot();

    GuardCounts counts() const;

  private:
    struct Window {
        int64_t start_ms = 0;
        int count = 0;
    };
    struct Remembered {
        int64_t until_ms = 0;
        Rejection rejection;
    };
    /// Seconds until `window` (of `key` in `windows`) has room, or 0 when it has room now.
    int Wait(std::map<std::string, Window, std::less<>>& windows, std::string_view key, int limit,
             int64_t now_ms);
    void Prune(std::map<std::string, Window, std::less<>>& windows, int64_t now_ms);

    GuardLimits limits_;
    mutable std::mutex mutex_;
    std::map<std::string, Window, std::less<>> clients_;
    std::map<std::string, Window, std::less<>> jobs_;
    std::map<std::string, struct Remembered, std::less<>> refused_;
    std::deque<std::string> refused_order_;  ///< insertion order = expiry order (one TTL)
    int in_flight_ = 0;
    GuardCounts counts_;
};

}  // namespace songd::payment
