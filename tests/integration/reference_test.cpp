// Reference songs on the real binary: POST /api/v1/uploads (multipart and raw), what it
// refuses and that a refusal stores nothing, generate's ref_audio_id, the API key and rate
// limit, restarts, retention, and a synth song that follows the reference's tempo and key.
#include "audio/reference.h"

#include <gtest/gtest.h>
#include <sqlite3.h>

#include <boost/json.hpp>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "core/clock.h"
#include "harness/http_client.h"
#include "harness/reference_signals.h"
#include "harness/songd_process.h"

namespace songd::test {
namespace {

namespace fs = std::filesystem;
namespace json = boost::json;

std::string ReadBytes(const fs::path& path) {
    std::ifstream in(path, std::ios::binary);
    std::stringstream ss;
    ss << in.rdbuf();
    return ss.str();
}

/// `samples` as the bytes of a file in `format` (written by libsndfile).
std::string AudioBytes(const SongdProcess& songd, const std::vector<float>& samples,
                       int format = SF_FORMAT_WAV | SF_FORMAT_PCM_16) {
    static int n = 0;
    fs::path path = songd.dir() / ("signal-" + std::to_string(++n));
    WriteMono(path, samples, 44100, format);
    std::string bytes = ReadBytes(path);
    fs::remove(path);
    return bytes;
}

const std::string kBoundary = "----songdTestBoundary7MA4YWxk";

std::string Multipart(const std::vector<std::pair<std::string, std::string>>& fields) {
    std::string body;
    for (const auto& [name, bytes] : fields) {
        body += "--" + kBoundary + "\r\nContent-Disposition: form-data; name=\"" + name +
                "\"; filename=\"song.wav\"\r\nContent-Type: application/octet-stream\r\n\r\n" +
                bytes + "\r\n";
    }
    return body + "--" + kBoundary + "--\r\n";
}

HttpResult UploadMultipart(SongdProcess& songd, const std::string& body,
                           std::vector<std::string> headers = {}) {
    headers.push_back("Content-Type: multipart/form-data; boundary=" + kBoundary);
    return Http("POST", songd.Url("/api/v1/uploads"), headers, body);
}

HttpResult UploadRaw(SongdProcess& songd, const std::string& bytes,
                     const std::string& type = "audio/wav") {
    return Http("POST", songd.Url("/api/v1/uploads"), {"Content-Type: " + type}, bytes);
}

int64_t UploadRows(const SongdProcess& songd) {
    sqlite3* db = nullptr;
    const fs::path path = songd.dir() / "data" / "songd.db";
    if (sqlite3_open_v2(path.c_str(), &db, SQLITE_OPEN_READONLY, nullptr) != SQLITE_OK) {
        sqlite3_close(db);
        return -1;
    }
    sqlite3_stmt* stmt = nullptr;
    int64_t count = -1;
    if (sqlite3_prepare_v2(db, "SELECT COUNT(*) FROM uploads", -1, &stmt, nullptr) == SQLITE_OK &&
        sqlite3_step(stmt) == SQLITE_ROW) {
        count = sqlite3_column_int64(stmt, 0);
    }
    sqlite3_finalize(stmt);
    sqlite3_close(db);
    return count;
}

/// Files and folders under OUTPUT_DIR/uploads (none: the folder may not exist).
std::vector<std::string> UploadEntries(const SongdProcess& songd) {
    std::vector<std::string> out;
    std::error_code ec;
    for (fs::recursive_directory_iterator it(songd.output_dir() / "uploads", ec), end;
         !ec && it != end; it.increment(ec)) {
        out.push_back(it->path().string());
    }
    return out;
}

std::string Generate(SongdProcess& songd, const std::string& fields,
                     std::vector<std::string> headers = {}) {
    headers.push_back("Content-Type: application/json");
    auto r = Http("POST", songd.Url("/api/v1/generate"), headers,
                  R"({"lyrics":"[00:05.00]Morning light on the water\n[00:12.50]We sing along",)" +
                      fields + "}");
    return std::to_string(r.status) + " " + r.body;
}

TEST(ReferenceUpload, MultipartAndRawBodiesAreDecodedAnalysedStoredAndSurviveARestart) {
    SongdProcess songd;
    songd.Start();
    auto multipart =
        UploadMultipart(songd, Multipart({{"file", AudioBytes(songd, DrumLoop(100, 20))}}));
    ASSERT_EQ(multipart.status, 201) << multipart.body;
    auto doc = json::parse(multipart.body).as_object();
    const std::string drums(doc.at("upload_id").as_string());
    EXPECT_NEAR(doc.at("duration_seconds").to_number<double>(), 20.0, 0.05);
    EXPECT_EQ(doc.at("format"), "wav");
    EXPECT_NEAR(doc.at("tempo_bpm").to_number<double>(), 100.0, 3.0);
    EXPECT_EQ(multipart.Header("location"), "/api/v1/uploads/" + drums);

    // Raw FLAC whose Content-Type says only "audio/*": the decoder decides what it is.
    auto raw = UploadRaw(
        songd, AudioBytes(songd, AMinorProgression(24), SF_FORMAT_FLAC | SF_FORMAT_PCM_16),
        "audio/x-anything");
    ASSERT_EQ(raw.status, 201) << raw.body;
    auto raw_doc = json::parse(raw.body).as_object();
    const std::string chords(raw_doc.at("upload_id").as_string());
    EXPECT_EQ(raw_doc.at("format"), "flac");
    EXPECT_EQ(raw_doc.at("key"), "A minor");
    EXPECT_TRUE(fs::is_regular_file(songd.output_dir() / "uploads" / drums / "reference.wav"));
    EXPECT_TRUE(fs::is_regular_file(songd.output_dir() / "uploads" / chords / "reference.flac"));
    EXPECT_EQ(UploadRows(songd), 2);

    ASSERT_EQ(songd.Stop(), 0);
    songd.Start();
    auto again = Http("GET", songd.Url("/api/v1/uploads/" + drums));
    ASSERT_EQ(again.status, 200) << again.body;
    EXPECT_EQ(json::parse(again.body).at("upload_id").as_string(), drums);
    // ref_audio_id may stand in for style_prompt; the status names it.
    const std::string accepted = Generate(songd, R"("ref_audio_id":")" + drums + "\"");
    ASSERT_EQ(accepted.substr(0, 3), "202") << accepted;
    const std::string job(json::parse(accepted.substr(4)).at("job_id").as_string());
    auto status = json::parse(Http("GET", songd.Url("/api/v1/status/" + job)).body).as_object();
    EXPECT_EQ(status.at("ref_audio_id").as_string(), drums);
    EXPECT_EQ(Generate(songd, R"("style_prompt":"rock, guitar","ref_audio_id":")" + chords + "\"")
                  .substr(0, 3),
              "202");
}

