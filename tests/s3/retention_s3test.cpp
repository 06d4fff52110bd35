// Retention on the real binary with S3 (s3rver): due jobs lose their S3 copies too, even when
// the local file was already gone; unowned old objects are swept, owned and young ones kept;
// a dry run changes neither the disk, the bucket nor the database.
#include <gtest/gtest.h>

#include <boost/json.hpp>
#include <set>

#include "core/clock.h"
#include "core/ids.h"
#include "harness/http_client.h"
#include "harness/reference_signals.h"
#include "harness/retention_support.h"
#include "harness/songd_process.h"
#include "s3_test_server.h"
#include "storage/s3/s3_client.h"

namespace songd::test {
namespace {

namespace fs = std::filesystem;
constexpr int64_t kDay = core::kMillisPerDay;
constexpr int64_t kHour = core::kMillisPerHour;
constexpr const char* kBucket = "songs";

int64_t Iso(const std::string& text) {
    auto parsed = core::ParseIso8601(text);
    EXPECT_TRUE(parsed) << text;
    return parsed.value_or(0);
}

class RetentionS3Test : public ::testing::Test {
  protected:
    RetentionS3Test() : server_({kBucket}), client_(server_.Config(kBucket, false)) {}

    Env S3Env() const {
        const core::Config c = server_.Config(kBucket, false);
        return Env{{"S3_ENABLED", "true"},
                   {"S3_BUCKET", c.s3_bucket},
                   {"S3_REGION", c.s3_region},
                   {"S3_ACCESS_KEY", c.s3_access_key},
                   {"S3_SECRET_KEY", c.s3_secret_key},
                   {"S3_PREFIX", c.s3_prefix},
                   {"S3_ENDPOINT", c.s3_endpoint},
                   {"S3_FORCE_PATH_STYLE", "true"},
                   {"CLEANUP_ENABLED", "false"}};
    }
    Env CommandEnv(const SongdProcess& songd, Env extra = {}) const {
        for (const auto& [k, v] : S3Env()) extra.try_emplace(k, v);
        extra.try_emplace("OUTPUT_DIR", songd.output_dir().string());
        extra.try_emplace("DATABASE_URL", "sqlite:" + (songd.dir() / "data" / "songd.db").string());
        extra.try_emplace("LOG_FORMAT", "text");
        return extra;
    }
    /// key → size and ETag of every object in the bucket.
    std::map<std::string, std::string> Bucket() {
        std::map<std::string, std::string> out;
        client_.ForEachObject("", [&](const storage::s3::ObjectInfo& o) {
            out[o.key] = std::to_string(o.size) + " " + o.etag;
            return true;
        });
        return out;
    }
    std::set<std::string> KeysOf(const std::string& job_id) {
        std::set<std::string> keys;
        client_.ForEachObject("songs/" + job_id + "/", [&](const storage::s3::ObjectInfo& o) {
            keys.insert(o.key);
            return true;
        });
        return keys;
    }
    void PutObject(const std::string& key, const std::string& content) {
        const fs::path tmp = fs::temp_directory_path() / ("songd-put-" + core::NewJobId());
        WriteFile(tmp, content);
        client_.PutObjectFromFile(key, tmp);
        fs::remove(tmp);
    }

