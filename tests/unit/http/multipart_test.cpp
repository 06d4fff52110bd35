// multipart/form-data parsing for uploads: boundaries, parts, and malformed bodies.
#include "http/multipart.h"

#include <gtest/gtest.h>

#include "core/error.h"

namespace songd::http {
namespace {

std::string Body(const std::string& boundary, const std::vector<std::string>& parts,
                 bool close = true) {
    std::string out;
    for (const auto& p : parts) out += "--" + boundary + "\r\n" + p + "\r\n";
    if (close) out += "--" + boundary + "--\r\n";
    return out;
}

void ExpectMalformed(std::string_view body, std::string_view boundary, const std::string& why) {
    try {
        ParseMultipart(body, boundary);
        FAIL() << "accepted: " << why;
    } catch (const core::Error& e) {
        EXPECT_EQ(e.code(), core::ErrorCode::kMalformedRequest) << why;
        EXPECT_NE(std::string(e.what()).find("multipart"), std::string::npos) << e.what();
    }
}

TEST(MultipartBoundary, ReadsTheBoundaryParameter) {
    EXPECT_EQ(*MultipartBoundary("multipart/form-data; boundary=abc123"), "abc123");
    EXPECT_EQ(*MultipartBoundary("Multipart/Form-Data; charset=utf-8; boundary=\"a b:c\""),
              "a b:c");
    EXPECT_FALSE(MultipartBoundary("audio/wav"));
    EXPECT_FALSE(MultipartBoundary(""));
    EXPECT_THROW(MultipartBoundary("multipart/form-data"), core::Error);
    EXPECT_THROW(MultipartBoundary("multipart/form-data; boundary="), core::Error);
    EXPECT_THROW(MultipartBoundary("multipart/form-data; boundary=" + std::string(71, 'x')),
                 core::Error);
}

TEST(Multipart, SplitsFieldsAndFiles) {
    const std::string binary("RIFF\0\r\n--not-it\r\n\x01\xff", 20);
    std::string body =
        "preamble is ignored\r\n" +
        Body("XyZ", {"Content-Disposition: form-data; name=\"title\"\r\n\r\nhello",
                     "Content-Disposition: form-data; name=\"file\"; "
                     "filename=\"a \\\"b\\\".wav\"\r\nContent-Type: audio/wav\r\n\r\n" +
                         binary});
    auto parts = ParseMultipart(body, "XyZ");
    ASSERT_EQ(parts.size(), 2u);
    EXPECT_EQ(parts[0].name, "title");
    EXPECT_FALSE(parts[0].has_filename);
    EXPECT_EQ(parts[0].body, "hello");
    EXPECT_EQ(parts[1].name, "file");
    EXPECT_EQ(parts[1].filename, "a \"b\".wav");
    EXPECT_EQ(parts[1].content_type, "audio/wav");
    EXPECT_EQ(std::string(parts[1].body), binary);  // binary, CRLFs and NULs intact
}

TEST(Multipart, KeepsTwoFilesApartAndEmptyParts) {
    std::string body = Body("b", {"Content-Disposition: form-data; name=\"file\"\r\n\r\none",
                                  "Content-Disposition: form-data; name=\"file\"\r\n\r\ntwo",
                                  "Content-Disposition: form-data; name=\"empty\"\r\n\r\n"});
    auto parts = ParseMultipart(body, "b");
    ASSERT_EQ(parts.size(), 3u);
    EXPECT_EQ(parts[0].body, "one");
    EXPECT_EQ(parts[1].body, "two");
    EXPECT_EQ(parts[2].body, "");
    EXPECT_EQ(parts[2].name, "empty");
}

TEST(Multipart, NoPartsIsAnEmptyList) { EXPECT_TRUE(ParseMultipart("--b--\r\n", "b").empty()); }

TEST(Multipart, RefusesMalformedBodies) {
    const std::string part = "Content-Disposition: form-data; name=\"file\"\r\n\r\ndata";
    ExpectMalformed("no boundary here at all", "b", "no boundary line");
    ExpectMalformed(Body("other", {part}), "b", "a different boundary");
    ExpectMalformed(Body("b", {part}, /*close=*/false), "b", "no closing boundary");
    ExpectMalformed("--b\r\nContent-Disposition: form-data; name=\"file\"\r\ndata", "b",
                    "headers never end");
    ExpectMalformed("--bjunk\r\n" + part + "\r\n--b--", "b", "text after the boundary");
    ExpectMalformed("--b\r\nno colon header\r\n\r\ndata\r\n--b--", "b", "a header without ':'");
    ExpectMalformed("--b\r\nContent-Disposition: attachment; name=\"file\"\r\n\r\nx\r\n--b--", "b",
                    "not form-data");
    ExpectMalformed("--b\r\nContent-Disposition: form-data; name=\"fi\r\n\r\nx\r\n--b--", "b",
                    "an unterminated quote");
    ExpectMalformed("", "b", "an empty body");
}

}  // namespace
}  // namespace songd::http
