// The WebhookOutbox contract on SQLite (the PostgreSQL run is tests/postgres/
// webhook_outbox_pgtest.cpp).
#include <unistd.h>

#include <filesystem>

#include "jobs/sqlite_store.h"
#include "webhook_outbox_contract.h"

namespace songd::jobs::testing {
namespace {

class SqliteOutboxBackend : public OutboxBackend {
  public:
    SqliteOutboxBackend() {
        char tmpl[] = "/tmp/songd-outbox-XXXXXX";
        dir_ = ::mkdtemp(tmpl);
    }
    ~SqliteOutboxBackend() override {
        std::error_code ec;
        std::filesystem::remove_all(dir_, ec);
    }
    std::unique_ptr<JobStore> Open() override {
        return std::make_unique<SqliteJobStore>(dir_ / "songd.db");
    }

  private:
    std::filesystem::path dir_;
};

INSTANTIATE_TEST_SUITE_P(Sqlite, WebhookOutboxContract,
                         ::testing::Values(OutboxBackendKind{
                             "sqlite", [] {
                                 return std::unique_ptr<OutboxBackend>(new SqliteOutboxBackend());
                             }}));

}  // namespace
}  // namespace songd::jobs::testing
