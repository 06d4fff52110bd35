// Validation of the generate body: the old backend's rules, reported as FastAPI did
// (every problem with its `loc` and `msg`), plus the LRC rules shared with the engines.
#include <boost/json.hpp>
#include <cmath>

#include "core/error.h"
#include "core/ids.h"
#include "engine/lrc.h"
#include "engine/lyric_layout.h"
#include "http/handlers/handlers.h"
#include "jobs/webhook_outbox.h"
#include "webhooks/url_policy.h"

namespace songd::http {

namespace json = boost::json;

namespace {

constexpr const char* kPresets[] = {"preview", "draft", "standard", "high", "maximum", "ultra"};
constexpr const char* kMasterPresets[] = {"subtle", "balanced", "loud", "broadcast"};

class Validator {
  public:
    explicit Validator(const json::object& body) : body_(body) {}

    void Error(const std::string& field, std::string msg) {
        errors_.push_back({{"body", field}, std::move(msg)});
    }
    bool Has(const std::string& field) const {
        auto* v = body_.if_contains(field);
        return v && !v->is_null();
    }

    std::optional<std::string> String(const std::string& field, bool required) {
        auto* v = body_.if_contains(field);
        if (!v || v->is_null()) {
            if (required) Error(field, "Field required");
            return std::nullopt;
        }
        if (!v->is_string()) {
            Error(field, "Input should be a valid string");
            return std::nullopt;
        }
        return std::string(v->as_string());
    }

    /// Integers only: JSON integers, or numbers with no fraction (as pydantic accepts).
    std::optional<int64_t> Integer(const std::string& field) {
        auto* v = body_.if_contains(field);
        if (!v || v->is_null()) return std::nullopt;
        if (v->is_int64()) return v->as_int64();
        if (v->is_uint64()) {
            if (v->as_uint64() > static_cast<uint64_t>(INT64_MAX)) {
                Error(field, "Input is too large");
                return std::nullopt;
            }
            return static_cast<int64_t>(v->as_uint64());
        }
        if (v->is_double()) {
            double d = v->as_double();
            if (std::isfinite(d) && d == std::floor(d) && std::fabs(d) < 9e15) {
                return static_cast<int64_t>(d);
            }
        }
        Error(field, "Input should be a valid integer");
        return std::nullopt;
    }

    std::optional<double> Number(const std::string& field) {
        auto* v = body_.if_contains(field);
        if (!v || v->is_null()) return std::nullopt;
        if (v->is_int64()) return static_cast<double>(v->as_int64());
        if (v->is_uint64()) return static_cast<double>(v->as_uint64());
        if (v->is_double() && std::isfinite(v->as_double())) return v->as_double();
        Error(field, "Input should be a valid number");
        return std::nullopt;
    }

    std::optional<bool> Bool(const std::string& field) {
        auto* v = body_.if_contains(field);
        if (!v || v->is_null()) return std::nullopt;
        if (v->is_bool()) return v->as_bool();
        Error(field, "Input should be a valid boolean");
        return std::nullopt;
    }

    template <size_t N>
    std::optional<std::string> Choice(const std::string& field, const char* const (&allowed)[N]) {
        auto s = String(field, false);
        if (!s) return std::nullopt;
        for (const char* a : allowed) {
            if (*s == a) return s;
        }
        std::string list;
        for (const char* a : allowed) list += (list.empty() ? "" : ", ") + std::string(a);
        Error(field, field + " must be one of: " + list);
        return std::nullopt;
    }

    std::vector<core::FieldError>& errors() { return errors_; }

