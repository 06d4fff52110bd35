// core/text.h and core/crypto.h: the one copy of case, trim, hex, percent encoding, SHA-256,
// HMAC-SHA256 and constant-time comparison every folder uses.

#include <gtest/gtest.h>

#include "core/crypto.h"
#include "core/text.h"

namespace songd::core {
namespace {

TEST(Text, ToLowerIsAsciiOnly) {
    EXPECT_EQ(ToLower("Content-TYPE"), "content-type");
    EXPECT_EQ(ToLower("\xc3\x89t\xc3\xa9"), "\xc3\x89t\xc3\xa9");  // UTF-8 bytes untouched
}

TEST(Text, TrimTakesAsciiWhiteSpaceFromBothEnds) {
    EXPECT_EQ(Trim(" \t v1,abc \r\n"), "v1,abc");
    EXPECT_EQ(Trim("\v\fx y\f"), "x y");
    EXPECT_EQ(Trim("   "), "");
    EXPECT_EQ(Trim(""), "");
}

TEST(Text, CollapseWhitespaceMakesOneLine) {
    EXPECT_EQ(CollapseWhitespace("  a \t b\r\n  c  "), "a b c");
    EXPECT_EQ(CollapseWhitespace("FATAL:  password\nauthentication failed\n"),
              "FATAL: password authentication failed");
    EXPECT_EQ(CollapseWhitespace(" \n "), "");
    EXPECT_EQ(CollapseWhitespace("x"), "x");
}

TEST(Text, HexEncodeIsLowercase) {
    EXPECT_EQ(HexEncode(std::string("\x00\x01\xab\xff", 4)), "0001abff");
    EXPECT_EQ(HexEncode(""), "");
}

TEST(Text, UrlEncodeKeepsOnlyUnreservedCharacters) {
    EXPECT_EQ(UrlEncode("AZaz09-._~"), "AZaz09-._~");
    EXPECT_EQ(UrlEncode("a b/c+d=e&\xe2\x82\xac"), "a%20b%2Fc%2Bd%3De%26%E2%82%AC");
    EXPECT_EQ(UrlEncode("a b/c", /*keep_slash=*/true), "a%20b/c");
}

TEST(Text, UrlDecodeRoundTripsAndRejectsMalformedEscapes) {
    std::string out;
    ASSERT_TRUE(UrlDecode("a%20b+c%2f%E2%82%AC", out));
    EXPECT_EQ(out, "a b+c/\xe2\x82\xac");
    for (std::string bad : {"%", "%2", "a%zz", "%g0", "x%"})
        EXPECT_FALSE(UrlDecode(bad, out)) << bad;
    std::string all;
    for (int c = 0; c < 256; ++c) all += static_cast<char>(c);
    ASSERT_TRUE(UrlDecode(UrlEncode(all), out));
    EXPECT_EQ(out, all);
}

TEST(Crypto, Sha256MatchesFips180Vectors) {
    EXPECT_EQ(Sha256Hex("abc"), "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
    EXPECT_EQ(Sha256Hex(""), "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
    EXPECT_EQ(Sha256("abc").size(), 32u);
}

TEST(Crypto, HmacSha256MatchesRfc4231) {
    // RFC 4231 test cases 1 and 2.
    EXPECT_EQ(HexEncode(HmacSha256(std::string(20, '\x0b'), "Hi There")),
              "b0344c61d8db38535ca8afceaf0bf12b881dc200c9833da726e9376c2e32cff7");
    EXPECT_EQ(HexEncode(HmacSha256("Jefe", "what do ya want for nothing?")),
              "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843");
}

TEST(Crypto, ConstantTimeEqualsComparesWholeStrings) {
    EXPECT_TRUE(ConstantTimeEquals("secret", "secret"));
    EXPECT_FALSE(ConstantTimeEquals("secret", "secreT"));
    EXPECT_FALSE(ConstantTimeEquals("secret", "secret2"));
    EXPECT_TRUE(ConstantTimeEquals("", ""));
}

}  // namespace
}  // namespace songd::core
