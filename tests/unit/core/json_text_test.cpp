#include "core/json_text.h"

#include <gtest/gtest.h>

#include <boost/json.hpp>
#include <charconv>
#include <cmath>
#include <cstring>
#include <limits>
#include <random>

namespace songd::core {
namespace {

namespace json = boost::json;

TEST(JsonText, DoublesReadAsPeopleWriteThem) {
    EXPECT_EQ(JsonText(json::object{{"d", 95.1}}), R"({"d":95.1})");
    EXPECT_EQ(JsonText(json::value(285.0)), "285.0");
    EXPECT_EQ(JsonText(json::value(0.05)), "0.05");
    EXPECT_EQ(JsonText(json::value(-2.5)), "-2.5");
    EXPECT_EQ(JsonText(json::value(0.0)), "0.0");
    EXPECT_EQ(JsonText(json::value(1e300)), "1e+300");
    EXPECT_EQ(JsonText(json::value(std::numeric_limits<double>::quiet_NaN())), "null");
    EXPECT_EQ(JsonText(json::value(std::numeric_limits<double>::infinity())), "null");
}

TEST(JsonText, EverythingElseIsBoostJsonsOwnText) {
    json::value doc = json::parse(
        R"({"s":"line\nbreak \"quoted\" \u00e9 \u0001","i":-42,"u":18446744073709551615,)"
        R"("b":true,"n":null,"a":[1,"x",[],{}],"o":{"k":{"deep":[false]}}})");
    EXPECT_EQ(JsonText(doc), json::serialize(doc));
}

TEST(JsonText, RandomDoublesReadBackExactly) {
    std::mt19937_64 rng(7);
    std::uniform_int_distribution<uint64_t> bits;
    int checked = 0;
    for (int i = 0; i < 20000; ++i) {
        double d = 0;
        uint64_t b = bits(rng);
        std::memcpy(&d, &b, sizeof d);
        if (!std::isfinite(d)) continue;
        const std::string text = JsonText(json::array{d});
        // Valid JSON with a float in it ...
        ASSERT_TRUE(json::parse(text).as_array()[0].is_double()) << text;
        // ... whose digits are exactly d (read with from_chars: Boost.JSON 1.81's own parser
        // may be one unit in the last place off, strtod-exact parsers are not).
        double back = 0;
        const std::string number = text.substr(1, text.size() - 2);
        auto [end, ec] = std::from_chars(number.data(), number.data() + number.size(), back);
        ASSERT_TRUE(ec == std::errc() && end == number.data() + number.size()) << text;
        ASSERT_EQ(back, d) << text;
        ++checked;
    }
    EXPECT_GT(checked, 19000);
}

}  // namespace
}  // namespace songd::core
