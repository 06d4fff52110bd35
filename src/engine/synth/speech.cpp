#include "engine/synth/speech.h"

#include <espeak-ng/speak_lib.h>
#include <fcntl.h>
#include <signal.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdlib>
#include <cstring>

#include "core/child_process.h"
#include "core/error.h"
#include "engine/lrc.h"

namespace songd::engine::synth {
namespace {

constexpr uint32_t kRecordMagic = 0x53504b31;  // "SPK1"
constexpr uint32_t kEndMagic = 0x454e4421;     // "END!"
constexpr uint32_t kErrorMagic = 0x45525221;   // "ERR!"

[[noreturn]] void Fail(const std::string& detail) {
    throw core::Error(core::ErrorCode::kRenderFailed, detail);
}

// ---- child side: plain C-style code, no exceptions across espeak's callbacks ----

struct ChildState {
    std::vector<int16_t> samples;
    std::vector<Phoneme> phonemes;
    bool pending_word = false;
};
ChildState* g_child = nullptr;

int ChildCallback(short* wav, int count, espeak_EVENT* events) {
    if (wav != nullptr && count > 0)
        g_child->samples.insert(g_child->samples.end(), wav, wav + count);
    for (espeak_EVENT* ev = events; ev != nullptr && ev->type != espeakEVENT_LIST_TERMINATED;
         ++ev) {
        if (ev->type == espeakEVENT_WORD) {
            g_child->pending_word = true;
        } else if (ev->type == espeakEVENT_PHONEME) {
            char name[9] = {};
            std::memcpy(name, ev->id.string, 8);
            g_child->phonemes.push_back({ev->sample, name, g_child->pending_word});
            g_child->pending_word = false;
        }
    }
    return 0;
}

bool WriteAll(int fd, const void* data, size_t size) {
    const char* p = static_cast<const char*>(data);
    while (size > 0) {
        ssize_t n = write(fd, p, size);
        if (n < 0 && errno == EINTR) continue;
        if (n <= 0) return false;
        p += n;
        size -= static_cast<size_t>(n);
    }
    return true;
}

template <typename T>
void Put(std::string& out, T value) {
    out.append(reinterpret_cast<const char*>(&value), sizeof(value));
}

/// An error record for the parent; returns the child's exit code.
int SendError(int fd, const std::string& message, int code) {
    std::string out;
    Put(out, kErrorMagic);
    Put(out, static_cast<uint32_t>(message.size()));
    out += message;
    WriteAll(fd, out.data(), out.size());
    return code;
}

/// Runs in the forked child: speaks every request and sends the records up `fd`.
int ChildMain(int fd, const std::vector<SpeechRequest>& requests) {
    signal(SIGPIPE, SIG_IGN);
    // espeak-ng draws its breath and frication noise from the C library's rand(), whose
    // state the child inherits from the parent (FluidSynth, for one, calls rand() when it
    // initialises). A fixed seed here makes the voice depend on the text alone.
    srand(1);
    const int rate =
        espeak_Initialize(AUDIO_OUTPUT_SYNCHRONOUS, 200, nullptr,
                          espeakINITIALIZE_PHONEME_EVENTS | espeakINITIALIZE_DONT_EXIT);
    if (rate <= 0) {
        return SendError(fd, "espeak-ng failed to initialise (espeak-ng-data missing?)", 3);
    }
    ChildState state;
    g_child = &state;
    espeak_SetSynthCallback(ChildCallback);
    std::string out;
    for (const auto& request : requests) {
        state = ChildState{};
        if (espeak_SetVoiceByName(request.voice.c_str()) != EE_OK) {
            return SendError(fd, "espeak-ng has no voice \"" + request.voice + "\"", 6);
        }
        // A flat speaking pitch: the melody comes later, and a steady source pitch makes
        // the pitch marks reliable.
        espeak_SetParameter(espeakRANGE, 0, 0);
        espeak_SetParameter(espeakRATE, 150, 0);
        espeak_SetParameter(espeakPUNCTUATION, espeakPUNCT_NONE, 0);
        espeak_Synth(request.text.c_str(), request.text.size() + 1, 0, POS_CHARACTER, 0,
                     espeakCHARS_UTF8, nullptr, nullptr);
        espeak_Synchronize();
        out.clear();
        Put(out, kRecordMagic);
        Put(out, static_cast<int32_t>(rate));
        Put(out, static_cast<uint32_t>(state.samples.size()));
        out.append(reinterpret_cast<const char*>(state.samples.data()),
                   state.samples.size() * sizeof(int16_t));
        Put(out, static_cast<uint32_t>(state.phonemes.size()));
        for (const auto& ph : state.phonemes) {
            Put(out, static_cast<int64_t>(ph.sample));
            Put(out, static_cast<uint8_t>(ph.word_start));
            Put(out, static_cast<uint8_t>(ph.name.size()));
            out += ph.name;
        }
        if (!WriteAll(fd, out.data(), out.size())) return 4;
    }
    out.clear();
    Put(out, kEndMagic);
    WriteAll(fd, out.data(), out.size());
    return 0;
}

// ---- parent side ----

/// @brief Incremental reader of the child's records.
class RecordParser {
  public:
    void Append(const char* data, size_t size) { buffer_.append(data, size); }

