#include "jobs/request_json.h"

#include <boost/json.hpp>

#include "core/error.h"

namespace songd::jobs {

namespace json = boost::json;

std::string RequestToJson(const GenerateRequest& r) {
    json::object o;
    o["lyrics"] = r.lyrics;
    o["style_prompt"] = r.style_prompt;
    o["audio_length"] = r.audio_length;
    o["batch_size"] = r.batch_size;
    if (r.steps) o["steps"] = *r.steps;
    if (r.cfg_strength) o["cfg_strength"] = *r.cfg_strength;
    o["preset"] = r.preset;
    o["auto_master"] = r.auto_master;
    o["master_preset"] = r.master_preset;
    if (!r.payment_intent_id.empty()) o["payment_intent_id"] = r.payment_intent_id;
    if (r.seed) o["seed"] = *r.seed;
    if (r.instrumental) o["instrumental"] = true;
    if (r.lyrics_lrc) o["lyrics_lrc"] = *r.lyrics_lrc;
    if (r.lyrics_bpm > 0) o["lyrics_bpm"] = r.lyrics_bpm;
    if (!r.webhook_url.empty()) {
        o["webhook_url"] = r.webhook_url;
        json::array events;
        for (const auto& e : r.webhook_events) events.emplace_back(e);
        o["webhook_events_filter"] = std::move(events);
    }
    if (!r.ref_audio_id.empty()) o["ref_audio_id"] = r.ref_audio_id;
    return json::serialize(o);
}

GenerateRequest RequestFromJson(const std::string& text) {
    try {
        auto o = json::parse(text).as_object();
        GenerateRequest r;
        r.lyrics = json::value_to<std::string>(o.at("lyrics"));
        r.style_prompt = json::value_to<std::string>(o.at("style_prompt"));
        r.audio_length = json::value_to<int>(o.at("audio_length"));
        r.batch_size = json::value_to<int>(o.at("batch_size"));
        if (auto* v = o.if_contains("steps")) r.steps = json::value_to<int>(*v);
        if (auto* v = o.if_contains("cfg_strength")) r.cfg_strength = v->to_number<double>();
        r.preset = json::value_to<std::string>(o.at("preset"));
        r.auto_master = o.at("auto_master").as_bool();
        r.master_preset = json::value_to<std::string>(o.at("master_preset"));
        if (auto* v = o.if_contains("payment_intent_id")) {
            r.payment_intent_id = json::value_to<std::string>(*v);
        }
        if (auto* v = o.if_contains("seed")) r.seed = v->to_number<uint64_t>();
        if (auto* v = o.if_contains("instrumental")) r.instrumental = v->as_bool();
        if (auto* v = o.if_contains("lyrics_lrc")) {
            r.lyrics_lrc = json::value_to<std::string>(*v);
        }
        if (auto* v = o.if_contains("lyrics_bpm")) r.lyrics_bpm = v->to_number<double>();
        if (auto* v = o.if_contains("webhook_url")) {
            r.webhook_url = json::value_to<std::string>(*v);
        }
        if (auto* v = o.if_contains("webhook_events_filter")) {
            r.webhook_events = json::value_to<std::vector<std::string>>(*v);
        }
        if (auto* v = o.if_contains("ref_audio_id")) {
            r.ref_audio_id = json::value_to<std::string>(*v);
        }
        return r;
    } catch (const std::exception& e) {
        throw core::Error(core::ErrorCode::kInternal,
                          std::string("stored job request is corrupt: ") + e.what());
    }
}

}  // namespace songd::jobs
