#include "jobs/render_pipeline.h"

#include <algorithm>
#include <chrono>
#include <vector>

#include "audio/preview.h"
#include "audio/sound_file.h"
#include "core/error.h"
#include "core/log.h"
#include "jobs/layout.h"

namespace songd::jobs {

namespace fs = std::filesystem;

namespace {

/// @brief The engine's scratch folder: emptied on entry, removed on every way out.
class ScratchDir {
  public:
    explicit ScratchDir(fs::path path) : path_(std::move(path)) {
        std::error_code ec;
        fs::remove_all(path_, ec);
        fs::create_directories(path_, ec);
        if (ec) {
            throw core::Error(core::ErrorCode::kInternal,
                              "cannot create " + path_.string() + ": " + ec.message());
        }
    }
    ~ScratchDir() {
        std::error_code ec;
        fs::remove_all(path_, ec);
    }
    ScratchDir(const ScratchDir&) = delete;
    ScratchDir& operator=(const ScratchDir&) = delete;

  private:
    fs::path path_;
};

void Report(const PipelineProgress& progress, int percent, std::string_view stage) {
    if (progress) progress(percent, stage);
}

}  // namespace

RenderJob MakeRenderJob(const core::Config& config, const Job& job) {
    RenderJob work;
    engine::RenderRequest& request = work.render;
    request.job_id = job.id;
    request.lyrics = RenderedLyrics(job.request);
    request.instrumental = request.lyrics.empty();
    request.style_prompt = job.request.style_prompt;
    request.audio_length = job.request.audio_length;
    request.seed = job.seed;
    request.batch_size = job.request.batch_size;
    request.preset = job.request.preset;
    request.steps = job.request.steps;
    request.cfg_strength = job.request.cfg_strength;
    request.work_dir = WorkDir(config, job.id);
    work.finish.auto_master = job.request.auto_master;
    work.finish.master_preset = job.request.master_preset;
    work.finish.target_frames = engine::TargetFrames(job.request.audio_length);
    work.output = LocalSong(config, job.id);
    work.preview = LocalPreview(config, job.id);
    work.preview_seconds = config.preview_seconds;
    work.reuse_output = true;
    return work;
}

bool IsFinishedSong(const fs::path& wav, int64_t frames) {
    std::error_code ec;
    if (!fs::is_regular_file(wav, ec)) return false;
    try {
        audio::SoundFile file = audio::SoundFile::Open(
            wav, "the finished song", core::ErrorCode::kNotFound, core::ErrorCode::kInternal);
        const SF_INFO& info = file.info();
        if (info.samplerate != audio::kSampleRate || info.channels != audio::kChannels ||
            info.format != (SF_FORMAT_WAV | SF_FORMAT_PCM_16) || info.frames != frames) {
            return false;
        }
        // The header can claim more than the disk holds: read every frame back.
        std::vector<int16_t> block(static_cast<size_t>(65536) * audio::kChannels);
        int64_t read = 0;
        while (int64_t n = file.ReadShorts(block.data(), 65536)) read += n;
        return read == frames;
    } catch (const std::exception&) {
        return false;
    }
}

RenderOutcome RunRenderPipeline(engine::Engine& engine, const RenderJob& job,
                                const PipelineProgress& progress,
                                const engine::CancelToken& cancel) {
    RenderOutcome outcome;
    const int64_t target = job.finish.target_frames;
    if (job.reuse_output && target > 0 && IsFinishedSong(job.output, target)) {
        core::LogEvent("info", "render_reused",
                       {{"job_id", job.render.job_id}, {"output", job.output.string()}});
        outcome.reused = true;
        outcome.frames = target;
        outcome.sample_rate = audio::kSampleRate;
        outcome.channels = audio::kChannels;
        outcome.duration_seconds = static_cast<double>(target) / audio::kSampleRate;
    } else {
        cancel.ThrowIfCancelled();
        ScratchDir scratch(job.render.work_dir);
        Report(progress, 0, "rendering");
        const auto started = std::chrono::steady_clock::now();
        const fs::path raw = engine.Render(
            job.render,
            [&](int percent) {
                Report(progress, std::clamp(percent, 0, 100) * 90 / 100, "rendering");
            },
            cancel);
        outcome.render_seconds =
            std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count();
        cancel.ThrowIfCancelled();

        Report(progress, 90, "mastering");
        const audio::FinishResult finished = audio::Finish(raw, job.output, job.finish);
        // No cancellation check past this point: the song is written, so the caller either
        // gets it or an error with `output` untouched, never an error with a new file.
        outcome.frames = finished.frames;
        outcome.sample_rate = finished.sample_rate;
        outcome.channels = finished.channels;
        outcome.duration_seconds = finished.duration_seconds;
        outcome.integrated_lufs = finished.integrated_lufs;
        outcome.true_peak_dbtp = finished.true_peak_dbtp;
    }

    if (!job.preview.empty() && job.preview_seconds > 0) {
        std::error_code ec;
        if (outcome.reused && fs::is_regular_file(job.preview, ec)) {
            outcome.has_preview = true;  // written atomically by the earlier attempt
        } else {
            Report(progress, 97, "preview");
            try {
                audio::MakePreview(job.output, job.preview, job.preview_seconds);
                outcome.has_preview = true;
            } catch (const std::exception& e) {
                // A preview is a courtesy: failing to make one never fails the song.
                core::LogEvent("warning", "preview_failed",
                               {{"job_id", job.render.job_id}, {"error", e.what()}});
            }
        }
    }
    Report(progress, 100, "done");
    return outcome;
}

}  // namespace songd::jobs
