#pragma once
/// @file
/// The outbox of client webhooks: one row per (job, state change) that the client asked to
/// hear about, written by the store in the SAME transaction as the change, so a crash can
/// neither lose a change's delivery nor invent one. Each row has a stable webhook id (the
/// Standard Webhooks `webhook-id`) that every retry of it carries; receivers dedupe by it.
///
///   // in a store transition, after the UPDATE, inside its transaction:
///   EnqueueWebhook(tx, job, "completed");          // (each store has its own, same rules)
///   // the delivery loop (webhooks/webhook_sender.h):
///   auto due = outbox.ClaimWebhooks("node-a", now, 60'000, 8);
///   ... POST each ... outbox.FinishWebhook(d.id, "node-a");             // delivered / dropped
///   ... or ...        outbox.RetryWebhook(d.id, "node-a", now + 5'000, "HTTP 503");
///
/// Events: start (the job is claimed: processing), progress (at most one per
/// kProgressIntervalMs per job), completed, failed, canceled, expired.

#include <cstdint>
#include <functional>
#include <string>
#include <string_view>
#include <vector>

#include "jobs/job.h"

namespace songd::jobs {

/// Every event name a client may ask for, in lifecycle order.
inline constexpr const char* kWebhookEvents[] = {"start",  "progress", "completed",
                                                 "failed", "canceled", "expired"};
/// The events sent when the client names none: the terminal ones.
inline constexpr const char* kDefaultWebhookEvents[] = {"completed", "failed", "canceled",
                                                        "expired"};
/// Progress rows of one job are at least this far apart; the ones in between are not sent.
inline constexpr int64_t kProgressIntervalMs = 2000;

bool IsWebhookEvent(std::string_view name);
/// Whether `job` has a webhook that wants `event` (an empty filter means the default set).
bool WantsWebhook(const Job& job, std::string_view event);
/// A fresh webhook id: "msg_" and 32 hex characters.
std::string NewWebhookId();

/// @brief One row of the outbox, as a claim returns it.
struct WebhookDelivery {
    std::string id;  ///< webhook-id
    std::string job_id;
    std::string event;
    std::string url;
    std::string body;  ///< the status document at the change
    int64_t created_at = 0;
    int attempts = 0;  ///< attempts made so far, this claim's included
};

/// @brief The store's side of client webhooks.
class WebhookOutbox {
  public:
    virtual ~WebhookOutbox() = default;

    /// Renders a row's body from the job as the transition's transaction sees it (the store
    /// cannot know the HTTP prefix or prices). Set once, before serving; the default renders
    /// with a default configuration.
    using BodyRenderer = std::function<std::string(const Job&)>;
    virtual void SetWebhookRenderer(BodyRenderer renderer) = 0;

    /// Takes up to `limit` rows due at `now` (oldest first) for `owner`: each gets
    /// attempts+1 and is not due again before now+lease_ms, so a node that dies mid-delivery
    /// leaves it to be tried again. On PostgreSQL rows another node is claiming are skipped.
    virtual std::vector<WebhookDelivery> ClaimWebhooks(const std::string& owner, int64_t now,
                                                       int64_t lease_ms, int limit) = 0;
    /// Removes a row `owner` claimed (delivered, refused for good, or too old). False when
    /// the claim was lost (the lease ended and another claim took it).
    virtual bool FinishWebhook(const std::string& id, const std::string& owner) = 0;
    /// Makes a row `owner` claimed due again at `next_attempt_at`, noting why it failed.
    virtual bool RetryWebhook(const std::string& id, const std::string& owner,
                              int64_t next_attempt_at, const std::string& error) = 0;
    /// Gives a claimed row back unattempted (its receiver was busy): due at `next_attempt_at`,
    /// the claim's attempt not counted.
    virtual bool ReleaseWebhook(const std::string& id, const std::string& owner,
                                int64_t next_attempt_at) = 0;
    /// Rows waiting (due or not), for the outbox depth gauge.
    virtual int64_t WebhookOutboxDepth() = 0;
};

}  // namespace songd::jobs
