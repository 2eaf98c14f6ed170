// SPDX-License-Identifier: Apache-2.0
// A provided-buffer ring (IORING_REGISTER_PBUF_RING, 5.19) that owns its buffers: `count`
// buffers of `size` bytes in one mapping, all given to the kernel at registration. A
// request with IOSQE_BUFFER_SELECT (prep_recv_multishot) takes one per completion and
// names it in the CQE (flags >> kCqeBufferShift); the kernel owns it until recycle()
// hands it back. So a buffer is read between the CQE and recycle(), never after.
#pragma once

#include <cstddef>
#include <cstdint>

#include "abi.hpp"
#include "ring.hpp"

namespace luring::uring {

class BufRing {
public:
    static constexpr std::uint32_t kMaxCount = 32768;    // the kernel's limit
    static constexpr std::uint32_t kMaxSize = 1U << 20;  // ours: a recv larger is no use

    // Trivial on purpose: it lives inside a Lua userdata that is never destroyed, and is
    // released by release() or deliberately abandoned (see the Lua module's close_ring).
    BufRing() noexcept = default;
    BufRing(const BufRing&) = delete;
    BufRing& operator=(const BufRing&) = delete;

    // Maps the entries and the buffers and registers them as group `bgid` of `ring`.
    // `count` a power of two in 1..kMaxCount, `size` in 1..kMaxSize. 0, or -errno
    // (-EINVAL before 5.19 or for bad sizes, -ENOMEM, -EEXIST for a group in use,
    // -EBUSY if this object already holds a ring); on failure nothing stays mapped.
    int setup(const Ring& ring, std::uint16_t bgid, std::uint32_t count,
              std::uint32_t size) noexcept;

    bool active() const noexcept { return entries_ != nullptr; }
    std::uint16_t group() const noexcept { return bgid_; }
    std::uint32_t count() const noexcept { return mask_ + 1; }
    std::uint32_t size() const noexcept { return size_; }

    // Buffer `bid` (from a CQE with cqe_flag::buffer), or nullptr for an id we never gave.
    char* buffer(std::uint32_t bid) const noexcept {
        return active() && bid <= mask_ ? data_ + std::size_t{bid} * size_ : nullptr;
    }

    // Gives buffer `bid` back to the kernel: one entry at the tail, then the tail
    // published with release semantics. Only ids a CQE handed out, each once.
    void recycle(std::uint32_t bid) noexcept;

    // Unregisters (when `unregister`: the ring is ours and still open) and unmaps. Only
    // once no request that selects from this group can still complete.
    void release(const Ring& ring, bool unregister) noexcept;

private:
    Buf* entries_ = nullptr;
    char* data_ = nullptr;
    std::size_t entries_len_ = 0;
    std::size_t data_len_ = 0;
    std::uint32_t mask_ = 0;
    std::uint32_t size_ = 0;
    std::uint16_t tail_ = 0;
    std::uint16_t bgid_ = 0;
};

}  // namespace luring::uring
