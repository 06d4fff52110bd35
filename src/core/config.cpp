#include "core/config.h"

#include <arpa/inet.h>

#include <algorithm>
#include <cctype>
#include <charconv>
#include <fstream>
#include <functional>
#include <set>

#include "core/crypto.h"
#include "core/text.h"

extern char** environ;

namespace songd::core {
namespace {

/// Text from a file or the environment as it may appear in an error line: control bytes and
/// bytes outside ASCII as \xHH (they could hide the message or upset a terminal), at most
/// 200 bytes.
std::string Printable(std::string_view s) {
    static const char* kHex = "0123456789abcdef";
    std::string out;
    for (unsigned char c : s.substr(0, 200)) {
        if (c >= 0x20 && c < 0x7f && c != '\\') {
            out += static_cast<char>(c);
        } else {
            out += "\\x";
            out += kHex[c >> 4];
            out += kHex[c & 15];
        }
    }
    if (s.size() > 200) out += "...";
    return out;
}

/// True when the file starts like a SoundFont (RIFF form "sfbk"; SF2 and SF3 alike).
bool LooksLikeSoundFont(const std::string& path) {
    std::ifstream in(path, std::ios::binary);
    char header[12] = {};
    if (!in.read(header, sizeof header)) return false;
    return std::string_view(header, 4) == "RIFF" && std::string_view(header + 8, 4) == "sfbk";
}

/// Whether a variable's value may appear in an error line.
enum class Shown { kValue, kHidden };

/// Reads variables and turns the first bad one into a ConfigError. It records every name it
/// is asked for (set or not), so the list of known variables is whatever the section loaders
/// read and cannot drift from them.
class Reader {
  public:
    explicit Reader(const Environment& env) : env_(env) {}

    /// The raw value, or null when unset. Every read goes through here.
    const std::string* Raw(const std::string& name, Shown shown = Shown::kValue) {
        if (std::find(names_.begin(), names_.end(), name) == names_.end()) names_.push_back(name);
        if (shown == Shown::kHidden) hidden_.insert(name);
        auto it = env_.find(name);
        return it == env_.end() ? nullptr : &it->second;
    }

    [[noreturn]] void Fail(const std::string& name, const std::string& value,
                           const std::string& allowed) const {
        std::string shown = hidden_.count(name) ? "<hidden>" : "'" + Printable(value) + "'";
        throw ConfigError("invalid configuration: " + name + "=" + shown + ": " + allowed);
    }

    void String(const std::string& name, std::string& out) {
        if (auto* v = Raw(name)) out = *v;
    }

    /// Credentials travel in headers: visible ASCII, no spaces. Empty means unset.
    void Token(const std::string& name, std::string& out, Shown shown = Shown::kValue) {
        auto* v = Raw(name, shown);
        if (!v) return;
        bool ok = std::all_of(v->begin(), v->end(),
                              [](unsigned char ch) { return ch > 0x20 && ch < 0x7f; });
        if (!ok || v->size() > 4096) {
            Fail(name, *v, "must be visible ASCII characters without spaces");
        }
        out = *v;
    }

    void Bool(const std::string& name, bool& out) {
        auto* v = Raw(name);
        if (!v) return;
        std::string s = core::ToLower(core::Trim(*v));
        if (s == "true" || s == "1" || s == "yes" || s == "on") {
            out = true;
        } else if (s == "false" || s == "0" || s == "no" || s == "off") {
            out = false;
        } else {
            Fail(name, *v, "must be true or false");
        }
    }

    void Int(const std::string& name, int& out, long lo, long hi) {
        auto* v = Raw(name);
        if (!v) return;
        std::string s(core::Trim(*v));
        long value = 0;
        auto [ptr, ec] = std::from_chars(s.data(), s.data() + s.size(), value);
        if (s.empty() || ec != std::errc() || ptr != s.data() + s.size() || value < lo ||
            value > hi) {
            Fail(name, *v,
                 "must be a whole number from " + std::to_string(lo) + " to " + std::to_string(hi));
        }
        out = static_cast<int>(value);
    }

    void Choice(const std::string& name, std::string& out, const std::vector<std::string>& allowed,
                bool lower = true) {
        auto* v = Raw(name);
        if (!v) return;
        std::string s(core::Trim(*v));
        if (lower) s = core::ToLower(s);
        if (std::find(allowed.begin(), allowed.end(), s) == allowed.end()) {
            std::string list;
            for (const auto& a : allowed) list += (list.empty() ? "" : ", ") + a;
            Fail(name, *v, "must be one of " + list);
        }
        out = s;
    }

