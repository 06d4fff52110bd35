#include "engine/synth/style.h"

#include <algorithm>
#include <cmath>

#include "engine/synth/rng.h"

namespace songd::engine::synth {
namespace {

enum class Instrument {
    kPiano,
    kElectricPiano,
    kGuitar,
    kElectricGuitar,
    kStrings,
    kViolin,
    kCello,
    kSynth,
    kSax,
    kFlute,
    kTrumpet,
    kOrgan,
    kHarp,
    kBass,
    kDrums,
    kErhu,
    kGuzheng
};

enum class Kind {
    kGenre,
    kMajor,
    kMinor,
    kEnergyUp,
    kEnergyDown,
    kSlow,
    kFast,
    kInstrument,
    kFemale,
    kMale
};

struct Keyword {
    const char* word;  ///< lower-case English (space separated tokens) or Chinese
    Kind kind;
    int value = 0;
};

constexpr int G(Genre g) { return static_cast<int>(g); }
constexpr int I(Instrument i) { return static_cast<int>(i); }

// Longer phrases come before their prefixes so "electric piano" is not read as "piano".
const Keyword kKeywords[] = {
    {"electric piano", Kind::kInstrument, I(Instrument::kElectricPiano)},
    {"rhodes", Kind::kInstrument, I(Instrument::kElectricPiano)},
    {"electric guitar", Kind::kInstrument, I(Instrument::kElectricGuitar)},
    {"hip hop", Kind::kGenre, G(Genre::kHipHop)},
    {"hiphop", Kind::kGenre, G(Genre::kHipHop)},
    {"rap", Kind::kGenre, G(Genre::kHipHop)},
    {"trap", Kind::kGenre, G(Genre::kHipHop)},
    {"lo fi", Kind::kGenre, G(Genre::kLofi)},
    {"lofi", Kind::kGenre, G(Genre::kLofi)},
    {"r&b", Kind::kGenre, G(Genre::kRnb)},
    {"rnb", Kind::kGenre, G(Genre::kRnb)},
    {"soul", Kind::kGenre, G(Genre::kRnb)},
    {"pop", Kind::kGenre, G(Genre::kPop)},
    {"rock", Kind::kGenre, G(Genre::kRock)},
    {"punk", Kind::kGenre, G(Genre::kRock)},
    {"jazz", Kind::kGenre, G(Genre::kJazz)},
    {"swing", Kind::kGenre, G(Genre::kJazz)},
    {"blues", Kind::kGenre, G(Genre::kJazz)},
    {"classical", Kind::kGenre, G(Genre::kClassical)},
    {"orchestral", Kind::kGenre, G(Genre::kClassical)},
    {"orchestra", Kind::kGenre, G(Genre::kClassical)},
    {"symphonic", Kind::kGenre, G(Genre::kClassical)},
    {"cinematic", Kind::kGenre, G(Genre::kClassical)},
    {"edm", Kind::kGenre, G(Genre::kElectronic)},
    {"electronic", Kind::kGenre, G(Genre::kElectronic)},
    {"electro", Kind::kGenre, G(Genre::kElectronic)},
    {"dance", Kind::kGenre, G(Genre::kElectronic)},
    {"house", Kind::kGenre, G(Genre::kElectronic)},
    {"techno", Kind::kGenre, G(Genre::kElectronic)},
    {"trance", Kind::kGenre, G(Genre::kElectronic)},
    {"disco", Kind::kGenre, G(Genre::kElectronic)},
    {"folk", Kind::kGenre, G(Genre::kFolk)},
    {"acoustic", Kind::kGenre, G(Genre::kFolk)},
    {"singer songwriter", Kind::kGenre, G(Genre::kFolk)},
    {"ambient", Kind::kGenre, G(Genre::kAmbient)},
    {"chillout", Kind::kGenre, G(Genre::kAmbient)},
    {"new age", Kind::kGenre, G(Genre::kAmbient)},
    {"metal", Kind::kGenre, G(Genre::kMetal)},
    {"heavy", Kind::kGenre, G(Genre::kMetal)},
    {"country", Kind::kGenre, G(Genre::kCountry)},
    {"bluegrass", Kind::kGenre, G(Genre::kCountry)},
    {"ballad", Kind::kGenre, G(Genre::kBallad)},
    {"流行", Kind::kGenre, G(Genre::kPop)},
    {"摇滚", Kind::kGenre, G(Genre::kRock)},
    {"爵士", Kind::kGenre, G(Genre::kJazz)},
    {"蓝调", Kind::kGenre, G(Genre::kJazz)},
    {"古典", Kind::kGenre, G(Genre::kClassical)},
    {"交响", Kind::kGenre, G(Genre::kClassical)},
    {"管弦", Kind::kGenre, G(Genre::kClassical)},
    {"电子", Kind::kGenre, G(Genre::kElectronic)},
    {"电音", Kind::kGenre, G(Genre::kElectronic)},
    {"舞曲", Kind::kGenre, G(Genre::kElectronic)},
    {"说唱", Kind::kGenre, G(Genre::kHipHop)},
    {"嘻哈", Kind::kGenre, G(Genre::kHipHop)},
    {"民谣", Kind::kGenre, G(Genre::kFolk)},
    {"民歌", Kind::kGenre, G(Genre::kFolk)},
    {"原声", Kind::kGenre, G(Genre::kFolk)},
    {"氛围", Kind::kGenre, G(Genre::kAmbient)},
    {"节奏布鲁斯", Kind::kGenre, G(Genre::kRnb)},
    {"灵魂乐", Kind::kGenre, G(Genre::kRnb)},
    {"金属", Kind::kGenre, G(Genre::kMetal)},
    {"低保真", Kind::kGenre, G(Genre::kLofi)},
    {"乡村", Kind::kGenre, G(Genre::kCountry)},
    {"抒情", Kind::kGenre, G(Genre::kBallad)},
    {"情歌", Kind::kGenre, G(Genre::kBallad)},
    // Moods.
    {"happy", Kind::kMajor},
    {"hopeful", Kind::kMajor},
    {"uplifting", Kind::kMajor},
    {"joyful", Kind::kMajor},
    {"cheerful", Kind::kMajor},
    {"bright", Kind::kMajor},
    {"sunny", Kind::kMajor},
    {"warm", Kind::kMajor},
    {"romantic", Kind::kMajor},
    {"love", Kind::kMajor},
    {"major", Kind::kMajor},
    {"sad", Kind::kMinor},
    {"melancholic", Kind::kMinor},
    {"melancholy", Kind::kMinor},
    {"dark", Kind::kMinor},
    {"sorrowful", Kind::kMinor},
    {"lonely", Kind::kMinor},
    {"gloomy", Kind::kMinor},
    {"moody", Kind::kMinor},
    {"minor", Kind::kMinor},
    {"energetic", Kind::kEnergyUp},
    {"upbeat", Kind::kEnergyUp},
    {"powerful", Kind::kEnergyUp},
    {"intense", Kind::kEnergyUp},
    {"epic", Kind::kEnergyUp},
    {"aggressive", Kind::kEnergyUp},
    {"calm", Kind::kEnergyDown},
    {"relaxing", Kind::kEnergyDown},
    {"relaxed", Kind::kEnergyDown},
    {"peaceful", Kind::kEnergyDown},
    {"soft", Kind::kEnergyDown},
    {"gentle", Kind::kEnergyDown},
    {"dreamy", Kind::kEnergyDown},
    {"chill", Kind::kEnergyDown},
    {"mellow", Kind::kEnergyDown},
    {"slow", Kind::kSlow},
    {"fast", Kind::kFast},
    {"快乐", Kind::kMajor},
    {"开心", Kind::kMajor},
    {"欢快", Kind::kMajor},
    {"愉快", Kind::kMajor},
    {"希望", Kind::kMajor},
    {"阳光", Kind::kMajor},
    {"温暖", Kind::kMajor},
    {"幸福", Kind::kMajor},
    {"浪漫", Kind::kMajor},
    {"悲伤", Kind::kMinor},
    {"伤感", Kind::kMinor},
    {"忧伤", Kind::kMinor},
    {"难过", Kind::kMinor},
    {"忧郁", Kind::kMinor},
    {"黑暗", Kind::kMinor},
    {"孤独", Kind::kMinor},
    {"思念", Kind::kMinor},
    {"激情", Kind::kEnergyUp},
    {"动感", Kind::kEnergyUp},
    {"活力", Kind::kEnergyUp},
    {"热血", Kind::kEnergyUp},
    {"激昂", Kind::kEnergyUp},
    {"安静", Kind::kEnergyDown},
    {"平静", Kind::kEnergyDown},
    {"舒缓", Kind::kEnergyDown},
    {"轻柔", Kind::kEnergyDown},
    {"放松", Kind::kEnergyDown},
    {"宁静", Kind::kEnergyDown},
    {"慢", Kind::kSlow},
    {"快节奏", Kind::kFast},
    {"快速", Kind::kFast},
    // Singer.
    {"female", Kind::kFemale},
    {"woman", Kind::kFemale},
    {"girl", Kind::kFemale},
    {"male", Kind::kMale},
    {"man", Kind::kMale},
    {"boy", Kind::kMale},
    {"女声", Kind::kFemale},
    {"女生", Kind::kFemale},
    {"男声", Kind::kMale},
    {"男生", Kind::kMale},
    // Instruments.
    {"piano", Kind::kInstrument, I(Instrument::kPiano)},
    {"keys", Kind::kInstrument, I(Instrument::kPiano)},
    {"guitar", Kind::kInstrument, I(Instrument::kGuitar)},
    {"guitars", Kind::kInstrument, I(Instrument::kGuitar)},
    {"strings", Kind::kInstrument, I(Instrument::kStrings)},
    {"violin", Kind::kInstrument, I(Instrument::kViolin)},
    {"fiddle", Kind::kInstrument, I(Instrument::kViolin)},
    {"cello", Kind::kInstrument, I(Instrument::kCello)},
    {"synth", Kind::kInstrument, I(Instrument::kSynth)},
    {"synths", Kind::kInstrument, I(Instrument::kSynth)},
    {"synthesizer", Kind::kInstrument, I(Instrument::kSynth)},
    {"saxophone", Kind::kInstrument, I(Instrument::kSax)},
    {"sax", Kind::kInstrument, I(Instrument::kSax)},
    {"flute", Kind::kInstrument, I(Instrument::kFlute)},
    {"trumpet", Kind::kInstrument, I(Instrument::kTrumpet)},
    {"brass", Kind::kInstrument, I(Instrument::kTrumpet)},
    {"organ", Kind::kInstrument, I(Instrument::kOrgan)},
    {"harp", Kind::kInstrument, I(Instrument::kHarp)},
    {"bass", Kind::kInstrument, I(Instrument::kBass)},
    {"drums", Kind::kInstrument, I(Instrument::kDrums)},
    {"drum", Kind::kInstrument, I(Instrument::kDrums)},
    {"beat", Kind::kInstrument, I(Instrument::kDrums)},
    {"beats", Kind::kInstrument, I(Instrument::kDrums)},
    {"电钢琴", Kind::kInstrument, I(Instrument::kElectricPiano)},
    {"电吉他", Kind::kInstrument, I(Instrument::kElectricGuitar)},
    {"钢琴", Kind::kInstrument, I(Instrument::kPiano)},
    {"吉他", Kind::kInstrument, I(Instrument::kGuitar)},
    {"弦乐", Kind::kInstrument, I(Instrument::kStrings)},
    {"小提琴", Kind::kInstrument, I(Instrument::kViolin)},
    {"大提琴", Kind::kInstrument, I(Instrument::kCello)},
    {"合成器", Kind::kInstrument, I(Instrument::kSynth)},
    {"萨克斯", Kind::kInstrument, I(Instrument::kSax)},
    {"长笛", Kind::kInstrument, I(Instrument::kFlute)},
    {"笛子", Kind::kInstrument, I(Instrument::kFlute)},
    {"小号", Kind::kInstrument, I(Instrument::kTrumpet)},
    {"风琴", Kind::kInstrument, I(Instrument::kOrgan)},
    {"竖琴", Kind::kInstrument, I(Instrument::kHarp)},
    {"贝斯", Kind::kInstrument, I(Instrument::kBass)},
    {"鼓", Kind::kInstrument, I(Instrument::kDrums)},
    {"二胡", Kind::kInstrument, I(Instrument::kErhu)},
    {"古筝", Kind::kInstrument, I(Instrument::kGuzheng)},
};

/// @brief A genre's defaults before moods and named instruments adjust them.
struct GenreDefaults {
    Genre genre;
    double bpm_lo, bpm_hi;
    bool minor, sevenths;
    Programs programs;
    DrumPattern drums;
    AccompPattern accomp;
    BassPattern bass;
    double energy, swing;
    int reverb;
};

// GM programs: 0 piano, 4 e-piano, 16 organ, 25 steel guitar, 26 jazz guitar, 29 overdrive,
// 30 distortion, 32/33/34 acoustic/finger/pick bass, 38 synth bass, 40 violin, 48/49 strings,
// 56 trumpet, 65 alto sax, 73 flute, 81 saw lead, 88/89/90 pads, 105 banjo, 110 fiddle.
// Kits: 0 standard, 16 power, 25 TR-808, 32 jazz, 40 brush.
const GenreDefaults kGenres[] = {
    {Genre::kPop,
     96,
     118,
     false,
     false,
     {0, 48, 33, 73, 0},
     DrumPattern::kPop,
     AccompPattern::kArpeggio,
     BassPattern::kRootFifth,
     0.6,
     0.0,
     45},
    {Genre::kRock,
     112,
     140,
     false,
     false,
     {29, -1, 34, 29, 0},
     DrumPattern::kRock,
     AccompPattern::kPower,
     BassPattern::kEighths,
     0.8,
     0.0,
     35},
    {Genre::kJazz,
     100,
     140,
     false,
     true,
     {0, -1, 32, 65, 32},
     DrumPattern::kJazzSwing,
     AccompPattern::kComp,
     BassPattern::kWalking,
     0.5,
     0.3,
     40},
    {Genre::kClassical,
     72,
     96,
     false,
     false,
     {48, 49, 43, 40, -1},
     DrumPattern::kNone,
     AccompPattern::kArpeggio,
     BassPattern::kWhole,
     0.4,
     0.0,
     70},
    {Genre::kElectronic,
     122,
     128,
     true,
     false,
     {81, 90, 38, 81, 25},
     DrumPattern::kFourOnFloor,
     AccompPattern::kStabs,
     BassPattern::kOffbeat,
     0.9,
     0.0,
     45},
    {Genre::kHipHop,
     84,
     96,
     true,
     false,
     {4, -1, 38, 0, 25},
     DrumPattern::kBoomBap,
     AccompPattern::kBlock,
     BassPattern::kSyncopated,
     0.7,
     0.12,
     30},
    {Genre::kFolk,
     92,
     112,
     false,
     false,
     {25, -1, 32, 73, 0},
     DrumPattern::kFolk,
     AccompPattern::kStrum,
     BassPattern::kRootFifth,
     0.5,
     0.0,
     40},
    {Genre::kAmbient,
     64,
     80,
     false,
     false,
     {0, 89, 38, 88, -1},
     DrumPattern::kNone,
     AccompPattern::kArpeggio,
     BassPattern::kWhole,
     0.25,
     0.0,
     90},
    {Genre::kRnb,
     70,
     90,
     true,
     true,
     {4, 48, 33, 65, 0},
     DrumPattern::kHalfTime,
     AccompPattern::kBlock,
     BassPattern::kSyncopated,
     0.55,
     0.1,
     45},
    {Genre::kMetal,
     140,
     176,
     true,
     false,
     {30, -1, 34, 30, 16},
     DrumPattern::kMetal,
     AccompPattern::kPower,
     BassPattern::kEighths,
     1.0,
     0.0,
     25},
    {Genre::kLofi,
     72,
     86,
     false,
     true,
     {4, -1, 33, 0, 0},
     DrumPattern::kBoomBap,
     AccompPattern::kBlock,
     BassPattern::kSyncopated,
     0.35,
     0.2,
     50},
    {Genre::kCountry,
     100,
     128,
     false,
     false,
     {25, -1, 32, 110, 0},
     DrumPattern::kCountry,
     AccompPattern::kStrum,
     BassPattern::kRootFifth,
     0.6,
     0.0,
     35},
    {Genre::kBallad,
     64,
     76,
     false,
     false,
     {0, 48, 33, 40, 0},
     DrumPattern::kBallad,
     AccompPattern::kArpeggio,
     BassPattern::kWhole,
     0.35,
     0.0,
     65},
};

struct Token {
    std::string text;
    size_t offset;
};

bool IsWordByte(unsigned char c) {
    return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '&';
}

/// Lower-case ASCII words with their byte offsets; "hip-hop" becomes "hip", "hop".
std::vector<Token> Tokenize(std::string_view prompt) {
    std::vector<Token> tokens;
    std::string current;
    size_t start = 0;
    for (size_t i = 0; i <= prompt.size(); ++i) {
        unsigned char c = i < prompt.size() ? static_cast<unsigned char>(prompt[i]) : ' ';
        if (c >= 'A' && c <= 'Z') c = static_cast<unsigned char>(c - 'A' + 'a');
        if (IsWordByte(c)) {
            if (current.empty()) start = i;
            current.push_back(static_cast<char>(c));
        } else if (!current.empty()) {
            tokens.push_back({current, start});
            current.clear();
        }
    }
    return tokens;
}

bool IsAscii(const char* s) {
    for (; *s; ++s) {
        if (static_cast<unsigned char>(*s) >= 0x80) return false;
    }
    return true;
}

struct Match {
    size_t offset;
    size_t order;  ///< keyword table index, to break ties deterministically
    const Keyword* keyword;
};

std::vector<Match> FindKeywords(std::string_view prompt) {
    std::vector<Match> matches;
    const auto tokens = Tokenize(prompt);
    std::vector<bool> token_used(tokens.size(), false);
    std::string text(prompt);
    std::vector<bool> byte_used(text.size(), false);
    for (size_t k = 0; k < std::size(kKeywords); ++k) {
        const Keyword& kw = kKeywords[k];
        if (IsAscii(kw.word)) {
            const auto words = Tokenize(kw.word);
            for (size_t t = 0; t + words.size() <= tokens.size(); ++t) {
                bool ok = true;
                for (size_t w = 0; w < words.size() && ok; ++w) {
                    ok = !token_used[t + w] && tokens[t + w].text == words[w].text;
                }
                if (!ok) continue;
                for (size_t w = 0; w < words.size(); ++w) token_used[t + w] = true;
                matches.push_back({tokens[t].offset, k, &kw});
            }
        } else {
            const std::string_view word(kw.word);
            for (size_t pos = text.find(word); pos != std::string::npos;
                 pos = text.find(word, pos + word.size())) {
                bool free = true;
                for (size_t b = pos; b < pos + word.size(); ++b) free = free && !byte_used[b];
                if (!free) continue;
                for (size_t b = pos; b < pos + word.size(); ++b) byte_used[b] = true;
                matches.push_back({pos, k, &kw});
            }
        }
    }
    std::sort(matches.begin(), matches.end(), [](const Match& a, const Match& b) {
        return a.offset != b.offset ? a.offset < b.offset : a.order < b.order;
    });
    return matches;
}

void ApplyInstrument(Instrument instrument, Style& style) {
    Programs& p = style.programs;
    const bool heavy = style.genre == Genre::kRock || style.genre == Genre::kMetal;
    switch (instrument) {
        case Instrument::kPiano:
            p.chords = 0;
            if (style.accomp == AccompPattern::kPower || style.accomp == AccompPattern::kStrum ||
                style.accomp == AccompPattern::kStabs) {
                style.accomp =
                    style.energy > 0.7 ? AccompPattern::kBlock : AccompPattern::kArpeggio;
            }
            break;
        case Instrument::kElectricPiano:
            p.chords = 4;
            if (style.accomp == AccompPattern::kPower) style.accomp = AccompPattern::kBlock;
            break;
        case Instrument::kGuitar:
            if (heavy) break;  // the genre already chose an electric guitar
            p.chords = style.genre == Genre::kJazz ? 26 : 25;
            if (style.accomp != AccompPattern::kComp) style.accomp = AccompPattern::kStrum;
            break;
        case Instrument::kElectricGuitar:
            p.chords = heavy ? p.chords : 27;
            if (!heavy) style.accomp = AccompPattern::kStrum;
            break;
        case Instrument::kStrings:
            p.pad = 48;
            break;
        case Instrument::kViolin:
            p.lead = 40;
            break;
        case Instrument::kCello:
            p.lead = 42;
            break;
        case Instrument::kSynth:
            p.pad = 89;
            if (style.genre == Genre::kElectronic) p.lead = 81;
            break;
        case Instrument::kSax:
            p.lead = 65;
            break;
        case Instrument::kFlute:
            p.lead = 73;
            break;
        case Instrument::kTrumpet:
            p.lead = 56;
            break;
        case Instrument::kOrgan:
            p.chords = 16;
            if (style.accomp == AccompPattern::kPower) style.accomp = AccompPattern::kBlock;
            break;
        case Instrument::kHarp:
            p.chords = 46;
            style.accomp = AccompPattern::kArpeggio;
            break;
        case Instrument::kBass:
            if (p.bass < 0) p.bass = 33;
            break;
        case Instrument::kDrums:
            if (p.drum_kit < 0) p.drum_kit = 0;
            if (style.drums == DrumPattern::kNone) style.drums = DrumPattern::kBallad;
            break;
        case Instrument::kErhu:
            p.lead = 110;
            break;
        case Instrument::kGuzheng:
            p.chords = 107;
            style.accomp = AccompPattern::kArpeggio;
            break;
    }
}

}  // namespace

const char* GenreName(Genre genre) {
    switch (genre) {
        case Genre::kPop:
            return "pop";
        case Genre::kRock:
            return "rock";
        case Genre::kJazz:
            return "jazz";
        case Genre::kClassical:
            return "classical";
        case Genre::kElectronic:
            return "electronic";
        case Genre::kHipHop:
            return "hip-hop";
        case Genre::kFolk:
            return "folk";
        case Genre::kAmbient:
            return "ambient";
        case Genre::kRnb:
            return "r&b";
        case Genre::kMetal:
            return "metal";
        case Genre::kLofi:
            return "lo-fi";
        case Genre::kCountry:
            return "country";
        case Genre::kBallad:
            return "ballad";
    }
    return "pop";
}

Style ParseStyle(std::string_view prompt, uint64_t seed) {
    const auto matches = FindKeywords(prompt);
    Style style;
    Genre genre = Genre::kPop;
    for (const auto& m : matches) {
        if (m.keyword->kind == Kind::kGenre) {
            genre = static_cast<Genre>(m.keyword->value);
            break;
        }
    }
    const GenreDefaults* d = &kGenres[0];
    for (const auto& g : kGenres) {
        if (g.genre == genre) d = &g;
    }
    Rng rng(Rng::Derive(seed, "style"));
    style.genre = genre;
    style.genre_name = GenreName(genre);
    style.minor = d->minor;
    style.sevenths = d->sevenths;
    style.programs = d->programs;
    style.drums = d->drums;
    style.accomp = d->accomp;
    style.bass = d->bass;
    style.energy = d->energy;
    style.swing = d->swing;
    style.reverb = d->reverb;
    double bpm = rng.Uniform(d->bpm_lo, d->bpm_hi);
    // Keys a voice and these instruments sit well in.
    static const std::vector<int> kKeys = {0, 2, 3, 4, 5, 7, 9, 10};
    style.key = rng.Pick(kKeys);

    bool mode_set = false;
    bool energetic = false;
    double tempo_factor = 1.0;
    for (const auto& m : matches) {
        style.matched.emplace_back(m.keyword->word);
        switch (m.keyword->kind) {
            case Kind::kGenre:
            case Kind::kInstrument:
                break;
            case Kind::kMajor:
            case Kind::kMinor:
                if (!mode_set) style.minor = m.keyword->kind == Kind::kMinor;
                mode_set = true;
                break;
            case Kind::kEnergyUp:
                style.energy += 0.25;
                tempo_factor *= 1.06;
                energetic = true;
                break;
            case Kind::kEnergyDown:
                style.energy -= 0.2;
                tempo_factor *= 0.92;
                break;
            case Kind::kSlow:
                style.energy -= 0.1;
                tempo_factor *= 0.85;
                break;
            case Kind::kFast:
                tempo_factor *= 1.15;
                break;
            case Kind::kFemale:
                if (style.voice == 0) style.voice = 1;
                break;
            case Kind::kMale:
                if (style.voice == 0) style.voice = 2;
                break;
        }
    }
    // Energetic music without a stated mood leans major (bright); a stated mood wins.
    if (energetic && !mode_set) style.minor = false;
    style.energy = std::clamp(style.energy, 0.1, 1.0);
    // Instruments after the energy is known, because some choices depend on it.
    for (const auto& m : matches) {
        if (m.keyword->kind == Kind::kInstrument) {
            ApplyInstrument(static_cast<Instrument>(m.keyword->value), style);
        }
    }
    style.bpm = std::round(std::clamp(bpm * tempo_factor, 56.0, 184.0));
    return style;
}

void FollowReference(Style& style, double bpm, int tonic, bool minor) {
    if (bpm > 0) style.bpm = std::clamp(bpm, 56.0, 184.0);
    style.key = ((tonic % 12) + 12) % 12;
    style.minor = minor;
}

}  // namespace songd::engine::synth
