#pragma once
/// @file
/// PostgreSQL plumbing under PgJobStore: one libpq connection with its prepared statements,
/// results and transactions as RAII, text parameters, and messages that name the server but
/// never the password.
///
///   PgTarget target = PgTarget::Parse(url);  // kInvalidInput when it is not a PostgreSQL URL
///   PgConnection conn(target);               // kUpstreamUnavailable: "cannot connect to
///                                            // PostgreSQL at host:port, database d, user u: ..."
///   PgTransaction tx(conn);                  // BEGIN; ROLLBACK unless committed
///   PgResult r = conn.Exec("SELECT status FROM jobs WHERE id = $1", PgParams().Add(id));
///   if (r.Rows() > 0) status = r.Text(0, 0);
///   tx.Commit();
///
/// A failed statement throws PgError: kUpstreamUnavailable (Retry-After 1) when the connection
/// was lost or the SQLSTATE is an outage, kInvalidInput for text PostgreSQL cannot store,
/// kInternal for the rest. libpq stays out of this header.

#include <cstdint>
#include <optional>
#include <string>
#include <unordered_map>
#include <vector>

#include "core/error.h"

struct pg_conn;    // libpq's PGconn
struct pg_result;  // libpq's PGresult

namespace songd::jobs {

/// SQLSTATE of a unique constraint violation (a lost race on a UNIQUE column).
inline constexpr const char* kPgUniqueViolation = "23505";

/// @brief A failed statement: the core::Error callers see, plus the SQLSTATE for the few
/// places that decide on it.
class PgError : public core::Error {
  public:
    PgError(core::ErrorCode code, std::string detail, std::string sqlstate)
        : core::Error(code, std::move(detail)), sqlstate_(std::move(sqlstate)) {}
    const std::string& sqlstate() const { return sqlstate_; }

  private:
    std::string sqlstate_;
};

/// @brief A DATABASE_URL with what messages may say about it.
struct PgTarget {
    std::string url;
    /// "127.0.0.1:5432, database songd, user songd" as the URL names them: never the password.
    std::string where;
    /// Removed from every message, whatever libpq or the server put in it.
    std::string password;

    /// Throws core::Error(kInvalidInput) naming what is wrong, never quoting the URL.
    static PgTarget Parse(const std::string& url);
};

/// `text` as valid UTF-8 without NULs: each byte that does not belong to a valid sequence
/// becomes '?'. For free text songd writes itself (error messages), which must always be
/// storable: a job must never stay processing because its error could not be saved.
std::string PgStorableText(const std::string& text);

/// @brief Owns a PGresult.
class PgResult {
  public:
    explicit PgResult(pg_result* res) : res_(res) {}
    ~PgResult();
    PgResult(PgResult&& other) noexcept : res_(other.res_) { other.res_ = nullptr; }
    PgResult(const PgResult&) = delete;
    PgResult& operator=(const PgResult&) = delete;
    PgResult& operator=(PgResult&&) = delete;

    pg_result* get() const { return res_; }
    int Rows() const;
    /// Rows an INSERT/UPDATE/DELETE changed.
    int Changed() const;
    /// "" for NULL.
    std::string Text(int row, int col) const;
    /// 0 for NULL.
    int64_t Int(int row, int col) const;
    double Real(int row, int col) const;

  private:
    pg_result* res_;
};

/// @brief Positional parameters ($1, $2...), all sent as text; the server infers each type
/// from its use.
class PgParams {
  public:
    /// Throws core::Error(kInvalidInput) for a NUL byte, which PostgreSQL text cannot hold.
    PgParams& Add(std::string v);
    PgParams& Add(const char* v) { return Add(std::string(v)); }
    PgParams& Add(int64_t v) { return Add(std::to_string(v)); }
    PgParams& Add(int v) { return Add(std::to_string(v)); }
    /// Exactly: 17 significant digits.
    PgParams& Add(double v);
    PgParams& AddNullIfEmpty(const std::string& v);

    int size() const { return static_cast<int>(values_.size()); }
    std::vector<const char*> Pointers() const;

  private:
    std::vector<std::optional<std::string>> values_;
};

/// @brief One libpq connection with its prepared statements. Not thread-safe: one caller at
/// a time (a pool lends it out).
class PgConnection {
  public:
    /// Connects, or throws core::Error(kUpstreamUnavailable) naming what libpq tried (host,
    /// port, database, user; defaults and PG* variables included) and why, without the password.
    explicit PgConnection(const PgTarget& target);
    ~PgConnection();
    PgConnection(const PgConnection&) = delete;
    PgConnection& operator=(const PgConnection&) = delete;

    /// Whether the connection may be lent out again: the socket is up, no transaction is left
    /// open, and the server did not go away while it sat idle (a restart, pg_terminate_backend:
    /// noticed without a round trip, so checking every checkout is free).
    bool Reusable();

    /// Runs SQL without parameters (transaction control, migrations: several statements).
    void Command(const char* sql);

    /// Runs one statement through a per-connection prepared statement.
    PgResult Exec(const std::string& sql, const PgParams& params = {});

  private:
    /// Throws for a failed statement: the SQLSTATE decides the error code; the message is
    /// the server's primary text (never the DETAIL, which may quote values).
    void Check(const PgResult& r, const char* what);

    pg_conn* conn_ = nullptr;
    std::string where_;  ///< as libpq resolved it, scrubbed
    std::string password_;
    std::unordered_map<std::string, std::string> prepared_;  ///< SQL → statement name
};

/// @brief A transaction; rolls back unless committed. A connection whose ROLLBACK failed is
/// left in its transaction, so PgConnection::Reusable refuses it.
class PgTransaction {
  public:
    explicit PgTransaction(PgConnection& conn) : conn_(conn) { conn_.Command("BEGIN"); }
    ~PgTransaction();
    PgTransaction(const PgTransaction&) = delete;
    PgTransaction& operator=(const PgTransaction&) = delete;
    void Commit() {
        conn_.Command("COMMIT");
        done_ = true;
    }

  private:
    PgConnection& conn_;
    bool done_ = false;
};

}  // namespace songd::jobs
