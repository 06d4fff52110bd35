#pragma once
/// @file
/// Wall-clock time as milliseconds since the Unix epoch, and ISO 8601 UTC text.
///
///   int64_t now = core::NowMillis();
///   std::string text = core::FormatIso8601(now);   // "2026-11-26T07:02:35.123Z"

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace songd::core {

int64_t NowMillis();

/// ISO 8601 UTC with milliseconds and `Z`.
std::string FormatIso8601(int64_t millis);

/// Accepts `YYYY-MM-DDTHH:MM:SS[.fff](Z|±HH:MM)` and `YYYY-MM-DD`; nullopt otherwise.
std::optional<int64_t> ParseIso8601(std::string_view text);

/// HTTP-date (RFC 9110 IMF-fixdate), for Last-Modified.
std::string FormatHttpDate(int64_t millis);

constexpr int64_t kMillisPerSecond = 1000;
constexpr int64_t kMillisPerHour = 3600 * kMillisPerSecond;
constexpr int64_t kMillisPerDay = 24 * kMillisPerHour;

}  // namespace songd::core
