#pragma once
/// @file
/// CountingEngine: the tone engine, counting its renders, so a test can tell whether a job
/// was rendered again or finished from the song an earlier attempt left.
///
///   jobs::testing::CountingEngine engine;        // or CountingEngine("error")
///   engine.Start();
///   ...
///   EXPECT_EQ(engine.renders.load(), 1);

#include <atomic>
#include <filesystem>
#include <string>

#include "engine/tone_engine.h"

namespace songd::jobs::testing {

/// @brief The tone engine, counting how often it was asked to render.
class CountingEngine final : public engine::ToneEngine {
  public:
    explicit CountingEngine(std::string fault = "none") : ToneEngine(0, std::move(fault)) {}
    std::filesystem::path Render(const engine::RenderRequest& request,
                                 const engine::ProgressFn& progress,
                                 const engine::CancelToken& cancel) override {
        ++renders;
        return ToneEngine::Render(request, progress, cancel);
    }
    std::atomic<int> renders{0};
};

}  // namespace songd::jobs::testing
