#include "jobs/request_json.h"

#include <gtest/gtest.h>

#include "core/config.h"
#include "jobs/render_pipeline.h"

namespace songd::jobs {
namespace {

TEST(RequestJson, LyricsFieldsRoundTripAndOldRecordsRenderTheirLyrics) {
    GenerateRequest r;
    r.lyrics = "Plain words\nMore words";
    r.style_prompt = "pop";
    r.lyrics_lrc = "[00:04.80]Plain words\n[00:07.20]More words\n";
    r.lyrics_bpm = 100;
    GenerateRequest back = RequestFromJson(RequestToJson(r));
    EXPECT_EQ(back.lyrics, r.lyrics);
    EXPECT_EQ(back.lyrics_lrc, r.lyrics_lrc);
    EXPECT_EQ(back.lyrics_bpm, 100);
    EXPECT_FALSE(back.instrumental);
    EXPECT_EQ(RenderedLyrics(back), *r.lyrics_lrc);

    r.instrumental = true;
    back = RequestFromJson(RequestToJson(r));
    EXPECT_TRUE(back.instrumental);
    EXPECT_EQ(RenderedLyrics(back), "");

    // A record stored before these fields: its lyrics are the LRC it renders.
    GenerateRequest old = RequestFromJson(
        R"({"lyrics":"[00:01.00]hi there","style_prompt":"pop","audio_length":95,)"
        R"("batch_size":1,"preset":"high","auto_master":true,"master_preset":"balanced"})");
    EXPECT_FALSE(old.lyrics_lrc.has_value());
    EXPECT_EQ(RenderedLyrics(old), "[00:01.00]hi there");
}

TEST(RequestJson, TheRenderRequestCarriesTheLrcUsedAndTheInstrumentalFlag) {
    core::Config config;
    Job job;
    job.id = "00000000-0000-4000-8000-000000000001";
    job.request.lyrics = "Plain words";
    job.request.lyrics_lrc = "[00:04.80]Plain words\n";
    auto work = MakeRenderJob(config, job);
    EXPECT_EQ(work.render.lyrics, "[00:04.80]Plain words\n");
    EXPECT_FALSE(work.render.instrumental);
    job.request.lyrics_lrc = "";  // empty lyrics: an instrumental
    work = MakeRenderJob(config, job);
    EXPECT_EQ(work.render.lyrics, "");
    EXPECT_TRUE(work.render.instrumental);
}

}  // namespace
}  // namespace songd::jobs
