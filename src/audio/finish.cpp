#include "audio/finish.h"

#include <fcntl.h>
#include <sndfile.h>
#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <fstream>
#include <memory>
#include <vector>

#include "core/error.h"

namespace songd::audio {
namespace {

using SndFile = std::unique_ptr<SNDFILE, int (*)(SNDFILE*)>;

[[noreturn]] void Fail(const std::string& msg) {
    throw core::Error(core::ErrorCode::kRenderFailed, msg);
}

void FsyncPath(const std::filesystem::path& path, bool directory) {
    int fd = ::open(path.c_str(), directory ? O_RDONLY | O_DIRECTORY : O_RDONLY);
    if (fd < 0) Fail("cannot open " + path.string() + " to sync it");
    int rc = ::fsync(fd);
    ::close(fd);
    if (rc != 0) Fail("fsync of " + path.string() + " failed");
}

}  // namespace

void CommitFile(const std::filesystem::path& tmp, const std::filesystem::path& path) {
    FsyncPath(tmp, false);
    std::error_code ec;
    std::filesystem::rename(tmp, path, ec);
    if (ec) Fail("cannot rename " + tmp.string() + ": " + ec.message());
    FsyncPath(path.parent_path().empty() ? "." : path.parent_path(), true);
}

void WriteFileAtomic(const std::filesystem::path& path, const std::string& data) {
    auto tmp = path;
    tmp += ".tmp";
    {
        std::ofstream out(tmp, std::ios::binary | std::ios::trunc);
        out.write(data.data(), static_cast<std::streamsize>(data.size()));
        if (!out) Fail("cannot write " + tmp.string());
    }
    CommitFile(tmp, path);
}

FinishResult Finish(const std::filesystem::path& raw, const std::filesystem::path& out,
                    const FinishOptions& options) {
    SF_INFO in_info{};
    SndFile in(sf_open(raw.c_str(), SFM_READ, &in_info), sf_close);
    if (!in) Fail("cannot read the engine's output: " + std::string(sf_strerror(nullptr)));
    if (in_info.samplerate != 44100) {
        Fail("the engine's output is " + std::to_string(in_info.samplerate) +
             " Hz; 44100 Hz is required");
    }
    if (in_info.channels < 1 || in_info.channels > 2) {
        Fail("the engine's output has " + std::to_string(in_info.channels) +
             " channels; mono or stereo is required");
    }
    const int64_t frames = options.target_frames > 0 ? options.target_frames : in_info.frames;
    std::vector<float> audio(static_cast<size_t>(frames) * 2, 0.0f);
    std::vector<float> chunk(65536 * static_cast<size_t>(in_info.channels));
    int64_t pos = 0;
    double peak = 0;
    while (pos < frames) {
        sf_count_t want = std::min<int64_t>(65536, frames - pos);
        sf_count_t got = sf_readf_float(in.get(), chunk.data(), want);
        if (got <= 0) break;
        for (sf_count_t i = 0; i < got; ++i) {
            float l = chunk[static_cast<size_t>(i * in_info.channels)];
            float r = in_info.channels == 2 ? chunk[static_cast<size_t>(i * 2 + 1)] : l;
            if (!std::isfinite(l) || !std::isfinite(r)) {
                Fail("the engine produced invalid samples (NaN or infinity) at " +
                     std::to_string((pos + i) / 44100.0) + " s");
            }
            audio[static_cast<size_t>(pos + i) * 2] = l;
            audio[static_cast<size_t>(pos + i) * 2 + 1] = r;
            peak = std::max({peak, static_cast<double>(std::fabs(l)), static_cast<double>(std::fabs(r))});
        }
        pos += got;
    }
    if (peak < 1e-5) Fail("the engine produced silence");

    // Peak-normalise to -1 dBFS. (Loudness mastering per master_preset is applied when
    // auto_master is set; see the mastering stage.)
    const double gain = std::pow(10.0, -1.0 / 20.0) / peak;
    for (auto& s : audio) s = static_cast<float>(s * gain);

    auto tmp = out;
    tmp += ".tmp";
    SF_INFO out_info{};
    out_info.samplerate = 44100;
    out_info.channels = 2;
    out_info.format = SF_FORMAT_WAV | SF_FORMAT_PCM_16;
    {
        SndFile file(sf_open(tmp.c_str(), SFM_WRITE, &out_info), sf_close);
        if (!file) Fail("cannot write " + tmp.string() + ": " + sf_strerror(nullptr));
        sf_command(file.get(), SFC_SET_CLIPPING, nullptr, SF_TRUE);
        if (sf_writef_float(file.get(), audio.data(), frames) != frames) {
            Fail("short write of " + tmp.string());
        }
    }
    CommitFile(tmp, out);
    (void)options.auto_master;
    return FinishResult{frames, 44100, 2, static_cast<double>(frames) / 44100.0};
}

}  // namespace songd::audio