TEST(ReferenceUpload, BadUploadsAreClear4xxAndStoreNothing) {
    SongdProcess songd;
    songd.Start();
    struct Case {
        std::string what;
        HttpResult result;
        long status;
        std::string says;
    };
    std::string text(300000, 'x');
    std::vector<Case> cases;
    cases.push_back(
        {"text claiming to be MP3", UploadRaw(songd, text, "audio/mpeg"), 415, "not audio"});
    cases.push_back({"text in a multipart form",
                     UploadMultipart(songd, Multipart({{"file", "just words, no sound"}})), 415,
                     "not audio"});
    cases.push_back(
        {"a 3 s song", UploadRaw(songd, AudioBytes(songd, DrumLoop(100, 3))), 422, "10 s"});
    cases.push_back(
        {"a 30 MB file", UploadRaw(songd, std::string(30 * 1024 * 1024, 'R')), 413, "larger than"});
    cases.push_back({"a 30 MB file in a form",
                     UploadMultipart(songd, Multipart({{"file", std::string(30 << 20, 'R')}})), 413,
                     "larger than"});
    auto clip = AudioBytes(songd, DrumLoop(100, 12));
    cases.push_back({"no field file", UploadMultipart(songd, Multipart({{"audio", clip}})), 422,
                     "no field \\\"file\\\""});
    cases.push_back({"two files",
                     UploadMultipart(songd, Multipart({{"file", clip}, {"file", clip}})), 422,
                     "more than one"});
    cases.push_back({"a form without its closing boundary",
                     UploadMultipart(songd, "--" + kBoundary +
                                                "\r\nContent-Disposition: form-data; "
                                                "name=\"file\"\r\n\r\n" +
                                                clip),
                     400, "closing boundary"});
    cases.push_back(
        {"a JSON body", UploadRaw(songd, "{}", "application/json"), 415, "multipart/form-data"});
    cases.push_back({"an empty audio body", UploadRaw(songd, ""), 422, "empty"});
    for (const auto& c : cases) {
        EXPECT_EQ(c.result.status, c.status) << c.what << ": " << c.result.body;
        EXPECT_NE(c.result.body.find(c.says), std::string::npos) << c.what << ": " << c.result.body;
    }
    // Refused by Content-Length alone, before any of the body was sent.
    std::string head =
        "POST /api/v1/uploads HTTP/1.1\r\nHost: x\r\nContent-Type: audio/wav\r\n"
        "Content-Length: 31457280\r\n\r\n";
    std::string answer = RawExchange(songd.port(), head, 5000);
    EXPECT_EQ(answer.rfind("HTTP/1.1 413", 0), 0u) << answer.substr(0, 200);
    EXPECT_NE(answer.find("larger than 21037056 bytes"), std::string::npos)
        << answer;  // 20 MiB + 64 KiB
    // A chunked body (no Content-Length) is cut off by the parser at the same limit: 20 MiB
    // in chunks are read, the header of one more MiB is refused. Nothing is sent after it, so
    // the server has read all there is and its close cannot reset the answer away.
    std::string chunked =
        "POST /api/v1/uploads HTTP/1.1\r\nHost: x\r\nContent-Type: audio/wav\r\n"
        "Transfer-Encoding: chunked\r\n\r\n";
    const std::string chunk(1 << 20, 'C');
    for (int i = 0; i < 20; ++i) chunked += "100000\r\n" + chunk + "\r\n";
    chunked += "100000\r\n";
    answer = RawExchange(songd.port(), chunked, 10000);
    EXPECT_EQ(answer.rfind("HTTP/1.1 413", 0), 0u) << answer.substr(0, 200);
    EXPECT_EQ(UploadRows(songd), 0);
    EXPECT_TRUE(UploadEntries(songd).empty());
}

