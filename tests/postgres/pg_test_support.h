#pragma once
/// @file
/// The test PostgreSQL server (started by tests/postgres/pg_server.sh as a CTest fixture) and
/// a fresh database per test on it.
///
///   test::PgTestDatabase db;                 // CREATE DATABASE songd_t_...; dropped at the end
///   jobs::PgJobStore store(db.url());
///
/// The server's URL comes from SONGD_TEST_DATABASE_URL when set (a server of your own), else
/// from the file the fixture wrote. No server is a test failure, never a skip.

#include <cstdint>
#include <string>
#include <vector>

#include "jobs/job.h"

namespace songd::test {

/// A queued job with a fixed request, for the store tests.
jobs::Job NewJob(const std::string& id, int64_t created_at, const std::string& key = "",
                 const std::string& hash = "h");

/// The URL of the test server's main database; throws when there is no server.
std::string PgServerUrl();

/// `url` with its database name replaced by `database`.
std::string PgUrlWithDatabase(const std::string& url, const std::string& database);

/// `url` with its password replaced by `password`.
std::string PgUrlWithPassword(const std::string& url, const std::string& password);

/// The password in `url` (to check that messages never contain it).
std::string PgUrlPassword(const std::string& url);

/// Runs SQL on `url` outside any store (setup and inspection); returns the rows' first
/// column. Throws with the server's message on failure.
std::vector<std::string> PgQuery(const std::string& url, const std::string& sql);

/// @brief A database created for one test and dropped (with its connections) afterwards.
class PgTestDatabase {
  public:
    PgTestDatabase();
    ~PgTestDatabase();
    PgTestDatabase(const PgTestDatabase&) = delete;
    PgTestDatabase& operator=(const PgTestDatabase&) = delete;

    const std::string& url() const { return url_; }
    const std::string& name() const { return name_; }

  private:
    std::string server_url_;
    std::string name_;
    std::string url_;
};

}  // namespace songd::test
