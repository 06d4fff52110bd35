#include "app/commands.h"

#include <fcntl.h>
#include <signal.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <CLI/CLI.hpp>
#include <iostream>
#include <optional>
#include <thread>

#include "app/generate_command.h"
#include "core/clock.h"
#include "core/config.h"
#include "core/error.h"
#include "core/ids.h"
#include "core/log.h"
#include "engine/engine.h"
#include "http/api.h"
#include "http/handlers/handlers.h"
#include "http/metrics.h"
#include "http/server.h"
#include "jobs/job_store.h"
#include "jobs/notifying_store.h"
#include "jobs/worker_pool.h"
#include "payment/payment_service.h"
#include "payment/stripe_client.h"
#include "payment/webhook.h"
#include "retention/cleanup.h"
#include "retention/scheduler.h"
#include "storage/migrate_s3.h"
#include "storage/reference_storage.h"
#include "storage/song_storage.h"
#include "webhooks/webhook_sender.h"

namespace songd::app {
namespace {

/// The one-line reason a command cannot start, printed as "songd: <reason>".
int FailStart(const std::string& reason) {
    std::cerr << "songd: " << reason << "\n";
    return 2;
}

/// Holds an exclusive lock on "<db>.lock" while serving: a SQLite store belongs to one
/// process, which is what lets a restart recover every job left processing at once.
class ExclusiveLock {
  public:
    explicit ExclusiveLock(const std::filesystem::path& path) {
        fd_ = ::open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0644);
        if (fd_ < 0) {
            throw core::Error(core::ErrorCode::kInternal, "cannot open " + path.string());
        }
        if (::flock(fd_, LOCK_EX | LOCK_NB) != 0) {
            ::close(fd_);
            throw core::Error(core::ErrorCode::kConflict,
                              "another songd serve is using " + path.string() +
                                  "; a SQLite database serves one process (use PostgreSQL "
                                  "to run several)");
        }
    }
    ~ExclusiveLock() {
        if (fd_ >= 0) ::close(fd_);
    }

  private:
    int fd_ = -1;
};

/// @brief Hands every song the workers complete to storage, which uploads it to S3.
class UploadCompleted : public jobs::CompletionListener {
  public:
    explicit UploadCompleted(storage::SongStorage& songs) : songs_(songs) {}
    void OnCompleted(const std::string& job_id) override { songs_.UploadSoon(job_id); }

