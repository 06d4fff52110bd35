#pragma once
/// @file
/// JobChanges: the per-process notice board of job changes. Whoever changes a job in the
/// store (workers, the cancel endpoint) publishes its id; whoever waits on a job (a live
/// event stream, a `Prefer: wait` answer) subscribes and re-reads the store when told.
///
///   jobs::JobChanges changes;
///   auto sub = changes.Subscribe(id, [] { /* post a wake-up; never block here */ });
///   changes.Publish(id);   // after the store committed the change
///   sub.reset();           // unsubscribes
///
/// A notice carries no state, only "look again": changes made by other nodes (PostgreSQL)
/// are not published here, so waiters also re-read at an interval.

#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <unordered_map>

namespace songd::jobs {

/// @brief In-memory publish/subscribe of "job X changed", thread-safe.
class JobChanges {
  public:
    using Listener = std::function<void()>;
    /// Holding it keeps the subscription; dropping it unsubscribes.
    using Subscription = std::shared_ptr<void>;

    /// `listener` is called on the publishing thread, outside any lock: it must be quick.
    Subscription Subscribe(const std::string& job_id, Listener listener);
    void Publish(const std::string& job_id);
    /// Subscriptions alive now (for tests and metrics).
    size_t Subscribers() const;

  private:
    struct Entry;
    void Remove(const std::string& job_id, const Entry* entry);

    mutable std::mutex mutex_;
    std::unordered_multimap<std::string, std::shared_ptr<Entry>> listeners_;
};

}  // namespace songd::jobs
