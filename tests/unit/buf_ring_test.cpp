// SPDX-License-Identifier: Apache-2.0
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>

#include "buf_ring.hpp"
#include "helpers.hpp"
#include "prep.hpp"

using namespace luring::uring;
using luring::test::make_ring;

namespace {

// Sets up `br` on `ring`, or says why the kernel cannot (before 5.19: -EINVAL).
bool setup_or_skip(BufRing& br, const Ring& ring, std::uint32_t count, std::uint32_t size) {
    const int ret = br.setup(ring, 5, count, size);
    if (ret == -EINVAL) {
        MESSAGE("skipped: kernel lacks IORING_REGISTER_PBUF_RING (5.19)");
        return false;
    }
    REQUIRE(ret == 0);
    return true;
}

}  // namespace

TEST_CASE("BufRing::setup: checked sizes, once per object, nothing left mapped on failure") {
    Ring ring = make_ring(2);
    BufRing br;
    CHECK(br.setup(ring, 5, 0, 64) == -EINVAL);
    CHECK(br.setup(ring, 5, 3, 64) == -EINVAL);
    CHECK(br.setup(ring, 5, BufRing::kMaxCount * 2, 64) == -EINVAL);
    CHECK(br.setup(ring, 5, 4, 0) == -EINVAL);
    CHECK(br.setup(ring, 5, 4, BufRing::kMaxSize + 1) == -EINVAL);
    CHECK_FALSE(br.active());
    Ring closed;
    CHECK(br.setup(closed, 5, 4, 64) == -EBADF);
    if (!setup_or_skip(br, ring, 4, 64)) return;
    CHECK(br.active());
    CHECK(br.count() == 4);
    CHECK(br.size() == 64);
    CHECK(br.setup(ring, 6, 4, 64) == -EBUSY);
    BufRing same_group;
    CHECK(same_group.setup(ring, 5, 4, 64) == -EEXIST);
    CHECK_FALSE(same_group.active());
    CHECK(br.buffer(4) == nullptr);
    CHECK(br.buffer(3) == br.buffer(0) + 3 * 64);
    br.release(ring, true);
    CHECK_FALSE(br.active());
    CHECK(br.buffer(0) == nullptr);
    // The group is free again.
    CHECK(same_group.setup(ring, 5, 4, 64) == 0);
    same_group.release(ring, true);
}

TEST_CASE("BufRing::recycle: every buffer comes back, across the 16-bit tail's wrap") {
    if (!luring::test::require_op(Op::send_zc, "IORING_RECV_MULTISHOT (6.0)")) return;
    Ring ring = make_ring(8);
    BufRing br;
    // The tail starts at 32768 and wraps after as many recycles: 32868 one-byte messages
    // through one multishot recv, each buffer handed back after its CQE.
    if (!setup_or_skip(br, ring, BufRing::kMaxCount, 1)) return;
    int fds[2];
    REQUIRE(::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, fds) == 0);
    Sqe* sqe = ring.get_sqe();
    REQUIRE(sqe != nullptr);
    prep_recv_multishot(*sqe, fds[1], br.group(), 0);
    sqe->user_data = 1;
    REQUIRE(ring.submit() == 1);
    bool ok = true;
    for (unsigned i = 0; i < BufRing::kMaxCount + 100 && ok; ++i) {
        const char c = static_cast<char>('a' + i % 26);
        REQUIRE(::write(fds[0], &c, 1) == 1);
        const Cqe cqe = luring::test::submit_and_reap_one(ring);
        ok = cqe.res == 1 && (cqe.flags & cqe_flag::more) != 0 &&
             (cqe.flags & cqe_flag::buffer) != 0;
        if (!ok) {
            FAIL_CHECK("message " << i << ": res " << cqe.res << " flags " << cqe.flags);
            break;
        }
        const unsigned bid = cqe.flags >> kCqeBufferShift;
        ok = br.buffer(bid) != nullptr && *br.buffer(bid) == c;
        CHECK(ok);
        br.recycle(bid);
    }
    ::close(fds[0]);
    ::close(fds[1]);
    const Cqe last = luring::test::submit_and_reap_one(ring);  // peer closed: the final CQE
    CHECK(last.res == 0);
    br.release(ring, true);
}
