#include "jobs/pg_store.h"

#include <libpq-fe.h>
#include <poll.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <optional>
#include <unordered_map>

#include "core/error.h"
#include "jobs/request_json.h"

namespace songd::jobs {

namespace {

// Ordered migrations; schema_version holds how many have run. The same tables, columns and
// indexes as the SQLite store, plus `seq`: SQLite breaks created_at ties by rowid (insertion
// order), and job ids are random, so PostgreSQL needs its own insertion counter.
const char* const kMigrations[] = {
    R"sql(
    CREATE TABLE jobs (
        id TEXT COLLATE "C" PRIMARY KEY,
        seq BIGINT GENERATED ALWAYS AS IDENTITY,
        status TEXT NOT NULL,
        request TEXT NOT NULL,
        seed BIGINT NOT NULL,
        created_at BIGINT NOT NULL,
        started_at BIGINT NOT NULL DEFAULT 0,
        completed_at BIGINT NOT NULL DEFAULT 0,
        expires_at BIGINT NOT NULL DEFAULT 0,
        updated_at BIGINT NOT NULL,
        progress INTEGER NOT NULL DEFAULT 0,
        output_file TEXT NOT NULL DEFAULT '',
        s3_url TEXT NOT NULL DEFAULT '',
        error TEXT NOT NULL DEFAULT '',
        error_code TEXT NOT NULL DEFAULT '',
        duration_seconds DOUBLE PRECISION NOT NULL DEFAULT 0,
        sample_rate INTEGER NOT NULL DEFAULT 0,
        channels INTEGER NOT NULL DEFAULT 0,
        has_preview INTEGER NOT NULL DEFAULT 0,
        attempts INTEGER NOT NULL DEFAULT 0,
        lease_owner TEXT NOT NULL DEFAULT '',
        lease_expires_at BIGINT NOT NULL DEFAULT 0,
        paid INTEGER NOT NULL DEFAULT 0,
        paid_intent_id TEXT UNIQUE,
        paid_at BIGINT NOT NULL DEFAULT 0,
        payment_status TEXT NOT NULL DEFAULT '',
        idempotency_key TEXT UNIQUE,
        request_hash TEXT NOT NULL DEFAULT '',
        version BIGINT NOT NULL DEFAULT 1
    );
    CREATE INDEX jobs_queue ON jobs (status, created_at, seq);
    CREATE INDEX jobs_expiry ON jobs (expires_at) WHERE status IN ('completed', 'failed');
    CREATE TABLE webhook_events (id TEXT PRIMARY KEY, received_at BIGINT NOT NULL);
    CREATE TABLE service_state (key TEXT PRIMARY KEY, value TEXT NOT NULL);
    CREATE TABLE locks (name TEXT PRIMARY KEY, owner TEXT NOT NULL, until BIGINT NOT NULL);
    )sql",
    // 2: the upload reconciler finds completed jobs without an S3 copy through an index.
    R"sql(
    CREATE INDEX jobs_s3_pending ON jobs (completed_at) WHERE status = 'completed' AND s3_url = '';
    )sql",
    // 3: the price is fixed on the job when it is created (0: created before this column).
    R"sql(
    ALTER TABLE jobs ADD COLUMN price_cents BIGINT NOT NULL DEFAULT 0;
    )sql",
};

// Any constant works as long as every songd uses the same one: it serializes migrations.
constexpr const char* kMigrationLockKey = "7250321946";

constexpr const char* kJobColumns =
    "id, status, request, seed, created_at, started_at, completed_at, expires_at, updated_at, "
    "progress, output_file, s3_url, error, error_code, duration_seconds, sample_rate, channels, "
    "has_preview, attempts, lease_owner, lease_expires_at, paid, paid_intent_id, paid_at, "
    "payment_status, idempotency_key, request_hash, version, price_cents";

constexpr auto kPoolWait = std::chrono::seconds(30);

/// A failed statement: the core::Error the caller sees, plus the SQLSTATE for the few
/// places that decide on it (a unique violation in BindPayment).
class PgError : public core::Error {
  public:
    PgError(core::ErrorCode code, std::string detail, std::string sqlstate)
        : core::Error(code, std::move(detail)), sqlstate_(std::move(sqlstate)) {}
    const std::string& sqlstate() const { return sqlstate_; }

  private:
    std::string sqlstate_;
};

constexpr const char* kUniqueViolation = "23505";

/// libpq messages end in newlines and may span lines; errors here are one line.
std::string OneLine(const std::string& text) {
    std::string out;
    bool space = false;
    for (char c : text) {
        if (c == '\n' || c == '\r' || c == '\t' || c == ' ') {
            space = !out.empty();
            continue;
        }
        if (space) out += ' ';
        space = false;
        out += c;
    }
    return out;
}

/// Removes every occurrence of `secret` (libpq does not print passwords, but a message is
/// never trusted to keep one out).
std::string Scrub(std::string text, const std::string& secret) {
    if (secret.empty()) return text;
    for (size_t at = text.find(secret); at != std::string::npos; at = text.find(secret, at)) {
        text.replace(at, secret.size(), "***");
        at += 3;
    }
    return text;
}

