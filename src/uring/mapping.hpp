// SPDX-License-Identifier: Apache-2.0
// A move-only owner of one shared mapping of ring memory.
#pragma once

#include <cstddef>
#include <cstdint>
#include <utility>

#include "sys.hpp"

namespace luring::uring {

class Mapping {
public:
    Mapping() noexcept = default;
    Mapping(Mapping&& other) noexcept
        : addr_(std::exchange(other.addr_, nullptr)), len_(std::exchange(other.len_, 0)) {}
    Mapping& operator=(Mapping&& other) noexcept {
        if (this != &other) {
            reset();
            addr_ = std::exchange(other.addr_, nullptr);
            len_ = std::exchange(other.len_, 0);
        }
        return *this;
    }
    Mapping(const Mapping&) = delete;
    Mapping& operator=(const Mapping&) = delete;
    ~Mapping() { reset(); }

    // Maps `length` bytes of the ring `fd` at the kernel's `offset`. Returns 0 or -errno.
    int map(int fd, std::size_t length, std::uint64_t offset) noexcept {
        reset();
        void* addr = nullptr;
        int ret = sys::mmap_ring(&addr, length, fd, offset);
        if (ret < 0) return ret;
        addr_ = addr;
        len_ = length;
        return 0;
    }

    // Unmaps; a second call does nothing.
    void reset() noexcept {
        if (addr_ != nullptr) sys::munmap(addr_, len_);
        addr_ = nullptr;
        len_ = 0;
    }

    std::byte* data() const noexcept { return static_cast<std::byte*>(addr_); }
    std::size_t size() const noexcept { return len_; }
    bool mapped() const noexcept { return addr_ != nullptr; }

    // A pointer `offset` bytes into the mapping, as the kernel's sq_off/cq_off give them.
    template <typename T>
    T* at(std::uint32_t offset) const noexcept {
        return reinterpret_cast<T*>(data() + offset);
    }

private:
    void* addr_ = nullptr;
    std::size_t len_ = 0;
};

}  // namespace luring::uring
