#include "webhooks/webhook_sender.h"

#include <algorithm>

#include "core/clock.h"
#include "core/log.h"
#include "core/text.h"
#include "webhooks/signature.h"
#include "webhooks/url_policy.h"

namespace songd::webhooks {

namespace {

/// How often the dispatcher looks for due rows when it has nothing else to do.
constexpr std::chrono::milliseconds kPollInterval{250};
/// How often the outbox depth gauge is refreshed.
constexpr int64_t kDepthRefreshMs = 5000;

}  // namespace

std::chrono::milliseconds RetryDelay(int attempt, std::chrono::milliseconds base) {
    int64_t delay = std::max<int64_t>(1, base.count());
    for (int i = 1; i < attempt && delay < kMaxRetryDelay.count(); ++i) delay *= 2;
    return std::chrono::milliseconds(std::min<int64_t>(delay, kMaxRetryDelay.count()));
}

std::string UrlOrigin(const std::string& url) {
    const auto scheme_end = url.find("://");
    if (scheme_end == std::string::npos) return core::ToLower(url);
    const auto end = url.find_first_of("/?#", scheme_end + 3);
    return core::ToLower(url.substr(0, end));
}

WebhookSender::WebhookSender(const core::Config& config, jobs::WebhookOutbox& outbox,
                             std::string node_id)
    : config_(config),
      outbox_(outbox),
      node_id_(std::move(node_id)),
      http_(net::ClientOptions{
          .pool = {.max_idle = static_cast<size_t>(std::max(1, config.webhook_concurrency)),
                   .exhausted_message = "every webhook HTTP handle stayed busy"}}) {
    if (auto key = DecodeWebhookSecret(config.webhook_secret)) key_ = *key;
}

WebhookSender::~WebhookSender() { Stop(); }

void WebhookSender::Start() {
    if (config_.webhook_secret.empty() || dispatcher_.joinable()) return;
    {
        std::lock_guard lock(mutex_);
        stopping_ = false;
    }
    for (int i = 0; i < config_.webhook_concurrency; ++i) {
        workers_.emplace_back([this] { DeliverLoop(); });
    }
    dispatcher_ = std::thread([this] { DispatchLoop(); });
}

void WebhookSender::Stop() {
    {
        std::lock_guard lock(mutex_);
        stopping_ = true;
    }
    wake_dispatcher_.notify_all();
    wake_workers_.notify_all();
    if (dispatcher_.joinable()) dispatcher_.join();
    for (auto& t : workers_) {
        if (t.joinable()) t.join();
    }
    workers_.clear();
}

void WebhookSender::DispatchLoop() {
    const int slots = config_.webhook_concurrency;
    // One receiver may hold at most half of the threads: a hanging one cannot starve others.
    const int per_origin = std::max(1, slots / 2);
    const int64_t lease_ms = int64_t{config_.webhook_timeout_seconds} * 1000 + 10'000;
    int64_t depth_counted_at = 0;
    std::unique_lock lock(mutex_);
    while (!stopping_) {
        const int free = slots - busy_;
        bool claimed_any = false;
        if (free > 0) {
            const std::string owner = node_id_ + "/webhooks/" + std::to_string(++claims_);
            lock.unlock();
            std::vector<jobs::WebhookDelivery> due;
            const int64_t now = core::NowMillis();
            try {
                due = outbox_.ClaimWebhooks(owner, now, lease_ms, free);
                if (now - depth_counted_at >= kDepthRefreshMs) {
                    stats_.outbox_depth = outbox_.WebhookOutboxDepth();
                    depth_counted_at = now;
                }
            } catch (const std::exception& e) {
                core::LogEvent("warning", "webhook_claim_failed", {{"error", e.what()}});
            }
            std::vector<Claimed> deferred;
            lock.lock();
            for (auto& d : due) {
                Claimed c{std::move(d), owner, ""};
                c.origin = UrlOrigin(c.delivery.url);
                if (in_flight_by_origin_[c.origin] >= per_origin) {
                    deferred.push_back(std::move(c));
                    continue;
                }
                ++in_flight_by_origin_[c.origin];
                ++busy_;
                ready_.push_back(std::move(c));
                claimed_any = true;
            }
            if (claimed_any) wake_workers_.notify_all();
            if (!deferred.empty()) {
                // Back to the outbox, due again shortly: its receiver is busy with others.
                lock.unlock();
                for (const auto& c : deferred) {
                    try {
                        outbox_.ReleaseWebhook(c.delivery.id, c.owner, core::NowMillis() + 1000);
                    } catch (const std::exception&) {
                        // The lease ends on its own; the row is claimed again then.
                    }
                }
                lock.lock();
            }
            // A full batch: more may be due right away.
            if (claimed_any && static_cast<int>(due.size()) == free) continue;
        }
        wake_dispatcher_.wait_for(lock, kPollInterval);
    }
}

void WebhookSender::DeliverLoop() {
    std::unique_lock lock(mutex_);
    while (true) {
        wake_workers_.wait(lock, [this] { return stopping_ || !ready_.empty(); });
        if (ready_.empty()) return;  // stopping, nothing left claimed here
        Claimed c = std::move(ready_.front());
        ready_.pop_front();
        lock.unlock();
        Deliver(c);
        lock.lock();
        if (--in_flight_by_origin_[c.origin] <= 0) in_flight_by_origin_.erase(c.origin);
        --busy_;
        wake_dispatcher_.notify_one();
    }
}

void WebhookSender::Deliver(const Claimed& claimed) {
    const auto& d = claimed.delivery;
    const int64_t timestamp = core::NowMillis() / 1000;
    net::Request request;
    request.method = "POST";
    request.url = d.url;
    request.headers = {{"Content-Type", "application/json"},
                       {"User-Agent", std::string("songd/") + SONGD_VERSION},
                       {"webhook-id", d.id},
                       {"webhook-timestamp", std::to_string(timestamp)},
                       {"webhook-signature", SignWebhook(key_, d.id, timestamp, d.body)}};
    request.body = net::RequestBody::Memory(d.body);
    const std::chrono::milliseconds timeout(int64_t{config_.webhook_timeout_seconds} * 1000);
    request.timeouts = {.connect = timeout, .total = timeout};
    request.max_response_bytes = 64 * 1024;  // the body is ignored; a huge one is not read
    if (!config_.webhook_allow_private) {
        request.allow_address = [](const std::string& address) { return IsPublicAddress(address); };
    }
    try {
        const net::Response response = http_.Send(request);
        if (response.status >= 200 && response.status < 300) {
            ++stats_.delivered;
            outbox_.FinishWebhook(d.id, claimed.owner);
            core::LogEvent("debug", "webhook_delivered",
                           {{"job_id", d.job_id},
                            {"event", d.event},
                            {"webhook_id", d.id},
                            {"status", std::to_string(response.status)}});
            return;
        }
        const bool retryable = response.status >= 500 || response.status == 429;
        Failed(claimed, retryable, "HTTP " + std::to_string(response.status));
    } catch (const net::TransportError& e) {
        // Only an unusable request (a refused address, a malformed URL) is final; a body over
        // the cap still means the receiver answered, but not with a 2xx we could read.
        Failed(claimed, e.failure() != net::TransportFailure::kRequest,
               std::string(net::FailureName(e.failure())) + ": " + e.what());
    } catch (const std::exception& e) {
        core::LogEvent("warning", "webhook_outcome_not_recorded",
                       {{"webhook_id", d.id}, {"error", e.what()}});
    }
}

void WebhookSender::Failed(const Claimed& claimed, bool retryable, const std::string& why) {
    const auto& d = claimed.delivery;
    ++stats_.failed_attempts;
    const int64_t now = core::NowMillis();
    const int64_t next =
        now +
        RetryDelay(d.attempts, std::chrono::milliseconds(config_.webhook_retry_base_ms)).count();
    const bool expired = next > d.created_at + kDeliveryWindow.count();
    try {
        if (retryable && !expired) {
            outbox_.RetryWebhook(d.id, claimed.owner, next, why);
        } else {
            outbox_.FinishWebhook(d.id, claimed.owner);
            ++(retryable ? stats_.dropped_expired : stats_.dropped_rejected);
        }
    } catch (const std::exception& e) {
        // The claim's lease ends on its own and the row is tried again then.
        core::LogEvent("warning", "webhook_outcome_not_recorded",
                       {{"webhook_id", d.id}, {"error", e.what()}});
    }
    core::LogEvent(retryable && !expired ? "info" : "warning",
                   retryable && !expired ? "webhook_retry" : "webhook_dropped",
                   {{"job_id", d.job_id},
                    {"event", d.event},
                    {"webhook_id", d.id},
                    {"attempt", std::to_string(d.attempts)},
                    {"error", why}});
}

std::string WebhookSender::Prometheus() const {
    std::string out;
    out += "# HELP songd_webhook_deliveries_total Client webhooks delivered (a 2xx answer).\n";
    out += "# TYPE songd_webhook_deliveries_total counter\n";
    out += "songd_webhook_deliveries_total " + std::to_string(stats_.delivered.load()) + "\n";
    out += "# HELP songd_webhook_failures_total Client webhook attempts without a 2xx answer.\n";
    out += "# TYPE songd_webhook_failures_total counter\n";
    out += "songd_webhook_failures_total " + std::to_string(stats_.failed_attempts.load()) + "\n";
    out +=
        "# HELP songd_webhook_dropped_total Client webhooks given up: rejected (3xx/4xx, "
        "address refused) or expired (failing for 24 h).\n";
    out += "# TYPE songd_webhook_dropped_total counter\n";
    out += "songd_webhook_dropped_total{reason=\"rejected\"} " +
           std::to_string(stats_.dropped_rejected.load()) + "\n";
    out += "songd_webhook_dropped_total{reason=\"expired\"} " +
           std::to_string(stats_.dropped_expired.load()) + "\n";
    out += "# HELP songd_webhook_outbox_depth Client webhooks waiting in the outbox.\n";
    out += "# TYPE songd_webhook_outbox_depth gauge\n";
    out += "songd_webhook_outbox_depth " + std::to_string(stats_.outbox_depth.load()) + "\n";
    return out;
}

}  // namespace songd::webhooks
