#include "jobs/sqlite_store.h"

#include <sqlite3.h>

#include <map>

#include "core/clock.h"
#include "core/error.h"
#include "jobs/request_json.h"
#include "jobs/status_document.h"

namespace songd::jobs {

namespace {

[[noreturn]] void ThrowDb(sqlite3* db, const std::string& what) {
    int code = db ? sqlite3_extended_errcode(db) : SQLITE_ERROR;
    std::string msg = what + ": " + (db ? sqlite3_errmsg(db) : "cannot open database");
    // A locked or busy database past the busy timeout is an outage, not a bug.
    auto ec = (code & 0xff) == SQLITE_BUSY || (code & 0xff) == SQLITE_LOCKED ||
                      (code & 0xff) == SQLITE_FULL || (code & 0xff) == SQLITE_IOERR
                  ? core::ErrorCode::kUpstreamUnavailable
                  : core::ErrorCode::kInternal;
    core::Error error(ec, msg);
    if (ec == core::ErrorCode::kUpstreamUnavailable) error.WithRetryAfter(1);
    throw error;
}

// Ordered migrations; schema_version holds how many have run.
const char* const kMigrations[] = {
    R"sql(
    CREATE TABLE jobs (
        id TEXT PRIMARY KEY,
        status TEXT NOT NULL,
        request TEXT NOT NULL,
        seed INTEGER NOT NULL,
        created_at INTEGER NOT NULL,
        started_at INTEGER NOT NULL DEFAULT 0,
        completed_at INTEGER NOT NULL DEFAULT 0,
        expires_at INTEGER NOT NULL DEFAULT 0,
        updated_at INTEGER NOT NULL,
        progress INTEGER NOT NULL DEFAULT 0,
        output_file TEXT NOT NULL DEFAULT '',
        s3_url TEXT NOT NULL DEFAULT '',
        error TEXT NOT NULL DEFAULT '',
        error_code TEXT NOT NULL DEFAULT '',
        duration_seconds REAL NOT NULL DEFAULT 0,
        sample_rate INTEGER NOT NULL DEFAULT 0,
        channels INTEGER NOT NULL DEFAULT 0,
        has_preview INTEGER NOT NULL DEFAULT 0,
        attempts INTEGER NOT NULL DEFAULT 0,
        lease_owner TEXT NOT NULL DEFAULT '',
        lease_expires_at INTEGER NOT NULL DEFAULT 0,
        paid INTEGER NOT NULL DEFAULT 0,
        paid_intent_id TEXT UNIQUE,
        paid_at INTEGER NOT NULL DEFAULT 0,
        payment_status TEXT NOT NULL DEFAULT '',
        idempotency_key TEXT UNIQUE,
        request_hash TEXT NOT NULL DEFAULT '',
        version INTEGER NOT NULL DEFAULT 1
    );
    CREATE INDEX jobs_queue ON jobs (status, created_at);
    CREATE INDEX jobs_expiry ON jobs (expires_at) WHERE status IN ('completed', 'failed');
    CREATE TABLE webhook_events (id TEXT PRIMARY KEY, received_at INTEGER NOT NULL);
    CREATE TABLE service_state (key TEXT PRIMARY KEY, value TEXT NOT NULL);
    CREATE TABLE locks (name TEXT PRIMARY KEY, owner TEXT NOT NULL, until INTEGER NOT NULL);
    )sql",
    // 2: the upload reconciler finds completed jobs without an S3 copy through an index.
    R"sql(
    CREATE INDEX jobs_s3_pending ON jobs (completed_at) WHERE status = 'completed' AND s3_url = '';
    )sql",
    // 3: the price is fixed on the job when it is created (0: created before this column).
    R"sql(
    ALTER TABLE jobs ADD COLUMN price_cents INTEGER NOT NULL DEFAULT 0;
    )sql",
    // webhooks: the outbox of client webhooks (jobs/webhook_outbox.h), one row per state
    // change still to deliver; and when a job's last progress row was written (at most one
    // per 2 s).
    R"sql(
    CREATE TABLE webhook_outbox (
        id TEXT PRIMARY KEY,
        job_id TEXT NOT NULL,
        event TEXT NOT NULL,
        url TEXT NOT NULL,
        body TEXT NOT NULL,
        created_at INTEGER NOT NULL,
        next_attempt_at INTEGER NOT NULL,
        attempts INTEGER NOT NULL DEFAULT 0,
        claim_owner TEXT NOT NULL DEFAULT '',
        last_error TEXT NOT NULL DEFAULT ''
    );
    CREATE INDEX webhook_outbox_due ON webhook_outbox (next_attempt_at);
    ALTER TABLE jobs ADD COLUMN webhook_progress_at INTEGER NOT NULL DEFAULT 0;
    )sql",
    // 5 (client API): a cancel asked while processing; canceled jobs expire like failed ones.
    R"sql(
    ALTER TABLE jobs ADD COLUMN cancel_requested INTEGER NOT NULL DEFAULT 0;
    DROP INDEX jobs_expiry;
    CREATE INDEX jobs_expiry ON jobs (expires_at) WHERE status IN ('completed', 'failed', 'canceled');
    )sql",
    // 6 (reference): uploaded reference songs (POST {p}/uploads), found from any node, expiring.
    R"sql(
    CREATE TABLE uploads (
        id TEXT PRIMARY KEY,
        file TEXT NOT NULL,
        format TEXT NOT NULL,
        s3_key TEXT NOT NULL DEFAULT '',
        size_bytes INTEGER NOT NULL,
        duration_seconds REAL NOT NULL,
        sample_rate INTEGER NOT NULL,
        channels INTEGER NOT NULL,
        tempo_bpm REAL NOT NULL,
        musical_key TEXT NOT NULL,
        created_at INTEGER NOT NULL,
        expires_at INTEGER NOT NULL
    );
    CREATE INDEX uploads_expiry ON uploads (expires_at);
    )sql",
};

