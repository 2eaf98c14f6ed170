// SPDX-License-Identifier: Apache-2.0
// The same workloads written against liburing, the floor a binding is measured against.
// Built only when liburing is found; the product never links it. Written as liburing's
// own examples do: get_sqe, prep, submit_and_wait, for_each_cqe + cq_advance.
#include <liburing.h>

#include <cerrno>

#include "loops.hpp"

namespace luring::bench {

namespace {

// Owns the ring for one measurement.
struct LiburingRing {
    io_uring ring{};
    bool open = false;
    ~LiburingRing() {
        if (open) io_uring_queue_exit(&ring);
    }
    int init(const Workload& w) {
        int ret = io_uring_queue_init(w.entries, &ring, w.setup_flags);
        open = ret == 0;
        return ret;
    }
};

// Submits the queued SQEs and consumes `n` completions, each of which must be `want`.
int submit_and_reap(io_uring* ring, unsigned n, int want) {
    int ret = io_uring_submit_and_wait(ring, n);
    if (ret < 0) return ret;
    unsigned got = 0;
    for (;;) {
        unsigned head = 0;
        unsigned seen = 0;
        io_uring_cqe* cqe = nullptr;
        io_uring_for_each_cqe(ring, head, cqe) {
            if (cqe->res != want) return cqe->res < 0 ? cqe->res : -EIO;
            ++seen;
        }
        io_uring_cq_advance(ring, seen);
        got += seen;
        if (got >= n) return 0;
        if (seen == 0) {
            ret = io_uring_submit_and_wait(ring, n - got);
            if (ret < 0 && ret != -EINTR) return ret;
        }
    }
}

}  // namespace

int liburing_nop(const Workload& w, const RunSpec& spec, Result& out) {
    LiburingRing r;
    if (int ret = r.init(w); ret < 0) return ret;
    return timed(spec, out, [&]() -> int {
        for (unsigned i = 0; i < w.batch; ++i) {
            io_uring_sqe* sqe = io_uring_get_sqe(&r.ring);
            io_uring_prep_nop(sqe);
            sqe->user_data = i;
        }
        int ret = submit_and_reap(&r.ring, w.batch, 0);
        return ret < 0 ? ret : static_cast<int>(w.batch);
    });
}

int liburing_write(const Workload& w, const RunSpec& spec, Result& out) {
    LiburingRing r;
    if (int ret = r.init(w); ret < 0) return ret;
    char payload[kMessage];
    std::memset(payload, 'x', sizeof(payload));
    return timed(spec, out, [&]() -> int {
        for (unsigned i = 0; i < w.batch; ++i) {
            io_uring_sqe* sqe = io_uring_get_sqe(&r.ring);
            io_uring_prep_write(sqe, w.fd, payload, kMessage, 0);
            sqe->user_data = i;
        }
        int ret = submit_and_reap(&r.ring, w.batch, kMessage);
        return ret < 0 ? ret : static_cast<int>(w.batch);
    });
}

int liburing_read(const Workload& w, const RunSpec& spec, Result& out) {
    LiburingRing r;
    if (int ret = r.init(w); ret < 0) return ret;
    std::vector<char> bufs(std::size_t{w.batch} * kBlock);
    std::uint32_t next = 0;
    return timed(spec, out, [&]() -> int {
        for (unsigned i = 0; i < w.batch; ++i) {
            io_uring_sqe* sqe = io_uring_get_sqe(&r.ring);
            io_uring_prep_read(sqe, w.fd, &bufs[std::size_t{i} * kBlock], kBlock,
                               w.offsets[next++ & (kOffsetCount - 1)]);
            sqe->user_data = i;
        }
        int ret = submit_and_reap(&r.ring, w.batch, kBlock);
        return ret < 0 ? ret : static_cast<int>(w.batch);
    });
}

int liburing_pingpong(const Workload& w, const RunSpec& spec, Result& out) {
    LiburingRing r;
    if (int ret = r.init(w); ret < 0) return ret;
    char msg[kMessage];
    char buf_a[kMessage];
    char buf_b[kMessage];
    std::memset(msg, 'p', sizeof(msg));
    return timed(spec, out, [&]() -> int {
        io_uring_sqe* sqe = io_uring_get_sqe(&r.ring);
        io_uring_prep_send(sqe, w.fd, msg, kMessage, 0);
        sqe = io_uring_get_sqe(&r.ring);
        io_uring_prep_recv(sqe, w.peer_fd, buf_b, kMessage, 0);
        int ret = submit_and_reap(&r.ring, 2, kMessage);
        if (ret < 0) return ret;
        sqe = io_uring_get_sqe(&r.ring);
        io_uring_prep_send(sqe, w.peer_fd, buf_b, kMessage, 0);
        sqe = io_uring_get_sqe(&r.ring);
        io_uring_prep_recv(sqe, w.fd, buf_a, kMessage, 0);
        ret = submit_and_reap(&r.ring, 2, kMessage);
        return ret < 0 ? ret : 1;
    });
}

}  // namespace luring::bench
