// SPDX-License-Identifier: Apache-2.0
// The only file that names a memory order.
//
// The ring protocol (kernel io_uring/io_uring.c header comment; io_rings field comments in
// include/linux/io_uring_types.h; liburing barrier.h and queue.c):
//
//   SQ: we own the tail, the kernel owns the head.
//     - We write SQEs (and, without NO_SQARRAY, the index array) with plain stores, then
//       publish them with a RELEASE store of ktail. The kernel's acquire load of the tail
//       pairs with it, so it never sees a half-written SQE.
//     - Before reusing an SQE slot we ACQUIRE-load khead. It pairs with the kernel's
//       release store of the head after it has finished reading those SQEs.
//     - Under SQPOLL the poller thread may be asleep. After the tail store we need a FULL
//       fence before reading IORING_SQ_NEED_WAKEUP: otherwise the load may be satisfied
//       before the store is visible (store->load reordering, even on x86), the poller
//       sets the flag and sleeps having seen the old tail, and we skip the wakeup.
//
//   CQ: the kernel owns the tail, we own the head.
//     - ACQUIRE-load ktail before reading CQEs. Pairs with the kernel's release store of
//       the tail after writing the CQEs (io_commit_cqring).
//     - Copy the CQEs out, then RELEASE-store khead once for the batch, so our CQE loads
//       are done before the kernel can see the slots as free. (The kernel reads the
//       head with READ_ONCE and relies on a control dependency, its io_uring.c header
//       comment says, rather than an acquire.)
//
//   Flags words (sq_flags, cq overflow counter, sq dropped counter) are read RELAXED:
//   they are hints; the enter that follows, or the acquire of the CQ tail, orders the
//   data they point at (tokio-rs/io-uring issue #197).
#pragma once

#include <atomic>
#include <cstdint>

namespace luring::uring::atomics {

using Word = std::uint32_t;
using Ref = std::atomic_ref<Word>;

static_assert(Ref::is_always_lock_free, "ring words must be lock-free atomics");
static_assert(Ref::required_alignment == 4, "ring words are 4-byte aligned by the kernel");

// C++20 has no atomic_ref<const T>; the mapped memory is never a const object, so
// casting the const away to load is defined.
inline Word load_acquire(const Word* p) noexcept {
    return Ref(*const_cast<Word*>(p)).load(std::memory_order_acquire);
}

inline Word load_relaxed(const Word* p) noexcept {
    return Ref(*const_cast<Word*>(p)).load(std::memory_order_relaxed);
}

inline void store_release(Word* p, Word v) noexcept {
    Ref(*p).store(v, std::memory_order_release);
}

// The tail of a provided-buffer ring (a u16, struct io_uring_buf_ring): the kernel reads
// it with smp_load_acquire, so our entry stores before it must be visible first.
inline void store_release_u16(std::uint16_t* p, std::uint16_t v) noexcept {
    std::atomic_ref<std::uint16_t>(*p).store(v, std::memory_order_release);
}

inline void fence_seq_cst() noexcept { std::atomic_thread_fence(std::memory_order_seq_cst); }

}  // namespace luring::uring::atomics
