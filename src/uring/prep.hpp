// SPDX-License-Identifier: Apache-2.0
// SQE preparation: one prep_<op> per opcode, each a thin layer over prep_rw.
// Mirrors liburing.h's io_uring_prep_* (same argument order). None of them sets
// user_data: the caller owns it. They expect a zeroed SQE, as Ring::get_sqe returns, so
// no field from an earlier use of the slot survives (liburing io_uring_initialize_sqe).
// "Since" gives the kernel that first supported the opcode; on older kernels the CQE
// carries -EINVAL.
#pragma once

#include <cstdint>

#include "abi.hpp"

struct iovec;
struct sockaddr;
struct statx;

namespace luring::uring {

inline std::uint64_t to_u64(const void* p) noexcept {
    return static_cast<std::uint64_t>(reinterpret_cast<std::uintptr_t>(p));
}

// Mirrors io_uring_prep_rw(): the fields every opcode shares.
inline void prep_rw(Sqe& sqe, Op op, int fd, std::uint64_t addr, std::uint32_t len,
                    std::uint64_t off) noexcept {
    sqe.opcode = static_cast<std::uint8_t>(op);
    sqe.fd = fd;
    sqe.off = off;
    sqe.addr = addr;
    sqe.len = len;
}

// Since 5.1.
inline void prep_nop(Sqe& sqe) noexcept { prep_rw(sqe, Op::nop, -1, 0, 0, 0); }

// Since 5.6. `offset` (u64)-1 means "the file position" (FEAT_RW_CUR_POS).
inline void prep_read(Sqe& sqe, int fd, void* buf, std::uint32_t nbytes,
                      std::uint64_t offset) noexcept {
    prep_rw(sqe, Op::read, fd, to_u64(buf), nbytes, offset);
}

// Since 5.6.
inline void prep_write(Sqe& sqe, int fd, const void* buf, std::uint32_t nbytes,
                       std::uint64_t offset) noexcept {
    prep_rw(sqe, Op::write, fd, to_u64(buf), nbytes, offset);
}

// Since 5.1. The iovec array must stay valid until the SQE is submitted.
inline void prep_readv(Sqe& sqe, int fd, const iovec* iov, std::uint32_t nr,
                       std::uint64_t offset) noexcept {
    prep_rw(sqe, Op::readv, fd, to_u64(iov), nr, offset);
}

// Since 5.1.
inline void prep_writev(Sqe& sqe, int fd, const iovec* iov, std::uint32_t nr,
                        std::uint64_t offset) noexcept {
    prep_rw(sqe, Op::writev, fd, to_u64(iov), nr, offset);
}

// Since 5.6. `flags` are MSG_* for recv(2).
inline void prep_recv(Sqe& sqe, int fd, void* buf, std::uint32_t len, int flags) noexcept {
    prep_rw(sqe, Op::recv, fd, to_u64(buf), len, 0);
    sqe.msg_flags = static_cast<std::uint32_t>(flags);
}

// Since 5.6. `flags` are MSG_* for send(2).
inline void prep_send(Sqe& sqe, int fd, const void* buf, std::uint32_t len, int flags) noexcept {
    prep_rw(sqe, Op::send, fd, to_u64(buf), len, 0);
    sqe.msg_flags = static_cast<std::uint32_t>(flags);
}

// Since 5.5. `addrlen` is in/out: set it to the size of `addr` before submitting; both
// must stay valid until the CQE. `flags` are accept4(2)'s SOCK_*.
inline void prep_accept(Sqe& sqe, int fd, sockaddr* addr, std::uint32_t* addrlen,
                        int flags) noexcept {
    prep_rw(sqe, Op::accept, fd, to_u64(addr), 0, to_u64(addrlen));
    sqe.accept_flags = static_cast<std::uint32_t>(flags);
}

// Since 5.5. `addr` must stay valid until the CQE.
inline void prep_connect(Sqe& sqe, int fd, const sockaddr* addr, std::uint32_t addrlen) noexcept {
    prep_rw(sqe, Op::connect, fd, to_u64(addr), 0, addrlen);
}

// Since 5.6. `path` must stay valid until the CQE.
inline void prep_openat(Sqe& sqe, int dfd, const char* path, int flags,
                        std::uint32_t mode) noexcept {
    prep_rw(sqe, Op::openat, dfd, to_u64(path), mode, 0);
    sqe.open_flags = static_cast<std::uint32_t>(flags);
}

// Since 5.6.
inline void prep_close(Sqe& sqe, int fd) noexcept { prep_rw(sqe, Op::close, fd, 0, 0, 0); }

// Since 5.1. `flags`: 0 or kFsyncDatasync.
inline void prep_fsync(Sqe& sqe, int fd, std::uint32_t flags) noexcept {
    prep_rw(sqe, Op::fsync, fd, 0, 0, 0);
    sqe.fsync_flags = flags;
}

// Since 5.4. Completes with -ETIME when `ts` elapses, or with 0 once `count` other
// completions have been posted (count 0: a pure timer). The kernel copies `ts` when it
// prepares the SQE, so it must stay valid until submitted (with SQPOLL: until the CQE).
inline void prep_timeout(Sqe& sqe, const KernelTimespec* ts, std::uint32_t count,
                         std::uint32_t flags) noexcept {
    prep_rw(sqe, Op::timeout, -1, to_u64(ts), 1, count);
    sqe.timeout_flags = flags;
}

// Since 5.5. Removes the timeout whose user_data is `user_data`.
inline void prep_timeout_remove(Sqe& sqe, std::uint64_t user_data, std::uint32_t flags) noexcept {
    prep_rw(sqe, Op::timeout_remove, -1, user_data, 0, 0);
    sqe.timeout_flags = flags;
}

// Since 5.5. Bounds the SQE linked before it (IOSQE_IO_LINK).
inline void prep_link_timeout(Sqe& sqe, const KernelTimespec* ts, std::uint32_t flags) noexcept {
    prep_rw(sqe, Op::link_timeout, -1, to_u64(ts), 1, 0);
    sqe.timeout_flags = flags;
}

// Since 5.1. `poll_mask` is POLLIN etc.; the kernel word is half-word swapped on
// big-endian hosts (liburing __io_uring_prep_poll_mask).
inline void prep_poll_add(Sqe& sqe, int fd, std::uint32_t poll_mask) noexcept {
    prep_rw(sqe, Op::poll_add, fd, 0, 0, 0);
#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_BIG_ENDIAN__
    poll_mask = (poll_mask << 16) | (poll_mask >> 16);
#endif
    sqe.poll32_events = poll_mask;
}

// Since 5.1. Removes the poll whose user_data is `user_data`.
inline void prep_poll_remove(Sqe& sqe, std::uint64_t user_data) noexcept {
    prep_rw(sqe, Op::poll_remove, -1, user_data, 0, 0);
}

// Since 5.5. Cancels the request whose user_data is `user_data`; `flags` are
// cancel_flag::* (ALL, ANY since 5.19). Completes with the number found or -ENOENT /
// -EALREADY.
inline void prep_cancel(Sqe& sqe, std::uint64_t user_data, std::uint32_t flags) noexcept {
    prep_rw(sqe, Op::async_cancel, -1, user_data, 0, 0);
    sqe.cancel_flags = flags;
}

// Since 5.19. Cancels requests on file descriptor `fd`.
inline void prep_cancel_fd(Sqe& sqe, int fd, std::uint32_t flags) noexcept {
    prep_rw(sqe, Op::async_cancel, fd, 0, 0, 0);
    sqe.cancel_flags = flags | cancel_flag::fd;
}

// Since 5.11. `how` is SHUT_RD / SHUT_WR / SHUT_RDWR.
inline void prep_shutdown(Sqe& sqe, int fd, int how) noexcept {
    prep_rw(sqe, Op::shutdown, fd, 0, static_cast<std::uint32_t>(how), 0);
}

// Since 5.19. Completes with the new fd.
inline void prep_socket(Sqe& sqe, int domain, int type, int protocol,
                        std::uint32_t flags) noexcept {
    prep_rw(sqe, Op::socket, domain, 0, static_cast<std::uint32_t>(protocol),
            static_cast<std::uint32_t>(type));
    sqe.rw_flags = flags;
}

// Since 5.7. Offsets of -1 mean "no offset" (pipes) or the file position.
inline void prep_splice(Sqe& sqe, int fd_in, std::int64_t off_in, int fd_out,
                        std::int64_t off_out, std::uint32_t nbytes,
                        std::uint32_t splice_flags) noexcept {
    prep_rw(sqe, Op::splice, fd_out, 0, nbytes, static_cast<std::uint64_t>(off_out));
    sqe.splice_off_in = static_cast<std::uint64_t>(off_in);
    sqe.splice_fd_in = fd_in;
    sqe.splice_flags = splice_flags;
}

// Since 5.6. `path` and `statxbuf` must stay valid until the CQE.
inline void prep_statx(Sqe& sqe, int dfd, const char* path, int flags, std::uint32_t mask,
                       struct statx* statxbuf) noexcept {
    prep_rw(sqe, Op::statx, dfd, to_u64(path), mask, to_u64(statxbuf));
    sqe.statx_flags = static_cast<std::uint32_t>(flags);
}

}  // namespace luring::uring
