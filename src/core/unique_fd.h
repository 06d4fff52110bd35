#pragma once
/// @file
/// UniqueFd: owns one file descriptor and closes it exactly once.
///
///   core::UniqueFd fd(::open(path, O_RDONLY | O_CLOEXEC));
///   if (!fd) throw ...;                 // open failed (fd < 0)
///   ::read(fd.get(), buf, n);
///   int raw = fd.Release();             // give up ownership

#include <unistd.h>

#include <utility>

namespace songd::core {

/// @brief Move-only owner of a file descriptor (-1: none).
class UniqueFd {
  public:
    UniqueFd() = default;
    explicit UniqueFd(int fd) : fd_(fd) {}
    UniqueFd(UniqueFd&& other) noexcept : fd_(std::exchange(other.fd_, -1)) {}
    UniqueFd& operator=(UniqueFd&& other) noexcept {
        if (this != &other) Reset(std::exchange(other.fd_, -1));
        return *this;
    }
    UniqueFd(const UniqueFd&) = delete;
    UniqueFd& operator=(const UniqueFd&) = delete;
    ~UniqueFd() { Reset(); }

    int get() const { return fd_; }
    explicit operator bool() const { return fd_ >= 0; }
    int Release() { return std::exchange(fd_, -1); }
    /// Closes the descriptor held (if any) and takes `fd`.
    void Reset(int fd = -1) {
        if (fd_ >= 0) ::close(fd_);
        fd_ = fd;
    }

  private:
    int fd_ = -1;
};

}  // namespace songd::core