constexpr const char* kJobColumns =
    "id, status, request, seed, created_at, started_at, completed_at, expires_at, updated_at, "
    "progress, output_file, s3_url, error, error_code, duration_seconds, sample_rate, channels, "
    "has_preview, attempts, lease_owner, lease_expires_at, paid, paid_intent_id, paid_at, "
    "payment_status, idempotency_key, request_hash, version, price_cents, cancel_requested";

}  // namespace

/// One sqlite3 handle with its prepared statements.
class SqliteConnection {
  public:
    explicit SqliteConnection(const std::filesystem::path& path) {
        int rc = sqlite3_open_v2(path.c_str(), &db_,
                                 SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX,
                                 nullptr);
        if (rc != SQLITE_OK) {
            std::string msg = db_ ? sqlite3_errmsg(db_) : "out of memory";
            sqlite3_close_v2(db_);
            throw core::Error(core::ErrorCode::kInternal,
                              "cannot open database " + path.string() + ": " + msg);
        }
        sqlite3_busy_timeout(db_, 10000);
        Exec("PRAGMA journal_mode=WAL");
        // FULL: a job is durable once generate answers, across power loss too (WAL + NORMAL
        // survives a crashed process, but may lose the last commits when the machine stops).
        Exec("PRAGMA synchronous=FULL");
        Exec("PRAGMA foreign_keys=ON");
    }
    ~SqliteConnection() {
        for (auto& [sql, stmt] : statements_) sqlite3_finalize(stmt);
        sqlite3_close_v2(db_);
    }
    SqliteConnection(const SqliteConnection&) = delete;
    SqliteConnection& operator=(const SqliteConnection&) = delete;

    sqlite3* db() { return db_; }

    void Exec(const char* sql) {
        char* err = nullptr;
        if (sqlite3_exec(db_, sql, nullptr, nullptr, &err) != SQLITE_OK) {
            std::string msg = err ? err : "unknown error";
            sqlite3_free(err);
            core::Error e(core::ErrorCode::kInternal, std::string("database: ") + msg);
            int code = sqlite3_errcode(db_);
            if (code == SQLITE_BUSY || code == SQLITE_LOCKED) {
                throw core::Error(core::ErrorCode::kUpstreamUnavailable, "database is busy")
                    .WithRetryAfter(1);
            }
            throw e;
        }
    }

    sqlite3_stmt* Prepare(const std::string& sql) {
        auto it = statements_.find(sql);
        if (it != statements_.end()) {
            sqlite3_reset(it->second);
            sqlite3_clear_bindings(it->second);
            return it->second;
        }
        sqlite3_stmt* stmt = nullptr;
        if (sqlite3_prepare_v3(db_, sql.c_str(), -1, SQLITE_PREPARE_PERSISTENT, &stmt, nullptr) !=
            SQLITE_OK) {
            ThrowDb(db_, "prepare");
        }
        statements_.emplace(sql, stmt);
        return stmt;
    }

  private:
    sqlite3* db_ = nullptr;
    std::map<std::string, sqlite3_stmt*> statements_;
};

namespace {

/// Binds parameters by position and steps a cached statement.
class Query {
  public:
    Query(SqliteConnection& conn, const std::string& sql) : conn_(conn), stmt_(conn.Prepare(sql)) {}
    ~Query() { sqlite3_reset(stmt_); }

    Query& Bind(const std::string& v) {
        sqlite3_bind_text(stmt_, ++index_, v.data(), static_cast<int>(v.size()), SQLITE_TRANSIENT);
        return *this;
    }
    Query& Bind(const char* v) { return Bind(std::string(v)); }
    Query& Bind(int64_t v) {
        sqlite3_bind_int64(stmt_, ++index_, v);
        return *this;
    }
    Query& Bind(int v) { return Bind(static_cast<int64_t>(v)); }
    Query& Bind(double v) {
        sqlite3_bind_double(stmt_, ++index_, v);
        return *this;
    }
    Query& BindNullIfEmpty(const std::string& v) {
        if (v.empty()) {
            sqlite3_bind_null(stmt_, ++index_);
            return *this;
        }
        return Bind(v);
    }

    /// True while there is a row.
    bool Step() {
        int rc = sqlite3_step(stmt_);
        if (rc == SQLITE_ROW) return true;
        if (rc == SQLITE_DONE) return false;
        ThrowDb(conn_.db(), "query");
    }
    /// Runs a statement that returns no rows; the number of rows changed.
    int Run() {
        Step();
        return sqlite3_changes(conn_.db());
    }
    int StepCode() { return sqlite3_step(stmt_); }

