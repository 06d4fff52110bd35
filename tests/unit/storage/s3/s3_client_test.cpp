// S3Client parts that need no server: addressing, presigned URLs, XML, bad configuration.

#include "storage/s3/s3_client.h"

#include <gtest/gtest.h>

#include "core/error.h"
#include "storage/s3/s3_xml.h"

namespace songd::storage::s3 {
namespace {

core::Config S3Config(std::string endpoint, std::string bucket, bool force_path_style) {
    core::Config config;
    config.s3_enabled = true;
    config.s3_bucket = std::move(bucket);
    config.s3_region = "eu-west-1";
    config.s3_access_key = "AKIDEXAMPLE";
    config.s3_secret_key = "K7MDENGbPxRfiCYzz";
    config.s3_endpoint = std::move(endpoint);
    config.s3_force_path_style = force_path_style;
    return config;
}

struct AddressCase {
    const char* id;
    const char* endpoint;
    const char* bucket;
    bool force;
    bool path_style;
    const char* url_prefix;  ///< of PresignGet("k")
};

TEST(S3ClientAddressing, PathStyleWhenForcedOrWhenTheHostCannotCarryTheBucket) {
    const AddressCase cases[] = {
        {"aws", "", "songs", false, false, "https://songs.s3.eu-west-1.amazonaws.com/k?"},
        {"aws-forced", "", "songs", true, true, "https://s3.eu-west-1.amazonaws.com/songs/k?"},
        {"aws-dotted-bucket", "", "a.b", false, true, "https://s3.eu-west-1.amazonaws.com/a.b/k?"},
        {"ipv4", "http://127.0.0.1:9000", "songs", false, true, "http://127.0.0.1:9000/songs/k?"},
        {"ipv6", "http://[::1]:9000", "songs", false, true, "http://[::1]:9000/songs/k?"},
        {"localhost", "http://localhost:4568/", "songs", false, true,
         "http://localhost:4568/songs/k?"},
        {"named-host", "https://minio.example.com", "songs", false, false,
         "https://songs.minio.example.com/k?"},
        {"named-host-forced", "https://minio.example.com", "songs", true, true,
         "https://minio.example.com/songs/k?"},
    };
    for (const AddressCase& c : cases) {
        SCOPED_TRACE(c.id);
        S3Client client(S3Config(c.endpoint, c.bucket, c.force));
        EXPECT_EQ(client.path_style(), c.path_style);
        EXPECT_TRUE(client.PresignGet("k").starts_with(c.url_prefix)) << client.PresignGet("k");
    }
}

TEST(S3ClientPresign, CarriesExpiryDispositionAndToken) {
    core::Config config = S3Config("", "songs", false);
    config.s3_presign_expires = 900;
    config.s3_session_token = "SESSION/TOKEN+1=";
    S3Client client(config);
    std::string url = client.PresignGet(
        "songs/j/output_fixed.wav",
        {.content_disposition = DownloadDisposition("j", "wav"), .now_seconds = 1700000000});
    EXPECT_TRUE(
        url.starts_with("https://songs.s3.eu-west-1.amazonaws.com/songs/j/output_fixed.wav?"));
    EXPECT_NE(url.find("X-Amz-Expires=900&"), std::string::npos);
    EXPECT_NE(url.find("X-Amz-Date=20231114T221320Z"), std::string::npos);
    EXPECT_NE(url.find("X-Amz-Security-Token=SESSION%2FTOKEN%2B1%3D"), std::string::npos);
    EXPECT_NE(url.find("response-content-disposition=attachment%3B%20filename%3D%22song-j.wav%22"),
              std::string::npos);
    EXPECT_EQ(url.find("K7MDENG"), std::string::npos);  // the secret never leaves
    // Same inputs, same URL: presigning is a pure function of its inputs.
    EXPECT_EQ(url, client.PresignGet("songs/j/output_fixed.wav",
                                     {.content_disposition = DownloadDisposition("j", "wav"),
                                      .now_seconds = 1700000000}));
}

TEST(S3ClientKeys, JobKeyAndUrlFollowTheStorageLayout) {
    core::Config config = S3Config("", "songs", false);
    config.s3_prefix = "prod/songs/";
    S3Client client(config);
    EXPECT_EQ(client.JobObjectKey("abc"), "prod/songs/abc/output_fixed.wav");
    EXPECT_EQ(client.S3Url(client.JobObjectKey("abc")),
              "s3://songs/prod/songs/abc/output_fixed.wav");
    EXPECT_EQ(DownloadDisposition("abc", "mp3"), "attachment; filename=\"song-abc.mp3\"");
    EXPECT_THROW(DownloadDisposition("a b", "wav"), core::Error);
    EXPECT_THROW(DownloadDisposition("abc", "wav\r\nx"), core::Error);
}

struct RetryCase {
    const char* id;
    long status;
    const char* code;
    bool retry;
};

TEST(S3ClientRetry, RetriesOutagesAndThrottlingButNeverRefusals) {
    const RetryCase cases[] = {
        {"500", 500, "InternalError", true},
        {"502", 502, "BadGateway", true},
        {"503-slowdown", 503, "SlowDown", true},
        {"504", 504, "GatewayTimeout", true},
        {"429", 429, "TooManyRequests", true},
        {"400-request-timeout", 400, "RequestTimeout", true},
        {"200-internal-error-body", 200, "InternalError", true},
        {"403-signature", 403, "SignatureDoesNotMatch", false},
        {"403-access-key", 403, "InvalidAccessKeyId", false},
        {"403-denied", 403, "AccessDenied", false},
        {"403-skew", 403, "RequestTimeTooSkewed", false},
        {"400-bad-digest", 400, "BadDigest", false},
        {"404-no-key", 404, "NoSuchKey", false},
        {"404-no-bucket", 404, "NoSuchBucket", false},
        {"501", 501, "NotImplemented", false},
        {"301-region", 301, "PermanentRedirect", false},
    };
    for (const RetryCase& c : cases) {
        EXPECT_EQ(IsRetryableS3Error(c.status, c.code), c.retry) << c.id;
    }
}

TEST(S3ClientRetry, DefaultPolicyIsFiveAttemptsBackingOffFrom200MsTo10s) {
    // The schedule itself (full jitter under these ceilings) is net::Retrier's, tested there.
    const ClientOptions options;
    EXPECT_EQ(options.retry.max_attempts, 5);
    const int64_t expected[] = {200, 400, 800, 1600, 3200, 6400, 10000, 10000};
    for (int i = 0; i < 8; ++i) EXPECT_EQ(options.retry.Ceiling(i).count(), expected[i]) << i;
    EXPECT_EQ(options.timeouts.connect, std::chrono::milliseconds(10'000));
    EXPECT_EQ(options.timeouts.total, std::chrono::milliseconds(0));  // big uploads take time
    EXPECT_EQ(options.timeouts.stall, std::chrono::seconds(60));
}

TEST(S3ClientList, ParsesPagesAndDecodesUrlEncodedKeys) {
    const std::string encoded =
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?><ListBucketResult>"
        "<Name>songs</Name><Prefix>songs%2F</Prefix><KeyCount>2</KeyCount>"
        "<EncodingType>url</EncodingType><IsTruncated>true</IsTruncated>"
        "<NextContinuationToken>1ueGcxLPRx1Tr/XYExHnhbYLgveDs2J/wm36Hy4vbOwM=</"
        "NextContinuationToken>"
        "<Contents><Key>songs/a+b%2Bc%25%E2%82%AC</Key><LastModified>2026-11-20T10:00:00.000Z"
        "</LastModified><ETag>&quot;abc&quot;</ETag><Size>42</Size></Contents>"
        "<Contents><Key>songs/x%01y</Key><Size>0</Size></Contents></ListBucketResult>";
    ListPage page = ParseListObjectsV2(encoded);
    ASSERT_EQ(page.objects.size(), 2u);
    EXPECT_EQ(page.objects[0].key, "songs/a b+c%\xe2\x82\xac");
    EXPECT_EQ(page.objects[0].size, 42);
    EXPECT_EQ(page.objects[0].etag, "\"abc\"");
    EXPECT_EQ(page.objects[0].last_modified_ms, 1795168800000);
    EXPECT_EQ(page.objects[1].key, std::string("songs/x\x01y"));
    EXPECT_EQ(page.next_continuation_token, "1ueGcxLPRx1Tr/XYExHnhbYLgveDs2J/wm36Hy4vbOwM=");

    // A server that ignores encoding-type sends raw keys: nothing is decoded.
    ListPage raw = ParseListObjectsV2(
        "<ListBucketResult><IsTruncated>false</IsTruncated>"
        "<Contents><Key>songs/100%25 a+b</Key><Size>1</Size></Contents></ListBucketResult>");
    ASSERT_EQ(raw.objects.size(), 1u);
    EXPECT_EQ(raw.objects[0].key, "songs/100%25 a+b");
    EXPECT_TRUE(raw.next_continuation_token.empty());

    EXPECT_THROW(ParseListObjectsV2("<Error><Code>x</Code></Error>"), core::Error);
    EXPECT_THROW(ParseListObjectsV2("<ListBucketResult><IsTruncated>true</IsTruncated>"
                                    "</ListBucketResult>"),
                 core::Error);
}

TEST(S3Xml, FindsElementsByExactNameAndDecodesText) {
    const std::string xml =
        "<?xml version=\"1.0\"?>\n<ListBucketResult><KeyCount>2</KeyCount>"
        "<Contents><Key>a &amp; b&#x2F;&#233;</Key><Size>3</Size></Contents>"
        "<Contents><Key>c&lt;d&gt;&quot;&apos;</Key><Size>4</Size></Contents>"
        "<IsTruncated>false</IsTruncated><Empty/></ListBucketResult>";
    EXPECT_EQ(XmlRootName(xml), "ListBucketResult");
    auto contents = XmlElements(xml, "Contents");
    ASSERT_EQ(contents.size(), 2u);
    EXPECT_EQ(XmlText(contents[0], "Key"), "a & b/\xc3\xa9");
    EXPECT_EQ(XmlText(contents[1], "Key"), "c<d>\"'");
    EXPECT_EQ(XmlText(xml, "KeyCount"), "2");
    EXPECT_EQ(XmlElements(xml, "Key").size(), 2u);  // not confused with KeyCount
    EXPECT_EQ(XmlText(xml, "Empty"), "");
    EXPECT_EQ(XmlText(xml, "Missing"), std::nullopt);
    EXPECT_EQ(XmlDecode(XmlEscape("<a href='x'>&\"\r</a>")), "<a href='x'>&\"\r</a>");
    EXPECT_EQ(XmlRootName("<Error><Code>SlowDown</Code></Error>"), "Error");
    EXPECT_EQ(XmlRootName(""), "");
}

}  // namespace
}  // namespace songd::storage::s3
