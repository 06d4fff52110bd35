#pragma once
/// @file
/// LRC lyrics: one parser and validator shared by the API and every engine.
///
///   auto lines = engine::ParseLrc("[00:10.00]Hello world\n[00:15.5]Again", 95);
///   // lines[0].time_ms == 10000, lines[0].text == "Hello world"
///
/// The limits are what the DiffRhythm model itself cannot handle, so the same rules
/// protect every engine. Violations throw core::Error::Invalid naming the line number.

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace songd::engine {

/// @brief One timed lyric line.
struct LrcLine {
    int source_line = 0;  ///< 1-based line number in the submitted text
    int64_t time_ms = 0;
    std::string text;  ///< trimmed, valid UTF-8, contains at least one letter
};

constexpr size_t kMaxLyricsChars = 20000;
constexpr size_t kMaxLrcLines = 300;
constexpr size_t kMaxLineChars = 300;

/// Parses and validates; lines come back sorted by time (stable for equal times).
std::vector<LrcLine> ParseLrc(std::string_view lrc, int audio_length_seconds);

/// Formats milliseconds as the canonical `[mm:ss.xx]` tag.
std::string FormatLrcTime(int64_t time_ms);

/// Number of Unicode code points, or -1 when `text` is not valid UTF-8.
int64_t Utf8Length(std::string_view text);

/// True when `text` holds at least one letter of any script.
bool HasLetter(std::string_view text);

/// Decodes the UTF-8 code point at `pos` and advances past it; false on malformed input.
bool NextCodePoint(std::string_view text, size_t& pos, char32_t& cp);

/// True when `line` (trimmed) starts with a `[mm:ss.xx]` timestamp the parser accepts.
bool StartsWithLrcTimestamp(std::string_view line);

/// True for an LRC metadata tag line such as `[ti:Title]` or `[offset:+100]`.
bool IsLrcMetadataTag(std::string_view line);

}  // namespace songd::engine
