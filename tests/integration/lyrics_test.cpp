// Lyrics as people write them, over real HTTP against the real binary: plain and sectioned
// lyrics timed by songd, the LRC it used (status and GET {p}/jobs/{id}/lyrics), instrumentals,
// and a synth render that sings every line at its new timestamp.
#include <gtest/gtest.h>
#include <sndfile.h>

#include <boost/json.hpp>
#include <cmath>
#include <regex>

#include "core/error.h"
#include "engine/engine.h"
#include "engine/lrc.h"
#include "engine/lyric_layout.h"
#include "engine/synth/synth_engine.h"
#include "harness/http_client.h"
#include "harness/songd_process.h"

namespace songd::test {
namespace {

namespace json = boost::json;

const std::vector<std::string> kJson = {"Content-Type: application/json"};

const char* const kSectioned =
    "[Verse]\n"
    "Morning light is on the window\n"
    "Coffee cooling by the door\n"
    "Every song I used to know\n"
    "\n"
    "[Chorus]\n"
    "Hold on, hold on to me\n"
    "We are where we want to be\n"
    "\n"
    "[Instrumental]\n"
    "\n"
    "[Verse 2]\n"
    "Evening falls across the city\n"
    "Lights come on along the street\n"
    "\n"
    "[Chorus]\n"
    "Hold on, hold on to me\n"
    "We are where we want to be\n";

std::string GenerateJson(const std::string& lyrics, const std::string& style, int length,
                         uint64_t seed, const std::string& extra = "") {
    json::object o;
    o["lyrics"] = lyrics;
    o["style_prompt"] = style;
    o["audio_length"] = length;
    o["seed"] = seed;
    std::string body = json::serialize(o);
    if (!extra.empty()) body.insert(body.size() - 1, "," + extra);
    return body;
}

std::string SubmitOk(SongdProcess& s, const std::string& body) {
    auto r = Http("POST", s.Url("/api/v1/generate"), kJson, body);
    EXPECT_EQ(r.status, 202) << r.body;
    if (r.status != 202) return "";
    return std::string(json::parse(r.body).at("job_id").as_string());
}

json::object StatusOf(SongdProcess& s, const std::string& id) {
    auto r = Http("GET", s.Url("/api/v1/status/" + id));
    EXPECT_EQ(r.status, 200) << r.body;
    return json::parse(r.body).as_object();
}

std::string WaitDone(SongdProcess& s, const std::string& id) {
    std::string status;
    EXPECT_TRUE(WaitFor(
        [&] {
            status = JobStatusName(s, id);
            return status == "completed" || status == "failed";
        },
        std::chrono::seconds(120)));
    return status;
}

/// The layout's promises, from the outside: the validator accepts it, the lines are the
/// submitted ones in order, monotonic, on bar lines of the style's tempo, inside the song.
void ExpectTimedOnBars(const std::string& lrc, int length, double bpm, size_t expected_lines,
                       double min_intro_seconds = 4.0) {
    const auto lines = engine::ParseLrc(lrc, length);
    ASSERT_EQ(lines.size(), expected_lines) << lrc;
    const double bar = 4 * 60.0 / bpm;
    for (size_t i = 0; i < lines.size(); ++i) {
        const double t = lines[i].time_ms / 1000.0;
        EXPECT_NEAR(t / bar, std::round(t / bar), 0.0051 / bar) << "line " << i << ": " << lrc;
        if (i > 0) {
            EXPECT_GT(lines[i].time_ms, lines[i - 1].time_ms) << lrc;
        }
        EXPECT_LE(t, length - 4.0) << lrc;
    }
    EXPECT_GE(lines.front().time_ms / 1000.0, min_intro_seconds - 0.005) << "an intro";
}

TEST(Lyrics, PlainLyricsAreTimedAndTheLrcIsServed) {
    SongdProcess songd(Env{{"WORKERS", "1"}});
    songd.Start();
    const std::string style = "uplifting pop";
    for (int length : {95, 180}) {
        SCOPED_TRACE(length);
        const uint64_t seed = 40 + static_cast<uint64_t>(length);
        const std::string id = SubmitOk(songd, GenerateJson(kSectioned, style, length, seed));
        ASSERT_FALSE(id.empty());
        auto status = StatusOf(songd, id);
        const std::string lrc(status["lyrics_lrc"].as_string());
        EXPECT_FALSE(status["instrumental"].as_bool());
        EXPECT_EQ(status["lyrics_url"].as_string(), "/api/v1/jobs/" + id + "/lyrics");
        const double bpm = engine::SongTempo(style, seed);
        ExpectTimedOnBars(lrc, length, bpm, 9);
        EXPECT_NE(lrc.find("]Morning light is on the window\n"), std::string::npos) << lrc;
        EXPECT_EQ(lrc.find("Verse"), std::string::npos) << "tags are structure, not lyrics";

        // text/plain by default: the same LRC.
        auto text = Http("GET", songd.Url("/api/v1/jobs/" + id + "/lyrics"));
        EXPECT_EQ(text.status, 200);
        EXPECT_EQ(text.Header("content-type"), "text/plain; charset=utf-8");
        EXPECT_EQ(text.body, lrc);
        // JSON on request: its lines.
        auto doc =
            Http("GET", songd.Url("/api/v1/jobs/" + id + "/lyrics"), {"Accept: application/json"});
        ASSERT_EQ(doc.status, 200) << doc.body;
        auto o = json::parse(doc.body).as_object();
        EXPECT_EQ(o["lrc"].as_string(), lrc);
        EXPECT_TRUE(o["timed_by_songd"].as_bool());
        EXPECT_DOUBLE_EQ(o["bpm"].to_number<double>(), bpm);
        const auto lines = engine::ParseLrc(lrc, length);
        auto& arr = o["lines"].as_array();
        ASSERT_EQ(arr.size(), lines.size());
        for (size_t i = 0; i < lines.size(); ++i) {
            EXPECT_DOUBLE_EQ(arr[i].at("time_seconds").to_number<double>(),
                             lines[i].time_ms / 1000.0);
            EXPECT_EQ(arr[i].at("text").as_string(), lines[i].text);
        }
        EXPECT_EQ(WaitDone(songd, id), "completed");
        // Still there once completed, unchanged.
        EXPECT_EQ(StatusOf(songd, id)["lyrics_lrc"].as_string(), lrc);
    }
}

TEST(Lyrics, LrcInputIsKeptExactlyAndServed) {
    SongdProcess songd(Env{{"WORKERS", "1"}});
    songd.Start();
    const std::string lrc = "[ti:Kept]\n[00:10.00]Second in time\n[00:05.5]First in time\n";
    const std::string id = SubmitOk(songd, GenerateJson(lrc, "jazz", 95, 1));
    ASSERT_FALSE(id.empty());
    EXPECT_EQ(StatusOf(songd, id)["lyrics_lrc"].as_string(), lrc);
    EXPECT_EQ(Http("GET", songd.Url("/api/v1/jobs/" + id + "/lyrics")).body, lrc);
    auto doc =
        Http("GET", songd.Url("/api/v1/jobs/" + id + "/lyrics"), {"Accept: application/json"});
    auto o = json::parse(doc.body).as_object();
    EXPECT_FALSE(o["timed_by_songd"].as_bool());
    EXPECT_TRUE(o["bpm"].is_null());
    ASSERT_EQ(o["lines"].as_array().size(), 2u);
    EXPECT_DOUBLE_EQ(o["lines"].as_array()[0].at("time_seconds").to_number<double>(), 5.5);
    EXPECT_EQ(o["lines"].as_array()[0].at("text").as_string(), "First in time");
}

TEST(Lyrics, TooManyLinesAnswers422NamingHowManyFitAndStoresNothing) {
    SongdProcess songd(Env{{"WORKERS", "1"}});
    songd.Start();
    std::string many;
    for (int i = 0; i < 150; ++i) many += "We sing the line number " + std::to_string(i) + " now\n";
    const uint64_t seed = 5;
    auto r = Http("POST", songd.Url("/api/v1/generate"), kJson,
                  GenerateJson(many, "uplifting pop", 95, seed));
    ASSERT_EQ(r.status, 422) << r.body;
    EXPECT_EQ(r.Header("content-type"), "application/problem+json");
    auto problem = json::parse(r.body).as_object();
    const std::string detail(problem["detail"].as_string());
    std::smatch m;
    ASSERT_TRUE(std::regex_search(detail, m, std::regex(R"(150 lines; at most (\d+) fit)")))
        << detail;
    const int fit = std::stoi(m[1]);
    EXPECT_EQ(problem["errors"].as_array().at(0).at("loc").as_array().at(1).as_string(), "lyrics");
    // The count is the truth: that many lines are accepted, one more is not.
    auto lines = [&](int n) {
        std::string text;
        for (int i = 0; i < n; ++i)
            text += "We sing the line number " + std::to_string(i) + " now\n";
        return text;
    };
    auto more = Http("POST", songd.Url("/api/v1/generate"), kJson,
                     GenerateJson(lines(fit + 1), "uplifting pop", 95, seed));
    EXPECT_EQ(more.status, 422) << more.body;
    auto queue = json::parse(Http("GET", songd.Url("/api/v1/queue")).body).as_object();
    EXPECT_EQ(queue["queue_length"].as_int64() + queue["processing"].as_int64(), 0)
        << "a refused request stored a job";
    const std::string id = SubmitOk(songd, GenerateJson(lines(fit), "uplifting pop", 95, seed));
    ASSERT_FALSE(id.empty());
    ExpectTimedOnBars(std::string(StatusOf(songd, id)["lyrics_lrc"].as_string()), 95,
                      engine::SongTempo("uplifting pop", seed), static_cast<size_t>(fit),
                      2.0);  // the compact layout's shorter intro
}

TEST(Lyrics, InstrumentalByFlagOrEmptyLyrics) {
    SongdProcess songd(Env{{"WORKERS", "1"}});
    songd.Start();
    // instrumental: true wins over lyrics (kept as sent, not validated, not sung).
    const std::string flagged = SubmitOk(
        songd, GenerateJson("[00:01.00]not sung", "lofi", 95, 3, R"("instrumental":true)"));
    // No lyrics at all with the flag; and empty lyrics without it.
    auto r = Http("POST", songd.Url("/api/v1/generate"), kJson,
                  R"({"style_prompt":"lofi","instrumental":true})");
    ASSERT_EQ(r.status, 202) << r.body;
    const std::string bare(json::parse(r.body).at("job_id").as_string());
    const std::string empty = SubmitOk(songd, GenerateJson("", "lofi", 95, 3));
    const std::string tags =
        SubmitOk(songd, GenerateJson("[Intro]\n\n[Instrumental]\n", "lofi", 95, 3));
    for (const std::string& id : {flagged, bare, empty, tags}) {
        ASSERT_FALSE(id.empty());
        auto status = StatusOf(songd, id);
        EXPECT_TRUE(status["instrumental"].as_bool()) << id;
        EXPECT_EQ(status["lyrics_lrc"].as_string(), "") << id;
        auto text = Http("GET", songd.Url("/api/v1/jobs/" + id + "/lyrics"));
        EXPECT_EQ(text.status, 200);
        EXPECT_EQ(text.body, "");
        auto doc = json::parse(Http("GET", songd.Url("/api/v1/jobs/" + id + "/lyrics"),
                                    {"Accept: application/json"})
                                   .body)
                       .as_object();
        EXPECT_TRUE(doc["instrumental"].as_bool());
        EXPECT_TRUE(doc["lines"].as_array().empty());
        EXPECT_EQ(WaitDone(songd, id), "completed");
    }
    // Without the flag, lyrics stay required.
    auto missing = Http("POST", songd.Url("/api/v1/generate"), kJson, R"({"style_prompt":"lofi"})");
    EXPECT_EQ(missing.status, 422);
    EXPECT_NE(missing.body.find("Field required"), std::string::npos);
}

TEST(Lyrics, DocumentedInOpenApi) {
    SongdProcess songd;
    songd.Start();
    auto doc = json::parse(Http("GET", songd.Url("/openapi.json")).body).as_object();
    EXPECT_TRUE(doc["paths"].as_object().contains("/api/v1/jobs/{job_id}/lyrics"));
    auto& schemas = doc["components"].as_object()["schemas"].as_object();
    auto& generate = schemas["GenerateRequest"].as_object();
    EXPECT_TRUE(generate["properties"].as_object().contains("instrumental"));
    EXPECT_NE(json::serialize(generate["properties"].at("lyrics")).find("[Verse]"),
              std::string::npos);
    for (const auto& field : generate["required"].as_array()) EXPECT_NE(field, "lyrics");
    auto& status = schemas["JobStatus"].as_object()["properties"].as_object();
    EXPECT_TRUE(status.contains("lyrics_lrc"));
    EXPECT_TRUE(status.contains("instrumental"));
    EXPECT_TRUE(schemas.contains("JobLyrics"));
}

// ---- Audio: a synth render sings every line at its new stamp ----

/// RMS (dB full scale) of [from, to) seconds of a mono float WAV.
class MonoWav {
  public:
    explicit MonoWav(const std::filesystem::path& path) {
        SF_INFO info{};
        SNDFILE* f = sf_open(path.c_str(), SFM_READ, &info);
        if (f == nullptr) throw std::runtime_error("cannot read " + path.string());
        rate_ = info.samplerate;
        samples_.resize(static_cast<size_t>(info.frames * info.channels));
        sf_readf_float(f, samples_.data(), info.frames);
        sf_close(f);
        channels_ = info.channels;
    }
    double RmsDb(double from, double to) const {
        const auto frames = static_cast<int64_t>(samples_.size()) / channels_;
        const int64_t a = std::clamp<int64_t>(std::llround(from * rate_), 0, frames);
        const int64_t b = std::clamp<int64_t>(std::llround(to * rate_), a, frames);
        double sum = 0;
        for (int64_t i = a * channels_; i < b * channels_; ++i) {
            sum += double(samples_[static_cast<size_t>(i)]) * samples_[static_cast<size_t>(i)];
        }
        const double rms = b > a ? std::sqrt(sum / double((b - a) * channels_)) : 0;
        return rms > 0 ? 20 * std::log10(rms) : -200;
    }
    /// The loudest 50 ms window (dB) in [from, to).
    double PeakWindowDb(double from, double to) const {
        double best = -200;
        for (double t = std::max(0.0, from); t + 0.05 <= to; t += 0.01) {
            best = std::max(best, RmsDb(t, t + 0.05));
        }
        return best;
    }