/// Text PostgreSQL refuses to store: bytes that are not UTF-8 (SQLite would keep them).
bool IsBadText(const std::string& sqlstate) { return sqlstate == "22021" || sqlstate == "22P05"; }

/// `text` as valid UTF-8 without NULs: each byte that does not belong to a valid sequence
/// becomes '?'. For free text songd writes itself (error messages), which must always be
/// storable: a job must never stay processing because its error could not be saved.
std::string StorableText(const std::string& text) {
    std::string out;
    out.reserve(text.size());
    const auto* p = reinterpret_cast<const unsigned char*>(text.data());
    const size_t n = text.size();
    for (size_t i = 0; i < n;) {
        const unsigned char c = p[i];
        size_t len = c < 0x80           ? 1
                     : (c >> 5) == 0x6  ? 2
                     : (c >> 4) == 0xE  ? 3
                     : (c >> 3) == 0x1E ? 4
                                        : 0;
        bool ok = len > 0 && i + len <= n && c != 0;
        for (size_t k = 1; ok && k < len; ++k) ok = (p[i + k] & 0xC0) == 0x80;
        if (ok && len > 1) {
            // Overlong forms, surrogates and code points past U+10FFFF are not UTF-8 either.
            uint32_t cp = c & (0x7F >> len);
            for (size_t k = 1; k < len; ++k) cp = (cp << 6) | (p[i + k] & 0x3F);
            const uint32_t min[] = {0, 0, 0x80, 0x800, 0x10000};
            ok = cp >= min[len] && cp <= 0x10FFFF && (cp < 0xD800 || cp > 0xDFFF);
        }
        if (!ok) {
            out += '?';
            ++i;
            continue;
        }
        out.append(text, i, len);
        i += len;
    }
    return out;
}

/// A connection failure, a shutting-down server, a full disk or a lost race are outages
/// (503, retry); anything else is a bug (500).
bool IsTransient(const std::string& sqlstate) {
    return sqlstate.rfind("08", 0) == 0 || sqlstate.rfind("53", 0) == 0 ||
           sqlstate.rfind("57P", 0) == 0 || sqlstate == "40001" || sqlstate == "40P01" ||
           sqlstate == "55P03";
}

/// Owns a PGresult.
class Result {
  public:
    explicit Result(PGresult* res) : res_(res) {}
    ~Result() { PQclear(res_); }
    Result(Result&& other) noexcept : res_(other.res_) { other.res_ = nullptr; }
    Result(const Result&) = delete;
    Result& operator=(const Result&) = delete;
    Result& operator=(Result&&) = delete;

    PGresult* get() const { return res_; }
    int Rows() const { return PQntuples(res_); }
    /// Rows an INSERT/UPDATE/DELETE changed.
    int Changed() const {
        const char* n = PQcmdTuples(res_);
        return n && *n ? std::atoi(n) : 0;
    }
    std::string Text(int row, int col) const {
        if (PQgetisnull(res_, row, col)) return "";
        return std::string(PQgetvalue(res_, row, col),
                           static_cast<size_t>(PQgetlength(res_, row, col)));
    }
    int64_t Int(int row, int col) const {
        return PQgetisnull(res_, row, col) ? 0
                                           : std::strtoll(PQgetvalue(res_, row, col), nullptr, 10);
    }
    double Real(int row, int col) const {
        return PQgetisnull(res_, row, col) ? 0 : std::strtod(PQgetvalue(res_, row, col), nullptr);
    }

  private:
    PGresult* res_;
};

/// Positional parameters, all sent as text; the server infers each type from its use.
class Params {
  public:
    Params& Add(std::string v) {
        // Text goes as a C string: a NUL would silently cut the value short.
        if (v.find('\0') != std::string::npos) {
            throw core::Error(core::ErrorCode::kInvalidInput,
                              "a value contains a NUL byte, which PostgreSQL text cannot hold");
        }
        values_.emplace_back(std::move(v));
        return *this;
    }
    Params& Add(const char* v) { return Add(std::string(v)); }
    Params& Add(int64_t v) { return Add(std::to_string(v)); }
    Params& Add(int v) { return Add(std::to_string(v)); }
    Params& Add(double v) {
        char buf[32];
        std::snprintf(buf, sizeof buf, "%.17g", v);
        return Add(std::string(buf));
    }
    Params& AddNullIfEmpty(const std::string& v) {
        if (v.empty()) {
            values_.emplace_back(std::nullopt);
            return *this;
        }
        return Add(v);
    }

    int size() const { return static_cast<int>(values_.size()); }
    std::vector<const char*> Pointers() const {
        std::vector<const char*> out;
        out.reserve(values_.size());
        for (const auto& v : values_) out.push_back(v ? v->c_str() : nullptr);
        return out;
    }

  private:
    std::vector<std::optional<std::string>> values_;
};

