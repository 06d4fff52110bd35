#include "payment/verification_guard.h"

#include <algorithm>

#include "core/error.h"

namespace songd::payment {
namespace {

constexpr int64_t kWindowMs = 60'000;
// Past this many tracked clients or jobs, windows that ended are dropped.
constexpr size_t kMaxWindows = 10'000;

std::string Key(std::string_view job_id, std::string_view intent_id) {
    std::string key(job_id);
    key += '\n';
    key += intent_id;
    return key;
}

}  // namespace

VerificationGuard::VerificationGuard(GuardLimits limits) : limits_(limits) {}

bool VerificationGuard::IsLasting(RejectReason reason) {
    switch (reason) {
        case RejectReason::kNoSuchIntent:
        case RejectReason::kLivemodeMismatch:
        case RejectReason::kOtherJob:
        case RejectReason::kCurrencyMismatch:
        case RejectReason::kAmountShort:
        case RejectReason::kBoundToOtherJob:
        case RejectReason::kNoJobInMetadata:
            return true;
        case RejectReason::kNoPayment:
        case RejectReason::kMalformedId:
        case RejectReason::kNotSucceeded:
            return false;
    }
    return false;
}

std::optional<Rejection> VerificationGuard::Remembered(std::string_view job_id,
                                                       std::string_view intent_id, int64_t now_ms) {
    std::lock_guard lock(mutex_);
    auto it = refused_.find(Key(job_id, intent_id));
    if (it == refused_.end() || it->second.until_ms <= now_ms) return std::nullopt;
    ++counts_.remembered;
    return it->second.rejection;
}

void VerificationGuard::Remember(std::string_view job_id, std::string_view intent_id,
                                 const Rejection& rejection, int64_t now_ms) {
    if (!IsLasting(rejection.reason) || limits_.negative_capacity == 0) return;
    std::lock_guard lock(mutex_);
    // Forget what expired, then the oldest while full.
    while (!refused_order_.empty()) {
        auto oldest = refused_.find(refused_order_.front());
        const bool expired = oldest == refused_.end() || oldest->second.until_ms <= now_ms;
        if (!expired && refused_.size() < limits_.negative_capacity) break;
        if (oldest != refused_.end()) refused_.erase(oldest);
        refused_order_.pop_front();
    }
    std::string key = Key(job_id, intent_id);
    const bool fresh = refused_.find(key) == refused_.end();
    refused_[key] = {now_ms + limits_.negative_ttl_ms, rejection};
    if (fresh) refused_order_.push_back(std::move(key));
}

void VerificationGuard::Prune(std::map<std::string, Window, std::less<>>& windows, int64_t now_ms) {
    if (windows.size() < kMaxWindows) return;
    std::erase_if(windows,
                  [&](const auto& entry) { return entry.second.start_ms + kWindowMs <= now_ms; });
}

int VerificationGuard::Wait(std::map<std::string, Window, std::less<>>& windows,
                            std::string_view key, int limit, int64_t now_ms) {
    auto it = windows.find(key);
    if (it == windows.end() || it->second.start_ms + kWindowMs <= now_ms) return 0;
    if (it->second.count < limit) return 0;
    const int64_t left_ms = it->second.start_ms + kWindowMs - now_ms;
    return static_cast<int>(std::max<int64_t>(1, (left_ms + 999) / 1000));
}

void VerificationGuard::Admit(std::string_view client, std::string_view job_id, int64_t now_ms) {
    std::lock_guard lock(mutex_);
    const int client_wait =
        client.empty() ? 0 : Wait(clients_, client, limits_.per_client_per_minute, now_ms);
    const int job_wait = Wait(jobs_, job_id, limits_.per_job_per_minute, now_ms);
    if (client_wait > 0 || job_wait > 0) {
        ++counts_.rate_limited;
        throw core::Error(core::ErrorCode::kRateLimited,
                          std::string("too many payment checks for ") +
                              (client_wait > 0 ? "this client" : "this song") +
                              " in the last minute; try again later")
            .WithRetryAfter(std::max(client_wait, job_wait));
    }
    auto count = [&](std::map<std::string, Window, std::less<>>& windows, std::string_view key) {
        Prune(windows, now_ms);
        auto it = windows.find(key);
        if (it == windows.end()) it = windows.emplace(std::string(key), Window{}).first;
        if (it->second.start_ms + kWindowMs <= now_ms || it->second.count == 0) {
            it->second = {now_ms, 0};
        }
        ++it->second.count;
    };
    if (!client.empty()) count(clients_, client);
    count(jobs_, job_id);
}

VerificationGuard::Permit VerificationGuard::AcquireStripeSlot() {
    std::lock_guard lock(mutex_);
    if (in_flight_ >= limits_.max_concurrent_calls) {
        ++counts_.busy;
        throw core::Error(core::ErrorCode::kUpstreamUnavailable,
                          "too many payment checks are waiting on the payment provider; try "
                          "again shortly")
            .WithRetryAfter(limits_.busy_retry_after_seconds);
    }
    ++in_flight_;
    return Permit(this);
}

VerificationGuard::Permit::~Permit() {
    if (guard_ == nullptr) return;
    std::lock_guard lock(guard_->mutex_);
    --guard_->in_flight_;
}

GuardCounts VerificationGuard::counts() const {
    std::lock_guard lock(mutex_);
    return counts_;
}

}  // namespace songd::payment