TEST(ReferenceUpload, GenerateNamesTheUploadOrAStyle) {
    SongdProcess songd;
    songd.Start();
    const std::string unknown = "3f2b1c4d-5e6f-4a7b-8c9d-0e1f2a3b4c5d";
    std::string r = Generate(songd, R"("style_prompt":"pop","ref_audio_id":")" + unknown + "\"");
    EXPECT_EQ(r.substr(0, 3), "422") << r;
    EXPECT_NE(r.find("ref_audio_id"), std::string::npos) << r;
    EXPECT_NE(r.find("unknown or has expired"), std::string::npos) << r;
    r = Generate(songd, R"("style_prompt":"pop, piano","ref_audio_id":"../../etc/passwd")");
    EXPECT_EQ(r.substr(0, 3), "422") << r;
    r = Generate(songd, R"("audio_length":95)");
    EXPECT_EQ(r.substr(0, 3), "422") << r;
    EXPECT_NE(r.find("style_prompt"), std::string::npos) << r;
    EXPECT_EQ(Http("GET", songd.Url("/api/v1/uploads/" + unknown)).status, 404);

    // The API description names both.
    auto doc = json::parse(Http("GET", songd.Url("/openapi.json")).body).as_object();
    auto& upload = doc.at("paths").at("/api/v1/uploads").at("post").as_object();
    for (const char* status : {"201", "400", "401", "413", "415", "422", "429"}) {
        EXPECT_TRUE(upload.at("responses").as_object().contains(status)) << status;
    }
    EXPECT_TRUE(upload.at("requestBody").at("content").as_object().contains("multipart/form-data"));
    EXPECT_TRUE(doc.at("components")
                    .at("schemas")
                    .at("GenerateRequest")
                    .at("properties")
                    .as_object()
                    .contains("ref_audio_id"));
}