    /// Parses complete records into `out`; true once the end marker was read.
    bool Parse(std::vector<Speech>& out) {
        while (true) {
            size_t pos = offset_;
            uint32_t magic = 0;
            if (!Get(pos, magic)) return false;
            if (magic == kEndMagic) return true;
            if (magic == kErrorMagic) {
                uint32_t len = 0;
                if (!Get(pos, len) || buffer_.size() < pos + len) return false;
                Fail("voice synthesis failed: " + buffer_.substr(pos, len));
            }
            if (magic != kRecordMagic) Fail("voice synthesis returned corrupt data");
            Speech speech;
            int32_t rate = 0;
            uint32_t n = 0;
            if (!Get(pos, rate) || !Get(pos, n)) return false;
            if (buffer_.size() < pos + n * sizeof(int16_t)) return false;
            speech.sample_rate = rate;
            speech.samples.resize(n);
            std::memcpy(speech.samples.data(), buffer_.data() + pos, n * sizeof(int16_t));
            pos += n * sizeof(int16_t);
            uint32_t count = 0;
            if (!Get(pos, count)) return false;
            for (uint32_t i = 0; i < count; ++i) {
                int64_t sample = 0;
                uint8_t word = 0, len = 0;
                if (!Get(pos, sample) || !Get(pos, word) || !Get(pos, len)) return false;
                if (buffer_.size() < pos + len) return false;
                speech.phonemes.push_back(
                    {std::clamp<int64_t>(sample, 0, n), buffer_.substr(pos, len), word != 0});
                pos += len;
            }
            out.push_back(std::move(speech));
            offset_ = pos;
            if (offset_ > (1u << 20)) {
                buffer_.erase(0, offset_);
                offset_ = 0;
            }
        }
    }

  private:
    template <typename T>
    bool Get(size_t& pos, T& value) const {
        if (buffer_.size() < pos + sizeof(T)) return false;
        std::memcpy(&value, buffer_.data() + pos, sizeof(T));
        pos += sizeof(T);
        return true;
    }

