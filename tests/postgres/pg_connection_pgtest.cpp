// The libpq plumbing under PgJobStore: what a URL may say in messages, when a pooled
// connection may be lent out again, and transactions that roll back unless committed.
#include <gtest/gtest.h>

#include "harness/songd_process.h"
#include "jobs/pg_connection.h"
#include "pg_test_support.h"

namespace songd::jobs {
namespace {

TEST(PgTarget, NamesHostPortDatabaseAndUserButNeverThePassword) {
    const PgTarget target = PgTarget::Parse("postgresql://songd:s3cret-pw@db.internal:6543/songs");
    EXPECT_EQ(target.where, "db.internal:6543, database songs, user songd");
    EXPECT_EQ(target.password, "s3cret-pw");
    // A password that is also the user's name is scrubbed from the description too.
    const PgTarget same = PgTarget::Parse("postgresql://hunter2:hunter2@h/db");
    EXPECT_EQ(same.where.find("hunter2"), std::string::npos) << same.where;
    const PgTarget bare = PgTarget::Parse("postgresql:///songd");
    EXPECT_EQ(bare.where, "(default host):5432, database songd, user (default)");
}

TEST(PgTarget, AMalformedUrlIsRefusedWithoutQuotingIt) {
    try {
        PgTarget::Parse("postgresql://songd:s3cret-pw@h/db?no_such_option=1");
        FAIL() << "a malformed URL was accepted";
    } catch (const core::Error& e) {
        EXPECT_EQ(e.code(), core::ErrorCode::kInvalidInput);
        EXPECT_NE(std::string(e.what()).find("DATABASE_URL is not a valid PostgreSQL URL"),
                  std::string::npos)
            << e.what();
        EXPECT_EQ(std::string(e.what()).find("s3cret-pw"), std::string::npos) << e.what();
    }
}

TEST(PgConnection, AConnectionLeftInATransactionIsNotReusable) {
    test::PgTestDatabase db;
    PgConnection conn(PgTarget::Parse(db.url()));
    EXPECT_TRUE(conn.Reusable());
    conn.Command("BEGIN");
    EXPECT_FALSE(conn.Reusable());
    conn.Command("COMMIT");
    EXPECT_TRUE(conn.Reusable());
}

TEST(PgConnection, AConnectionTheServerKilledIsNotReusable) {
    test::PgTestDatabase db;
    PgConnection conn(PgTarget::Parse(db.url()));
    const std::string pid = conn.Exec("SELECT pg_backend_pid()").Text(0, 0);
    EXPECT_EQ(test::PgQuery(db.url(), "SELECT pg_terminate_backend(" + pid + ")"),
              std::vector<std::string>{"t"});
    EXPECT_TRUE(test::WaitFor([&] { return !conn.Reusable(); }, std::chrono::seconds(10)));
    try {
        conn.Exec("SELECT 1");
        FAIL() << "a dead connection answered";
    } catch (const core::Error& e) {
        EXPECT_EQ(e.code(), core::ErrorCode::kUpstreamUnavailable) << e.what();
    }
}

TEST(PgTransaction, RollsBackUnlessCommitted) {
    test::PgTestDatabase db;
    PgConnection conn(PgTarget::Parse(db.url()));
    conn.Command("CREATE TABLE t (v TEXT)");
    {
        PgTransaction tx(conn);
        conn.Exec("INSERT INTO t VALUES ($1)", PgParams().Add("dropped"));
    }
    {
        PgTransaction tx(conn);
        conn.Exec("INSERT INTO t VALUES ($1)", PgParams().Add("kept"));
        tx.Commit();
    }
    EXPECT_TRUE(conn.Reusable());
    EXPECT_EQ(test::PgQuery(db.url(), "SELECT v FROM t"), std::vector<std::string>{"kept"});
}

TEST(PgParams, ANulByteIsRefusedBeforeItReachesTheServer) {
    EXPECT_THROW(PgParams().Add(std::string("a\0b", 3)), core::Error);
    EXPECT_EQ(PgParams().Add("x").AddNullIfEmpty("").Add(int64_t{7}).size(), 3);
}

}  // namespace
}  // namespace songd::jobs
