// The engine lifecycle every engine shares: not ready until started, not after stopped.
#include <gtest/gtest.h>

#include "core/error.h"
#include "engine/synth/synth_engine.h"
#include "engine/tone_engine.h"

namespace songd::engine {
namespace {

TEST(EngineLifecycle, ReadyOnlyBetweenStartAndStop) {
    ToneEngine engine;
    EXPECT_FALSE(engine.Ready());
    EXPECT_EQ(engine.Status().reason, "not started");
    engine.Start();
    EXPECT_TRUE(engine.Ready());
    EXPECT_EQ(engine.Status().reason, "");
    engine.Stop();
    EXPECT_FALSE(engine.Ready());
    EXPECT_EQ(engine.Status().reason, "stopped");
}

// A synth without a SoundFont cannot render anything: it refuses to start, so `songd serve`
// stops at once with the reason instead of failing every job.
TEST(EngineLifecycle, SynthWithoutItsSoundFontDoesNotStart) {
    synth::SynthEngine engine("/nonexistent/soundfont.sf2");
    try {
        engine.Start();
        FAIL() << "expected Start to throw";
    } catch (const core::Error& e) {
        EXPECT_NE(std::string(e.what()).find("/nonexistent/soundfont.sf2"), std::string::npos)
            << e.what();
    }
    EXPECT_FALSE(engine.Ready());
}

}  // namespace
}  // namespace songd::engine