    int64_t Int(int col) { return sqlite3_column_int64(stmt_, col); }
    double Real(int col) { return sqlite3_column_double(stmt_, col); }
    std::string Text(int col) {
        auto* p = reinterpret_cast<const char*>(sqlite3_column_text(stmt_, col));
        return p ? std::string(p, static_cast<size_t>(sqlite3_column_bytes(stmt_, col))) : "";
    }

  private:
    SqliteConnection& conn_;
    sqlite3_stmt* stmt_;
    int index_ = 0;
};

/// A write transaction; rolls back unless committed.
class Transaction {
  public:
    explicit Transaction(SqliteConnection& conn) : conn_(conn) { conn_.Exec("BEGIN IMMEDIATE"); }
    ~Transaction() {
        if (!done_) sqlite3_exec(conn_.db(), "ROLLBACK", nullptr, nullptr, nullptr);
    }
    void Commit() {
        conn_.Exec("COMMIT");
        done_ = true;
    }

  private:
    SqliteConnection& conn_;
    bool done_ = false;
};

Job ReadJob(Query& q) {
    Job j;
    j.id = q.Text(0);
    j.status = ParseJobStatus(q.Text(1)).value_or(JobStatus::kFailed);
    j.request = RequestFromJson(q.Text(2));
    j.seed = static_cast<uint64_t>(q.Int(3));
    j.created_at = q.Int(4);
    j.started_at = q.Int(5);
    j.completed_at = q.Int(6);
    j.expires_at = q.Int(7);
    j.updated_at = q.Int(8);
    j.progress = static_cast<int>(q.Int(9));
    j.output_file = q.Text(10);
    j.s3_url = q.Text(11);
    j.error = q.Text(12);
    j.error_code = q.Text(13);
    j.audio.duration_seconds = q.Real(14);
    j.audio.sample_rate = static_cast<int>(q.Int(15));
    j.audio.channels = static_cast<int>(q.Int(16));
    j.has_preview = q.Int(17) != 0;
    j.attempts = static_cast<int>(q.Int(18));
    j.lease_owner = q.Text(19);
    j.lease_expires_at = q.Int(20);
    j.paid = q.Int(21) != 0;
    j.paid_intent_id = q.Text(22);
    j.paid_at = q.Int(23);
    j.payment_status = q.Text(24);
    j.idempotency_key = q.Text(25);
    j.request_hash = q.Text(26);
    j.version = q.Int(27);
    j.price_cents = q.Int(28);
    j.cancel_requested = q.Int(29) != 0;
    return j;
}

std::optional<Job> GetWith(SqliteConnection& conn, const std::string& id) {
    Query q(conn, std::string("SELECT ") + kJobColumns + " FROM jobs WHERE id = ?");
    q.Bind(id);
    if (!q.Step()) return std::nullopt;
    return ReadJob(q);
}

/// The one statement that makes a job canceled (see JobQueue::MarkCanceled).
bool MarkCanceledWith(SqliteConnection& conn, const std::string& id, const std::string& owner,
                      int64_t now, int64_t expires_at) {
    return Query(conn,
                 "UPDATE jobs SET status = 'canceled', completed_at = ?, updated_at = ?, "
                 "expires_at = ?, lease_owner = '', lease_expires_at = 0, output_file = '', "
                 "has_preview = 0, version = version + 1 WHERE id = ? AND ((? = '' AND status = "
                 "'queued') OR (? <> '' AND status = 'processing' AND lease_owner = ?))")
               .Bind(now)
               .Bind(now)
               .Bind(expires_at)
               .Bind(id)
               .Bind(owner)
               .Bind(owner)
               .Bind(owner)
               .Run() == 1;
}

}  // namespace

SqliteJobStore::SqliteJobStore(const std::filesystem::path& path)
    : path_(path),
      renderer_([](const Job& job) { return StatusDocument(core::Config{}, job, std::nullopt); }),
      pool_(
          {.max_idle = 16}, [this] { return std::make_unique<SqliteConnection>(path_); },
          // A connection whose ROLLBACK failed is still in its transaction: drop it.
          [](SqliteConnection& conn) { return sqlite3_get_autocommit(conn.db()) != 0; }) {
    if (path.has_parent_path()) {
        std::error_code ec;
        std::filesystem::create_directories(path.parent_path(), ec);
        if (ec) {
            throw core::Error(
                core::ErrorCode::kInternal,
                "cannot create directory " + path.parent_path().string() + ": " + ec.message());
        }
    }
    auto conn = pool_.Acquire();
    conn->Exec("CREATE TABLE IF NOT EXISTS schema_version (version INTEGER NOT NULL)");
    Transaction tx(*conn);
    int version = 0;
    {
        Query q(*conn, "SELECT version FROM schema_version");
        if (q.Step()) {
            version = static_cast<int>(q.Int(0));
        } else {
            Query(*conn, "INSERT INTO schema_version (version) VALUES (0)").Run();
        }
    }
    const int latest = static_cast<int>(std::size(kMigrations));
    if (version > latest) {
        throw core::Error(core::ErrorCode::kInternal,
                          "database " + path.string() + " has schema version " +
                              std::to_string(version) + ", newer than this songd (" +
                              std::to_string(latest) + "); upgrade songd");
    }
    for (int v = version; v < latest; ++v) conn->Exec(kMigrations[v]);
    Query(*conn, "UPDATE schema_version SET version = ?").Bind(latest).Run();
    tx.Commit();
}

