#include "http/handlers/song_file.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <sys/statvfs.h>

#include "core/atomic_file.h"
#include "core/clock.h"
#include "core/error.h"
#include "core/ids.h"
#include "core/log.h"
#include "http/conditional.h"
#include "http/problem.h"

namespace songd::http {

std::optional<OpenedFile> OpenRegularFile(const std::filesystem::path& path) {
    core::UniqueFd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC));
    if (!fd) return std::nullopt;
    struct stat st {};
    if (::fstat(fd.get(), &st) != 0 || !S_ISREG(st.st_mode)) return std::nullopt;
    OpenedFile file;
    file.size = static_cast<uint64_t>(st.st_size);
    file.mtime_ns = static_cast<int64_t>(st.st_mtim.tv_sec) * 1000000000LL + st.st_mtim.tv_nsec;
    file.fd = std::make_shared<const core::UniqueFd>(std::move(fd));
    return file;
}

OpenedFile OpenDerivedFile(const OpenedFile& wav, const std::filesystem::path& target,
                           audio::Format format, const std::function<bool()>& still_live) {
    if (auto cached = OpenRegularFile(target); cached && cached->mtime_ns >= wav.mtime_ns) {
        return *cached;
    }
    // The encoder reads through the descriptor opened before (Linux: /proc/self/fd/N opens
    // that very inode, even when its name is gone), so the WAV is never looked up again.
    const std::filesystem::path source = "/proc/self/fd/" + std::to_string(wav.fd->get());
    std::filesystem::path partial = target;
    partial.replace_filename("." + target.filename().string() + ".encoding-" + core::NewJobId());
    struct Remove {
        const std::filesystem::path& path;
        ~Remove() {
            std::error_code ec;
            std::filesystem::remove(path, ec);
        }
    } remove_partial{partial};
    try {
        audio::EncodeFile(source, partial, format);
    } catch (const core::Error&) {
        // A full disk is this server's passing trouble, not the client's and not a bug: 503
        // with a retry, and the WAV (served from its open descriptor) still downloads.
        struct statvfs st {};
        if (::statvfs(target.parent_path().c_str(), &st) == 0 &&
            static_cast<uint64_t>(st.f_bavail) * st.f_frsize < wav.size) {
            throw core::Error(core::ErrorCode::kUpstreamUnavailable,
                              "no room on this server to encode the " +
                                  std::string(audio::FormatName(format)) +
                                  " file; try again later, or download the WAV")
                .WithRetryAfter(30);
        }
        throw;
    }
    auto encoded = OpenRegularFile(partial);
    if (!encoded) {
        throw core::Error(core::ErrorCode::kInternal,
                          "the encoding " + partial.string() + " vanished before it was served");
    }
    if (still_live()) {
        std::error_code ec;
        std::filesystem::rename(partial, target, ec);  // EncodeFile fsynced it already
        if (ec) {
            core::LogEvent("warning", "derived_cache_failed",
                           {{"path", target.string()}, {"error", ec.message()}});
        }
    }
    return *encoded;
}

Response FileResponse(const Request& request, const OpenedFile& file,
                      const std::string& content_type, const std::string& disposition) {
    const Validators validators{FileEtag(file.size, file.mtime_ns), file.mtime_ns / 1000000};
    Response r;
    r.SetHeader("ETag", validators.etag);
    r.SetHeader("Last-Modified", core::FormatHttpDate(validators.last_modified_ms));
    r.SetHeader("Accept-Ranges", "bytes");
    if (NotModified(request, validators)) {
        r.status = 304;
        return r;
    }
    const RangePlan plan = PlanRange(request, validators, file.size);
    if (plan.kind == RangePlan::kUnsatisfiable) {
        Response bad = ProblemResponse(416, "range " + std::string(*request.Header("Range")) +
                                                " is outside the file of " +
                                                std::to_string(file.size) + " bytes");
        bad.SetHeader("Content-Range", plan.ContentRange());
        return bad;
    }
    r.SetHeader("Content-Type", content_type);
    r.SetHeader("Content-Disposition", disposition);
    FileBody body{file.fd, 0, file.size};
    if (plan.kind == RangePlan::kPartial) {
        r.status = 206;
        body.offset = plan.range.first;
        body.length = plan.range.length();
        r.SetHeader("Content-Range", plan.ContentRange());
    }
    r.file = std::move(body);
    return r;
}

}  // namespace songd::http
