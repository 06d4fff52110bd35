#include "app/generate_command.h"

#include <signal.h>
#include <spdlog/spdlog.h>
#include <stdlib.h>
#include <unistd.h>

#include <CLI/CLI.hpp>
#include <algorithm>
#include <atomic>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <fstream>
#include <iostream>
#include <iterator>
#include <random>
#include <sstream>

#include "audio/encode.h"
#include "audio/finish.h"
#include "core/atomic_file.h"
#include "core/error.h"
#include "core/log.h"
#include "core/text.h"
#include "engine/engine.h"
#include "engine/lrc.h"
#include "engine/lyric_layout.h"
#include "jobs/layout.h"
#include "jobs/render_pipeline.h"

namespace songd::app {
namespace {

// Lyrics are limited to 20 000 characters by the parser; refuse to even read a file far
// bigger than that.
constexpr std::uintmax_t kMaxLyricsFileBytes = 1 << 20;

// The render being cancelled by a first SIGINT/SIGTERM; a lock-free atomic, so the handler
// may touch it.
std::atomic<engine::CancelToken*> g_interrupt_target{nullptr};
static_assert(std::atomic<engine::CancelToken*>::is_always_lock_free);

extern "C" void OnInterrupt(int /*signal*/) {
    if (engine::CancelToken* token = g_interrupt_target.load()) token->Cancel();
}

/// @brief Routes SIGINT and SIGTERM to a CancelToken while alive. SA_RESETHAND restores the
/// default action after the first signal, so a second Ctrl-C still kills at once.
class InterruptGuard {
  public:
    InterruptGuard(engine::CancelToken& token, bool enabled) : enabled_(enabled) {
        if (!enabled_) return;
        g_interrupt_target.store(&token);
        struct sigaction action {};
        action.sa_handler = OnInterrupt;
        action.sa_flags = SA_RESETHAND;
        sigemptyset(&action.sa_mask);
        ::sigaction(SIGINT, &action, &old_int_);
        ::sigaction(SIGTERM, &action, &old_term_);
    }
    ~InterruptGuard() {
        if (!enabled_) return;
        ::sigaction(SIGINT, &old_int_, nullptr);
        ::sigaction(SIGTERM, &old_term_, nullptr);
        g_interrupt_target.store(nullptr);
    }
    InterruptGuard(const InterruptGuard&) = delete;
    InterruptGuard& operator=(const InterruptGuard&) = delete;

  private:
    bool enabled_;
    struct sigaction old_int_ {};
    struct sigaction old_term_ {};
};

/// @brief A bad flag or input file; reported with exit code 2 before any work starts.
struct BadInput : std::runtime_error {
    using std::runtime_error::runtime_error;
};

std::string FormatClock(double seconds) {
    const long s = std::lround(seconds);
    char buf[32];
    std::snprintf(buf, sizeof buf, "%ld:%02ld", s / 60, s % 60);
    return buf;
}

std::string Fixed(double value, int decimals) {
    char buf[64];
    std::snprintf(buf, sizeof buf, "%.*f", decimals, value);
    return buf;
}

/// @brief A temporary work folder for the engine, removed with its contents.
class WorkDir {
  public:
    WorkDir() {
        std::string tmpl =
            (std::filesystem::temp_directory_path() / "songd-generate-XXXXXX").string();
        if (::mkdtemp(tmpl.data()) == nullptr) {
            throw core::Error(core::ErrorCode::kInternal,
                              "cannot create a temporary folder in " +
                                  std::filesystem::temp_directory_path().string());
        }
        path_ = tmpl;
    }
    ~WorkDir() {
        std::error_code ec;
        std::filesystem::remove_all(path_, ec);
    }
    WorkDir(const WorkDir&) = delete;
    WorkDir& operator=(const WorkDir&) = delete;
    const std::filesystem::path& path() const { return path_; }