SqliteJobStore::~SqliteJobStore() = default;

int SqliteJobStore::SchemaVersion() {
    auto conn = pool_.Acquire();
    Query q(*conn, "SELECT version FROM schema_version");
    return q.Step() ? static_cast<int>(q.Int(0)) : 0;
}

CreateResult SqliteJobStore::Create(const Job& job) {
    auto conn = pool_.Acquire();
    Transaction tx(*conn);
    if (!job.idempotency_key.empty()) {
        Query q(*conn,
                std::string("SELECT ") + kJobColumns + " FROM jobs WHERE idempotency_key = ?");
        q.Bind(job.idempotency_key);
        if (q.Step()) {
            Job existing = ReadJob(q);
            if (existing.request_hash != job.request_hash) {
                throw core::Error(core::ErrorCode::kConflict,
                                  "Idempotency-Key was already used with a different request");
            }
            return {existing, false};
        }
    }
    Query(*conn,
          "INSERT INTO jobs (id, status, request, seed, created_at, updated_at, idempotency_key, "
          "request_hash, version, price_cents) VALUES (?, 'queued', ?, ?, ?, ?, ?, ?, 1, ?)")
        .Bind(job.id)
        .Bind(RequestToJson(job.request))
        .Bind(static_cast<int64_t>(job.seed))
        .Bind(job.created_at)
        .Bind(job.created_at)
        .BindNullIfEmpty(job.idempotency_key)
        .Bind(job.request_hash)
        .Bind(job.price_cents)
        .Run();
    auto stored = GetWith(*conn, job.id);
    tx.Commit();
    return {*stored, true};
}

std::optional<Job> SqliteJobStore::Get(const std::string& id) {
    auto conn = pool_.Acquire();
    return GetWith(*conn, id);
}

int64_t SqliteJobStore::QueuePosition(const std::string& id) {
    auto conn = pool_.Acquire();
    Query q(
        *conn,
        "SELECT COUNT(*) FROM jobs j, (SELECT created_at, rowid AS r FROM jobs WHERE id = ? AND "
        "status = 'queued') me WHERE j.status = 'queued' AND (j.created_at < me.created_at OR "
        "(j.created_at = me.created_at AND j.rowid <= me.r))");
    q.Bind(id);
    return q.Step() ? q.Int(0) : 0;
}

QueueStats SqliteJobStore::Stats() {
    auto conn = pool_.Acquire();
    Query q(*conn, "SELECT status, COUNT(*) FROM jobs GROUP BY status");
    QueueStats s;
    while (q.Step()) {
        auto status = ParseJobStatus(q.Text(0));
        int64_t n = q.Int(1);
        if (status) s.Add(*status, n);
    }
    return s;
}

std::optional<Job> SqliteJobStore::Claim(const std::string& owner, int64_t now, int64_t lease_ms) {
    auto conn = pool_.Acquire();
    Transaction tx(*conn);
    std::string id;
    {
        Query q(*conn,
                "SELECT id FROM jobs WHERE status = 'queued' ORDER BY created_at, rowid LIMIT 1");
        if (!q.Step()) return std::nullopt;
        id = q.Text(0);
    }
    Query(*conn,
          "UPDATE jobs SET status = 'processing', attempts = attempts + 1, lease_owner = ?, "
          "lease_expires_at = ?, started_at = ?, progress = 0, updated_at = ?, "
          "version = version + 1 WHERE id = ?")
        .Bind(owner)
        .Bind(now + lease_ms)
        .Bind(now)
        .Bind(now)
        .Bind(id)
        .Run();
    auto job = GetWith(*conn, id);
    if (job) EnqueueWebhook(*conn, *job, "start", now);
    tx.Commit();
    return job;
}

bool SqliteJobStore::RenewLease(const std::string& id, const std::string& owner, int64_t until) {
    auto conn = pool_.Acquire();
    return Query(*conn,
                 "UPDATE jobs SET lease_expires_at = ? WHERE id = ? AND status = 'processing' AND "
                 "lease_owner = ?")
               .Bind(until)
               .Bind(id)
               .Bind(owner)
               .Run() == 1;
}

bool SqliteJobStore::SetProgress(const std::string& id, const std::string& owner, int progress) {
    auto conn = pool_.Acquire();
    Transaction tx(*conn);
    const bool changed = Query(*conn,
                               "UPDATE jobs SET progress = ?, version = version + 1 WHERE id = ? "
                               "AND status = 'processing' AND lease_owner = ? AND progress <> ?")
                             .Bind(progress)
                             .Bind(id)
                             .Bind(owner)
                             .Bind(progress)
                             .Run() == 1;
    if (changed) {
        auto job = GetWith(*conn, id);
        if (job && WantsWebhook(*job, "progress")) {
            const int64_t now = core::NowMillis();
            // At most one progress row per kProgressIntervalMs per job: the claim is part of
            // the UPDATE, so two writers cannot both take the same slot.
            const bool due = Query(*conn,
                                   "UPDATE jobs SET webhook_progress_at = ? WHERE id = ? AND "
                                   "webhook_progress_at <= ?")
                                 .Bind(now)
                                 .Bind(id)
                                 .Bind(now - kProgressIntervalMs)
                                 .Run() == 1;
            if (due) EnqueueWebhook(*conn, *job, "progress", now);
        }
    }
    tx.Commit();
    return changed;
}

