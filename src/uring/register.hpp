// SPDX-License-Identifier: Apache-2.0
// io_uring_register(2) operations: opcode probe, registered files and buffers,
// registered ring fds, provided-buffer rings, synchronous cancel.
#pragma once

#include <array>
#include <cstdint>

#include "abi.hpp"
#include "query_abi.hpp"  // RsrcUpdate
#include "ring.hpp"

struct iovec;

namespace luring::uring {

// What IORING_REGISTER_PROBE said: the highest opcode the kernel knows and, for each
// opcode number, whether it is supported.
struct OpSupport {
    std::uint8_t last_op = 0;
    std::array<bool, 256> supported{};
};

// Mirrors io_uring_register_probe(). Available since 5.6; older kernels give -EINVAL.
// The kernel demands an all-zero buffer (io_probe's memchr_inv), which we provide.
int register_probe(const Ring& ring, OpSupport& out) noexcept;

// Mirrors io_uring_register_files(). Available since 5.1. -EBUSY if files are already
// registered, -EMFILE above RLIMIT_NOFILE.
int register_files(const Ring& ring, const int* fds, std::uint32_t count) noexcept;

// Mirrors io_uring_unregister_files(). -ENXIO when none are registered.
int unregister_files(const Ring& ring) noexcept;

// Mirrors io_uring_register_buffers(). Available since 5.1. Pins the `count` iovecs'
// memory for read_fixed/write_fixed (prep_read_fixed: buf_index is the iovec's index);
// the iovec array itself may go once this returns, the memory it names must stay
// mapped until unregister_buffers (or the ring's close). -EBUSY if buffers are already
// registered, -EINVAL for count 0 or above 16384, -ENOMEM past RLIMIT_MEMLOCK (without
// CAP_IPC_LOCK), -EFAULT for memory that cannot be pinned, -EOPNOTSUPP for file-backed
// memory.
int register_buffers(const Ring& ring, const iovec* iovs, std::uint32_t count) noexcept;

// Mirrors io_uring_unregister_buffers(). -ENXIO when none are registered.
int unregister_buffers(const Ring& ring) noexcept;

// Mirrors io_uring_register_ring_fd() for any number of rings. Available since 5.18.
// Registers each updates[i].data (an io_uring fd) in this task's table of ring fds at
// slot updates[i].offset, or, with offset -1U, at a free slot the kernel writes back
// into offset. io_uring_enter (and, since 6.3, io_uring_register) then take that slot
// as their fd when passed IORING_ENTER_REGISTERED_RING. Returns how many it
// registered (the first `ret` entries), or -errno: -EINVAL for count above 16 or a slot
// past 15, -EBUSY when no slot is free, -EOPNOTSUPP/-EBADF when data is not a ring.
// The slots belong to the calling thread and hold a reference to their ring; closing
// the ring's fd does not free them.
int register_ring_fds(const Ring& ring, RsrcUpdate* updates, std::uint32_t count) noexcept;

// Mirrors io_uring_unregister_ring_fd(). Frees the slots updates[i].offset (data and
// resv must be 0; an empty slot is no error); returns how many entries it went through,
// or -EINVAL for count above 16, a slot past 15 or nonzero data.
int unregister_ring_fds(const Ring& ring, const RsrcUpdate* updates, std::uint32_t count) noexcept;

// Mirrors io_uring_register_buf_ring(). Available since 5.19. Registers a ring of
// provided buffers, group reg.bgid, for SQEs with IOSQE_BUFFER_SELECT (prep_recv_multishot).
// reg.ring_addr: page-aligned memory of reg.ring_entries Buf entries (a power of two, at
// most 32768), which must stay mapped until unregister_buf_ring; with
// pbuf_ring_flag::mmap (6.4) the kernel allocates it instead. To give the kernel
// buffers, fill entries tail..tail+n-1 (masked) and then store tail+n into ring[0].resv
// with release semantics, as liburing's io_uring_buf_ring_advance; entries and tail
// written before this call are published by the call itself. -EEXIST if the group
// exists, -EINVAL for bad sizes, alignment, flags or nonzero resv.
int register_buf_ring(const Ring& ring, const BufReg& reg) noexcept;

// Mirrors io_uring_unregister_buf_ring(). Available since 5.19. -ENOENT when no buffer
// group `bgid` exists, -EINVAL when it holds classic (PROVIDE_BUFFERS) buffers. The
// ring memory may be unmapped once this returns.
int unregister_buf_ring(const Ring& ring, std::uint16_t bgid) noexcept;

// Mirrors io_uring_register_sync_cancel(). Available since 6.0: cancels matching
// requests and waits (up to reg.timeout; -1/-1 for no limit) until they have completed.
// Returns 0, -ENOENT (nothing matched), -ETIME, -EINVAL.
int register_sync_cancel(const Ring& ring, const SyncCancelReg& reg) noexcept;

}  // namespace luring::uring