    void Path(const std::string& name, std::string& out) {
        auto* v = Raw(name);
        if (!v) return;
        if (v->empty() || v->find('\0') != std::string::npos) Fail(name, *v, "must be a path");
        out = *v;
    }

    void Url(const std::string& name, std::string& out, bool allow_empty) {
        auto* v = Raw(name);
        if (!v) return;
        std::string s(core::Trim(*v));
        if (s.empty() && allow_empty) {
            out.clear();
            return;
        }
        bool ok = (s.rfind("http://", 0) == 0 || s.rfind("https://", 0) == 0) &&
                  s.find_first_of(" \t\r\n") == std::string::npos;
        auto host_start = s.find("://") + 3;
        if (ok && (host_start >= s.size() || s[host_start] == '/')) ok = false;
        if (!ok) Fail(name, *v, "must be an http:// or https:// URL with a host");
        while (!s.empty() && s.back() == '/') s.pop_back();
        out = s;
    }

    void UrlPath(const std::string& name, std::string& out, bool allow_root) {
        auto* v = Raw(name);
        if (!v) return;
        std::string s(core::Trim(*v));
        bool ok = !s.empty() && s.front() == '/' &&
                  s.find_first_of(" ?#%\t") == std::string::npos &&
                  s.find("//") == std::string::npos;
        if (ok && s.size() > 1 && s.back() == '/') ok = false;
        if (ok && s == "/" && !allow_root) ok = false;
        if (!ok) Fail(name, *v, "must be a path such as /api/v1: a leading /, no trailing /");
        out = (s == "/") ? "" : s;
    }

    /// Every name read so far, in the order of the first read.
    const std::vector<std::string>& Names() const { return names_; }
    const std::set<std::string>& Hidden() const { return hidden_; }

