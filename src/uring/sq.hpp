// SPDX-License-Identifier: Apache-2.0
// The submission queue: where SQEs are handed out and published to the kernel.
// Header-only because it is the hot path; knows nothing of syscalls, so the index math
// can be tested over plain memory (tests/unit/sq_test.cpp).
#pragma once

#include <cstdint>
#include <cstring>

#include "abi.hpp"
#include "ring_atomics.hpp"

namespace luring::uring {

class SubmissionQueue {
public:
    SubmissionQueue() noexcept = default;

    // Points the queue at ring memory laid out as `off` says, with the SQE array at
    // `sqes`. `index_array` is false for IORING_SETUP_NO_SQARRAY rings. The identity
    // index array (slot i -> SQE i) is written once here, so submit never touches it.
    void attach(std::byte* ring, const SqringOffsets& off, Sqe* sqes, bool index_array) noexcept {
        khead_ = reinterpret_cast<const std::uint32_t*>(ring + off.head);
        ktail_ = reinterpret_cast<std::uint32_t*>(ring + off.tail);
        kflags_ = reinterpret_cast<const std::uint32_t*>(ring + off.flags);
        kdropped_ = reinterpret_cast<const std::uint32_t*>(ring + off.dropped);
        mask_ = *reinterpret_cast<const std::uint32_t*>(ring + off.ring_mask);
        entries_ = *reinterpret_cast<const std::uint32_t*>(ring + off.ring_entries);
        sqes_ = sqes;
        if (index_array) {
            auto* array = reinterpret_cast<std::uint32_t*>(ring + off.array);
            for (std::uint32_t i = 0; i < entries_; ++i) array[i] = i;
        }
        // We own the tail: start from what the kernel published (0 on a new ring).
        sqe_tail_ = atomics::load_relaxed(ktail_);
    }

    // Mirrors io_uring_get_sqe(): the next free SQE, all 64 bytes zeroed, or nullptr when
    // the queue is full (tail - head == entries; the u32 subtraction wraps on purpose).
    Sqe* get_sqe() noexcept {
        // Acquire pairs with the kernel's release of khead once it has read those SQEs.
        std::uint32_t head = atomics::load_acquire(khead_);
        if (sqe_tail_ - head >= entries_) return nullptr;
        Sqe* sqe = &sqes_[sqe_tail_ & mask_];
        ++sqe_tail_;
        std::memset(sqe, 0, sizeof(Sqe));
        return sqe;
    }

    // Mirrors __io_uring_flush_sq(): publishes every SQE handed out so far and returns
    // how many the kernel has not consumed yet (SQEs left by a partial submit count).
    std::uint32_t flush() noexcept {
        // Release pairs with the kernel's acquire of ktail: the SQE stores happen-before.
        atomics::store_release(ktail_, sqe_tail_);
        return sqe_tail_ - atomics::load_acquire(khead_);
    }

    // SQEs handed out (published or not) that the kernel has not consumed.
    std::uint32_t ready() const noexcept { return sqe_tail_ - atomics::load_acquire(khead_); }

    // Mirrors io_uring_sq_space_left().
    std::uint32_t space_left() const noexcept { return entries_ - ready(); }

    // IORING_SQ_* flags. Relaxed: a hint, ordered by the enter that follows.
    std::uint32_t flags() const noexcept { return atomics::load_relaxed(kflags_); }

    // Invalid SQ indices the kernel skipped (diagnostics only).
    std::uint32_t dropped() const noexcept { return atomics::load_relaxed(kdropped_); }

    std::uint32_t entries() const noexcept { return entries_; }
    std::uint32_t mask() const noexcept { return mask_; }

private:
    const std::uint32_t* khead_ = nullptr;  // written by the kernel
    std::uint32_t* ktail_ = nullptr;        // written by us
    const std::uint32_t* kflags_ = nullptr;
    const std::uint32_t* kdropped_ = nullptr;
    Sqe* sqes_ = nullptr;
    std::uint32_t mask_ = 0;
    std::uint32_t entries_ = 0;
    std::uint32_t sqe_tail_ = 0;  // next SQE to hand out; published to ktail by flush()
};

}  // namespace luring::uring
