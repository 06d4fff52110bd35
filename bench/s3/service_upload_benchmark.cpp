// songd_s3_service_benchmark: how long a finished song waits for its S3 copy in the real
// service — from the job's completed_at to the s3_uploaded log line (server side), and
// from the first status poll that says `completed` to the first one that shows `s3_url`
// (what a polling client sees).
//
//   build/bench/songd_s3_service_benchmark [--jobs 5] [--length 95]
//
// Starts s3rver (tests/s3/server, installed by tests/s3/setup.sh) and `songd serve` with the
// tone engine and one worker, submits the jobs one after another and prints one line per
// job and the medians.

#include <algorithm>
#include <boost/json.hpp>
#include <chrono>
#include <cstring>
#include <iostream>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "core/clock.h"
#include "harness/http_client.h"
#include "harness/songd_process.h"
#include "s3_test_server.h"

namespace json = boost::json;
namespace test = songd::test;
using Clock = std::chrono::steady_clock;

namespace {

double Median(std::vector<double> values) {
    std::sort(values.begin(), values.end());
    size_t n = values.size();
    return n % 2 ? values[n / 2] : (values[n / 2 - 1] + values[n / 2]) / 2;
}

/// The time of the first log line with `needle`, in Unix milliseconds; -1 when absent.
int64_t LogTime(const std::string& log, const std::string& needle) {
    std::istringstream in(log);
    for (std::string line; std::getline(in, line);) {
        if (line.find(needle) == std::string::npos) continue;
        auto millis = songd::core::ParseIso8601(line.substr(0, line.find(' ')));
        return millis ? *millis : -1;
    }
    return -1;
}

}  // namespace

int main(int argc, char** argv) {
    int jobs = 5;
    int length = 95;
    for (int i = 1; i + 1 < argc; i += 2) {
        if (std::strcmp(argv[i], "--jobs") == 0)
            jobs = std::stoi(argv[i + 1]);
        else if (std::strcmp(argv[i], "--length") == 0)
            length = std::stoi(argv[i + 1]);
        else {
            std::cerr << "usage: songd_s3_service_benchmark [--jobs N] [--length SECONDS]\n";
            return 2;
        }
    }
    songd::testing::S3TestServer server({"songs"});
    test::SongdProcess songd(
        {{"S3_ENABLED", "true"},
         {"S3_BUCKET", "songs"},
         {"S3_ACCESS_KEY", "S3RVER"},
         {"S3_SECRET_KEY", "S3RVER"},
         {"S3_PREFIX", "songs/"},
         {"S3_ENDPOINT", "http://127.0.0.1:" + std::to_string(server.s3rver_port())},
         {"S3_FORCE_PATH_STYLE", "true"},
         {"WORKERS", "1"}});
    songd.Start();
    if (!songd.Running()) {
        std::cerr << "songd did not start:\n" << songd.Log();
        return 1;
    }
    std::vector<double> server_side;
    std::vector<double> client_side;
    for (int j = 0; j < jobs; ++j) {
        auto accepted = test::Http("POST", songd.Url("/api/v1/generate"),
                                   {"Content-Type: application/json"}, test::GenerateBody(length));
        if (accepted.status != 202) {
            std::cerr << "generate answered " << accepted.status << ": " << accepted.body << "\n";
            return 1;
        }
        const std::string id(json::parse(accepted.body).at("job_id").as_string());
        Clock::time_point seen_completed{};
        json::object status;
        // Poll with a deadline: a song that never reaches S3 ends the run with an error.
        const auto deadline = Clock::now() + std::chrono::minutes(5);
        while (Clock::now() < deadline) {
            auto r = test::Http("GET", songd.Url("/api/v1/status/" + id));
            status = json::parse(r.body).as_object();
            const std::string state(status["status"].as_string());
            if (state == "failed") break;
            if (state == "completed" && seen_completed == Clock::time_point{}) {
                seen_completed = Clock::now();
            }
            if (status["s3_url"].is_string()) break;
            std::this_thread::sleep_for(std::chrono::milliseconds(5));
        }
        const Clock::time_point seen_s3 = Clock::now();
        if (!status["s3_url"].is_string()) {
            std::cerr << "job " << id << " did not reach S3: " << json::serialize(status) << "\n";
            return 1;
        }
        auto completed_at =
            songd::core::ParseIso8601(std::string(status["completed_at"].as_string()));
        int64_t uploaded_at = LogTime(songd.Log(), "s3_uploaded job_id=" + id);
        if (!completed_at || uploaded_at < 0) {
            std::cerr << "no completed_at or s3_uploaded line for " << id << "\n";
            return 1;
        }
        double server = static_cast<double>(uploaded_at - *completed_at) / 1000.0;
        double client = seen_completed == Clock::time_point{}
                            ? 0.0  // completed and uploaded between two polls
                            : std::chrono::duration<double>(seen_s3 - seen_completed).count();
        server_side.push_back(server);
        client_side.push_back(client);
        std::cout << "job " << j + 1 << ": " << length << " s song, completed_at -> s3_uploaded "
                  << server << " s, status completed -> s3_url seen " << client << " s\n";
    }
    std::cout << "median over " << jobs << " jobs: completed_at -> s3_uploaded "
              << Median(server_side) << " s, status completed -> s3_url seen "
              << Median(client_side) << " s\n";
    songd.Stop();
    return 0;
}
