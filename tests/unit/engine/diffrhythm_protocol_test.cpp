// The DiffRhythm worker protocol: what songd accepts from a worker, what it sends, and how
// presets map to the sampler.
#include <gtest/gtest.h>

#include <boost/json.hpp>

#include "core/config.h"
#include "engine/diffrhythm/protocol.h"

namespace songd::engine::diffrhythm {
namespace {

namespace json = boost::json;

TEST(DiffRhythmProtocol, ParsesEveryEvent) {
    Event hello =
        ParseEvent(R"({"event":"hello","protocol":1,"device":"cuda","torch":"2.1","pid":7})");
    EXPECT_EQ(hello.kind, Event::Kind::kHello);
    EXPECT_EQ(hello.device, "cuda");
    EXPECT_EQ(hello.pid, 7);
    Event loaded = ParseEvent(R"({"event":"loaded","model":"full","seconds":1.5})");
    EXPECT_EQ(loaded.kind, Event::Kind::kLoaded);
    EXPECT_EQ(loaded.model, "full");
    Event ready = ParseEvent("{\"event\":\"ready\",\"models_loaded\":[\"95\",\"full\"]}\r");
    EXPECT_EQ(ready.kind, Event::Kind::kReady);
    EXPECT_EQ(ready.models_loaded, (std::vector<std::string>{"95", "full"}));
    Event progress =
        ParseEvent(R"({"id":"j1","event":"progress","percent":42,"phase":"sampling"})");
    EXPECT_EQ(progress.kind, Event::Kind::kProgress);
    EXPECT_EQ(progress.id, "j1");
    EXPECT_EQ(progress.percent, 42);
    EXPECT_EQ(progress.phase, "sampling");
    Event done =
        ParseEvent(R"({"id":"j1","event":"done","output_path":"/w/raw.wav","seconds":3.2})");
    EXPECT_EQ(done.kind, Event::Kind::kDone);
    EXPECT_EQ(done.output_path, "/w/raw.wav");
    Event error = ParseEvent(
        R"({"id":"j1","event":"error","code":"out_of_memory","message":"CUDA out of memory"})");
    EXPECT_EQ(error.kind, Event::Kind::kError);
    EXPECT_EQ(error.code, "out_of_memory");
    EXPECT_EQ(error.message, "CUDA out of memory");
}

TEST(DiffRhythmProtocol, AnythingElseIsAProtocolError) {
    for (const char* line :
         {"", "Loading model...", "[1,2]", "{\"event\":1}", "{}",
          R"({"event":"hello","protocol":2})", R"({"event":"hello"})",
          R"({"event":"progress","percent":10})", R"({"id":"","event":"progress","percent":10})",
          R"({"id":"j","event":"progress","percent":101})",
          R"({"id":"j","event":"progress","percent":"5"})", R"({"id":"j","event":"done"})",
          R"({"id":"j","event":"error"})", R"({"id":"j","event":"finished"})",
          R"({"event":"ready","models_loaded":"95"})",
          R"({"id":"j","event":"done","output_path":"/x"} trailing)"}) {
        EXPECT_THROW(ParseEvent(line), ProtocolError) << line;
    }
    try {
        ParseEvent(std::string(1000, 'x'));
        FAIL();
    } catch (const ProtocolError& e) {
        EXPECT_LT(std::string(e.what()).size(), 300u) << "the line is quoted, shortened";
    }
}

TEST(DiffRhythmProtocol, RequestLineCarriesEveryFieldAndOneStyleSource) {
    Request r;
    r.id = "job-1";
    r.lyrics = "[00:10.00]line one\n[00:20.00]line \"two\"";
    r.style_prompt = "pop";
    r.audio_length = 120;
    r.steps = 12;
    r.cfg_strength = 2.5;
    r.seed = 9007199254740993ULL;
    r.batch = 2;
    r.chunked = false;
    r.output_path = "/w/raw.wav";
    std::string line = RequestLine(r);
    ASSERT_EQ(line.back(), '\n');
    EXPECT_EQ(std::count(line.begin(), line.end(), '\n'), 1) << "one line";
    json::object o = json::parse(line).as_object();
    EXPECT_EQ(o["id"], "job-1");
    EXPECT_EQ(o["lyrics"].as_string(), r.lyrics);
    EXPECT_EQ(o["style_prompt"], "pop");
    EXPECT_FALSE(o.contains("ref_audio_path"));
    EXPECT_EQ(o["audio_length"], 120);
    EXPECT_EQ(o["steps"], 12);
    EXPECT_EQ(o["cfg_strength"].to_number<double>(), 2.5);
    EXPECT_EQ(o["seed"].to_number<uint64_t>(), 9007199254740993ULL) << "exact, not a double";
    EXPECT_EQ(o["batch"], 2);
    EXPECT_EQ(o["chunked"], false);
    EXPECT_EQ(o["output_path"], "/w/raw.wav");

    r.ref_audio_path = "/uploads/ref.wav";
    o = json::parse(RequestLine(r)).as_object();
    EXPECT_EQ(o["ref_audio_path"], "/uploads/ref.wav");
    EXPECT_FALSE(o.contains("style_prompt")) << "exactly one style source";
}

TEST(DiffRhythmProtocol, PresetsMapToStepsAndCfgAndRequestValuesOverride) {
    struct Row {
        const char* preset;
        int steps;
        double cfg;
    };
    for (const Row& row : {Row{"preview", 4, 2.0}, Row{"draft", 8, 2.5}, Row{"standard", 16, 3.0},
                           Row{"high", 32, 4.0}, Row{"maximum", 64, 5.0}, Row{"ultra", 100, 6.0}}) {
        Sampler s = ResolveSampler(row.preset, std::nullopt, std::nullopt);
        EXPECT_EQ(s.steps, row.steps) << row.preset;
        EXPECT_EQ(s.cfg_strength, row.cfg) << row.preset;
    }
    Sampler s = ResolveSampler("draft", 12, std::nullopt);
    EXPECT_EQ(s.steps, 12);
    EXPECT_EQ(s.cfg_strength, 2.5);
    s = ResolveSampler("ultra", std::nullopt, 1.5);
    EXPECT_EQ(s.steps, 100);
    EXPECT_EQ(s.cfg_strength, 1.5);
    EXPECT_EQ(LengthClass(95), "95");
    EXPECT_EQ(LengthClass(96), "full");
    EXPECT_EQ(LengthClass(285), "full");
}

TEST(DiffRhythmConfig, VariablesAreCheckedAndWorkersFollowTheGpus) {
    using core::LoadConfig;
    core::Config c = LoadConfig({{"ENGINE", "diffrhythm"}, {"DIFFRHYTHM_HOME", "/"}});
    EXPECT_EQ(c.workers, 1) << "one CPU worker";
    EXPECT_EQ(c.diffrhythm_device, "auto");
    EXPECT_TRUE(c.diffrhythm_preload.empty());
    EXPECT_EQ(c.diffrhythm_load_timeout_seconds, 600);
    EXPECT_TRUE(c.diffrhythm_chunked);
    c = LoadConfig({{"ENGINE", "diffrhythm"},
                    {"DIFFRHYTHM_HOME", "/"},
                    {"DIFFRHYTHM_GPUS", "0,1,3"},
                    {"DIFFRHYTHM_PRELOAD", "full, 95"},
                    {"DIFFRHYTHM_LOAD_TIMEOUT", "30"},
                    {"DIFFRHYTHM_CHUNKED", "false"},
                    {"DEVICE", "cuda"}});
    EXPECT_EQ(c.workers, 3);
    EXPECT_EQ(c.diffrhythm_preload, (std::vector<int>{95, 285}));
    EXPECT_EQ(c.diffrhythm_load_timeout_seconds, 30);
    EXPECT_FALSE(c.diffrhythm_chunked);
    EXPECT_EQ(c.diffrhythm_device, "cuda");
    EXPECT_EQ(LoadConfig({{"DIFFRHYTHM_PRELOAD", "all"}}).diffrhythm_preload,
              (std::vector<int>{95, 285}));
    EXPECT_EQ(LoadConfig({{"DEVICE", "cuda:2"}}).diffrhythm_gpus, (std::vector<int>{2}));
    EXPECT_EQ(LoadConfig({{"WORKERS", "2"},
                          {"DIFFRHYTHM_GPUS", "0,1"},
                          {"ENGINE", "diffrhythm"},
                          {"DIFFRHYTHM_HOME", "/"}})
                  .workers,
              2);
    // Other engines keep WORKERS as given.
    EXPECT_EQ(LoadConfig({{"WORKERS", "5"}, {"DIFFRHYTHM_GPUS", "0"}}).workers, 5);
    for (const core::Environment& bad :
         {core::Environment{{"DIFFRHYTHM_PRELOAD", "96"}},
          core::Environment{{"DIFFRHYTHM_LOAD_TIMEOUT", "0"}},
          core::Environment{{"DIFFRHYTHM_CHUNKED", "maybe"}},
          core::Environment{
              {"ENGINE", "diffrhythm"}, {"DIFFRHYTHM_HOME", "/"}, {"WORKERS", "2"}}}) {
        EXPECT_THROW(LoadConfig(bad), core::ConfigError) << bad.begin()->first;
    }
}

}  // namespace
}  // namespace songd::engine::diffrhythm
