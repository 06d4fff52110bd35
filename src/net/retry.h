#pragma once
/// @file
/// The one retry policy: at most `max_attempts` attempts, and before retry n (0-based) a
/// uniform random pause in [0, min(max_delay, base_delay * 2^n)] (capped exponential backoff
/// with full jitter, so concurrent callers spread out). What is worth another attempt is the
/// caller's rule.
///
///   net::Retrier retrier({.max_attempts = 3, .base_delay = 250ms, .max_delay = 2s});
///   auto [outcome, attempts] = retrier.Run<Outcome>(
///       [&](int attempt) { return TryOnce(); },                     // may throw: not retried
///       {.retryable = [](const Outcome& o) { return o.transient; },  // the caller's rule
///        .min_delay = [](const Outcome& o) { return o.retry_after; },// optional floor
///        .before_retry = [](const Outcome& o, int attempt, auto delay) { Log(...); }});
///
/// Tests inject the sleep (and a seed) to check the schedule without sleeping.

#include <chrono>
#include <cstdint>
#include <functional>
#include <mutex>
#include <random>
#include <utility>

namespace songd::net {

/// @brief Attempts and backoff bounds.
struct RetryPolicy {
    int max_attempts = 3;  ///< the first attempt included; below 1 counts as 1
    std::chrono::milliseconds base_delay{200};
    std::chrono::milliseconds max_delay{10'000};

    /// Upper bound of the pause before retry `retry_index` (0-based):
    /// min(max_delay, base_delay * 2^retry_index), without overflow.
    std::chrono::milliseconds Ceiling(int retry_index) const;
};

/// @brief What `Retrier::Run` needs to know about an outcome.
template <typename Outcome>
struct RetryRules {
    /// True when another attempt may help (never for a success). Required.
    std::function<bool(const Outcome&)> retryable;
    /// A floor for the next pause (a server's Retry-After, capped by the caller). Optional.
    std::function<std::chrono::milliseconds(const Outcome&)> min_delay;
    /// Called before each pause (logs, counters), with the attempt that failed (1-based).
    std::function<void(const Outcome&, int attempt, std::chrono::milliseconds delay)> before_retry;
};

/// @brief The last outcome and how many attempts it took.
template <typename Outcome>
struct RetryResult {
    Outcome outcome;
    int attempts = 0;
};

/// @brief Runs attempts under a RetryPolicy. Thread-safe.
class Retrier {
  public:
    using Sleep = std::function<void(std::chrono::milliseconds)>;

    /// `sleep` defaults to std::this_thread::sleep_for; `seed` 0 seeds from random_device.
    explicit Retrier(RetryPolicy policy, Sleep sleep = {}, uint64_t seed = 0);

    const RetryPolicy& policy() const { return policy_; }

    /// A full-jitter pause for retry `retry_index` (0-based): uniform in [0, Ceiling(n)].
    std::chrono::milliseconds Delay(int retry_index);

    /// Calls `attempt(n)` (n = 1, 2, ...) until an outcome is not retryable or the attempts
    /// are used up; returns the last outcome. An exception from `attempt` ends the run.
    template <typename Outcome, typename Attempt>
    RetryResult<Outcome> Run(Attempt&& attempt, const RetryRules<Outcome>& rules) {
        const int max_attempts = policy_.max_attempts < 1 ? 1 : policy_.max_attempts;
        for (int n = 1;; ++n) {
            Outcome outcome = attempt(n);
            if (n >= max_attempts || !rules.retryable(outcome)) {
                return RetryResult<Outcome>{std::move(outcome), n};
            }
            std::chrono::milliseconds delay = Delay(n - 1);
            if (rules.min_delay) delay = std::max(delay, rules.min_delay(outcome));
            if (rules.before_retry) rules.before_retry(outcome, n, delay);
            sleep_(delay);
        }
    }

  private:
    RetryPolicy policy_;
    Sleep sleep_;
    std::mutex random_mutex_;
    std::mt19937_64 random_;
};

}  // namespace songd::net
