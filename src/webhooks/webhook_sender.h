#pragma once
/// @file
/// WebhookSender: the delivery loop of client webhooks. One dispatcher thread claims due
/// outbox rows (jobs/webhook_outbox.h) for as many delivery threads as are free; each POSTs
/// one row's body, signed per Standard Webhooks, and records the outcome:
///   2xx                              → delivered (row removed)
///   network error, 5xx, 429          → tried again with the same webhook-id after
///                                      WEBHOOK_RETRY_BASE_MS (5 s), 10 s, 20 s ... doubling,
///                                      at most 10 min apart, until 24 h after the change;
///                                      then dropped (counted)
///   other 3xx/4xx, refused address   → dropped (counted); redirects are never followed
/// A receiver that hangs holds one delivery thread for at most WEBHOOK_TIMEOUT_SECONDS, and at
/// most half of the threads may serve one host at a time, so other receivers keep theirs.
///
///   webhooks::WebhookSender sender(config, store, node_id);
///   sender.Start();                      // no-op without WEBHOOK_SECRET
///   std::string lines = sender.Prometheus();
///   sender.Stop();                       // claimed rows not sent are retried after the lease

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <map>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "core/config.h"
#include "jobs/webhook_outbox.h"
#include "net/http_client.h"

namespace songd::webhooks {

/// Longest pause between two attempts of one delivery.
inline constexpr std::chrono::milliseconds kMaxRetryDelay{10 * 60 * 1000};
/// How long after the change a delivery is still attempted.
inline constexpr std::chrono::milliseconds kDeliveryWindow{24 * 3600 * 1000};

/// The pause after failed attempt `attempt` (1-based): base * 2^(attempt-1), capped.
std::chrono::milliseconds RetryDelay(int attempt, std::chrono::milliseconds base);

/// "scheme://host:port" of a URL (lowercase), the unit of the per-receiver cap.
std::string UrlOrigin(const std::string& url);

/// @brief Counters of the delivery loop.
struct WebhookStats {
    std::atomic<int64_t> delivered{0};         ///< 2xx answers
    std::atomic<int64_t> failed_attempts{0};   ///< attempts that did not get a 2xx
    std::atomic<int64_t> dropped_rejected{0};  ///< given up: 3xx/4xx or an address refused
    std::atomic<int64_t> dropped_expired{0};   ///< given up: still failing 24 h after the change
    std::atomic<int64_t> outbox_depth{0};      ///< rows waiting, as last counted
};

/// @brief Delivers the outbox of one node; several nodes may share one PostgreSQL outbox.
class WebhookSender {
  public:
    WebhookSender(const core::Config& config, jobs::WebhookOutbox& outbox, std::string node_id);
    ~WebhookSender();
    WebhookSender(const WebhookSender&) = delete;
    WebhookSender& operator=(const WebhookSender&) = delete;

    /// Starts the threads (none when WEBHOOK_SECRET is unset: no webhook can be accepted).
    void Start();
    /// Stops claiming, lets deliveries in flight end (each within its timeout), joins.
    void Stop();

    const WebhookStats& stats() const { return stats_; }
    /// Prometheus lines: deliveries, failures, drops, outbox depth.
    std::string Prometheus() const;

  private:
    struct Claimed {
        jobs::WebhookDelivery delivery;
        std::string owner;
        std::string origin;
    };

    void DispatchLoop();
    void DeliverLoop();
    void Deliver(const Claimed& claimed);
    /// Ends one attempt that did not get a 2xx: retried later, or dropped.
    void Failed(const Claimed& claimed, bool retryable, const std::string& why);

    const core::Config& config_;
    jobs::WebhookOutbox& outbox_;
    const std::string node_id_;
    std::string key_;
    net::HttpClient http_;
    WebhookStats stats_;

    std::mutex mutex_;
    std::condition_variable wake_dispatcher_;
    std::condition_variable wake_workers_;
    std::deque<Claimed> ready_;
    std::map<std::string, int> in_flight_by_origin_;  ///< claimed and not finished, per origin
    int busy_ = 0;                                    ///< claimed and not finished, in total
    bool stopping_ = false;
    uint64_t claims_ = 0;

    std::thread dispatcher_;
    std::vector<std::thread> workers_;
};

}  // namespace songd::webhooks