Job ReadJob(const Result& r, int row) {
    Job j;
    j.id = r.Text(row, 0);
    j.status = ParseJobStatus(r.Text(row, 1)).value_or(JobStatus::kFailed);
    j.request = RequestFromJson(r.Text(row, 2));
    j.seed = static_cast<uint64_t>(r.Int(row, 3));
    j.created_at = r.Int(row, 4);
    j.started_at = r.Int(row, 5);
    j.completed_at = r.Int(row, 6);
    j.expires_at = r.Int(row, 7);
    j.updated_at = r.Int(row, 8);
    j.progress = static_cast<int>(r.Int(row, 9));
    j.output_file = r.Text(row, 10);
    j.s3_url = r.Text(row, 11);
    j.error = r.Text(row, 12);
    j.error_code = r.Text(row, 13);
    j.audio.duration_seconds = r.Real(row, 14);
    j.audio.sample_rate = static_cast<int>(r.Int(row, 15));
    j.audio.channels = static_cast<int>(r.Int(row, 16));
    j.has_preview = r.Int(row, 17) != 0;
    j.attempts = static_cast<int>(r.Int(row, 18));
    j.lease_owner = r.Text(row, 19);
    j.lease_expires_at = r.Int(row, 20);
    j.paid = r.Int(row, 21) != 0;
    j.paid_intent_id = r.Text(row, 22);
    j.paid_at = r.Int(row, 23);
    j.payment_status = r.Text(row, 24);
    j.idempotency_key = r.Text(row, 25);
    j.request_hash = r.Text(row, 26);
    j.version = r.Int(row, 27);
    j.price_cents = r.Int(row, 28);
    return j;
}

/// What the URL names, for messages: "127.0.0.1:5432, database songd, user songd". Parsing
/// it also yields the password, which messages must never contain.
struct UrlParts {
    std::string where;
    std::string password;
};

UrlParts DescribeUrl(const std::string& url) {
    char* err = nullptr;
    PQconninfoOption* options = PQconninfoParse(url.c_str(), &err);
    if (!options) {
        std::string why = err ? OneLine(err) : "out of memory";
        PQfreemem(err);
        // The URL itself may hold a password: the message names only what is wrong.
        throw core::Error(core::ErrorCode::kInvalidInput,
                          "DATABASE_URL is not a valid PostgreSQL URL: " + why);
    }
    std::unordered_map<std::string, std::string> values;
    for (auto* o = options; o->keyword; ++o) {
        if (o->val) values[o->keyword] = o->val;
    }
    PQconninfoFree(options);
    auto get = [&](const char* key, const char* fallback) {
        auto it = values.find(key);
        return it == values.end() || it->second.empty() ? std::string(fallback) : it->second;
    };
    UrlParts parts;
    parts.password = get("password", "");
    // Before connecting, libpq's own defaults (PGHOST, the OS user...) are unknown here.
    parts.where = get("host", "(default host)") + ":" + get("port", "5432") + ", database " +
                  get("dbname", "(default)") + ", user " + get("user", "(default)");
    parts.where = Scrub(parts.where, parts.password);
    return parts;
}

/// "host:port, database d, user u" of a connection, as libpq resolved them.
std::string Where(PGconn* conn) {
    auto text = [](const char* v) { return std::string(v ? v : ""); };
    std::string host = text(PQhost(conn));
    if (host.empty()) host = "(default host)";
    return host + ":" + text(PQport(conn)) + ", database " + text(PQdb(conn)) + ", user " +
           text(PQuser(conn));
}

}  // namespace

/// One libpq connection with its prepared statements.
class PgConnection {
  public:
    PgConnection(const std::string& url, const std::string& where, const std::string& password)
        : where_(where), password_(password) {
        // The URL comes last so its own settings (connect_timeout=...) win over these.
        const char* keys[] = {"connect_timeout", "application_name", "dbname", nullptr};
        const char* values[] = {"10", "songd", url.c_str(), nullptr};
        conn_ = PQconnectdbParams(keys, values, /*expand_dbname=*/1);
        if (!conn_ || PQstatus(conn_) != CONNECTION_OK) {
            std::string why = conn_ ? OneLine(PQerrorMessage(conn_)) : "out of memory";
            // libpq knows what it tried, defaults and PG* variables included.
            std::string tried = conn_ ? Scrub(Where(conn_), password_) : where_;
            PQfinish(conn_);
            throw core::Error(
                core::ErrorCode::kUpstreamUnavailable,
                "cannot connect to PostgreSQL at " + tried + ": " + Scrub(why, password_))
                .WithRetryAfter(1);
        }
        where_ = Scrub(Where(conn_), password_);
        Prepare();
    }
    ~PgConnection() { PQfinish(conn_); }
    PgConnection(const PgConnection&) = delete;
    PgConnection& operator=(const PgConnection&) = delete;

