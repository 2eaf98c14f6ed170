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
struct msghdr;
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

// Mirrors io_uring_prep_timeout_update(). Since 5.11. Gives the pending timeout whose
// user_data is `user_data` the new time `ts` (relative unless timeout_flag::abs is in
// `flags`), counting from now. Completes with 0, or -ENOENT when no such timeout is
// pending; the timeout itself then completes as if armed with `ts`. The kernel copies
// `ts` when it prepares the SQE (with SQPOLL: keep it until the CQE).
inline void prep_timeout_update(Sqe& sqe, const KernelTimespec* ts, std::uint64_t user_data,
                                unsigned flags) noexcept {
    prep_rw(sqe, Op::timeout_remove, -1, user_data, 0, to_u64(ts));
    sqe.timeout_flags = flags | timeout_flag::update;
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

// Mirrors io_uring_prep_poll_multishot(). Since 5.13. Like prep_poll_add, but stays
// armed: a CQE (res the ready mask) each time `fd` becomes ready, with cqe_flag::more
// set on all but the last one (prep_poll_remove, or an error, ends it). Edge-triggered,
// as io_uring polls are unless poll_flag::add_level (6.0) is in len: data left unread
// does not fire again; new data does.
inline void prep_poll_multishot(Sqe& sqe, int fd, std::uint32_t poll_mask) noexcept {
    prep_poll_add(sqe, fd, poll_mask);
    sqe.len = poll_flag::add_multi;
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

// ---- Files and directories -------------------------------------------------------------
// The kernel copies path strings when it prepares the SQE: they must stay valid until
// submitted (with SQPOLL, where the poller prepares it later: until the CQE).

// Mirrors io_uring_prep_unlinkat(). Since 5.11. `flags`: 0 or AT_REMOVEDIR (rmdir).
// Completes with 0 or -errno (-ENOENT, -EISDIR without AT_REMOVEDIR, -ENOTEMPTY).
inline void prep_unlinkat(Sqe& sqe, int dfd, const char* path, int flags) noexcept {
    prep_rw(sqe, Op::unlinkat, dfd, to_u64(path), 0, 0);
    sqe.unlink_flags = static_cast<std::uint32_t>(flags);
}

// Mirrors io_uring_prep_renameat(). Since 5.11. `flags` are renameat2(2)'s RENAME_*.
// The new directory fd travels in len and the new path in addr2, as in liburing.
inline void prep_renameat(Sqe& sqe, int olddfd, const char* oldpath, int newdfd,
                          const char* newpath, unsigned flags) noexcept {
    prep_rw(sqe, Op::renameat, olddfd, to_u64(oldpath), static_cast<std::uint32_t>(newdfd),
            to_u64(newpath));
    sqe.rename_flags = flags;
}

// Mirrors io_uring_prep_mkdirat(). Since 5.15. `mode` is filtered by the umask.
inline void prep_mkdirat(Sqe& sqe, int dfd, const char* path, std::uint32_t mode) noexcept {
    prep_rw(sqe, Op::mkdirat, dfd, to_u64(path), mode, 0);
}

// Mirrors io_uring_prep_symlinkat(). Since 5.15. Creates `linkpath` (relative to
// `newdirfd`) pointing at `target`; the target string is stored as is, not resolved.
inline void prep_symlinkat(Sqe& sqe, const char* target, int newdirfd,
                           const char* linkpath) noexcept {
    prep_rw(sqe, Op::symlinkat, newdirfd, to_u64(target), 0, to_u64(linkpath));
}

// Mirrors io_uring_prep_linkat(). Since 5.15. `flags`: 0 or AT_SYMLINK_FOLLOW.
inline void prep_linkat(Sqe& sqe, int olddfd, const char* oldpath, int newdfd, const char* newpath,
                        int flags) noexcept {
    prep_rw(sqe, Op::linkat, olddfd, to_u64(oldpath), static_cast<std::uint32_t>(newdfd),
            to_u64(newpath));
    sqe.hardlink_flags = static_cast<std::uint32_t>(flags);
}

// Mirrors io_uring_prep_fallocate(). Since 5.6. `mode` is fallocate(2)'s FALLOC_FL_*
// (0: allocate and extend). The fields are shuffled as the kernel reads them: the
// length goes in addr and the mode in len.
inline void prep_fallocate(Sqe& sqe, int fd, int mode, std::uint64_t offset,
                           std::uint64_t len) noexcept {
    prep_rw(sqe, Op::fallocate, fd, len, static_cast<std::uint32_t>(mode), offset);
}

// Mirrors io_uring_prep_ftruncate(). Since 6.9. Sets the size of `fd` to `len`.
inline void prep_ftruncate(Sqe& sqe, int fd, std::uint64_t len) noexcept {
    prep_rw(sqe, Op::ftruncate, fd, 0, 0, len);
}

// Mirrors io_uring_prep_tee(). Since 5.8. Duplicates up to `nbytes` from pipe `fd_in` to
// pipe `fd_out` without consuming them; completes with the count (0: `fd_in` empty
// and without writers). `splice_flags` are SPLICE_F_*.
inline void prep_tee(Sqe& sqe, int fd_in, int fd_out, std::uint32_t nbytes,
                     std::uint32_t splice_flags) noexcept {
    prep_rw(sqe, Op::tee, fd_out, 0, nbytes, 0);
    sqe.splice_off_in = 0;
    sqe.splice_fd_in = fd_in;
    sqe.splice_flags = splice_flags;
}

// ---- Registered buffers ------------------------------------------------------------------

// Mirrors io_uring_prep_read_fixed(). Since 5.1. [buf, buf + nbytes) must lie inside
// registered buffer `buf_index` (register_buffers), else -EFAULT; that memory belongs
// to the registration, which must outlive the CQE. -EFAULT/-EINVAL for a bad index.
inline void prep_read_fixed(Sqe& sqe, int fd, void* buf, std::uint32_t nbytes, std::uint64_t offset,
                            int buf_index) noexcept {
    prep_rw(sqe, Op::read_fixed, fd, to_u64(buf), nbytes, offset);
    sqe.buf_index = static_cast<std::uint16_t>(buf_index);
}

// Mirrors io_uring_prep_write_fixed(). Since 5.1. As prep_read_fixed.
inline void prep_write_fixed(Sqe& sqe, int fd, const void* buf, std::uint32_t nbytes,
                             std::uint64_t offset, int buf_index) noexcept {
    prep_rw(sqe, Op::write_fixed, fd, to_u64(buf), nbytes, offset);
    sqe.buf_index = static_cast<std::uint16_t>(buf_index);
}

// ---- Sockets -----------------------------------------------------------------------------

// Mirrors io_uring_prep_sendmsg(). Since 5.3. `flags` are MSG_*. `msg` and everything
// it points to (iovecs, data, name, control) must stay valid until the CQE.
inline void prep_sendmsg(Sqe& sqe, int fd, const msghdr* msg, unsigned flags) noexcept {
    prep_rw(sqe, Op::sendmsg, fd, to_u64(msg), 1, 0);
    sqe.msg_flags = flags;
}

// Mirrors io_uring_prep_recvmsg(). Since 5.3. The kernel writes msg_namelen,
// msg_controllen and msg_flags back into `msg` at completion: it and everything it
// points to must stay valid until the CQE.
inline void prep_recvmsg(Sqe& sqe, int fd, msghdr* msg, unsigned flags) noexcept {
    prep_rw(sqe, Op::recvmsg, fd, to_u64(msg), 1, 0);
    sqe.msg_flags = flags;
}

// Mirrors io_uring_prep_send_zc(). Since 6.0. Zero-copy send: `zc_flags` are
// recvsend_flag::* (poll_first, send_zc_report_usage, fixed_buf with buf_index set by
// the caller). Two CQEs with the same user_data: the result, with cqe_flag::more set
// (unless it failed), then a notification with cqe_flag::notif and res 0 once the
// kernel no longer reads `buf` (res has kNotifUsageZcCopied if it copied after all).
// `buf` must stay valid and unchanged until that notification. -EOPNOTSUPP for
// sockets without zero-copy support (AF_UNIX, for one).
inline void prep_send_zc(Sqe& sqe, int fd, const void* buf, std::uint32_t len, int flags,
                         unsigned zc_flags) noexcept {
    prep_rw(sqe, Op::send_zc, fd, to_u64(buf), len, 0);
    sqe.msg_flags = static_cast<std::uint32_t>(flags);
    sqe.ioprio = static_cast<std::uint16_t>(zc_flags);
}

// Mirrors io_uring_prep_send_set_addr(). Since 6.0. Turns an SQE already prepared by
// prep_send or prep_send_zc into a sendto(2) to `addr` (unconnected datagram sockets).
// `addr` must stay valid until the CQE. Does not go through prep_rw: it only adds to
// an SQE prepared by one.
inline void prep_send_set_addr(Sqe& sqe, const sockaddr* addr, std::uint16_t addrlen) noexcept {
    sqe.addr2 = to_u64(addr);
    sqe.addr_len = addrlen;
}

// Mirrors io_uring_prep_bind(). Since 6.11. `addr` must stay valid until submitted (the
// kernel copies it while preparing; with SQPOLL: until the CQE).
inline void prep_bind(Sqe& sqe, int fd, const sockaddr* addr, std::uint32_t addrlen) noexcept {
    prep_rw(sqe, Op::bind, fd, to_u64(addr), 0, addrlen);
}

// Mirrors io_uring_prep_listen(). Since 6.11.
inline void prep_listen(Sqe& sqe, int fd, int backlog) noexcept {
    prep_rw(sqe, Op::listen, fd, 0, static_cast<std::uint32_t>(backlog), 0);
}

// Mirrors io_uring_prep_multishot_accept(). Since 5.19. One CQE per accepted connection
// (res the new fd), each with cqe_flag::more while the request stays armed; a CQE
// without it is the last one (an error, or prep_cancel). `addr`/`addrlen` are written
// for every connection, so with several in flight they mean little: pass nullptr and
// ask getpeername(2), or keep them valid until the last CQE.
inline void prep_multishot_accept(Sqe& sqe, int fd, sockaddr* addr, std::uint32_t* addrlen,
                                  int flags) noexcept {
    prep_accept(sqe, fd, addr, addrlen, flags);
    sqe.ioprio |= accept_flag::multishot;
}

// Mirrors io_uring_prep_recv_multishot(), but with buffer selection built in (a
// multishot recv without it is -EINVAL): sets IOSQE_BUFFER_SELECT and `buf_group`
// itself, so callers add other IOSQE_* flags with |=. Since 6.0 (ring-provided buffers
// since 5.19). One CQE per message: res the byte count, cqe_flag::buffer set and the
// buffer id in flags >> kCqeBufferShift, cqe_flag::more while it stays armed; it ends
// with -ENOBUFS when the group runs dry, or 0 at EOF. `flags` are MSG_* (not WAITALL).
inline void prep_recv_multishot(Sqe& sqe, int fd, std::uint16_t buf_group, int flags) noexcept {
    prep_rw(sqe, Op::recv, fd, 0, 0, 0);
    sqe.msg_flags = static_cast<std::uint32_t>(flags);
    sqe.ioprio |= recvsend_flag::recv_multishot;
    sqe.flags |= sqe_flag::buffer_select;
    sqe.buf_group = buf_group;
}

}  // namespace luring::uring
