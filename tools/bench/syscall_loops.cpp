// SPDX-License-Identifier: Apache-2.0
// The workloads with one plain system call per operation: what io_uring's batching is
// meant to beat (write/read) or match (ping-pong, where each step waits for the last).
#include <cerrno>

#include "loops.hpp"

namespace luring::bench {

namespace {

// A transfer's result: 0 if it moved `want` bytes, else -errno or -EIO.
int check(ssize_t got, std::size_t want) {
    if (got == static_cast<ssize_t>(want)) return 0;
    return got < 0 ? -errno : -EIO;
}

}  // namespace

int syscall_write(const Workload& w, const RunSpec& spec, Result& out) {
    char payload[kMessage];
    std::memset(payload, 'x', sizeof(payload));
    return timed(spec, out, [&]() -> int {
        for (unsigned i = 0; i < w.batch; ++i) {
            if (int ret = check(::write(w.fd, payload, kMessage), kMessage); ret < 0) return ret;
        }
        return static_cast<int>(w.batch);
    });
}

int syscall_read(const Workload& w, const RunSpec& spec, Result& out) {
    std::vector<char> buf(kBlock);
    std::uint32_t next = 0;
    return timed(spec, out, [&]() -> int {
        for (unsigned i = 0; i < w.batch; ++i) {
            const auto off = static_cast<off_t>(w.offsets[next++ & (kOffsetCount - 1)]);
            if (int ret = check(::pread(w.fd, buf.data(), kBlock, off), kBlock); ret < 0) {
                return ret;
            }
        }
        return static_cast<int>(w.batch);
    });
}

int syscall_pingpong(const Workload& w, const RunSpec& spec, Result& out) {
    char msg[kMessage];
    char buf_a[kMessage];
    char buf_b[kMessage];
    std::memset(msg, 'p', sizeof(msg));
    return timed(spec, out, [&]() -> int {
        int ret = check(::send(w.fd, msg, kMessage, 0), kMessage);
        if (ret == 0) ret = check(::recv(w.peer_fd, buf_b, kMessage, MSG_WAITALL), kMessage);
        if (ret == 0) ret = check(::send(w.peer_fd, buf_b, kMessage, 0), kMessage);
        if (ret == 0) ret = check(::recv(w.fd, buf_a, kMessage, MSG_WAITALL), kMessage);
        return ret < 0 ? ret : 1;
    });
}

}  // namespace luring::bench
