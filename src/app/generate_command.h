#pragma once
/// @file
/// `songd generate`: one song offline, with a progress bar.
///
///   songd generate --lyrics song.lrc --style "sad piano ballad" --length 120 --seed 7 -o song.mp3
///   songd generate --lyrics words.txt --style "pop" --lrc-out used.lrc -o song.wav  # plain lyrics
///   songd generate --instrumental --style "lofi" -o beat.wav
///
/// Wiring in Main (commands.cpp):
///
///   app::GenerateCommand generate(app);                  // before parsing
///   ...
///   if (generate.Parsed()) return generate.Run(config);  // after the configuration loaded
///
/// Everything is validated before rendering starts, so bad input fails in milliseconds with
/// a message naming the flag, and nothing is written. Exit codes: 0 done, 2 bad input,
/// 1 the render or the write failed, 130 interrupted.

#include <cstdint>
#include <filesystem>
#include <iosfwd>
#include <optional>
#include <string>

#include "core/config.h"

namespace CLI {
class App;
}

namespace songd::app {

/// @brief The flags of `songd generate`.
struct GenerateOptions {
    std::filesystem::path lyrics;   ///< LRC, or plain/sectioned lyrics songd times
    bool instrumental = false;      ///< no vocals; --lyrics is then optional and ignored
    std::filesystem::path lrc_out;  ///< where to write the LRC rendered; empty: nowhere
    std::string style;              ///< style prompt
    std::optional<int> length;      ///< seconds; default DEFAULT_AUDIO_LENGTH
    std::optional<uint64_t> seed;   ///< default: random, printed
    std::string master_preset = "balanced";
    bool no_auto_master = false;   ///< peak-normalise instead of loudness mastering
    std::string engine;            ///< empty: ENGINE from the configuration
    std::filesystem::path output;  ///< .wav, .flac or .mp3
};

/// @brief Where `songd generate` reports: the summary to `out`, progress and errors to
/// `err`, as a redrawn bar when `terminal`, else as plain lines. With `handle_interrupts`,
/// a first SIGINT/SIGTERM stops the render cleanly (exit code 130, nothing written), a
/// second one kills as usual.
struct GenerateStreams {
    std::ostream& out;
    std::ostream& err;
    bool terminal = false;
    bool handle_interrupts = false;
};

/// Runs one generation; returns the process exit code (0, 1 or 2, see above).
int RunGenerate(const GenerateOptions& options, const core::Config& config,
                const GenerateStreams& streams);

/// @brief The `generate` subcommand registered on the binary's CLI11 app.
class GenerateCommand {
  public:
    explicit GenerateCommand(CLI::App& app);
    /// True when the command line chose `generate`.
    bool Parsed() const;
    /// Runs it with stdout/stderr, drawing a bar when stderr is a terminal.
    int Run(const core::Config& config) const;

  private:
    CLI::App* command_;
    GenerateOptions options_;
};

}  // namespace songd::app
