#include "jobs/pg_store.h"

#include <algorithm>
#include <chrono>
#include <optional>

#include "core/clock.h"
#include "core/error.h"
#include "jobs/request_json.h"
#include "jobs/status_document.h"

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
        created_at BIGINT NOT NULL,
        next_attempt_at BIGINT NOT NULL,
        attempts INTEGER NOT NULL DEFAULT 0,
        claim_owner TEXT NOT NULL DEFAULT '',
        last_error TEXT NOT NULL DEFAULT ''
    );
    CREATE INDEX webhook_outbox_due ON webhook_outbox (next_attempt_at);
    ALTER TABLE jobs ADD COLUMN webhook_progress_at BIGINT NOT NULL DEFAULT 0;
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
        id TEXT COLLATE "C" PRIMARY KEY,
        file TEXT NOT NULL,
        format TEXT NOT NULL,
        s3_key TEXT NOT NULL DEFAULT '',
        size_bytes BIGINT NOT NULL,
        duration_seconds DOUBLE PRECISION NOT NULL,
        sample_rate INTEGER NOT NULL,
        channels INTEGER NOT NULL,
        tempo_bpm DOUBLE PRECISION NOT NULL,
        musical_key TEXT NOT NULL,
        created_at BIGINT NOT NULL,
        expires_at BIGINT NOT NULL
    );
    CREATE INDEX uploads_expiry ON uploads (expires_at);
    )sql",
};

// Any constant works as long as every songd uses the same one: it serializes migrations.
constexpr const char* kMigrationLockKey = "7250321946";

constexpr const char* kJobColumns =
    "id, status, request, seed, created_at, started_at, completed_at, expires_at, updated_at, "
    "progress, output_file, s3_url, error, error_code, duration_seconds, sample_rate, channels, "
    "has_preview, attempts, lease_owner, lease_expires_at, paid, paid_intent_id, paid_at, "
    "payment_status, idempotency_key, request_hash, version, price_cents, cancel_requested";

constexpr std::chrono::seconds kPoolWait{30};

/// PostgreSQL's clock in milliseconds since the epoch (clock_timestamp: the time of the call,
/// not of the transaction start).
constexpr const char* kDbNowMillis = "(EXTRACT(EPOCH FROM clock_timestamp()) * 1000)::bigint";

/// SQL for a lease's end, from parameter `param`: the caller's absolute time (kCaller), or a
/// duration added to the database's now (kDatabase).
std::string LeaseEnd(PgJobStore::LeaseClock clock, const char* param) {
    if (clock == PgJobStore::LeaseClock::kCaller) return std::string(param) + "::bigint";
    return std::string("(") + kDbNowMillis + " + " + param + "::bigint)";
}

Job ReadJob(const PgResult& r, int row) {
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
    j.cancel_requested = r.Int(row, 29) != 0;
    return j;
}

std::optional<Job> GetWith(PgConnection& conn, const std::string& id) {
    auto r = conn.Exec(std::string("SELECT ") + kJobColumns + " FROM jobs WHERE id = $1",
                       PgParams().Add(id));
    if (r.Rows() == 0) return std::nullopt;
    return ReadJob(r, 0);
}

/// The one statement that makes a job canceled (see JobQueue::MarkCanceled).
bool MarkCanceledWith(PgConnection& conn, const std::string& id, const std::string& owner,
                      int64_t now, int64_t expires_at) {
    return conn.Exec(
                   "UPDATE jobs SET status = 'canceled', completed_at = $1, updated_at = $1, "
                   "expires_at = $2, lease_owner = '', lease_expires_at = 0, output_file = '', "
                   "has_preview = 0, version = version + 1 WHERE id = $3 AND (($4 = '' AND "
                   "status = 'queued') OR ($4 <> '' AND status = 'processing' AND "
                   "lease_owner = $4))",
                   PgParams().Add(now).Add(expires_at).Add(id).Add(owner))
               .Changed() == 1;
}

}  // namespace