    /// Usable: the socket is up and no transaction is left open.
    bool Idle() const {
        return PQstatus(conn_) == CONNECTION_OK && PQtransactionStatus(conn_) == PQTRANS_IDLE;
    }
    /// Whether the server went away while the connection sat idle. An idle connection has
    /// nothing to read: if its socket is readable, the server closed it or sent a FATAL
    /// message (restart, pg_terminate_backend), which libpq notices on reading it. No round
    /// trip, so checking every checkout is free.
    bool Broken() {
        if (PQstatus(conn_) != CONNECTION_OK) return true;
        // The FATAL message and the end of the stream may arrive as two reads.
        for (int reads = 0; reads < 4 && PQstatus(conn_) == CONNECTION_OK; ++reads) {
            pollfd p{PQsocket(conn_), POLLIN, 0};
            if (::poll(&p, 1, 0) <= 0) break;
            if (PQconsumeInput(conn_) == 0) break;
        }
        return PQstatus(conn_) != CONNECTION_OK;
    }
    /// Reconnects a broken connection; false when the server is still unreachable.
    bool Reset() {
        PQreset(conn_);
        prepared_.clear();  // a new server session has none of them
        if (PQstatus(conn_) != CONNECTION_OK) return false;
        try {
            Prepare();
        } catch (const std::exception&) {
            return false;
        }
        return true;
    }

    /// Runs SQL without parameters (transaction control, migrations: several statements).
    void Command(const char* sql) {
        Result r(PQexec(conn_, sql));
        Check(r, "statement");
    }

    /// Runs one statement through a per-connection prepared statement.
    Result Exec(const std::string& sql, const Params& params = {}) {
        auto it = prepared_.find(sql);
        if (it == prepared_.end()) {
            std::string name = "songd_" + std::to_string(prepared_.size() + 1);
            Result prep(PQprepare(conn_, name.c_str(), sql.c_str(), 0, nullptr));
            Check(prep, "prepare");
            it = prepared_.emplace(sql, std::move(name)).first;
        }
        auto pointers = params.Pointers();
        Result r(PQexecPrepared(conn_, it->second.c_str(), params.size(), pointers.data(), nullptr,
                                nullptr, 0));
        Check(r, "query");
        return r;
    }

  private:
    /// Session setup, on every (re)connection.
    void Prepare() {
        // "relation already exists, skipping" and the like are not worth a line on stderr.
        PQsetNoticeProcessor(
            conn_, [](void*, const char*) {}, nullptr);
        // Doubles round-trip exactly as text even on a server set to fewer digits.
        Command("SET extra_float_digits = 3");
    }

    /// Throws for a failed statement: the SQLSTATE decides the error code; the message is
    /// the server's primary text (never the DETAIL, which may quote values).
    void Check(const Result& r, const char* what) {
        auto status = r.get() ? PQresultStatus(r.get()) : PGRES_FATAL_ERROR;
        if (status == PGRES_COMMAND_OK || status == PGRES_TUPLES_OK) return;
        std::string sqlstate, message;
        if (r.get()) {
            if (const char* s = PQresultErrorField(r.get(), PG_DIAG_SQLSTATE)) sqlstate = s;
            if (const char* m = PQresultErrorField(r.get(), PG_DIAG_MESSAGE_PRIMARY)) message = m;
        }
        if (message.empty()) message = OneLine(PQerrorMessage(conn_));
        message = Scrub(OneLine(message), password_);
        const bool lost = PQstatus(conn_) != CONNECTION_OK;
        if (lost || IsTransient(sqlstate)) {
            PgError error(core::ErrorCode::kUpstreamUnavailable,
                          std::string("PostgreSQL ") + what + " failed" +
                              (lost ? " (connection to " + where_ + " lost)" : "") + ": " + message,
                          sqlstate);
            error.WithRetryAfter(1);
            throw error;
        }
        if (IsBadText(sqlstate)) {
            throw PgError(core::ErrorCode::kInvalidInput,
                          std::string("PostgreSQL refused a value: ") + message, sqlstate);
        }
        throw PgError(core::ErrorCode::kInternal,
                      std::string("PostgreSQL ") + what + " failed: " + message +
                          (sqlstate.empty() ? "" : " (SQLSTATE " + sqlstate + ")"),
                      sqlstate);
    }

    PGconn* conn_ = nullptr;
    std::string where_;
    std::string password_;
    std::unordered_map<std::string, std::string> prepared_;
};

namespace {

/// A transaction; rolls back unless committed.
class Transaction {
  public:
    explicit Transaction(PgConnection& conn) : conn_(conn) { conn_.Command("BEGIN"); }
    ~Transaction() {
        if (done_) return;
        try {
            conn_.Command("ROLLBACK");
        } catch (const std::exception&) {
            // The connection is broken or aborted: the pool drops it instead of reusing it.
        }
    }
    Transaction(const Transaction&) = delete;
    Transaction& operator=(const Transaction&) = delete;
    void Commit() {
        conn_.Command("COMMIT");
        done_ = true;
    }

  private:
    PgConnection& conn_;
    bool done_ = false;
};

std::optional<Job> GetWith(PgConnection& conn, const std::string& id) {
    auto r = conn.Exec(std::string("SELECT ") + kJobColumns + " FROM jobs WHERE id = $1",
                       Params().Add(id));
    if (r.Rows() == 0) return std::nullopt;
    return ReadJob(r, 0);
}

}  // namespace

/// A pooled connection, given back (or dropped when unusable) on destruction.
class PgJobStore::Lease {
  public:
    Lease(PgJobStore& store, std::unique_ptr<PgConnection> conn)
        : store_(store), conn_(std::move(conn)) {}
    ~Lease() {
        if (conn_) store_.Return(std::move(conn_));
    }
    Lease(Lease&&) = default;
    PgConnection& operator*() { return *conn_; }
    PgConnection* operator->() { return conn_.get(); }

