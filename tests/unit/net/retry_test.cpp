// net::Retrier: the backoff schedule (capped exponential, full jitter), the attempt count and
// the caller's rule of what is worth another attempt. The sleep is injected: nothing sleeps.

#include "net/retry.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <chrono>
#include <limits>
#include <stdexcept>
#include <vector>

#include "net/http_client.h"

namespace songd::net {
namespace {

using std::chrono::milliseconds;

/// A Retrier whose pauses are recorded instead of slept.
struct RecordingRetrier {
    explicit RecordingRetrier(RetryPolicy policy, uint64_t seed = 7)
        : retrier(
              policy, [this](milliseconds delay) { delays.push_back(delay); }, seed) {}
    std::vector<milliseconds> delays;
    Retrier retrier;
};

TEST(RetryPolicy, CeilingDoublesUpToTheCap) {
    const RetryPolicy policy{
        .max_attempts = 10, .base_delay = milliseconds(200), .max_delay = milliseconds(10'000)};
    const int64_t expected[] = {200, 400, 800, 1600, 3200, 6400, 10000, 10000};
    for (int i = 0; i < 8; ++i) EXPECT_EQ(policy.Ceiling(i).count(), expected[i]) << i;
    EXPECT_EQ(policy.Ceiling(1000).count(), 10000);  // no overflow far out
    EXPECT_EQ(policy.Ceiling(std::numeric_limits<int>::max()).count(), 10000);
    EXPECT_EQ((RetryPolicy{.base_delay = milliseconds(0), .max_delay = milliseconds(5)}
                   .Ceiling(3)
                   .count()),
              0);
    // A base above the cap is capped from the first retry on.
    EXPECT_EQ((RetryPolicy{.base_delay = milliseconds(50), .max_delay = milliseconds(20)}
                   .Ceiling(0)
                   .count()),
              20);
}

TEST(Retrier, FullJitterStaysWithinZeroAndTheCeilingAndUsesAllOfIt) {
    const RetryPolicy policy{
        .max_attempts = 8, .base_delay = milliseconds(100), .max_delay = milliseconds(1000)};
    Retrier retrier(
        policy, [](milliseconds) { FAIL() << "Delay never sleeps"; }, 42);
    for (int retry = 0; retry < 6; ++retry) {
        SCOPED_TRACE(retry);
        const int64_t ceiling = policy.Ceiling(retry).count();
        int64_t low = ceiling;
        int64_t high = 0;
        for (int i = 0; i < 2000; ++i) {
            const int64_t delay = retrier.Delay(retry).count();
            ASSERT_GE(delay, 0);
            ASSERT_LE(delay, ceiling);
            low = std::min(low, delay);
            high = std::max(high, delay);
        }
        // Full jitter, not equal jitter: pauses near zero happen, and so do pauses near the
        // ceiling (2000 draws make missing either quarter vanishingly unlikely).
        EXPECT_LT(low, ceiling / 4);
        EXPECT_GT(high, ceiling * 3 / 4);
    }
}

TEST(Retrier, RetriesUpToMaxAttemptsWithOnePausePerRetry) {
    const RetryPolicy policy{
        .max_attempts = 5, .base_delay = milliseconds(10), .max_delay = milliseconds(35)};
    RecordingRetrier r(policy);
    std::vector<int> seen;
    std::vector<int> announced;
    auto result = r.retrier.Run<int>(
        [&](int attempt) {
            seen.push_back(attempt);
            return attempt;
        },
        {.retryable = [](const int&) { return true; },
         .before_retry = [&](const int&, int attempt,
                             milliseconds) { announced.push_back(attempt); }});
    EXPECT_EQ(result.attempts, 5);
    EXPECT_EQ(result.outcome, 5);  // the last outcome comes back
    EXPECT_EQ(seen, (std::vector<int>{1, 2, 3, 4, 5}));
    EXPECT_EQ(announced, (std::vector<int>{1, 2, 3, 4}));
    ASSERT_EQ(r.delays.size(), 4u);
    for (size_t i = 0; i < r.delays.size(); ++i) {
        EXPECT_GE(r.delays[i].count(), 0) << i;
        EXPECT_LE(r.delays[i], policy.Ceiling(static_cast<int>(i))) << i;
    }
}

TEST(Retrier, StopsAtTheFirstOutcomeThatIsNotRetryable) {
    RecordingRetrier r({.max_attempts = 5});
    auto result = r.retrier.Run<int>([](int attempt) { return attempt; },
                                     {.retryable = [](const int& n) { return n < 3; }});
    EXPECT_EQ(result.attempts, 3);
    EXPECT_EQ(r.delays.size(), 2u);

    RecordingRetrier once({.max_attempts = 5});
    EXPECT_EQ(once.retrier
                  .Run<int>([](int) { return 0; }, {.retryable = [](const int&) { return false; }})
                  .attempts,
              1);
    EXPECT_TRUE(once.delays.empty());
}

TEST(Retrier, AtLeastOneAttemptWhateverThePolicy) {
    RecordingRetrier r({.max_attempts = 0});
    EXPECT_EQ(
        r.retrier.Run<int>([](int) { return 0; }, {.retryable = [](const int&) { return true; }})
            .attempts,
        1);
    EXPECT_TRUE(r.delays.empty());
}

TEST(Retrier, MinDelayIsAFloorUnderTheJitter) {
    RecordingRetrier r(
        {.max_attempts = 3, .base_delay = milliseconds(1), .max_delay = milliseconds(2)});
    r.retrier.Run<int>([](int) { return 0; },
                       {.retryable = [](const int&) { return true; },
                        .min_delay = [](const int&) { return milliseconds(700); }});
    EXPECT_EQ(r.delays, (std::vector<milliseconds>{milliseconds(700), milliseconds(700)}));
}

TEST(Retrier, AnExceptionEndsTheRun) {
    RecordingRetrier r({.max_attempts = 5});
    int calls = 0;
    EXPECT_THROW(r.retrier.Run<int>(
                     [&](int) -> int {
                         ++calls;
                         throw std::runtime_error("fatal");
                     },
                     {.retryable = [](const int&) { return true; }}),
                 std::runtime_error);
    EXPECT_EQ(calls, 1);
    EXPECT_TRUE(r.delays.empty());
}

TEST(Retrier, SameSeedSameSchedule) {
    const RetryPolicy policy{
        .max_attempts = 6, .base_delay = milliseconds(100), .max_delay = milliseconds(5000)};
    RecordingRetrier a(policy, 99);
    RecordingRetrier b(policy, 99);
    for (RecordingRetrier* r : {&a, &b}) {
        r->retrier.Run<int>([](int) { return 0; }, {.retryable = [](const int&) { return true; }});
    }
    EXPECT_EQ(a.delays.size(), 5u);
    EXPECT_EQ(a.delays, b.delays);
}

struct KindCase {
    TransportFailure failure;
    bool retried;
};

TEST(Retrier, TransportErrorsRetryOnlyNetworkTrouble) {
    // The rule S3 uses: TransportError::retryable(). An unusable request and a local failure
    // (body over the cap, unreadable file) are never sent again.
    const KindCase cases[] = {
        {TransportFailure::kConnect, true},  {TransportFailure::kTimeout, true},
        {TransportFailure::kSend, true},     {TransportFailure::kReceive, true},
        {TransportFailure::kRequest, false}, {TransportFailure::kOther, false},
    };
    for (const KindCase& c : cases) {
        SCOPED_TRACE(FailureName(c.failure));
        RecordingRetrier r({.max_attempts = 4});
        int calls = 0;
        auto result = r.retrier.Run<TransportError>(
            [&](int) {
                ++calls;
                return TransportError(c.failure, "x");
            },
            {.retryable = [](const TransportError& e) { return e.retryable(); }});
        EXPECT_EQ(calls, c.retried ? 4 : 1);
        EXPECT_EQ(result.attempts, calls);
        EXPECT_EQ(r.delays.size(), static_cast<size_t>(calls - 1));
    }
}

}  // namespace
}  // namespace songd::net
