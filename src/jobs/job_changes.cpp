#include "jobs/job_changes.h"

#include <vector>

namespace songd::jobs {

struct JobChanges::Entry {
    Listener listener;
};

JobChanges::Subscription JobChanges::Subscribe(const std::string& job_id, Listener listener) {
    auto entry = std::make_shared<Entry>(Entry{std::move(listener)});
    {
        std::lock_guard lock(mutex_);
        listeners_.emplace(job_id, entry);
    }
    // The handle's deleter unsubscribes; it holds the board by pointer, which outlives every
    // subscriber (the service owns it for its whole run).
    const Entry* raw = entry.get();
    return Subscription(static_cast<void*>(nullptr),
                        [this, job_id, raw](void*) { Remove(job_id, raw); });
}

void JobChanges::Remove(const std::string& job_id, const Entry* entry) {
    std::lock_guard lock(mutex_);
    auto [begin, end] = listeners_.equal_range(job_id);
    for (auto it = begin; it != end; ++it) {
        if (it->second.get() == entry) {
            listeners_.erase(it);
            return;
        }
    }
}

void JobChanges::Publish(const std::string& job_id) {
    std::vector<std::shared_ptr<Entry>> targets;
    {
        std::lock_guard lock(mutex_);
        auto [begin, end] = listeners_.equal_range(job_id);
        for (auto it = begin; it != end; ++it) targets.push_back(it->second);
    }
    for (const auto& entry : targets) entry->listener();
}

size_t JobChanges::Subscribers() const {
    std::lock_guard lock(mutex_);
    return listeners_.size();
}

}  // namespace songd::jobs