  private:
    PgJobStore& store_;
    std::unique_ptr<PgConnection> conn_;
};

PgJobStore::PgJobStore(std::string url, int pool_size)
    : url_(std::move(url)), pool_size_(pool_size < 1 ? 1 : pool_size) {
    auto parts = DescribeUrl(url_);
    where_ = std::move(parts.where);
    password_ = std::move(parts.password);
    Migrate();
}

PgJobStore::~PgJobStore() = default;

PgJobStore::Lease PgJobStore::Acquire() {
    std::unique_lock lock(mutex_);
    const bool got = returned_.wait_for(lock, kPoolWait,
                                        [this] { return !idle_.empty() || open_ < pool_size_; });
    if (!got) {
        throw core::Error(
            core::ErrorCode::kUpstreamUnavailable,
            "all " + std::to_string(pool_size_) + " PostgreSQL connections stayed busy for 30 s")
            .WithRetryAfter(1);
    }
    if (!idle_.empty()) {
        auto conn = std::move(idle_.back());
        idle_.pop_back();
        lock.unlock();
        // The server restarted or the network dropped while it sat idle: reconnect.
        if (conn->Broken() && !conn->Reset()) {
            {
                std::lock_guard relock(mutex_);
                --open_;
            }
            returned_.notify_one();
            throw core::Error(
                core::ErrorCode::kUpstreamUnavailable,
                "lost the connection to PostgreSQL at " + where_ + " and could not reconnect")
                .WithRetryAfter(1);
        }
        return Lease(*this, std::move(conn));
    }
    ++open_;
    lock.unlock();
    try {
        return Lease(*this, std::make_unique<PgConnection>(url_, where_, password_));
    } catch (...) {
        {
            std::lock_guard relock(mutex_);
            --open_;
        }
        returned_.notify_one();
        throw;
    }
}

void PgJobStore::Return(std::unique_ptr<PgConnection> conn) {
    {
        std::lock_guard lock(mutex_);
        if (conn->Idle()) {
            idle_.push_back(std::move(conn));
        } else {
            --open_;  // broken, or stuck in a transaction: never handed out again
        }
    }
    conn.reset();
    returned_.notify_one();
}

int PgJobStore::OpenConnections() {
    std::lock_guard lock(mutex_);
    return open_;
}

void PgJobStore::Migrate() {
    auto conn = Acquire();
    Transaction tx(*conn);
    // Held until COMMIT: a second node starting now waits here, then finds the work done.
    conn->Exec(std::string("SELECT pg_advisory_xact_lock(") + kMigrationLockKey + ")");
    conn->Command("CREATE TABLE IF NOT EXISTS schema_version (version INTEGER NOT NULL)");
    int version = 0;
    {
        auto r = conn->Exec("SELECT version FROM schema_version");
        if (r.Rows() > 0) {
            version = static_cast<int>(r.Int(0, 0));
        } else {
            conn->Exec("INSERT INTO schema_version (version) VALUES (0)");
        }
    }
    const int latest = static_cast<int>(std::size(kMigrations));
    if (version > latest) {
        throw core::Error(core::ErrorCode::kInternal,
                          "PostgreSQL database at " + where_ + " has schema version " +
                              std::to_string(version) + ", newer than this songd (" +
                              std::to_string(latest) + "); upgrade songd");
    }
    for (int v = version; v < latest; ++v) conn->Command(kMigrations[v]);
    conn->Exec("UPDATE schema_version SET version = $1", Params().Add(latest));
    tx.Commit();
}

int PgJobStore::SchemaVersion() {
    auto conn = Acquire();
    auto r = conn->Exec("SELECT version FROM schema_version");
    return r.Rows() > 0 ? static_cast<int>(r.Int(0, 0)) : 0;
}

CreateResult PgJobStore::Create(const Job& job) {
    auto conn = Acquire();
    // The idempotency key's UNIQUE constraint decides a race between two nodes: the loser's
    // insert does nothing and it returns the winner's job. The retry covers the winner's job
    // being deleted in between.
    for (int attempt = 0; attempt < 3; ++attempt) {
        auto inserted = conn->Exec(
            std::string("INSERT INTO jobs (id, status, request, seed, created_at, updated_at, "
                        "idempotency_key, request_hash, version, price_cents) VALUES ($1, "
                        "'queued', $2, $3, $4, $4, $5, $6, 1, $7) ON CONFLICT (idempotency_key) "
                        "DO NOTHING RETURNING ") +
                kJobColumns,
            Params()
                .Add(job.id)
                .Add(RequestToJson(job.request))
                .Add(static_cast<int64_t>(job.seed))
                .Add(job.created_at)
                .AddNullIfEmpty(job.idempotency_key)
                .Add(job.request_hash)
                .Add(job.price_cents));
        if (inserted.Rows() > 0) return {ReadJob(inserted, 0), true};
        auto existing = conn->Exec(
            std::string("SELECT ") + kJobColumns + " FROM jobs WHERE idempotency_key = $1",
            Params().Add(job.idempotency_key));
        if (existing.Rows() == 0) continue;
        Job found = ReadJob(existing, 0);
        if (found.request_hash != job.request_hash) {
            throw core::Error(core::ErrorCode::kConflict,
                              "Idempotency-Key was already used with a different request");
        }
        return {found, false};
    }
    throw core::Error(core::ErrorCode::kUpstreamUnavailable,
                      "the job with this Idempotency-Key kept changing; try again")
        .WithRetryAfter(1);
}

