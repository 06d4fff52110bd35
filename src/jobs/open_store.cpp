#include "jobs/job_store.h"
#include "jobs/pg_store.h"
#include "jobs/sqlite_store.h"

namespace songd::jobs {

std::unique_ptr<JobStore> OpenJobStore(const core::Config& config) {
    if (config.IsPostgres())
        return std::make_unique<PgJobStore>(config.database_url, PgJobStore::kDefaultPoolSize,
                                            PgJobStore::LeaseClock::kDatabase);
    return std::make_unique<SqliteJobStore>(config.SqlitePath());
}

}  // namespace songd::jobs
