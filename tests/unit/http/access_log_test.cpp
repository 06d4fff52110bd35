// The access log off the I/O thread: lines complete and in order, drops counted when full.
#include "http/access_log.h"

#include <gtest/gtest.h>

#include <condition_variable>
#include <mutex>
#include <sstream>

namespace songd::http {
namespace {

AccessEntry Entry(int i) {
    return AccessEntry{1700000000000 + i,
                       "GET",
                       "/api/v1/status/" + std::to_string(i),
                       200,
                       725,
                       0.0004,
                       "127.0.0.1",
                       "req" + std::to_string(i)};
}

std::vector<std::string> Lines(const std::string& text) {
    std::vector<std::string> lines;
    std::istringstream in(text);
    for (std::string line; std::getline(in, line);) lines.push_back(line);
    return lines;
}

TEST(AccessLogTest, EveryLineIsWrittenWholeAndInOrder) {
    std::mutex m;
    std::string out;
    int batches = 0;
    std::atomic<int64_t> dropped{0};
    constexpr int kLines = 20000;
    {
        AccessLog log(100000, &dropped, [&](std::string_view lines) {
            std::lock_guard lock(m);
            ASSERT_EQ(lines.back(), '\n');  // a batch is whole lines
            out.append(lines);
            ++batches;
        });
        for (int i = 0; i < kLines; ++i) ASSERT_TRUE(log.Push(Entry(i)));
        log.Flush();
        std::lock_guard lock(m);
        EXPECT_EQ(Lines(out).size(), static_cast<size_t>(kLines));
    }
    auto lines = Lines(out);
    ASSERT_EQ(lines.size(), static_cast<size_t>(kLines));
    for (int i = 0; i < kLines; ++i) {
        ASSERT_EQ(lines[i], AccessLog::Format(Entry(i))) << "line " << i;
    }
    EXPECT_EQ(dropped.load(), 0);
    EXPECT_LT(batches, kLines);  // written in batches, not one write per line
}

TEST(AccessLogTest, LineCarriesEveryField) {
    std::string line = AccessLog::Format(Entry(7));
    for (const char* part :
         {"request", "GET", "/api/v1/status/7", "200", "725", "0.400", "127.0.0.1", "req7"}) {
        EXPECT_NE(line.find(part), std::string::npos) << part << " in " << line;
    }
}

TEST(AccessLogTest, FullBufferDropsAndCountsWithoutBlocking) {
    std::mutex m;
    std::condition_variable cv;
    bool open = false;
    bool in_sink = false;
    std::string out;
    std::atomic<int64_t> dropped{0};
    {
        // The sink blocks until the test opens the gate: a log destination that stalls.
        AccessLog log(4, &dropped, [&](std::string_view lines) {
            std::unique_lock lock(m);
            in_sink = true;
            cv.notify_all();
            cv.wait(lock, [&] { return open; });
            out.append(lines);
        });
        ASSERT_TRUE(log.Push(Entry(0)));
        {
            std::unique_lock lock(m);
            cv.wait(lock, [&] { return in_sink; });  // the writer holds entry 0, stalled
        }
        int accepted = 0;
        for (int i = 1; i <= 10; ++i) accepted += log.Push(Entry(i)) ? 1 : 0;
        EXPECT_EQ(accepted, 4);  // the buffer's capacity
        EXPECT_EQ(dropped.load(), 6);
        {
            std::lock_guard lock(m);
            open = true;
        }
        cv.notify_all();
        log.Flush();
    }
    auto lines = Lines(out);
    ASSERT_EQ(lines.size(), 5u);
    for (int i = 0; i < 5; ++i) EXPECT_EQ(lines[i], AccessLog::Format(Entry(i)));
}

}  // namespace
}  // namespace songd::http