std::optional<Job> PgJobStore::Get(const std::string& id) {
    auto conn = Acquire();
    return GetWith(*conn, id);
}

int64_t PgJobStore::QueuePosition(const std::string& id) {
    auto conn = Acquire();
    auto r = conn->Exec(
        "SELECT COUNT(*) FROM jobs j, (SELECT created_at, seq FROM jobs WHERE id = $1 AND "
        "status = 'queued') me WHERE j.status = 'queued' AND (j.created_at, j.seq) <= "
        "(me.created_at, me.seq)",
        Params().Add(id));
    return r.Rows() > 0 ? r.Int(0, 0) : 0;
}

QueueStats PgJobStore::Stats() {
    auto conn = Acquire();
    auto r = conn->Exec("SELECT status, COUNT(*) FROM jobs GROUP BY status");
    QueueStats s;
    for (int row = 0; row < r.Rows(); ++row) {
        auto status = ParseJobStatus(r.Text(row, 0));
        int64_t n = r.Int(row, 1);
        if (status) s.Add(*status, n);
    }
    return s;
}

std::optional<Job> PgJobStore::Claim(const std::string& owner, int64_t now, int64_t lease_ms) {
    auto conn = Acquire();
    // SKIP LOCKED: a job another node is claiming right now is passed over, never shared.
    auto r = conn->Exec(
        std::string("UPDATE jobs SET status = 'processing', attempts = attempts + 1, "
                    "lease_owner = $1, lease_expires_at = $2, started_at = $3, progress = 0, "
                    "updated_at = $3, version = version + 1 WHERE id = (SELECT id FROM jobs "
                    "WHERE status = 'queued' ORDER BY created_at, seq FOR UPDATE SKIP LOCKED "
                    "LIMIT 1) AND status = 'queued' RETURNING ") +
            kJobColumns,
        Params().Add(owner).Add(now + lease_ms).Add(now));
    if (r.Rows() == 0) return std::nullopt;
    return ReadJob(r, 0);
}

bool PgJobStore::RenewLease(const std::string& id, const std::string& owner, int64_t until) {
    auto conn = Acquire();
    return conn->Exec(
                   "UPDATE jobs SET lease_expires_at = $1 WHERE id = $2 AND "
                   "status = 'processing' AND lease_owner = $3",
                   Params().Add(until).Add(id).Add(owner))
               .Changed() == 1;
}

bool PgJobStore::SetProgress(const std::string& id, const std::string& owner, int progress) {
    auto conn = Acquire();
    return conn->Exec(
                   "UPDATE jobs SET progress = $1, version = version + 1 WHERE id = $2 AND "
                   "status = 'processing' AND lease_owner = $3 AND progress <> $1",
                   Params().Add(progress).Add(id).Add(owner))
               .Changed() == 1;
}

bool PgJobStore::Complete(const std::string& id, const std::string& owner, const Completion& c,
                          int64_t now) {
    auto conn = Acquire();
    return conn->Exec(
                   "UPDATE jobs SET status = 'completed', progress = 100, completed_at = $1, "
                   "expires_at = $2, updated_at = $1, output_file = $3, "
                   "duration_seconds = $4, sample_rate = $5, channels = $6, has_preview = $7, "
                   "lease_owner = '', lease_expires_at = 0, error = '', error_code = '', "
                   "version = version + 1 "
                   "WHERE id = $8 AND status = 'processing' AND lease_owner = $9",
                   Params()
                       .Add(now)
                       .Add(c.expires_at)
                       .Add(c.output_file)
                       .Add(c.audio.duration_seconds)
                       .Add(c.audio.sample_rate)
                       .Add(c.audio.channels)
                       .Add(c.has_preview ? 1 : 0)
                       .Add(id)
                       .Add(owner))
               .Changed() == 1;
}

bool PgJobStore::Fail(const std::string& id, const std::string& owner, const std::string& code,
                      const std::string& message, int64_t now, int64_t expires_at) {
    auto conn = Acquire();
    return conn->Exec(
                   "UPDATE jobs SET status = 'failed', completed_at = $1, updated_at = $1, "
                   "expires_at = $2, error = $3, error_code = $4, "
                   "lease_owner = '', lease_expires_at = 0, version = version + 1 "
                   "WHERE id = $5 AND status = 'processing' AND lease_owner = $6",
                   Params()
                       .Add(now)
                       .Add(expires_at)
                       .Add(StorableText(message))
                       .Add(StorableText(code))
                       .Add(id)
                       .Add(owner))
               .Changed() == 1;
}

