// The synth engine's instrumentals: the band alone, in a verse/chorus/break form.
#include <gtest/gtest.h>
#include <sndfile.h>
#include <unistd.h>

#include <cmath>
#include <fstream>
#include <sstream>

#include "engine/synth/synth_engine.h"

namespace songd::engine::synth {
namespace {

/// Peak absolute sample of a sound file.
float Peak(const std::filesystem::path& path) {
    SF_INFO info{};
    SNDFILE* f = sf_open(path.c_str(), SFM_READ, &info);
    if (f == nullptr) return -1;
    std::vector<float> buf(static_cast<size_t>(info.frames * info.channels));
    sf_readf_float(f, buf.data(), info.frames);
    sf_close(f);
    float peak = 0;
    for (float v : buf) peak = std::max(peak, std::abs(v));
    return peak;
}

std::string ReadAll(const std::filesystem::path& p) {
    std::ifstream in(p);
    std::stringstream s;
    s << in.rdbuf();
    return s.str();
}

TEST(SynthInstrumental, FlagOrBlankLyricsRenderTheBandAlone) {
    for (bool flag : {true, false}) {
        SCOPED_TRACE(flag ? "instrumental flag" : "blank lyrics");
        const auto dir = std::filesystem::path(::testing::TempDir()) /
                         ("synth_instrumental_" + std::to_string(getpid()) + (flag ? "f" : "b"));
        std::filesystem::remove_all(dir);
        std::filesystem::create_directories(dir);
        RenderRequest r;
        r.job_id = "instrumental";
        r.lyrics = flag ? "" : "  \n";
        r.instrumental = flag;
        r.style_prompt = "uplifting pop with piano";
        r.audio_length = 95;
        r.seed = 3;
        r.work_dir = dir;
        r.write_stems = true;
        SynthEngine engine;
        CancelToken cancel;
        engine.Render(r, nullptr, cancel);
        EXPECT_EQ(Peak(dir / "vocals.wav"), 0.0f) << "an instrumental has no vocal";
        EXPECT_GT(Peak(dir / "band.wav"), 0.1f);
        EXPECT_GT(Peak(dir / "raw.wav"), 0.1f);
        EXPECT_EQ(ReadAll(dir / "vocal_notes.csv"),
                  "line,syllable,start_s,end_s,vowel_s,midi,hz\n");
        // A form, not one long outro: intro, verse, chorus and a break for the lead.
        const std::string plan = ReadAll(dir / "synth_plan.json");
        for (const char* section : {"\"intro\"", "\"verse\"", "\"chorus\"", "\"outro\""}) {
            EXPECT_NE(plan.find(section), std::string::npos) << section << " in " << plan;
        }
        std::filesystem::remove_all(dir);
    }
}

}  // namespace
}  // namespace songd::engine::synth
