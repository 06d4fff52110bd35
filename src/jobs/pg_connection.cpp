#include "jobs/pg_connection.h"

#include <libpq-fe.h>
#include <poll.h>

#include <cstdio>
#include <cstdlib>

#include "core/text.h"

namespace songd::jobs {

namespace {

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

/// A connection failure, a shutting-down server, a full disk or a lost race are outages
/// (503, retry); anything else is a bug (500).
bool IsTransient(const std::string& sqlstate) {
    return sqlstate.rfind("08", 0) == 0 || sqlstate.rfind("53", 0) == 0 ||
           sqlstate.rfind("57P", 0) == 0 || sqlstate == "40001" || sqlstate == "40P01" ||
           sqlstate == "55P03";
}

/// "host:port, database d, user u" of a connection, as libpq resolved them.
std::string Where(PGconn* conn) {
    auto text = [](const char* v) { return std::string(v ? v : ""); };
    std::string host = text(PQhost(conn));
    if (host.empty()) host = "(default host)";
    return host + ":" + text(PQport(conn)) + ", database " + text(PQdb(conn)) + ", user " +
           text(PQuser(conn));
}

/// Session setup, on every connection.
void SetUpSession(PgConnection& conn, PGconn* raw) {
    // "relation already exists, skipping" and the like are not worth a line on stderr.
    PQsetNoticeProcessor(
        raw, [](void*, const char*) {}, nullptr);
    // Doubles round-trip exactly as text even on a server set to fewer digits.
    conn.Command("SET extra_float_digits = 3");
}

}  // namespace

PgTarget PgTarget::Parse(const std::string& url) {
    char* err = nullptr;
    PQconninfoOption* options = PQconninfoParse(url.c_str(), &err);
    if (!options) {
        std::string why = err ? core::CollapseWhitespace(err) : "out of memory";
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
    PgTarget target;
    target.url = url;
    target.password = get("password", "");
    // Before connecting, libpq's own defaults (PGHOST, the OS user...) are unknown here.
    target.where = get("host", "(default host)") + ":" + get("port", "5432") + ", database " +
                   get("dbname", "(default)") + ", user " + get("user", "(default)");
    target.where = Scrub(target.where, target.password);
    return target;
}

std::string PgStorableText(const std::string& text) {
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

PgResult::~PgResult() { PQclear(res_); }

int PgResult::Rows() const { return PQntuples(res_); }

int PgResult::Changed() const {
    const char* n = PQcmdTuples(res_);
    return n && *n ? std::atoi(n) : 0;
}

std::string PgResult::Text(int row, int col) const {
    if (PQgetisnull(res_, row, col)) return "";
    return std::string(PQgetvalue(res_, row, col),
                       static_cast<size_t>(PQgetlength(res_, row, col)));
}

int64_t PgResult::Int(int row, int col) const {
    return PQgetisnull(res_, row, col) ? 0 : std::strtoll(PQgetvalue(res_, row, col), nullptr, 10);
}

double PgResult::Real(int row, int col) const {
    return PQgetisnull(res_, row, col) ? 0 : std::strtod(PQgetvalue(res_, row, col), nullptr);
}

PgParams& PgParams::Add(std::string v) {
    // Text goes as a C string: a NUL would silently cut the value short.
    if (v.find('\0') != std::string::npos) {
        throw core::Error(core::ErrorCode::kInvalidInput,
                          "a value contains a NUL byte, which PostgreSQL text cannot hold");
    }
    values_.emplace_back(std::move(v));
    return *this;
}

PgParams& PgParams::Add(double v) {
    char buf[32];
    std::snprintf(buf, sizeof buf, "%.17g", v);
    return Add(std::string(buf));
}

PgParams& PgParams::AddNullIfEmpty(const std::string& v) {
    if (v.empty()) {
        values_.emplace_back(std::nullopt);
        return *this;
    }
    return Add(v);
}

std::vector<const char*> PgParams::Pointers() const {
    std::vector<const char*> out;
    out.reserve(values_.size());
    for (const auto& v : values_) out.push_back(v ? v->c_str() : nullptr);
    return out;
}

PgConnection::PgConnection(const PgTarget& target)
    : where_(target.where), password_(target.password) {
    // The URL comes last so its own settings (connect_timeout=...) win over these.
    const char* keys[] = {"connect_timeout", "application_name", "dbname", nullptr};
    const char* values[] = {"10", "songd", target.url.c_str(), nullptr};
    conn_ = PQconnectdbParams(keys, values, /*expand_dbname=*/1);
    if (!conn_ || PQstatus(conn_) != CONNECTION_OK) {
        std::string why = conn_ ? core::CollapseWhitespace(PQerrorMessage(conn_)) : "out of memory";
        // libpq knows what it tried, defaults and PG* variables included.
        std::string tried = conn_ ? Scrub(Where(conn_), password_) : where_;
        PQfinish(conn_);
        throw core::Error(core::ErrorCode::kUpstreamUnavailable,
                          "cannot connect to PostgreSQL at " + tried + ": " + Scrub(why, password_))
            .WithRetryAfter(1);
    }
    where_ = Scrub(Where(conn_), password_);
    try {
        SetUpSession(*this, conn_);
    } catch (...) {
        PQfinish(conn_);  // the destructor does not run for a constructor that throws
        throw;
    }
}

PgConnection::~PgConnection() { PQfinish(conn_); }

bool PgConnection::Reusable() {
    if (PQstatus(conn_) != CONNECTION_OK || PQtransactionStatus(conn_) != PQTRANS_IDLE) {
        return false;  // broken, or stuck in a transaction
    }
    // An idle connection has nothing to read: if its socket is readable, the server closed
    // it or sent a FATAL message, which libpq notices on reading it. The FATAL message and
    // the end of the stream may arrive as two reads.
    for (int reads = 0; reads < 4 && PQstatus(conn_) == CONNECTION_OK; ++reads) {
        pollfd p{PQsocket(conn_), POLLIN, 0};
        if (::poll(&p, 1, 0) <= 0) break;
        if (PQconsumeInput(conn_) == 0) break;
    }
    return PQstatus(conn_) == CONNECTION_OK;
}

void PgConnection::Command(const char* sql) {
    PgResult r(PQexec(conn_, sql));
    Check(r, "statement");
}

PgResult PgConnection::Exec(const std::string& sql, const PgParams& params) {
    auto it = prepared_.find(sql);
    if (it == prepared_.end()) {
        std::string name = "songd_" + std::to_string(prepared_.size() + 1);
        PgResult prep(PQprepare(conn_, name.c_str(), sql.c_str(), 0, nullptr));
        Check(prep, "prepare");
        it = prepared_.emplace(sql, std::move(name)).first;
    }
    auto pointers = params.Pointers();
    PgResult r(PQexecPrepared(conn_, it->second.c_str(), params.size(), pointers.data(), nullptr,
                              nullptr, 0));
    Check(r, "query");
    return r;
}

void PgConnection::Check(const PgResult& r, const char* what) {
    auto status = r.get() ? PQresultStatus(r.get()) : PGRES_FATAL_ERROR;
    if (status == PGRES_COMMAND_OK || status == PGRES_TUPLES_OK) return;
    std::string sqlstate, message;
    if (r.get()) {
        if (const char* s = PQresultErrorField(r.get(), PG_DIAG_SQLSTATE)) sqlstate = s;
        if (const char* m = PQresultErrorField(r.get(), PG_DIAG_MESSAGE_PRIMARY)) message = m;
    }
    if (message.empty()) message = core::CollapseWhitespace(PQerrorMessage(conn_));
    message = Scrub(core::CollapseWhitespace(message), password_);
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

PgTransaction::~PgTransaction() {
    if (done_) return;
    try {
        conn_.Command("ROLLBACK");
    } catch (const std::exception&) {
        // The connection is broken or aborted: the pool drops it instead of reusing it.
    }
}

}  // namespace songd::jobs