bool PgJobStore::Release(const std::string& id, const std::string& owner) {
    auto conn = Acquire();
    return conn->Exec(
                   "UPDATE jobs SET status = 'queued', attempts = GREATEST(attempts - 1, 0), "
                   "progress = 0, started_at = 0, lease_owner = '', lease_expires_at = 0, "
                   "version = version + 1 "
                   "WHERE id = $1 AND status = 'processing' AND lease_owner = $2",
                   Params().Add(id).Add(owner))
               .Changed() == 1;
}

int PgJobStore::RecoverExpiredLeases(int64_t now, int max_attempts, bool all_processing,
                                     int64_t fail_expires_at) {
    auto conn = Acquire();
    Transaction tx(*conn);
    // Rows are locked in id order and ones another node holds are skipped, so two nodes
    // recovering at once neither deadlock nor recover the same job twice.
    const std::string expired = all_processing ? "TRUE" : "lease_expires_at < $1";
    const std::string pick = "id IN (SELECT id FROM jobs WHERE status = 'processing' AND " +
                             expired + " AND attempts >= $2 ORDER BY id FOR UPDATE SKIP LOCKED)";
    Params fail_params;
    fail_params.Add(now).Add(max_attempts).Add(fail_expires_at);
    int failed = conn->Exec(
                         "UPDATE jobs SET status = 'failed', completed_at = $1, "
                         "expires_at = $3, updated_at = $1, error_code = 'worker_lost', "
                         "error = 'the worker processing this job stopped ' || attempts || "
                         "' times; giving up', lease_owner = '', lease_expires_at = 0, "
                         "version = version + 1 WHERE " +
                             pick,
                         fail_params)
                     .Changed();
    int requeued = conn->Exec(
                           "UPDATE jobs SET status = 'queued', progress = 0, started_at = 0, "
                           "lease_owner = '', lease_expires_at = 0, updated_at = $1, "
                           "version = version + 1 WHERE id IN (SELECT id FROM jobs WHERE status = "
                           "'processing' AND " +
                               expired + " ORDER BY id FOR UPDATE SKIP LOCKED)",
                           Params().Add(now))
                       .Changed();
    tx.Commit();
    return failed + requeued;
}

bool PgJobStore::SetS3Url(const std::string& id, const std::string& s3_url) {
    auto conn = Acquire();
    return conn->Exec("UPDATE jobs SET s3_url = $1, version = version + 1 WHERE id = $2",
                      Params().Add(s3_url).Add(id))
               .Changed() == 1;
}

BindResult PgJobStore::BindPayment(const std::string& id, const std::string& intent_id, int64_t now,
                                   int64_t keep_files_until) {
    auto conn = Acquire();
    // Two nodes binding one intent to two jobs both pass the first lookup; the UNIQUE
    // constraint on paid_intent_id fails the later UPDATE, and the retry then sees the winner.
    for (int attempt = 0; attempt < 3; ++attempt) {
        Transaction tx(*conn);
        auto bound =
            conn->Exec("SELECT id FROM jobs WHERE paid_intent_id = $1", Params().Add(intent_id));
        if (bound.Rows() > 0) {
            return bound.Text(0, 0) == id ? BindResult::kAlreadyBoundHere
                                          : BindResult::kBoundToOtherJob;
        }
        // Locking the job orders two binds to the same job: the second sees the first's.
        auto job = conn->Exec("SELECT paid, paid_intent_id FROM jobs WHERE id = $1 FOR UPDATE",
                              Params().Add(id));
        if (job.Rows() == 0) return BindResult::kNoSuchJob;
        if (job.Int(0, 0) != 0) {
            return job.Text(0, 1) == intent_id ? BindResult::kAlreadyBoundHere
                                               : BindResult::kJobAlreadyPaid;
        }
        try {
            // The state check is part of the UPDATE: a job that is not deliverable is never
            // bound, and retention cannot delete its files between a check and the bind.
            const auto changed = conn->Exec(
                "UPDATE jobs SET paid = 1, paid_intent_id = $1, paid_at = $2, "
                "payment_status = 'succeeded', expires_at = GREATEST(expires_at, $4), "
                "version = version + 1 WHERE id = $3 AND paid = 0 AND status = 'completed' AND "
                "expires_at > $2",
                Params().Add(intent_id).Add(now).Add(id).Add(keep_files_until));
            if (changed.Changed() != 1) return BindResult::kJobNotPayable;
        } catch (const PgError& e) {
            if (e.sqlstate() == kUniqueViolation) continue;  // tx rolls back; look again
            throw;
        }
        tx.Commit();
        return BindResult::kBound;
    }
    throw core::Error(core::ErrorCode::kUpstreamUnavailable,
                      "binding the payment kept racing with another node; try again")
        .WithRetryAfter(1);
}

bool PgJobStore::SetPaymentStatus(const std::string& id, const std::string& status) {
    auto conn = Acquire();
    return conn->Exec(
                   "UPDATE jobs SET payment_status = $1, version = version + 1 WHERE id = $2 "
                   "AND paid = 0",
                   Params().Add(status).Add(id))
               .Changed() == 1;
}

