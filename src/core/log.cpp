#include "core/log.h"

#include <spdlog/sinks/stdout_sinks.h>
#include <spdlog/spdlog.h>

#include <cstdio>
#include <ctime>
#include <regex>

namespace songd::core {
namespace {

bool g_json = false;

/// Appends `s` with quotes, backslashes and control bytes escaped: JSON's \u00XX, or \xHH for
/// text lines. Runs of plain bytes are copied at once.
void AppendEscaped(std::string& out, std::string_view s, bool json) {
    static const char* kHex = "0123456789abcdef";
    auto plain = [json](unsigned char c) {
        return c >= 0x20 && c != '"' && c != '\\' && (json || c != 0x7f);
    };
    size_t i = 0;
    while (i < s.size()) {
        size_t run = i;
        while (run < s.size() && plain(static_cast<unsigned char>(s[run]))) ++run;
        out.append(s.data() + i, run - i);
        if (run == s.size()) break;
        const auto c = static_cast<unsigned char>(s[run]);
        switch (c) {
            case '"':
                out += "\\\"";
                break;
            case '\\':
                out += "\\\\";
                break;
            case '\n':
                out += "\\n";
                break;
            case '\r':
                out += "\\r";
                break;
            case '\t':
                out += "\\t";
                break;
            default:
                out += json ? "\\u00" : "\\x";
                out += kHex[c >> 4];
                out += kHex[c & 15];
        }
        i = run + 1;
    }
}

std::string Escape(std::string_view s, bool json) {
    std::string out;
    out.reserve(s.size() + 2);
    AppendEscaped(out, s, json);
    return out;
}

bool MayHoldSecret(std::string_view text) {
    // Every pattern has an underscore: most values are cleared by one scan for it.
    if (text.find('_') == std::string_view::npos) return false;
    return text.find("sk_") != std::string_view::npos ||
           text.find("rk_") != std::string_view::npos ||
           text.find("whsec_") != std::string_view::npos ||
           text.find("_secret_") != std::string_view::npos;
}

/// A value as every log line writes it: redacted, then escaped.
void AppendValue(std::string& out, std::string_view value, bool json) {
    if (MayHoldSecret(value)) {
        AppendEscaped(out, RedactSecrets(std::string(value)), json);
    } else {
        AppendEscaped(out, value, json);
    }
}

std::string JsonEscape(const std::string& s) { return Escape(s, true); }

}  // namespace

std::string TextLogValue(std::string_view value) { return Escape(value, false); }

std::string TextLogLine(const std::string& event,
                        const std::vector<std::pair<std::string, std::string>>& fields) {
    std::string line = TextLogValue(event);
    for (const auto& [k, v] : fields) {
        line += " " + TextLogValue(k) + "=" + TextLogValue(RedactSecrets(v));
    }
    return line;
}

void SetupLogging(const std::string& level, const std::string& format) {
    auto logger = spdlog::stderr_logger_mt("songd");
    spdlog::set_default_logger(logger);
    g_json = format == "json";
    if (g_json) {
        logger->set_pattern(R"({"time":"%Y-%m-%dT%H:%M:%S.%eZ","level":"%l",%v})",
                            spdlog::pattern_time_type::utc);
    } else {
        logger->set_pattern("%Y-%m-%dT%H:%M:%S.%eZ %-5l %v", spdlog::pattern_time_type::utc);
    }
    logger->set_level(spdlog::level::from_str(level == "warning" ? "warn" : level));
    logger->flush_on(spdlog::level::info);
}

void LogEvent(const std::string& level, const std::string& event,
              const std::vector<std::pair<std::string, std::string>>& fields) {
    auto lvl = spdlog::level::from_str(level == "warning" ? "warn" : level);
    auto logger = spdlog::default_logger_raw();
    if (!logger->should_log(lvl)) return;
    std::string line;
    if (g_json) {
        line = "\"event\":\"" + JsonEscape(event) + "\"";
        for (const auto& [k, v] : fields) {
            line += ",\"" + JsonEscape(k) + "\":\"" + JsonEscape(RedactSecrets(v)) + "\"";
        }
    } else {
        line = TextLogLine(event, fields);
    }
    logger->log(lvl, "{}", line);
}

bool LogEnabled(const std::string& level) {
    return spdlog::default_logger_raw()->should_log(
        spdlog::level::from_str(level == "warning" ? "warn" : level));
}

void AppendLogLine(std::string& out, std::string_view level, std::string_view event,
                   std::span<const LogField> fields, int64_t unix_ms) {
    // The same layout as SetupLogging's patterns: UTC time with milliseconds, then the level.
    // The date and time of day change once a second: formatted once per second per thread.
    thread_local int64_t cached_second = -1;
    thread_local char cached_text[80];
    const int64_t second = unix_ms / 1000;
    if (second != cached_second) {
        const auto seconds = static_cast<time_t>(second);
        struct tm tm {};
        gmtime_r(&seconds, &tm);
        std::snprintf(cached_text, sizeof cached_text, "%04d-%02d-%02dT%02d:%02d:%02d",
                      tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min,
                      tm.tm_sec);
        cached_second = second;
    }
    const int ms = static_cast<int>(unix_ms % 1000);
    const char millis[] = {'.', static_cast<char>('0' + ms / 100),
                           static_cast<char>('0' + ms / 10 % 10), static_cast<char>('0' + ms % 10),
                           'Z'};
    const std::string_view lvl = level == "warning" ? std::string_view("warn") : level;
    if (g_json) {
        out += "{\"time\":\"";
        out += cached_text;
        out.append(millis, sizeof millis);
        out += "\",\"level\":\"";
        out += lvl;
        out += "\",\"event\":\"";
        AppendEscaped(out, event, true);
        out += '"';
        for (const auto& [k, v] : fields) {
            out += ",\"";
            AppendEscaped(out, k, true);
            out += "\":\"";
            AppendValue(out, v, true);
            out += '"';
        }
        out += '}';
    } else {
        out += cached_text;
        out.append(millis, sizeof millis);
        out += ' ';
        out += lvl;
        if (lvl.size() < 5) out.append(5 - lvl.size(), ' ');
        out += ' ';
        AppendEscaped(out, event, false);
        for (const auto& [k, v] : fields) {
            out += ' ';
            AppendEscaped(out, k, false);
            out += '=';
            AppendValue(out, v, false);
        }
    }
}

std::string RenderLogLine(const std::string& level, const std::string& event,
                          const std::vector<std::pair<std::string, std::string>>& fields,
                          int64_t unix_ms) {
    std::vector<LogField> views(fields.begin(), fields.end());
    std::string line;
    AppendLogLine(line, level, event, views, unix_ms);
    return line;
}

std::string RedactSecrets(std::string text) {
    // Fast path: most log values carry no secret-looking prefix at all.
    if (!MayHoldSecret(text)) return text;
    static const std::regex kSecret(
        R"((sk|rk)_(live|test)_[A-Za-z0-9]+|whsec_[A-Za-z0-9+/=]+|pi_[A-Za-z0-9]+_secret_[A-Za-z0-9]+)");
    return std::regex_replace(text, kSecret, "[redacted]");
}

}  // namespace songd::core