TEST(ReferenceUpload, NeedsTheApiKeyAndSharesTheGenerateRateLimit) {
    SongdProcess songd(Env{
        {"API_KEY", "k3y-for-tests"}, {"ENABLE_RATE_LIMIT", "true"}, {"RATE_LIMIT_PER_HOUR", "2"}});
    songd.Start();
    auto clip = AudioBytes(songd, DrumLoop(100, 12));
    auto body = Multipart({{"file", clip}});
    EXPECT_EQ(UploadMultipart(songd, body).status, 401);
    EXPECT_EQ(UploadMultipart(songd, body, {"X-API-Key: wrong"}).status, 401);
    EXPECT_EQ(UploadRows(songd), 0);
    // A client that waits for 100 Continue is refused from its headers, before the body.
    std::string head =
        "POST /api/v1/uploads HTTP/1.1\r\nHost: x\r\nContent-Type: audio/wav\r\n"
        "Expect: 100-continue\r\nContent-Length: 5000000\r\n\r\n";
    std::string answer = RawExchange(songd.port(), head, 5000);
    EXPECT_EQ(answer.rfind("HTTP/1.1 401", 0), 0u) << answer.substr(0, 200);
    answer = RawExchange(
        songd.port(), head.substr(0, head.size() - 2) + "X-API-Key: k3y-for-tests\r\n\r\n", 2000);
    EXPECT_EQ(answer.rfind("HTTP/1.1 100 Continue", 0), 0u) << answer.substr(0, 200);
    auto ok = UploadMultipart(songd, body, {"X-API-Key: k3y-for-tests"});
    ASSERT_EQ(ok.status, 201) << ok.body;
    const std::string id(json::parse(ok.body).at("upload_id").as_string());
    EXPECT_EQ(Generate(songd, R"("ref_audio_id":")" + id + "\"", {"X-API-Key: k3y-for-tests"})
                  .substr(0, 3),
              "202");
    auto limited = UploadMultipart(songd, body, {"X-API-Key: k3y-for-tests"});
    EXPECT_EQ(limited.status, 429) << limited.body;
    EXPECT_GT(std::stoi(limited.Header("retry-after")), 0);
    EXPECT_EQ(UploadRows(songd), 1);
}

TEST(ReferenceUpload, RetentionDeletesUploadsAfterTheirDays) {
    SongdProcess songd(Env{{"FILE_RETENTION_DAYS", "30"}, {"CLEANUP_ENABLED", "false"}});
    songd.Start();
    auto r = UploadRaw(songd, AudioBytes(songd, DrumLoop(100, 12)));
    ASSERT_EQ(r.status, 201) << r.body;
    const std::string id(json::parse(r.body).at("upload_id").as_string());
    Env env{{"OUTPUT_DIR", songd.output_dir().string()},
            {"DATABASE_URL", "sqlite:" + (songd.dir() / "data" / "songd.db").string()},
            {"FILE_RETENTION_DAYS", "30"},
            {"LOG_FORMAT", "text"}};
    // 29 days on: still there.
    auto [early_code, early] = songd.RunCommand(
        {"cleanup", "--as-of", core::FormatIso8601(core::NowMillis() + 29 * core::kMillisPerDay)},
        env);
    EXPECT_EQ(early_code, 0) << early;
    EXPECT_EQ(early.find(id), std::string::npos) << early;
    EXPECT_TRUE(fs::exists(songd.output_dir() / "uploads" / id));
    // 31 days on: gone, file and record.
    auto [code, output] = songd.RunCommand(
        {"cleanup", "--as-of", core::FormatIso8601(core::NowMillis() + 31 * core::kMillisPerDay)},
        env);
    EXPECT_EQ(code, 0) << output;
    EXPECT_NE(output.find("expired upload " + id), std::string::npos) << output;
    EXPECT_NE(output.find("1 uploads expired"), std::string::npos) << output;
    EXPECT_FALSE(fs::exists(songd.output_dir() / "uploads" / id));
    EXPECT_EQ(UploadRows(songd), 0);
    EXPECT_EQ(Http("GET", songd.Url("/api/v1/uploads/" + id)).status, 404);
    std::string gen = Generate(songd, R"("ref_audio_id":")" + id + "\"");
    EXPECT_EQ(gen.substr(0, 3), "422") << gen;
}

/// Runs a shell command; its standard output.
std::string RunShell(const std::string& command) {
    std::string out;
    FILE* pipe = ::popen(command.c_str(), "r");
    if (!pipe) return out;
    char buf[4096];
    size_t n;
    while ((n = fread(buf, 1, sizeof buf, pipe)) > 0) out.append(buf, n);
    ::pclose(pipe);
    return out;
}

/// Waits for the job to complete and saves its song; the path, or empty (a test failure).
fs::path CompletedSong(SongdProcess& songd, const std::string& generate_answer,
                       const std::string& name) {
    EXPECT_EQ(generate_answer.substr(0, 3), "202") << generate_answer;
    if (generate_answer.substr(0, 3) != "202") return {};
    const std::string id(json::parse(generate_answer.substr(4)).at("job_id").as_string());
    std::string status;
    EXPECT_TRUE(WaitFor(
        [&] {
            status = JobStatusName(songd, id);
            return status == "completed" || status == "failed";
        },
        std::chrono::seconds(600)));
    EXPECT_EQ(status, "completed") << Http("GET", songd.Url("/api/v1/status/" + id)).body;
    auto song = Http("GET", songd.Url("/api/v1/download/" + id));
    EXPECT_EQ(song.status, 200);
    fs::path path = songd.dir() / (name + ".wav");
    std::ofstream(path, std::ios::binary) << song.body;
    return path;
}

