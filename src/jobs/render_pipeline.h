#pragma once
/// @file
/// The render pipeline: render → finish → preview, the one path from a request to a
/// delivered `output_fixed.wav`. The worker pool and `songd generate` both run it.
///
///   jobs::RenderJob work = jobs::MakeRenderJob(config, job);   // a stored job's layout
///   engine::CancelToken cancel(deadline);
///   jobs::RenderOutcome done = jobs::RunRenderPipeline(
///       engine, work, [](int percent, std::string_view stage) { ... }, cancel);
///   // done.frames, done.duration_seconds; done.has_preview; done.reused: nothing rendered
///
/// Either it throws (core::Error: the engine's or finishing's error, kTimeout, kRenderFailed
/// when stopped) and `output` is as it was, or `output` holds the finished song. The preview
/// is a courtesy: failing to make one is logged, never an error. With `reuse_output`, a
/// finished song an earlier attempt left at `output` (a readable 44.1 kHz stereo 16-bit WAV
/// of exactly the target length) is kept and the engine is not called: a job whose render
/// succeeded but whose completion could not be recorded is finished by its next attempt
/// without rendering again.

#include <cstdint>
#include <filesystem>
#include <functional>
#include <string_view>

#include "audio/finish.h"
#include "core/config.h"
#include "engine/engine.h"
#include "jobs/job.h"

namespace songd::jobs {

/// @brief Everything one run of the pipeline needs.
struct RenderJob {
    /// What to render; `render.work_dir` is the engine's scratch folder: emptied before the
    /// render and removed after it.
    engine::RenderRequest render;
    audio::FinishOptions finish;
    std::filesystem::path output;   ///< the finished WAV
    std::filesystem::path preview;  ///< the preview MP3; empty: none
    int preview_seconds = 0;        ///< ≤ 0: none
    /// Keep a valid finished song already at `output` instead of rendering again.
    bool reuse_output = false;
};

/// @brief What the pipeline delivered.
struct RenderOutcome {
    int64_t frames = 0;
    int sample_rate = 0;
    int channels = 0;
    double duration_seconds = 0;
    /// Loudness figures of this run; only when rendered (reused: 0).
    double integrated_lufs = 0;
    double true_peak_dbtp = 0;
    double render_seconds = 0;  ///< time in the engine
    bool reused = false;        ///< `output` was kept from an earlier attempt
    bool has_preview = false;   ///< `preview` exists
};

/// Progress over the whole pipeline, 0–100: rendering 0–90, "mastering" 90, "preview" 97,
/// "done" 100. Called on the calling thread.
using PipelineProgress = std::function<void(int percent, std::string_view stage)>;

/// The pipeline of a stored job: its request, the job's folder (jobs/layout.h), the
/// configured preview length, and `reuse_output` (a job may have a finished song already).
RenderJob MakeRenderJob(const core::Config& config, const Job& job);

/// True when `wav` is a finished song: a readable 44.1 kHz stereo 16-bit PCM WAV of exactly
/// `frames` frames (every frame read back).
bool IsFinishedSong(const std::filesystem::path& wav, int64_t frames);

/// Runs render → finish → preview (see the file comment).
RenderOutcome RunRenderPipeline(engine::Engine& engine, const RenderJob& job,
                                const PipelineProgress& progress,
                                const engine::CancelToken& cancel);

}  // namespace songd::jobs
