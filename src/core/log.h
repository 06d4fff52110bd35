#pragma once
/// @file
/// Logging set-up: spdlog with a text or one-JSON-object-per-line format. Log through
/// LogEvent only, so every line is valid JSON in JSON mode and secrets are redacted.
///
///   core::SetupLogging("info", "json");
///   core::LogEvent("info", "request", {{"method", "GET"}, {"status", "200"}});

#include <cstdint>
#include <span>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace songd::core {

/// Configures the default logger (stderr). Values are validated by LoadConfig.
void SetupLogging(const std::string& level, const std::string& format);

/// A structured event: in JSON mode each field is a member, in text mode `key=value`.
/// Values are strings; numeric-looking values stay strings in JSON for a stable schema.
void LogEvent(const std::string& level, const std::string& event,
              const std::vector<std::pair<std::string, std::string>>& fields);

/// Whether lines of `level` are written (LOG_LEVEL).
bool LogEnabled(const std::string& level);

/// One whole line exactly as LogEvent writes it at `unix_ms` (time and level included, no
/// newline), for writers that batch lines themselves (the access log).
std::string RenderLogLine(const std::string& level, const std::string& event,
                          const std::vector<std::pair<std::string, std::string>>& fields,
                          int64_t unix_ms);

/// A field as AppendLogLine takes it: views, no copies.
using LogField = std::pair<std::string_view, std::string_view>;

/// Appends RenderLogLine's line (no newline) to `out`: for the access log, which writes one
/// per request, without a string per field.
void AppendLogLine(std::string& out, std::string_view level, std::string_view event,
                   std::span<const LogField> fields, int64_t unix_ms);

/// One value as a text-mode log line writes it: control bytes, quotes and backslashes escaped
/// (\n, \t, \xHH, \", \\). A request value can never start a line of its own or move the
/// cursor; spaces stay as they are, so existing `key=some words` greps keep working.
std::string TextLogValue(std::string_view value);

/// `event key=value ...` with every part through TextLogValue (values redacted first).
std::string TextLogLine(const std::string& event,
                        const std::vector<std::pair<std::string, std::string>>& fields);

/// Replaces anything that looks like a secret (sk_..., whsec_..., pi_..._secret_...) by a mask.
std::string RedactSecrets(std::string text);

}  // namespace songd::core