  private:
    std::filesystem::path path_;
};

/// @brief Progress over the whole command: rendering is 0–90 %, finishing and encoding the rest.
class Progress {
  public:
    explicit Progress(const GenerateStreams& streams)
        : streams_(streams), start_(std::chrono::steady_clock::now()) {}

    void Update(int percent, const std::string& phase) {
        percent = std::clamp(percent, 0, 100);
        if (percent == percent_ && phase == phase_) return;
        const bool new_phase = phase != phase_;
        percent_ = percent;
        phase_ = phase;
        const double elapsed =
            std::chrono::duration<double>(std::chrono::steady_clock::now() - start_).count();
        const std::string eta = percent > 0 && percent < 100
                                    ? FormatClock(elapsed * (100 - percent) / percent)
                                : percent == 100 ? "0:00"
                                                 : "--:--";
        if (streams_.terminal) {
            constexpr int kWidth = 30;
            const int filled = percent * kWidth / 100;
            streams_.err << "\r[" << std::string(static_cast<size_t>(filled), '#')
                         << std::string(static_cast<size_t>(kWidth - filled), '-') << "] "
                         << (percent < 10    ? "  "
                             : percent < 100 ? " "
                                             : "")
                         << percent << "%  ETA " << eta << "  " << phase << "\x1b[K" << std::flush;
        } else if (new_phase || percent / 10 != last_line_ / 10 || percent == 100) {
            // Plain lines for logs and pipes: one per phase and per ten percent.
            last_line_ = percent;
            streams_.err << "progress " << percent << "% " << phase << " (elapsed "
                         << FormatClock(elapsed) << ", ETA " << eta << ")\n"
                         << std::flush;
        }
    }

    /// Ends the bar's line so later output starts on a fresh one.
    void Done() {
        if (streams_.terminal && percent_ >= 0) streams_.err << "\n" << std::flush;
    }

    double Elapsed() const {
        return std::chrono::duration<double>(std::chrono::steady_clock::now() - start_).count();
    }

