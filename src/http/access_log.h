#pragma once
/// @file
/// AccessLog: the per-request log line, written off the I/O threads. A request formats its
/// line into a bounded buffer; one background thread writes the waiting lines in one batch, at
/// most 50 ms after the first of them arrived. When the buffer is full the line is dropped and
/// counted, so a slow log destination never blocks a request.
///
///   http::AccessLog log(65536, &metrics.access_log_dropped);
///   log.Push({.unix_ms = now, .method = "GET", .path = "/healthz", .status = 200, ...});
///   log.Flush();   // tests: wait until everything pushed so far is written

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <mutex>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

namespace songd::http {

/// @brief One request as its log line shows it.
struct AccessEntry {
    int64_t unix_ms = 0;  ///< when the request was answered
    std::string method;
    std::string path;  ///< loggable: query values elided
    int status = 0;
    uint64_t bytes = 0;
    double seconds = 0;
    std::string client;
    std::string request_id;
};

/// @brief The bounded buffer and its writer thread.
class AccessLog {
  public:
    /// Receives whole lines, each ending in '\n', in the order they were pushed.
    using Sink = std::function<void(std::string_view lines)>;

    /// `capacity` entries wait at most; `dropped` counts the ones that did not fit. The
    /// default sink writes to stderr, where the rest of the log goes.
    AccessLog(size_t capacity, std::atomic<int64_t>* dropped, Sink sink = {});
    /// Writes what is still buffered, then stops the writer.
    ~AccessLog();
    AccessLog(const AccessLog&) = delete;
    AccessLog& operator=(const AccessLog&) = delete;

    /// Never blocks on the writer; false when the entry was dropped (buffer full).
    bool Push(const AccessEntry& entry);
    /// Waits until every entry pushed before the call is written.
    void Flush();

    /// The log line of `entry` as LogEvent would write it ("request" event, info level).
    static std::string Format(const AccessEntry& entry);
    /// Format's line appended to `out` (no newline).
    static void Append(std::string& out, const AccessEntry& entry);

  private:
    void Run();

    /// How long the writer lets entries gather after the first one before writing them.
    static constexpr std::chrono::milliseconds kLinger{50};

    const size_t capacity_;
    const size_t high_water_;  ///< pending lines that end the linger early
    const size_t max_bytes_;   ///< pending text at most: capacity × 1 KiB
    std::atomic<int64_t>* dropped_;
    Sink sink_;
    std::mutex mutex_;
    std::condition_variable wake_;
    std::condition_variable written_cv_;
    std::string pending_;  ///< formatted lines waiting for the writer
    size_t pending_lines_ = 0;
    uint64_t pushed_ = 0;    ///< entries accepted so far
    uint64_t written_ = 0;   ///< entries handed to the sink so far
    int flush_waiters_ = 0;  ///< Flush calls waiting: they end the linger
    bool stop_ = false;
    std::thread writer_;
};

}  // namespace songd::http
