#pragma once
/// @file
/// Atomic file writes: a reader never sees half a file.
///
///   audio::WriteFileAtomic(dir / "meta.json", text);
///   audio::CommitFile(tmp, dir / "output_fixed.wav");  // after writing tmp yourself
///
/// Both throw core::Error(kInternal) naming the file when the disk refuses.

#include <filesystem>
#include <string>

namespace songd::audio {

/// Writes `data` to `path` through a unique temporary sibling, fsync and rename.
void WriteFileAtomic(const std::filesystem::path& path, const std::string& data);

/// fsyncs `tmp`, renames it to `path`, and fsyncs the directory.
void CommitFile(const std::filesystem::path& tmp, const std::filesystem::path& path);

}  // namespace songd::audio
