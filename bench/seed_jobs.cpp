// Fills a job store with N completed jobs, to measure the service with a large store.
//   songd_bench_seed DATABASE_PATH COUNT   → prints one job id to query
#include <cstdio>
#include <cstdlib>

#include "core/clock.h"
#include "core/ids.h"
#include "jobs/sqlite_store.h"

int main(int argc, char** argv) {
    if (argc != 3) {
        std::fprintf(stderr, "usage: songd_bench_seed DATABASE_PATH COUNT\n");
        return 2;
    }
    songd::jobs::SqliteJobStore store(argv[1]);
    const long count = std::atol(argv[2]);
    const int64_t now = songd::core::NowMillis();
    std::string middle;
    for (long i = 0; i < count; ++i) {
        songd::jobs::Job job;
        job.id = songd::core::NewJobId();
        job.request.lyrics = "[00:05.00]Morning light on the water\n[00:12.50]We sing along";
        job.request.style_prompt = "pop, happy, piano";
        job.seed = static_cast<uint64_t>(i);
        job.created_at = now - (count - i) * 1000;
        job.request_hash = "seed";
        store.Create(job);
        auto claimed = store.Claim("bench", now, 60000);
        songd::jobs::Completion c;
        c.output_file = claimed->id + "/output_fixed.wav";
        c.audio = {95.1, 44100, 2};
        c.expires_at = now + 30 * songd::core::kMillisPerDay;
        store.Complete(claimed->id, "bench", c, now);
        if (i == count / 2) middle = job.id;
    }
    std::printf("%s\n", middle.c_str());
    return 0;
}