bool PgJobStore::RecordEvent(const std::string& event_id, int64_t now) {
    auto conn = Acquire();
    return conn->Exec(
                   "INSERT INTO webhook_events (id, received_at) VALUES ($1, $2) "
                   "ON CONFLICT (id) DO NOTHING",
                   Params().Add(event_id).Add(now))
               .Changed() == 1;
}

void PgJobStore::ForgetEvent(const std::string& event_id) {
    auto conn = Acquire();
    conn->Exec("DELETE FROM webhook_events WHERE id = $1", Params().Add(event_id));
}

bool PgJobStore::HasEvent(const std::string& event_id) {
    auto conn = Acquire();
    return conn->Exec("SELECT 1 FROM webhook_events WHERE id = $1", Params().Add(event_id)).Rows() >
           0;
}

std::vector<ExpiringJob> PgJobStore::DueForExpiry(int64_t now, const ExpiryCursor& after,
                                                  int limit) {
    auto conn = Acquire();
    auto r = conn->Exec(
        "SELECT id, status, output_file, s3_url, expires_at FROM jobs WHERE status IN "
        "('completed', 'failed') AND expires_at <= $1 AND (expires_at, id) > ($2, $3) "
        "ORDER BY expires_at, id LIMIT $4",
        Params().Add(now).Add(after.expires_at).Add(after.id).Add(limit));
    std::vector<ExpiringJob> out;
    out.reserve(static_cast<size_t>(r.Rows()));
    for (int row = 0; row < r.Rows(); ++row) {
        out.push_back({r.Text(row, 0), ParseJobStatus(r.Text(row, 1)).value_or(JobStatus::kFailed),
                       r.Text(row, 2), r.Text(row, 3), r.Int(row, 4)});
    }
    return out;
}

bool PgJobStore::MarkExpired(const std::string& id, int64_t now) {
    auto conn = Acquire();
    return conn->Exec(
                   "UPDATE jobs SET status = 'expired', updated_at = $1, "
                   "version = version + 1 WHERE id = $2 AND status IN ('completed', 'failed')",
                   Params().Add(now).Add(id))
               .Changed() == 1;
}

bool PgJobStore::DeleteJob(const std::string& id) {
    auto conn = Acquire();
    return conn->Exec("DELETE FROM jobs WHERE id = $1", Params().Add(id)).Changed() == 1;
}

std::vector<std::string> PgJobStore::CompletedWithoutS3(int limit) {
    auto conn = Acquire();
    auto r = conn->Exec(
        "SELECT id FROM jobs WHERE status = 'completed' AND s3_url = '' ORDER BY completed_at "
        "LIMIT $1",
        Params().Add(limit));
    std::vector<std::string> out;
    out.reserve(static_cast<size_t>(r.Rows()));
    for (int row = 0; row < r.Rows(); ++row) out.push_back(r.Text(row, 0));
    return out;
}

std::vector<Job> PgJobStore::ListByStatus(JobStatus status, const std::string& after_id,
                                          int limit) {
    auto conn = Acquire();
    auto r = conn->Exec(std::string("SELECT ") + kJobColumns +
                            " FROM jobs WHERE status = $1 AND id > $2 ORDER BY id LIMIT $3",
                        Params().Add(JobStatusName(status)).Add(after_id).Add(limit));
    std::vector<Job> out;
    out.reserve(static_cast<size_t>(r.Rows()));
    for (int row = 0; row < r.Rows(); ++row) out.push_back(ReadJob(r, row));
    return out;
}

bool PgJobStore::Exists(const std::string& id) {
    auto conn = Acquire();
    return conn->Exec("SELECT 1 FROM jobs WHERE id = $1", Params().Add(id)).Rows() > 0;
}

std::optional<std::string> PgJobStore::GetState(const std::string& key) {
    auto conn = Acquire();
    auto r = conn->Exec("SELECT value FROM service_state WHERE key = $1", Params().Add(key));
    if (r.Rows() == 0) return std::nullopt;
    return r.Text(0, 0);
}

void PgJobStore::SetState(const std::string& key, const std::string& value) {
    auto conn = Acquire();
    conn->Exec(
        "INSERT INTO service_state (key, value) VALUES ($1, $2) ON CONFLICT (key) DO "
        "UPDATE SET value = excluded.value",
        Params().Add(key).Add(value));
}

bool PgJobStore::TryLock(const std::string& name, const std::string& owner, int64_t now,
                         int64_t until) {
    auto conn = Acquire();
    return conn->Exec(
                   "INSERT INTO locks (name, owner, until) VALUES ($1, $2, $3) "
                   "ON CONFLICT (name) DO UPDATE SET owner = excluded.owner, "
                   "until = excluded.until "
                   "WHERE locks.until < $4 OR locks.owner = excluded.owner",
                   Params().Add(name).Add(owner).Add(until).Add(now))
               .Changed() == 1;
}

void PgJobStore::Unlock(const std::string& name, const std::string& owner) {
    auto conn = Acquire();
    conn->Exec("DELETE FROM locks WHERE name = $1 AND owner = $2", Params().Add(name).Add(owner));
}

}  // namespace songd::jobs
