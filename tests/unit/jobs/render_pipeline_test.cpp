// The render pipeline on the tone engine: progress in order, the scratch folder removed, and an
// earlier attempt's song reused only when it is whole.
#include "jobs/render_pipeline.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <string>
#include <utility>
#include <vector>

#include "counting_engine.h"
#include "engine/tone_engine.h"

namespace songd::jobs {
namespace {

namespace fs = std::filesystem;
using testing::CountingEngine;

TEST(RenderPipeline, IsFinishedSongChecksFormatLengthAndEveryFrame) {
    char tmpl[] = "/tmp/songd-pipeline-XXXXXX";
    const fs::path dir = ::mkdtemp(tmpl);
    engine::ToneEngine engine;
    engine.Start();
    RenderJob job;
    job.render.audio_length = 95;
    job.render.lyrics = "[00:01.00]hello";
    job.render.work_dir = dir / "work";
    job.finish.target_frames = engine::TargetFrames(95);
    job.output = dir / "song.wav";
    std::vector<std::pair<int, std::string>> stages;
    RenderOutcome done = RunRenderPipeline(
        engine, job, [&](int pct, std::string_view stage) { stages.emplace_back(pct, stage); },
        engine::CancelToken{});
    EXPECT_FALSE(done.reused);
    EXPECT_FALSE(done.has_preview);
    EXPECT_EQ(done.frames, engine::TargetFrames(95));
    EXPECT_FALSE(fs::exists(job.render.work_dir));
    ASSERT_FALSE(stages.empty());
    EXPECT_EQ(stages.back(), (std::pair<int, std::string>{100, "done"}));
    for (size_t i = 1; i < stages.size(); ++i) EXPECT_GE(stages[i].first, stages[i - 1].first);

    EXPECT_TRUE(IsFinishedSong(job.output, engine::TargetFrames(95)));
    EXPECT_FALSE(IsFinishedSong(job.output, engine::TargetFrames(96)));
    EXPECT_FALSE(IsFinishedSong(dir / "missing.wav", engine::TargetFrames(95)));
    // Cut off: the header still promises every frame, the disk does not hold them.
    const fs::path cut = dir / "cut.wav";
    fs::copy_file(job.output, cut);
    fs::resize_file(cut, fs::file_size(cut) / 2);
    EXPECT_FALSE(IsFinishedSong(cut, engine::TargetFrames(95)));

    // With reuse, a finished song is kept and the engine is not asked.
    CountingEngine counting;
    counting.Start();
    job.reuse_output = true;
    const auto before = fs::last_write_time(job.output);
    done = RunRenderPipeline(counting, job, nullptr, engine::CancelToken{});
    EXPECT_TRUE(done.reused);
    EXPECT_EQ(counting.renders.load(), 0);
    EXPECT_EQ(fs::last_write_time(job.output), before);
    // A cut song is rendered again.
    fs::rename(cut, job.output);
    done = RunRenderPipeline(counting, job, nullptr, engine::CancelToken{});
    EXPECT_FALSE(done.reused);
    EXPECT_EQ(counting.renders.load(), 1);
    EXPECT_TRUE(IsFinishedSong(job.output, engine::TargetFrames(95)));
    fs::remove_all(dir);
}

}  // namespace
}  // namespace songd::jobs