PgJobStore::PgJobStore(std::string url, int pool_size, LeaseClock lease_clock)
    : target_(PgTarget::Parse(url)),
      pool_size_(pool_size < 1 ? 1 : pool_size),
      lease_clock_(lease_clock),
      renderer_([](const Job& job) { return StatusDocument(core::Config{}, job, std::nullopt); }),
      pool_(
          {.max_open = static_cast<size_t>(pool_size_),
           .max_idle = static_cast<size_t>(pool_size_),
           .wait = kPoolWait,
           .exhausted_message = "all " + std::to_string(pool_size_) +
                                " PostgreSQL connections stayed busy for " +
                                std::to_string(kPoolWait.count()) + " s"},
          [this] { return std::make_unique<PgConnection>(target_); },
          // A connection that broke (a server restart while it sat idle) or is stuck in a
          // transaction is dropped; the pool opens a fresh one in its place.
          [](PgConnection& conn) { return conn.Reusable(); }) {
    Migrate();
}

PgJobStore::~PgJobStore() = default;

int PgJobStore::OpenConnections() { return static_cast<int>(pool_.Open()); }

void PgJobStore::Migrate() {
    auto conn = pool_.Acquire();
    PgTransaction tx(*conn);
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
                          "PostgreSQL database at " + target_.where + " has schema version " +
                              std::to_string(version) + ", newer than this songd (" +
                              std::to_string(latest) + "); upgrade songd");
    }
    for (int v = version; v < latest; ++v) conn->Command(kMigrations[v]);
    conn->Exec("UPDATE schema_version SET version = $1", PgParams().Add(latest));
    tx.Commit();
}

int PgJobStore::SchemaVersion() {
    auto conn = pool_.Acquire();
    auto r = conn->Exec("SELECT version FROM schema_version");
    return r.Rows() > 0 ? static_cast<int>(r.Int(0, 0)) : 0;
}

CreateResult PgJobStore::Create(const Job& job) {
    auto conn = pool_.Acquire();
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
            PgParams()
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
            PgParams().Add(job.idempotency_key));
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
    auto conn = pool_.Acquire();
    return GetWith(*conn, id);
}

int64_t PgJobStore::QueuePosition(const std::string& id) {
    auto conn = pool_.Acquire();
    auto r = conn->Exec(
        "SELECT COUNT(*) FROM jobs j, (SELECT created_at, seq FROM jobs WHERE id = $1 AND "
        "status = 'queued') me WHERE j.status = 'queued' AND (j.created_at, j.seq) <= "
        "(me.created_at, me.seq)",
        PgParams().Add(id));
    return r.Rows() > 0 ? r.Int(0, 0) : 0;
}

QueueStats PgJobStore::Stats() {
    auto conn = pool_.Acquire();
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
    auto conn = pool_.Acquire();
    PgTransaction tx(*conn);
    // SKIP LOCKED: a job another node is claiming right now is passed over, never shared.
    auto r = conn->Exec(
        std::string("UPDATE jobs SET status = 'processing', attempts = attempts + 1, "
                    "lease_owner = $1, lease_expires_at = " +
                    LeaseEnd(lease_clock_, "$2") +
                    ", started_at = $3, progress = 0, "
                    "updated_at = $3, version = version + 1 WHERE id = (SELECT id FROM jobs "
                    "WHERE status = 'queued' ORDER BY created_at, seq FOR UPDATE SKIP LOCKED "
                    "LIMIT 1) AND status = 'queued' RETURNING ") +
            kJobColumns,
        PgParams()
            .Add(owner)
            .Add(lease_clock_ == LeaseClock::kDatabase ? lease_ms : now + lease_ms)
            .Add(now));
    if (r.Rows() == 0) return std::nullopt;
    Job job = ReadJob(r, 0);
    EnqueueWebhook(*conn, job, "start", now);
    tx.Commit();
    return job;
}

