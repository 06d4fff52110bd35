#pragma once
/// @file
/// Atomic file writes: a reader never sees half a file, and a crash leaves at most a hidden
/// temporary that no reader looks for.
///
///   core::TempFile tmp(dir / "output_fixed.wav");    // ".output_fixed.wav.tmp-<pid>-<n>"
///   WriteSomehow(tmp.path());
///   tmp.Commit();                                     // fsync, rename, fsync the directory
///
///   core::WriteFileAtomic(dir / "meta.json", text);   // the same for bytes in memory
///
/// Errors throw core::Error(kInternal) naming the file; a TempFile not committed is removed
/// by its destructor.

#include <filesystem>
#include <string>

namespace songd::core {

/// @brief A unique temporary sibling of `target` that becomes `target` only on Commit.
class TempFile {
  public:
    explicit TempFile(std::filesystem::path target);
    TempFile(const TempFile&) = delete;
    TempFile& operator=(const TempFile&) = delete;
    ~TempFile();

    const std::filesystem::path& path() const { return tmp_; }
    /// fsyncs the temporary, renames it over the target and fsyncs the directory.
    void Commit();

  private:
    std::filesystem::path target_;
    std::filesystem::path tmp_;
    bool committed_ = false;
};

/// Writes `data` to `path` through a TempFile.
void WriteFileAtomic(const std::filesystem::path& path, const std::string& data);

/// fsyncs `tmp`, renames it to `path`, and fsyncs the directory.
void CommitFile(const std::filesystem::path& tmp, const std::filesystem::path& path);

}  // namespace songd::core
