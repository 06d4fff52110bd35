#pragma once
/// @file
/// ResourcePool: reusable handles (database connections, curl handles) lent out one caller at
/// a time and given back when the lease ends.
///
///   core::ResourcePool<Connection> pool({.max_open = 8, .max_idle = 8},
///       [] { return std::make_unique<Connection>(url); },     // make one
///       [](Connection& c) { return c.Healthy(); });           // keep it when it comes back?
///   {
///       auto conn = pool.Acquire();     // an idle one, a new one, or waits for one
///       conn->Exec("...");
///   }                                    // back to the pool (or closed, if not kept)
///
/// Acquire waits at most `wait` for a free slot when `max_open` are out, then throws
/// core::Error(kUpstreamUnavailable, `exhausted_message`) with Retry-After 1. A factory that
/// throws frees its slot and passes the exception on.

#include <chrono>
#include <condition_variable>
#include <cstddef>
#include <functional>
#include <limits>
#include <memory>
#include <mutex>
#include <string>
#include <utility>
#include <vector>

#include "core/error.h"

namespace songd::core {

/// @brief Limits of a ResourcePool.
struct PoolOptions {
    std::size_t max_open = std::numeric_limits<std::size_t>::max();  ///< lent + idle
    std::size_t max_idle = 16;                                       ///< kept for reuse
    std::chrono::milliseconds wait{30'000};  ///< how long Acquire waits for a slot
    std::string exhausted_message = "every pooled resource stayed busy";
};

/// @brief A thread-safe pool of `T`, made on demand by a factory.
template <typename T>
class ResourcePool {
  public:
    using Factory = std::function<std::unique_ptr<T>()>;
    /// Decides whether a resource may be reused (on return, and again before an idle one is
    /// lent out); false closes it.
    using Check = std::function<bool(T&)>;

    /// @brief One borrowed resource; goes back to the pool when destroyed.
    class Lease {
      public:
        Lease(ResourcePool* pool, std::unique_ptr<T> resource)
            : pool_(pool), resource_(std::move(resource)) {}
        Lease(Lease&& other) noexcept
            : pool_(std::exchange(other.pool_, nullptr)), resource_(std::move(other.resource_)) {}
        Lease& operator=(Lease&&) = delete;
        Lease(const Lease&) = delete;
        Lease& operator=(const Lease&) = delete;
        ~Lease() {
            if (pool_) pool_->Return(std::move(resource_));
        }
        T& operator*() const { return *resource_; }
        T* operator->() const { return resource_.get(); }
        /// Closes the resource instead of returning it (it is known to be unusable).
        void Discard() { resource_.reset(); }

      private:
        ResourcePool* pool_;
        std::unique_ptr<T> resource_;
    };

    ResourcePool(PoolOptions options, Factory factory, Check reusable = {})
        : options_(std::move(options)),
          factory_(std::move(factory)),
          reusable_(std::move(reusable)) {}
    ResourcePool(const ResourcePool&) = delete;
    ResourcePool& operator=(const ResourcePool&) = delete;

    Lease Acquire() {
        std::unique_lock lock(mutex_);
        while (true) {
            const bool got = returned_.wait_for(lock, options_.wait, [this] {
                return !idle_.empty() || open_ < options_.max_open;
            });
            if (!got) {
                throw Error(ErrorCode::kUpstreamUnavailable, options_.exhausted_message)
                    .WithRetryAfter(1);
            }
            if (idle_.empty()) break;
            std::unique_ptr<T> resource = std::move(idle_.back());
            idle_.pop_back();
            lock.unlock();
            // It may have gone bad while idle (a server restart): check before lending it.
            if (!reusable_ || reusable_(*resource)) return Lease(this, std::move(resource));
            resource.reset();
            lock.lock();
            --open_;
        }
        ++open_;
        lock.unlock();
        try {
            return Lease(this, factory_());
        } catch (...) {
            Closed();
            throw;
        }
    }

    /// Resources lent out or idle (for tests and metrics).
    std::size_t Open() const {
        std::lock_guard lock(mutex_);
        return open_;
    }

  private:
    void Return(std::unique_ptr<T> resource) {
        if (resource && (!reusable_ || reusable_(*resource))) {
            std::lock_guard lock(mutex_);
            if (idle_.size() < options_.max_idle) {
                idle_.push_back(std::move(resource));
                returned_.notify_one();
                return;
            }
        }
        resource.reset();
        Closed();
    }

    void Closed() {
        {
            std::lock_guard lock(mutex_);
            --open_;
        }
        returned_.notify_one();
    }

    const PoolOptions options_;
    const Factory factory_;
    const Check reusable_;
    mutable std::mutex mutex_;
    std::condition_variable returned_;
    std::vector<std::unique_ptr<T>> idle_;
    std::size_t open_ = 0;
};

}  // namespace songd::core