bool SqliteJobStore::Complete(const std::string& id, const std::string& owner, const Completion& c,
                              int64_t now) {
    auto conn = pool_.Acquire();
    Transaction tx(*conn);
    const bool changed =
        Query(*conn,
              "UPDATE jobs SET status = 'completed', progress = 100, completed_at = ?, "
              "expires_at = ?, updated_at = ?, output_file = ?, duration_seconds = ?, "
              "sample_rate = ?, channels = ?, has_preview = ?, lease_owner = '', "
              "lease_expires_at = 0, error = '', error_code = '', version = version + 1 "
              "WHERE id = ? AND status = 'processing' AND lease_owner = ? AND "
              "cancel_requested = 0")
            .Bind(now)
            .Bind(c.expires_at)
            .Bind(now)
            .Bind(c.output_file)
            .Bind(c.audio.duration_seconds)
            .Bind(c.audio.sample_rate)
            .Bind(c.audio.channels)
            .Bind(c.has_preview ? 1 : 0)
            .Bind(id)
            .Bind(owner)
            .Run() == 1;
    if (changed) EnqueueWebhookFor(*conn, id, "completed", now);
    tx.Commit();
    return changed;
}

bool SqliteJobStore::Fail(const std::string& id, const std::string& owner, const std::string& code,
                          const std::string& message, int64_t now, int64_t expires_at) {
    auto conn = pool_.Acquire();
    Transaction tx(*conn);
    const bool changed =
        Query(*conn,
              "UPDATE jobs SET status = 'failed', completed_at = ?, updated_at = ?, "
              "expires_at = ?, error = ?, error_code = ?, "
              "lease_owner = '', lease_expires_at = 0, version = version + 1 "
              "WHERE id = ? AND status = 'processing' AND lease_owner = ?")
            .Bind(now)
            .Bind(now)
            .Bind(expires_at)
            .Bind(message)
            .Bind(code)
            .Bind(id)
            .Bind(owner)
            .Run() == 1;
    if (changed) EnqueueWebhookFor(*conn, id, "failed", now);
    tx.Commit();
    return changed;
}

bool SqliteJobStore::Release(const std::string& id, const std::string& owner) {
    auto conn = pool_.Acquire();
    return Query(
               *conn,
               "UPDATE jobs SET status = 'queued', attempts = MAX(attempts - 1, 0), progress = 0, "
               "started_at = 0, lease_owner = '', lease_expires_at = 0, version = version + 1 "
               "WHERE id = ? AND status = 'processing' AND lease_owner = ?")
               .Bind(id)
               .Bind(owner)
               .Run() == 1;
}

CancelOutcome SqliteJobStore::RequestCancel(const std::string& id, int64_t now, int64_t expires_at,
                                            Job* job) {
    auto conn = pool_.Acquire();
    Transaction tx(*conn);
    CancelOutcome outcome = CancelOutcome::kRequested;
    if (MarkCanceledWith(*conn, id, "", now, expires_at)) {
        EnqueueWebhookFor(*conn, id, "canceled", now);
        outcome = CancelOutcome::kCanceled;
    } else {
        Query(*conn,
              "UPDATE jobs SET cancel_requested = 1, updated_at = ?, version = version + 1 "
              "WHERE id = ? AND status = 'processing' AND cancel_requested = 0")
            .Bind(now)
            .Bind(id)
            .Run();
    }
    auto stored = GetWith(*conn, id);
    tx.Commit();
    if (!stored) return CancelOutcome::kNoSuchJob;
    if (job) *job = *stored;
    if (outcome == CancelOutcome::kCanceled) return outcome;
    return stored->status == JobStatus::kProcessing ? CancelOutcome::kRequested
                                                    : CancelOutcome::kFinished;
}

bool SqliteJobStore::MarkCanceled(const std::string& id, const std::string& owner, int64_t now,
                                  int64_t expires_at) {
    auto conn = pool_.Acquire();
    Transaction tx(*conn);
    const bool changed = MarkCanceledWith(*conn, id, owner, now, expires_at);
    if (changed) EnqueueWebhookFor(*conn, id, "canceled", now);
    tx.Commit();
    return changed;
}

std::vector<std::string> SqliteJobStore::CancelRequested(const std::vector<std::string>& ids) {
    std::vector<std::string> out;
    if (ids.empty()) return out;
    auto conn = pool_.Acquire();
    for (const auto& id : ids) {
        Query q(*conn, "SELECT 1 FROM jobs WHERE id = ? AND cancel_requested = 1");
        q.Bind(id);
        if (q.Step()) out.push_back(id);
    }
    return out;
}