bool PgJobStore::RenewLease(const std::string& id, const std::string& owner, int64_t until) {
    // The caller's `until` is its clock's now + the lease; on the database's clock what is
    // left of it runs from the database's now.
    const int64_t end = lease_clock_ == LeaseClock::kDatabase
                            ? std::max<int64_t>(0, until - core::NowMillis())
                            : until;
    auto conn = pool_.Acquire();
    return conn->Exec("UPDATE jobs SET lease_expires_at = " + LeaseEnd(lease_clock_, "$1") +
                          " WHERE id = $2 AND status = 'processing' AND lease_owner = $3",
                      PgParams().Add(end).Add(id).Add(owner))
               .Changed() == 1;
}

bool PgJobStore::SetProgress(const std::string& id, const std::string& owner, int progress) {
    auto conn = pool_.Acquire();
    PgTransaction tx(*conn);
    auto r = conn->Exec(std::string("UPDATE jobs SET progress = $1, version = version + 1 WHERE "
                                    "id = $2 AND status = 'processing' AND lease_owner = $3 AND "
                                    "progress <> $1 RETURNING ") +
                            kJobColumns,
                        PgParams().Add(progress).Add(id).Add(owner));
    if (r.Rows() == 0) return false;
    const Job job = ReadJob(r, 0);
    if (WantsWebhook(job, "progress")) {
        const int64_t now = core::NowMillis();
        // At most one progress row per kProgressIntervalMs per job: the slot is taken by the
        // UPDATE (the row is locked already), so two writers cannot both take it.
        const bool due = conn->Exec(
                                 "UPDATE jobs SET webhook_progress_at = $1 WHERE id = $2 AND "
                                 "webhook_progress_at <= $3",
                                 PgParams().Add(now).Add(id).Add(now - kProgressIntervalMs))
                             .Changed() == 1;
        if (due) EnqueueWebhook(*conn, job, "progress", now);
    }
    tx.Commit();
    return true;
}

