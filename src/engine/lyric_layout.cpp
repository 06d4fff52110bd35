#include "engine/lyric_layout.h"

#include <algorithm>
#include <cctype>
#include <cmath>
#include <cstdio>
#include <optional>

#include "core/error.h"
#include "core/text.h"
#include "engine/engine.h"
#include "engine/synth/style.h"

namespace songd::engine {
namespace {

[[noreturn]] void Reject(int line, const std::string& msg) {
    std::string text = line > 0 ? "line " + std::to_string(line) + ": " + msg : msg;
    throw core::Error::Invalid({{{"body", "lyrics"}, text}});
}

/// @brief What a section tag asks of the layout.
enum class TagKind {
    kSung,          ///< [Verse], [Chorus]: lines follow; a stanza break before them
    kGapIfEmpty,    ///< [Intro], [Bridge], [Outro]: instrumental when no line follows
    kInstrumental,  ///< [Instrumental], [Solo]: always an instrumental section
};

struct KnownTag {
    const char* name;
    TagKind kind;
};

constexpr KnownTag kTags[] = {
    {"verse", TagKind::kSung},
    {"chorus", TagKind::kSung},
    {"pre-chorus", TagKind::kSung},
    {"prechorus", TagKind::kSung},
    {"pre chorus", TagKind::kSung},
    {"post-chorus", TagKind::kSung},
    {"hook", TagKind::kSung},
    {"refrain", TagKind::kSung},
    {"intro", TagKind::kGapIfEmpty},
    {"bridge", TagKind::kGapIfEmpty},
    {"outro", TagKind::kGapIfEmpty},
    {"end", TagKind::kGapIfEmpty},
    {"instrumental", TagKind::kInstrumental},
    {"interlude", TagKind::kInstrumental},
    {"break", TagKind::kInstrumental},
    {"solo", TagKind::kInstrumental},
};

constexpr const char* kTagList =
    "[Verse], [Chorus], [Pre-Chorus], [Hook], [Bridge], [Intro], [Outro], [Instrumental], "
    "[Interlude], [Break], [Solo] (a number such as [Verse 2] is allowed)";

/// The tag at the start of `line` ("[Verse 2]", "[chorus]", "[Guitar Solo]"), with the length
/// of the bracket; nullopt when the line does not start with a bracket.
struct TagMatch {
    std::optional<TagKind> kind;  ///< empty: a bracket that is not a known tag
    size_t length = 0;
    std::string name;  ///< as written, inside the brackets
};

std::optional<TagMatch> MatchTag(std::string_view line) {
    if (line.empty() || line.front() != '[') return std::nullopt;
    const size_t close = line.find(']');
    if (close == std::string_view::npos) return std::nullopt;
    TagMatch match;
    match.length = close + 1;
    match.name = std::string(line.substr(1, close - 1));
    // "Verse 2: Anna" → "verse"; "Guitar Solo" → "guitar solo".
    std::string name = core::ToLower(std::string(core::Trim(match.name)));
    if (auto colon = name.find(':'); colon != std::string::npos) name.resize(colon);
    while (!name.empty() && (std::isdigit(static_cast<unsigned char>(name.back())) ||
                             name.back() == ' ' || name.back() == '#')) {
        name.pop_back();
    }
    for (const auto& tag : kTags) {
        if (name == tag.name) match.kind = tag.kind;
    }
    if (!match.kind && name.size() > 5 && name.ends_with(" solo")) {
        match.kind = TagKind::kInstrumental;
    }
    return match;
}

/// @brief One meaningful line of plain lyrics.
struct Item {
    enum class Type { kLine, kStanzaBreak, kTag } type;
    int source_line = 0;
    std::string text;  ///< kLine
    TagKind tag = TagKind::kSung;
};

/// Splits plain lyrics into lines, stanza breaks and tags; validates every line.
std::vector<Item> ParsePlain(std::string_view text) {
    const int64_t total = Utf8Length(text);
    if (total < 0) Reject(0, "lyrics are not valid UTF-8");
    if (static_cast<size_t>(total) > kMaxLyricsChars) {
        Reject(0, "lyrics have " + std::to_string(total) + " characters; at most " +
                      std::to_string(kMaxLyricsChars) + " are allowed");
    }
    std::vector<Item> items;
    size_t sung = 0;
    int number = 0;
    size_t pos = 0;
    while (pos <= text.size()) {
        size_t end = text.find('\n', pos);
        if (end == std::string_view::npos) end = text.size();
        std::string_view raw = core::Trim(text.substr(pos, end - pos));
        ++number;
        pos = end + 1;
        if (raw.empty()) {
            items.push_back({Item::Type::kStanzaBreak, number, {}, {}});
        } else if (auto tag = MatchTag(raw); tag && tag->kind) {
            items.push_back({Item::Type::kTag, number, {}, *tag->kind});
            raw = core::Trim(raw.substr(tag->length));  // "[Chorus] words" sings the words
        } else if (tag && IsLrcMetadataTag(raw)) {
            raw = {};  // [ti:Title], [ar:Artist]: metadata, as in LRC
        } else if (tag) {
            Reject(number, "unknown section tag [" + tag->name + "]; use " + kTagList);
        }
        if (!raw.empty()) {
            const int64_t chars = Utf8Length(raw);
            if (static_cast<size_t>(chars) > kMaxLineChars) {
                Reject(number, "the line has " + std::to_string(chars) + " characters; at most " +
                                   std::to_string(kMaxLineChars) + " are allowed");
            }
            if (!HasLetter(raw))
                Reject(number, "a lyric line needs words with at least one letter");
            if (++sung > kMaxLrcLines) {
                Reject(number, "more than " + std::to_string(kMaxLrcLines) + " lyric lines");
            }
            items.push_back({Item::Type::kLine, number, std::string(raw), {}});
        }
        if (end == text.size()) break;
    }
    return items;
}

/// @brief How generous a layout is.
struct Density {
    bool compact = false;
    int stanza_break_bars = 1;
    int instrumental_bars = 4;
    double min_intro_seconds = 4.0;
};

int LineBars(int syllables, double bar_seconds, bool compact) {
    const double n = std::max(1, syllables);
    double bars = 0;
    if (!compact) {
        // As the synth sings: mostly eighth notes, some quarters, a long last note.
        bars = (1.25 * (n - 1) + 4) / 8;
    } else {
        // Sixteenths, but never faster than six syllables a second.
        bars = std::max((0.5 * n + 1) / 8, n / 6.0 / bar_seconds);
    }
    return std::max(1, static_cast<int>(std::ceil(bars - 1e-9)));
}

/// @brief A layout attempt: where each line starts, in bars.
struct Placement {
    std::vector<int> start_bar;
    std::vector<int> bars;
    std::vector<const Item*> lines;
};

Placement Place(const std::vector<Item>& items, double bar_seconds, const Density& d) {
    Placement p;
    const int intro_bars = std::max(
        d.compact ? 1 : 2, static_cast<int>(std::ceil(d.min_intro_seconds / bar_seconds - 1e-9)));
    int cursor = 0;
    int gap = 0;
    bool has_pending = false;  // a tag whose lines have not come yet
    TagKind pending = TagKind::kSung;
    auto close_pending_as_empty = [&] {
        if (!has_pending) return;
        gap += pending == TagKind::kSung ? 0 : d.instrumental_bars;
        gap = std::max(gap, d.stanza_break_bars);
        has_pending = false;
    };
    for (const Item& item : items) {
        switch (item.type) {
            case Item::Type::kStanzaBreak:
                if (!p.lines.empty()) gap = std::max(gap, d.stanza_break_bars);
                break;
            case Item::Type::kTag:
                close_pending_as_empty();
                has_pending = true;
                pending = item.tag;
                break;
            case Item::Type::kLine: {
                if (has_pending) {
                    if (pending == TagKind::kInstrumental) gap += d.instrumental_bars;
                    if (!p.lines.empty()) gap = std::max(gap, d.stanza_break_bars);
                    has_pending = false;
                }
                const int start = p.lines.empty() ? std::max(intro_bars, gap) : cursor + gap;
                const int bars = LineBars(CountSyllables(item.text), bar_seconds, d.compact);
                p.start_bar.push_back(start);
                p.bars.push_back(bars);
                p.lines.push_back(&item);
                cursor = start + bars;
                gap = 0;
                break;
            }
        }
    }
    // Tags and breaks after the last line need no room: the rest of the song is the outro.
    return p;
}

/// Lines of `p` (in order) that end by `limit_seconds`.
size_t LinesThatFit(const Placement& p, double bar_seconds, double limit_seconds) {
    size_t n = 0;
    while (n < p.lines.size() &&
           (p.start_bar[n] + p.bars[n]) * bar_seconds <= limit_seconds + 1e-9) {
        ++n;
    }
    return n;
}

bool IsSyllableCharacter(char32_t cp) {
    return (cp >= 0x3400 && cp <= 0x4dbf) || (cp >= 0x4e00 && cp <= 0x9fff) ||  // Han
           (cp >= 0xf900 && cp <= 0xfaff) || (cp >= 0x20000 && cp <= 0x2fa1f) ||
           (cp >= 0x3041 && cp <= 0x309f && cp != 0x3063) ||  // hiragana (not small tsu)
           (cp >= 0x30a1 && cp <= 0x30fa && cp != 0x30c3) ||  // katakana
           (cp >= 0xac00 && cp <= 0xd7a3);                    // Hangul syllables
}

bool IsVowelLetter(char32_t cp) {
    static constexpr std::u32string_view kVowels =
        U"aeiouyAEIOUYàáâãäåæèéêëìíîïòóôõöøùúûüýÿœÀÁÂÃÄÅÆÈÉÊËÌÍÎÏÒÓÔÕÖØÙÚÛÜÝŒ"
        U"аеёиоуыэюяАЕЁИОУЫЭЮЯαεηιουωάέήίόύώΑΕΗΙΟΥΩ";
    return kVowels.find(cp) != std::u32string_view::npos;
}

/// @brief Syllables of one word of an alphabetic script, by vowel groups.
class WordCounter {
  public:
    void Add(char32_t cp) {
        const bool vowel = IsVowelLetter(cp) && !(letters_.empty() && (cp == 'y' || cp == 'Y'));
        if (vowel && !in_vowel_) ++groups_;
        in_vowel_ = vowel;
        letters_.push_back(cp < 0x80 ? static_cast<char32_t>(std::tolower(static_cast<int>(cp)))
                                     : cp);
    }
    /// Ends the word; returns its syllables.
    int Finish() {
        if (letters_.empty()) return 0;
        int n = groups_;
        const size_t len = letters_.size();
        auto at = [&](size_t from_end) {
            return len > from_end ? letters_[len - 1 - from_end] : 0;
        };
        auto consonant = [&](char32_t c) { return c != 0 && !IsVowelLetter(c); };
        // English silent endings: "love", "loved", "lives" (but "little", "wanted", "kisses").
        if (n > 1 && at(0) == U'e' && consonant(at(1)) && !(at(1) == U'l' && consonant(at(2)))) {
            --n;
        } else if (n > 1 && at(0) == U'd' && at(1) == U'e' && consonant(at(2)) && at(2) != U't' &&
                   at(2) != U'd') {
            --n;
        } else if (n > 1 && at(0) == U's' && at(1) == U'e' && consonant(at(2)) &&
                   std::u32string_view(U"sxzcgh").find(at(2)) == std::u32string_view::npos) {
            --n;
        }
        if (n == 0) n = std::max(1, static_cast<int>((len + 2) / 3));  // no vowels we know
        letters_.clear();
        groups_ = 0;
        in_vowel_ = false;
        return n;
    }

