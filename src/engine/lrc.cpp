#include "engine/lrc.h"

#include <locale.h>
#include <wctype.h>

#include <algorithm>
#include <cstdio>

#include "core/error.h"
#include "core/text.h"

namespace songd::engine {
namespace {

/// Decodes one UTF-8 code point at `pos`; returns false on malformed input.
bool DecodeUtf8(std::string_view s, size_t& pos, char32_t& cp) {
    auto c = static_cast<unsigned char>(s[pos]);
    int len = c < 0x80 ? 1 : (c >> 5) == 6 ? 2 : (c >> 4) == 14 ? 3 : (c >> 3) == 30 ? 4 : 0;
    if (len == 0 || pos + len > s.size()) return false;
    cp = len == 1 ? c : len == 2 ? (c & 0x1f) : len == 3 ? (c & 0x0f) : (c & 0x07);
    for (int i = 1; i < len; ++i) {
        auto cc = static_cast<unsigned char>(s[pos + i]);
        if ((cc >> 6) != 2) return false;
        cp = (cp << 6) | (cc & 0x3f);
    }
    static constexpr char32_t kMin[] = {0, 0, 0x80, 0x800, 0x10000};
    if (cp < kMin[len] || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff)) return false;
    pos += len;
    return true;
}

locale_t Utf8Locale() {
    static locale_t loc = newlocale(LC_CTYPE_MASK, "C.UTF-8", static_cast<locale_t>(nullptr));
    return loc;
}

[[noreturn]] void Reject(int line, const std::string& msg) {
    std::string text = line > 0 ? "line " + std::to_string(line) + ": " + msg : msg;
    throw core::Error::Invalid({{{"body", "lyrics"}, text}});
}

bool IsDigit(char c) { return c >= '0' && c <= '9'; }

/// Parses `[mm:ss]`, `[mm:ss.x]`, `[mm:ss.xx]`, `[mm:ss.xxx]` at the start of `s`.
/// Returns the tag length, or 0 when `s` does not start with a timestamp.
size_t ParseTimestamp(std::string_view s, int64_t& ms) {
    if (s.size() < 7 || s[0] != '[') return 0;
    size_t i = 1;
    int64_t minutes = 0;
    size_t start = i;
    while (i < s.size() && IsDigit(s[i]) && i - start < 3) minutes = minutes * 10 + (s[i++] - '0');
    if (i - start < 1 || i >= s.size() || s[i] != ':') return 0;
    ++i;
    if (i + 2 > s.size() || !IsDigit(s[i]) || !IsDigit(s[i + 1])) return 0;
    int64_t seconds = (s[i] - '0') * 10 + (s[i + 1] - '0');
    i += 2;
    if (seconds > 59) return 0;
    int64_t fraction_ms = 0;
    if (i < s.size() && s[i] == '.') {
        ++i;
        size_t fstart = i;
        int scale = 100;
        while (i < s.size() && IsDigit(s[i]) && i - fstart < 3) {
            fraction_ms += (s[i++] - '0') * scale;
            scale /= 10;
        }
        if (i == fstart) return 0;
    }
    if (i >= s.size() || s[i] != ']') return 0;
    ms = (minutes * 60 + seconds) * 1000 + fraction_ms;
    return i + 1;
}

/// `[ti:Title]`, `[ar:Artist]`, `[offset:+100]`: a letter tag followed by a colon.
bool IsMetadataTag(std::string_view s) {
    if (s.size() < 3 || s.front() != '[' || s.back() != ']') return false;
    size_t i = 1;
    while (i < s.size() && ((s[i] >= 'a' && s[i] <= 'z') || (s[i] >= 'A' && s[i] <= 'Z'))) ++i;
    return i > 1 && i < s.size() && s[i] == ':';
}

}  // namespace

