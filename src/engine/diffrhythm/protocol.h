#pragma once
/// @file
/// The JSON-lines protocol between songd and its DiffRhythm worker
/// (engines/diffrhythm/songd_worker.py; engines/diffrhythm/PROTOCOL.md is the contract).
///
///   auto line = diffrhythm::RequestLine(request);           // one line for the worker's stdin
///   diffrhythm::Event e = diffrhythm::ParseEvent(line_in);  // throws ProtocolError when junk
///   auto sampler = diffrhythm::ResolveSampler("high", std::nullopt, 3.5);  // 32 steps, CFG 3.5
///
/// Everything the worker writes on its protocol stream must parse here; anything else is a
/// protocol error (the supervisor kills and restarts that worker).

#include <cstdint>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

namespace songd::engine::diffrhythm {

constexpr int kProtocolVersion = 1;

/// @brief A line from the worker that is not a protocol line.
class ProtocolError : public std::runtime_error {
  public:
    using std::runtime_error::runtime_error;
};

/// @brief One event line from the worker.
struct Event {
    enum class Kind { kHello, kLoaded, kReady, kProgress, kDone, kError };
    Kind kind = Kind::kHello;
    std::string id;  ///< the request's job id (progress, done, error)
    // hello
    int protocol = 0;
    std::string device;
    std::string torch;
    int64_t pid = 0;
    // loaded
    std::string model;  ///< "95" or "full"
    // ready
    std::vector<std::string> models_loaded;
    // progress
    int percent = 0;
    std::string phase;
    // done
    std::string output_path;
    double seconds = 0;
    // error
    std::string code;  ///< bad_input|model_load|out_of_memory|internal
    std::string message;
};

/// Parses one line. Throws ProtocolError (quoting at most 200 bytes of it) when the line is
/// not a JSON object with a known event and the members that event needs.
Event ParseEvent(std::string_view line);

/// @brief One render request to a worker.
struct Request {
    std::string id;
    std::string lyrics;        ///< LRC; "" for an instrumental
    std::string style_prompt;  ///< used when ref_audio_path is empty
    std::string ref_audio_path;
    int audio_length = 95;
    int steps = 32;
    double cfg_strength = 4.0;
    uint64_t seed = 0;
    int batch = 1;
    bool chunked = true;
    std::string output_path;
};

/// The request as one JSON line, '\n' included.
std::string RequestLine(const Request& request);

/// @brief Sampler settings: steps and classifier-free guidance strength.
struct Sampler {
    int steps = 32;
    double cfg_strength = 4.0;
};

/// `preset`'s steps/CFG (preview 4/2.0, draft 8/2.5, standard 16/3.0, high 32/4.0,
/// maximum 64/5.0, ultra 100/6.0, as the backend songd replaces mapped them), each replaced
/// by an explicit `steps` / `cfg_strength`. An unknown preset is `high` (upstream's fixed 32/4.0).
Sampler ResolveSampler(std::string_view preset, std::optional<int> steps,
                       std::optional<double> cfg_strength);

/// The model a length needs: "95" (DiffRhythm-1_2, 2048 frames) or "full" (6144 frames).
std::string LengthClass(int audio_length);

}  // namespace songd::engine::diffrhythm
