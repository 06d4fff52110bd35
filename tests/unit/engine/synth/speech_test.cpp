#include "engine/synth/speech.h"

#include <gtest/gtest.h>

#include <cstdlib>

#include "core/error.h"

namespace songd::engine::synth {
namespace {

Speech FromPhonemes(const std::vector<std::tuple<int64_t, std::string, bool>>& phonemes,
                    int64_t total) {
    Speech s;
    s.samples.assign(static_cast<size_t>(total), 0);
    for (const auto& [at, name, word] : phonemes) s.phonemes.push_back({at, name, word});
    return s;
}

TEST(SyllabifyTest, OneSyllablePerVowelConsonantsSplitBetweenNeighbours) {
    // "hello world": h @ l oU | w 3: l d, then a pause.
    const Speech s = FromPhonemes({{0, "h", true},
                                   {100, "@", false},
                                   {200, "l", false},
                                   {300, "oU", false},
                                   {500, "w", true},
                                   {600, "3:", false},
                                   {800, "l", false},
                                   {900, "d", false},
                                   {1000, "_:", false}},
                                  1200);
    const auto syl = Syllabify(s);
    ASSERT_EQ(syl.size(), 3u);
    EXPECT_EQ(syl[0].begin, 0);  // "h@"
    EXPECT_EQ(syl[0].end, 200);
    EXPECT_EQ(syl[0].nucleus_begin, 100);
    EXPECT_EQ(syl[1].begin, 200);  // "loU": one consonant between vowels is an onset
    EXPECT_EQ(syl[1].end, 500);    // never across the word boundary
    EXPECT_EQ(syl[2].begin, 500);  // "w3:ld" up to the pause
    EXPECT_EQ(syl[2].nucleus_begin, 600);
    EXPECT_EQ(syl[2].nucleus_end, 800);
    EXPECT_EQ(syl[2].end, 1000);
}

TEST(SyllabifyTest, TwoConsonantsBetweenVowelsSplitOneEachWay) {
    // "window": w I n d oU
    const Speech s = FromPhonemes({{0, "w", true},
                                   {100, "I", false},
                                   {200, "n", false},
                                   {300, "d", false},
                                   {400, "oU", false}},
                                  600);
    const auto syl = Syllabify(s);
    ASSERT_EQ(syl.size(), 2u);
    EXPECT_EQ(syl[0].end, 300);
    EXPECT_EQ(syl[1].begin, 300);
    EXPECT_EQ(syl[1].end, 600);
}

TEST(SyllabifyTest, LanguageSwitchMarkersAndConsonantOnlyWordsAreHandled) {
    const Speech s = FromPhonemes({{0, "(en)", false},
                                   {0, "n", true},
                                   {50, "i", false},
                                   {150, "_|", false},
                                   {150, "s", true},
                                   {250, "(cmn)", false},
                                   {250, "_", false}},
                                  300);
    const auto syl = Syllabify(s);
    ASSERT_EQ(syl.size(), 1u);
    EXPECT_EQ(syl[0].begin, 0);
    EXPECT_EQ(syl[0].end, 250);  // the lone "s" joins the previous syllable
    EXPECT_TRUE(Syllabify(Speech{}).empty());
}

TEST(SplitByScriptTest, HanAndLatinRunsWithPunctuationAttached) {
    const auto runs = SplitByScript("“啦啦啦” sing along, 我们一起唱!");
    ASSERT_EQ(runs.size(), 3u);
    EXPECT_TRUE(runs[0].han);
    EXPECT_EQ(runs[0].text, "“啦啦啦” ");
    EXPECT_FALSE(runs[1].han);
    EXPECT_EQ(runs[1].text, "sing along, ");
    EXPECT_TRUE(runs[2].han);
    EXPECT_EQ(runs[2].text, "我们一起唱!");
    EXPECT_TRUE(SplitByScript("123 !!").empty());
}

TEST(SpeakTest, EnglishAndMandarinSyllableCounts) {
    CancelToken cancel;
    size_t progress_calls = 0;
    const auto speech = Speak({{"hello beautiful world", "en-us"},
                               {"我爱你中国", "cmn-latn-pinyin"},
                               {"hello beautiful world", "en-us"}},
                              cancel, [&](size_t) { ++progress_calls; });
    ASSERT_EQ(speech.size(), 3u);
    EXPECT_GE(progress_calls, 1u);
    EXPECT_EQ(speech[0].sample_rate, 22050);
    EXPECT_GT(speech[0].samples.size(), 22050u / 2);
    EXPECT_EQ(Syllabify(speech[0]).size(), 6u);  // hel-lo beau-ti-ful world
    EXPECT_EQ(Syllabify(speech[1]).size(), 5u);  // one per character
    EXPECT_EQ(Syllabify(speech[2]).size(), 6u);
}

TEST(SpeakTest, SpeakingTwiceGivesIdenticalAudio) {
    CancelToken cancel;
    const auto a = Speak({{"sail away", "en-us+f3"}}, cancel, nullptr);
    const auto b = Speak({{"sail away", "en-us+f3"}}, cancel, nullptr);
    ASSERT_EQ(a.size(), 1u);
    ASSERT_EQ(b.size(), 1u);
    EXPECT_EQ(a[0].samples, b[0].samples);
}

TEST(SpeakTest, TheCallersRandStateDoesNotChangeTheVoice) {
    // Libraries in the service (FluidSynth among them) call rand(); the voice must not care.
    CancelToken cancel;
    const std::vector<SpeechRequest> request = {{"she sells sea shells, hush", "en-us+f3"}};
    std::srand(123);
    const auto a = Speak(request, cancel, nullptr);
    std::srand(987654);
    for (int i = 0; i < 1000; ++i) (void)std::rand();
    const auto b = Speak(request, cancel, nullptr);
    ASSERT_EQ(a.size(), 1u);
    EXPECT_EQ(a[0].samples, b[0].samples);
}

TEST(SpeakTest, AnUnknownVoiceIsAClearError) {
    CancelToken cancel;
    try {
        Speak({{"hello", "en-us"}, {"hello", "xx-nonexistent"}}, cancel, nullptr);
        FAIL() << "expected an error";
    } catch (const core::Error& e) {
        EXPECT_EQ(e.code(), core::ErrorCode::kRenderFailed);
        EXPECT_NE(std::string(e.what()).find("xx-nonexistent"), std::string::npos) << e.what();
    }
}

TEST(SpeakTest, CancelledBeforeStartThrowsTheCancelError) {
    CancelToken cancel;
    cancel.Cancel();
    try {
        Speak({{"hello", "en-us"}}, cancel, nullptr);
        FAIL() << "expected an error";
    } catch (const core::Error& e) {
        EXPECT_EQ(e.code(), core::ErrorCode::kRenderFailed);
    }
}

TEST(SpeakTest, CancelledWhileSpeakingStopsTheChildAndThrowsTheCancelError) {
    CancelToken cancel;
    const std::vector<SpeechRequest> many(200, {"a long line to keep the voice busy", "en-us"});
    size_t finished = 0;
    try {
        Speak(many, cancel, [&](size_t done) {
            finished = done;
            cancel.Cancel();  // after the first record arrived
        });
        FAIL() << "expected an error";
    } catch (const core::Error& e) {
        EXPECT_EQ(e.code(), core::ErrorCode::kRenderFailed);
        EXPECT_STREQ(e.what(), "generation was stopped");
    }
    EXPECT_GE(finished, 1u);
    EXPECT_LT(finished, many.size());
}

}  // namespace
}  // namespace songd::engine::synth
