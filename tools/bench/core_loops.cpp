// SPDX-License-Identifier: Apache-2.0
// The workloads through the luring core (luring::uring::Ring), written as a C++ user of
// the core would: get_sqe, prep, submit_and_wait, copy_cqes.
#include <cerrno>

#include "loops.hpp"
#include "prep.hpp"
#include "ring.hpp"

namespace luring::bench {

namespace {

using uring::Cqe;
using uring::Ring;
using uring::Sqe;

constexpr unsigned kMaxBatch = 256;

int open_ring(Ring& ring, const Workload& w) {
    uring::Params p{};
    p.flags = w.setup_flags;
    return ring.init(w.entries, p);
}

// Consumes `n` completions (the SQEs are already queued), waiting as needed. Each must
// have res == want; -errno or -EIO otherwise.
int submit_and_reap(Ring& ring, unsigned n, int want) {
    Cqe cqes[kMaxBatch];
    unsigned got = 0;
    int ret = ring.submit_and_wait(n);
    if (ret < 0) return ret;
    for (;;) {
        unsigned k = ring.copy_cqes(cqes, n - got);
        for (unsigned i = 0; i < k; ++i) {
            if (cqes[i].res != want) return cqes[i].res < 0 ? cqes[i].res : -EIO;
        }
        got += k;
        if (got == n) return 0;
        if (k == 0) {
            ret = ring.submit_and_wait(n - got);
            if (ret < 0 && ret != -EINTR) return ret;
        }
    }
}

}  // namespace

int core_nop(const Workload& w, const RunSpec& spec, Result& out) {
    Ring ring;
    if (int ret = open_ring(ring, w); ret < 0) return ret;
    return timed(spec, out, [&]() -> int {
        for (unsigned i = 0; i < w.batch; ++i) {
            Sqe* sqe = ring.get_sqe();
            uring::prep_nop(*sqe);
            sqe->user_data = i;
        }
        int ret = submit_and_reap(ring, w.batch, 0);
        return ret < 0 ? ret : static_cast<int>(w.batch);
    });
}

int core_write(const Workload& w, const RunSpec& spec, Result& out) {
    Ring ring;
    if (int ret = open_ring(ring, w); ret < 0) return ret;
    char payload[kMessage];
    std::memset(payload, 'x', sizeof(payload));
    return timed(spec, out, [&]() -> int {
        for (unsigned i = 0; i < w.batch; ++i) {
            Sqe* sqe = ring.get_sqe();
            uring::prep_write(*sqe, w.fd, payload, kMessage, 0);
            sqe->user_data = i;
        }
        int ret = submit_and_reap(ring, w.batch, kMessage);
        return ret < 0 ? ret : static_cast<int>(w.batch);
    });
}

int core_read(const Workload& w, const RunSpec& spec, Result& out) {
    Ring ring;
    if (int ret = open_ring(ring, w); ret < 0) return ret;
    // One buffer per request in flight, as a binding keeps one per slot.
    std::vector<char> bufs(std::size_t{w.batch} * kBlock);
    std::uint32_t next = 0;
    return timed(spec, out, [&]() -> int {
        for (unsigned i = 0; i < w.batch; ++i) {
            Sqe* sqe = ring.get_sqe();
            uring::prep_read(*sqe, w.fd, &bufs[std::size_t{i} * kBlock], kBlock,
                             w.offsets[next++ & (kOffsetCount - 1)]);
            sqe->user_data = i;
        }
        int ret = submit_and_reap(ring, w.batch, kBlock);
        return ret < 0 ? ret : static_cast<int>(w.batch);
    });
}

int core_pingpong(const Workload& w, const RunSpec& spec, Result& out) {
    Ring ring;
    if (int ret = open_ring(ring, w); ret < 0) return ret;
    char msg[kMessage];
    char buf_a[kMessage];
    char buf_b[kMessage];
    std::memset(msg, 'p', sizeof(msg));
    return timed(spec, out, [&]() -> int {
        // A sends, B receives: the send runs first, so the recv finds the data inline.
        Sqe* sqe = ring.get_sqe();
        uring::prep_send(*sqe, w.fd, msg, kMessage, 0);
        sqe = ring.get_sqe();
        uring::prep_recv(*sqe, w.peer_fd, buf_b, kMessage, 0);
        int ret = submit_and_reap(ring, 2, kMessage);
        if (ret < 0) return ret;
        // B echoes what it got, A receives.
        sqe = ring.get_sqe();
        uring::prep_send(*sqe, w.peer_fd, buf_b, kMessage, 0);
        sqe = ring.get_sqe();
        uring::prep_recv(*sqe, w.fd, buf_a, kMessage, 0);
        ret = submit_and_reap(ring, 2, kMessage);
        return ret < 0 ? ret : 1;
    });
}

}  // namespace luring::bench