int SqliteJobStore::RecoverExpiredLeases(int64_t now, int max_attempts, bool all_processing,
                                         int64_t fail_expires_at) {
    auto conn = pool_.Acquire();
    Transaction tx(*conn);
    const std::string where =
        all_processing ? "status = 'processing'" : "status = 'processing' AND lease_expires_at < ?";
    auto bind_now = [&](Query& q) -> Query& { return all_processing ? q : q.Bind(now); };
    int canceled = 0, failed = 0, requeued = 0;
    std::vector<std::string> failed_ids;
    {
        // A job whose cancel was asked for is not run again: it becomes canceled.
        std::vector<std::pair<std::string, std::string>> to_cancel;
        {
            Query q(*conn, "SELECT id, lease_owner FROM jobs WHERE " + where +
                               " AND cancel_requested = 1");
            bind_now(q);
            while (q.Step()) to_cancel.emplace_back(q.Text(0), q.Text(1));
        }
        for (const auto& [id, owner] : to_cancel) {
            if (MarkCanceledWith(*conn, id, owner, now, fail_expires_at)) {
                EnqueueWebhookFor(*conn, id, "canceled", now);
                ++canceled;
            }
        }
    }
    {
        Query q(*conn,
                "UPDATE jobs SET status = 'failed', completed_at = ?, expires_at = ?, "
                "updated_at = ?, error_code = 'worker_lost', error = 'the worker "
                "processing this job stopped ' || attempts || ' times; giving up', "
                "lease_owner = '', lease_expires_at = 0, version = version + 1 WHERE " +
                    where + " AND attempts >= ? RETURNING id");
        q.Bind(now).Bind(fail_expires_at).Bind(now);
        bind_now(q).Bind(max_attempts);
        while (q.Step()) failed_ids.push_back(q.Text(0));
        failed = static_cast<int>(failed_ids.size());
    }
    for (const auto& id : failed_ids) EnqueueWebhookFor(*conn, id, "failed", now);
    {
        Query q(*conn,
                "UPDATE jobs SET status = 'queued', progress = 0, started_at = 0, "
                "lease_owner = '', lease_expires_at = 0, updated_at = ?, "
                "version = version + 1 WHERE " +
                    where);
        q.Bind(now);
        bind_now(q);
        requeued = q.Run();
    }
    tx.Commit();
    return canceled + failed + requeued;
}

bool SqliteJobStore::SetS3Url(const std::string& id, const std::string& s3_url) {
    auto conn = pool_.Acquire();
    return Query(*conn, "UPDATE jobs SET s3_url = ?, version = version + 1 WHERE id = ?")
               .Bind(s3_url)
               .Bind(id)
               .Run() == 1;
}

BindResult SqliteJobStore::BindPayment(const std::string& id, const std::string& intent_id,
                                       int64_t now, int64_t keep_files_until) {
    auto conn = pool_.Acquire();
    Transaction tx(*conn);
    {
        Query q(*conn, "SELECT id FROM jobs WHERE paid_intent_id = ?");
        q.Bind(intent_id);
        if (q.Step())
            return q.Text(0) == id ? BindResult::kAlreadyBoundHere : BindResult::kBoundToOtherJob;
    }
    auto job = GetWith(*conn, id);
    if (!job) return BindResult::kNoSuchJob;
    if (job->paid) return BindResult::kJobAlreadyPaid;
    // The state check is part of the UPDATE: a job that is not deliverable is never bound.
    const int changed =
        Query(*conn,
              "UPDATE jobs SET paid = 1, paid_intent_id = ?, paid_at = ?, payment_status = "
              "'succeeded', expires_at = MAX(expires_at, ?), version = version + 1 WHERE id = ? "
              "AND paid = 0 AND status = 'completed' AND expires_at > ?")
            .Bind(intent_id)
            .Bind(now)
            .Bind(keep_files_until)
            .Bind(id)
            .Bind(now)
            .Run();
    if (changed != 1) return BindResult::kJobNotPayable;
    tx.Commit();
    return BindResult::kBound;
}

bool SqliteJobStore::SetPaymentStatus(const std::string& id, const std::string& status) {
    auto conn = pool_.Acquire();
    return Query(*conn,
                 "UPDATE jobs SET payment_status = ?, version = version + 1 WHERE id = ? AND paid "
                 "= 0")
               .Bind(status)
               .Bind(id)
               .Run() == 1;
}

bool SqliteJobStore::RecordEvent(const std::string& event_id, int64_t now) {
    auto conn = pool_.Acquire();
    return Query(*conn, "INSERT OR IGNORE INTO webhook_events (id, received_at) VALUES (?, ?)")
               .Bind(event_id)
               .Bind(now)
               .Run() == 1;
}

void SqliteJobStore::ForgetEvent(const std::string& event_id) {
    auto conn = pool_.Acquire();
    Query(*conn, "DELETE FROM webhook_events WHERE id = ?").Bind(event_id).Run();
}

bool SqliteJobStore::HasEvent(const std::string& event_id) {
    auto conn = pool_.Acquire();
    Query q(*conn, "SELECT 1 FROM webhook_events WHERE id = ?");
    q.Bind(event_id);
    return q.Step();
}

std::vector<ExpiringJob> SqliteJobStore::DueForExpiry(int64_t now, const ExpiryCursor& after,
                                                      int limit) {
    auto conn = pool_.Acquire();
    Query q(*conn,
            "SELECT id, status, output_file, s3_url, expires_at FROM jobs WHERE status IN "
            "('completed', 'failed', 'canceled') AND expires_at <= ? AND expires_at >= ? AND "
            "(expires_at > ? OR id > ?) ORDER BY expires_at, id LIMIT ?");
    q.Bind(now).Bind(after.expires_at).Bind(after.expires_at).Bind(after.id).Bind(limit);
    std::vector<ExpiringJob> out;
    while (q.Step()) {
        out.push_back({q.Text(0), ParseJobStatus(q.Text(1)).value_or(JobStatus::kFailed), q.Text(2),
                       q.Text(3), q.Int(4)});
    }
    return out;
}

