// SPDX-License-Identifier: Apache-2.0
// A move-only owner of one file descriptor.
#pragma once

#include <utility>

#include "sys.hpp"

namespace luring::uring {

class UniqueFd {
public:
    UniqueFd() noexcept = default;
    explicit UniqueFd(int fd) noexcept : fd_(fd) {}
    UniqueFd(UniqueFd&& other) noexcept : fd_(std::exchange(other.fd_, -1)) {}
    UniqueFd& operator=(UniqueFd&& other) noexcept {
        if (this != &other) reset(std::exchange(other.fd_, -1));
        return *this;
    }
    UniqueFd(const UniqueFd&) = delete;
    UniqueFd& operator=(const UniqueFd&) = delete;
    ~UniqueFd() { reset(); }

    int get() const noexcept { return fd_; }
    bool valid() const noexcept { return fd_ >= 0; }

    // Closes the current fd (if any) and owns `fd` instead. Safe to call twice: the
    // second call finds -1 and does nothing, so a reused fd number is never closed.
    void reset(int fd = -1) noexcept {
        if (fd_ >= 0) sys::close(fd_);
        fd_ = fd;
    }

private:
    int fd_ = -1;
};

}  // namespace luring::uring
