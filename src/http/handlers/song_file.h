#pragma once
/// @file
/// Song files as a download sends them: opened first, then described from the open
/// descriptor (size, validators), so a concurrent delete or replace by retention yields either
/// the whole file or a clean "missing" answer, never a response cut short.
///
///   auto wav = http::OpenRegularFile(jobs::LocalSong(config, id));   // nullopt: missing
///   auto mp3 = http::OpenDerivedFile(*wav, dir / "output_fixed.mp3", audio::Format::kMp3,
///                                    [&] { return JobStillCompleted(); });
///   return http::FileResponse(request, *mp3, "audio/mpeg", "attachment; filename=...");

#include <cstdint>
#include <filesystem>
#include <functional>
#include <memory>
#include <optional>
#include <string>

#include "audio/encode.h"
#include "core/unique_fd.h"
#include "http/message.h"

namespace songd::http {

/// @brief A regular file held open, with what fstat said about it.
struct OpenedFile {
    std::shared_ptr<const core::UniqueFd> fd;
    uint64_t size = 0;
    int64_t mtime_ns = 0;
};

/// Opens a regular file for reading; nullopt when it does not exist or is not a regular file.
std::optional<OpenedFile> OpenRegularFile(const std::filesystem::path& path);

/// The song in a derived format (FLAC, MP3), cached at `target` beside the WAV. A cached copy
/// at least as new as `wav` is reused. Otherwise it is encoded from the already open `wav`
/// descriptor (never by reopening a path retention may have deleted), and the encoding is
/// kept at `target` only when `still_live()` says the job is still completed: a job that
/// expired meanwhile gets no file back on disk. The bytes are served either way.
/// Throws core::Error from the encoder.
OpenedFile OpenDerivedFile(const OpenedFile& wav, const std::filesystem::path& target,
                           audio::Format format, const std::function<bool()>& still_live);

/// 200 with the file, or 304 / 206 / 416 as the request's conditional and Range headers ask
/// (see http/conditional.h). Sets ETag, Last-Modified, Accept-Ranges, Content-Type and
/// Content-Disposition.
Response FileResponse(const Request& request, const OpenedFile& file,
                      const std::string& content_type, const std::string& disposition);

}  // namespace songd::http