bool SqliteJobStore::MarkExpired(const std::string& id, int64_t now) {
    auto conn = pool_.Acquire();
    Transaction tx(*conn);
    const bool changed = Query(*conn,
                               "UPDATE jobs SET status = 'expired', updated_at = ?, "
                               "version = version + 1 WHERE id = ? AND status IN ('completed', "
                               "'failed')")
                             .Bind(now)
                             .Bind(id)
                             .Run() == 1;
    if (changed) EnqueueWebhookFor(*conn, id, "expired", now);
    tx.Commit();
    return changed;
}

bool SqliteJobStore::DeleteJob(const std::string& id) {
    auto conn = pool_.Acquire();
    return Query(*conn, "DELETE FROM jobs WHERE id = ?").Bind(id).Run() == 1;
}

void SqliteJobStore::ExpireBatch(const std::vector<std::string>& expire,
                                 const std::vector<std::string>& remove, int64_t now) {
    auto conn = pool_.Acquire();
    Transaction tx(*conn);  // one fsync for the batch
    for (const auto& id : expire) {
        if (Query(*conn,
                  "UPDATE jobs SET status = 'expired', updated_at = ?, version = version + 1 "
                  "WHERE id = ? AND status IN ('completed', 'failed')")
                .Bind(now)
                .Bind(id)
                .Run() == 1) {
            EnqueueWebhookFor(*conn, id, "expired", now);
        }
    }
    for (const auto& id : remove) Query(*conn, "DELETE FROM jobs WHERE id = ?").Bind(id).Run();
    tx.Commit();
}

std::vector<std::string> SqliteJobStore::CompletedWithoutS3(int limit) {
    auto conn = pool_.Acquire();
    Query q(*conn,
            "SELECT id FROM jobs WHERE status = 'completed' AND s3_url = '' ORDER BY completed_at "
            "LIMIT ?");
    q.Bind(limit);
    std::vector<std::string> out;
    while (q.Step()) out.push_back(q.Text(0));
    return out;
}

std::vector<Job> SqliteJobStore::ListByStatus(JobStatus status, const std::string& after_id,
                                              int limit) {
    auto conn = pool_.Acquire();
    Query q(*conn, std::string("SELECT ") + kJobColumns +
                       " FROM jobs WHERE status = ? AND id > ? ORDER BY id LIMIT ?");
    q.Bind(JobStatusName(status)).Bind(after_id).Bind(limit);
    std::vector<Job> out;
    while (q.Step()) out.push_back(ReadJob(q));
    return out;
}

bool SqliteJobStore::Exists(const std::string& id) {
    auto conn = pool_.Acquire();
    Query q(*conn, "SELECT 1 FROM jobs WHERE id = ?");
    q.Bind(id);
    return q.Step();
}

std::optional<std::string> SqliteJobStore::GetState(const std::string& key) {
    auto conn = pool_.Acquire();
    Query q(*conn, "SELECT value FROM service_state WHERE key = ?");
    q.Bind(key);
    if (!q.Step()) return std::nullopt;
    return q.Text(0);
}

void SqliteJobStore::SetState(const std::string& key, const std::string& value) {
    auto conn = pool_.Acquire();
    Query(*conn,
          "INSERT INTO service_state (key, value) VALUES (?, ?) ON CONFLICT(key) DO UPDATE SET "
          "value = excluded.value")
        .Bind(key)
        .Bind(value)
        .Run();
}

bool SqliteJobStore::TryLock(const std::string& name, const std::string& owner, int64_t now,
                             int64_t until) {
    auto conn = pool_.Acquire();
    return Query(*conn,
                 "INSERT INTO locks (name, owner, until) VALUES (?, ?, ?) ON CONFLICT(name) DO "
                 "UPDATE SET owner = excluded.owner, until = excluded.until "
                 "WHERE locks.until < ? OR locks.owner = excluded.owner")
               .Bind(name)
               .Bind(owner)
               .Bind(until)
               .Bind(now)
               .Run() == 1;
}

void SqliteJobStore::Unlock(const std::string& name, const std::string& owner) {
    auto conn = pool_.Acquire();
    Query(*conn, "DELETE FROM locks WHERE name = ? AND owner = ?").Bind(name).Bind(owner).Run();
}

// Client webhooks (jobs/webhook_outbox.h).

void SqliteJobStore::SetWebhookRenderer(BodyRenderer renderer) { renderer_ = std::move(renderer); }

void SqliteJobStore::EnqueueWebhook(SqliteConnection& conn, const Job& job, const char* event,
                                    int64_t now) {
    if (!WantsWebhook(job, event)) return;
    Query(conn,
          "INSERT INTO webhook_outbox (id, job_id, event, url, body, created_at, "
          "next_attempt_at) VALUES (?, ?, ?, ?, ?, ?, ?)")
        .Bind(NewWebhookId())
        .Bind(job.id)
        .Bind(event)
        .Bind(job.request.webhook_url)
        .Bind(renderer_(job))
        .Bind(now)
        .Bind(now)
        .Run();
}

void SqliteJobStore::EnqueueWebhookFor(SqliteConnection& conn, const std::string& id,
                                       const char* event, int64_t now) {
    if (auto job = GetWith(conn, id)) EnqueueWebhook(conn, *job, event, now);
}

