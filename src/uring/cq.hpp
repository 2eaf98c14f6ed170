// SPDX-License-Identifier: Apache-2.0
// The completion queue: CQEs are copied out in batches and the head advanced once.
// Nothing outside this class ever holds a pointer into the CQ (liburing issue #103:
// a slot may be overwritten as soon as the head moves past it).
#pragma once

#include <cstdint>

#include "abi.hpp"
#include "ring_atomics.hpp"

namespace luring::uring {

class CompletionQueue {
public:
    CompletionQueue() noexcept = default;

    void attach(std::byte* ring, const CqringOffsets& off) noexcept {
        khead_ = reinterpret_cast<std::uint32_t*>(ring + off.head);
        ktail_ = reinterpret_cast<const std::uint32_t*>(ring + off.tail);
        koverflow_ = reinterpret_cast<const std::uint32_t*>(ring + off.overflow);
        cqes_ = reinterpret_cast<const Cqe*>(ring + off.cqes);
        mask_ = *reinterpret_cast<const std::uint32_t*>(ring + off.ring_mask);
        entries_ = *reinterpret_cast<const std::uint32_t*>(ring + off.ring_entries);
        head_ = atomics::load_relaxed(khead_);
    }

    // Mirrors io_uring_cq_ready().
    std::uint32_t ready() const noexcept {
        // Acquire pairs with the kernel's release of ktail after it wrote the CQEs.
        return atomics::load_acquire(ktail_) - head_;
    }

    // Copies up to `max` CQEs into `out` and advances the head once for all of them.
    // Returns the number copied. Mirrors Zig's IoUring.copy_cqes (without the wait).
    std::uint32_t copy(Cqe* out, std::uint32_t max) noexcept {
        std::uint32_t tail = atomics::load_acquire(ktail_);
        std::uint32_t n = tail - head_;
        if (n > max) n = max;
        for (std::uint32_t i = 0; i < n; ++i) out[i] = cqes_[(head_ + i) & mask_];
        if (n != 0) {
            head_ += n;
            // Release: our CQE loads are done before the kernel, reading khead (with
            // READ_ONCE and a control dependency), may reuse the slots.
            atomics::store_release(khead_, head_);
        }
        return n;
    }

    // Looks at the i-th ready CQE without consuming it (i < ready()). The result is a
    // copy; used only by the core itself.
    Cqe peek(std::uint32_t i) const noexcept { return cqes_[(head_ + i) & mask_]; }

    // CQEs the kernel dropped because the CQ was full (always 0 with FEAT_NODROP unless
    // memory ran out). Relaxed: "not ordered with any other data".
    std::uint32_t overflow() const noexcept { return atomics::load_relaxed(koverflow_); }

    std::uint32_t entries() const noexcept { return entries_; }

private:
    std::uint32_t* khead_ = nullptr;        // written by us
    const std::uint32_t* ktail_ = nullptr;  // written by the kernel
    const std::uint32_t* koverflow_ = nullptr;
    const Cqe* cqes_ = nullptr;
    std::uint32_t mask_ = 0;
    std::uint32_t entries_ = 0;
    std::uint32_t head_ = 0;  // our copy of khead; only we write it
};

}  // namespace luring::uring
