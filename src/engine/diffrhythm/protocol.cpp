#include "engine/diffrhythm/protocol.h"

#include <boost/json.hpp>
#include <cmath>

#include "core/json_text.h"

namespace songd::engine::diffrhythm {

namespace json = boost::json;

namespace {

std::string Quote(std::string_view line) {
    constexpr size_t kMax = 200;
    std::string shown(line.substr(0, kMax));
    for (char& ch : shown) {
        if (static_cast<unsigned char>(ch) < 0x20) ch = ' ';
    }
    return "'" + shown + (line.size() > kMax ? "...'" : "'");
}

const json::value& Member(const json::object& o, const char* name, std::string_view line) {
    const json::value* v = o.if_contains(name);
    if (v == nullptr) throw ProtocolError(std::string("no \"") + name + "\" in " + Quote(line));
    return *v;
}

std::string String(const json::object& o, const char* name, std::string_view line) {
    const json::value& v = Member(o, name, line);
    if (!v.is_string()) {
        throw ProtocolError(std::string("\"") + name + "\" is not a string in " + Quote(line));
    }
    return std::string(v.as_string());
}

double Number(const json::object& o, const char* name, std::string_view line) {
    const json::value& v = Member(o, name, line);
    if (!v.is_number()) {
        throw ProtocolError(std::string("\"") + name + "\" is not a number in " + Quote(line));
    }
    const double d = v.to_number<double>();
    if (!std::isfinite(d)) {
        throw ProtocolError(std::string("\"") + name + "\" is not finite in " + Quote(line));
    }
    return d;
}

}  // namespace

Event ParseEvent(std::string_view line) {
    if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
    json::error_code ec;
    json::value doc = json::parse(line, ec);
    if (ec || !doc.is_object()) throw ProtocolError("not a JSON object: " + Quote(line));
    const json::object& o = doc.as_object();
    const std::string name = String(o, "event", line);
    Event e;
    if (name == "hello") {
        e.kind = Event::Kind::kHello;
        e.protocol = static_cast<int>(Number(o, "protocol", line));
        if (e.protocol != kProtocolVersion) {
            throw ProtocolError("protocol " + std::to_string(e.protocol) + " (songd speaks " +
                                std::to_string(kProtocolVersion) + ") in " + Quote(line));
        }
        if (o.contains("device")) e.device = String(o, "device", line);
        if (o.contains("torch")) e.torch = String(o, "torch", line);
        if (o.contains("pid")) e.pid = static_cast<int64_t>(Number(o, "pid", line));
        return e;
    }
    if (name == "loaded") {
        e.kind = Event::Kind::kLoaded;
        e.model = String(o, "model", line);
        if (o.contains("seconds")) e.seconds = Number(o, "seconds", line);
        return e;
    }
    if (name == "ready") {
        e.kind = Event::Kind::kReady;
        if (const json::value* v = o.if_contains("models_loaded")) {
            if (!v->is_array())
                throw ProtocolError("\"models_loaded\" is not a list in " + Quote(line));
            for (const json::value& m : v->as_array()) {
                if (!m.is_string()) {
                    throw ProtocolError("\"models_loaded\" holds a non-string in " + Quote(line));
                }
                e.models_loaded.emplace_back(m.as_string());
            }
        }
        return e;
    }
    e.id = String(o, "id", line);
    if (e.id.empty()) throw ProtocolError("empty \"id\" in " + Quote(line));
    if (name == "progress") {
        e.kind = Event::Kind::kProgress;
        const double percent = Number(o, "percent", line);
        if (percent < 0 || percent > 100) {
            throw ProtocolError("\"percent\" out of 0..100 in " + Quote(line));
        }
        e.percent = static_cast<int>(percent);
        if (o.contains("phase")) e.phase = String(o, "phase", line);
        return e;
    }
    if (name == "done") {
        e.kind = Event::Kind::kDone;
        e.output_path = String(o, "output_path", line);
        if (o.contains("seconds")) e.seconds = Number(o, "seconds", line);
        return e;
    }
    if (name == "error") {
        e.kind = Event::Kind::kError;
        e.code = String(o, "code", line);
        if (o.contains("message")) e.message = String(o, "message", line);
        return e;
    }
    throw ProtocolError("unknown event \"" + name + "\" in " + Quote(line));
}

std::string RequestLine(const Request& r) {
    json::object o;
    o["id"] = r.id;
    o["lyrics"] = r.lyrics;
    if (r.ref_audio_path.empty()) {
        o["style_prompt"] = r.style_prompt;
    } else {
        o["ref_audio_path"] = r.ref_audio_path;
    }
    o["audio_length"] = r.audio_length;
    o["steps"] = r.steps;
    o["cfg_strength"] = r.cfg_strength;
    o["seed"] = r.seed;
    o["batch"] = r.batch;
    o["chunked"] = r.chunked;
    o["output_path"] = r.output_path;
    return core::JsonText(o) + "\n";
}

Sampler ResolveSampler(std::string_view preset, std::optional<int> steps,
                       std::optional<double> cfg_strength) {
    struct Row {
        std::string_view name;
        Sampler sampler;
    };
    static constexpr Row kPresets[] = {{"preview", {4, 2.0}},   {"draft", {8, 2.5}},
                                       {"standard", {16, 3.0}}, {"high", {32, 4.0}},
                                       {"maximum", {64, 5.0}},  {"ultra", {100, 6.0}}};
    Sampler s;
    for (const Row& row : kPresets) {
        if (row.name == preset) s = row.sampler;
    }
    if (steps) s.steps = *steps;
    if (cfg_strength) s.cfg_strength = *cfg_strength;
    return s;
}

std::string LengthClass(int audio_length) { return audio_length == 95 ? "95" : "full"; }

}  // namespace songd::engine::diffrhythm