  private:
    const Environment& env_;
    std::vector<std::string> names_;
    std::set<std::string> hidden_;
};

/// Whole number in [lo, hi] from `text`, or nullopt.
std::optional<long> ParseWhole(std::string_view text, long lo, long hi) {
    long value = 0;
    auto [ptr, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
    if (text.empty() || ec != std::errc() || ptr != text.data() + text.size() || value < lo ||
        value > hi) {
        return std::nullopt;
    }
    return value;
}

/// Splits "a, b,c" at commas, trimming each item (empty items stay, to be refused).
std::vector<std::string> SplitList(const std::string& text) {
    std::vector<std::string> items;
    size_t start = 0;
    while (true) {
        const auto comma = text.find(',', start);
        items.emplace_back(core::Trim(text.substr(start, comma - start)));
        if (comma == std::string::npos) break;
        start = comma + 1;
    }
    return items;
}

bool IsHostAddress(const std::string& s) {
    unsigned char buf[sizeof(in6_addr)];
    if (inet_pton(AF_INET, s.c_str(), buf) == 1 || inet_pton(AF_INET6, s.c_str(), buf) == 1) {
        return true;
    }
    return s == "localhost";
}

// One loader per section of DESIGN.md. Each reads its variables through `r` in a fixed order
// (the first bad value is the one reported) and checks what lies within its section. A new
// variable is one line in its section: read it unconditionally, so the name is recorded even
// when the variable is unset.

void LoadHttp(Reader& r, Config& c) {
    r.String("HOST", c.host);
    c.host = std::string(core::Trim(c.host));
    if (!IsHostAddress(c.host)) {
        r.Fail("HOST", c.host, "must be an IPv4 or IPv6 address, or localhost");
    }
    r.Int("PORT", c.port, 1, 65535);
    r.UrlPath("API_PREFIX", c.api_prefix, false);
    c.metrics_path = c.api_prefix + "/metrics";
    r.Bool("DEBUG", c.debug);
    r.Int("IO_THREADS", c.io_threads, 1, 64);
    r.Int("STATUS_CACHE_ENTRIES", c.status_cache_entries, 0, 10000000);
    r.Int("STATUS_CACHE_MAX_AGE_MS", c.status_cache_max_age_ms, 0, 3600000);
    r.Int("HTTP_READ_TIMEOUT", c.http_read_timeout_seconds, 1, 3600);
    r.Token("API_KEY", c.api_key, Shown::kHidden);
    if (auto* v = r.Raw("CORS_ORIGINS")) {
        c.cors_origins.clear();
        std::string list = *v;
        size_t start = 0;
        while (start <= list.size()) {
            auto comma = list.find(',', start);
            std::string origin(core::Trim(list.substr(start, comma - start)));
            if (!origin.empty()) {
                bool ok = origin == "*" ||
                          ((origin.rfind("http://", 0) == 0 || origin.rfind("https://", 0) == 0) &&
                           origin.find_first_of(" /", 8) == std::string::npos);
                if (!ok) {
                    r.Fail("CORS_ORIGINS", *v,
                           "must be * or a comma-separated list of origins such as "
                           "https://example.com");
                }
                c.cors_origins.push_back(origin);
            }
            if (comma == std::string::npos) break;
            start = comma + 1;
        }
    }
    r.Bool("ENABLE_RATE_LIMIT", c.enable_rate_limit);
    r.Int("RATE_LIMIT_PER_HOUR", c.rate_limit_per_hour, 1, 1000000);
    r.Bool("ENABLE_METRICS", c.enable_metrics);
    r.UrlPath("METRICS_PATH", c.metrics_path, false);
    r.Int("MAX_CONNECTIONS", c.max_connections, 0, 1000000);
    r.Int("MAX_CONNECTIONS_PER_IP", c.max_connections_per_ip, 0, 1000000);
    r.Int("HTTP_KEEPALIVE_MAX_REQUESTS", c.keepalive_max_requests, 1, 1000000);
    r.Int("HTTP_KEEPALIVE_MAX_SECONDS", c.keepalive_max_seconds, 1, 86400);
    r.Int("MAX_EVENT_STREAMS", c.max_event_streams, 0, 1000000);
    if (auto* v = r.Raw("TRUSTED_PROXIES")) {
        c.trusted_proxies.clear();
        std::string list = *v;
        size_t start = 0;
        while (start <= list.size()) {
            auto comma = list.find(',', start);
            std::string item(core::Trim(list.substr(start, comma - start)));
            if (!item.empty()) {
                auto net = ParseIpNetwork(item);
                if (!net) {
                    r.Fail("TRUSTED_PROXIES", *v,
                           "'" + Printable(item) +
                               "' is not an address or CIDR network; must be a comma-separated "
                               "list such as 10.0.0.0/8, 192.168.1.7, fd00::/8 (IPv4 prefix "
                               "0-32, IPv6 prefix 0-128)");
                }
                c.trusted_proxies.push_back(*net);
            }
            if (comma == std::string::npos) break;
            start = comma + 1;
        }
    }
}

void LoadLogging(Reader& r, Config& c) {
    r.Choice("LOG_LEVEL", c.log_level, {"trace", "debug", "info", "warning", "error", "critical"});
    r.Choice("LOG_FORMAT", c.log_format, {"json", "text"});
    r.Bool("ACCESS_LOG", c.access_log);
    r.Int("ACCESS_LOG_BUFFER", c.access_log_buffer, 1, 1 << 22);
}

/// Jobs and the engine: device, workers, lengths, the SoundFont of the built-in engine.
void LoadGeneration(Reader& r, Config& c) {
    if (auto* v = r.Raw("DEVICE")) {
        std::string d = core::ToLower(core::Trim(*v));
        bool ok = d == "cpu" || d == "cuda" || d == "mps";
        if (!ok && d.rfind("cuda:", 0) == 0 && d.size() > 5) {
            ok = std::all_of(d.begin() + 5, d.end(),
                             [](unsigned char ch) { return std::isdigit(ch); });
        }
        if (!ok) r.Fail("DEVICE", *v, "must be cpu, cuda, cuda:N or mps");
        c.device = d;
    }
    r.Choice("ENGINE", c.engine, {"synth", "tone", "diffrhythm"});
    r.Int("WORKERS", c.workers, 1, 256);
    r.Int("GENERATION_TIMEOUT", c.generation_timeout_seconds, 1, 86400);
    r.Int("MAX_BATCH_SIZE", c.max_batch_size, 1, 8);
    r.Int("MAX_AUDIO_LENGTH", c.max_audio_length, 95, 285);
    r.Int("DEFAULT_AUDIO_LENGTH", c.default_audio_length, 95, 285);
    if (c.default_audio_length > c.max_audio_length) {
        r.Fail("DEFAULT_AUDIO_LENGTH", std::to_string(c.default_audio_length),
               "must be 95 or from 96 to MAX_AUDIO_LENGTH (" + std::to_string(c.max_audio_length) +
                   ")");
    }
    r.Int("PREVIEW_SECONDS", c.preview_seconds, 0, 285);
    if (auto* v = r.Raw("SOUNDFONT"); v && !v->empty()) {
        std::error_code ec;
        if (!std::filesystem::is_regular_file(*v, ec)) {
            r.Fail("SOUNDFONT", *v, "must be the path of an existing .sf2 file");
        }
        if (!LooksLikeSoundFont(*v)) {
            r.Fail("SOUNDFONT", *v, "must be a SoundFont file (.sf2/.sf3: RIFF form sfbk)");
        }
        c.soundfont = *v;
    }
}

void LoadDiffRhythm(Reader& r, Config& c) {
    if (auto* v = r.Raw("DIFFRHYTHM_HOME"); v && !v->empty()) {
        std::error_code ec;
        if (!std::filesystem::is_directory(*v, ec)) {
            r.Fail("DIFFRHYTHM_HOME", *v, "must be the directory of a DiffRhythm checkout");
        }
        c.diffrhythm_home = *v;
    }
    r.Path("DIFFRHYTHM_PYTHON", c.diffrhythm_python);
    r.Choice("DIFFRHYTHM_MODE", c.diffrhythm_mode, {"worker", "cli"});
    if (auto* v = r.Raw("DIFFRHYTHM_GPUS"); v && !core::Trim(*v).empty()) {
        std::string list = *v;
        size_t start = 0;
        while (true) {
            auto comma = list.find(',', start);
            std::string item(core::Trim(list.substr(start, comma - start)));
            int gpu = 0;
            auto [ptr, ec] = std::from_chars(item.data(), item.data() + item.size(), gpu);
            if (item.empty() || ec != std::errc() || ptr != item.data() + item.size() || gpu < 0 ||
                gpu > 255) {
                r.Fail("DIFFRHYTHM_GPUS", *v,
                       "must be a comma-separated list of GPU indexes such as 0,1");
            }
            c.diffrhythm_gpus.push_back(gpu);
            if (comma == std::string::npos) break;
            start = comma + 1;
        }
    }
    if (auto* v = r.Raw("DEVICE"); v && !core::Trim(*v).empty()) {
        // The worker takes cpu|cuda|mps; cuda:N is cuda on GPU N (unless DIFFRHYTHM_GPUS says).
        c.diffrhythm_device = c.device.rfind("cuda", 0) == 0 ? "cuda" : c.device;
        if (c.device.rfind("cuda:", 0) == 0 && c.diffrhythm_gpus.empty()) {
            c.diffrhythm_gpus.push_back(std::min(255, std::atoi(c.device.substr(5, 3).c_str())));
        }
    }
    if (auto* v = r.Raw("DIFFRHYTHM_PRELOAD"); v && !core::Trim(*v).empty()) {
        std::string list = core::ToLower(*v);
        size_t start = 0;
        while (true) {
            auto comma = list.find(',', start);
            std::string item(core::Trim(list.substr(start, comma - start)));
            if (item == "95" || item == "all") c.diffrhythm_preload.push_back(95);
            if (item == "full" || item == "all") c.diffrhythm_preload.push_back(285);
            if (item != "95" && item != "full" && item != "all" && item != "none") {
                r.Fail("DIFFRHYTHM_PRELOAD", *v,
                       "must be none, 95, full or all (a list such as 95,full is fine)");
            }
            if (comma == std::string::npos) break;
            start = comma + 1;
        }
        std::sort(c.diffrhythm_preload.begin(), c.diffrhythm_preload.end());
        c.diffrhythm_preload.erase(
            std::unique(c.diffrhythm_preload.begin(), c.diffrhythm_preload.end()),
            c.diffrhythm_preload.end());
    }
    r.Int("DIFFRHYTHM_LOAD_TIMEOUT", c.diffrhythm_load_timeout_seconds, 1, 86400);
    r.Bool("DIFFRHYTHM_CHUNKED", c.diffrhythm_chunked);
}

/// The test engine `tone`.
void LoadTone(Reader& r, Config& c) {
    r.Int("TONE_RENDER_MS", c.tone_render_ms, 0, 600000);
    r.Choice("TONE_FAULT", c.tone_fault, {"none", "nan", "silence", "error"});
}

/// ENGINE is read with the generation section, DIFFRHYTHM_HOME with its own; the check comes
/// after both (and after the tone engine's variables, whose bad values are reported first).
void CheckEngineHasItsHome(Reader& r, Config& c) {
    if (c.engine == "diffrhythm" && c.diffrhythm_home.empty()) {
        r.Fail("DIFFRHYTHM_HOME", "",
               "must be set to the DiffRhythm checkout when ENGINE=diffrhythm");
    }
    // With DiffRhythm, a render holds one model worker: as many renders at once as workers.
    if (c.engine == "diffrhythm") {
        const int engine_workers = std::max<int>(1, static_cast<int>(c.diffrhythm_gpus.size()));
        if (auto* v = r.Raw("WORKERS"); v && c.workers != engine_workers) {
            r.Fail("WORKERS", *v,
                   "must be " + std::to_string(engine_workers) +
                       " (or unset) with ENGINE=diffrhythm: one render per DiffRhythm worker, "
                       "one worker per DIFFRHYTHM_GPUS entry (one on the CPU without GPUs)");
        }
        c.workers = engine_workers;
    }
}

void LoadStorage(Reader& r, Config& c) {
    if (auto* v = r.Raw("OUTPUT_DIR")) {
        if (core::Trim(*v).empty() || v->find('\0') != std::string::npos) {
            r.Fail("OUTPUT_DIR", *v, "must be a directory path");
        }
        c.output_dir = *v;
    }
    if (auto* v = r.Raw("DATABASE_URL", Shown::kHidden)) {
        std::string url(core::Trim(*v));
        if (url.rfind("sqlite:", 0) == 0 && url.size() > 7) {
            c.database_url = url;
        } else if ((url.rfind("postgresql://", 0) == 0 || url.rfind("postgres://", 0) == 0)) {
            c.database_url = url;
        } else if (!url.empty() && url.find("://") == std::string::npos) {
            c.database_url = "sqlite:" + url;  // a bare path is a SQLite file
        } else {
            r.Fail("DATABASE_URL", *v, "must be sqlite:PATH, a file path, or postgresql://...");
        }
    }
}

/// Stripe and the price.
void LoadPayment(Reader& r, Config& c) {
    r.Token("STRIPE_SECRET_KEY", c.stripe_secret_key, Shown::kHidden);
    r.Token("STRIPE_PUBLISHABLE_KEY", c.stripe_publishable_key);
    r.Token("STRIPE_WEBHOOK_SECRET", c.stripe_webhook_secret, Shown::kHidden);
    if (!c.stripe_secret_key.empty() && c.stripe_secret_key.rfind("sk_", 0) != 0 &&
        c.stripe_secret_key.rfind("rk_", 0) != 0) {
        r.Fail("STRIPE_SECRET_KEY", c.stripe_secret_key, "must start with sk_ or rk_");
    }
    if (!c.stripe_publishable_key.empty() && c.stripe_publishable_key.rfind("pk_", 0) != 0) {
        r.Fail("STRIPE_PUBLISHABLE_KEY", c.stripe_publishable_key, "must start with pk_");
    }
    if (!c.stripe_webhook_secret.empty() && c.stripe_webhook_secret.rfind("whsec_", 0) != 0) {
        r.Fail("STRIPE_WEBHOOK_SECRET", c.stripe_webhook_secret, "must start with whsec_");
    }
    r.Url("STRIPE_API_BASE", c.stripe_api_base, false);
    r.Int("STRIPE_TIMEOUT", c.stripe_timeout_seconds, 1, 60);
    r.Bool("REQUIRE_PAYMENT_FOR_GENERATION", c.require_payment);
    if (c.require_payment && c.stripe_secret_key.empty()) {
        r.Fail("REQUIRE_PAYMENT_FOR_GENERATION", "true",
               "must be false unless STRIPE_SECRET_KEY is set (payments are verified with Stripe)");
    }
    r.Int("PRICE_CENTS", c.price_cents, 50, 99999999);
    if (auto* v = r.Raw("PRICE_CURRENCY")) {
        std::string cur = core::ToLower(core::Trim(*v));
        if (cur.size() != 3 || !std::all_of(cur.begin(), cur.end(),
                                            [](unsigned char ch) { return std::isalpha(ch); })) {
            r.Fail("PRICE_CURRENCY", *v, "must be a three-letter ISO currency code such as usd");
        }
        c.price_currency = cur;
    }

    r.Int("PAID_RETENTION_DAYS", c.paid_retention_days, 1, 36500);

    if (auto* v = r.Raw("STRIPE_PAYMENT_METHOD_TYPES")) {
        // Stripe's type names: lowercase words joined by underscores (card, us_bank_account).
        const std::string allowed =
            "must be a comma-separated list of Stripe payment method types such as card or "
            "card,link (lowercase letters, digits and _, each once)";
        std::vector<std::string> types;
        for (const std::string& type : SplitList(*v)) {
            const bool ok = !type.empty() && type.size() <= 40 &&
                            std::islower(static_cast<unsigned char>(type[0])) &&
                            std::all_of(type.begin(), type.end(), [](unsigned char ch) {
                                return std::islower(ch) || std::isdigit(ch) || ch == '_';
                            });
            if (!ok || std::find(types.begin(), types.end(), type) != types.end()) {
                r.Fail("STRIPE_PAYMENT_METHOD_TYPES", *v, allowed);
            }
            types.push_back(type);
        }
        c.stripe_payment_method_types = types;
    }

    if (auto* v = r.Raw("PRICE_TIERS"); v && !core::Trim(*v).empty()) {
        const std::string allowed =
            "must be seconds:cents pairs with ascending seconds, e.g. 120:200,240:350,285:500; "
            "cents from 50 to 99999999; the last seconds at least MAX_AUDIO_LENGTH (" +
            std::to_string(c.max_audio_length) + ")";
        std::vector<Config::PriceTier> tiers;
        for (const std::string& item : SplitList(*v)) {
            const auto colon = item.find(':');
            if (colon == std::string::npos) r.Fail("PRICE_TIERS", *v, allowed);
            const auto seconds = ParseWhole(core::Trim(item.substr(0, colon)), 1, 285);
            const auto cents = ParseWhole(core::Trim(item.substr(colon + 1)), 50, 99999999);
            if (!seconds || !cents || (!tiers.empty() && *seconds <= tiers.back().max_seconds)) {
                r.Fail("PRICE_TIERS", *v, allowed);
            }
            tiers.push_back({static_cast<int>(*seconds), *cents});
        }
        if (tiers.back().max_seconds < c.max_audio_length) r.Fail("PRICE_TIERS", *v, allowed);
        c.price_tiers = tiers;
    }
}

void LoadS3(Reader& r, Config& c) {
    r.Bool("S3_ENABLED", c.s3_enabled);
    r.String("S3_BUCKET", c.s3_bucket);
    c.s3_bucket = std::string(core::Trim(c.s3_bucket));
    if (!c.s3_bucket.empty()) {
        bool ok = c.s3_bucket.size() >= 3 && c.s3_bucket.size() <= 63 &&
                  std::all_of(c.s3_bucket.begin(), c.s3_bucket.end(), [](unsigned char ch) {
                      return std::islower(ch) || std::isdigit(ch) || ch == '-' || ch == '.';
                  });
        if (!ok) r.Fail("S3_BUCKET", c.s3_bucket, "must be a bucket name: 3-63 of a-z 0-9 . -");
    }
    if (auto* v = r.Raw("S3_REGION")) {
        std::string region(core::Trim(*v));
        bool ok =
            !region.empty() && std::all_of(region.begin(), region.end(), [](unsigned char ch) {
                return std::islower(ch) || std::isdigit(ch) || ch == '-';
            });
        if (!ok) r.Fail("S3_REGION", *v, "must be a region name such as us-east-1");
        c.s3_region = region;
    }
    r.Token("S3_ACCESS_KEY", c.s3_access_key);
    r.Token("S3_SECRET_KEY", c.s3_secret_key, Shown::kHidden);
    r.Token("S3_SESSION_TOKEN", c.s3_session_token, Shown::kHidden);
    if (auto* v = r.Raw("S3_PREFIX")) {
        std::string prefix = *v;
        if (!prefix.empty() && (prefix.front() == '/' || prefix.find("..") != std::string::npos ||
                                prefix.find('\0') != std::string::npos)) {
            r.Fail("S3_PREFIX", *v, "must be a key prefix such as songs/ (no leading /, no ..)");
        }
        c.s3_prefix = prefix;
    }
    r.Url("S3_ENDPOINT", c.s3_endpoint, true);
    r.Bool("S3_FORCE_PATH_STYLE", c.s3_force_path_style);
    r.Int("S3_PRESIGN_EXPIRES", c.s3_presign_expires, 1, 604800);
    r.Int("S3_RECONCILE_SECONDS", c.s3_reconcile_seconds, 1, 86400);
    if (c.s3_enabled) {
        if (c.s3_bucket.empty()) r.Fail("S3_BUCKET", "", "must be set when S3_ENABLED=true");
        if (c.s3_access_key.empty())
            r.Fail("S3_ACCESS_KEY", "", "must be set when S3_ENABLED=true");
        if (c.s3_secret_key.empty())
            r.Fail("S3_SECRET_KEY", "", "must be set when S3_ENABLED=true");
    }
    // The orphan sweep deletes objects under S3_PREFIX that no job owns: an empty prefix is
    // the whole bucket, and "songs" would also match "songs-backup/...".
    if (c.s3_enabled && (c.s3_prefix.empty() || c.s3_prefix.back() != '/')) {
        r.Fail("S3_PREFIX", c.s3_prefix,
               "must be a key prefix ending in / such as songs/ when S3_ENABLED=true (the orphan "
               "sweep deletes unowned objects under it, so it must not be the whole bucket or "
               "match other folders)");
    }
}

void LoadRetention(Reader& r, Config& c) {
    r.Int("FILE_RETENTION_DAYS", c.file_retention_days, 1, 36500);
    r.Bool("CLEANUP_ENABLED", c.cleanup_enabled);
    r.Int("CLEANUP_INTERVAL_HOURS", c.cleanup_interval_hours, 1, 8760);
}

/// The page at / (web/) and where it loads Stripe.js from.
void LoadWeb(Reader& r, Config& c) {
    r.Bool("WEB_ENABLED", c.web_enabled);
    std::string checked = c.stripe_js_url;
    r.Url("STRIPE_JS_URL", checked, false);
    if (auto* v = r.Raw("STRIPE_JS_URL")) {
        c.stripe_js_url = std::string(core::Trim(*v));
        // It goes into the page's Content-Security-Policy as its origin.
        if (c.stripe_js_url.find_first_of(";,'\"") != std::string::npos) {
            r.Fail("STRIPE_JS_URL", *v, "must be a plain URL such as https://js.stripe.com/v3/");
        }
    }
}

/// Client webhooks: the signing secret and the delivery settings.
void LoadWebhooks(Reader& r, Config& c) {
    r.Token("WEBHOOK_SECRET", c.webhook_secret, Shown::kHidden);
    if (!c.webhook_secret.empty()) {
        const auto key = c.webhook_secret.rfind("whsec_", 0) == 0
                             ? core::Base64Decode(std::string_view(c.webhook_secret).substr(6))
                             : std::nullopt;
        if (!key || key->size() < 24) {
            r.Fail("WEBHOOK_SECRET", c.webhook_secret,
                   "must be whsec_ followed by the base64 of a key of at least 24 bytes (e.g. "
                   "whsec_$(openssl rand -base64 32))");
        }
    }
    r.Bool("WEBHOOK_ALLOW_PRIVATE", c.webhook_allow_private);
    r.Int("WEBHOOK_TIMEOUT_SECONDS", c.webhook_timeout_seconds, 1, 60);
    r.Int("WEBHOOK_RETRY_BASE_MS", c.webhook_retry_base_ms, 1, 600000);
    r.Int("WEBHOOK_CONCURRENCY", c.webhook_concurrency, 1, 256);
}

/// Every section, in the order their errors are reported.
Config LoadAll(Reader& r) {
    Config c;
    LoadHttp(r, c);
    LoadLogging(r, c);
    LoadGeneration(r, c);
    LoadDiffRhythm(r, c);
    LoadTone(r, c);
    CheckEngineHasItsHome(r, c);
    LoadStorage(r, c);
    LoadPayment(r, c);
    LoadS3(r, c);
    LoadRetention(r, c);
    LoadWeb(r, c);
    LoadWebhooks(r, c);
    return c;
}

/// The loaders run once over an empty environment (every default is valid) and the reader's
/// record of names is the list of known variables.
const Reader& Catalogue() {
    static const Reader catalogue = [] {
        static const Environment kEmpty;
        Reader r(kEmpty);
        LoadAll(r);
        return r;
    }();
    return catalogue;
}

}  // namespace

const std::vector<std::string>& ConfigVariableNames() { return Catalogue().Names(); }

bool IsSecretVariable(const std::string& name) { return Catalogue().Hidden().count(name) > 0; }

std::filesystem::path Config::SqlitePath() const {
    if (database_url.rfind("sqlite:", 0) == 0) return database_url.substr(7);
    return {};
}

int64_t Config::PriceCentsFor(int audio_length) const {
    for (const PriceTier& tier : price_tiers) {
        if (audio_length <= tier.max_seconds) return tier.cents;
    }
    // Past the last tier (a job from before MAX_AUDIO_LENGTH was lowered): the dearest price.
    return price_tiers.empty() ? price_cents : price_tiers.back().cents;
}

bool Config::IsPostgres() const {
    return database_url.rfind("postgresql://", 0) == 0 || database_url.rfind("postgres://", 0) == 0;
}

Environment ReadEnvFile(const std::filesystem::path& path) {
    std::ifstream in(path);
    if (!in) throw ConfigError("cannot read env file " + path.string());
    Environment env;
    std::string line;
    int number = 0;
    while (std::getline(in, line)) {
        ++number;
        std::string s(core::Trim(line));
        if (s.empty() || s.front() == '#') continue;
        if (s.rfind("export ", 0) == 0) s = std::string(core::Trim(s.substr(7)));
        auto eq = s.find('=');
        auto where = path.string() + ":" + std::to_string(number);
        if (eq == std::string::npos) throw ConfigError(where + ": expected KEY=VALUE");
        std::string key(core::Trim(s.substr(0, eq)));
        std::string value(core::Trim(s.substr(eq + 1)));
        bool key_ok = !key.empty() && !std::isdigit(static_cast<unsigned char>(key[0])) &&
                      std::all_of(key.begin(), key.end(),
                                  [](unsigned char c) { return std::isalnum(c) || c == '_'; });
        if (!key_ok) throw ConfigError(where + ": '" + Printable(key) + "' is not a variable name");
        if (!value.empty() && (value.front() == '"' || value.front() == '\'')) {
            char quote = value.front();
            auto close = value.find(quote, 1);
            if (close == std::string::npos) throw ConfigError(where + ": unterminated quote");
            std::string rest(core::Trim(value.substr(close + 1)));
            if (!rest.empty() && rest.front() != '#') {
                throw ConfigError(where + ": text after the closing quote");
            }
            value = value.substr(1, close - 1);
        } else {
            // An unquoted value ends at " #", as in shell and python-dotenv.
            auto hash = value.find(" #");
            if (hash != std::string::npos) value = std::string(core::Trim(value.substr(0, hash)));
        }
        env[key] = value;
    }
    return env;
}

Environment ReadEnvironment(const std::optional<std::filesystem::path>& env_file,
                            bool env_file_required) {
    Environment env;
    if (env_file) {
        std::error_code ec;
        if (std::filesystem::exists(*env_file, ec)) {
            env = ReadEnvFile(*env_file);
        } else if (env_file_required) {
            throw ConfigError("env file " + env_file->string() + " does not exist");
        }
    }
    for (char** e = environ; e && *e; ++e) {
        std::string_view kv(*e);
        auto eq = kv.find('=');
        if (eq == std::string_view::npos) continue;
        env[std::string(kv.substr(0, eq))] = std::string(kv.substr(eq + 1));
    }
    return env;
}

// Networks for TRUSTED_PROXIES: IPv4 addresses live in the IPv4-mapped IPv6 range.

std::optional<IpNetwork> ParseIpNetwork(const std::string& text) {
    std::string s(core::Trim(text));
    std::string addr = s;
    std::optional<int> prefix;
    if (auto slash = s.find('/'); slash != std::string::npos) {
        addr = s.substr(0, slash);
        std::string bits = s.substr(slash + 1);
        int n = -1;
        auto [ptr, ec] = std::from_chars(bits.data(), bits.data() + bits.size(), n);
        if (bits.empty() || ec != std::errc() || ptr != bits.data() + bits.size()) {
            return std::nullopt;
        }
        prefix = n;
    }
    IpNetwork net;
    unsigned char v4[4];
    if (inet_pton(AF_INET, addr.c_str(), v4) == 1) {
        if (prefix && (*prefix < 0 || *prefix > 32)) return std::nullopt;
        net.address[10] = net.address[11] = 0xff;
        std::copy(v4, v4 + 4, net.address.begin() + 12);
        net.prefix = 96 + prefix.value_or(32);
    } else if (inet_pton(AF_INET6, addr.c_str(), net.address.data()) == 1) {
        if (prefix && (*prefix < 0 || *prefix > 128)) return std::nullopt;
        net.prefix = prefix.value_or(128);
    } else {
        return std::nullopt;
    }
    // Host bits are cleared, so 10.1.2.3/8 means 10.0.0.0/8.
    for (int bit = net.prefix; bit < 128; ++bit) {
        net.address[bit / 8] &= static_cast<unsigned char>(~(0x80 >> (bit % 8)));
    }
    return net;
}

bool IpNetwork::Contains(const std::string& ip) const {
    auto host = ParseIpNetwork(ip);
    if (!host || host->prefix != 128 || ip.find('/') != std::string::npos) return false;
    for (int bit = 0; bit < prefix; ++bit) {
        const unsigned char mask = static_cast<unsigned char>(0x80 >> (bit % 8));
        if ((host->address[bit / 8] & mask) != (address[bit / 8] & mask)) return false;
    }
    return true;
}

Config LoadConfig(const Environment& env) {
    Reader r(env);
    return LoadAll(r);
}

}  // namespace songd::core
