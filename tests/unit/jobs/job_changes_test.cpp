// JobChanges: the per-process notice board that live events and Prefer: wait listen to.
#include "jobs/job_changes.h"

#include <gtest/gtest.h>

#include <atomic>
#include <thread>
#include <vector>

#include "core/error.h"
#include "engine/engine.h"

namespace songd::jobs {
namespace {

TEST(JobChanges, PublishWakesTheSubscribersOfThatJobOnlyUntilTheyUnsubscribe) {
    JobChanges changes;
    int a = 0, a2 = 0, b = 0;
    auto sub_a = changes.Subscribe("a", [&] { ++a; });
    auto sub_a2 = changes.Subscribe("a", [&] { ++a2; });
    auto sub_b = changes.Subscribe("b", [&] { ++b; });
    EXPECT_EQ(changes.Subscribers(), 3u);
    changes.Publish("a");
    EXPECT_EQ(a, 1);
    EXPECT_EQ(a2, 1);
    EXPECT_EQ(b, 0);
    sub_a.reset();
    changes.Publish("a");
    changes.Publish("nobody");
    EXPECT_EQ(a, 1);
    EXPECT_EQ(a2, 2);
    EXPECT_EQ(changes.Subscribers(), 2u);
    sub_a2.reset();
    sub_b.reset();
    EXPECT_EQ(changes.Subscribers(), 0u);
}

TEST(JobChanges, ManyThreadsSubscribeAndPublishAtOnce) {
    JobChanges changes;
    std::atomic<int> heard{0};
    auto keep = changes.Subscribe("j", [&] { ++heard; });
    std::vector<std::thread> threads;
    for (int t = 0; t < 4; ++t) {
        threads.emplace_back([&] {
            for (int i = 0; i < 1000; ++i) {
                auto sub = changes.Subscribe("j", [] {});
                changes.Publish("j");
            }
        });
    }
    for (auto& t : threads) t.join();
    EXPECT_EQ(heard.load(), 4000);
    EXPECT_EQ(changes.Subscribers(), 1u);
}

TEST(CancelToken, AUserCancelStopsLikeStopButSaysSo) {
    engine::CancelToken stop, user;
    stop.Cancel();
    user.CancelByUser();
    EXPECT_TRUE(stop.Cancelled());
    EXPECT_TRUE(user.Cancelled());
    EXPECT_TRUE(user.Stopped()) << "engines that only know Stopped stop too";
    EXPECT_FALSE(stop.CanceledByUser());
    EXPECT_TRUE(user.CanceledByUser());
    try {
        user.ThrowIfCancelled();
        FAIL() << "no throw";
    } catch (const core::Error& e) {
        EXPECT_NE(std::string(e.what()).find("canceled"), std::string::npos);
    }
}

}  // namespace
}  // namespace songd::jobs
