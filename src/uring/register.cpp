// SPDX-License-Identifier: Apache-2.0
#include "register.hpp"

#include <cerrno>

#include "sys.hpp"

namespace luring::uring {

namespace {

// struct io_uring_probe followed by room for every possible opcode.
struct ProbeBuffer {
    ProbeHeader header;
    ProbeOp ops[256];
};

}  // namespace

int register_probe(const Ring& ring, OpSupport& out) noexcept {
    if (!ring.is_open()) return -EBADF;
    ProbeBuffer buf{};  // must be all zero
    int ret = sys::io_uring_register(ring.fd(), reg::probe, &buf, 256);
    if (ret < 0) return ret;
    out = OpSupport{};
    out.last_op = buf.header.last_op;
    for (unsigned i = 0; i < buf.header.ops_len && i < 256; ++i) {
        const ProbeOp& op = buf.ops[i];
        out.supported[op.op] = (op.flags & kOpSupported) != 0;
    }
    return 0;
}

int register_files(const Ring& ring, const int* fds, std::uint32_t count) noexcept {
    if (!ring.is_open()) return -EBADF;
    return sys::io_uring_register(ring.fd(), reg::files, fds, count);
}

int unregister_files(const Ring& ring) noexcept {
    if (!ring.is_open()) return -EBADF;
    return sys::io_uring_register(ring.fd(), reg::unregister_files, nullptr, 0);
}

int register_buffers(const Ring& ring, const iovec* iovs, std::uint32_t count) noexcept {
    if (!ring.is_open()) return -EBADF;
    return sys::io_uring_register(ring.fd(), reg::buffers, iovs, count);
}

int unregister_buffers(const Ring& ring) noexcept {
    if (!ring.is_open()) return -EBADF;
    return sys::io_uring_register(ring.fd(), reg::unregister_buffers, nullptr, 0);
}

int register_ring_fds(const Ring& ring, RsrcUpdate* updates, std::uint32_t count) noexcept {
    if (!ring.is_open()) return -EBADF;
    return sys::io_uring_register(ring.fd(), reg::ring_fds, updates, count);
}

int unregister_ring_fds(const Ring& ring, const RsrcUpdate* updates,
                        std::uint32_t count) noexcept {
    if (!ring.is_open()) return -EBADF;
    return sys::io_uring_register(ring.fd(), reg::unregister_ring_fds, updates, count);
}

int register_buf_ring(const Ring& ring, const BufReg& reg) noexcept {
    if (!ring.is_open()) return -EBADF;
    return sys::io_uring_register(ring.fd(), reg::pbuf_ring, &reg, 1);
}

int unregister_buf_ring(const Ring& ring, std::uint16_t bgid) noexcept {
    if (!ring.is_open()) return -EBADF;
    BufReg arg{};  // the kernel wants everything but bgid zero
    arg.bgid = bgid;
    return sys::io_uring_register(ring.fd(), reg::unregister_pbuf_ring, &arg, 1);
}

int register_sync_cancel(const Ring& ring, const SyncCancelReg& reg) noexcept {
    if (!ring.is_open()) return -EBADF;
    return sys::io_uring_register(ring.fd(), reg::sync_cancel, &reg, 1);
}

}  // namespace luring::uring
