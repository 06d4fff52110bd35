// SigV4 S3 rules that the published vectors do not pin down, and bad input.

#include "storage/s3/sigv4.h"

#include <gtest/gtest.h>

#include "core/error.h"

namespace songd::storage::s3 {
namespace {

SigningContext Context() {
    return SigningContext{.credentials = {"AKIDEXAMPLE", "K7MDENGbPxRfiCYzz", ""},
                          .region = "eu-west-1",
                          .service = "s3",
                          .time_seconds = 1700000000};
}

SigningRequest Get(std::string path) {
    return SigningRequest{.method = "GET",
                          .path = std::move(path),
                          .query = {},
                          .headers = {{"Host", "bucket.s3.eu-west-1.amazonaws.com"}},
                          .payload_hash = std::string(kEmptyPayloadHash)};
}

struct UriCase {
    const char* id;
    const char* path;
    const char* canonical;
};

TEST(Sigv4Rules, CanonicalUriEncodesEachByteOnceAndNeverNormalises) {
    const UriCase cases[] = {
        {"percent-once", "/a%2Fb", "/a%252Fb"},
        {"plus", "/a+b", "/a%2Bb"},
        {"space", "/a b", "/a%20b"},
        {"tilde-kept", "/~x", "/~x"},
        {"double-slash-kept", "/p//q/", "/p//q/"},
        {"dot-segments-kept", "/a/./b/../c", "/a/./b/../c"},
        {"utf8", "/\xc3\xa9", "/%C3%A9"},
        {"reserved", "/!*'();:@&=$,?#[]", "/%21%2A%27%28%29%3B%3A%40%26%3D%24%2C%3F%23%5B%5D"},
    };
    for (const UriCase& c : cases) {
        SCOPED_TRACE(c.id);
        EXPECT_EQ(CanonicalUri(c.path), c.canonical);
        EXPECT_EQ(SignWithHeaders(Get(c.path), Context()).canonical_uri, c.canonical);
    }
}

TEST(Sigv4Rules, CanonicalQuerySortsEncodedPairsAndKeepsEmptyValues) {
    EXPECT_EQ(CanonicalQuery({{"uploads", ""}}), "uploads=");
    EXPECT_EQ(CanonicalQuery({{"prefix", "a/b c+d"}, {"list-type", "2"}}),
              "list-type=2&prefix=a%2Fb%20c%2Bd");
    // Sorted by encoded name, then value; uppercase sorts before lowercase.
    EXPECT_EQ(CanonicalQuery({{"b", "2"}, {"b", "1"}, {"B", "3"}, {"a", ""}}), "B=3&a=&b=1&b=2");
}

TEST(Sigv4Rules, AddsDateHashAndTokenHeadersAndSignsThem) {
    SigningContext context = Context();
    context.credentials.session_token = "tok/en+=";
    HeaderSignature sig = SignWithHeaders(Get("/k"), context);
    EXPECT_EQ(sig.signed_headers, "host;x-amz-content-sha256;x-amz-date;x-amz-security-token");
    EXPECT_EQ(sig.amz_date, "20231114T221320Z");
    ASSERT_EQ(sig.headers.back().first, "Authorization");
    bool has_token = false;
    for (const auto& [name, value] : sig.headers) {
        if (name == "x-amz-security-token") has_token = value == "tok/en+=";
    }
    EXPECT_TRUE(has_token);
    // A different secret changes the signature, the scope does not.
    SigningContext other = context;
    other.credentials.secret_access_key = "K7MDENGbPxRfiCYzy";
    HeaderSignature sig2 = SignWithHeaders(Get("/k"), other);
    EXPECT_NE(sig.signature, sig2.signature);
    EXPECT_EQ(sig.string_to_sign, sig2.string_to_sign);
}

TEST(Sigv4Rules, PresignSignsTokenAndCarriesExpiry) {
    SigningContext context = Context();
    context.credentials.session_token = "T";
    SigningRequest request = Get("/songs/x/output_fixed.wav");
    request.payload_hash = std::string(kUnsignedPayload);
    request.query = {{"response-content-disposition", "attachment; filename=\"song-x.wav\""}};
    QuerySignature sig = SignWithQuery(request, context, 3600);
    EXPECT_NE(sig.canonical_query.find("X-Amz-Security-Token=T"), std::string::npos);
    EXPECT_NE(sig.canonical_query.find("X-Amz-Expires=3600"), std::string::npos);
    EXPECT_NE(sig.canonical_query.find(
                  "response-content-disposition=attachment%3B%20filename%3D%22song-x.wav%22"),
              std::string::npos);
    EXPECT_TRUE(sig.query.ends_with("&X-Amz-Signature=" + sig.signature));
    EXPECT_TRUE(sig.canonical_request.ends_with("\nhost\nUNSIGNED-PAYLOAD"));
}

struct BadCase {
    const char* id;
    SigningRequest request;
    SigningContext context;
};

TEST(Sigv4Rules, RejectsRequestsThatCannotBeSignedCorrectly) {
    SigningContext no_secret = Context();
    no_secret.credentials.secret_access_key.clear();
    SigningContext bad_region = Context();
    bad_region.region = "eu/west";
    SigningRequest no_host = Get("/k");
    no_host.headers.clear();
    SigningRequest relative = Get("k");
    SigningRequest bad_hash = Get("/k");
    bad_hash.payload_hash = "ABC";
    SigningRequest crlf = Get("/k");
    crlf.headers.emplace_back("x-amz-meta-a", "x\r\ny");
    SigningRequest other_date = Get("/k");
    other_date.headers.emplace_back("X-Amz-Date", "20000101T000000Z");
    SigningRequest other_hash = Get("/k");
    other_hash.headers.emplace_back("x-amz-content-sha256", std::string(kUnsignedPayload));
    SigningRequest has_auth = Get("/k");
    has_auth.headers.emplace_back("Authorization", "x");
    SigningRequest lower_method = Get("/k");
    lower_method.method = "get";
    const BadCase cases[] = {
        {"no-secret", Get("/k"), no_secret},
        {"bad-region", Get("/k"), bad_region},
        {"no-host", no_host, Context()},
        {"relative-path", relative, Context()},
        {"bad-hash", bad_hash, Context()},
        {"crlf-in-header", crlf, Context()},
        {"other-date", other_date, Context()},
        {"other-hash", other_hash, Context()},
        {"has-authorization", has_auth, Context()},
        {"lower-method", lower_method, Context()},
    };
    for (const BadCase& c : cases) {
        SCOPED_TRACE(c.id);
        try {
            SignWithHeaders(c.request, c.context);
            ADD_FAILURE() << "signed a bad request";
        } catch (const core::Error& e) {
            EXPECT_EQ(e.code(), core::ErrorCode::kInvalidInput);
            EXPECT_NE(std::string(e.what()).find("SigV4"), std::string::npos);
            // The secret never appears in an error message.
            EXPECT_EQ(std::string(e.what()).find("K7MDENG"), std::string::npos) << e.what();
        }
    }
}

TEST(Sigv4Rules, PresignRejectsBadExpiryAndAuthParametersInQuery) {
    SigningRequest request = Get("/k");
    for (int64_t expires : {int64_t{0}, int64_t{-1}, kMaxPresignSeconds + 1}) {
        EXPECT_THROW(SignWithQuery(request, Context(), expires), core::Error) << expires;
    }
    EXPECT_NO_THROW(SignWithQuery(request, Context(), kMaxPresignSeconds));
    request.query = {{"X-Amz-Signature", "x"}};
    EXPECT_THROW(SignWithQuery(request, Context(), 60), core::Error);
}

TEST(Sigv4Rules, UriDecodeRejectsMalformedEscapes) {
    EXPECT_EQ(UriDecode("a%20b+c%2f"), "a b+c/");
    EXPECT_THROW(UriDecode("a%2"), core::Error);
    EXPECT_THROW(UriDecode("a%zz"), core::Error);
}

}  // namespace
}  // namespace songd::storage::s3