    songd::testing::S3TestServer server_;
    storage::s3::S3Client client_;
};

TEST_F(RetentionS3Test, ADueJobIsGoneLocallyAndInS3AndOneNotYetDueIsUntouched) {
    // Acceptance 1 and 2. `due` completed with a 29-day retention, `kept` with 31 days;
    // the pass runs as of 30 days from now. `local_gone` is due too, but its local file
    // was deleted by hand first: its S3 copy must still go.
    Env env = S3Env();
    env["FILE_RETENTION_DAYS"] = "29";
    SongdProcess songd(env);
    songd.Start();
    const std::string due = CompleteJob(songd, /*wait_s3=*/true);
    const std::string local_gone = CompleteJob(songd, true);
    ASSERT_EQ(songd.Stop(), 0);
    songd.SetEnv("FILE_RETENTION_DAYS", "31");
    songd.Start();
    const std::string kept = CompleteJob(songd, true);
    for (const auto& id : {due, local_gone, kept}) {
        ASSERT_FALSE(id.empty());
        ASSERT_TRUE(KeysOf(id).count("songs/" + id + "/output_fixed.wav")) << id;
        ASSERT_EQ(StatusField(songd, id, "s3_url"),
                  std::string("s3://") + kBucket + "/songs/" + id + "/output_fixed.wav");
    }
    fs::remove_all(songd.output_dir() / local_gone);
    const int64_t as_of = core::NowMillis() + 30 * kDay;
    ASSERT_LT(Iso(StatusField(songd, due, "expires_at")), as_of - kDay + kHour);
    ASSERT_GT(Iso(StatusField(songd, kept, "expires_at")), as_of + kDay - kHour);
    const auto kept_keys = KeysOf(kept);
    const auto kept_files = TreeDigest(songd.output_dir() / kept);
    const auto bucket_before = Bucket();

    auto [code, output] = songd.RunCommand({"cleanup", "--as-of", core::FormatIso8601(as_of)},
                                           CommandEnv(songd, {{"FILE_RETENTION_DAYS", "30"}}));
    EXPECT_EQ(code, 0) << output;
    EXPECT_NE(output.find("2 jobs expired"), std::string::npos) << output;

    for (const auto& id : {due, local_gone}) {
        SCOPED_TRACE(id);
        EXPECT_FALSE(fs::exists(songd.output_dir() / id));
        EXPECT_TRUE(KeysOf(id).empty());
        EXPECT_EQ(StatusField(songd, id, "status"), "expired");
        auto gone = Http("GET", songd.Url("/api/v1/download/" + id));
        EXPECT_EQ(gone.status, 410) << gone.body;
        EXPECT_TRUE(gone.Header("location").empty());
    }
    EXPECT_EQ(StatusField(songd, kept, "status"), "completed");
    EXPECT_EQ(KeysOf(kept), kept_keys);
    EXPECT_EQ(TreeDigest(songd.output_dir() / kept), kept_files);
    EXPECT_EQ(Http("GET", songd.Url("/api/v1/download/" + kept)).status, 302);
    // Nothing else in the bucket was touched.
    auto bucket_after = Bucket();
    for (const auto& [key, digest] : bucket_before) {
        const bool of_expired =
            key.find(due) != std::string::npos || key.find(local_gone) != std::string::npos;
        EXPECT_EQ(bucket_after.count(key), of_expired ? 0u : 1u) << key;
    }
}

TEST_F(RetentionS3Test, OrphanObjectsOlderThanTheRetentionGoOwnedAndYoungOnesStay) {
    // s3rver stamps objects with the real time, so "old" is reached with --as-of in the
    // future; "young" is the same object seen from today.
    Env env = S3Env();
    env["FILE_RETENTION_DAYS"] = "60";  // the owned job stays live through the second pass
    SongdProcess songd(env);
    songd.Start();
    const std::string owned = CompleteJob(songd, /*wait_s3=*/true);
    ASSERT_FALSE(owned.empty());
    const std::string extra_owned_key = "songs/" + owned + "/extra.bin";
    const std::string orphan_key = "songs/" + core::NewJobId() + "/output_fixed.wav";
    const std::string legacy_key = "songs/from-the-old-backend.wav";
    const std::string outside_key = "elsewhere/" + core::NewJobId() + "/output_fixed.wav";
    PutObject(extra_owned_key, "owned");
    PutObject(orphan_key, "orphan");
    PutObject(legacy_key, "legacy");
    PutObject(outside_key, "not ours");
    const auto owned_keys = KeysOf(owned);
    ASSERT_TRUE(owned_keys.count("songs/" + owned + "/output_fixed.wav"));
    ASSERT_TRUE(owned_keys.count(extra_owned_key));
    const auto owned_files = TreeDigest(songd.output_dir() / owned);
    const Env command_env = CommandEnv(songd, {{"FILE_RETENTION_DAYS", "30"}});

    // Today: every unowned object is young, so all stay.
    auto before = Bucket();
    auto [code, output] = songd.RunCommand({"cleanup"}, command_env);
    EXPECT_EQ(code, 0) << output;
    EXPECT_EQ(Bucket(), before);
    EXPECT_NE(output.find("0 orphan objects"), std::string::npos) << output;

    // 40 days on: the unowned objects under S3_PREFIX are older than 30 days and go; the
    // live job (60-day retention) keeps every object, and keys outside the prefix stay.
    auto [code2, output2] = songd.RunCommand(
        {"cleanup", "--as-of", core::FormatIso8601(core::NowMillis() + 40 * kDay)}, command_env);
    EXPECT_EQ(code2, 0) << output2;
    auto after = Bucket();
    EXPECT_EQ(after.count(orphan_key), 0u);
    EXPECT_EQ(after.count(legacy_key), 0u);
    EXPECT_EQ(after.count(outside_key), 1u);
    EXPECT_EQ(KeysOf(owned), owned_keys);
    EXPECT_EQ(TreeDigest(songd.output_dir() / owned), owned_files);
    EXPECT_EQ(StatusField(songd, owned, "status"), "completed");
    EXPECT_NE(output2.find("deleted orphan s3://songs/" + orphan_key), std::string::npos)
        << output2;
    EXPECT_NE(output2.find("2 orphan objects"), std::string::npos) << output2;
}

TEST_F(RetentionS3Test, DryRunChangesNeitherDiskNorBucketNorDatabase) {
    SongdProcess songd(S3Env());
    songd.Start();
    const std::string a = CompleteJob(songd, /*wait_s3=*/true);
    const std::string b = CompleteJob(songd, true);
    ASSERT_EQ(songd.Stop(), 0);
    const fs::path orphan_folder = songd.output_dir() / core::NewJobId();
    WriteFile(orphan_folder / "output_fixed.wav", "old");
    SetTreeMtime(orphan_folder, core::NowMillis() - 40 * kDay);
    PutObject("songs/" + core::NewJobId() + "/output_fixed.wav", "orphan");
    const fs::path db = songd.dir() / "data" / "songd.db";
    const auto files = TreeDigest(songd.output_dir());
    const auto bucket = Bucket();
    const std::string rows = DumpDatabase(db);
    // Each song has its WAV and its preview in the bucket.
    ASSERT_EQ(bucket.size(), 5u) << "two songs with their previews, and the orphan";

    const std::string as_of = core::FormatIso8601(core::NowMillis() + 45 * kDay);
    auto [code, output] =
        songd.RunCommand({"cleanup", "--dry-run", "--as-of", as_of}, CommandEnv(songd));
    EXPECT_EQ(code, 0) << output;
    EXPECT_EQ(TreeDigest(songd.output_dir()), files);
    EXPECT_EQ(Bucket(), bucket);
    EXPECT_EQ(DumpDatabase(db), rows);
    EXPECT_NE(output.find("would expire job " + a), std::string::npos) << output;
    EXPECT_NE(output.find("would expire job " + b), std::string::npos) << output;
    EXPECT_NE(output.find("dry run: 2 jobs expired"), std::string::npos) << output;
    EXPECT_NE(output.find("1 orphan folders, 1 orphan objects"), std::string::npos) << output;

    // The real pass then does what the dry run said.
    auto [real_code, real_output] =
        songd.RunCommand({"cleanup", "--as-of", as_of}, CommandEnv(songd));
    EXPECT_EQ(real_code, 0) << real_output;
    EXPECT_TRUE(Bucket().empty()) << real_output;
    EXPECT_TRUE(fs::is_empty(songd.output_dir()));
}

TEST_F(RetentionS3Test, AnUploadIsKeptInS3FetchedByAWorkerWithoutItAndExpiredThere) {
    Env env = S3Env();
    env["FILE_RETENTION_DAYS"] = "30";
    SongdProcess songd(env);
    songd.Start();
    const fs::path wav = songd.dir() / "reference.wav";
    WriteMono(wav, DrumLoop(100, 12));
    std::ifstream in(wav, std::ios::binary);
    const std::string bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    auto r = Http("POST", songd.Url("/api/v1/uploads"), {"Content-Type: audio/wav"}, bytes);
    ASSERT_EQ(r.status, 201) << r.body;
    const std::string id(boost::json::parse(r.body).at("upload_id").as_string());
    const std::string key = "songs/uploads/" + id + "/reference.wav";
    ASSERT_EQ(Bucket().count(key), 1u);

    // This node loses its copy (as if the upload had been made on another node): a job that
    // names the upload fetches it back from S3.
    const fs::path local = songd.output_dir() / "uploads" / id / "reference.wav";
    fs::remove(local);
    auto gen =
        Http("POST", songd.Url("/api/v1/generate"), {"Content-Type: application/json"},
             R"({"lyrics":"[00:05.00]Morning light on the water","ref_audio_id":")" + id + "\"}");
    ASSERT_EQ(gen.status, 202) << gen.body;
    const std::string job(boost::json::parse(gen.body).at("job_id").as_string());
    EXPECT_TRUE(WaitFor([&] { return JobStatusName(songd, job) == "completed"; },
                        std::chrono::seconds(120)))
        << JobStatusName(songd, job);
    EXPECT_TRUE(fs::is_regular_file(local));

    auto [code, output] =
        songd.RunCommand({"cleanup", "--as-of", core::FormatIso8601(core::NowMillis() + 31 * kDay)},
                         CommandEnv(songd, {{"FILE_RETENTION_DAYS", "30"}}));
    EXPECT_EQ(code, 0) << output;
    EXPECT_NE(output.find("expired upload " + id), std::string::npos) << output;
    EXPECT_EQ(Bucket().count(key), 0u);
    EXPECT_FALSE(fs::exists(local.parent_path()));
}

}  // namespace
}  // namespace songd::test