  private:
    storage::SongStorage& songs_;
};

std::string NodeId() {
    char host[256] = {0};
    ::gethostname(host, sizeof host - 1);
    return std::string(host) + "-" + std::to_string(::getpid()) + "-" +
           core::NewJobId().substr(0, 8);
}

int Serve(const core::Config& config) {
    // Signals are taken by one thread with sigwait; every other thread blocks them.
    sigset_t signals;
    sigemptyset(&signals);
    sigaddset(&signals, SIGTERM);
    sigaddset(&signals, SIGINT);
    pthread_sigmask(SIG_BLOCK, &signals, nullptr);
    ::signal(SIGPIPE, SIG_IGN);

    std::error_code ec;
    std::filesystem::create_directories(config.output_dir, ec);
    if (ec) {
        return FailStart("cannot create OUTPUT_DIR " + config.output_dir.string() + ": " +
                         ec.message());
    }
    std::unique_ptr<ExclusiveLock> lock;
    std::unique_ptr<jobs::NotifyingJobStore> store;
    std::unique_ptr<engine::Engine> engine;
    std::unique_ptr<storage::SongStorage> songs;
    try {
        // Every change this process makes to a job goes through here (status cache).
        store = std::make_unique<jobs::NotifyingJobStore>(jobs::OpenJobStore(config));
        if (!config.IsPostgres()) {
            auto lock_path = config.SqlitePath();
            lock_path += ".lock";
            lock = std::make_unique<ExclusiveLock>(lock_path);
        }
        songs = std::make_unique<storage::SongStorage>(config, *store);
        songs->CheckAtStart();
        engine = engine::MakeEngine(config);
        // Warm-up before the first job can be claimed; an engine that cannot run stops the
        // start, rather than failing every job.
        engine->Start();
    } catch (const std::exception& e) {
        return FailStart(e.what());
    }

    if (config.IsPostgres() && !songs->s3_enabled()) {
        // Not an error (one shared OUTPUT_DIR works), but the usual cause of "file missing
        // on this server" once a second machine joins.
        core::LogEvent("warning", "songs_not_shared",
                       {{"detail",
                         "DATABASE_URL is PostgreSQL and S3 is off: every node must see the same "
                         "OUTPUT_DIR, or songs made on one node are missing on the others"}});
    }
    const std::string node_id = NodeId();
    std::atomic<bool> shutting_down{false};
    http::Metrics metrics;
    retention::RetentionStats retention_stats;
    UploadCompleted upload_completed(*songs);
    // Status documents from memory, exact for this node's own changes: the store announces
    // each one. Other nodes' changes show within the maximum age.
    const int cache_age_ms = config.status_cache_max_age_ms >= 0 ? config.status_cache_max_age_ms
                             : config.IsPostgres()               ? 500
                                                                 : 60000;
    http::StatusCache status_cache(static_cast<size_t>(config.status_cache_entries),
                                   static_cast<size_t>(config.status_cache_entries) * 2048,
                                   std::chrono::milliseconds(cache_age_ms));
    store->OnChange([&status_cache](const std::string& id) { status_cache.Invalidate(id); });
    if (!config.IsPostgres()) {
        // A `songd cleanup` run by hand or by cron writes the same SQLite file: any commit
        // changes the WAL file (or, after a checkpoint, the database file).
        status_cache.SetExternalProbe([db = config.SqlitePath()] {
            uint64_t h = 1469598103934665603ULL;
            for (const auto& p : {db.string() + "-wal", db.string()}) {
                struct stat st {};
                if (::stat(p.c_str(), &st) != 0) continue;
                for (uint64_t v :
                     {static_cast<uint64_t>(st.st_size), static_cast<uint64_t>(st.st_mtim.tv_sec),
                      static_cast<uint64_t>(st.st_mtim.tv_nsec),
                      static_cast<uint64_t>(st.st_ino)}) {
                    h = (h ^ v) * 1099511628211ULL;
                }
            }
            return h;
        });
    }
    jobs::WorkerPool workers(config, *store, *engine, node_id, &upload_completed);
    jobs::JobChanges changes;  // events and Prefer: wait hear of the workers' changes here
    workers.PublishChangesTo(&changes);
    storage::ReferenceStorage references(config, *store, songs->client());
    workers.SetReferenceResolver([&references](const std::string& upload_id) {
        return references.LocalPath(upload_id, core::NowMillis());
    });
    payment::StripeClient stripe(payment::StripeClientOptions::FromConfig(config));
    payment::PaymentService payments(config, *store, stripe);
    payment::WebhookHandler webhook(config, *store, &payments.stats());
    webhooks::WebhookSender client_webhooks(config, *store, node_id);
    http::ApiContext context{config, *store, &workers, metrics, shutting_down, {}, songs.get()};
    if (config.status_cache_entries > 0) context.status_cache = &status_cache;
    context.payments = &payments;
    context.webhook = &webhook;
    context.changes = &changes;
    context.references = &references;
    context.extra_metrics = [&] {
        return songs->Prometheus() + retention_stats.Prometheus() + payments.Prometheus() +
               client_webhooks.Prometheus() + status_cache.Prometheus();
    };
    http::Api api(context);
    http::RegisterJobRoutes(api);
    http::RegisterPaymentRoutes(api);
    http::RegisterUploadRoutes(api);
    http::RegisterSystemRoutes(api);
    http::RegisterWebRoutes(api);
    http::ServerLimits limits;
    limits.read_timeout_seconds = config.http_read_timeout_seconds;
    http::Server server(config, api, limits);
    try {
        server.Listen();
    } catch (const std::exception& e) {
        return FailStart(e.what());
    }
    workers.Start(/*exclusive_store=*/!config.IsPostgres());
    songs->Start();
    retention::CleanupScheduler cleanup(config, *store, songs->objects(), retention_stats, node_id);
    cleanup.Start();
    client_webhooks.Start();
    core::LogEvent("info", "listening",
                   {{"address", config.host + ":" + std::to_string(server.port())},
                    {"engine", engine->Name()},
                    {"workers", std::to_string(config.workers)},
                    {"database", config.IsPostgres() ? "postgresql" : config.database_url},
                    {"output_dir", config.output_dir.string()},
                    {"s3", songs->s3_enabled() ? "s3://" + config.s3_bucket + "/" + config.s3_prefix
                                               : "off"}});

    std::thread signal_thread([&] {
        int sig = 0;
        sigwait(&signals, &sig);
        if (shutting_down.exchange(true)) return;
        core::LogEvent("info", "shutdown", {{"signal", sig == SIGTERM ? "SIGTERM" : "SIGINT"}});
        server.Shutdown();
    });
    server.Run();
    // Run returns after Shutdown; make sure the signal thread is released if Run ended
    // for another reason.
    if (!shutting_down.exchange(true)) ::kill(::getpid(), SIGTERM);
    signal_thread.join();
    workers.Stop();
    engine->Stop();  // after the last render returned
    cleanup.Stop();
    client_webhooks.Stop();
    songs->Stop();
    core::LogEvent("info", "stopped", {});
    return 0;
}

/// Opens the store for a one-off command (no exclusive lock: serve may be running).
std::unique_ptr<jobs::JobStore> OpenForCommand(const core::Config& config) {
    return jobs::OpenJobStore(config);
}

int Cleanup(const core::Config& config, bool dry_run, const std::optional<std::string>& as_of) {
    int64_t now = core::NowMillis();
    if (as_of) {  // given but empty is refused too: it must not mean "now"
        auto parsed = core::ParseIso8601(*as_of);
        if (!parsed) {
            return FailStart("--as-of '" + *as_of +
                             "' is not an ISO 8601 time such as 2026-01-31T12:00:00Z");
        }
        now = *parsed;
    }
    try {
        auto store = OpenForCommand(config);
        storage::SongStorage songs(config, *store);
        retention::CleanupOptions options;
        options.now = now;
        options.dry_run = dry_run;
        options.on_item = [](const std::string& line) { std::cout << line << "\n"; };
        auto report = retention::RunLockedPass(config, *store, songs.objects(), options,
                                               "cleanup-command-" + NodeId());
        if (!report) {
            return FailStart("another node is running a cleanup pass; try again later");
        }
        std::cout << report->Summary(dry_run) << std::endl;
        return report->errors > 0 ? 1 : 0;
    } catch (const std::exception& e) {
        return FailStart(e.what());
    }
}

int MigrateS3(const core::Config& config, bool dry_run) {
    if (!config.s3_enabled)
        return FailStart("migrate-s3 needs S3_ENABLED=true and the S3_* settings");
    try {
        auto store = OpenForCommand(config);
        storage::SongStorage songs(config, *store);
        songs.CheckAtStart();
        storage::MigrateOptions options;
        options.dry_run = dry_run;
        options.on_item = [](const std::string& line) { std::cout << line << "\n"; };
        options.on_progress = [](int64_t checked) {
            std::cerr << "checked " << checked << " songs\r" << std::flush;
        };
        const auto report = storage::MigrateToS3(config, *store, songs, options);
        std::cout << report.Summary(dry_run) << std::endl;
        return report.failed > 0 ? 1 : 0;
    } catch (const std::exception& e) {
        return FailStart(e.what());
    }
}

}  // namespace

