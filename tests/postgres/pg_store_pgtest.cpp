// What only a shared PostgreSQL store must get right: several stores (as on several nodes)
// racing for the same rows, nodes migrating one database at once, the connection pool, and
// clear errors when the database cannot be reached.
#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <functional>
#include <latch>
#include <map>
#include <mutex>
#include <set>
#include <thread>

#include "core/clock.h"
#include "core/config.h"
#include "core/error.h"
#include "harness/songd_process.h"
#include "jobs/pg_store.h"
#include "pg_test_support.h"

namespace songd::jobs {
namespace {

using test::NewJob;

/// Runs `f`; an exception is appended to `errors` (guarded: two threads may fail at once).
/// A job created, claimed and completed with its files kept far ahead: payable. It must be
/// the only queued job (a claim takes the oldest).
void CompletedJob(PgJobStore& store, const std::string& id, int64_t created_at,
                  const std::string& key = "") {
    store.Create(NewJob(id, created_at, key));
    auto claimed = store.Claim("w", created_at, 30'000);
    ASSERT_TRUE(claimed && claimed->id == id);
    Completion c;
    c.output_file = id + "/output_fixed.wav";
    c.expires_at = 4'000'000'000'000;
    ASSERT_TRUE(store.Complete(id, "w", c, created_at));
}

BindResult Try(const std::function<BindResult()>& f, std::string& errors) {
    static std::mutex mutex;
    try {
        return f();
    } catch (const std::exception& e) {
        std::lock_guard lock(mutex);
        errors += std::string(e.what()) + "; ";
        return BindResult::kNoSuchJob;
    }
}

// ---- Concurrency: separate stores are separate connections, like separate nodes. ----

TEST(PgConcurrency, EightNodesClaimTwoHundredJobsEachExactlyOnce) {
    test::PgTestDatabase db;
    const int kNodes = 8, kJobs = 200;
    std::vector<std::unique_ptr<PgJobStore>> nodes;
    for (int i = 0; i < kNodes; ++i) nodes.push_back(std::make_unique<PgJobStore>(db.url()));
    std::set<std::string> queued;
    for (int i = 0; i < kJobs; ++i) {
        std::string id = "job-" + std::to_string(i);
        nodes[0]->Create(NewJob(id, 1000 + i % 7));
        queued.insert(id);
    }
    std::vector<std::vector<std::string>> claimed(kNodes);
    std::latch start(kNodes);
    std::vector<std::thread> threads;
    for (int n = 0; n < kNodes; ++n) {
        threads.emplace_back([&, n] {
            start.arrive_and_wait();
            const std::string owner = "node-" + std::to_string(n);
            while (auto job = nodes[n]->Claim(owner, 5000, 60'000)) {
                claimed[n].push_back(job->id);
            }
        });
    }
    for (auto& t : threads) t.join();

    std::map<std::string, int> times;
    int nodes_that_claimed = 0;
    for (int n = 0; n < kNodes; ++n) {
        if (!claimed[n].empty()) ++nodes_that_claimed;
        for (const auto& id : claimed[n]) ++times[id];
    }
    EXPECT_EQ(times.size(), queued.size());
    for (const auto& id : queued) EXPECT_EQ(times[id], 1) << id;
    // The store agrees: each job is processing, once, by the node that got it.
    for (int n = 0; n < kNodes; ++n) {
        for (const auto& id : claimed[n]) {
            auto job = nodes[0]->Get(id);
            ASSERT_TRUE(job);
            EXPECT_EQ(job->status, JobStatus::kProcessing);
            EXPECT_EQ(job->attempts, 1);
            EXPECT_EQ(job->lease_owner, "node-" + std::to_string(n));
        }
    }
    EXPECT_EQ(nodes[0]->Stats().processing, kJobs);
    EXPECT_EQ(nodes[0]->Stats().queued, 0);
    std::cout << "nodes that claimed at least one job: " << nodes_that_claimed << " of " << kNodes
              << "\n";
}

TEST(PgConcurrency, OneIntentRacedOntoTwoJobsBindsExactlyOnce) {
    test::PgTestDatabase db;
    PgJobStore node_a(db.url()), node_b(db.url());
    const int kRounds = 60;
    int a_won = 0, b_won = 0;
    for (int round = 0; round < kRounds; ++round) {
        const std::string ja = "a-" + std::to_string(round), jb = "b-" + std::to_string(round);
        const std::string intent = "pi_" + std::to_string(round);
        CompletedJob(node_a, ja, round);
        CompletedJob(node_a, jb, round);
        BindResult ra{}, rb{};
        std::string errors;
        std::latch start(2);
        std::thread ta([&] {
            start.arrive_and_wait();
            ra = Try([&] { return node_a.BindPayment(ja, intent, 100, 0); }, errors);
        });
        std::thread tb([&] {
            start.arrive_and_wait();
            rb = Try([&] { return node_b.BindPayment(jb, intent, 100, 0); }, errors);
        });
        ta.join();
        tb.join();
        ASSERT_EQ(errors, "") << "round " << round;
        const int bound = (ra == BindResult::kBound) + (rb == BindResult::kBound);
        ASSERT_EQ(bound, 1) << "round " << round;
        EXPECT_EQ(ra == BindResult::kBound ? rb : ra, BindResult::kBoundToOtherJob);
        const bool a_paid = node_a.Get(ja)->paid, b_paid = node_a.Get(jb)->paid;
        EXPECT_NE(a_paid, b_paid);
        EXPECT_EQ(a_paid, ra == BindResult::kBound);
        (ra == BindResult::kBound ? a_won : b_won)++;
    }
    std::cout << "wins: node a " << a_won << ", node b " << b_won << "\n";
}

TEST(PgConcurrency, TwoIntentsRacedOntoOneJobBindExactlyOne) {
    test::PgTestDatabase db;
    PgJobStore node_a(db.url()), node_b(db.url());
    for (int round = 0; round < 30; ++round) {
        const std::string job = "j-" + std::to_string(round);
        CompletedJob(node_a, job, round);
        BindResult ra{}, rb{};
        std::string errors;
        std::latch start(2);
        std::thread ta([&] {
            start.arrive_and_wait();
            ra =
                Try([&] { return node_a.BindPayment(job, "pi_a" + std::to_string(round), 100, 0); },
                    errors);
        });
        std::thread tb([&] {
            start.arrive_and_wait();
            rb =
                Try([&] { return node_b.BindPayment(job, "pi_b" + std::to_string(round), 100, 0); },
                    errors);
        });
        ta.join();
        tb.join();
        ASSERT_EQ(errors, "") << "round " << round;
        ASSERT_EQ((ra == BindResult::kBound) + (rb == BindResult::kBound), 1) << round;
        EXPECT_EQ(ra == BindResult::kBound ? rb : ra, BindResult::kJobAlreadyPaid);
        EXPECT_EQ(node_a.Get(job)->paid_intent_id,
                  (ra == BindResult::kBound ? "pi_a" : "pi_b") + std::to_string(round));
    }
}

TEST(PgConcurrency, OneIdempotencyKeyRacedFromFourNodesMakesOneJob) {
    test::PgTestDatabase db;
    const int kNodes = 4;
    std::vector<std::unique_ptr<PgJobStore>> nodes;
    for (int i = 0; i < kNodes; ++i) nodes.push_back(std::make_unique<PgJobStore>(db.url()));
    for (int round = 0; round < 20; ++round) {
        const std::string key = "key-" + std::to_string(round);
        std::vector<CreateResult> results(kNodes);
        std::latch start(kNodes);
        std::vector<std::thread> threads;
        for (int n = 0; n < kNodes; ++n) {
            threads.emplace_back([&, n] {
                start.arrive_and_wait();
                results[n] = nodes[n]->Create(
                    NewJob("r" + std::to_string(round) + "-n" + std::to_string(n), round, key));
            });
        }
        for (auto& t : threads) t.join();
        int created = 0;
        std::string winner;
        for (const auto& r : results) {
            if (r.created) {
                ++created;
                winner = r.job.id;
            }
        }
        ASSERT_EQ(created, 1) << round;
        for (const auto& r : results) EXPECT_EQ(r.job.id, winner);
    }
    EXPECT_EQ(nodes[0]->Stats().queued, 20);
}

TEST(PgConcurrency, OneLockRacedFromEightNodesHasOneOwner) {
    test::PgTestDatabase db;
    const int kNodes = 8;
    std::vector<std::unique_ptr<PgJobStore>> nodes;
    for (int i = 0; i < kNodes; ++i) nodes.push_back(std::make_unique<PgJobStore>(db.url()));
    for (int round = 0; round < 20; ++round) {
        const std::string name = "cleanup-" + std::to_string(round);
        std::atomic<int> got{0};
        std::latch start(kNodes);
        std::vector<std::thread> threads;
        for (int n = 0; n < kNodes; ++n) {
            threads.emplace_back([&, n] {
                start.arrive_and_wait();
                if (nodes[n]->TryLock(name, "node-" + std::to_string(n), 100, 200)) ++got;
            });
        }
        for (auto& t : threads) t.join();
        ASSERT_EQ(got.load(), 1) << name;
    }
}

TEST(PgConcurrency, TwoNodesRecoveringTogetherRequeueEachJobOnce) {
    test::PgTestDatabase db;
    PgJobStore node_a(db.url()), node_b(db.url());
    const int kJobs = 100;
    for (int i = 0; i < kJobs; ++i) node_a.Create(NewJob("j" + std::to_string(i), i));
    for (int i = 0; i < kJobs; ++i) ASSERT_TRUE(node_a.Claim("dead-node", 0, 10));
    int ra = 0, rb = 0;
    std::latch start(2);
    std::thread ta([&] {
        start.arrive_and_wait();
        ra = node_a.RecoverExpiredLeases(1000, 3, false, 0);
    });
    std::thread tb([&] {
        start.arrive_and_wait();
        rb = node_b.RecoverExpiredLeases(1000, 3, false, 0);
    });
    ta.join();
    tb.join();
    EXPECT_EQ(ra + rb, kJobs);
    EXPECT_EQ(node_a.Stats().queued, kJobs);
    EXPECT_EQ(node_a.RecoverExpiredLeases(2000, 3, false, 0), 0);
}

// ---- Leases on the database's clock (how songd opens the store) ----

TEST(PgLeaseClock, ANodeWhoseClockRunsAheadDoesNotHoldAJobForever) {
    test::PgTestDatabase db;
    using Clock = PgJobStore::LeaseClock;
    PgJobStore fast_node(db.url(), PgJobStore::kDefaultPoolSize, Clock::kDatabase);
    PgJobStore other_node(db.url(), PgJobStore::kDefaultPoolSize, Clock::kDatabase);
    const int64_t now = core::NowMillis();
    fast_node.Create(NewJob("j", now));
    // The claiming node's clock is an hour ahead; its 200 ms lease still ends 200 ms from
    // now, by the database's clock, and the other node (on time) recovers the job then.
    ASSERT_TRUE(fast_node.Claim("fast/w0", now + 3'600'000, 200));
    bool recovered = false;
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(20);
    while (!recovered && std::chrono::steady_clock::now() < deadline) {
        recovered = other_node.RecoverExpiredLeases(core::NowMillis(), 3, false, 0) == 1;
        if (!recovered) std::this_thread::sleep_for(std::chrono::milliseconds(50));
    }
    EXPECT_TRUE(recovered) << "a lease set by a node whose clock runs ahead never expired";
    EXPECT_EQ(other_node.Get("j")->status, JobStatus::kQueued);
}

TEST(PgLeaseClock, ANodeWhoseClockRunsAheadDoesNotTakeALiveJob) {
    test::PgTestDatabase db;
    using Clock = PgJobStore::LeaseClock;
    PgJobStore worker(db.url(), PgJobStore::kDefaultPoolSize, Clock::kDatabase);
    PgJobStore fast_node(db.url(), PgJobStore::kDefaultPoolSize, Clock::kDatabase);
    const int64_t now = core::NowMillis();
    worker.Create(NewJob("j", now));
    ASSERT_TRUE(worker.Claim("worker/w0", now, 60'000));
    // A node an hour ahead must not judge a lease with a minute left as expired.
    EXPECT_EQ(fast_node.RecoverExpiredLeases(now + 3'600'000, 3, false, 0), 0);
    // Renewed through a caller's until (its now + lease): still measured on the database.
    EXPECT_TRUE(worker.RenewLease("j", "worker/w0", core::NowMillis() + 60'000));
    EXPECT_EQ(fast_node.RecoverExpiredLeases(now + 3'600'000, 3, false, 0), 0);
    EXPECT_EQ(worker.Get("j")->status, JobStatus::kProcessing);
}

// ---- Migrations ----

TEST(PgMigrations, FourNodesOpeningAFreshDatabaseAtOnceAllSucceed) {
    for (int round = 0; round < 3; ++round) {
        test::PgTestDatabase db;
        const int kNodes = 4;
        std::vector<std::unique_ptr<PgJobStore>> stores(kNodes);
        std::vector<std::string> errors(kNodes);
        std::latch start(kNodes);
        std::vector<std::thread> threads;
        for (int n = 0; n < kNodes; ++n) {
            threads.emplace_back([&, n] {
                start.arrive_and_wait();
                try {
                    stores[n] = std::make_unique<PgJobStore>(db.url());
                } catch (const std::exception& e) {
                    errors[n] = e.what();
                }
            });
        }
        for (auto& t : threads) t.join();
        for (int n = 0; n < kNodes; ++n) {
            ASSERT_EQ(errors[n], "") << "node " << n;
            ASSERT_TRUE(stores[n]);
        }
        const int version = stores[0]->SchemaVersion();
        EXPECT_GT(version, 0);
        for (auto& s : stores) EXPECT_EQ(s->SchemaVersion(), version);
        // One schema_version row, and the tables every method needs.
        EXPECT_EQ(test::PgQuery(db.url(), "SELECT COUNT(*) FROM schema_version"),
                  std::vector<std::string>{"1"});
        EXPECT_EQ(test::PgQuery(db.url(),
                                "SELECT string_agg(tablename, ',' ORDER BY tablename) FROM "
                                "pg_tables WHERE schemaname = 'public'"),
                  std::vector<std::string>{"jobs,locks,schema_version,service_state,uploads,"
                                           "webhook_events,webhook_outbox"});
        stores[1]->Create(NewJob("x", 1));
        EXPECT_TRUE(stores[3]->Exists("x"));
    }
}

TEST(PgMigrations, ReopeningKeepsDataAndDoesNotMigrateAgain) {
    test::PgTestDatabase db;
    int version = 0;
    {
        PgJobStore store(db.url());
        version = store.SchemaVersion();
        CompletedJob(store, "kept", 5, "key");
        ASSERT_EQ(store.BindPayment("kept", "pi_kept", 9, 0), BindResult::kBound);
        store.SetState("k", "v");
    }
    PgJobStore again(db.url());
    EXPECT_EQ(again.SchemaVersion(), version);
    auto job = again.Get("kept");
    ASSERT_TRUE(job);
    EXPECT_EQ(job->paid_intent_id, "pi_kept");
    EXPECT_EQ(again.GetState("k"), "v");
    EXPECT_FALSE(again.Create(NewJob("other", 6, "key")).created);
    EXPECT_EQ(test::PgQuery(db.url(), "SELECT COUNT(*) FROM jobs"), std::vector<std::string>{"1"});
}

TEST(PgMigrations, RefusesADatabaseFromANewerSongd) {
    test::PgTestDatabase db;
    { PgJobStore store(db.url()); }
    test::PgQuery(db.url(), "UPDATE schema_version SET version = 999");
    try {
        PgJobStore store(db.url());
        FAIL() << "a newer schema must be refused";
    } catch (const core::Error& e) {
        EXPECT_NE(std::string(e.what()).find("schema version 999, newer than this songd"),
                  std::string::npos)
            << e.what();
    }
    EXPECT_EQ(test::PgQuery(db.url(), "SELECT version FROM schema_version"),
              std::vector<std::string>{"999"});
}

// ---- The pool ----

TEST(PgPool, NeverOpensMoreConnectionsThanItsSize) {
    test::PgTestDatabase db;
    for (int size : {1, 3, PgJobStore::kDefaultPoolSize}) {
        PgJobStore store(db.url(), size);
        store.Create(NewJob("p" + std::to_string(size), 1));
        std::atomic<int> most{0};
        std::atomic<bool> stop{false};
        std::thread watcher([&] {
            while (!stop) {
                int open = store.OpenConnections();
                int seen = most.load();
                while (open > seen && !most.compare_exchange_weak(seen, open)) {
                }
            }
        });
        std::vector<std::thread> callers;
        std::atomic<int> wrong{0};
        for (int t = 0; t < 16; ++t) {
            callers.emplace_back([&] {
                for (int i = 0; i < 40; ++i) {
                    if (!store.Get("p" + std::to_string(size))) ++wrong;
                }
            });
        }
        for (auto& t : callers) t.join();
        stop = true;
        watcher.join();
        EXPECT_EQ(wrong.load(), 0);
        EXPECT_GE(most.load(), 1);
        EXPECT_LE(most.load(), size);
        // The server agrees: no more sessions on this database than the pool allows.
        auto sessions = test::PgQuery(
            db.url(),
            "SELECT COUNT(*) FROM pg_stat_activity WHERE datname = current_database() "
            "AND application_name = 'songd'");
        EXPECT_LE(std::stoi(sessions.at(0)), size);
    }
}

TEST(PgPool, ConnectionsTheServerKilledAreReplaced) {
    test::PgTestDatabase db;
    PgJobStore store(db.url(), 4);
    store.Create(NewJob("survivor", 1));
    // Use several connections at once so the pool holds more than one.
    std::vector<std::thread> callers;
    for (int t = 0; t < 4; ++t) {
        callers.emplace_back([&] {
            for (int i = 0; i < 20; ++i) store.Get("survivor");
        });
    }
    for (auto& t : callers) t.join();
    auto killed = test::PgQuery(
        db.url(),
        "SELECT COUNT(pg_terminate_backend(pid)) FROM pg_stat_activity WHERE datname = "
        "current_database() AND application_name = 'songd'");
    ASSERT_GE(std::stoi(killed.at(0)), 1);
    // Every call after the kill succeeds: dead idle connections are noticed and reopened.
    test::WaitFor(
        [&] {
            return std::stoi(test::PgQuery(db.url(),
                                           "SELECT COUNT(*) FROM pg_stat_activity WHERE datname = "
                                           "current_database() AND application_name = 'songd'")
                                 .at(0)) == 0;
        },
        std::chrono::seconds(10));
    for (int i = 0; i < 10; ++i) {
        auto job = store.Get("survivor");
        ASSERT_TRUE(job) << "call " << i;
    }
    EXPECT_TRUE(store.Claim("w", 5, 100));
    EXPECT_LE(store.OpenConnections(), 4);
}

// ---- Bad input: text PostgreSQL cannot hold. A clear error, and nothing changes. ----

core::ErrorCode CodeOf(const std::function<void()>& f, std::string* message) {
    try {
        f();
    } catch (const core::Error& e) {
        *message = e.what();
        return e.code();
    }
    *message = "no error";
    return core::ErrorCode::kInternal;
}

TEST(PgBadInput, BytesThatAreNotUtf8OrNulAreRefusedAndChangeNothing) {
    test::PgTestDatabase db;
    PgJobStore store(db.url());
    std::string message;
    EXPECT_EQ(CodeOf([&] { store.Create(NewJob("j1", 1, "key-\xff")); }, &message),
              core::ErrorCode::kInvalidInput);
    EXPECT_NE(message.find("invalid byte sequence for encoding \"UTF8\""), std::string::npos)
        << message;
    EXPECT_EQ(store.Stats().queued, 0);
    EXPECT_FALSE(store.Exists("j1"));

    EXPECT_EQ(CodeOf([&] { store.SetState("k", std::string("a\0b", 3)); }, &message),
              core::ErrorCode::kInvalidInput);
    EXPECT_NE(message.find("NUL byte"), std::string::npos) << message;
    EXPECT_FALSE(store.GetState("k"));

    EXPECT_EQ(CodeOf([&] { store.RecordEvent("evt_\xc3", 1); }, &message),
              core::ErrorCode::kInvalidInput);
    EXPECT_TRUE(store.RecordEvent("evt_ok", 1));
    // The pool is healthy after the refusals.
    EXPECT_TRUE(store.Create(NewJob("j2", 2)).created);
}

// An error message songd writes itself is always stored: bytes that are not UTF-8 become '?'.
TEST(PgBadInput, AFailureMessageWithInvalidBytesIsStoredCleaned) {
    test::PgTestDatabase db;
    PgJobStore store(db.url());
    const struct {
        const char* id;
        std::string raw;
        std::string stored;
    } cases[] = {
        {"plain", "render failed", "render failed"},
        {"utf8_kept", "caf\xc3\xa9 \xf0\x9f\x8e\xb5", "caf\xc3\xa9 \xf0\x9f\x8e\xb5"},
        {"lone_byte", "bad \xff end", "bad ? end"},
        {"nul", std::string("a\0b", 3), "a?b"},
        {"overlong", "x\xc0\xafy", "x??y"},
        {"surrogate", "\xed\xa0\x80", "???"},
        {"truncated", "tail \xe2\x82", "tail ??"},
        {"past_max", "\xf4\x90\x80\x80", "????"},
    };
    int64_t t = 1;
    for (const auto& c : cases) {
        store.Create(NewJob(c.id, t));
        ASSERT_TRUE(store.Claim("w", t, 1000));
        EXPECT_TRUE(store.Fail(c.id, "w", "render_failed", c.raw, t, 99)) << c.id;
        auto job = store.Get(c.id);
        EXPECT_EQ(job->status, JobStatus::kFailed) << c.id;
        EXPECT_EQ(job->error, c.stored) << c.id;
        EXPECT_EQ(job->error_code, "render_failed") << c.id;
        ++t;
    }
}

// ---- Bad input: the database cannot be used. One clear line, never the password. ----

struct ConnectCase {
    const char* id;
    std::function<std::string(const std::string& good_url)> url;
    const char* expect;  ///< in the message
};

void PrintTo(const ConnectCase& c, std::ostream* os) { *os << c.id; }

int ClosedPort() { return test::FreePort(); }

const ConnectCase kConnectCases[] = {
    {"wrong_password",
     [](const std::string& u) { return test::PgUrlWithPassword(u, "Wr0ng-Secret-Value"); },
     "password authentication failed for user \"songd\""},
    {"unreachable_host",
     [](const std::string& u) {
         return "postgresql://songd:" + test::PgUrlPassword(u) +
                "@127.0.0.1:" + std::to_string(ClosedPort()) + "/songd_test";
     },
     "Connection refused"},
    {"missing_database",
     [](const std::string& u) { return test::PgUrlWithDatabase(u, "songd_no_such_db"); },
     "database \"songd_no_such_db\" does not exist"},
    {"bad_port",
     [](const std::string& u) {
         return "postgresql://songd:" + test::PgUrlPassword(u) + "@127.0.0.1:notaport/songd_test";
     },
     "invalid integer value \"notaport\" for connection option \"port\""},
};

class PgConnectErrors : public ::testing::TestWithParam<ConnectCase> {};

TEST_P(PgConnectErrors, GiveOneClearLineWithoutThePassword) {
    const std::string good = test::PgServerUrl();
    const std::string url = GetParam().url(good);
    const std::string password = test::PgUrlPassword(url);
    ASSERT_FALSE(password.empty());
    // Through the path `songd serve` takes.
    core::Config config;
    config.database_url = url;
    ASSERT_TRUE(config.IsPostgres());
    try {
        OpenJobStore(config);
        FAIL() << "opening must fail";
    } catch (const core::Error& e) {
        const std::string message = e.what();
        EXPECT_NE(message.find(GetParam().expect), std::string::npos) << message;
        EXPECT_EQ(message.find(password), std::string::npos) << message;
        EXPECT_EQ(message.find(test::PgUrlPassword(good)), std::string::npos) << message;
        EXPECT_EQ(message.find('\n'), std::string::npos) << message;
        if (std::string(GetParam().id) != "bad_port") {
            EXPECT_NE(message.find("cannot connect to PostgreSQL at 127.0.0.1:"), std::string::npos)
                << message;
            EXPECT_EQ(e.code(), core::ErrorCode::kUpstreamUnavailable);
        }
        std::cout << GetParam().id << ": " << message << "\n";
    }
}

INSTANTIATE_TEST_SUITE_P(Cases, PgConnectErrors, ::testing::ValuesIn(kConnectCases),
                         [](const auto& info) { return std::string(info.param.id); });

TEST(PgConnectErrors, MissingDatabaseIsNamedWithHostAndUser) {
    const std::string url = test::PgUrlWithDatabase(test::PgServerUrl(), "songd_absent");
    try {
        PgJobStore store(url);
        FAIL() << "opening must fail";
    } catch (const core::Error& e) {
        const std::string message = e.what();
        EXPECT_NE(message.find(", database songd_absent, user songd"), std::string::npos)
            << message;
    }
}

}  // namespace
}  // namespace songd::jobs
