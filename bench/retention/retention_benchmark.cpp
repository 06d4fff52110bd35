// songd_retention_benchmark: one `songd cleanup` pass over N expired jobs, timed, with the peak
// RSS of the songd process.
//
//   build/bench/songd_retention_benchmark --jobs 100000 [--s3] [--dry-run] [--upload-threads 4]
//
// Seeds N completed jobs past their expiry straight into a fresh SQLite store through the
// JobStore API, writes each job's folder (a 1 KiB song), and with --s3 uploads each song to
// s3rver (tests/s3/server). Then runs the real binary (`songd cleanup`) and measures the wall
// time of the pass and its peak resident set (wait4's ru_maxrss), and checks the result:
// every job expired, the output folder empty, the bucket empty. With --dry-run the pass is
// `songd cleanup --dry-run` and the check is the opposite: nothing changed.

#include <fcntl.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <map>
#include <string>
#include <thread>
#include <vector>

#include "core/clock.h"
#include "core/ids.h"
#include "harness/spawn.h"
#include "jobs/sqlite_store.h"
#include "s3_test_server.h"
#include "storage/s3/s3_client.h"

namespace fs = std::filesystem;
using Clock = std::chrono::steady_clock;

namespace {

double Seconds(Clock::time_point start) {
    return std::chrono::duration<double>(Clock::now() - start).count();
}

struct Options {
    long jobs = 10000;
    bool s3 = false;
    int upload_threads = 4;
    bool keep = false;
    bool dry_run = false;
};

/// Runs `songd args...` in `dir` with `env`; returns exit status, wall seconds and peak RSS.
struct RunResult {
    int status = -1;
    double seconds = 0;
    long max_rss_kib = 0;
};

RunResult RunSongd(const fs::path& dir, const std::vector<std::string>& args,
                   const std::map<std::string, std::string>& env, const fs::path& log) {
    auto start = Clock::now();
    pid_t pid = songd::test::SpawnSongd(dir, args, env, log);
    RunResult result;
    int status = 0;
    rusage usage{};
    ::wait4(pid, &status, 0, &usage);
    result.seconds = Seconds(start);
    result.status = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
    result.max_rss_kib = usage.ru_maxrss;
    return result;
}

std::string LastLine(const fs::path& path) {
    std::ifstream in(path);
    std::string line, last;
    while (std::getline(in, line)) {
        if (!line.empty()) last = line;
    }
    return last;
}

}  // namespace