  private:
    const GenerateStreams& streams_;
    std::chrono::steady_clock::time_point start_;
    int percent_ = -1;
    int last_line_ = -10;
    std::string phase_;
};

std::string ReadLyrics(const std::filesystem::path& path) {
    std::error_code ec;
    if (path.empty()) throw BadInput("--lyrics is required");
    if (!std::filesystem::exists(path, ec)) {
        throw BadInput("--lyrics: no such file: " + path.string());
    }
    if (!std::filesystem::is_regular_file(path, ec)) {
        throw BadInput("--lyrics: not a regular file: " + path.string());
    }
    const auto size = std::filesystem::file_size(path, ec);
    if (!ec && size > kMaxLyricsFileBytes) {
        throw BadInput("--lyrics: " + path.string() + " is " + std::to_string(size) +
                       " bytes; lyrics may have at most " +
                       std::to_string(engine::kMaxLyricsChars) + " characters");
    }
    std::ifstream in(path, std::ios::binary);
    if (!in) throw BadInput("--lyrics: cannot read " + path.string());
    std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    if (in.bad()) throw BadInput("--lyrics: cannot read " + path.string());
    return text;
}

audio::Format OutputFormat(const std::filesystem::path& output) {
    if (output.empty()) throw BadInput("-o/--output is required");
    const std::string ext = core::ToLower(output.extension().string());
    if (ext == ".wav") return audio::Format::kWav;
    if (ext == ".flac") return audio::Format::kFlac;
    if (ext == ".mp3") return audio::Format::kMp3;
    throw BadInput("-o: unknown extension '" + output.extension().string() + "' of " +
                   output.string() + "; use .wav, .flac or .mp3");
}

void CheckWritable(const std::filesystem::path& output) {
    std::error_code ec;
    if (std::filesystem::is_directory(output, ec)) {
        throw BadInput("-o: " + output.string() + " is a directory; give a file name");
    }
    const std::filesystem::path dir =
        output.parent_path().empty() ? std::filesystem::path(".") : output.parent_path();
    if (!std::filesystem::is_directory(dir, ec)) {
        throw BadInput("-o: folder " + dir.string() + " does not exist");
    }
    if (::access(dir.c_str(), W_OK) != 0) {
        throw BadInput("-o: folder " + dir.string() + " is not writable");
    }
}

/// Validates everything and fills the render request; throws BadInput.
engine::RenderRequest Validate(const GenerateOptions& options, const core::Config& config) {
    if (options.output.empty()) throw BadInput("-o/--output is required");
    CheckWritable(options.output);
    OutputFormat(options.output);
    engine::RenderRequest request;
    request.audio_length = options.length.value_or(config.default_audio_length);
    if (request.audio_length < 95 || request.audio_length > config.max_audio_length) {
        throw BadInput("--length " + std::to_string(request.audio_length) +
                       " is not allowed; use 95 to " + std::to_string(config.max_audio_length) +
                       " seconds");
    }
    const auto not_space = options.style.find_first_not_of(" \t\r\n");
    if (not_space == std::string::npos) throw BadInput("--style must not be empty");
    if (!audio::MasterPresetLufs(options.master_preset)) {
        throw BadInput("--master-preset '" + options.master_preset +
                       "' is not allowed; use subtle, balanced, loud or broadcast");
    }
    request.style_prompt = options.style;
    request.seed = options.seed ? *options.seed
                                : std::random_device{}() * 0x100000000ULL + std::random_device{}();
    // Lyrics as the API takes them: LRC, plain/sectioned text timed at the style's tempo (so
    // after the seed), or an instrumental.
    const std::string text =
        options.instrumental && options.lyrics.empty() ? std::string() : ReadLyrics(options.lyrics);
    try {
        engine::ResolvedLyrics resolved = engine::ResolveSongLyrics(
            text, options.instrumental, request.style_prompt, request.seed, request.audio_length);
        request.lyrics = std::move(resolved.lrc);
        request.instrumental = resolved.instrumental;
    } catch (const core::Error& e) {
        const std::string why = e.fields().empty() ? e.what() : e.fields().front().msg;
        throw BadInput("--lyrics " + options.lyrics.string() + ": " + why);
    }
    if (!options.lrc_out.empty()) CheckWritable(options.lrc_out);
    request.job_id = "cli";
    return request;
}

/// The CLI reports through its own summary and progress; keep the log to warnings and worse
/// unless Main already set logging up.
void QuietLogging() {
    if (spdlog::get("songd") != nullptr) return;
    core::SetupLogging("warning", "text");
}

}  // namespace

int RunGenerate(const GenerateOptions& options, const core::Config& config,
                const GenerateStreams& streams) {
    QuietLogging();
    engine::RenderRequest request;
    std::unique_ptr<engine::Engine> engine;
    try {
        request = Validate(options, config);
        core::Config engine_config = config;
        if (!options.engine.empty()) engine_config.engine = options.engine;
        engine = engine::MakeEngine(engine_config);
    } catch (const BadInput& e) {
        streams.err << "songd generate: " << e.what() << "\n";
        return 2;
    } catch (const core::Error& e) {
        streams.err << "songd generate: " << e.what() << "\n";
        return e.code() == core::ErrorCode::kInvalidInput ? 2 : 1;
    }

    Progress progress(streams);
    engine::CancelToken cancel;
    InterruptGuard interrupts(cancel, streams.handle_interrupts);
    try {
        engine->Start();
        WorkDir work;
        const audio::Format format = OutputFormat(options.output);
        jobs::RenderJob job;
        job.render = request;
        job.render.work_dir = work.path() / "render";
        job.finish.auto_master = !options.no_auto_master;
        job.finish.master_preset = options.master_preset;
        job.finish.target_frames = engine::TargetFrames(request.audio_length);
        // A WAV is written where asked; other formats are encoded from the finished WAV.
        job.output = format == audio::Format::kWav ? options.output : work.path() / jobs::kSongFile;
        streams.err << "generating " << request.audio_length << " s with engine " << engine->Name()
                    << ", seed " << request.seed << (request.instrumental ? ", instrumental" : "")
                    << "\n";
        if (!options.lrc_out.empty()) {
            core::WriteFileAtomic(options.lrc_out, request.lyrics);
        }
        const jobs::RenderOutcome result = jobs::RunRenderPipeline(
            *engine, job,
            [&](int pct, std::string_view stage) {
                // The pipeline's 100 % is this command's 97: encoding is left.
                if (pct < 100) progress.Update(pct * 97 / 100, std::string(stage));
            },
            cancel);
        if (format != audio::Format::kWav) {
            cancel.ThrowIfCancelled();
            progress.Update(97, std::string("encoding ") + audio::FormatName(format));
            audio::EncodeFile(job.output, options.output, format);
        }
        progress.Update(100, "done");
        progress.Done();
        streams.out << "wrote " << options.output.string() << ": "
                    << Fixed(result.duration_seconds, 2) << " s (" << result.frames
                    << " frames, 44.1 kHz stereo), "
                    << (job.finish.auto_master ? Fixed(result.integrated_lufs, 1) + " LUFS, "
                                               : std::string("peak-normalised, "))
                    << Fixed(result.true_peak_dbtp, 1) << " dBTP, seed " << request.seed
                    << "; render " << Fixed(result.render_seconds, 1) << " s, total "
                    << Fixed(progress.Elapsed(), 1) << " s\n";
        return 0;
    } catch (const core::Error& e) {
        progress.Done();
        if (cancel.Stopped()) {
            streams.err << "songd generate: interrupted; nothing was written\n";
            return 130;
        }
        streams.err << "songd generate: " << e.what() << "\n";
        return e.code() == core::ErrorCode::kInvalidInput ? 2 : 1;
    } catch (const std::exception& e) {
        progress.Done();
        streams.err << "songd generate: unexpected failure: " << e.what() << "\n";
        return 1;
    }
}

GenerateCommand::GenerateCommand(CLI::App& app)
    : command_(app.add_subcommand("generate", "render one song offline, with a progress bar")) {
    command_->add_option("--lyrics", options_.lyrics,
                         "lyrics file: LRC, or plain lines with [Verse]/[Chorus] tags (songd "
                         "times them)");
    command_->add_flag("--instrumental", options_.instrumental,
                       "no vocals (--lyrics is then not needed and ignored)");
    command_->add_option("--lrc-out", options_.lrc_out, "also write the LRC rendered to this file");
    command_->add_option("--style", options_.style, "style prompt, e.g. \"sad piano ballad\"")
        ->required();
    command_->add_option("--length", options_.length,
                         "seconds: 95 to MAX_AUDIO_LENGTH (default DEFAULT_AUDIO_LENGTH)");
    command_->add_option("--seed", options_.seed, "seed for a reproducible song (default: random)");
    command_->add_option("--master-preset", options_.master_preset,
                         "subtle|balanced|loud|broadcast (default balanced)");
    command_->add_flag("--no-auto-master", options_.no_auto_master,
                       "peak-normalise to -1 dBFS instead of loudness mastering");
    command_->add_option("--engine", options_.engine, "synth|tone (default ENGINE)");
    command_->add_option("-o,--output", options_.output, "output file: .wav, .flac or .mp3")
        ->required();
}

bool GenerateCommand::Parsed() const { return command_->parsed(); }

int GenerateCommand::Run(const core::Config& config) const {
    GenerateStreams streams{std::cout, std::cerr, ::isatty(STDERR_FILENO) == 1, true};
    return RunGenerate(options_, config, streams);
}

}  // namespace songd::app