  private:
    int rate_ = 44100;
    int channels_ = 1;
    std::vector<float> samples_;
};

/// Renders `lrc` with the synth engine and stems, as the job would (same style and seed).
std::filesystem::path RenderStems(const std::string& name, const std::string& lrc,
                                  const std::string& style, int length, uint64_t seed,
                                  bool instrumental) {
    const auto dir =
        std::filesystem::path(::testing::TempDir()) / ("lyrics_" + name + std::to_string(getpid()));
    std::filesystem::remove_all(dir);
    std::filesystem::create_directories(dir);
    engine::RenderRequest request;
    request.job_id = name;
    request.lyrics = lrc;
    request.instrumental = instrumental;
    request.style_prompt = style;
    request.audio_length = length;
    request.seed = seed;
    request.work_dir = dir;
    request.write_stems = true;
    engine::synth::SynthEngine engine;
    engine::CancelToken cancel;
    engine.Render(request, nullptr, cancel);
    return dir;
}

TEST(LyricsAudio, SynthSingsEveryLaidOutLineAtItsStamp) {
    SongdProcess songd(Env{{"ENGINE", "synth"}, {"WORKERS", "1"}});
    songd.Start();
    const std::string style = "uplifting pop";
    for (int length : {95, 180}) {
        SCOPED_TRACE(length);
        const uint64_t seed = 7;
        const std::string id = SubmitOk(songd, GenerateJson(kSectioned, style, length, seed));
        ASSERT_FALSE(id.empty());
        ASSERT_EQ(WaitDone(songd, id), "completed") << StatusOf(songd, id);
        const std::string lrc = Http("GET", songd.Url("/api/v1/jobs/" + id + "/lyrics")).body;
        const double bpm = engine::SongTempo(style, seed);
        ExpectTimedOnBars(lrc, length, bpm, 9);
        const auto dir =
            RenderStems("sung" + std::to_string(length), lrc, style, length, seed, false);
        const MonoWav vocals(dir / "vocals.wav");
        const auto lines = engine::ParseLrc(lrc, length);
        const double first = lines.front().time_ms / 1000.0;
        // Silence before the first line (the intro) ...
        const double intro_db = vocals.PeakWindowDb(0, first - 0.3);
        EXPECT_LT(intro_db, -60) << "singing in the intro";
        for (size_t i = 0; i < lines.size(); ++i) {
            const double t = lines[i].time_ms / 1000.0;
            // ... and every line starts within ±0.3 s of its stamp: silent from 0.8 s to 0.3 s
            // before it (the previous line has ended), singing within ±0.3 s of it.
            const double before_db = vocals.PeakWindowDb(t - 0.8, t - 0.3);
            const double near_db = vocals.PeakWindowDb(t - 0.3, t + 0.3);
            std::printf("line %zu at %.2f s: %.1f dB, before it %.1f dB\n", i, t, near_db,
                        before_db);
            EXPECT_GT(near_db, -35) << "line " << i << " at " << t << " s: " << lines[i].text;
            EXPECT_LT(before_db, -50) << "line " << i << " at " << t << " s starts early";
            EXPECT_GT(near_db - std::max(before_db, intro_db), 30) << "line " << i;
        }
        // The [Instrumental] section (4 bars before "Evening falls...") is not sung: its
        // middle two bars are as quiet as the intro.
        const double bar = 4 * 60.0 / bpm;
        const double evening = lines[5].time_ms / 1000.0;
        ASSERT_EQ(lines[5].text, "Evening falls across the city");
        EXPECT_LT(vocals.PeakWindowDb(evening - 3 * bar, evening - bar), -60)
            << "singing in the instrumental section";
        std::filesystem::remove_all(dir);
    }
}

TEST(LyricsAudio, InstrumentalSynthSongHasNoVocals) {
    SongdProcess songd(Env{{"ENGINE", "synth"}, {"WORKERS", "1"}});
    songd.Start();
    auto r = Http("POST", songd.Url("/api/v1/generate"), kJson,
                  R"({"style_prompt":"uplifting pop","instrumental":true,"seed":7})");
    ASSERT_EQ(r.status, 202) << r.body;
    const std::string id(json::parse(r.body).at("job_id").as_string());
    ASSERT_EQ(WaitDone(songd, id), "completed") << StatusOf(songd, id);
    EXPECT_EQ(Http("GET", songd.Url("/api/v1/jobs/" + id + "/lyrics")).body, "");

    // The render the job made: an empty LRC with instrumental set. Its vocal stem is silent,
    // its band is not; the same seed with lyrics does sing (the measure can fail).
    const auto dir = RenderStems("instrumental", "", "uplifting pop", 95, 7, true);
    const MonoWav vocals(dir / "vocals.wav");
    const MonoWav band(dir / "band.wav");
    EXPECT_LT(vocals.PeakWindowDb(0, 95), -100) << "the instrumental has a vocal";
    EXPECT_GT(band.RmsDb(5, 90), -40) << "the band is silent";
    const auto sung =
        RenderStems("control", "[00:10.00]Hello there my friend\n", "uplifting pop", 95, 7, false);
    EXPECT_GT(MonoWav(sung / "vocals.wav").PeakWindowDb(9.7, 10.3), -35);
    std::filesystem::remove_all(dir);
    std::filesystem::remove_all(sung);
}

}  // namespace
}  // namespace songd::test