int main(int argc, char** argv) {
    Options opt;
    for (int i = 1; i < argc; ++i) {
        std::string a = argv[i];
        if (a == "--jobs" && i + 1 < argc) {
            opt.jobs = std::atol(argv[++i]);
        } else if (a == "--s3") {
            opt.s3 = true;
        } else if (a == "--upload-threads" && i + 1 < argc) {
            opt.upload_threads = std::max(1, std::atoi(argv[++i]));
        } else if (a == "--keep") {
            opt.keep = true;
        } else if (a == "--dry-run") {
            opt.dry_run = true;
        } else {
            std::cerr << "usage: songd_retention_benchmark --jobs N [--s3] [--dry-run] "
                         "[--upload-threads T] [--keep]\n";
            return 2;
        }
    }
    char tmpl[] = "/tmp/songd-retention-bench-XXXXXX";
    const fs::path dir = ::mkdtemp(tmpl);
    const fs::path out = dir / "output";
    const fs::path db = dir / "data" / "songd.db";
    std::map<std::string, std::string> env = {{"OUTPUT_DIR", out.string()},
                                              {"DATABASE_URL", "sqlite:" + db.string()},
                                              {"LOG_FORMAT", "text"},
                                              {"FILE_RETENTION_DAYS", "30"}};

    std::unique_ptr<songd::testing::S3TestServer> server;
    songd::core::Config s3_config;
    if (opt.s3) {
        server = std::make_unique<songd::testing::S3TestServer>(std::vector<std::string>{"songs"},
                                                                /*constant_time_delete=*/true);
        s3_config = server->Config("songs", /*through_proxy=*/false);
        env.insert({{"S3_ENABLED", "true"},
                    {"S3_BUCKET", s3_config.s3_bucket},
                    {"S3_REGION", s3_config.s3_region},
                    {"S3_ACCESS_KEY", s3_config.s3_access_key},
                    {"S3_SECRET_KEY", s3_config.s3_secret_key},
                    {"S3_PREFIX", s3_config.s3_prefix},
                    {"S3_ENDPOINT", s3_config.s3_endpoint},
                    {"S3_FORCE_PATH_STYLE", "true"}});
    }

    // Seed: completed jobs, all past their expiry (oldest first), each with a 1 KiB song.
    const int64_t now = songd::core::NowMillis();
    std::vector<std::string> ids;
    ids.reserve(static_cast<size_t>(opt.jobs));
    auto seed_start = Clock::now();
    {
        songd::jobs::SqliteJobStore store(db);
        const std::string song(1024, 's');
        for (long i = 0; i < opt.jobs; ++i) {
            songd::jobs::Job job;
            job.id = songd::core::NewJobId();
            job.request.lyrics = "[00:05.00]Morning light on the water";
            job.request.style_prompt = "pop";
            job.created_at = now - 40 * songd::core::kMillisPerDay;
            job.request_hash = "bench";
            store.Create(job);
            auto claimed = store.Claim("bench", now, 60000);
            songd::jobs::Completion c;
            c.output_file = claimed->id + "/output_fixed.wav";
            c.expires_at = now - songd::core::kMillisPerDay - (opt.jobs - i);
            store.Complete(claimed->id, "bench", c, c.expires_at - 30 * songd::core::kMillisPerDay);
            fs::create_directories(out / job.id);
            std::ofstream(out / job.id / "output_fixed.wav", std::ios::binary) << song;
            ids.push_back(job.id);
        }
    }
    const double seed_seconds = Seconds(seed_start);
    double upload_seconds = 0;
    if (opt.s3) {
        auto upload_start = Clock::now();
        std::atomic<size_t> next{0};
        std::atomic<long> failures{0};
        std::vector<std::thread> threads;
        for (int t = 0; t < opt.upload_threads; ++t) {
            threads.emplace_back([&] {
                songd::storage::s3::S3Client client(s3_config);
                for (size_t i = next++; i < ids.size(); i = next++) {
                    try {
                        client.PutObjectFromFile(client.JobObjectKey(ids[i]),
                                                 out / ids[i] / "output_fixed.wav");
                    } catch (const std::exception& e) {
                        if (failures++ == 0) std::cerr << "upload failed: " << e.what() << "\n";
                    }
                }
            });
        }
        for (auto& t : threads) t.join();
        upload_seconds = Seconds(upload_start);
        if (failures > 0) {
            std::cerr << failures << " uploads failed\n";
            return 1;
        }
    }

    std::vector<std::string> args = {"cleanup"};
    if (opt.dry_run) args.push_back("--dry-run");
    RunResult pass = RunSongd(dir, args, env, dir / "cleanup.log");
    const std::string summary = LastLine(dir / "cleanup.log");

    // Check the pass did its work.
    bool ok = pass.status == 0;
    songd::jobs::SqliteJobStore store(db);
    const auto stats = store.Stats();
    const long want_expired = opt.dry_run ? 0 : opt.jobs;
    if (stats.expired != want_expired || stats.completed != opt.jobs - want_expired) {
        std::cerr << "expected " << want_expired << " expired, got " << stats.expired
                  << " expired and " << stats.completed << " completed\n";
        ok = false;
    }
    long folders = 0;
    for (const auto& entry : fs::directory_iterator(out)) {
        (void)entry;
        ++folders;
    }
    if (folders != (opt.dry_run ? opt.jobs : 0)) {
        std::cerr << folders << " folders left in the output folder\n";
        ok = false;
    }
    long left_in_bucket = 0;
    if (opt.s3) {
        songd::storage::s3::S3Client client(s3_config);
        client.ForEachObject("", [&](const songd::storage::s3::ObjectInfo&) {
            ++left_in_bucket;
            return true;
        });
        if (left_in_bucket != (opt.dry_run ? opt.jobs : 0)) {
            std::cerr << left_in_bucket << " objects left in the bucket\n";
            ok = false;
        }
    }
    std::printf(
        "jobs=%ld s3=%s dry_run=%s seed_s=%.1f upload_s=%.1f pass_s=%.2f jobs_per_s=%.0f "
        "peak_rss_mib=%.1f exit=%d ok=%s\n  %s\n",
        opt.jobs, opt.s3 ? "yes" : "no", opt.dry_run ? "yes" : "no", seed_seconds, upload_seconds,
        pass.seconds, static_cast<double>(opt.jobs) / pass.seconds, pass.max_rss_kib / 1024.0,
        pass.status, ok ? "yes" : "no", summary.c_str());
    if (!opt.keep) fs::remove_all(dir);
    return ok ? 0 : 1;
}
