#include "http/status_cache.h"

namespace songd::http {

StatusCache::StatusCache(size_t max_entries, size_t max_bytes, std::chrono::milliseconds max_age)
    : max_entries_(max_entries), max_bytes_(max_bytes), max_age_(max_age) {}

uint64_t StatusCache::Generation() const {
    std::lock_guard lock(mutex_);
    return generation_;
}

void StatusCache::SetExternalProbe(std::function<uint64_t()> probe) {
    probe_ = std::move(probe);
    probe_value_ = probe_();
}

std::shared_ptr<const StatusCache::Entry> StatusCache::Find(const std::string& id,
                                                            Clock::time_point now) {
    // Two stat calls per hit were a tenth of the I/O thread at 50 000 requests/s; once per
    // kProbeInterval bounds another process's change to that age instead.
    const int64_t now_ns =
        std::chrono::duration_cast<std::chrono::nanoseconds>(now.time_since_epoch()).count();
    int64_t last = last_probe_ns_.load(std::memory_order_relaxed);
    if (probe_ && now_ns - last >= kProbeInterval.count() &&
        last_probe_ns_.compare_exchange_strong(last, now_ns)) {
        const uint64_t value = probe_();
        if (probe_value_.exchange(value) != value) Invalidate("");
    }
    std::lock_guard lock(mutex_);
    auto it = slots_.find(id);
    if (it == slots_.end()) {
        ++misses_;
        return nullptr;
    }
    const Entry& e = *it->second.entry;
    if (now - e.filled > max_age_ || (e.queued && e.generation != generation_)) {
        EraseLocked(it);
        ++misses_;
        return nullptr;
    }
    lru_.splice(lru_.begin(), lru_, it->second.position);
    ++hits_;
    return it->second.entry;
}

void StatusCache::Insert(const std::string& id, std::string body, std::string etag, bool queued,
                         uint64_t generation, Clock::time_point now) {
    if (max_entries_ == 0) return;
    auto entry = std::make_shared<Entry>();
    entry->body = std::move(body);
    entry->etag = std::move(etag);
    entry->queued = queued;
    entry->generation = generation;
    entry->filled = now;
    const size_t cost = Cost(id, *entry);
    if (cost > max_bytes_) return;
    std::lock_guard lock(mutex_);
    // A change committed after the read began (its Invalidate ran already) would be undone
    // by storing what the read saw.
    if (generation != generation_) return;
    if (auto it = slots_.find(id); it != slots_.end()) EraseLocked(it);
    lru_.push_front(id);
    slots_.emplace(id, Slot{std::move(entry), lru_.begin()});
    bytes_ += cost;
    while (slots_.size() > max_entries_ || bytes_ > max_bytes_) {
        EraseLocked(slots_.find(lru_.back()));
    }
}

void StatusCache::Invalidate(const std::string& id) {
    std::lock_guard lock(mutex_);
    ++generation_;
    if (id.empty()) {
        slots_.clear();
        lru_.clear();
        bytes_ = 0;
        return;
    }
    if (auto it = slots_.find(id); it != slots_.end()) EraseLocked(it);
}

void StatusCache::EraseLocked(std::unordered_map<std::string, Slot>::iterator it) {
    bytes_ -= Cost(it->first, *it->second.entry);
    lru_.erase(it->second.position);
    slots_.erase(it);
}

size_t StatusCache::size() const {
    std::lock_guard lock(mutex_);
    return slots_.size();
}

size_t StatusCache::bytes() const {
    std::lock_guard lock(mutex_);
    return bytes_;
}

std::string StatusCache::Prometheus() const {
    uint64_t hits = 0, misses = 0;
    size_t entries = 0, bytes = 0;
    {
        std::lock_guard lock(mutex_);
        hits = hits_;
        misses = misses_;
        entries = slots_.size();
        bytes = bytes_;
    }
    std::string out;
    out += "# HELP songd_status_cache_hits_total Status reads answered from the cache.\n";
    out += "# TYPE songd_status_cache_hits_total counter\n";
    out += "songd_status_cache_hits_total " + std::to_string(hits) + "\n";
    out += "# HELP songd_status_cache_misses_total Status reads that went to the store.\n";
    out += "# TYPE songd_status_cache_misses_total counter\n";
    out += "songd_status_cache_misses_total " + std::to_string(misses) + "\n";
    out += "# HELP songd_status_cache_entries Status documents cached.\n";
    out += "# TYPE songd_status_cache_entries gauge\n";
    out += "songd_status_cache_entries " + std::to_string(entries) + "\n";
    out += "# HELP songd_status_cache_bytes Bytes the cached status documents take.\n";
    out += "# TYPE songd_status_cache_bytes gauge\n";
    out += "songd_status_cache_bytes " + std::to_string(bytes) + "\n";
    return out;
}

}  // namespace songd::http
