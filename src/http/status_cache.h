#pragma once
/// @file
/// StatusCache: the rendered status document and its ETag per job, so that polling clients
/// (and their If-None-Match) are answered on the I/O thread without the store. Bounded LRU
/// by entries and bytes. Kept exact by invalidation: NotifyingJobStore calls Invalidate after
/// every change this process makes to a job; changes made elsewhere (other nodes, a `songd
/// cleanup` process) are bounded by `max_age`.
///
///   uint64_t generation = cache.Generation();   // before reading the store
///   ... read the job, render body, etag ...
///   cache.Insert(id, body, etag, queued, generation);
///   if (auto hit = cache.Find(id)) answer from hit->body / hit->etag;
///
/// Queued jobs' documents carry queue_position and estimated_wait_minutes, which move when
/// any other job changes: they are valid only until the next change of any job.

#include <atomic>
#include <chrono>
#include <cstdint>
#include <functional>
#include <list>
#include <memory>
#include <mutex>
#include <string>
#include <unordered_map>

namespace songd::http {

/// @brief Rendered status documents by job id.
class StatusCache {
  public:
    using Clock = std::chrono::steady_clock;

    /// @brief One cached document.
    struct Entry {
        std::string body;
        std::string etag;
        bool queued = false;      ///< valid only at the generation it was rendered at
        uint64_t generation = 0;  ///< Generation() before the store was read
        Clock::time_point filled;
    };

    /// How often Find runs the external probe at most.
    static constexpr std::chrono::nanoseconds kProbeInterval = std::chrono::milliseconds(1);

    StatusCache(size_t max_entries, size_t max_bytes, std::chrono::milliseconds max_age);

    /// Take before reading the store; pass to Insert.
    uint64_t Generation() const;
    /// The document, or null when absent, too old, or (queued) changed since.
    std::shared_ptr<const Entry> Find(const std::string& id, Clock::time_point now = Clock::now());
    /// Stores a document rendered from a read that began at `generation`; ignored when any
    /// job changed since (the read may predate that change).
    void Insert(const std::string& id, std::string body, std::string etag, bool queued,
                uint64_t generation, Clock::time_point now = Clock::now());
    /// After a change of job `id` (empty: of any job).
    void Invalidate(const std::string& id);
    /// A cheap check (a stat, never a query) run by Find at most once per kProbeInterval that
    /// returns a different value after another process changed the store: then everything
    /// cached is dropped. Another process's change shows within kProbeInterval.
    /// SQLite: the database and its WAL file, which a `songd cleanup` process writes.
    void SetExternalProbe(std::function<uint64_t()> probe);

    size_t size() const;
    size_t bytes() const;
    /// Prometheus lines: hits, misses, entries, bytes.
    std::string Prometheus() const;

  private:
    using Lru = std::list<std::string>;  ///< most recently used first
    struct Slot {
        std::shared_ptr<const Entry> entry;
        Lru::iterator position;
    };
    void EraseLocked(std::unordered_map<std::string, Slot>::iterator it);
    static size_t Cost(const std::string& id, const Entry& e) {
        return id.size() * 2 + e.body.size() + e.etag.size() + 96;
    }

    const size_t max_entries_;
    const size_t max_bytes_;
    const std::chrono::milliseconds max_age_;
    std::function<uint64_t()> probe_;
    std::atomic<uint64_t> probe_value_{0};
    std::atomic<int64_t> last_probe_ns_{INT64_MIN / 2};  ///< steady clock of the last probe
    mutable std::mutex mutex_;
    uint64_t generation_ = 0;
    std::unordered_map<std::string, Slot> slots_;
    Lru lru_;
    size_t bytes_ = 0;
    uint64_t hits_ = 0;
    uint64_t misses_ = 0;
};

}  // namespace songd::http
