#include "engine/synth/reverb.h"

#include <gtest/gtest.h>

#include <cmath>

namespace songd::engine::synth {
namespace {

TEST(ReverbTest, ImpulseGivesADecayingStereoTail) {
    std::vector<float> x(44100 * 3, 0.0f);
    x[1000] = 1.0f;
    const StereoBuffer wet = SmallRoom(x, 0.5f);
    ASSERT_EQ(wet.left.size(), x.size());
    ASSERT_EQ(wet.right.size(), x.size());
    auto energy = [](const std::vector<float>& v, size_t a, size_t b) {
        double e = 0;
        for (size_t i = a; i < b; ++i) e += double(v[i]) * v[i];
        return e;
    };
    // Nothing before the first echo, a tail after it, and it dies away.
    EXPECT_LT(energy(wet.left, 0, 1000 + 400), 1e-20);
    const double early = energy(wet.left, 2000, 12000), late = energy(wet.left, 100000, 110000);
    EXPECT_GT(early, 1e-4);
    EXPECT_LT(late, early * 1e-3);
    EXPECT_NE(wet.left, wet.right);  // decorrelated sides
    for (float v : wet.left) ASSERT_TRUE(std::isfinite(v));
}

TEST(ReverbTest, EmptyInputGivesEmptyOutput) {
    const StereoBuffer wet = SmallRoom({}, 0.2f);
    EXPECT_TRUE(wet.left.empty());
    EXPECT_TRUE(wet.right.empty());
}

}  // namespace
}  // namespace songd::engine::synth