int Main(int argc, char** argv) {
    CLI::App app{"songd: song-generation service"};
    app.require_subcommand(1);
    std::string env_file;
    app.add_option("--env-file", env_file, "env file to read (default ./.env if present)");
    auto* serve = app.add_subcommand("serve", "HTTP API, generation workers and retention");
    GenerateCommand generate(app);
    auto* cleanup = app.add_subcommand("cleanup", "one retention pass now; prints what it deleted");
    bool cleanup_dry_run = false;
    std::string as_of;
    cleanup->add_flag("--dry-run", cleanup_dry_run, "report what would be deleted; change nothing");
    auto* as_of_option =
        cleanup->add_option("--as-of", as_of, "act as if it were this ISO 8601 time");
    auto* migrate = app.add_subcommand("migrate-s3", "upload finished songs that S3 does not have");
    bool migrate_dry_run = false;
    migrate->add_flag("--dry-run", migrate_dry_run,
                      "report what would be uploaded; change nothing");
    CLI11_PARSE(app, argc, argv);

    core::Config config;
    try {
        auto env = core::ReadEnvironment(
            env_file.empty() ? std::filesystem::path(".env") : std::filesystem::path(env_file),
            !env_file.empty());
        config = core::LoadConfig(env);
    } catch (const core::ConfigError& e) {
        return FailStart(e.what());
    }
    core::SetupLogging(config.log_level, config.log_format);
    if (generate.Parsed()) return generate.Run(config);
    if (serve->parsed()) return Serve(config);
    if (cleanup->parsed()) {
        return Cleanup(config, cleanup_dry_run,
                       as_of_option->count() > 0 ? std::optional(as_of) : std::nullopt);
    }
    if (migrate->parsed()) return MigrateS3(config, migrate_dry_run);
    return 0;
}

}  // namespace songd::app
