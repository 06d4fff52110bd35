#include "core/atomic_file.h"

#include <fcntl.h>
#include <unistd.h>

#include <atomic>
#include <fstream>

#include "core/error.h"
#include "core/unique_fd.h"

namespace songd::core {
namespace {

void FsyncPath(const std::filesystem::path& path, bool directory) {
    UniqueFd fd(::open(path.c_str(), (directory ? O_RDONLY | O_DIRECTORY : O_RDONLY) | O_CLOEXEC));
    if (!fd) throw Error(ErrorCode::kInternal, "cannot open " + path.string() + " to sync it");
    if (::fsync(fd.get()) != 0) {
        throw Error(ErrorCode::kInternal, "fsync of " + path.string() + " failed");
    }
}

std::atomic<uint64_t> g_temp_counter{0};

}  // namespace

TempFile::TempFile(std::filesystem::path target) : target_(std::move(target)) {
    // Hidden, unique per process and call: two writers of one target never collide, and a
    // crash leaves an obviously temporary name that no reader looks for.
    std::string name = "." + target_.filename().string() + ".tmp-" + std::to_string(::getpid()) +
                       "-" + std::to_string(g_temp_counter.fetch_add(1));
    tmp_ = target_.parent_path() / name;
}

TempFile::~TempFile() {
    if (!committed_) {
        std::error_code ec;
        std::filesystem::remove(tmp_, ec);
    }
}

void TempFile::Commit() {
    CommitFile(tmp_, target_);
    committed_ = true;
}

void CommitFile(const std::filesystem::path& tmp, const std::filesystem::path& path) {
    FsyncPath(tmp, false);
    std::error_code ec;
    std::filesystem::rename(tmp, path, ec);
    if (ec) {
        throw Error(ErrorCode::kInternal,
                    "cannot rename " + tmp.string() + " to " + path.string() + ": " + ec.message());
    }
    FsyncPath(path.parent_path().empty() ? std::filesystem::path(".") : path.parent_path(), true);
}

void WriteFileAtomic(const std::filesystem::path& path, const std::string& data) {
    TempFile tmp(path);
    {
        std::ofstream out(tmp.path(), std::ios::binary | std::ios::trunc);
        out.write(data.data(), static_cast<std::streamsize>(data.size()));
        out.flush();
        if (!out) throw Error(ErrorCode::kInternal, "cannot write " + tmp.path().string());
    }
    tmp.Commit();
}

}  // namespace songd::core
