// The client API on the real binary (issue 11, acceptance 1, 3 and 4): cancel, live events
// as server-sent events, and `Prefer: wait` on generate.
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <boost/json.hpp>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <future>
#include <set>
#include <sstream>

#include "harness/http_client.h"
#include "harness/songd_process.h"

namespace songd::test {
namespace {

namespace json = boost::json;
namespace fs = std::filesystem;
using Clock = std::chrono::steady_clock;

constexpr const char* kMissingId = "00000000-0000-4000-8000-000000000000";

json::object Parse(const std::string& text) {
    boost::system::error_code ec;
    json::value v = json::parse(text, ec);
    if (ec || !v.is_object()) {
        ADD_FAILURE() << "not a JSON object: " << text;
        return {};
    }
    return v.as_object();
}

std::string Str(const json::object& doc, const char* name) {
    const auto* v = doc.if_contains(name);
    return v && v->is_string() ? std::string(v->get_string()) : "";
}

HttpResult Generate(SongdProcess& s, std::vector<std::string> headers = {}) {
    headers.push_back("Content-Type: application/json");
    return Http("POST", s.Url("/api/v1/generate"), headers, GenerateBody());
}

double Seconds(Clock::time_point since) {
    return std::chrono::duration<double>(Clock::now() - since).count();
}

/// One server-sent event as the stream carried it.
struct SseEvent {
    std::string id;
    std::string event;
    std::string data;
};

/// The events of a raw HTTP exchange (head, then the event stream).
std::vector<SseEvent> ParseEvents(const std::string& raw) {
    std::vector<SseEvent> out;
    auto body_at = raw.find("\r\n\r\n");
    if (body_at == std::string::npos) return out;
    std::string body = raw.substr(body_at + 4);
    size_t pos = 0;
    while (true) {
        auto end = body.find("\n\n", pos);
        if (end == std::string::npos) break;
        std::istringstream block(body.substr(pos, end - pos));
        pos = end + 2;
        SseEvent e;
        bool any = false;
        for (std::string line; std::getline(block, line);) {
            if (line.rfind("id: ", 0) == 0) e.id = line.substr(4), any = true;
            if (line.rfind("event: ", 0) == 0) e.event = line.substr(7), any = true;
            if (line.rfind("data: ", 0) == 0) e.data = line.substr(6), any = true;
        }
        if (any) out.push_back(e);
    }
    return out;
}

/// Opens GET …/jobs/{id}/events and reads until the server closes or `max_wait_ms`.
std::string ReadStream(SongdProcess& s, const std::string& id, const std::string& extra_headers,
                       int max_wait_ms) {
    return RawExchange(
        s.port(),
        "GET /api/v1/jobs/" + id + "/events HTTP/1.1\r\nHost: x\r\n" + extra_headers + "\r\n",
        max_wait_ms);
}

/// Polls the status until it is `status`; the seconds it took, or -1 past `timeout`.
double WaitForStatus(SongdProcess& s, const std::string& id, const std::string& status,
                     std::chrono::milliseconds timeout = std::chrono::seconds(20)) {
    const auto started = Clock::now();
    if (!WaitFor([&] { return JobStatusName(s, id) == status; }, timeout)) return -1;
    return Seconds(started);
}

bool DirEmptyOrAbsent(const fs::path& dir) {
    std::error_code ec;
    if (!fs::exists(dir, ec)) return true;
    return fs::is_empty(dir, ec);
}

TEST(ClientApiCancel, QueuedAtOnceProcessingWithinTwoSecondsThenTheNextJob) {
    // 20 s renders, one worker: the first job processes while the others wait.
    SongdProcess songd(Env{{"TONE_RENDER_MS", "20000"}, {"WORKERS", "1"}});
    songd.Start();
    const std::string first = SubmitJob(songd);
    ASSERT_GE(WaitForStatus(songd, first, "processing"), 0);
    const std::string queued = SubmitJob(songd);
    const std::string next = SubmitJob(songd);
    ASSERT_EQ(JobStatusName(songd, queued), "queued");

    // Queued → canceled in the answer itself.
    auto r = Http("POST", songd.Url("/api/v1/jobs/" + queued + "/cancel"));
    ASSERT_EQ(r.status, 200) << r.body;
    EXPECT_EQ(Str(Parse(r.body), "status"), "canceled");
    EXPECT_EQ(JobStatusName(songd, queued), "canceled");
    EXPECT_EQ(JobStatusName(songd, first), "processing");

    // Processing → canceled within 2 s; the work folder goes with it.
    ASSERT_TRUE(WaitFor([&] { return fs::exists(songd.output_dir() / first / "work"); }));
    // The answer may be held while the job stops: the status is watched meanwhile.
    const auto asked = Clock::now();
    auto answer = std::async(std::launch::async,
                             [&] { return Http("DELETE", songd.Url("/api/v1/jobs/" + first)); });
    ASSERT_GE(WaitForStatus(songd, first, "canceled", std::chrono::seconds(10)), 0);
    const double took = Seconds(asked);
    r = answer.get();
    EXPECT_TRUE(r.status == 200 || r.status == 202) << r.status << r.body;
    std::printf("[measure] processing job canceled %.3f s after the request (answer %ld)\n", took,
                r.status);
    EXPECT_LT(took, 2.0);
    EXPECT_TRUE(DirEmptyOrAbsent(songd.output_dir() / first)) << "files left behind";
    auto doc = Parse(Http("GET", songd.Url("/api/v1/status/" + first)).body);
    EXPECT_TRUE(doc["output_file"].is_null());
    EXPECT_TRUE(doc["download_url"].is_null());
    EXPECT_FALSE(doc.contains("cancel_requested"));

    // The worker takes the next job.
    EXPECT_GE(WaitForStatus(songd, next, "processing"), 0);
    EXPECT_NE(songd.Log().find("job_id=" + first + " from=processing to=canceled"),
              std::string::npos);

    // A canceled job answers 409 with its status, on both spellings; download too.
    for (const auto& [method, path] : std::vector<std::pair<std::string, std::string>>{
             {"POST", "/jobs/" + first + "/cancel"}, {"DELETE", "/jobs/" + queued}}) {
        r = Http(method, songd.Url("/api/v1" + path));
        EXPECT_EQ(r.status, 409) << method << " " << path << " " << r.body;
        EXPECT_EQ(Str(Parse(r.body), "job_status"), "canceled");
    }
    r = Http("GET", songd.Url("/api/v1/download/" + first));
    EXPECT_EQ(r.status, 409) << r.body;
    r = Http("GET", songd.Url("/api/v1/preview/" + first));
    EXPECT_EQ(r.status, 409) << r.body;
    auto metrics = Http("GET", songd.Url("/api/v1/metrics")).body;
    EXPECT_NE(metrics.find("songd_jobs{status=\"canceled\"} 2"), std::string::npos) << metrics;
    EXPECT_NE(metrics.find("songd_worker_jobs_total{outcome=\"canceled\"} 1"), std::string::npos);
}

TEST(ClientApiCancel, FinishedJobsAnswer409AndCanceledJobsCannotBePaidFor) {
    // Payments on with an unreachable Stripe: a canceled job is refused before any call.
    SongdProcess songd(Env{{"TONE_RENDER_MS", "0"},
                           {"REQUIRE_PAYMENT_FOR_GENERATION", "true"},
                           {"STRIPE_SECRET_KEY", "sk_test_client_api"},
                           {"STRIPE_PUBLISHABLE_KEY", "pk_test_client_api"},
                           {"STRIPE_API_BASE", "http://127.0.0.1:9"}});
    songd.Start();
    auto r = Generate(songd, {"Prefer: wait=30"});
    ASSERT_EQ(r.status, 201) << r.body;
    const std::string done = Str(Parse(r.body), "job_id");
    r = Http("POST", songd.Url("/api/v1/jobs/" + done + "/cancel"));
    EXPECT_EQ(r.status, 409) << r.body;
    EXPECT_EQ(Str(Parse(r.body), "job_status"), "completed");
    EXPECT_EQ(JobStatusName(songd, done), "completed");

    // A queued job canceled (the worker is kept busy by a 5 s job), then pay for it: 409.
    songd.Stop();
    songd.SetEnv("TONE_RENDER_MS", "5000");
    songd.SetEnv("WORKERS", "1");
    songd.Start();
    const std::string busy = SubmitJob(songd);
    const std::string victim = SubmitJob(songd);
    r = Http("DELETE", songd.Url("/api/v1/jobs/" + victim));
    ASSERT_EQ(r.status, 200) << r.body;
    r = Http("POST", songd.Url("/api/v1/payments/" + victim + "/intent"));
    EXPECT_EQ(r.status, 409) << r.body;
    EXPECT_NE(r.body.find("canceled"), std::string::npos) << r.body;
    r = Http("GET", songd.Url("/api/v1/download/" + victim + "?payment_intent_id=pi_x"));
    EXPECT_EQ(r.status, 409) << r.body;
    EXPECT_EQ(songd.Log().find("127.0.0.1:9"), std::string::npos) << "Stripe was asked";
    (void)busy;
}

TEST(ClientApiCancel, ApiKeyAndBadInput) {
    SongdProcess songd(Env{{"TONE_RENDER_MS", "20000"}, {"WORKERS", "1"}, {"API_KEY", "k3y"}});
    songd.Start();
    auto r = Generate(songd, {"X-API-Key: k3y"});
    ASSERT_EQ(r.status, 202);
    const std::string id = Str(Parse(r.body), "job_id");
    // The key rule of generate.
    EXPECT_EQ(Http("POST", songd.Url("/api/v1/jobs/" + id + "/cancel")).status, 401);
    EXPECT_EQ(Http("DELETE", songd.Url("/api/v1/jobs/" + id), {"X-API-Key: wrong"}).status, 401);
    EXPECT_NE(JobStatusName(songd, id), "canceled");
    // Unknown and malformed ids: 404, nothing changes.
    for (const std::string& bad : {std::string(kMissingId), std::string("not-a-job"),
                                   std::string("..%2F..%2Fetc"), std::string(300, 'a')}) {
        EXPECT_EQ(
            Http("POST", songd.Url("/api/v1/jobs/" + bad + "/cancel"), {"X-API-Key: k3y"}).status,
            404)
            << bad;
        EXPECT_EQ(Http("DELETE", songd.Url("/api/v1/jobs/" + bad), {"X-API-Key: k3y"}).status, 404)
            << bad;
        EXPECT_EQ(Http("GET", songd.Url("/api/v1/jobs/" + bad + "/events")).status, 404) << bad;
    }
    // Wrong methods on the new paths.
    EXPECT_EQ(Http("GET", songd.Url("/api/v1/jobs/" + id + "/cancel")).status, 405);
    EXPECT_EQ(Http("POST", songd.Url("/api/v1/jobs/" + id + "/events")).status, 405);
    // A bad Last-Event-ID: 400, no stream.
    for (const char* bad : {"abc", "-1", "1.5", "99999999999999999999999", "12 13"}) {
        r = Http("GET", songd.Url("/api/v1/jobs/" + id + "/events"),
                 {std::string("Last-Event-ID: ") + bad});
        EXPECT_EQ(r.status, 400) << bad << " " << r.body;
        EXPECT_NE(r.body.find("Last-Event-ID"), std::string::npos);
    }
    EXPECT_EQ(Http("DELETE", songd.Url("/api/v1/jobs/" + id), {"X-API-Key: k3y"}).status / 100, 2);
}

TEST(ClientApiEvents, QueuedProcessingCompletedWithRisingProgressAndResume) {
    SongdProcess songd(Env{{"TONE_RENDER_MS", "3000"}, {"WORKERS", "1"}});
    songd.Start();
    const std::string before = SubmitJob(songd);  // keeps the worker busy at first
    const std::string id = SubmitJob(songd);
    ASSERT_EQ(JobStatusName(songd, id), "queued");
    auto stream = std::async(std::launch::async, [&] { return ReadStream(songd, id, "", 60000); });
    const std::string raw = stream.get();
    ASSERT_NE(raw.find("<closed>"), std::string::npos) << "the stream must close when done";
    ASSERT_EQ(raw.rfind("HTTP/1.1 200", 0), 0u) << raw.substr(0, 300);
    EXPECT_NE(raw.find("Content-Type: text/event-stream"), std::string::npos);
    const auto events = ParseEvents(raw);
    ASSERT_GE(events.size(), 3u) << raw;
    std::vector<std::string> statuses;
    std::vector<int64_t> progress;
    int64_t last_id = -1;
    for (const auto& e : events) {
        EXPECT_EQ(e.event, "status");
        const int64_t seq = std::stoll(e.id);
        EXPECT_GT(seq, last_id) << "ids rise";
        last_id = seq;
        auto doc = Parse(e.data);
        // The same document as GET status.
        EXPECT_EQ(Str(doc, "job_id"), id);
        EXPECT_TRUE(doc.contains("payment") && doc.contains("download_url"));
        const std::string status = Str(doc, "status");
        if (statuses.empty() || statuses.back() != status) statuses.push_back(status);
        if (status == "processing") progress.push_back(doc["progress"].as_int64());
    }
    EXPECT_EQ(statuses, (std::vector<std::string>{"queued", "processing", "completed"}));
    EXPECT_GE(std::set<int64_t>(progress.begin(), progress.end()).size(), 3u);
    EXPECT_TRUE(std::is_sorted(progress.begin(), progress.end()));
    std::printf("[measure] %zu events, last id %lld\n", events.size(),
                static_cast<long long>(last_id));

    // Resuming from the last id replays nothing, and the finished stream closes at once.
    const std::string resumed =
        ReadStream(songd, id, "Last-Event-ID: " + std::to_string(last_id) + "\r\n", 10000);
    EXPECT_NE(resumed.find("<closed>"), std::string::npos);
    EXPECT_TRUE(ParseEvents(resumed).empty()) << resumed;
    // From an earlier id: only the latest state, never one already seen twice.
    const std::string earlier = ReadStream(songd, id, "Last-Event-ID: 1\r\n", 10000);
    auto again = ParseEvents(earlier);
    ASSERT_EQ(again.size(), 1u) << earlier;
    EXPECT_EQ(again[0].id, std::to_string(last_id));
    EXPECT_EQ(Str(Parse(again[0].data), "status"), "completed");
    (void)before;
}

TEST(ClientApiEvents, ResumeMidwayReplaysNothingSeenAndHeartbeats) {
    SongdProcess songd(Env{{"TONE_RENDER_MS", "17000"}, {"WORKERS", "1"}});
    songd.Start();
    const std::string id = SubmitJob(songd);
    ASSERT_GE(WaitForStatus(songd, id, "processing"), 0);
    // First connection: read for a while, then drop it.
    const auto first = ParseEvents(ReadStream(songd, id, "", 1500));
    ASSERT_FALSE(first.empty());
    const std::string seen = first.back().id;
    // Reconnect: every event is newer than the last one seen, until the job completes.
    const std::string raw = ReadStream(songd, id, "Last-Event-ID: " + seen + "\r\n", 60000);
    const auto rest = ParseEvents(raw);
    ASSERT_FALSE(rest.empty()) << raw;
    for (const auto& e : rest) EXPECT_GT(std::stoll(e.id), std::stoll(seen)) << raw;
    EXPECT_EQ(Str(Parse(rest.back().data), "status"), "completed");

    // A queued job does not change for 15 s: the stream carries a heartbeat comment.
    const std::string busy = SubmitJob(songd);
    const std::string waiting = SubmitJob(songd);
    const std::string quiet = ReadStream(songd, waiting, "", 16500);
    EXPECT_NE(quiet.find("\n: heartbeat\n\n"), std::string::npos) << quiet;
    EXPECT_EQ(quiet.find("<closed>"), std::string::npos);
    (void)busy;
}

TEST(ClientApiEvents, MaxEventStreamsAnswers503WithRetryAfter) {
    SongdProcess songd(
        Env{{"TONE_RENDER_MS", "20000"}, {"WORKERS", "1"}, {"MAX_EVENT_STREAMS", "2"}});
    songd.Start();
    const std::string id = SubmitJob(songd);
    auto a = std::async(std::launch::async, [&] { return ReadStream(songd, id, "", 3000); });
    auto b = std::async(std::launch::async, [&] { return ReadStream(songd, id, "", 3000); });
    ASSERT_TRUE(WaitFor([&] {
        return Http("GET", songd.Url("/api/v1/metrics")).body.find("songd_event_streams_open 2") !=
               std::string::npos;
    }));
    auto r = Http("GET", songd.Url("/api/v1/jobs/" + id + "/events"));
    EXPECT_EQ(r.status, 503) << r.body;
    EXPECT_FALSE(r.Header("retry-after").empty());
    a.get();
    b.get();
    // The slots come back once the streams end.
    ASSERT_TRUE(WaitFor([&] {
        return Http("GET", songd.Url("/api/v1/metrics")).body.find("songd_event_streams_open 0") !=
               std::string::npos;
    }));
    EXPECT_EQ(ReadStream(songd, id, "", 1000).rfind("HTTP/1.1 200", 0), 0u);
}

/// VmRSS (kB) and Threads of a process, from /proc/<pid>/status.
std::pair<int64_t, int64_t> RssAndThreads(int pid) {
    std::ifstream in("/proc/" + std::to_string(pid) + "/status");
    int64_t rss = -1, threads = -1;
    for (std::string line; std::getline(in, line);) {
        if (line.rfind("VmRSS:", 0) == 0) rss = std::stoll(line.substr(6));
        if (line.rfind("Threads:", 0) == 0) threads = std::stoll(line.substr(8));
    }
    return {rss, threads};
}

int ConnectAndSend(int port, const std::string& bytes);

TEST(ClientApiEvents, ThousandOpenStreamsCostNoThreads) {
    constexpr int kStreams = 1000;
    SongdProcess songd(Env{{"TONE_RENDER_MS", "60000"},
                           {"WORKERS", "1"},
                           {"MAX_CONNECTIONS_PER_IP", "0"},
                           {"MAX_EVENT_STREAMS", "1000"}});
    songd.Start();
    const std::string busy = SubmitJob(songd);  // progress events go to every stream
    ASSERT_GE(WaitForStatus(songd, busy, "processing"), 0);
    const std::string queued = SubmitJob(songd);
    // Warm the pools (one stream, one status) so their threads exist before the baseline.
    ReadStream(songd, busy, "", 300);
    const auto [rss0, threads0] = RssAndThreads(songd.pid());
    std::vector<int> fds;
    for (int i = 0; i < kStreams; ++i) {
        const std::string& id = i % 2 ? busy : queued;
        int fd = ConnectAndSend(songd.port(),
                                "GET /api/v1/jobs/" + id + "/events HTTP/1.1\r\nHost: x\r\n\r\n");
        ASSERT_GE(fd, 0) << i;
        fds.push_back(fd);
    }
    ASSERT_TRUE(WaitFor([&] {
        return Http("GET", songd.Url("/api/v1/metrics"))
                   .body.find("songd_event_streams_open " + std::to_string(kStreams)) !=
               std::string::npos;
    }));
    // Let a few progress events reach every stream.
    const auto [rss1, threads1] = RssAndThreads(songd.pid());
    std::printf(
        "[measure] %d open event streams: RSS %lld kB -> %lld kB (+%lld kB, %.1f kB a "
        "stream), threads %lld -> %lld\n",
        kStreams, static_cast<long long>(rss0), static_cast<long long>(rss1),
        static_cast<long long>(rss1 - rss0), (rss1 - rss0) / double(kStreams),
        static_cast<long long>(threads0), static_cast<long long>(threads1));
    EXPECT_EQ(threads1, threads0) << "threads must not grow with streams";
    // One more is over the cap.
    EXPECT_EQ(Http("GET", songd.Url("/api/v1/jobs/" + busy + "/events")).status, 503);
    // The service still answers promptly.
    const auto t = Clock::now();
    EXPECT_EQ(Http("GET", songd.Url("/api/v1/status/" + busy)).status, 200);
    std::printf("[measure] a status request with %d streams open took %.1f ms\n", kStreams,
                Seconds(t) * 1000);
    for (int fd : fds) ::close(fd);
    ASSERT_TRUE(WaitFor(
        [&] {
            return Http("GET", songd.Url("/api/v1/metrics"))
                       .body.find("songd_event_streams_open 0") != std::string::npos;
        },
        std::chrono::seconds(40)));
}

TEST(ClientApiPreferWait, FastJobAnswers201SlowJob202AfterTheWait) {
    {
        SongdProcess fast(Env{{"TONE_RENDER_MS", "0"}});
        fast.Start();
        auto r = Generate(fast, {"Prefer: wait=30"});
        ASSERT_EQ(r.status, 201) << r.body;
        EXPECT_EQ(r.Header("preference-applied"), "wait=30");
        auto doc = Parse(r.body);
        EXPECT_EQ(Str(doc, "status"), "completed");
        EXPECT_FALSE(Str(doc, "download_url").empty());  // the status document
        EXPECT_EQ(r.Header("location"), "/api/v1/status/" + Str(doc, "job_id"));
        // Over 60 is capped, and the header says so.
        r = Generate(fast, {"Prefer: wait=999"});
        EXPECT_EQ(r.status, 201) << r.body;
        EXPECT_EQ(r.Header("preference-applied"), "wait=60");
    }
    SongdProcess slow(Env{{"TONE_RENDER_MS", "30000"}, {"WORKERS", "1"}});
    slow.Start();
    const auto t = Clock::now();
    auto r = Generate(slow, {"Prefer: respond-async, wait=3"});
    const double took = Seconds(t);
    std::printf("[measure] Prefer: wait=3 on a 30 s job answered %ld after %.2f s\n", r.status,
                took);
    ASSERT_EQ(r.status, 202) << r.body;
    EXPECT_EQ(r.Header("preference-applied"), "wait=3");
    EXPECT_GE(took, 3.0);
    EXPECT_LT(took, 8.0);
    EXPECT_EQ(Str(Parse(r.body), "status"), "queued");  // the answer generate always gave

    // Bad preferences are ignored (RFC 7240): 202 at once, no Preference-Applied.
    for (const char* bad :
         {"wait=abc", "wait=-5", "wait=0", "wait=", "wait=1.5", "wait", "wat=5"}) {
        const auto started = Clock::now();
        r = Generate(slow, {std::string("Prefer: ") + bad});
        EXPECT_EQ(r.status, 202) << bad;
        EXPECT_EQ(r.Header("preference-applied"), "") << bad;
        EXPECT_LT(Seconds(started), 1.5) << bad;
    }
}

TEST(ClientApiDocs, OpenApiDescribesEachNewEndpointWithACurlExample) {
    SongdProcess songd(Env{});
    songd.Start();
    auto doc = Parse(Http("GET", songd.Url("/openapi.json")).body);
    auto& paths = doc["paths"].as_object();
    const std::vector<std::pair<std::string, std::string>> ops = {
        {"/api/v1/jobs/{job_id}/cancel", "post"},
        {"/api/v1/jobs/{job_id}", "delete"},
        {"/api/v1/jobs/{job_id}/events", "get"}};
    for (const auto& [path, method] : ops) {
        ASSERT_TRUE(paths.contains(path)) << path;
        auto& op = paths[path].as_object()[method].as_object();
        EXPECT_NE(Str(op, "description").find("curl "), std::string::npos) << path;
        EXPECT_TRUE(op["responses"].as_object().contains("404")) << path;
    }
    auto& generate = paths["/api/v1/generate"].as_object()["post"].as_object();
    EXPECT_TRUE(generate["responses"].as_object().contains("201"));
    bool prefer = false;
    for (const auto& p : generate["parameters"].as_array()) {
        prefer = prefer || p.as_object().at("name").as_string() == "Prefer";
    }
    EXPECT_TRUE(prefer);
    auto& statuses = doc["components"]
                         .as_object()["schemas"]
                         .as_object()["JobStatus"]
                         .as_object()["properties"]
                         .as_object()["status"]
                         .as_object()["enum"]
                         .as_array();
    EXPECT_NE(std::find(statuses.begin(), statuses.end(), json::value("canceled")), statuses.end());
}

int ConnectAndSend(int port, const std::string& bytes) {
    int fd = ::socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_port = htons(static_cast<uint16_t>(port));
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0) {
        ::close(fd);
        return -1;
    }
    if (::send(fd, bytes.data(), bytes.size(), MSG_NOSIGNAL) !=
        static_cast<ssize_t>(bytes.size())) {
        ::close(fd);
        return -1;
    }
    return fd;
}

}  // namespace
}  // namespace songd::test
