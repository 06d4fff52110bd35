// Bad input gets a clear problem+json answer and changes nothing (acceptance 4 of the
// service core). Table-driven: each case has a stable id.
#include <gtest/gtest.h>

#include <boost/json.hpp>
#include <set>
#include <thread>

#include "harness/http_client.h"
#include "harness/songd_process.h"

namespace songd::test {
namespace {

namespace json = boost::json;

/// A fingerprint of the store: job counts by status from the metrics endpoint, plus the
/// entries of the output folder.
std::string StoreFingerprint(SongdProcess& s) {
    auto metrics = Http("GET", s.Url("/api/v1/metrics")).body;
    std::string out;
    size_t pos = 0;
    while ((pos = metrics.find("\nsongd_jobs{", pos)) != std::string::npos) {
        size_t end = metrics.find('\n', pos + 1);
        out += metrics.substr(pos + 1, end - pos - 1) + ";";
        pos = end;
    }
    std::error_code ec;
    for (const auto& entry : std::filesystem::directory_iterator(s.output_dir(), ec)) {
        out += entry.path().filename().string() + ";";
    }
    return out;
}

struct Case {
    const char* id;
    std::string method;
    std::string path;
    std::string body;
    std::vector<std::string> headers;
    long status;
    std::string detail_contains;
};

const std::string kLyrics = R"([00:05.00]Morning light on the water\n[00:12.50]We sing along)";

std::string Body(const std::string& fields) {
    return "{\"lyrics\":\"" + kLyrics + "\",\"style_prompt\":\"pop\"" + fields + "}";
}

class BadInput : public ::testing::Test {
  protected:
    static void SetUpTestSuite() {
        songd_ = new SongdProcess(Env{{"HTTP_READ_TIMEOUT", "2"}});
        songd_->Start();
    }
    static void TearDownTestSuite() {
        delete songd_;
        songd_ = nullptr;
    }
    static SongdProcess* songd_;
};
SongdProcess* BadInput::songd_ = nullptr;

TEST_F(BadInput, EveryBadRequestGetsAProblemAndChangesNothing) {
    const std::vector<std::string> json_header = {"Content-Type: application/json"};
    const std::string g = "/api/v1/generate";
    const std::vector<Case> cases = {
        {"malformed-json", "POST", g, "{\"lyrics\": ", json_header, 422, "not valid JSON"},
        {"json-array", "POST", g, "[1,2]", json_header, 422, "JSON object"},
        {"empty-body", "POST", g, "", json_header, 422, "not valid JSON"},
        {"missing-lyrics", "POST", g, R"({"style_prompt":"pop"})", json_header, 422,
         "body.lyrics: Field required"},
        {"missing-style", "POST", g, "{\"lyrics\":\"" + kLyrics + "\"}", json_header, 422,
         "body.style_prompt: Field required"},
        {"lyrics-number", "POST", g, R"({"lyrics":12345678901,"style_prompt":"pop"})", json_header,
         422, "valid string"},
        {"length-string", "POST", g, Body(R"(,"audio_length":"95")"), json_header, 422,
         "valid integer"},
        {"length-fraction", "POST", g, Body(R"(,"audio_length":95.5)"), json_header, 422,
         "valid integer"},
        {"length-94", "POST", g, Body(R"(,"audio_length":94)"), json_header, 422,
         "exactly 95 or between 96-285"},
        {"length-286", "POST", g, Body(R"(,"audio_length":286)"), json_header, 422,
         "exactly 95 or between 96-285"},
        {"batch-0", "POST", g, Body(R"(,"batch_size":0)"), json_header, 422, "batch_size"},
        {"batch-too-big", "POST", g, Body(R"(,"batch_size":99)"), json_header, 422, "batch_size"},
        {"preset-unknown", "POST", g, Body(R"(,"preset":"extreme")"), json_header, 422,
         "preset must be one of"},
        {"master-unknown", "POST", g, Body(R"(,"master_preset":"quiet")"), json_header, 422,
         "master_preset must be one of"},
        {"auto-master-string", "POST", g, Body(R"(,"auto_master":"yes")"), json_header, 422,
         "valid boolean"},
        {"seed-negative", "POST", g, Body(R"(,"seed":-1)"), json_header, 422, "seed"},
        {"intent-malformed", "POST", g, Body(R"(,"payment_intent_id":"../x")"), json_header, 422,
         "pi_"},
        {"style-too-short", "POST", g, "{\"lyrics\":\"" + kLyrics + "\",\"style_prompt\":\"a\"}",
         json_header, 422, "at least 3"},
        {"empty-lyric-line", "POST", g,
         R"({"lyrics":"[00:05.00]Hello there\n[00:07.00]","style_prompt":"pop"})", json_header, 422,
         "line 2: a timed line needs words"},
        {"letterless-line", "POST", g,
         R"({"lyrics":"[00:05.00]Hello there\n[00:07.00] ... 123 !","style_prompt":"pop"})",
         json_header, 422, "line 2: a timed line needs words"},
        {"timestamp-past-end", "POST", g,
         R"({"lyrics":"[00:05.00]Hello there\n[01:40.00]too late","style_prompt":"pop"})",
         json_header, 422, "line 2: timestamp [01:40.00]"},
        {"untimed-line", "POST", g,
         R"({"lyrics":"[00:05.00]Hello there\nno time here","style_prompt":"pop"})", json_header,
         422, "untimed lines (line 2)"},
        {"tag-in-lrc", "POST", g,
         R"({"lyrics":"[00:05.00]Hello there\n[Chorus]\n[00:09.00]Again","style_prompt":"pop"})",
         json_header, 422, "line 2: expected a timestamp"},
        {"unknown-tag", "POST", g,
         R"({"lyrics":"[Verse]\nHello there\n[Yodel]\nagain","style_prompt":"pop"})", json_header,
         422, "line 3: unknown section tag [Yodel]"},
        {"plain-letterless-line", "POST", g,
         R"({"lyrics":"Hello there\n... 123 !","style_prompt":"pop"})", json_header, 422,
         "line 2: a lyric line needs words"},
        {"instrumental-string", "POST", g, Body(R"(,"instrumental":"yes")"), json_header, 422,
         "valid boolean"},
        {"lyrics-bad-id", "GET", "/api/v1/jobs/..%2F..%2Fetc/lyrics", "", {}, 404, ""},
        {"lyrics-unknown-job",
         "GET",
         "/api/v1/jobs/00000000-0000-4000-8000-000000000000/lyrics",
         "",
         {},
         404,
         "not found"},
        {"lyrics-post",
         "POST",
         "/api/v1/jobs/00000000-0000-4000-8000-000000000000/lyrics",
         "",
         {},
         405,
         ""},
        {"not-json-type", "POST", g, Body(""), {"Content-Type: text/plain"}, 415, "must be JSON"},
        {"bad-idempotency-key",
         "POST",
         g,
         Body(""),
         {"Content-Type: application/json", "Idempotency-Key: a b"},
         422,
         "Idempotency-Key"},
        {"body-over-1mib", "POST", g, std::string(1024 * 1024 + 10, 'x'), json_header, 413,
         "larger than 1048576"},
        {"traversal-status", "GET", "/api/v1/status/..%2F..%2Fetc%2Fpasswd", "", {}, 404, ""},
        {"traversal-download", "GET", "/api/v1/download/..%2F..%2Fetc%2Fpasswd", "", {}, 404, ""},
        {"dotdot-download", "GET", "/api/v1/download/..", "", {}, 404, "not a job id"},
        {"long-id-status",
         "GET",
         "/api/v1/status/" + std::string(10000, 'a'),
         "",
         {},
         404,
         "not a job id"},
        {"long-id-download",
         "GET",
         "/api/v1/download/" + std::string(10000, 'a'),
         "",
         {},
         404,
         "not a job id"},
        {"unknown-job",
         "GET",
         "/api/v1/status/00000000-0000-4000-8000-000000000000",
         "",
         {},
         404,
         "not found"},
        {"unknown-route", "GET", "/api/v1/nothing-here", "", {}, 404, "no endpoint"},
        {"root-unknown", "GET", "/etc/passwd", "", {}, 404, "no endpoint"},
        {"wrong-method-generate", "GET", g, "", {}, 405, "not allowed"},
        {"wrong-method-status",
         "DELETE",
         "/api/v1/status/00000000-0000-4000-8000-000000000000",
         "",
         {},
         405,
         "not allowed"},
        {"bad-format",
         "GET",
         "/api/v1/download/00000000-0000-4000-8000-000000000000?format=ogg",
         "",
         {},
         404,
         "not found"},
    };
    const std::string before = StoreFingerprint(*songd_);
    for (const auto& c : cases) {
        SCOPED_TRACE(c.id);
        auto r = Http(c.method, songd_->Url(c.path), c.headers, c.body);
        EXPECT_EQ(r.status, c.status) << r.body << r.error;
        EXPECT_EQ(r.Header("content-type"), "application/problem+json");
        boost::system::error_code ec;
        auto doc = json::parse(r.body, ec);
        ASSERT_FALSE(ec) << r.body;
        auto& o = doc.as_object();
        EXPECT_EQ(o["status"].as_int64(), c.status);
        EXPECT_TRUE(o["detail"].is_string());
        EXPECT_TRUE(o["title"].is_string());
        EXPECT_NE(std::string(o["detail"].as_string()).find(c.detail_contains), std::string::npos)
            << o["detail"];
        if (c.status == 422 && r.Header("content-type") == "application/problem+json") {
            ASSERT_TRUE(o.contains("errors"));
            auto& first = o["errors"].as_array().at(0).as_object();
            EXPECT_TRUE(first["loc"].is_array());
            EXPECT_TRUE(first["msg"].is_string());
        }
        if (c.status == 405) {
            EXPECT_FALSE(r.Header("allow").empty());
        }
    }
    EXPECT_EQ(StoreFingerprint(*songd_), before);
}

TEST_F(BadInput, EveryProblemIsListedForFastApiClients) {
    auto r = Http("POST", songd_->Url("/api/v1/generate"), {"Content-Type: application/json"},
                  R"({"audio_length":94,"batch_size":"x"})");
    ASSERT_EQ(r.status, 422);
    auto errors = json::parse(r.body).at("errors").as_array();
    std::set<std::string> fields;
    for (auto& e : errors) fields.insert(std::string(e.at("loc").as_array().at(1).as_string()));
    EXPECT_EQ(fields,
              (std::set<std::string>{"lyrics", "style_prompt", "audio_length", "batch_size"}));
}

TEST_F(BadInput, DownloadOfUnfinishedOrUnknownFormatJob) {
    SongdProcess slow(Env{{"TONE_RENDER_MS", "20000"}, {"WORKERS", "1"}});
    slow.Start();
    auto created =
        Http("POST", slow.Url("/api/v1/generate"), {"Content-Type: application/json"}, Body(""));
    std::string id(json::parse(created.body).at("job_id").as_string());
    auto r = Http("GET", slow.Url("/api/v1/download/" + id));
    EXPECT_EQ(r.status, 409);
    EXPECT_NE(r.body.find("only completed jobs can be downloaded"), std::string::npos);
    auto fmt = Http("GET", slow.Url("/api/v1/download/" + id + "?format=ogg"));
    EXPECT_EQ(fmt.status, 422);
}

TEST_F(BadInput, SilentClientIsDroppedAndOthersAreServed) {
    // Opens a connection and sends nothing: the server closes it after HTTP_READ_TIMEOUT.
    std::string silent;
    std::thread idle([&] { silent = RawExchange(songd_->port(), "", 10000); });
    // Meanwhile other clients are served.
    for (int i = 0; i < 20; ++i) EXPECT_EQ(Http("GET", songd_->Url("/healthz")).status, 200);
    idle.join();
    EXPECT_EQ(silent, "<closed>");
    // A client that stalls halfway through its headers is dropped as well.
    std::string partial =
        RawExchange(songd_->port(), "GET /healthz HTTP/1.1\r\nHost: x\r\n", 10000);
    EXPECT_EQ(partial.find("HTTP/1.1 200"), std::string::npos);
    EXPECT_NE(partial.find("<closed>"), std::string::npos);
    EXPECT_EQ(Http("GET", songd_->Url("/healthz")).status, 200);
    // A keep-alive connection that was answered and then sends nothing more is closed too.
    std::string answered =
        RawExchange(songd_->port(), "GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n", 10000);
    EXPECT_EQ(answered.rfind("HTTP/1.1 200", 0), 0u) << answered;
    EXPECT_NE(answered.find("<closed>"), std::string::npos) << answered;
}

TEST_F(BadInput, GarbageOnTheWireGets400) {
    std::string reply = RawExchange(songd_->port(), "HELLO\r\n\r\n", 5000);
    EXPECT_NE(reply.find("HTTP/1.1 400"), std::string::npos) << reply;
    EXPECT_NE(reply.find("application/problem+json"), std::string::npos);
}

}  // namespace
}  // namespace songd::test
