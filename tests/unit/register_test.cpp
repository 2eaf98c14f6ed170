// SPDX-License-Identifier: Apache-2.0
#include <unistd.h>

#include <cerrno>

#include "helpers.hpp"
#include "prep.hpp"
#include "sys.hpp"

using namespace luring::uring;
using luring::test::make_ring;

TEST_CASE("register_probe: the basic opcodes are there and nothing past last_op") {
    Ring ring = make_ring(2);
    OpSupport ops;
    int ret = register_probe(ring, ops);
    if (ret == -EINVAL) {
        MESSAGE("skipped: kernel lacks IORING_REGISTER_PROBE (5.6)");
        return;
    }
    REQUIRE(ret == 0);
    CHECK(ops.supported[static_cast<unsigned>(Op::nop)]);
    CHECK(ops.supported[static_cast<unsigned>(Op::readv)]);
    CHECK(ops.supported[static_cast<unsigned>(Op::write)]);
    CHECK(ops.last_op >= static_cast<unsigned>(Op::write));
    for (unsigned i = ops.last_op + 1U; i < 256; ++i) CHECK_FALSE(ops.supported[i]);
}

TEST_CASE("register_probe ABI: a dirty buffer is refused, nr_args 0 gives ops_len 0") {
    Ring ring = make_ring(2);
    struct {
        ProbeHeader header;
        ProbeOp ops[4];
    } buf{};
    CHECK(sys::io_uring_register(ring.fd(), reg::probe, &buf, 0) == 0);
    CHECK(buf.header.ops_len == 0);
    CHECK(buf.header.last_op != 0);
    buf = {};
    buf.ops[2].resv2 = 1;
    CHECK(sys::io_uring_register(ring.fd(), reg::probe, &buf, 4) == -EINVAL);
}

TEST_CASE("register_files: a fixed file serves a write") {
    Ring ring = make_ring(4);
    int pipefd[2];
    REQUIRE(::pipe(pipefd) == 0);
    REQUIRE(register_files(ring, &pipefd[1], 1) == 0);
    Sqe* sqe = ring.get_sqe();
    REQUIRE(sqe != nullptr);
    prep_write(*sqe, 0, "fx", 2, 0);  // index 0 in the registered table
    sqe->flags |= sqe_flag::fixed_file;
    CHECK(luring::test::submit_and_reap_one(ring).res == 2);
    char buf[2];
    CHECK(::read(pipefd[0], buf, 2) == 2);
    CHECK(unregister_files(ring) == 0);
    CHECK(unregister_files(ring) == -ENXIO);
    ::close(pipefd[0]);
    ::close(pipefd[1]);
}

TEST_CASE("register_sync_cancel: cancels a parked read and waits for it (6.0+)") {
    Ring ring = make_ring(4);
    int pipefd[2];
    REQUIRE(::pipe(pipefd) == 0);
    char buf[4];
    Sqe* sqe = ring.get_sqe();
    REQUIRE(sqe != nullptr);
    prep_read(*sqe, pipefd[0], buf, 4, 0);
    sqe->user_data = 5;
    REQUIRE(ring.submit() == 1);
    SyncCancelReg reg{};
    reg.addr = 5;
    reg.fd = -1;
    reg.timeout = KernelTimespec{-1, -1};
    int ret = register_sync_cancel(ring, reg);
    if (ret == -EINVAL) {
        MESSAGE("skipped: kernel lacks IORING_REGISTER_SYNC_CANCEL (6.0)");
    } else {
        CHECK(ret == 0);
        Cqe cqe{};
        REQUIRE(ring.copy_cqes(&cqe, 1) == 1);
        CHECK(cqe.user_data == 5);
        CHECK(cqe.res == -ECANCELED);
    }
    ::close(pipefd[0]);
    ::close(pipefd[1]);
}
