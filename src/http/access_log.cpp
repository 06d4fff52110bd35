#include "http/access_log.h"

#include <cstdio>

#include "core/log.h"

namespace songd::http {

AccessLog::AccessLog(size_t capacity, std::atomic<int64_t>* dropped, Sink sink)
    : capacity_(std::max<size_t>(capacity, 1)), dropped_(dropped), sink_(std::move(sink)) {
    if (!sink_) {
        // stdio's lock keeps a batch whole next to spdlog's own lines on the same stream.
        sink_ = [](std::string_view lines) {
            std::fwrite(lines.data(), 1, lines.size(), stderr);
            std::fflush(stderr);
        };
    }
    pending_.reserve(std::min<size_t>(capacity_, 4096));
    writer_ = std::thread([this] { Run(); });
}

AccessLog::~AccessLog() {
    {
        std::lock_guard lock(mutex_);
        stop_ = true;
    }
    wake_.notify_one();
    writer_.join();
}

bool AccessLog::Push(AccessEntry entry) {
    bool was_empty = false;
    {
        std::lock_guard lock(mutex_);
        if (pending_.size() >= capacity_) {
            if (dropped_) ++*dropped_;
            return false;
        }
        was_empty = pending_.empty();
        pending_.push_back(std::move(entry));
        ++pushed_;
    }
    // The writer sleeps only when the buffer is empty; while it writes, entries gather and go
    // out together in its next batch.
    if (was_empty) wake_.notify_one();
    return true;
}

void AccessLog::Flush() {
    std::unique_lock lock(mutex_);
    const uint64_t target = pushed_;
    written_cv_.wait(lock, [&] { return written_ >= target; });
}

std::string AccessLog::Format(const AccessEntry& e) {
    char duration[32];
    std::snprintf(duration, sizeof duration, "%.3f", e.seconds * 1000.0);
    return core::RenderLogLine("info", "request",
                               {{"method", e.method},
                                {"path", e.path},
                                {"status", std::to_string(e.status)},
                                {"bytes", std::to_string(e.bytes)},
                                {"duration_ms", duration},
                                {"client", e.client},
                                {"request_id", e.request_id}},
                               e.unix_ms);
}

void AccessLog::Run() {
    std::vector<AccessEntry> batch;
    batch.reserve(pending_.capacity());
    std::string text;
    for (;;) {
        {
            std::unique_lock lock(mutex_);
            wake_.wait(lock, [&] { return stop_ || !pending_.empty(); });
            if (pending_.empty() && stop_) return;
            batch.swap(pending_);
        }
        text.clear();
        for (const auto& entry : batch) {
            text += Format(entry);
            text += '\n';
        }
        sink_(text);
        {
            std::lock_guard lock(mutex_);
            written_ += batch.size();
        }
        written_cv_.notify_all();
        batch.clear();
        if (batch.capacity() > 65536) batch.shrink_to_fit();  // after a burst, give it back
    }
}

}  // namespace songd::http
