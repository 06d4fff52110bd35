#include "pg_test_support.h"

#include <libpq-fe.h>
#include <unistd.h>

#include <atomic>
#include <cstdlib>
#include <fstream>
#include <memory>
#include <random>
#include <stdexcept>

namespace songd::test {

jobs::Job NewJob(const std::string& id, int64_t created_at, const std::string& key,
                 const std::string& hash) {
    jobs::Job j;
    j.id = id;
    j.request.lyrics = "[00:01.00]hello";
    j.request.style_prompt = "pop";
    j.seed = 42;
    j.created_at = created_at;
    j.idempotency_key = key;
    j.request_hash = hash;
    return j;
}

namespace {

struct ConnDeleter {
    void operator()(PGconn* c) const { PQfinish(c); }
};
struct ResultDeleter {
    void operator()(PGresult* r) const { PQclear(r); }
};

/// "postgresql://user:pw@host:port/db": the offsets of the password and the database name.
struct UrlLayout {
    size_t password_begin = 0, password_end = 0, db_begin = 0;
};

UrlLayout Layout(const std::string& url) {
    const size_t scheme = url.find("://");
    const size_t at = url.find('@', scheme);
    const size_t colon = url.find(':', scheme + 3);
    const size_t slash = url.find('/', at == std::string::npos ? scheme + 3 : at);
    if (scheme == std::string::npos || at == std::string::npos || colon == std::string::npos ||
        colon > at || slash == std::string::npos) {
        throw std::runtime_error("test URL is not postgresql://user:password@host:port/db");
    }
    return {colon + 1, at, slash + 1};
}

}  // namespace

std::string PgServerUrl() {
    if (const char* env = std::getenv("SONGD_TEST_DATABASE_URL"); env && *env) return env;
    std::ifstream in(SONGD_PG_URL_FILE);
    std::string url;
    std::getline(in, url);
    if (url.empty()) {
        throw std::runtime_error(
            std::string("no test PostgreSQL server: ") + SONGD_PG_URL_FILE +
            " is missing (run the tests with ctest, which starts the server through "
            "tests/postgres/pg_server.sh, or set SONGD_TEST_DATABASE_URL)");
    }
    return url;
}

std::string PgUrlWithDatabase(const std::string& url, const std::string& database) {
    auto layout = Layout(url);
    return url.substr(0, layout.db_begin) + database;
}

std::string PgUrlWithPassword(const std::string& url, const std::string& password) {
    auto layout = Layout(url);
    return url.substr(0, layout.password_begin) + password + url.substr(layout.password_end);
}

std::string PgUrlPassword(const std::string& url) {
    auto layout = Layout(url);
    return url.substr(layout.password_begin, layout.password_end - layout.password_begin);
}

std::vector<std::string> PgQuery(const std::string& url, const std::string& sql) {
    std::unique_ptr<PGconn, ConnDeleter> conn(PQconnectdb(url.c_str()));
    if (PQstatus(conn.get()) != CONNECTION_OK) {
        throw std::runtime_error(std::string("test connection failed: ") +
                                 PQerrorMessage(conn.get()));
    }
    PQsetNoticeProcessor(
        conn.get(), [](void*, const char*) {}, nullptr);
    std::unique_ptr<PGresult, ResultDeleter> res(PQexec(conn.get(), sql.c_str()));
    auto status = PQresultStatus(res.get());
    if (status != PGRES_COMMAND_OK && status != PGRES_TUPLES_OK) {
        throw std::runtime_error("test query failed: " + sql + ": " +
                                 PQresultErrorMessage(res.get()));
    }
    std::vector<std::string> rows;
    for (int i = 0; i < PQntuples(res.get()); ++i) rows.emplace_back(PQgetvalue(res.get(), i, 0));
    return rows;
}

PgTestDatabase::PgTestDatabase() : server_url_(PgServerUrl()) {
    static std::atomic<int> counter{0};
    std::random_device rd;
    // Test processes run in parallel: pid, a counter and a random part keep names apart.
    name_ = "songd_t_" + std::to_string(::getpid()) + "_" + std::to_string(counter++) + "_" +
            std::to_string(rd() % 1000000);
    // template0 takes no connections, so parallel CREATE DATABASEs never collide on it.
    PgQuery(server_url_, "CREATE DATABASE " + name_ + " TEMPLATE template0");
    url_ = PgUrlWithDatabase(server_url_, name_);
}

PgTestDatabase::~PgTestDatabase() {
    try {
        PgQuery(server_url_, "DROP DATABASE IF EXISTS " + name_ + " WITH (FORCE)");
    } catch (const std::exception&) {
        // The server is deleted with its data when the tests end.
    }
}

}  // namespace songd::test
