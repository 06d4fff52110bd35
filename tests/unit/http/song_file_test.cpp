// Song files served from an open descriptor: a delete after the open changes nothing sent, and
// a derived format encoded for a job that expired meanwhile is served but not cached.
#include "http/handlers/song_file.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <cmath>
#include <fstream>
#include <vector>

#include "../audio/audio_test_util.h"

namespace songd::http {
namespace {

namespace fs = std::filesystem;

class SongFileTest : public ::testing::Test {
  protected:
    void SetUp() override {
        dir_ = fs::temp_directory_path() /
               ("songd-song-file-" + std::to_string(::getpid()) + "-" +
                ::testing::UnitTest::GetInstance()->current_test_info()->name());
        fs::remove_all(dir_);
        fs::create_directories(dir_);
        wav_ = dir_ / "output_fixed.wav";
        std::vector<float> samples(44100 * 2);
        for (size_t i = 0; i < samples.size(); ++i) {
            samples[i] = 0.3f * static_cast<float>(std::sin(static_cast<double>(i) * 0.01));
        }
        audio::testing::WriteWav(wav_, samples, 2, 44100, SF_FORMAT_WAV | SF_FORMAT_PCM_16);
    }
    void TearDown() override { fs::remove_all(dir_); }

    static std::string ReadAll(const OpenedFile& f) {
        std::string out(f.size, '\0');
        EXPECT_EQ(::pread(f.fd->get(), out.data(), out.size(), 0),
                  static_cast<ssize_t>(out.size()));
        return out;
    }

    fs::path dir_;
    fs::path wav_;
};

TEST_F(SongFileTest, MissingOrNotRegularIsNullopt) {
    EXPECT_FALSE(OpenRegularFile(dir_ / "nothing.wav"));
    EXPECT_FALSE(OpenRegularFile(dir_));
}

TEST_F(SongFileTest, AFileDeletedAfterTheOpenIsStillServedWhole) {
    const std::string bytes = audio::testing::ReadBytes(wav_);
    auto file = OpenRegularFile(wav_);
    ASSERT_TRUE(file);
    EXPECT_EQ(file->size, bytes.size());
    fs::remove_all(dir_);  // retention deletes the job folder
    Request request;
    request.method = "GET";
    Response r = FileResponse(request, *file, "audio/wav", "attachment");
    EXPECT_EQ(r.status, 200);
    ASSERT_TRUE(r.file);
    EXPECT_EQ(r.file->length, bytes.size());
    EXPECT_EQ(ReadAll(*file), bytes);
}

TEST_F(SongFileTest, DerivedFormatOfAJobExpiredMeanwhileIsServedButNotWritten) {
    auto wav = OpenRegularFile(wav_);
    ASSERT_TRUE(wav);
    // Retention deletes the WAV after the download opened it, then marks the job expired.
    fs::remove(wav_);
    const fs::path mp3 = dir_ / "output_fixed.mp3";
    OpenedFile encoded = OpenDerivedFile(*wav, mp3, audio::Format::kMp3, [] { return false; });
    EXPECT_GT(encoded.size, 1000u);
    EXPECT_EQ(ReadAll(encoded).substr(0, 3) == "ID3" || (ReadAll(encoded)[0] & 0xff) == 0xff, true);
    EXPECT_FALSE(fs::exists(mp3));
    EXPECT_FALSE(fs::exists(wav_));
    EXPECT_TRUE(fs::is_empty(dir_)) << "no encoding left behind";
}

TEST_F(SongFileTest, DerivedFormatOfALiveJobIsCachedAndReused) {
    auto wav = OpenRegularFile(wav_);
    ASSERT_TRUE(wav);
    const fs::path flac = dir_ / "output_fixed.flac";
    OpenedFile first = OpenDerivedFile(*wav, flac, audio::Format::kFlac, [] { return true; });
    ASSERT_TRUE(fs::exists(flac));
    EXPECT_EQ(ReadAll(first), audio::testing::ReadBytes(flac));
    bool asked = false;
    OpenedFile second = OpenDerivedFile(*wav, flac, audio::Format::kFlac, [&] {
        asked = true;
        return true;
    });
    EXPECT_FALSE(asked) << "a fresh cached copy is reused, not encoded again";
    EXPECT_EQ(ReadAll(second), ReadAll(first));
}

TEST_F(SongFileTest, ConditionalAndRangeAnswers) {
    auto file = OpenRegularFile(wav_);
    ASSERT_TRUE(file);
    Request request;
    request.method = "GET";
    Response full = FileResponse(request, *file, "audio/wav", "attachment");
    const std::string etag(*full.Header("ETag"));
    request.headers = {{"If-None-Match", etag}};
    EXPECT_EQ(FileResponse(request, *file, "audio/wav", "attachment").status, 304);
    request.headers = {{"Range", "bytes=0-99"}};
    Response part = FileResponse(request, *file, "audio/wav", "attachment");
    EXPECT_EQ(part.status, 206);
    EXPECT_EQ(part.file->length, 100u);
    EXPECT_EQ(part.Header("Content-Range"), "bytes 0-99/" + std::to_string(file->size));
    request.headers = {{"Range", "bytes=" + std::to_string(file->size) + "-"}};
    Response bad = FileResponse(request, *file, "audio/wav", "attachment");
    EXPECT_EQ(bad.status, 416);
    EXPECT_EQ(bad.Header("Content-Range"), "bytes */" + std::to_string(file->size));
    EXPECT_FALSE(bad.file);
}

}  // namespace
}  // namespace songd::http