    std::string buffer_;
    size_t offset_ = 0;
};

bool IsHan(char32_t cp) {
    return (cp >= 0x3400 && cp <= 0x4dbf) || (cp >= 0x4e00 && cp <= 0x9fff) ||
           (cp >= 0xf900 && cp <= 0xfaff) || (cp >= 0x20000 && cp <= 0x2fa1f);
}

bool IsAsciiLetter(char32_t cp) { return (cp >= 'a' && cp <= 'z') || (cp >= 'A' && cp <= 'Z'); }

}  // namespace

std::vector<Speech> Speak(const std::vector<SpeechRequest>& requests, const CancelToken& cancel,
                          const std::function<void(size_t)>& progress) {
    if (requests.empty()) return {};
    cancel.ThrowIfCancelled();
    core::ChildProcess::Options options;
    options.name = "voice synthesis";
    options.error_code = core::ErrorCode::kRenderFailed;
    options.stdout_mode = core::Stdio::Pipe();  // the records
    options.stderr_mode = core::Stdio::Pipe();  // anything espeak-ng says, for the error
    auto child = core::ChildProcess::Fork(
        [&requests] {
            // The records get their own descriptor; whatever the library prints to stdout
            // goes to stderr, never into the records.
            const int fd = fcntl(STDOUT_FILENO, F_DUPFD_CLOEXEC, 3);
            if (fd < 0 || dup2(STDERR_FILENO, STDOUT_FILENO) < 0) return 5;
            return ChildMain(fd, requests);
        },
        options);

    RecordParser parser;
    std::vector<Speech> result;
    bool done = false;
    const core::WaitResult end = child.Wait(
        {.cancelled = [&cancel] { return cancel.Cancelled(); }, .deadline = std::nullopt},
        [&](std::string_view data) {
            parser.Append(data.data(), data.size());
            const size_t before = result.size();
            done = parser.Parse(result);
            if (progress && result.size() != before) progress(result.size());
        });
    if (end.outcome != core::Outcome::kDone) cancel.ThrowIfCancelled();
    if (!done || result.size() != requests.size()) {
        const std::string said = child.StderrTail(500);
        Fail("voice synthesis stopped early (" + end.status.Describe() + ")" +
             (said.empty() ? "" : ": " + said));
    }
    return result;
}

bool IsVowelPhoneme(std::string_view name) {
    if (name.empty()) return false;
    return std::string_view("aeiouyAEIOUVY@03").find(name[0]) != std::string_view::npos;
}

std::vector<Syllable> Syllabify(const Speech& speech) {
    const auto total = static_cast<int64_t>(speech.samples.size());
    struct Item {
        int64_t begin, end;
        bool vowel;
    };
    // Words: runs of phonemes between word starts and pauses.
    std::vector<std::vector<Item>> words;
    const auto& ph = speech.phonemes;
    bool new_word = true;
    for (size_t i = 0; i < ph.size(); ++i) {
        const std::string& name = ph[i].name;
        if (!name.empty() && name[0] == '(') continue;  // language switch marker
        const bool pause = !name.empty() && name[0] == '_';
        if (pause) {
            new_word = true;
            continue;
        }
        int64_t end = total;
        for (size_t j = i + 1; j < ph.size(); ++j) {
            if (!ph[j].name.empty() && ph[j].name[0] == '(') continue;
            end = ph[j].sample;
            break;
        }
        const int64_t begin = std::clamp<int64_t>(ph[i].sample, 0, total);
        end = std::clamp<int64_t>(end, begin, total);
        if (end <= begin) continue;
        if (new_word || ph[i].word_start || words.empty()) words.emplace_back();
        new_word = false;
        words.back().push_back({begin, end, IsVowelPhoneme(name)});
    }
    std::vector<Syllable> syllables;
    for (const auto& word : words) {
        std::vector<size_t> vowels;
        for (size_t i = 0; i < word.size(); ++i) {
            if (word[i].vowel) vowels.push_back(i);
        }
        if (vowels.empty()) {
            if (!syllables.empty() && word.front().begin - syllables.back().end < 2205) {
                syllables.back().end = word.back().end;  // a lone consonant joins the previous
            }
            continue;
        }
        for (size_t v = 0; v < vowels.size(); ++v) {
            size_t first = 0;
            if (v > 0) {
                const size_t consonants = vowels[v] - vowels[v - 1] - 1;
                first = vowels[v] - (consonants <= 1 ? consonants : consonants - 1);
            }
            size_t last = word.size() - 1;
            if (v + 1 < vowels.size()) {
                const size_t consonants = vowels[v + 1] - vowels[v] - 1;
                last = vowels[v + 1] - (consonants <= 1 ? consonants : consonants - 1) - 1;
            }
            // Adjacent vowels of one nucleus (e.g. Mandarin finals) stay one syllable.
            size_t nucleus_end = vowels[v];
            Syllable s;
            s.begin = word[first].begin;
            s.end = word[last].end;
            s.nucleus_begin = word[vowels[v]].begin;
            s.nucleus_end = word[nucleus_end].end;
            syllables.push_back(s);
        }
    }
    return syllables;
}

std::vector<ScriptRun> SplitByScript(std::string_view text) {
    std::vector<ScriptRun> runs;
    size_t pos = 0;
    std::string pending;  // neutral characters before the first run
    while (pos < text.size()) {
        const size_t start = pos;
        // Decode one code point (the text is valid UTF-8: ParseLrc checked it).
        const auto c = static_cast<unsigned char>(text[pos]);
        const size_t len = c < 0x80 ? 1 : (c >> 5) == 6 ? 2 : (c >> 4) == 14 ? 3 : 4;
        char32_t cp = len == 1 ? c : len == 2 ? (c & 0x1f) : len == 3 ? (c & 0x0f) : (c & 0x07);
        for (size_t i = 1; i < len && pos + i < text.size(); ++i) {
            cp = (cp << 6) | (static_cast<unsigned char>(text[pos + i]) & 0x3f);
        }
        pos = std::min(text.size(), pos + len);
        const std::string_view ch = text.substr(start, pos - start);
        const bool han = IsHan(cp);
        const bool letter = han || IsAsciiLetter(cp) || (cp >= 0x80 && HasLetter(ch));
        if (!letter) {
            if (runs.empty()) {
                pending += ch;
            } else {
                runs.back().text += ch;
            }
            continue;
        }
        if (runs.empty() || runs.back().han != han) {
            runs.push_back({pending, han});
            pending.clear();
        }
        runs.back().text += ch;
    }
    return runs;
}

}  // namespace songd::engine::synth