int64_t Utf8Length(std::string_view text) {
    int64_t n = 0;
    size_t pos = 0;
    char32_t cp;
    while (pos < text.size()) {
        if (!DecodeUtf8(text, pos, cp)) return -1;
        ++n;
    }
    return n;
}

bool HasLetter(std::string_view text) {
    size_t pos = 0;
    char32_t cp;
    while (pos < text.size()) {
        if (!DecodeUtf8(text, pos, cp)) return false;
        if (cp < 0x80) {
            if ((cp | 0x20) >= 'a' && (cp | 0x20) <= 'z') return true;
        } else if (iswalpha_l(static_cast<wint_t>(cp), Utf8Locale())) {
            return true;
        }
    }
    return false;
}

bool NextCodePoint(std::string_view text, size_t& pos, char32_t& cp) {
    return DecodeUtf8(text, pos, cp);
}

bool StartsWithLrcTimestamp(std::string_view line) {
    int64_t ms = 0;
    return ParseTimestamp(line, ms) > 0;
}

bool IsLrcMetadataTag(std::string_view line) { return IsMetadataTag(line); }

std::string FormatLrcTime(int64_t time_ms) {
    char buf[32];
    std::snprintf(
        buf, sizeof buf, "[%02lld:%02lld.%02lld]", static_cast<long long>(time_ms / 60000),
        static_cast<long long>(time_ms / 1000 % 60), static_cast<long long>(time_ms % 1000 / 10));
    return buf;
}

std::vector<LrcLine> ParseLrc(std::string_view lrc, int audio_length_seconds) {
    int64_t total = Utf8Length(lrc);
    if (total < 0) Reject(0, "lyrics are not valid UTF-8");
    if (static_cast<size_t>(total) > kMaxLyricsChars) {
        Reject(0, "lyrics have " + std::to_string(total) + " characters; at most " +
                      std::to_string(kMaxLyricsChars) + " are allowed");
    }
    const int64_t limit_ms = static_cast<int64_t>(audio_length_seconds) * 1000;
    std::vector<LrcLine> lines;
    int number = 0;
    size_t pos = 0;
    while (pos <= lrc.size()) {
        size_t end = lrc.find('\n', pos);
        if (end == std::string_view::npos) end = lrc.size();
        std::string raw(core::Trim(lrc.substr(pos, end - pos)));
        ++number;
        pos = end + 1;
        if (raw.empty()) {
            if (end == lrc.size()) break;
            continue;
        }
        std::vector<int64_t> times;
        std::string_view rest = raw;
        int64_t ms = 0;
        while (size_t n = ParseTimestamp(rest, ms)) {
            times.push_back(ms);
            rest.remove_prefix(n);
        }
        if (times.empty()) {
            if (IsMetadataTag(raw)) continue;
            Reject(number, "expected a timestamp such as [00:12.34] at the start of the line");
        }
        std::string text(core::Trim(rest));
        int64_t chars = Utf8Length(text);
        if (static_cast<size_t>(chars) > kMaxLineChars) {
            Reject(number, "the line has " + std::to_string(chars) + " characters; at most " +
                               std::to_string(kMaxLineChars) + " are allowed");
        }
        if (!HasLetter(text)) Reject(number, "a timed line needs words with at least one letter");
        for (int64_t t : times) {
            if (t >= limit_ms) {
                Reject(number, "timestamp " + FormatLrcTime(t) + " is at or after the end of the " +
                                   std::to_string(audio_length_seconds) + " s song");
            }
            lines.push_back({number, t, text});
            if (lines.size() > kMaxLrcLines) {
                Reject(number, "more than " + std::to_string(kMaxLrcLines) + " timed lines");
            }
        }
        if (end == lrc.size()) break;
    }
    if (lines.empty()) Reject(0, "lyrics need at least one timed line such as [00:10.00]words");
    std::stable_sort(lines.begin(), lines.end(),
                     [](const LrcLine& a, const LrcLine& b) { return a.time_ms < b.time_ms; });
    return lines;
}

}  // namespace songd::engine