  private:
    const json::object& body_;
    std::vector<core::FieldError> errors_;
};

/// webhook_url and webhook_events_filter: where state changes are POSTed, and which.
void ParseWebhook(Validator& v, const json::object& body, const core::Config& config,
                  jobs::GenerateRequest& r) {
    auto url = v.String("webhook_url", false);
    if (url) {
        if (auto problem = webhooks::CheckWebhookUrl(*url, config.webhook_allow_private)) {
            v.Error("webhook_url", *problem);
            url.reset();
        } else if (config.webhook_secret.empty()) {
            // Standard Webhooks deliveries are always signed: without a secret there is no
            // delivery a receiver could trust, so the job is refused rather than sent unsigned.
            v.Error("webhook_url",
                    "webhooks are not available: this server has no WEBHOOK_SECRET to sign them "
                    "with");
            url.reset();
        }
    }
    std::vector<std::string> events;
    const auto* filter = body.if_contains("webhook_events_filter");
    if (filter && !filter->is_null()) {
        std::string allowed;
        for (const char* e : jobs::kWebhookEvents)
            allowed += (allowed.empty() ? "" : ", ") + std::string(e);
        if (!filter->is_array()) {
            v.Error("webhook_events_filter", "Input should be a valid list of event names");
        } else if (filter->as_array().empty()) {
            v.Error("webhook_events_filter",
                    "webhook_events_filter needs at least one event (" + allowed + ")");
        } else if (filter->as_array().size() > 16) {
            v.Error("webhook_events_filter", "webhook_events_filter has too many entries");
        } else {
            for (const auto& item : filter->as_array()) {
                if (!item.is_string() || !jobs::IsWebhookEvent(item.as_string())) {
                    std::string shown = item.is_string()
                                            ? std::string(item.as_string()).substr(0, 40)
                                            : json::serialize(item).substr(0, 40);
                    v.Error("webhook_events_filter",
                            "unknown event " + shown + "; events are: " + allowed);
                    continue;
                }
                std::string name(item.as_string());
                if (std::find(events.begin(), events.end(), name) == events.end())
                    events.push_back(name);
            }
        }
        if (!v.Has("webhook_url")) {
            v.Error("webhook_events_filter", "webhook_events_filter needs a webhook_url");
        }
    }
    if (!url) return;
    if (events.empty()) {
        for (const char* e : jobs::kDefaultWebhookEvents) events.emplace_back(e);
    }
    r.webhook_url = *url;
    r.webhook_events = std::move(events);
}

}  // namespace

jobs::GenerateRequest ParseGenerateBody(const std::string& body, const core::Config& config) {
    boost::system::error_code ec;
    json::value parsed = json::parse(body, ec);
    if (ec) {
        throw core::Error::Invalid({{{"body"}, "the body is not valid JSON: " + ec.message()}});
    }
    if (!parsed.is_object()) {
        throw core::Error::Invalid({{{"body"}, "the body must be a JSON object"}});
    }
    Validator v(parsed.as_object());
    jobs::GenerateRequest r;

    const auto* instrumental = parsed.as_object().if_contains("instrumental");
    const bool asks_instrumental =
        instrumental && instrumental->is_bool() && instrumental->as_bool();
    auto lyrics = v.String("lyrics", !asks_instrumental);
    // A reference song may stand in for the style prompt: at least one of the two.
    if (auto ref = v.String("ref_audio_id", false)) {
        if (!core::IsJobId(*ref)) {
            v.Error("ref_audio_id", "ref_audio_id must be an upload_id from POST /uploads");
        } else {
            r.ref_audio_id = *ref;
        }
    }
    const bool has_ref = v.Has("ref_audio_id");
    auto style = v.String("style_prompt", !has_ref);
    if (style) {
        int64_t chars = engine::Utf8Length(*style);
        if (chars < 0) {
            v.Error("style_prompt", "style_prompt is not valid UTF-8");
        } else if (chars < 3) {
            v.Error("style_prompt", "String should have at least 3 characters");
        } else if (chars > 1000) {
            v.Error("style_prompt", "String should have at most 1000 characters");
        } else if (!engine::HasLetter(*style)) {
            v.Error("style_prompt",
                    "style_prompt needs words, such as \"classical, hopeful, piano\"");
        } else {
            r.style_prompt = *style;
        }
    }

    r.audio_length = config.default_audio_length;
    bool length_ok = true;
    if (auto len = v.Integer("audio_length")) {
        if (*len != 95 && !(*len >= 96 && *len <= config.max_audio_length)) {
            v.Error("audio_length", "audio_length must be exactly 95 or between 96-" +
                                        std::to_string(config.max_audio_length));
            length_ok = false;
        } else {
            r.audio_length = static_cast<int>(*len);
        }
    } else if (v.Has("audio_length")) {
        length_ok = false;
    }

    if (auto n = v.Integer("batch_size")) {
        if (*n < 1 || *n > config.max_batch_size) {
            v.Error("batch_size",
                    "batch_size must be between 1 and " + std::to_string(config.max_batch_size));
        } else {
            r.batch_size = static_cast<int>(*n);
        }
    }
    if (auto n = v.Integer("steps")) {
        if (*n < 1 || *n > 200) {
            v.Error("steps", "steps must be between 1 and 200");
        } else {
            r.steps = static_cast<int>(*n);
        }
    }
    if (auto x = v.Number("cfg_strength")) {
        if (*x < 0 || *x > 50) {
            v.Error("cfg_strength", "cfg_strength must be between 0 and 50");
        } else {
            r.cfg_strength = *x;
        }
    }
    if (auto p = v.Choice("preset", kPresets)) r.preset = *p;
    if (auto b = v.Bool("auto_master")) r.auto_master = *b;
    if (auto p = v.Choice("master_preset", kMasterPresets)) r.master_preset = *p;
    if (auto pi = v.String("payment_intent_id", false)) {
        bool ok = pi->size() > 3 && pi->size() <= 255 && pi->rfind("pi_", 0) == 0 &&
                  std::all_of(pi->begin() + 3, pi->end(),
                              [](unsigned char c) { return std::isalnum(c) || c == '_'; });
        if (!ok) {
            v.Error("payment_intent_id", "payment_intent_id must look like pi_...");
        } else {
            r.payment_intent_id = *pi;
        }
    }
    if (auto seed = v.Integer("seed")) {
        if (*seed < 0) {
            v.Error("seed", "seed must be a non-negative integer");
        } else {
            r.seed = static_cast<uint64_t>(*seed);
        }
    }

    ParseWebhook(v, parsed.as_object(), config, r);

    // Lyrics: LRC as before, or plain/sectioned text that Generate lays out once the seed (and
    // so the tempo) is known, or nothing for an instrumental. `instrumental: true` wins: the
    // lyrics are then kept as sent but neither validated nor sung.
    if (auto b = v.Bool("instrumental")) r.instrumental = *b;
    if (lyrics && !r.instrumental) {
        try {
            const engine::LyricsKind kind = engine::ClassifyLyrics(*lyrics);
            const int64_t chars = engine::Utf8Length(*lyrics);
            if (kind == engine::LyricsKind::kLrc && chars >= 0 && chars < 10) {
                v.Error("lyrics", "String should have at least 10 characters");
            } else if (kind == engine::LyricsKind::kLrc && length_ok) {
                engine::ParseLrc(*lyrics, r.audio_length);
            }
            r.lyrics = *lyrics;
        } catch (const core::Error& e) {
            for (const auto& f : e.fields()) v.errors().push_back(f);
        }
    } else if (lyrics) {
        r.lyrics = *lyrics;
    }
    if (!v.errors().empty()) throw core::Error::Invalid(std::move(v.errors()));
    return r;
}

void FixRenderedLyrics(jobs::GenerateRequest& request, uint64_t seed) {
    engine::ResolvedLyrics resolved = engine::ResolveSongLyrics(
        request.lyrics, request.instrumental, request.style_prompt, seed, request.audio_length);
    request.lyrics_lrc = std::move(resolved.lrc);
    request.lyrics_bpm = resolved.bpm;
}

}  // namespace songd::http