bool PgJobStore::Complete(const std::string& id, const std::string& owner, const Completion& c,
                          int64_t now) {
    auto conn = pool_.Acquire();
    PgTransaction tx(*conn);
    const bool changed =
        conn->Exec(
                "UPDATE jobs SET status = 'completed', progress = 100, completed_at = $1, "
                "expires_at = $2, updated_at = $1, output_file = $3, "
                "duration_seconds = $4, sample_rate = $5, channels = $6, has_preview = $7, "
                "lease_owner = '', lease_expires_at = 0, error = '', error_code = '', "
                "version = version + 1 "
                "WHERE id = $8 AND status = 'processing' AND lease_owner = $9 AND "
                "cancel_requested = 0",
                PgParams()
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
    if (changed) EnqueueWebhookFor(*conn, id, "completed", now);
    tx.Commit();
    return changed;
}

bool PgJobStore::Fail(const std::string& id, const std::string& owner, const std::string& code,
                      const std::string& message, int64_t now, int64_t expires_at) {
    auto conn = pool_.Acquire();
    PgTransaction tx(*conn);
    const bool changed =
        conn->Exec(
                "UPDATE jobs SET status = 'failed', completed_at = $1, updated_at = $1, "
                "expires_at = $2, error = $3, error_code = $4, "
                "lease_owner = '', lease_expires_at = 0, version = version + 1 "
                "WHERE id = $5 AND status = 'processing' AND lease_owner = $6",
                PgParams()
                    .Add(now)
                    .Add(expires_at)
                    .Add(PgStorableText(message))
                    .Add(PgStorableText(code))
                    .Add(id)
                    .Add(owner))
            .Changed() == 1;
    if (changed) EnqueueWebhookFor(*conn, id, "failed", now);
    tx.Commit();
    return changed;
}

bool PgJobStore::Release(const std::string& id, const std::string& owner) {
    auto conn = pool_.Acquire();
    return conn->Exec(
                   "UPDATE jobs SET status = 'queued', attempts = GREATEST(attempts - 1, 0), "
                   "progress = 0, started_at = 0, lease_owner = '', lease_expires_at = 0, "
                   "version = version + 1 "
                   "WHERE id = $1 AND status = 'processing' AND lease_owner = $2",
                   PgParams().Add(id).Add(owner))
               .Changed() == 1;
}

CancelOutcome PgJobStore::RequestCancel(const std::string& id, int64_t now, int64_t expires_at,
                                        Job* job) {
    auto conn = pool_.Acquire();
    // Each statement locks the row: a claim racing this cancel either sees it canceled or
    // has made it processing, which the second statement then marks.
    CancelOutcome outcome = CancelOutcome::kRequested;
    PgTransaction tx(*conn);  // the canceled state and its webhook row commit together
    if (MarkCanceledWith(*conn, id, "", now, expires_at)) {
        EnqueueWebhookFor(*conn, id, "canceled", now);
        outcome = CancelOutcome::kCanceled;
    } else {
        conn->Exec(
            "UPDATE jobs SET cancel_requested = 1, updated_at = $1, version = version + 1 "
            "WHERE id = $2 AND status = 'processing' AND cancel_requested = 0",
            PgParams().Add(now).Add(id));
    }
    auto stored = GetWith(*conn, id);
    tx.Commit();
    if (!stored) return CancelOutcome::kNoSuchJob;
    if (job) *job = *stored;
    if (outcome == CancelOutcome::kCanceled) return outcome;
    return stored->status == JobStatus::kProcessing ? CancelOutcome::kRequested
                                                    : CancelOutcome::kFinished;
}

bool PgJobStore::MarkCanceled(const std::string& id, const std::string& owner, int64_t now,
                              int64_t expires_at) {
    auto conn = pool_.Acquire();
    PgTransaction tx(*conn);
    const bool changed = MarkCanceledWith(*conn, id, owner, now, expires_at);
    if (changed) EnqueueWebhookFor(*conn, id, "canceled", now);
    tx.Commit();
    return changed;
}

std::vector<std::string> PgJobStore::CancelRequested(const std::vector<std::string>& ids) {
    std::vector<std::string> out;
    if (ids.empty()) return out;
    // One query for every job this node holds: a text[] literal of the ids.
    std::string array = "{";
    for (const auto& id : ids) {
        if (array.size() > 1) array += ",";
        array += "\"";
        for (char c : id) {
            if (c == '"' || c == '\\') array += '\\';
            array += c;
        }
        array += "\"";
    }
    array += "}";
    auto conn = pool_.Acquire();
    auto r = conn->Exec("SELECT id FROM jobs WHERE id = ANY($1::text[]) AND cancel_requested = 1",
                        PgParams().Add(array));
    for (int row = 0; row < r.Rows(); ++row) out.push_back(r.Text(row, 0));
    return out;
}

int PgJobStore::RecoverExpiredLeases(int64_t now, int max_attempts, bool all_processing,
                                     int64_t fail_expires_at) {
    auto conn = pool_.Acquire();
    PgTransaction tx(*conn);
    // Rows are locked in id order and ones another node holds are skipped, so two nodes
    // recovering at once neither deadlock nor recover the same job twice.
    const std::string expired =
        all_processing
            ? "TRUE"
            : "lease_expires_at < " +
                  std::string(lease_clock_ == LeaseClock::kDatabase ? kDbNowMillis : "$1");
    // A job whose cancel was asked for is not run again: it becomes canceled.
    int canceled = 0;
    {
        auto asked = conn->Exec(
            "SELECT id, lease_owner FROM jobs WHERE status = 'processing' AND cancel_requested "
            "= 1 AND " +
                expired + " AND $1::bigint IS NOT NULL ORDER BY id FOR UPDATE SKIP LOCKED",
            PgParams().Add(now));
        for (int row = 0; row < asked.Rows(); ++row) {
            if (MarkCanceledWith(*conn, asked.Text(row, 0), asked.Text(row, 1), now,
                                 fail_expires_at)) {
                EnqueueWebhookFor(*conn, asked.Text(row, 0), "canceled", now);
                ++canceled;
            }
        }
    }
    const std::string pick = "id IN (SELECT id FROM jobs WHERE status = 'processing' AND " +
                             expired + " AND attempts >= $2 ORDER BY id FOR UPDATE SKIP LOCKED)";
    PgParams fail_params;
    fail_params.Add(now).Add(max_attempts).Add(fail_expires_at);
    auto failed_rows = conn->Exec(
        "UPDATE jobs SET status = 'failed', completed_at = $1, "
        "expires_at = $3, updated_at = $1, error_code = 'worker_lost', "
        "error = 'the worker processing this job stopped ' || attempts || "
        "' times; giving up', lease_owner = '', lease_expires_at = 0, "
        "version = version + 1 WHERE " +
            pick + " RETURNING id",
        fail_params);
    const int failed = failed_rows.Rows();
    for (int row = 0; row < failed; ++row) {
        EnqueueWebhookFor(*conn, failed_rows.Text(row, 0), "failed", now);
    }
    int requeued = conn->Exec(
                           "UPDATE jobs SET status = 'queued', progress = 0, started_at = 0, "
                           "lease_owner = '', lease_expires_at = 0, updated_at = $1, "
                           "version = version + 1 WHERE id IN (SELECT id FROM jobs WHERE status = "
                           "'processing' AND " +
                               expired + " ORDER BY id FOR UPDATE SKIP LOCKED)",
                           PgParams().Add(now))
                       .Changed();
    tx.Commit();
    return canceled + failed + requeued;
}

bool PgJobStore::SetS3Url(const std::string& id, const std::string& s3_url) {
    auto conn = pool_.Acquire();
    return conn->Exec("UPDATE jobs SET s3_url = $1, version = version + 1 WHERE id = $2",
                      PgParams().Add(s3_url).Add(id))
               .Changed() == 1;
}

BindResult PgJobStore::BindPayment(const std::string& id, const std::string& intent_id, int64_t now,
                                   int64_t keep_files_until) {
    auto conn = pool_.Acquire();
    // Two nodes binding one intent to two jobs both pass the first lookup; the UNIQUE
    // constraint on paid_intent_id fails the later UPDATE, and the retry then sees the winner.
    for (int attempt = 0; attempt < 3; ++attempt) {
        PgTransaction tx(*conn);
        auto bound =
            conn->Exec("SELECT id FROM jobs WHERE paid_intent_id = $1", PgParams().Add(intent_id));
        if (bound.Rows() > 0) {
            return bound.Text(0, 0) == id ? BindResult::kAlreadyBoundHere
                                          : BindResult::kBoundToOtherJob;
        }
        // Locking the job orders two binds to the same job: the second sees the first's.
        auto job = conn->Exec("SELECT paid, paid_intent_id FROM jobs WHERE id = $1 FOR UPDATE",
                              PgParams().Add(id));
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
                PgParams().Add(intent_id).Add(now).Add(id).Add(keep_files_until));
            if (changed.Changed() != 1) return BindResult::kJobNotPayable;
        } catch (const PgError& e) {
            if (e.sqlstate() == kPgUniqueViolation) continue;  // tx rolls back; look again
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
    auto conn = pool_.Acquire();
    return conn->Exec(
                   "UPDATE jobs SET payment_status = $1, version = version + 1 WHERE id = $2 "
                   "AND paid = 0",
                   PgParams().Add(status).Add(id))
               .Changed() == 1;
}

bool PgJobStore::RecordEvent(const std::string& event_id, int64_t now) {
    auto conn = pool_.Acquire();
    return conn->Exec(
                   "INSERT INTO webhook_events (id, received_at) VALUES ($1, $2) "
                   "ON CONFLICT (id) DO NOTHING",
                   PgParams().Add(event_id).Add(now))
               .Changed() == 1;
}

void PgJobStore::ForgetEvent(const std::string& event_id) {
    auto conn = pool_.Acquire();
    conn->Exec("DELETE FROM webhook_events WHERE id = $1", PgParams().Add(event_id));
}

bool PgJobStore::HasEvent(const std::string& event_id) {
    auto conn = pool_.Acquire();
    return conn->Exec("SELECT 1 FROM webhook_events WHERE id = $1", PgParams().Add(event_id))
               .Rows() > 0;
}

std::vector<ExpiringJob> PgJobStore::DueForExpiry(int64_t now, const ExpiryCursor& after,
                                                  int limit) {
    auto conn = pool_.Acquire();
    auto r = conn->Exec(
        "SELECT id, status, output_file, s3_url, expires_at FROM jobs WHERE status IN "
        "('completed', 'failed', 'canceled') AND expires_at <= $1 AND (expires_at, id) > ($2, $3) "
        "ORDER BY expires_at, id LIMIT $4",
        PgParams().Add(now).Add(after.expires_at).Add(after.id).Add(limit));
    std::vector<ExpiringJob> out;
    out.reserve(static_cast<size_t>(r.Rows()));
    for (int row = 0; row < r.Rows(); ++row) {
        out.push_back({r.Text(row, 0), ParseJobStatus(r.Text(row, 1)).value_or(JobStatus::kFailed),
                       r.Text(row, 2), r.Text(row, 3), r.Int(row, 4)});
    }
    return out;
}

bool PgJobStore::MarkExpired(const std::string& id, int64_t now) {
    auto conn = pool_.Acquire();
    PgTransaction tx(*conn);
    const bool changed =
        conn->Exec(
                "UPDATE jobs SET status = 'expired', updated_at = $1, "
                "version = version + 1 WHERE id = $2 AND status IN ('completed', 'failed')",
                PgParams().Add(now).Add(id))
            .Changed() == 1;
    if (changed) EnqueueWebhookFor(*conn, id, "expired", now);
    tx.Commit();
    return changed;
}

bool PgJobStore::DeleteJob(const std::string& id) {
    auto conn = pool_.Acquire();
    return conn->Exec("DELETE FROM jobs WHERE id = $1", PgParams().Add(id)).Changed() == 1;
}

void PgJobStore::ExpireBatch(const std::vector<std::string>& expire,
                             const std::vector<std::string>& remove, int64_t now) {
    auto conn = pool_.Acquire();
    PgTransaction tx(*conn);  // one commit for the batch
    for (const auto& id : expire) {
        if (conn->Exec("UPDATE jobs SET status = 'expired', updated_at = $1, "
                       "version = version + 1 WHERE id = $2 AND status IN ('completed', 'failed')",
                       PgParams().Add(now).Add(id))
                .Changed() == 1) {
            EnqueueWebhookFor(*conn, id, "expired", now);
        }
    }
    for (const auto& id : remove) conn->Exec("DELETE FROM jobs WHERE id = $1", PgParams().Add(id));
    tx.Commit();
}

std::vector<std::string> PgJobStore::CompletedWithoutS3(int limit) {
    auto conn = pool_.Acquire();
    auto r = conn->Exec(
        "SELECT id FROM jobs WHERE status = 'completed' AND s3_url = '' ORDER BY completed_at "
        "LIMIT $1",
        PgParams().Add(limit));
    std::vector<std::string> out;
    out.reserve(static_cast<size_t>(r.Rows()));
    for (int row = 0; row < r.Rows(); ++row) out.push_back(r.Text(row, 0));
    return out;
}

std::vector<Job> PgJobStore::ListByStatus(JobStatus status, const std::string& after_id,
                                          int limit) {
    auto conn = pool_.Acquire();
    auto r = conn->Exec(std::string("SELECT ") + kJobColumns +
                            " FROM jobs WHERE status = $1 AND id > $2 ORDER BY id LIMIT $3",
                        PgParams().Add(JobStatusName(status)).Add(after_id).Add(limit));
    std::vector<Job> out;
    out.reserve(static_cast<size_t>(r.Rows()));
    for (int row = 0; row < r.Rows(); ++row) out.push_back(ReadJob(r, row));
    return out;
}

bool PgJobStore::Exists(const std::string& id) {
    auto conn = pool_.Acquire();
    return conn->Exec("SELECT 1 FROM jobs WHERE id = $1", PgParams().Add(id)).Rows() > 0;
}

std::optional<std::string> PgJobStore::GetState(const std::string& key) {
    auto conn = pool_.Acquire();
    auto r = conn->Exec("SELECT value FROM service_state WHERE key = $1", PgParams().Add(key));
    if (r.Rows() == 0) return std::nullopt;
    return r.Text(0, 0);
}

void PgJobStore::SetState(const std::string& key, const std::string& value) {
    auto conn = pool_.Acquire();
    conn->Exec(
        "INSERT INTO service_state (key, value) VALUES ($1, $2) ON CONFLICT (key) DO "
        "UPDATE SET value = excluded.value",
        PgParams().Add(key).Add(value));
}

bool PgJobStore::TryLock(const std::string& name, const std::string& owner, int64_t now,
                         int64_t until) {
    auto conn = pool_.Acquire();
    return conn->Exec(
                   "INSERT INTO locks (name, owner, until) VALUES ($1, $2, $3) "
                   "ON CONFLICT (name) DO UPDATE SET owner = excluded.owner, "
                   "until = excluded.until "
                   "WHERE locks.until < $4 OR locks.owner = excluded.owner",
                   PgParams().Add(name).Add(owner).Add(until).Add(now))
               .Changed() == 1;
}

void PgJobStore::Unlock(const std::string& name, const std::string& owner) {
    auto conn = pool_.Acquire();
    conn->Exec("DELETE FROM locks WHERE name = $1 AND owner = $2", PgParams().Add(name).Add(owner));
}

// Client webhooks (jobs/webhook_outbox.h).

void PgJobStore::SetWebhookRenderer(BodyRenderer renderer) { renderer_ = std::move(renderer); }

void PgJobStore::EnqueueWebhook(PgConnection& conn, const Job& job, const char* event,
                                int64_t now) {
    if (!WantsWebhook(job, event)) return;
    conn.Exec(
        "INSERT INTO webhook_outbox (id, job_id, event, url, body, created_at, next_attempt_at) "
        "VALUES ($1, $2, $3, $4, $5, $6, $6)",
        PgParams()
            .Add(NewWebhookId())
            .Add(job.id)
            .Add(event)
            .Add(job.request.webhook_url)
            .Add(PgStorableText(renderer_(job)))
            .Add(now));
}

void PgJobStore::EnqueueWebhookFor(PgConnection& conn, const std::string& id, const char* event,
                                   int64_t now) {
    if (auto job = GetWith(conn, id)) EnqueueWebhook(conn, *job, event, now);
}

std::vector<WebhookDelivery> PgJobStore::ClaimWebhooks(const std::string& owner, int64_t now,
                                                       int64_t lease_ms, int limit) {
    auto conn = pool_.Acquire();
    // SKIP LOCKED: rows another node is claiming right now are passed over, never shared;
    // the new next_attempt_at keeps them from being claimed again while this node delivers.
    auto r = conn->Exec(
        "UPDATE webhook_outbox SET attempts = attempts + 1, next_attempt_at = $1, "
        "claim_owner = $2 WHERE id IN (SELECT id FROM webhook_outbox WHERE next_attempt_at <= $3 "
        "ORDER BY next_attempt_at, created_at LIMIT $4 FOR UPDATE SKIP LOCKED) "
        "RETURNING id, job_id, event, url, body, created_at, attempts",
        PgParams().Add(now + lease_ms).Add(owner).Add(now).Add(limit));
    std::vector<WebhookDelivery> out;
    out.reserve(static_cast<size_t>(r.Rows()));
    for (int row = 0; row < r.Rows(); ++row) {
        out.push_back({r.Text(row, 0), r.Text(row, 1), r.Text(row, 2), r.Text(row, 3),
                       r.Text(row, 4), r.Int(row, 5), static_cast<int>(r.Int(row, 6))});
    }
    return out;
}

bool PgJobStore::FinishWebhook(const std::string& id, const std::string& owner) {
    auto conn = pool_.Acquire();
    return conn->Exec("DELETE FROM webhook_outbox WHERE id = $1 AND claim_owner = $2",
                      PgParams().Add(id).Add(owner))
               .Changed() == 1;
}

bool PgJobStore::RetryWebhook(const std::string& id, const std::string& owner,
                              int64_t next_attempt_at, const std::string& error) {
    auto conn = pool_.Acquire();
    return conn->Exec(
                   "UPDATE webhook_outbox SET next_attempt_at = $1, last_error = $2, "
                   "claim_owner = '' WHERE id = $3 AND claim_owner = $4",
                   PgParams().Add(next_attempt_at).Add(PgStorableText(error)).Add(id).Add(owner))
               .Changed() == 1;
}

bool PgJobStore::ReleaseWebhook(const std::string& id, const std::string& owner,
                                int64_t next_attempt_at) {
    auto conn = pool_.Acquire();
    return conn->Exec(
                   "UPDATE webhook_outbox SET next_attempt_at = $1, "
                   "attempts = GREATEST(attempts - 1, 0), claim_owner = '' "
                   "WHERE id = $2 AND claim_owner = $3",
                   PgParams().Add(next_attempt_at).Add(id).Add(owner))
               .Changed() == 1;
}

int64_t PgJobStore::WebhookOutboxDepth() {
    auto conn = pool_.Acquire();
    auto r = conn->Exec("SELECT COUNT(*) FROM webhook_outbox");
    return r.Rows() > 0 ? r.Int(0, 0) : 0;
}

// Uploads (reference songs).

namespace {

constexpr const char* kUploadColumns =
    "id, file, format, s3_key, size_bytes, duration_seconds, sample_rate, channels, tempo_bpm, "
    "musical_key, created_at, expires_at";

Upload ReadUpload(const PgResult& r, int row) {
    Upload u;
    u.id = r.Text(row, 0);
    u.file = r.Text(row, 1);
    u.format = r.Text(row, 2);
    u.s3_key = r.Text(row, 3);
    u.size_bytes = r.Int(row, 4);
    u.duration_seconds = r.Real(row, 5);
    u.sample_rate = static_cast<int>(r.Int(row, 6));
    u.channels = static_cast<int>(r.Int(row, 7));
    u.tempo_bpm = r.Real(row, 8);
    u.key = r.Text(row, 9);
    u.created_at = r.Int(row, 10);
    u.expires_at = r.Int(row, 11);
    return u;
}

}  // namespace

void PgJobStore::PutUpload(const Upload& u) {
    auto conn = pool_.Acquire();
    conn->Exec(std::string("INSERT INTO uploads (") + kUploadColumns +
                   ") VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)",
               PgParams()
                   .Add(u.id)
                   .Add(u.file)
                   .Add(u.format)
                   .Add(u.s3_key)
                   .Add(u.size_bytes)
                   .Add(u.duration_seconds)
                   .Add(u.sample_rate)
                   .Add(u.channels)
                   .Add(u.tempo_bpm)
                   .Add(u.key)
                   .Add(u.created_at)
                   .Add(u.expires_at));
}

std::optional<Upload> PgJobStore::GetUpload(const std::string& id) {
    auto conn = pool_.Acquire();
    auto r = conn->Exec(std::string("SELECT ") + kUploadColumns + " FROM uploads WHERE id = $1",
                        PgParams().Add(id));
    if (r.Rows() == 0) return std::nullopt;
    return ReadUpload(r, 0);
}

std::vector<Upload> PgJobStore::UploadsDueForExpiry(int64_t now, int limit) {
    auto conn = pool_.Acquire();
    auto r = conn->Exec(std::string("SELECT ") + kUploadColumns +
                            " FROM uploads WHERE expires_at <= $1 ORDER BY expires_at, id LIMIT $2",
                        PgParams().Add(now).Add(limit));
    std::vector<Upload> out;
    for (int i = 0; i < r.Rows(); ++i) out.push_back(ReadUpload(r, i));
    return out;
}

bool PgJobStore::DeleteUpload(const std::string& id) {
    auto conn = pool_.Acquire();
    return conn->Exec("DELETE FROM uploads WHERE id = $1", PgParams().Add(id)).Changed() == 1;
}

}  // namespace songd::jobs
