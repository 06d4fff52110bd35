// The status cache: bounded, and never a stale document after a change this process makes
// (every transition through NotifyingJobStore, on a real SQLite store).
#include "http/status_cache.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <functional>

#include "core/ids.h"
#include "jobs/notifying_store.h"
#include "jobs/sqlite_store.h"

namespace songd::http {
namespace {

using std::chrono::milliseconds;

TEST(StatusCacheTest, BoundedByEntriesAndBytesLeastRecentlyUsedFirst) {
    StatusCache cache(3, 1 << 20, milliseconds(60000));
    for (const char* id : {"a", "b", "c"}) cache.Insert(id, "body", "\"e\"", false, 0);
    ASSERT_TRUE(cache.Find("a"));  // a is now the most recently used
    cache.Insert("d", "body", "\"e\"", false, 0);
    EXPECT_EQ(cache.size(), 3u);
    EXPECT_FALSE(cache.Find("b")) << "the least recently used goes first";
    EXPECT_TRUE(cache.Find("a"));
    EXPECT_TRUE(cache.Find("d"));

    StatusCache small(1000, 2000, milliseconds(60000));
    for (int i = 0; i < 10; ++i) {
        small.Insert(std::to_string(i), std::string(500, 'x'), "\"e\"", false, 0);
    }
    EXPECT_LE(small.bytes(), 2000u);
    EXPECT_LT(small.size(), 4u);
    EXPECT_TRUE(small.Find("9"));
}

TEST(StatusCacheTest, MaxAgeBoundsWhatOtherNodesChanged) {
    StatusCache cache(10, 1 << 20, milliseconds(500));
    const auto t0 = StatusCache::Clock::now();
    cache.Insert("a", "body", "\"e\"", false, 0, t0);
    EXPECT_TRUE(cache.Find("a", t0 + milliseconds(400)));
    EXPECT_FALSE(cache.Find("a", t0 + milliseconds(600)));
}

TEST(StatusCacheTest, AReadThatRacedAChangeIsNotStored) {
    StatusCache cache(10, 1 << 20, milliseconds(60000));
    const uint64_t before = cache.Generation();
    cache.Invalidate("a");  // a change committed while the read was in flight
    cache.Insert("a", "old body", "\"old\"", false, before);
    EXPECT_FALSE(cache.Find("a"));
}

TEST(StatusCacheTest, QueuedDocumentsLastUntilAnyJobChanges) {
    StatusCache cache(10, 1 << 20, milliseconds(60000));
    cache.Insert("queued", "position 2", "\"q\"", true, cache.Generation());
    cache.Insert("done", "completed", "\"d\"", false, cache.Generation());
    cache.Invalidate("another");  // another job was claimed: positions moved
    EXPECT_FALSE(cache.Find("queued"));
    EXPECT_TRUE(cache.Find("done"));
    cache.Invalidate("");  // any job may have changed
    EXPECT_FALSE(cache.Find("done"));
}

/// The Status handler's protocol over a real store: generation, read, render, insert.
class StatusCacheStoreTest : public ::testing::Test {
  protected:
    void SetUp() override {
        char tmpl[] = "/tmp/songd-status-cache-XXXXXX";
        dir_ = ::mkdtemp(tmpl);
        store_ = std::make_unique<jobs::NotifyingJobStore>(
            std::make_unique<jobs::SqliteJobStore>(dir_ / "songd.db"));
        store_->OnChange([this](const std::string& id) { cache_.Invalidate(id); });
    }
    void TearDown() override {
        store_.reset();
        std::filesystem::remove_all(dir_);
    }
    static std::string Render(const jobs::Job& j, int64_t position) {
        return std::string(jobs::JobStatusName(j.status)) +
               " progress=" + std::to_string(j.progress) + " paid=" + (j.paid ? "1" : "0") +
               " s3=" + j.s3_url + " position=" + std::to_string(position);
    }
    /// What a status read answers: from the cache when there, else from the store (filling).
    std::string Read(const std::string& id) {
        if (auto hit = cache_.Find(id)) return hit->body;
        return Fresh(id, true);
    }
    std::string Fresh(const std::string& id, bool fill) {
        const uint64_t generation = cache_.Generation();
        auto job = store_->Get(id);
        if (!job) return "absent";
        std::string body = Render(*job, store_->QueuePosition(id));
        if (fill) {
            cache_.Insert(id, body, "\"x\"", job->status == jobs::JobStatus::kQueued, generation);
        }
        return body;
    }
    /// Reads (filling the cache), runs `change`, then checks every job reads as the store
    /// says now.
    void ExpectFreshAfter(const std::string& what, const std::function<void()>& change) {
        for (const auto& id : ids_) Read(id);
        change();
        for (const auto& id : ids_) {
            EXPECT_EQ(Read(id), Fresh(id, false)) << "after " << what << ", job " << id;
        }
    }
    jobs::Job NewJob(int64_t created_at) {
        jobs::Job j;
        j.id = core::NewJobId();
        j.request.lyrics = "[00:01.00]hello";
        j.request.style_prompt = "pop";
        j.created_at = created_at;
        j.request_hash = "h";
        ids_.push_back(j.id);
        return j;
    }
    std::filesystem::path dir_;
    StatusCache cache_{100, 1 << 20, milliseconds(3600000)};
    std::unique_ptr<jobs::NotifyingJobStore> store_;
    std::vector<std::string> ids_;
};

TEST_F(StatusCacheStoreTest, NeverStaleAfterAnyLocalChange) {
    jobs::Job a = NewJob(1), b = NewJob(2), c = NewJob(3);
    store_->Create(a);
    store_->Create(b);
    store_->Create(c);
    ExpectFreshAfter("claim (positions move)", [&] { ASSERT_TRUE(store_->Claim("w", 10, 60000)); });
    ExpectFreshAfter("progress", [&] { ASSERT_TRUE(store_->SetProgress(a.id, "w", 40)); });
    ExpectFreshAfter("release", [&] { ASSERT_TRUE(store_->Release(a.id, "w")); });
    ExpectFreshAfter("claim again", [&] { ASSERT_TRUE(store_->Claim("w", 20, 10)); });
    ExpectFreshAfter("lease recovery",
                     [&] { ASSERT_EQ(store_->RecoverExpiredLeases(100, 5, false, 0), 1); });
    ExpectFreshAfter("claim a", [&] { ASSERT_TRUE(store_->Claim("w", 200, 60000)); });
    jobs::Completion done;
    done.output_file = a.id + "/output_fixed.wav";
    done.expires_at = 1000;
    ExpectFreshAfter("complete", [&] { ASSERT_TRUE(store_->Complete(a.id, "w", done, 300)); });
    ExpectFreshAfter("S3 copy", [&] { ASSERT_TRUE(store_->SetS3Url(a.id, "s3://b/k")); });
    ExpectFreshAfter("payment", [&] {
        ASSERT_EQ(store_->BindPayment(a.id, "pi_1", 400, 0), jobs::BindResult::kBound);
    });
    ExpectFreshAfter("claim b", [&] { ASSERT_TRUE(store_->Claim("w", 500, 60000)); });
    ExpectFreshAfter("fail", [&] { ASSERT_TRUE(store_->Fail(b.id, "w", "x", "boom", 600, 700)); });
    ExpectFreshAfter("expiry by retention", [&] { ASSERT_TRUE(store_->MarkExpired(a.id, 2000)); });
    ExpectFreshAfter("deletion by retention", [&] { ASSERT_TRUE(store_->DeleteJob(b.id)); });
}

TEST_F(StatusCacheStoreTest, WithoutTheNotifierTheCacheWouldBeStale) {
    // The check above can fail: a change behind the notifier's back is served stale.
    jobs::Job a = NewJob(1);
    store_->Create(a);
    Read(a.id);
    ASSERT_TRUE(store_->inner().Claim("w", 10, 60000));
    EXPECT_NE(Read(a.id), Fresh(a.id, false));
}

}  // namespace
}  // namespace songd::http
