// core::ResourcePool: reuse, limits, waiting, health checks and factory failures.

#include "core/resource_pool.h"

#include <gtest/gtest.h>

#include <atomic>
#include <stdexcept>
#include <thread>

namespace songd::core {
namespace {

struct Thing {
    int id;
    bool healthy = true;
};

TEST(ResourcePool, ReusesAReturnedResource) {
    int made = 0;
    ResourcePool<Thing> pool({}, [&] { return std::make_unique<Thing>(Thing{++made}); });
    int first = 0;
    {
        auto a = pool.Acquire();
        first = a->id;
    }
    auto b = pool.Acquire();
    EXPECT_EQ(b->id, first);
    EXPECT_EQ(made, 1);
    EXPECT_EQ(pool.Open(), 1u);
}

TEST(ResourcePool, ClosesWhatIsNotReusableOnReturnAndBeforeLending) {
    int made = 0;
    ResourcePool<Thing> pool(
        {}, [&] { return std::make_unique<Thing>(Thing{++made}); },
        [](Thing& t) { return t.healthy; });
    {
        auto a = pool.Acquire();
        a->healthy = false;
    }
    EXPECT_EQ(pool.Open(), 0u);
    auto b = pool.Acquire();
    EXPECT_EQ(b->id, 2);
    {
        auto c = pool.Acquire();
        c.Discard();
    }
    EXPECT_EQ(pool.Open(), 1u);
}

TEST(ResourcePool, WaitsForAFreeSlotAndGivesUpWithAClearError) {
    PoolOptions options;
    options.max_open = 1;
    options.wait = std::chrono::milliseconds(50);
    options.exhausted_message = "all 1 things busy";
    ResourcePool<Thing> pool(options, [] { return std::make_unique<Thing>(Thing{1}); });
    auto held = pool.Acquire();
    try {
        pool.Acquire();
        FAIL() << "a second lease past max_open must not be handed out";
    } catch (const Error& e) {
        EXPECT_EQ(e.code(), ErrorCode::kUpstreamUnavailable);
        EXPECT_STREQ(e.what(), "all 1 things busy");
    }
    // A slot returned while another caller waits is handed to it.
    std::atomic<bool> got{false};
    PoolOptions patient = options;
    patient.wait = std::chrono::seconds(30);
    ResourcePool<Thing> pool2(patient, [] { return std::make_unique<Thing>(Thing{1}); });
    std::optional<ResourcePool<Thing>::Lease> first(pool2.Acquire());
    std::thread waiter([&] {
        auto lease = pool2.Acquire();
        got = true;
    });
    first.reset();
    waiter.join();
    EXPECT_TRUE(got);
}

TEST(ResourcePool, AFactoryFailureFreesItsSlot) {
    PoolOptions options;
    options.max_open = 1;
    bool fail = true;
    ResourcePool<Thing> pool(options, [&]() -> std::unique_ptr<Thing> {
        if (fail) throw std::runtime_error("cannot connect");
        return std::make_unique<Thing>(Thing{7});
    });
    EXPECT_THROW(pool.Acquire(), std::runtime_error);
    EXPECT_EQ(pool.Open(), 0u);
    fail = false;
    EXPECT_EQ(pool.Acquire()->id, 7);
}

}  // namespace
}  // namespace songd::core
