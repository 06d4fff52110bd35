#include "app/commands.h"

#include <CLI/CLI.hpp>
#include <signal.h>
#include <fcntl.h>
#include <sys/file.h>
#include <unistd.h>

#include <iostream>
#include <thread>

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
#include "jobs/worker_pool.h"

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
    std::unique_ptr<jobs::JobStore> store;
    std::unique_ptr<engine::Engine> engine;
    try {
        store = jobs::OpenJobStore(config);
        if (!config.IsPostgres()) {
            auto lock_path = config.SqlitePath();
            lock_path += ".lock";
            lock = std::make_unique<ExclusiveLock>(lock_path);
        }
        engine = engine::MakeEngine(config);
    } catch (const std::exception& e) {
        return FailStart(e.what());
    }

    std::atomic<bool> shutting_down{false};
    http::Metrics metrics;
    jobs::WorkerPool workers(config, *store, *engine, NodeId());
    http::Api api(http::ApiContext{config, *store, &workers, metrics, shutting_down, {}});
    http::RegisterJobRoutes(api);
    http::RegisterSystemRoutes(api);
    http::ServerLimits limits;
    limits.read_timeout_seconds = config.http_read_timeout_seconds;
    http::Server server(config, api, limits);
    try {
        server.Listen();
    } catch (const std::exception& e) {
        return FailStart(e.what());
    }
    workers.Start(/*exclusive_store=*/!config.IsPostgres());
    core::LogEvent("info", "listening",
                   {{"address", config.host + ":" + std::to_string(server.port())},
                    {"engine", engine->Name()},
                    {"workers", std::to_string(config.workers)},
                    {"database", config.IsPostgres() ? "postgresql" : config.database_url},
                    {"output_dir", config.output_dir.string()}});

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
    core::LogEvent("info", "stopped", {});
    return 0;
}

}  // namespace

int Main(int argc, char** argv) {
    CLI::App app{"songd: song-generation service"};
    app.require_subcommand(1);
    std::string env_file;
    app.add_option("--env-file", env_file, "env file to read (default ./.env if present)");
    auto* serve = app.add_subcommand("serve", "HTTP API, generation workers and retention");
    CLI11_PARSE(app, argc, argv);

    core::Config config;
    try {
        auto env = core::ReadEnvironment(env_file.empty() ? std::filesystem::path(".env")
                                                          : std::filesystem::path(env_file),
                                         !env_file.empty());
        config = core::LoadConfig(env);
    } catch (const core::ConfigError& e) {
        return FailStart(e.what());
    }
    core::SetupLogging(config.log_level, config.log_format);
    if (serve->parsed()) return Serve(config);
    return 0;
}

}  // namespace songd::app
