#include "net/retry.h"

#include <algorithm>
#include <thread>

namespace songd::net {

std::chrono::milliseconds RetryPolicy::Ceiling(int retry_index) const {
    const int64_t cap = std::max<int64_t>(0, max_delay.count());
    int64_t ceiling = std::max<int64_t>(0, base_delay.count());
    // Doubling stops at the cap, so a far-out index cannot overflow.
    for (int i = 0; i < retry_index && ceiling > 0 && ceiling < cap; ++i) ceiling *= 2;
    return std::chrono::milliseconds(std::min(ceiling, cap));
}

Retrier::Retrier(RetryPolicy policy, Sleep sleep, uint64_t seed)
    : policy_(policy),
      sleep_(sleep ? std::move(sleep)
                   : Sleep([](std::chrono::milliseconds d) { std::this_thread::sleep_for(d); })),
      random_(seed != 0 ? seed
                        : (uint64_t{std::random_device{}()} << 32) ^ std::random_device{}()) {}

std::chrono::milliseconds Retrier::Delay(int retry_index) {
    const int64_t ceiling = policy_.Ceiling(retry_index).count();
    if (ceiling <= 0) return std::chrono::milliseconds(0);
    std::uniform_int_distribution<int64_t> pick(0, ceiling);
    std::lock_guard lock(random_mutex_);
    return std::chrono::milliseconds(pick(random_));
}

}  // namespace songd::net