  private:
    std::u32string letters_;
    int groups_ = 0;
    bool in_vowel_ = false;
};

std::string FormatSeconds(double s) {
    char buf[32];
    std::snprintf(buf, sizeof buf, "%g", std::round(s * 10) / 10);
    return buf;
}

}  // namespace

int CountSyllables(std::string_view line) {
    int count = 0;
    WordCounter word;
    size_t pos = 0;
    char32_t cp = 0;
    while (pos < line.size()) {
        const size_t start = pos;
        if (!NextCodePoint(line, pos, cp)) {
            pos = start + 1;
            continue;
        }
        if (IsSyllableCharacter(cp)) {
            count += word.Finish() + 1;
            continue;
        }
        if (cp >= '0' && cp <= '9') {
            count += word.Finish() + 1;  // "1999": one a digit is near enough
            continue;
        }
        if (cp == '\'' || cp == 0x2019) continue;  // "don't", "we’re": one word
        if (HasLetter(line.substr(start, pos - start))) {
            word.Add(cp);
        } else {
            count += word.Finish();
        }
    }
    count += word.Finish();
    return count == 0 && HasLetter(line) ? 1 : count;
}

LyricsKind ClassifyLyrics(std::string_view lyrics) {
    int first_stamped = 0, first_plain = 0;
    int number = 0;
    size_t pos = 0;
    while (pos <= lyrics.size()) {
        size_t end = lyrics.find('\n', pos);
        if (end == std::string_view::npos) end = lyrics.size();
        const std::string_view raw = core::Trim(lyrics.substr(pos, end - pos));
        ++number;
        pos = end + 1;
        if (!raw.empty()) {
            if (StartsWithLrcTimestamp(raw)) {
                if (first_stamped == 0) first_stamped = number;
            } else if (!IsLrcMetadataTag(raw)) {
                // A tag alone is structure, not a lyric line; "[Chorus] words" is a line.
                auto tag = MatchTag(raw);
                const bool bare_tag =
                    tag && tag->kind && core::Trim(raw.substr(tag->length)).empty();
                if (!bare_tag && first_plain == 0) first_plain = number;
            }
        }
        if (end == lyrics.size()) break;
    }
    if (first_stamped > 0 && first_plain > 0) {
        // Named on the first untimed line, so a client can point at it (the page does).
        Reject(first_plain,
               "the lyrics mix timed lines (line " + std::to_string(first_stamped) +
                   " starts with a timestamp such as [00:12.34]) and untimed lines (line " +
                   std::to_string(first_plain) +
                   "); time every line, or none and songd times them");
    }
    if (first_stamped > 0) return LyricsKind::kLrc;
    if (first_plain > 0) return LyricsKind::kPlain;
    return LyricsKind::kEmpty;
}

LyricLayout LayoutLyrics(std::string_view lyrics, double bpm, int audio_length_seconds) {
    if (!(bpm > 0)) throw core::Error(core::ErrorCode::kInternal, "layout tempo must be > 0");
    const std::vector<Item> items = ParsePlain(lyrics);
    LyricLayout layout;
    layout.bpm = bpm;
    layout.bar_seconds = 4 * 60.0 / bpm;
    const double bar = layout.bar_seconds;
    const double song_end =
        std::min<double>(audio_length_seconds,
                         static_cast<double>(TargetFrames(audio_length_seconds)) / kSampleRate);
    const double limit = song_end - std::max(4.0, bar);

    Placement placement = Place(items, bar, Density{});
    if (placement.lines.empty()) Reject(0, "lyrics need at least one line with words");
    if (LinesThatFit(placement, bar, limit) < placement.lines.size()) {
        layout.compact = true;
        placement = Place(items, bar, Density{true, 0, 2, 2.0});
        const size_t fit = LinesThatFit(placement, bar, limit);
        if (fit < placement.lines.size()) {
            Reject(0, "the lyrics have " + std::to_string(placement.lines.size()) +
                          " lines; at most " + std::to_string(fit) + " fit in a " +
                          std::to_string(audio_length_seconds) + " s song at " +
                          FormatSeconds(bpm) +
                          " BPM (each line gets whole 4/4 bars by its syllables, and the song "
                          "ends with " +
                          FormatSeconds(song_end - limit) +
                          " s of outro): shorten the lyrics or ask for a longer audio_length");
        }
    }
    for (size_t i = 0; i < placement.lines.size(); ++i) {
        // Stamps are in hundredths: the nearest one to the bar line (LRC's own precision).
        const double t = placement.start_bar[i] * bar;
        const int64_t ms = std::llround(t * 100) * 10;
        layout.lines.push_back({placement.lines[i]->source_line, ms, placement.lines[i]->text});
        layout.line_bars.push_back(placement.bars[i]);
        layout.lrc += FormatLrcTime(ms) + placement.lines[i]->text + "\n";
    }
    // The layout's own promise, checked by the one validator every engine trusts.
    ParseLrc(layout.lrc, audio_length_seconds);
    return layout;
}

double SongTempo(std::string_view style_prompt, uint64_t seed) {
    return synth::ParseStyle(style_prompt, seed).bpm;
}

ResolvedLyrics ResolveLyrics(std::string_view lyrics, bool instrumental, double bpm,
                             int audio_length_seconds) {
    ResolvedLyrics out;
    if (instrumental) {
        out.instrumental = true;
        return out;
    }
    switch (ClassifyLyrics(lyrics)) {
        case LyricsKind::kEmpty:
            out.instrumental = true;
            return out;
        case LyricsKind::kLrc:
            ParseLrc(lyrics, audio_length_seconds);
            out.lrc = std::string(lyrics);
            return out;
        case LyricsKind::kPlain: {
            LyricLayout layout = LayoutLyrics(lyrics, bpm, audio_length_seconds);
            out.lrc = std::move(layout.lrc);
            out.laid_out = true;
            out.bpm = bpm;
            return out;
        }
    }
    return out;
}

ResolvedLyrics ResolveSongLyrics(std::string_view lyrics, bool instrumental,
                                 std::string_view style_prompt, uint64_t seed,
                                 int audio_length_seconds) {
    const bool plain = !instrumental && ClassifyLyrics(lyrics) == LyricsKind::kPlain;
    const double bpm = plain ? SongTempo(style_prompt, seed) : 0;
    return ResolveLyrics(lyrics, instrumental, bpm, audio_length_seconds);
}

}  // namespace songd::engine
