// SPDX-License-Identifier: Apache-2.0
#include <sys/mman.h>
#include <sys/uio.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>

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

TEST_CASE("register_buffers: once per ring; unregister_buffers once") {
    Ring ring = make_ring(2);
    void* mem = nullptr;
    REQUIRE(::posix_memalign(&mem, 4096, 2 * 4096) == 0);
    iovec iovs[2] = {{mem, 4096}, {static_cast<char*>(mem) + 4096, 4096}};
    CHECK(register_buffers(ring, iovs, 0) == -EINVAL);
    CHECK(unregister_buffers(ring) == -ENXIO);
    REQUIRE(register_buffers(ring, iovs, 2) == 0);
    CHECK(register_buffers(ring, iovs, 2) == -EBUSY);
    CHECK(unregister_buffers(ring) == 0);
    CHECK(unregister_buffers(ring) == -ENXIO);
    iovec bad{nullptr, 4096};  // nothing mapped at 0
    CHECK(register_buffers(ring, &bad, 1) == -EFAULT);
    Ring closed;
    CHECK(register_buffers(closed, iovs, 1) == -EBADF);
    CHECK(unregister_buffers(closed) == -EBADF);
    std::free(mem);
}

TEST_CASE("register_ring_fds: the slot stands in for the fd in io_uring_enter (5.18+)") {
    Ring ring = make_ring(2);
    RsrcUpdate up{};
    up.offset = ~0U;  // let the kernel pick
    up.data = static_cast<std::uint64_t>(ring.fd());
    const int ret = register_ring_fds(ring, &up, 1);
    if (ret == -EINVAL) {
        MESSAGE("skipped: kernel lacks IORING_REGISTER_RING_FDS (5.18)");
        return;
    }
    REQUIRE(ret == 1);
    const int slot = static_cast<int>(up.offset);
    REQUIRE(slot >= 0);
    REQUIRE(slot < 16);  // IO_RINGFD_REG_MAX
    const std::uint32_t via_slot = enter::getevents | enter::registered_ring;
    CHECK(sys::io_uring_enter(slot, 0, 0, via_slot, nullptr, 0) == 0);

    // The same slot again is taken; so is a pipe no ring; 17 at once is too many.
    CHECK(register_ring_fds(ring, &up, 1) == -EBUSY);
    int pipefd[2];
    REQUIRE(::pipe(pipefd) == 0);
    RsrcUpdate not_ring{~0U, 0, static_cast<std::uint64_t>(pipefd[0])};
    CHECK(register_ring_fds(ring, &not_ring, 1) == -EOPNOTSUPP);
    RsrcUpdate many[17] = {};
    CHECK(register_ring_fds(ring, many, 17) == -EINVAL);

    RsrcUpdate release{up.offset, 0, 0};
    CHECK(unregister_ring_fds(ring, &release, 1) == 1);
    CHECK(sys::io_uring_enter(slot, 0, 0, via_slot, nullptr, 0) == -EBADF);
    RsrcUpdate past{16, 0, 0};
    CHECK(unregister_ring_fds(ring, &past, 1) == -EINVAL);
    ::close(pipefd[0]);
    ::close(pipefd[1]);
}

TEST_CASE("register_buf_ring / unregister_buf_ring: one ring per group, checked sizes (5.19+)") {
    Ring ring = make_ring(2);
    void* page =
        ::mmap(nullptr, 2 * 4096, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    REQUIRE(page != MAP_FAILED);
    BufReg reg{};
    reg.ring_addr = reinterpret_cast<std::uintptr_t>(page);
    reg.ring_entries = 8;
    reg.bgid = 3;
    const int ret = register_buf_ring(ring, reg);
    if (ret == -EINVAL) {
        MESSAGE("skipped: kernel lacks IORING_REGISTER_PBUF_RING (5.19)");
        ::munmap(page, 2 * 4096);
        return;
    }
    CHECK(ret == 0);
    CHECK(register_buf_ring(ring, reg) == -EEXIST);

    BufReg other = reg;
    other.bgid = 4;
    other.ring_addr += 4096;
    other.ring_entries = 6;  // not a power of two
    CHECK(register_buf_ring(ring, other) == -EINVAL);
    other.ring_entries = 65536;  // too many
    CHECK(register_buf_ring(ring, other) == -EINVAL);
    other.ring_entries = 8;
    other.resv[1] = 1;  // reserved words must be zero
    CHECK(register_buf_ring(ring, other) == -EINVAL);
    other.resv[1] = 0;
    other.flags = 0x80;  // unknown flag
    CHECK(register_buf_ring(ring, other) == -EINVAL);
    other.flags = 0;
    CHECK(register_buf_ring(ring, other) == 0);

    CHECK(unregister_buf_ring(ring, 3) == 0);
    // Gone: a second unregister fails. -ENOENT, or -EINVAL on kernels that keep groups
    // 0-63 in a fixed array (BGID_ARRAY, 6.1 here): the lookup finds the empty slot.
    const int again = unregister_buf_ring(ring, 3);
    CHECK((again == -ENOENT || again == -EINVAL));
    CHECK(unregister_buf_ring(ring, 4) == 0);
    Ring closed;
    CHECK(register_buf_ring(closed, reg) == -EBADF);
    CHECK(unregister_buf_ring(closed, 3) == -EBADF);
    ::munmap(page, 2 * 4096);
}
