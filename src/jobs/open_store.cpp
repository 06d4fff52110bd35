#include "jobs/job_store.h"
#include "jobs/pg_store.h"
#include "jobs/sqlite_store.h"
#include "jobs/status_document.h"

namespace songd::jobs {

std::unique_ptr<JobStore> OpenJobStore(const core::Config& config) {
    std::unique_ptr<JobStore> store;
    if (config.IsPostgres()) {
        store = std::make_unique<PgJobStore>(config.database_url, PgJobStore::kDefaultPoolSize,
                                             PgJobStore::LeaseClock::kDatabase);
    } else {
        store = std::make_unique<SqliteJobStore>(config.SqlitePath());
    }
    // Webhook bodies are the status document as GET status renders it with this prefix and
    // these prices (a copy: the store may outlive the caller's configuration).
    store->SetWebhookRenderer(
        [shared = std::make_shared<const core::Config>(config)](const Job& job) {
            return StatusDocument(*shared, job, std::nullopt);
        });
    return store;
}

}  // namespace songd::jobs
