#include "core/log.h"

#include <spdlog/sinks/stdout_sinks.h>
#include <spdlog/spdlog.h>

#include <cstdio>
#include <ctime>
#include <regex>

namespace songd::core {
namespace {

bool g_json = false;

/// Escapes quotes, backslashes and control bytes: JSON's \u00XX, or \xHH for text lines.
std::string Escape(std::string_view s, bool json) {
    static const char* kHex = "0123456789abcdef";
    std::string out;
    out.reserve(s.size() + 2);
    for (unsigned char c : s) {
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
                if (c < 0x20 || (!json && c == 0x7f)) {
                    out += json ? "\\u00" : "\\x";
                    out += kHex[c >> 4];
                    out += kHex[c & 15];
                } else {
                    out += static_cast<char>(c);
                }
        }
    }
    return out;
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

std::string RenderLogLine(const std::string& level, const std::string& event,
                          const std::vector<std::pair<std::string, std::string>>& fields,
                          int64_t unix_ms) {
    // The same layout as SetupLogging's patterns: UTC time with milliseconds, then the level.
    const time_t seconds = static_cast<time_t>(unix_ms / 1000);
    struct tm tm {};
    gmtime_r(&seconds, &tm);
    char time_text[96];
    std::snprintf(time_text, sizeof time_text, "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ",
                  tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec,
                  static_cast<int>(unix_ms % 1000));
    const std::string lvl = level == "warning" ? "warn" : level;
    std::string line;
    if (g_json) {
        line = std::string("{\"time\":\"") + time_text + "\",\"level\":\"" + lvl +
               "\",\"event\":\"" + JsonEscape(event) + "\"";
        for (const auto& [k, v] : fields) {
            line += ",\"" + JsonEscape(k) + "\":\"" + JsonEscape(RedactSecrets(v)) + "\"";
        }
        line += "}";
    } else {
        std::string padded = lvl;
        if (padded.size() < 5) padded.resize(5, ' ');
        line = std::string(time_text) + " " + padded + " " + TextLogLine(event, fields);
    }
    return line;
}

std::string RedactSecrets(std::string text) {
    // Fast path: most log values carry no secret-looking prefix at all.
    if (text.find("sk_") == std::string::npos && text.find("rk_") == std::string::npos &&
        text.find("whsec_") == std::string::npos && text.find("_secret_") == std::string::npos) {
        return text;
    }
    static const std::regex kSecret(
        R"((sk|rk)_(live|test)_[A-Za-z0-9]+|whsec_[A-Za-z0-9+/=]+|pi_[A-Za-z0-9]+_secret_[A-Za-z0-9]+)");
    return std::regex_replace(text, kSecret, "[redacted]");
}

}  // namespace songd::core
