// The generation lifecycle over real HTTP against the real binary (acceptance 2 of the
// service core), plus the cross-cutting behaviour every client relies on.
#include <gtest/gtest.h>

#include <boost/json.hpp>
#include <regex>
#include <set>

#include "engine/engine.h"
#include "harness/http_client.h"
#include "harness/songd_process.h"
#include "harness/wav.h"

namespace songd::test {
namespace {

namespace json = boost::json;

json::object StatusOf(SongdProcess& s, const std::string& id) {
    auto r = Http("GET", s.Url("/api/v1/status/" + id));
    EXPECT_EQ(r.status, 200) << r.body;
    return json::parse(r.body).as_object();
}

std::string Submit(SongdProcess& s, const std::string& body,
                   std::vector<std::string> headers = {"Content-Type: application/json"}) {
    auto r = Http("POST", s.Url("/api/v1/generate"), headers, body);
    EXPECT_EQ(r.status, 202) << r.body;
    auto doc = json::parse(r.body).as_object();
    EXPECT_EQ(r.Header("location"), "/api/v1/status/" + std::string(doc["job_id"].as_string()));
    return std::string(doc["job_id"].as_string());
}

TEST(Lifecycle, GenerateProgressDownloadConditionalAndRange) {
    // The tone engine paced over 3 s so the test can watch the job move.
    SongdProcess songd(Env{{"TONE_RENDER_MS", "3000"}, {"WORKERS", "1"}});
    songd.Start();
    const int length = 120;
    auto r = Http("POST", songd.Url("/api/v1/generate"), {"Content-Type: application/json"},
                  GenerateBody(length));
    ASSERT_EQ(r.status, 202) << r.body;
    auto accepted = json::parse(r.body).as_object();
    for (const char* field :
         {"job_id", "status", "queue_position", "estimated_wait_minutes", "message"}) {
        EXPECT_TRUE(accepted.contains(field)) << field;
    }
    const std::string id(accepted["job_id"].as_string());

    std::vector<std::string> statuses;
    std::vector<int64_t> progress;
    ASSERT_TRUE(WaitFor([&] {
        auto doc = StatusOf(songd, id);
        std::string status(doc["status"].as_string());
        if (statuses.empty() || statuses.back() != status) statuses.push_back(status);
        if (status == "processing") progress.push_back(doc["progress"].as_int64());
        return status == "completed" || status == "failed";
    }));
    ASSERT_EQ(statuses.back(), "completed") << StatusOf(songd, id);
    // queued may be too brief to see with an idle worker; processing never is (3 s).
    std::vector<std::string> expected_tail = {"processing", "completed"};
    ASSERT_GE(statuses.size(), 2u);
    EXPECT_EQ(std::vector<std::string>(statuses.end() - 2, statuses.end()), expected_tail);
    if (statuses.size() == 3) {
        EXPECT_EQ(statuses.front(), "queued");
    }
    std::set<int64_t> distinct(progress.begin(), progress.end());
    EXPECT_GE(distinct.size(), 3u) << "progress should rise while processing";
    EXPECT_TRUE(std::is_sorted(progress.begin(), progress.end()));

    auto done = StatusOf(songd, id);
    EXPECT_EQ(done["progress"].as_int64(), 100);
    for (const char* field :
         {"job_id", "status", "created_at", "started_at", "completed_at", "output_file", "s3_url",
          "error", "queue_position", "estimated_wait_minutes", "progress", "expires_at", "payment",
          "download_url", "preview_url", "audio"}) {
        EXPECT_TRUE(done.contains(field)) << field;
    }
    EXPECT_EQ(done["output_file"].as_string(), id + "/output_fixed.wav");
    std::string created(done["created_at"].as_string());
    EXPECT_EQ(created.back(), 'Z');

    auto download = Http("GET", songd.Url("/api/v1/download/" + id));
    ASSERT_EQ(download.status, 200) << download.error;
    EXPECT_EQ(download.Header("content-type"), "audio/wav");
    EXPECT_NE(download.Header("content-disposition").find("attachment"), std::string::npos);
    EXPECT_FALSE(download.Header("etag").empty());
    EXPECT_FALSE(download.Header("last-modified").empty());
    WavInfo wav = ParseWav(download.body);
    ASSERT_TRUE(wav.valid);
    EXPECT_EQ(wav.sample_rate, 44100);
    EXPECT_EQ(wav.channels, 2);
    EXPECT_EQ(wav.bits, 16);
    EXPECT_EQ(wav.frames, engine::TargetFrames(length));
    EXPECT_EQ(wav.frames, (length * 44100 / 2048) * 2048);

    // Polling costs almost nothing: the same document answers 304.
    auto first = Http("GET", songd.Url("/api/v1/status/" + id));
    const std::string etag = first.Header("etag");
    ASSERT_FALSE(etag.empty());
    auto again = Http("GET", songd.Url("/api/v1/status/" + id), {"If-None-Match: " + etag});
    EXPECT_EQ(again.status, 304);
    EXPECT_TRUE(again.body.empty());
    auto other = Http("GET", songd.Url("/api/v1/status/" + id), {"If-None-Match: \"other\""});
    EXPECT_EQ(other.status, 200);

    auto range = Http("GET", songd.Url("/api/v1/download/" + id), {"Range: bytes=0-99"});
    EXPECT_EQ(range.status, 206);
    EXPECT_EQ(range.body.size(), 100u);
    EXPECT_EQ(range.body, download.body.substr(0, 100));
    EXPECT_EQ(range.Header("content-range"), "bytes 0-99/" + std::to_string(download.body.size()));
    auto tail = Http("GET", songd.Url("/api/v1/download/" + id), {"Range: bytes=-10"});
    EXPECT_EQ(tail.status, 206);
    EXPECT_EQ(tail.body, download.body.substr(download.body.size() - 10));
    auto beyond = Http("GET", songd.Url("/api/v1/download/" + id),
                       {"Range: bytes=" + std::to_string(download.body.size()) + "-"});
    EXPECT_EQ(beyond.status, 416);
    auto head = Http("HEAD", songd.Url("/api/v1/download/" + id));
    EXPECT_EQ(head.status, 200);
    EXPECT_EQ(head.Header("content-length"), std::to_string(download.body.size()));
}

TEST(Lifecycle, DefaultLengthIs95SecondsAsDiffRhythm) {
    SongdProcess songd;
    songd.Start();
    std::string id = Submit(songd, R"({"lyrics":"[00:01.00]la la la la","style_prompt":"folk"})");
    ASSERT_TRUE(WaitFor([&] { return StatusOf(songd, id)["status"].as_string() == "completed"; }));
    auto wav = ParseWav(Http("GET", songd.Url("/api/v1/download/" + id)).body);
    EXPECT_EQ(wav.frames, 2048 * 2048);
    // Written as the old backend wrote it (95.10893...), not in exponent form (9.51E1).
    const std::string body = Http("GET", songd.Url("/api/v1/status/" + id)).body;
    EXPECT_TRUE(std::regex_search(body, std::regex(R"re("duration_seconds":95\.1089[0-9]*[,}])re")))
        << body;
}

TEST(Lifecycle, FreePreviewAndDownloadFormats) {
    SongdProcess songd(Env{{"PREVIEW_SECONDS", "10"}});
    songd.Start();
    std::string id = Submit(songd, GenerateBody(100));
    ASSERT_TRUE(WaitFor([&] { return StatusOf(songd, id)["status"].as_string() == "completed"; }));
    auto doc = StatusOf(songd, id);
    ASSERT_TRUE(doc["preview_url"].is_string());
    EXPECT_EQ(doc["preview_url"].as_string(), "/api/v1/preview/" + id);
    auto preview = Http("GET", songd.Url("/api/v1/preview/" + id));
    ASSERT_EQ(preview.status, 200);
    EXPECT_EQ(preview.Header("content-type"), "audio/mpeg");
    ASSERT_GT(preview.body.size(), 1000u);
    const bool id3 = preview.body.compare(0, 3, "ID3") == 0;
    const bool frame = static_cast<unsigned char>(preview.body[0]) == 0xFF &&
                       (static_cast<unsigned char>(preview.body[1]) & 0xE0) == 0xE0;
    EXPECT_TRUE(id3 || frame) << "not an MP3";
    // ~10 s at 128 kb/s is about 160 kB; the whole song would be far larger.
    EXPECT_LT(preview.body.size(), 400u * 1024);

    auto flac = Http("GET", songd.Url("/api/v1/download/" + id + "?format=flac"));
    ASSERT_EQ(flac.status, 200);
    EXPECT_EQ(flac.Header("content-type"), "audio/flac");
    EXPECT_EQ(flac.body.compare(0, 4, "fLaC"), 0);
    EXPECT_NE(flac.Header("content-disposition").find("song-" + id + ".flac"), std::string::npos);
    auto mp3 = Http("GET", songd.Url("/api/v1/download/" + id + "?format=mp3"));
    ASSERT_EQ(mp3.status, 200);
    EXPECT_EQ(mp3.Header("content-type"), "audio/mpeg");
    // Transcoded once, cached beside the WAV.
    EXPECT_TRUE(std::filesystem::exists(songd.output_dir() / id / "output_fixed.flac"));
    EXPECT_TRUE(std::filesystem::exists(songd.output_dir() / id / "output_fixed.mp3"));
    auto bad = Http("GET", songd.Url("/api/v1/download/" + id + "?format=ogg"));
    EXPECT_EQ(bad.status, 422);
}

TEST(Lifecycle, NoPreviewWhenDisabled) {
    SongdProcess songd(Env{{"PREVIEW_SECONDS", "0"}});
    songd.Start();
    std::string id = Submit(songd, GenerateBody());
    ASSERT_TRUE(WaitFor([&] { return StatusOf(songd, id)["status"].as_string() == "completed"; }));
    EXPECT_TRUE(StatusOf(songd, id)["preview_url"].is_null());
    EXPECT_EQ(Http("GET", songd.Url("/api/v1/preview/" + id)).status, 404);
}

TEST(Lifecycle, IdempotencyKeyReturnsTheSameJob) {
    SongdProcess songd;
    songd.Start();
    std::vector<std::string> headers = {"Content-Type: application/json",
                                        "Idempotency-Key: abc-123"};
    std::string a = Submit(songd, GenerateBody(), headers);
    auto replay = Http("POST", songd.Url("/api/v1/generate"), headers, GenerateBody());
    EXPECT_EQ(replay.status, 202);
    EXPECT_EQ(json::parse(replay.body).at("job_id").as_string(), a);
    EXPECT_EQ(replay.Header("idempotent-replayed"), "true");
    auto conflict = Http("POST", songd.Url("/api/v1/generate"), headers, GenerateBody(100));
    EXPECT_EQ(conflict.status, 409);
    EXPECT_EQ(conflict.Header("content-type"), "application/problem+json");
    auto queue = json::parse(Http("GET", songd.Url("/api/v1/queue")).body).as_object();
    auto health = json::parse(Http("GET", songd.Url("/api/v1/health")).body).as_object();
    int64_t total = queue["queue_length"].as_int64() + queue["processing"].as_int64();
    EXPECT_LE(total, 1);
    EXPECT_TRUE(health.contains("models_loaded"));
}

TEST(Lifecycle, AliasAndApiKeyAndRateLimit) {
    SongdProcess songd(Env{
        {"API_KEY", "k3y-for-tests"}, {"ENABLE_RATE_LIMIT", "true"}, {"RATE_LIMIT_PER_HOUR", "2"}});
    songd.Start();
    auto no_key = Http("POST", songd.Url("/api/generate"), {"Content-Type: application/json"},
                       GenerateBody());
    EXPECT_EQ(no_key.status, 401);
    auto wrong = Http("POST", songd.Url("/api/v1/generate"),
                      {"Content-Type: application/json", "X-API-Key: nope"}, GenerateBody());
    EXPECT_EQ(wrong.status, 401);
    std::vector<std::string> ok = {"Content-Type: application/json", "X-API-Key: k3y-for-tests"};
    EXPECT_EQ(Http("POST", songd.Url("/api/generate"), ok, GenerateBody()).status, 202);
    EXPECT_EQ(Http("POST", songd.Url("/api/v1/generate"), ok, GenerateBody()).status, 202);
    auto limited = Http("POST", songd.Url("/api/v1/generate"), ok, GenerateBody());
    EXPECT_EQ(limited.status, 429);
    EXPECT_GT(std::stoi(limited.Header("retry-after")), 0);
    EXPECT_EQ(limited.Header("content-type"), "application/problem+json");
    // Status is not rate limited and needs no key.
    EXPECT_EQ(Http("GET", songd.Url("/api/v1/queue")).status, 200);
}

TEST(Lifecycle, CorsSecurityHeadersDocsAndMetrics) {
    SongdProcess songd(Env{{"CORS_ORIGINS", "https://app.example.com"}});
    songd.Start();
    auto r = Http("GET", songd.Url("/api/v1/queue"), {"Origin: https://app.example.com"});
    EXPECT_EQ(r.Header("access-control-allow-origin"), "https://app.example.com");
    EXPECT_EQ(r.Header("x-content-type-options"), "nosniff");
    EXPECT_EQ(r.Header("x-frame-options"), "DENY");
    auto other = Http("GET", songd.Url("/api/v1/queue"), {"Origin: https://evil.example"});
    EXPECT_EQ(other.Header("access-control-allow-origin"), "");
    auto preflight = Http("OPTIONS", songd.Url("/api/v1/generate"),
                          {"Origin: https://app.example.com", "Access-Control-Request-Method: POST",
                           "Access-Control-Request-Headers: content-type, x-api-key"});
    EXPECT_EQ(preflight.status, 204);
    EXPECT_EQ(preflight.Header("access-control-allow-origin"), "https://app.example.com");

    auto openapi = Http("GET", songd.Url("/openapi.json"));
    ASSERT_EQ(openapi.status, 200);
    auto doc = json::parse(openapi.body).as_object();
    EXPECT_EQ(doc["openapi"].as_string(), "3.1.0");
    auto& paths = doc["paths"].as_object();
    for (const char* path :
         {"/api/v1/generate", "/api/v1/status/{job_id}", "/api/v1/download/{job_id}",
          "/api/v1/health", "/api/v1/queue", "/healthz", "/readyz", "/api/v1/metrics"}) {
        EXPECT_TRUE(paths.contains(path)) << path;
    }
    auto docs = Http("GET", songd.Url("/docs"));
    EXPECT_EQ(docs.status, 200);
    EXPECT_NE(docs.body.find("/openapi.json"), std::string::npos);
    EXPECT_EQ(Http("GET", songd.Url("/readyz")).status, 200);

    Http("GET", songd.Url("/api/v1/status/00000000-0000-4000-8000-000000000000"));
    auto metrics = Http("GET", songd.Url("/api/v1/metrics"));
    ASSERT_EQ(metrics.status, 200);
    EXPECT_NE(metrics.body.find("songd_http_requests_total{method=\"GET\",route=\"/api/v1/status/"
                                "{job_id}\",status=\"404\"} 1"),
              std::string::npos)
        << metrics.body;
    EXPECT_NE(metrics.body.find("songd_jobs{status=\"queued\"}"), std::string::npos);
}

TEST(Lifecycle, FailedRenderIsReportedNotShipped) {
    SongdProcess songd(Env{{"TONE_FAULT", "nan"}});
    songd.Start();
    std::string id = Submit(songd, GenerateBody());
    ASSERT_TRUE(WaitFor([&] { return StatusOf(songd, id)["status"].as_string() == "failed"; }));
    auto doc = StatusOf(songd, id);
    EXPECT_NE(std::string(doc["error"].as_string()).find("NaN"), std::string::npos) << doc;
    auto download = Http("GET", songd.Url("/api/v1/download/" + id));
    EXPECT_EQ(download.status, 409);
    EXPECT_FALSE(std::filesystem::exists(songd.output_dir() / id / "output_fixed.wav"));
}

TEST(Lifecycle, TimeoutFailsTheJobWithCodeTimeout) {
    SongdProcess songd(Env{{"TONE_RENDER_MS", "20000"}, {"GENERATION_TIMEOUT", "1"}});
    songd.Start();
    std::string id = Submit(songd, GenerateBody());
    ASSERT_TRUE(WaitFor([&] { return StatusOf(songd, id)["status"].as_string() == "failed"; }));
    auto doc = StatusOf(songd, id);
    EXPECT_EQ(doc["error_code"].as_string(), "timeout");
    EXPECT_NE(std::string(doc["error"].as_string()).find("GENERATION_TIMEOUT"), std::string::npos);
}

}  // namespace
}  // namespace songd::test
