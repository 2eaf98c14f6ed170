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
        if (receives_last_) order_receives_last();
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

    // Whether flush() moves the receives of a batch after its other requests (see
    // order_receives_last, below).
    void set_receives_last(bool on) noexcept { receives_last_ = on; }
    bool receives_last() const noexcept { return receives_last_; }

private:
    // Moves the stream receives (IORING_OP_RECV) among the SQEs not yet published after
    // the sends, writes, NOPs and pure timers next to them, keeping each group's own
    // order. A send to a local peer that a receive waits for then runs first, and the
    // receive finds its data at once instead of arming a poll and waiting for a wakeup:
    // the order the event loops want, whichever task queued first. Unlinked requests
    // carry no order for the kernel; still, any other request (a cancel, a close, an
    // accept...) is a barrier no receive crosses, and a batch with a link or a drain is
    // left as it is.
    void order_receives_last() noexcept {
        const std::uint32_t start = atomics::load_relaxed(ktail_);  // our own store
        const std::uint32_t end = sqe_tail_;
        // Most batches have no receive before another request: one pass over the opcodes.
        std::uint32_t p = start;
        while (p != end && sqes_[p & mask_].opcode != kRecv) ++p;
        while (p != end && sqes_[p & mask_].opcode == kRecv) ++p;
        if (p == end) return;
        constexpr std::uint8_t kOrdered = sqe_flag::io_link | sqe_flag::io_hardlink |
                                          sqe_flag::io_drain;
        for (p = start; p != end; ++p) {
            if ((sqes_[p & mask_].flags & kOrdered) != 0) return;
        }
        // Each stretch between barriers on its own.
        std::uint32_t from = start;
        for (p = start; p != end; ++p) {
            const Sqe& sqe = sqes_[p & mask_];
            if (sqe.opcode != kRecv && !passable(sqe)) {
                partition(from, p);
                from = p + 1;
            }
        }
        partition(from, end);
    }

    static constexpr auto kRecv = static_cast<std::uint8_t>(Op::recv);

    // What a receive may move behind: requests that only add data or time.
    static bool passable(const Sqe& sqe) noexcept {
        switch (static_cast<Op>(sqe.opcode)) {
            case Op::send:
            case Op::sendmsg:
            case Op::send_zc:
            case Op::sendmsg_zc:
            case Op::write:
            case Op::writev:
            case Op::write_fixed:
            case Op::writev_fixed:
            case Op::nop:
                return true;
            case Op::timeout:
                return sqe.off == 0;  // a pure timer, not one counting completions
            default:
                return false;
        }
    }

    // Stable partition of [from, to): the receives after the rest. Each non-receive moves
    // down over the receives before it, which wait in a scratch area: the free SQ slots
    // (ours: the kernel is done with them and reads only [khead, ktail)), or a small
    // buffer when they are too few. A full scratch area lays its receives down where they
    // are and starts again, so the receives are then only partly moved, and never
    // reordered among themselves.
    void partition(std::uint32_t from, std::uint32_t to) noexcept {
        constexpr std::uint32_t kHeld = 32;
        Sqe held[kHeld];
        const std::uint32_t free = entries_ - (sqe_tail_ - atomics::load_acquire(khead_));
        const bool in_ring = free >= kHeld;
        const std::uint32_t cap = in_ring ? free : kHeld;
        auto scratch = [&](std::uint32_t k) -> Sqe& {
            return in_ring ? sqes_[(sqe_tail_ + k) & mask_] : held[k];
        };
        std::uint32_t n_held = 0;
        std::uint32_t w = from;  // next position for a non-receive; w + n_held == p
        for (std::uint32_t p = from; p != to; ++p) {
            Sqe& sqe = sqes_[p & mask_];
            if (sqe.opcode != kRecv) {
                if (w != p) std::memcpy(&sqes_[w & mask_], &sqe, sizeof(Sqe));
                ++w;
                continue;
            }
            if (n_held == cap) {
                for (std::uint32_t k = 0; k < n_held; ++k, ++w) {
                    std::memcpy(&sqes_[w & mask_], &scratch(k), sizeof(Sqe));
                }
                n_held = 0;
            }
            std::memcpy(&scratch(n_held++), &sqe, sizeof(Sqe));
        }
        for (std::uint32_t k = 0; k < n_held; ++k, ++w) {
            std::memcpy(&sqes_[w & mask_], &scratch(k), sizeof(Sqe));
        }
    }

    const std::uint32_t* khead_ = nullptr;  // written by the kernel
    std::uint32_t* ktail_ = nullptr;        // written by us
    const std::uint32_t* kflags_ = nullptr;
    const std::uint32_t* kdropped_ = nullptr;
    Sqe* sqes_ = nullptr;
    std::uint32_t mask_ = 0;
    std::uint32_t entries_ = 0;
    bool receives_last_ = false;
    std::uint32_t sqe_tail_ = 0;  // next SQE to hand out; published to ktail by flush()
};

}  // namespace luring::uring