/// The key of the pitch classes aubio's pitch tracker (yinfft) hears, frame by frame: an
/// independent measure of the notes, matched to the same Krumhansl-Kessler profiles.
audio::KeyEstimate KeyByAubioPitch(const fs::path& wav) {
    std::istringstream out(
        RunShell("aubio pitch -m yinfft -u midi -t 0.3 -i '" + wav.string() + "' 2>/dev/null"));
    audio::Chroma histogram{};
    int pitched = 0;
    double t, midi;
    while (out >> t >> midi) {
        if (midi < 30 || midi > 100) continue;
        ++pitched;
        histogram[static_cast<size_t>(std::lround(midi) % 12)] += 1;
    }
    EXPECT_GT(pitched, 200) << "aubio pitch heard almost nothing in " << wav;
    return audio::EstimateKey(histogram);
}

TEST(ReferenceSynth, TheSongFollowsTheReferencesTempoAndKey) {
    SongdProcess songd(Env{{"ENGINE", "synth"}, {"WORKERS", "2"}, {"PREVIEW_SECONDS", "0"}});
    songd.Start();
    auto drums = UploadRaw(songd, AudioBytes(songd, DrumLoop(100, 30)));
    auto chords = UploadRaw(songd, AudioBytes(songd, AMinorProgression(30)));
    ASSERT_EQ(drums.status, 201) << drums.body;
    ASSERT_EQ(chords.status, 201) << chords.body;
    const std::string drums_id(json::parse(drums.body).at("upload_id").as_string());
    const std::string chords_id(json::parse(chords.body).at("upload_id").as_string());
    // Styles that would choose otherwise: a slow ballad (≤ 70 BPM) and EDM (major, fast).
    const std::string slow =
        Generate(songd, R"("style_prompt":"sad slow piano ballad","seed":11,"ref_audio_id":")" +
                            drums_id + "\"");
    const std::string minor = Generate(
        songd, R"("style_prompt":"energetic EDM","seed":11,"ref_audio_id":")" + chords_id + "\"");
    const fs::path slow_song = CompletedSong(songd, slow, "slow");
    const fs::path minor_song = CompletedSong(songd, minor, "minor");
    ASSERT_FALSE(slow_song.empty());
    ASSERT_FALSE(minor_song.empty());

    // Tempo by aubio's beat tracker (aubiotrack): the median gap between its beats is 100 BPM,
    // or an octave of it, within 3 %. (`aubio tempo` prints the mean of the instantaneous
    // tempi, which every skipped or doubled beat drags off.)
    std::istringstream beats(RunShell("aubiotrack -i '" + slow_song.string() + "' 2>/dev/null"));
    std::vector<double> times, gaps;
    for (double t; beats >> t;) times.push_back(t);
    for (size_t i = 1; i < times.size(); ++i) gaps.push_back(times[i] - times[i - 1]);
    ASSERT_GT(gaps.size(), 50u);
    std::nth_element(gaps.begin(), gaps.begin() + static_cast<long>(gaps.size() / 2), gaps.end());
    const double measured = 60.0 / gaps[gaps.size() / 2];
    double nearest = measured;
    for (double candidate : {measured / 2, measured * 2}) {
        if (std::abs(candidate - 100) < std::abs(nearest - 100)) nearest = candidate;
    }
    std::printf("reference 100 BPM; song measured %.2f BPM by aubiotrack\n", measured);
    EXPECT_NEAR(nearest, 100, 3.0);

    // Key by songd's estimator, and by aubio's pitch tracker (an independent measure).
    const audio::ReferenceAudio song = audio::AnalyzeReference(minor_song);
    std::printf("reference A minor; song key %s (r=%.2f)\n", song.key.Name().c_str(),
                song.key.correlation);
    EXPECT_TRUE(song.key.Name() == "A minor" || song.key.Name() == "C major") << song.key.Name();
    const audio::KeyEstimate heard = KeyByAubioPitch(minor_song);
    std::printf("key of aubio pitch's notes: %s\n", heard.Name().c_str());
    EXPECT_TRUE(heard.Name() == "A minor" || heard.Name() == "C major") << heard.Name();
    EXPECT_NE(songd.Log().find("synth_reference"), std::string::npos);
}

}  // namespace
}  // namespace songd::test