std::vector<WebhookDelivery> SqliteJobStore::ClaimWebhooks(const std::string& owner, int64_t now,
                                                           int64_t lease_ms, int limit) {
    auto conn = pool_.Acquire();
    {
        // A read first: the poll of an idle outbox never takes the write lock.
        Query due(*conn, "SELECT 1 FROM webhook_outbox WHERE next_attempt_at <= ? LIMIT 1");
        due.Bind(now);
        if (!due.Step()) return {};
    }
    Query q(*conn,
            "UPDATE webhook_outbox SET attempts = attempts + 1, next_attempt_at = ?, "
            "claim_owner = ? WHERE id IN (SELECT id FROM webhook_outbox WHERE next_attempt_at <= "
            "? ORDER BY next_attempt_at, created_at LIMIT ?) "
            "RETURNING id, job_id, event, url, body, created_at, attempts");
    q.Bind(now + lease_ms).Bind(owner).Bind(now).Bind(limit);
    std::vector<WebhookDelivery> out;
    while (q.Step()) {
        out.push_back({q.Text(0), q.Text(1), q.Text(2), q.Text(3), q.Text(4), q.Int(5),
                       static_cast<int>(q.Int(6))});
    }
    return out;
}

bool SqliteJobStore::FinishWebhook(const std::string& id, const std::string& owner) {
    auto conn = pool_.Acquire();
    return Query(*conn, "DELETE FROM webhook_outbox WHERE id = ? AND claim_owner = ?")
               .Bind(id)
               .Bind(owner)
               .Run() == 1;
}

bool SqliteJobStore::RetryWebhook(const std::string& id, const std::string& owner,
                                  int64_t next_attempt_at, const std::string& error) {
    auto conn = pool_.Acquire();
    return Query(*conn,
                 "UPDATE webhook_outbox SET next_attempt_at = ?, last_error = ?, claim_owner = '' "
                 "WHERE id = ? AND claim_owner = ?")
               .Bind(next_attempt_at)
               .Bind(error)
               .Bind(id)
               .Bind(owner)
               .Run() == 1;
}

bool SqliteJobStore::ReleaseWebhook(const std::string& id, const std::string& owner,
                                    int64_t next_attempt_at) {
    auto conn = pool_.Acquire();
    return Query(*conn,
                 "UPDATE webhook_outbox SET next_attempt_at = ?, attempts = MAX(attempts - 1, 0), "
                 "claim_owner = '' WHERE id = ? AND claim_owner = ?")
               .Bind(next_attempt_at)
               .Bind(id)
               .Bind(owner)
               .Run() == 1;
}

int64_t SqliteJobStore::WebhookOutboxDepth() {
    auto conn = pool_.Acquire();
    Query q(*conn, "SELECT COUNT(*) FROM webhook_outbox");
    return q.Step() ? q.Int(0) : 0;
}

// Uploads (reference songs).

namespace {

constexpr const char* kUploadColumns =
    "id, file, format, s3_key, size_bytes, duration_seconds, sample_rate, channels, tempo_bpm, "
    "musical_key, created_at, expires_at";

Upload ReadUpload(Query& q) {
    Upload u;
    u.id = q.Text(0);
    u.file = q.Text(1);
    u.format = q.Text(2);
    u.s3_key = q.Text(3);
    u.size_bytes = q.Int(4);
    u.duration_seconds = q.Real(5);
    u.sample_rate = static_cast<int>(q.Int(6));
    u.channels = static_cast<int>(q.Int(7));
    u.tempo_bpm = q.Real(8);
    u.key = q.Text(9);
    u.created_at = q.Int(10);
    u.expires_at = q.Int(11);
    return u;
}

}  // namespace

void SqliteJobStore::PutUpload(const Upload& u) {
    auto conn = pool_.Acquire();
    Query(*conn, std::string("INSERT INTO uploads (") + kUploadColumns +
                     ") VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)")
        .Bind(u.id)
        .Bind(u.file)
        .Bind(u.format)
        .Bind(u.s3_key)
        .Bind(u.size_bytes)
        .Bind(u.duration_seconds)
        .Bind(u.sample_rate)
        .Bind(u.channels)
        .Bind(u.tempo_bpm)
        .Bind(u.key)
        .Bind(u.created_at)
        .Bind(u.expires_at)
        .Run();
}

std::optional<Upload> SqliteJobStore::GetUpload(const std::string& id) {
    auto conn = pool_.Acquire();
    Query q(*conn, std::string("SELECT ") + kUploadColumns + " FROM uploads WHERE id = ?");
    q.Bind(id);
    if (!q.Step()) return std::nullopt;
    return ReadUpload(q);
}

std::vector<Upload> SqliteJobStore::UploadsDueForExpiry(int64_t now, int limit) {
    auto conn = pool_.Acquire();
    Query q(*conn, std::string("SELECT ") + kUploadColumns +
                       " FROM uploads WHERE expires_at <= ? ORDER BY expires_at, id LIMIT ?");
    q.Bind(now).Bind(limit);
    std::vector<Upload> out;
    while (q.Step()) out.push_back(ReadUpload(q));
    return out;
}

bool SqliteJobStore::DeleteUpload(const std::string& id) {
    auto conn = pool_.Acquire();
    return Query(*conn, "DELETE FROM uploads WHERE id = ?").Bind(id).Run() == 1;
}

}  // namespace songd::jobs
