// songd_s3_benchmark: S3 upload throughput against s3rver and SigV4 signing throughput.
//
//   build/bench/songd_s3_benchmark [--upload-mib 200] [--repeat 3] [--presign 200000]
//
// Starts s3rver on a free loopback port (tests/s3/server, installed by tests/s3/setup.sh),
// uploads files from /tmp and prints one line per measurement.

#include <malloc.h>

#include <chrono>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <random>
#include <string>

#include "s3_test_server.h"
#include "storage/s3/s3_client.h"
#include "storage/s3/sigv4.h"

namespace fs = std::filesystem;
namespace s3 = songd::storage::s3;
using Clock = std::chrono::steady_clock;

namespace {

constexpr int64_t kMiB = 1 << 20;

void WriteRandomFile(const fs::path& path, int64_t size) {
    std::mt19937 rng(42);
    std::ofstream out(path, std::ios::binary);
    std::string buffer(kMiB, '\0');
    for (int64_t done = 0; done < size; done += kMiB) {
        for (size_t i = 0; i < buffer.size(); i += 4) {
            uint32_t v = rng();
            std::memcpy(buffer.data() + i, &v, 4);
        }
        out.write(buffer.data(),
                  static_cast<std::streamsize>(std::min<int64_t>(kMiB, size - done)));
    }
}

double Seconds(Clock::time_point start) {
    return std::chrono::duration<double>(Clock::now() - start).count();
}

void BenchUpload(s3::S3Client& client, const fs::path& file, int64_t size, int repeat,
                 const char* label) {
    double best = 0;
    double total = 0;
    int parts = 0;
    for (int i = 0; i < repeat; ++i) {
        auto start = Clock::now();
        s3::PutResult put = client.PutObjectFromFile("bench/" + std::to_string(i), file);
        double seconds = Seconds(start);
        double mib_s = static_cast<double>(size) / kMiB / seconds;
        best = std::max(best, mib_s);
        total += seconds;
        parts = put.parts;
    }
    std::cout << label << ": " << size / kMiB << " MiB x " << repeat << ", parts " << parts
              << ", mean " << static_cast<double>(size) * repeat / kMiB / total << " MiB/s, best "
              << best << " MiB/s\n";
}

}  // namespace

int main(int argc, char** argv) {
    int64_t upload_mib = 200;
    int repeat = 3;
    int presign_count = 200000;
    for (int i = 1; i + 1 < argc; i += 2) {
        std::string flag = argv[i];
        if (flag == "--upload-mib")
            upload_mib = std::stoll(argv[i + 1]);
        else if (flag == "--repeat")
            repeat = std::stoi(argv[i + 1]);
        else if (flag == "--presign")
            presign_count = std::stoi(argv[i + 1]);
        else {
            std::cerr << "unknown flag " << flag << "\n";
            return 2;
        }
    }
    try {
        songd::testing::S3TestServer server({"bench"});
        songd::core::Config config = server.Config("bench", /*through_proxy=*/false);
        s3::S3Client client(config);

        // Presigning: pure computation (HMAC chain + SHA-256), one thread.
        auto start = Clock::now();
        size_t total_length = 0;
        for (int i = 0; i < presign_count; ++i) {
            total_length +=
                client
                    .PresignGet("songs/" + std::to_string(i) + "/output_fixed.wav",
                                {.content_disposition = "attachment; filename=\"song.wav\""})
                    .size();
        }
        double seconds = Seconds(start);
        std::cout << "presign: " << presign_count << " URLs in " << seconds
                  << " s = " << presign_count / seconds << " signatures/s (one thread; mean URL "
                  << total_length / presign_count << " bytes)\n";

        s3::SigningRequest request{.method = "PUT",
                                   .path = "/bench/songs/x/output_fixed.wav",
                                   .headers = {{"Host", "127.0.0.1:9000"},
                                               {"Content-Type", "audio/wav"},
                                               {"x-amz-meta-job-id", "x"}},
                                   .payload_hash = std::string(s3::kEmptyPayloadHash)};
        s3::SigningContext context{.credentials = {"AKID", "SECRET", ""},
                                   .region = "us-east-1",
                                   .time_seconds = 1700000000};
        start = Clock::now();
        for (int i = 0; i < presign_count; ++i) {
            context.time_seconds = 1700000000 + i;
            total_length += s3::SignWithHeaders(request, context).signature.size();
        }
        seconds = Seconds(start);
        std::cout << "header signing: " << presign_count / seconds
                  << " signatures/s (one thread)\n";

        fs::path dir = fs::temp_directory_path() / "songd-s3-bench";
        fs::create_directories(dir);
        fs::path small = dir / "16mib.bin";
        fs::path big = dir / "big.bin";
        WriteRandomFile(small, 16 * kMiB);
        WriteRandomFile(big, upload_mib * kMiB);
        BenchUpload(client, small, 16 * kMiB, repeat, "upload single PutObject");
        BenchUpload(client, big, upload_mib * kMiB, repeat, "upload multipart");
        fs::remove_all(dir);
        return 0;
    } catch (const std::exception& e) {
        std::cerr << "songd_s3_benchmark: " << e.what() << "\n";
        return 1;
    }
}
