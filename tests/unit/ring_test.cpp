// SPDX-License-Identifier: Apache-2.0
// The ring against the real kernel: setup, teardown, submit, reap, overflow, waits.
#include <fcntl.h>
#include <signal.h>
#include <sys/time.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "helpers.hpp"
#include "prep.hpp"
#include "sys.hpp"

using namespace luring::uring;
using luring::test::fd_count;
using luring::test::make_ring;
using luring::test::map_count;

namespace {

void queue_nop(Ring& ring, std::uint64_t user_data) {
    Sqe* sqe = ring.get_sqe();
    REQUIRE(sqe != nullptr);
    prep_nop(*sqe);
    sqe->user_data = user_data;
}

// Resets the fault seam when a test ends, whatever happens.
struct FaultGuard {
    ~FaultGuard() { sys::faults() = sys::Faults{}; }
};

}  // namespace

TEST_CASE("setup: sizes come back from the kernel and the queues start empty") {
    Params p{};
    Ring ring;
    REQUIRE(ring.init(3, p) == 0);  // rounded up to a power of two
    CHECK(p.sq_entries == 4);
    CHECK(p.cq_entries == 8);
    CHECK(ring.sq_entries() == 4);
    CHECK(ring.cq_entries() == 8);
    CHECK(ring.sq_space_left() == 4);
    CHECK(ring.sq_ready() == 0);
    CHECK(ring.cq_ready() == 0);
    CHECK((p.features & feat::single_mmap) != 0);
    CHECK(ring.init(4, p) == -EBUSY);
}

TEST_CASE("setup: bad input gives -errno, never a crash, and leaves nothing open") {
    int fds = fd_count();
    Params p{};
    Ring ring;
    CHECK(ring.init(0, p) == -EINVAL);
    CHECK(ring.init(0xffff'ffffU, p) == -EINVAL);
    CHECK(ring.init(65536, p) == -EINVAL);  // above the kernel's 32768 without CLAMP
    p.flags = 1U << 31;
    CHECK(ring.init(4, p) == -EINVAL);  // unknown flag
    p.flags = setup::sqe128;
    CHECK(ring.init(4, p) == -EOPNOTSUPP);  // known, but this core has 64-byte SQEs only
    p = Params{};
    p.resv[0] = 1;
    CHECK(ring.init(4, p) == -EINVAL);  // the kernel insists on zeroed reserved words
    p = Params{};
    p.flags = setup::cqsize;
    p.cq_entries = 0;
    CHECK(ring.init(4, p) == -EINVAL);
    CHECK_FALSE(ring.is_open());
    CHECK(fd_count() == fds);
    // Every call on a closed ring is refused cleanly.
    CHECK(ring.get_sqe() == nullptr);
    CHECK(ring.submit() == -EBADF);
    CHECK(ring.submit_and_wait(1) == -EBADF);
    CHECK(ring.get_events() == -EBADF);
    Cqe cqe{};
    CHECK(ring.copy_cqes(&cqe, 1) == 0);
}

TEST_CASE("setup: CQSIZE and CLAMP") {
    Params p{};
    p.flags = setup::cqsize;
    p.cq_entries = 100;
    Ring ring;
    REQUIRE(ring.init(4, p) == 0);
    CHECK(p.cq_entries == 128);
    ring.close();
    p = Params{};
    p.flags = setup::clamp;
    REQUIRE(ring.init(1U << 20, p) == 0);
    CHECK(p.sq_entries == 32768);
}

TEST_CASE("teardown: 1000 create/destroy cycles leak no fd and no mapping") {
    { Ring warm = make_ring(8); }
    int fds = fd_count();
    int maps = map_count();
    for (int i = 0; i < 1000; ++i) {
        Ring ring = make_ring(8);
        queue_nop(ring, 1);
        REQUIRE(ring.submit() == 1);
        if (i % 2 == 0) ring.close();  // explicit close, then the destructor: both fine
    }
    CHECK(fd_count() == fds);
    CHECK(map_count() == maps);
}

TEST_CASE("teardown: close is idempotent and never closes a reused fd number") {
    Ring ring = make_ring(4);
    int old_fd = ring.fd();
    ring.close();
    int reused = ::dup(0);  // likely gets old_fd
    ring.close();
    CHECK(::fcntl(reused, F_GETFD) >= 0);
    if (reused == old_fd) MESSAGE("fd number was reused and survived the second close");
    ::close(reused);
}

TEST_CASE("owns_fd: true for the ring, queued or full, of any size; no SQE changes") {
    Ring ring = make_ring(4);
    const int maps = map_count();
    CHECK(ring.owns_fd());
    queue_nop(ring, 1);
    CHECK(ring.owns_fd());  // slot 0 is marked: the queued, unpublished SQE
    queue_nop(ring, 2);
    queue_nop(ring, 3);
    queue_nop(ring, 4);
    // Full.
    CHECK(ring.owns_fd());
    CHECK(map_count() == maps);  // the second view is gone again
    // Each SQE comes back with its own user_data, the marked ones included.
    REQUIRE(ring.submit_and_wait(4) == 4);
    Cqe cqes[4];
    REQUIRE(ring.copy_cqes(cqes, 4) == 4);
    for (std::uint64_t i = 0; i < 4; ++i) CHECK(cqes[i].user_data == i + 1);
    // Past a wrap of the SQ, with one SQE queued.
    for (std::uint64_t i = 0; i < 6; ++i) {
        queue_nop(ring, 10 + i);
        CHECK(luring::test::submit_and_reap_one(ring).user_data == 10 + i);
    }
    queue_nop(ring, 20);
    CHECK(ring.owns_fd());
    CHECK(luring::test::submit_and_reap_one(ring).user_data == 20);
    ring.close();
    CHECK_FALSE(ring.owns_fd());
    // Rings whose SQE array spans several pages, SQPOLL ones too (if permitted).
    for (std::uint32_t flags : {0U, setup::sqpoll}) {
        for (std::uint32_t entries : {128U, 256U, 4096U}) {
            CAPTURE(entries);
            Params p{};
            p.flags = flags;
            Ring big;
            int ret = big.init(entries, p);
            if (flags != 0 && (ret == -EPERM || ret == -EINVAL)) break;
            REQUIRE(ret == 0);
            CHECK(big.owns_fd());
            for (std::uint64_t i = 0; i < 100; ++i) queue_nop(big, i);
            CHECK(big.owns_fd());
        }
    }
}

TEST_CASE("teardown: an fd closed behind the ring's back and reused by a file stays open") {
    int fds = fd_count();
    int maps = map_count();
    {
        Ring ring = make_ring(4);
        queue_nop(ring, 1);
        const int n = ring.fd();
        REQUIRE(sys::close(n) == 0);
        int devnull = ::open("/dev/null", O_RDONLY | O_CLOEXEC);
        REQUIRE(devnull == n);  // the lowest free number
        CHECK_FALSE(ring.owns_fd());
        ring.close();
        CHECK_FALSE(ring.is_open());
        CHECK(::fcntl(devnull, F_GETFD) >= 0);
        ::close(devnull);
    }
    // A readable regular file: mapping it at the SQE offset would succeed, and reading
    // past its end would raise SIGBUS. This time the destructor closes.
    char path[] = "/tmp/luring-owns-fd-XXXXXX";
    int tmp = ::mkstemp(path);
    REQUIRE(tmp >= 0);
    REQUIRE(::write(tmp, "data", 4) == 4);
    ::close(tmp);
    int file = -1;
    {
        Ring ring = make_ring(4);
        const int n = ring.fd();
        REQUIRE(sys::close(n) == 0);
        file = ::open(path, O_RDONLY | O_CLOEXEC);
        REQUIRE(file == n);
        CHECK_FALSE(ring.owns_fd());
    }
    char buf[8] = {};
    CHECK(::pread(file, buf, sizeof(buf), 0) == 4);
    CHECK(std::string(buf) == "data");
    ::close(file);
    ::unlink(path);
    // Nothing leaked: the rings went with their last mapping.
    CHECK(fd_count() == fds);
    CHECK(map_count() == maps);
}

TEST_CASE("teardown: an fd closed behind the ring's back and reused by another ring") {
    // Same size (only the markers tell them apart), larger, and smaller: 128 SQEs are
    // two pages, 4 SQEs one, and 6.x kernels map the second page anyway, without memory
    // behind it (SIGBUS if read: a's tail is taken past the first page first).
    const std::uint32_t sizes[][2] = {{4, 4}, {4, 64}, {128, 4}};
    for (const auto& size : sizes) {
        CAPTURE(size[0]);
        CAPTURE(size[1]);
        int fds = fd_count();
        Ring a = make_ring(size[0]);
        for (std::uint64_t i = 0; i < 100; ++i) {
            queue_nop(a, i);
            REQUIRE(luring::test::submit_and_reap_one(a).user_data == i);
        }
        const int n = a.fd();
        REQUIRE(sys::close(n) == 0);
        Ring b = make_ring(size[1]);
        REQUIRE(b.fd() == n);
        queue_nop(b, 7);  // queued in b across a's close
        CHECK_FALSE(a.owns_fd());
        CHECK(b.owns_fd());
        a.close();
        CHECK(b.owns_fd());
        CHECK(::fcntl(n, F_GETFD) >= 0);
        CHECK(luring::test::submit_and_reap_one(b).user_data == 7);
        queue_nop(b, 8);
        CHECK(luring::test::submit_and_reap_one(b).user_data == 8);
        b.close();
        CHECK(fd_count() == fds);
    }
}

TEST_CASE("owns_fd: SQPOLL, SQ published in full: views compared (skipped if not permitted)") {
    // The poller of a disabled ring leaves its SQEs alone, so published ones stay
    // unconsumed. submit() publishes, then returns the count, or -EBADFD if it had to
    // wake the poller (the kernel refuses enter on a disabled ring).
    Params p{};
    p.flags = setup::sqpoll | setup::r_disabled;
    Ring ring;
    int ret = ring.init(4, p);
    if (ret == -EPERM || ret == -EINVAL) {
        MESSAGE("skipped: SQPOLL or R_DISABLED not permitted here");
        return;
    }
    REQUIRE(ret == 0);
    queue_nop(ring, 1);
    queue_nop(ring, 2);
    ret = ring.submit();
    REQUIRE((ret == 2 || ret == -EBADFD));
    REQUIRE(ring.sq_ready() == 2);
    CHECK(ring.owns_fd());  // slots 0 and 1 are the poller's: slot 2 is marked
    queue_nop(ring, 3);
    queue_nop(ring, 4);
    ret = ring.submit();
    REQUIRE((ret == 2 || ret == -EBADFD));  // this call's two, not the four unconsumed
    REQUIRE(ring.sq_ready() == 4);
    CHECK(ring.owns_fd());  // every slot is the poller's: the views are compared
    const int n = ring.fd();
    REQUIRE(sys::close(n) == 0);
    Ring other = make_ring(4);
    REQUIRE(other.fd() == n);
    CHECK_FALSE(ring.owns_fd());
    ring.close();
    queue_nop(other, 9);
    CHECK(luring::test::submit_and_reap_one(other).user_data == 9);
}

TEST_CASE("sqpoll: submit counts what this call published, not what the poller left") {
    // The poller may post a CQE before it moves khead past its SQE (io_submit_sqes
    // flushes completions, then commits the SQ head), so `tail - khead` after a completion
    // can still count an SQE of an earlier call: the sqpoll round trip below saw 2 for
    // one nop. A disabled ring's poller consumes nothing, which makes that lag last.
    Params p{};
    p.flags = setup::sqpoll | setup::r_disabled;
    p.sq_thread_idle = 2000;  // ms: the poller stays awake, so submit needs no enter
    Ring ring;
    int ret = ring.init(8, p);
    if (ret == -EPERM || ret == -EINVAL) {
        MESSAGE("skipped: SQPOLL or R_DISABLED not permitted here");
        return;
    }
    REQUIRE(ret == 0);
    queue_nop(ring, 1);
    ret = ring.submit();
    if (ret == -EBADFD) {
        // On 6.12 the poller of a disabled ring has already set NEED_WAKEUP (it does not
        // spin for sq_thread_idle there), so submit entered to wake it, and the kernel
        // refuses enter on a disabled ring: no count of ours to check (6.1, 5.10 and 6.18
        // leave the poller awake).
        MESSAGE("skipped: the poller of a disabled ring asks for a wakeup on this kernel");
        return;
    }
    REQUIRE(ret == 1);
    queue_nop(ring, 2);
    queue_nop(ring, 3);
    CHECK(ring.submit() == 2);  // was 3: the first nop is still unconsumed
    CHECK(ring.sq_ready() == 3);
    CHECK(ring.submit() == 0);  // nothing new
    REQUIRE(ring.enable() == 0);
    // The poller takes all three once the ring is enabled.
    Cqe cqes[3]{};
    std::uint32_t got = 0;
    for (int i = 0; i < 100 && got < 3; ++i) {
        REQUIRE(ring.wait_cqes(1, KernelTimespec{2, 0}) >= 0);
        got += ring.copy_cqes(cqes + got, 3 - got);
    }
    REQUIRE(got == 3);
    for (std::uint32_t i = 0; i < 3; ++i) {
        CHECK(cqes[i].user_data == i + 1);
        CHECK(cqes[i].res == 0);
    }
    CHECK(ring.sq_ready() == 0);
}

TEST_CASE("move: the moved-from ring is closed, the target works") {
    Ring a = make_ring(4);
    Ring b(std::move(a));
    CHECK_FALSE(a.is_open());
    CHECK(a.get_sqe() == nullptr);
    queue_nop(b, 9);
    Cqe cqe = luring::test::submit_and_reap_one(b);
    CHECK(cqe.user_data == 9);
    Ring c;
    c = std::move(b);
    queue_nop(c, 10);
    CHECK(luring::test::submit_and_reap_one(c).user_data == 10);
}

TEST_CASE("nop: round trip with user_data, res and flags intact") {
    Ring ring = make_ring(4);
    Sqe* sqe = ring.get_sqe();
    REQUIRE(sqe != nullptr);
    prep_nop(*sqe);
    sqe->user_data = 0xaaaa'bbbb'cccc'ddddULL;
    CHECK(ring.sq_ready() == 1);
    CHECK(ring.cq_ready() == 0);
    CHECK(ring.submit() == 1);
    CHECK(ring.sq_ready() == 0);
    CHECK(ring.submit_and_wait(1) == 0);
    CHECK(ring.cq_ready() == 1);
    Cqe cqe{};
    CHECK(ring.copy_cqes(&cqe, 1) == 1);
    CHECK(cqe.user_data == 0xaaaa'bbbb'cccc'ddddULL);
    CHECK(cqe.res == 0);
    CHECK(cqe.flags == 0);
    CHECK(ring.cq_ready() == 0);
}

TEST_CASE("sq full: exactly `entries` SQEs, then nullptr; capacity returns after submit") {
    Ring ring = make_ring(4);
    for (int i = 0; i < 4; ++i) queue_nop(ring, i);
    CHECK(ring.get_sqe() == nullptr);
    CHECK(ring.sq_space_left() == 0);
    CHECK(ring.submit() == 4);
    CHECK(ring.sq_space_left() == 4);
    CHECK(ring.get_sqe() != nullptr);
}

TEST_CASE("batch: a full SQ submitted in one call, completions copied in one batch") {
    Ring ring = make_ring(32);
    for (std::uint64_t i = 0; i < 32; ++i) queue_nop(ring, i);
    CHECK(ring.submit_and_wait(32) == 32);
    std::vector<Cqe> cqes(64);
    CHECK(ring.copy_cqes(cqes.data(), 64) == 32);
    std::set<std::uint64_t> seen;
    for (int i = 0; i < 32; ++i) seen.insert(cqes[i].user_data);
    CHECK(seen.size() == 32);
}

TEST_CASE("wrap: 300000 nops through an 8-entry ring, each seen exactly once") {
    Ring ring = make_ring(8);
    const std::uint64_t total = 300000;
    std::uint64_t queued = 0;
    std::uint64_t expect = 0;
    Cqe cqes[16];
    while (expect < total) {
        while (queued < total) {
            Sqe* sqe = ring.get_sqe();
            if (sqe == nullptr) break;
            prep_nop(*sqe);
            sqe->user_data = queued++;
        }
        REQUIRE(ring.submit_and_wait(1) >= 0);
        std::uint32_t n = ring.copy_cqes(cqes, 16);
        for (std::uint32_t i = 0; i < n; ++i) {
            // NOPs complete inline and in order.
            REQUIRE(cqes[i].user_data == expect);
            ++expect;
        }
    }
    CHECK(ring.cq_ready() == 0);
}

TEST_CASE("cq overflow: 4x the CQ queued without reaping, every completion exactly once") {
    Ring ring = make_ring(8);  // CQ of 16
    const std::uint32_t total = 4 * ring.cq_entries();
    for (std::uint32_t i = 0; i < total; ++i) {
        Sqe* sqe = ring.get_sqe();
        if (sqe == nullptr) {
            int ret = ring.submit();
            // Older kernels push back with -EBUSY while the backlog is full.
            REQUIRE((ret >= 0 || ret == -EBUSY));
            sqe = ring.get_sqe();
        }
        REQUIRE(sqe != nullptr);
        prep_nop(*sqe);
        sqe->user_data = i;
    }
    REQUIRE(ring.submit() >= 0);
    CHECK(ring.cq_ready() == ring.cq_entries());
    CHECK((ring.sq_flags() & sq_flag::cq_overflow) != 0);
    CHECK(ring.cq_needs_enter());

    std::vector<int> seen(total, 0);
    std::uint32_t reaped = 0;
    Cqe cqes[8];
    for (int guard = 0; reaped < total && guard < 1000; ++guard) {
        std::uint32_t n = ring.copy_cqes(cqes, 8);
        for (std::uint32_t i = 0; i < n; ++i) {
            REQUIRE(cqes[i].user_data < total);
            ++seen[cqes[i].user_data];
        }
        reaped += n;
        if (n == 0 && ring.cq_needs_enter()) REQUIRE(ring.get_events() >= 0);
    }
    CHECK(reaped == total);
    for (std::uint32_t i = 0; i < total; ++i) CHECK(seen[i] == 1);
    CHECK(ring.cq_dropped() == 0);
    CHECK_FALSE(ring.cq_needs_enter());
}

TEST_CASE("partial submit: a bad SQE stops the batch, the rest stay queued") {
    // liburing test/sq-space_left.c test_sync: 8 nops, a bad opcode, 8 nops.
    Ring ring = make_ring(32);
    for (int i = 0; i < 8; ++i) queue_nop(ring, i);
    Sqe* bad = ring.get_sqe();
    REQUIRE(bad != nullptr);
    bad->opcode = 0xfe;
    bad->user_data = 100;
    for (int i = 0; i < 8; ++i) queue_nop(ring, 200 + i);
    CHECK(ring.submit() == 9);
    CHECK(ring.sq_ready() == 8);
    CHECK(ring.submit() == 8);
    CHECK(ring.sq_ready() == 0);
    Cqe cqes[32];
    REQUIRE(ring.submit_and_wait(17) >= 0);
    CHECK(ring.copy_cqes(cqes, 32) == 17);
    bool bad_seen = false;
    for (auto& c : cqes) {
        if (c.user_data == 100) {
            bad_seen = true;
            CHECK(c.res == -EINVAL);
        }
    }
    CHECK(bad_seen);
}

TEST_CASE("enter failure: -EAGAIN leaves the SQEs queued; the next submit sends them") {
    FaultGuard guard;
    Ring ring = make_ring(4);
    queue_nop(ring, 1);
    queue_nop(ring, 2);
    sys::faults().enter_error = -EAGAIN;
    CHECK(ring.submit() == -EAGAIN);
    CHECK(ring.sq_ready() == 2);
    CHECK(ring.submit_and_wait(2) == 2);
    Cqe cqes[2];
    CHECK(ring.copy_cqes(cqes, 2) == 2);
    CHECK(cqes[0].user_data == 1);
    CHECK(cqes[1].user_data == 2);
}

TEST_CASE("no syscall when there is nothing to submit or reap") {
    Ring ring = make_ring(4);
    std::uint64_t before = sys::enter_count();
    CHECK(ring.submit() == 0);
    CHECK(sys::enter_count() == before);
}

TEST_CASE("mapping: split SQ/CQ mappings when SINGLE_MMAP is absent") {
    FaultGuard guard;
    sys::faults().hide_features = feat::single_mmap;
    int maps = map_count();
    {
        Ring ring = make_ring(4);
        CHECK((ring.features() & feat::single_mmap) == 0);
        CHECK(map_count() == maps + 3);  // SQ ring, CQ ring, SQEs
        for (std::uint64_t round = 0; round < 4; ++round) {
            for (std::uint64_t i = 0; i < 4; ++i) queue_nop(ring, round * 4 + i);
            REQUIRE(ring.submit_and_wait(4) == 4);
            Cqe cqes[4];
            REQUIRE(ring.copy_cqes(cqes, 4) == 4);
            for (std::uint64_t i = 0; i < 4; ++i) CHECK(cqes[i].user_data == round * 4 + i);
        }
    }
    CHECK(map_count() == maps);
}

TEST_CASE("mapping: NO_SQARRAY rings submit every SQE (6.6+)") {
    Params p{};
    p.flags = setup::no_sqarray;
    Ring ring;
    int ret = ring.init(4, p);
    if (ret == -EINVAL) {
        MESSAGE("skipped: kernel lacks IORING_SETUP_NO_SQARRAY");
        return;
    }
    REQUIRE(ret == 0);
    CHECK(p.sq_off.array == 0);
    for (std::uint64_t round = 0; round < 4; ++round) {
        for (std::uint64_t i = 0; i < 4; ++i) queue_nop(ring, 100 + round * 4 + i);
        REQUIRE(ring.submit_and_wait(4) == 4);
        Cqe cqes[4];
        REQUIRE(ring.copy_cqes(cqes, 4) == 4);
        for (std::uint64_t i = 0; i < 4; ++i) CHECK(cqes[i].user_data == 100 + round * 4 + i);
    }
}

TEST_CASE("wait: a timeout returns -ETIME after about the time asked") {
    Ring ring = make_ring(4);
    KernelTimespec ts{0, 50'000'000};  // 50 ms
    auto start = std::chrono::steady_clock::now();
    CHECK(ring.wait_cqes(1, ts) == -ETIME);
    auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(
                  std::chrono::steady_clock::now() - start).count();
    CHECK(ms >= 45);
    CHECK(ms < 2000);
    // And a satisfied wait returns at once with the submitted count.
    queue_nop(ring, 5);
    CHECK(ring.wait_cqes(1, KernelTimespec{5, 0}) == 1);
    Cqe cqe{};
    CHECK(ring.copy_cqes(&cqe, 1) == 1);
    CHECK(cqe.user_data == 5);
}

TEST_CASE("wait: without EXT_ARG (before 5.11) a timer SQE bounds the wait") {
    FaultGuard guard;
    sys::faults().hide_features = feat::ext_arg;
    Ring ring = make_ring(4);
    auto start = std::chrono::steady_clock::now();
    CHECK(ring.wait_cqes(1, KernelTimespec{0, 50'000'000}) == -ETIME);
    auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(
                  std::chrono::steady_clock::now() - start).count();
    CHECK(ms >= 45);
    CHECK(ms < 2000);
    // The timer's own CQE is never handed out.
    Cqe cqe{};
    CHECK(ring.copy_cqes(&cqe, 1) == 0);
    queue_nop(ring, 6);
    CHECK(ring.wait_cqes(1, KernelTimespec{5, 0}) == 1);
    REQUIRE(ring.copy_cqes(&cqe, 1) == 1);
    CHECK(cqe.user_data == 6);
}


TEST_CASE("wait fallback: a timer left behind by a partial submit still goes in") {
    // An SQE the kernel refuses at prep time ends the first submit before our timer.
    FaultGuard guard;
    sys::faults().hide_features = feat::ext_arg;
    Ring ring = make_ring(4);
    Sqe* bad = ring.get_sqe();
    REQUIRE(bad != nullptr);
    bad->opcode = 250;
    bad->user_data = 1;
    auto start = std::chrono::steady_clock::now();
    int ret = ring.wait_cqes(2, KernelTimespec{0, 100'000'000});
    auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(
                  std::chrono::steady_clock::now() - start).count();
    CHECK(ret == 1);  // the bad SQE; the timer is not counted
    CHECK(ms >= 90);
    CHECK(ms < 2000);
    CHECK(ring.sq_ready() == 0);
    Cqe cqe{};
    REQUIRE(ring.copy_cqes(&cqe, 1) == 1);
    CHECK(cqe.user_data == 1);
    CHECK(cqe.res == -EINVAL);
}

namespace {
void on_alarm(int) {}
}  // namespace

TEST_CASE("wait: a signal interrupts a wait with -EINTR; the request stays in flight") {
    struct sigaction sa{};
    sa.sa_handler = on_alarm;  // no SA_RESTART, like lua.c's SIGINT handler
    struct sigaction old{};
    REQUIRE(sigaction(SIGALRM, &sa, &old) == 0);
    int pipefd[2];
    REQUIRE(::pipe(pipefd) == 0);
    Ring ring = make_ring(4);
    char buf[8];
    Sqe* sqe = ring.get_sqe();
    REQUIRE(sqe != nullptr);
    prep_read(*sqe, pipefd[0], buf, sizeof(buf), 0);
    sqe->user_data = 77;
    REQUIRE(ring.submit() == 1);

    itimerval timer{};
    timer.it_value.tv_usec = 50'000;
    REQUIRE(setitimer(ITIMER_REAL, &timer, nullptr) == 0);
    CHECK(ring.submit_and_wait(1) == -EINTR);
    CHECK(ring.cq_ready() == 0);

    REQUIRE(::write(pipefd[1], "hi", 2) == 2);
    Cqe cqe = luring::test::submit_and_reap_one(ring);
    CHECK(cqe.user_data == 77);
    CHECK(cqe.res == 2);
    ::close(pipefd[0]);
    ::close(pipefd[1]);
    sigaction(SIGALRM, &old, nullptr);
}

TEST_CASE("wait fallback: submits what is queued even when no wait is needed") {
    FaultGuard guard;
    sys::faults().hide_features = feat::ext_arg;
    Ring ring = make_ring(4);
    queue_nop(ring, 1);
    REQUIRE(ring.submit_and_wait(1) == 1);  // one CQE ready
    queue_nop(ring, 2);
    CHECK(ring.wait_cqes(1, KernelTimespec{1, 0}) == 1);  // the nop; the timer not counted
    CHECK(ring.sq_ready() == 0);                          // nothing left queued
    CHECK(ring.wait_cqes(0, KernelTimespec{1, 0}) == 0);
    CHECK(ring.sq_ready() == 0);
}

TEST_CASE("wait fallback: a signal ends the wait with -EINTR") {
    FaultGuard guard;
    sys::faults().hide_features = feat::ext_arg;
    struct sigaction sa{};
    sa.sa_handler = on_alarm;
    struct sigaction old{};
    REQUIRE(sigaction(SIGALRM, &sa, &old) == 0);
    int pipefd[2];
    REQUIRE(::pipe(pipefd) == 0);
    Ring ring = make_ring(4);
    char buf[8];
    Sqe* sqe = ring.get_sqe();
    REQUIRE(sqe != nullptr);
    prep_read(*sqe, pipefd[0], buf, sizeof(buf), 0);
    sqe->user_data = 9;
    REQUIRE(ring.submit() == 1);
    itimerval timer{};
    timer.it_value.tv_usec = 50'000;
    REQUIRE(setitimer(ITIMER_REAL, &timer, nullptr) == 0);
    auto start = std::chrono::steady_clock::now();
    CHECK(ring.wait_cqes(1, KernelTimespec{5, 0}) == -EINTR);
    auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(
                  std::chrono::steady_clock::now() - start).count();
    CHECK(ms < 2000);
    ::close(pipefd[0]);
    ::close(pipefd[1]);
    sigaction(SIGALRM, &old, nullptr);
}

TEST_CASE("sqpoll: nop round trip with the poller thread (skipped if not permitted)") {
    Params p{};
    p.flags = setup::sqpoll;
    p.sq_thread_idle = 10;  // ms, so the poller falls asleep between rounds
    Ring ring;
    int ret = ring.init(8, p);
    if (ret == -EPERM || ret == -EINVAL) {
        MESSAGE("skipped: SQPOLL not permitted here");
        return;
    }
    REQUIRE(ret == 0);
    for (std::uint64_t round = 0; round < 20; ++round) {
        if (round % 5 == 0) ::usleep(30'000);  // let the poller sleep: NEED_WAKEUP path
        queue_nop(ring, round);
        CHECK(ring.submit() == 1);
        KernelTimespec ts{2, 0};
        REQUIRE(ring.wait_cqes(1, ts) >= 0);
        Cqe cqe{};
        REQUIRE(ring.copy_cqes(&cqe, 1) == 1);
        CHECK(cqe.user_data == round);
    }
}

// The enter with GETEVENTS runs the deferred work. On 6.1 that work may hand the read
// to an io-wq worker instead of completing it (traced: io_uring_queue_async_work inside
// the enter, io_uring_complete from iou-wrk just after), and the worker posts the CQE
// straight to the CQ a moment later. So one enter that does not wait need not show it;
// an enter that waits for it must.
namespace {
void wait_if_handed_to_worker(Ring& ring) {
    if (ring.cq_ready() != 0) return;
    REQUIRE(ring.wait_cqes(1, KernelTimespec{2, 0}) >= 0);
}
}  // namespace

TEST_CASE("defer_taskrun: completions appear only after an enter with GETEVENTS") {
    Params p{};
    p.flags = setup::single_issuer | setup::defer_taskrun;
    Ring ring;
    int ret = ring.init(4, p);
    if (ret == -EINVAL) {
        MESSAGE("skipped: kernel lacks DEFER_TASKRUN (6.1)");
        return;
    }
    REQUIRE(ret == 0);
    CHECK(ring.cq_needs_enter());
    int pipefd[2];
    REQUIRE(::pipe(pipefd) == 0);
    char buf[4];
    Sqe* sqe = ring.get_sqe();
    REQUIRE(sqe != nullptr);
    prep_read(*sqe, pipefd[0], buf, sizeof(buf), 0);
    sqe->user_data = 3;
    REQUIRE(ring.submit() == 1);
    REQUIRE(::write(pipefd[1], "abc", 3) == 3);
    ::usleep(10'000);
    CHECK(ring.cq_ready() == 0);  // the work waits for us
    REQUIRE(ring.get_events() >= 0);
    wait_if_handed_to_worker(ring);
    CHECK(ring.cq_ready() == 1);
    Cqe cqe{};
    REQUIRE(ring.copy_cqes(&cqe, 1) == 1);
    CHECK(cqe.res == 3);
    ::close(pipefd[0]);
    ::close(pipefd[1]);
}

TEST_CASE("defer_taskrun + taskrun_flag: the TASKRUN bit says when to enter") {
    Params p{};
    p.flags = setup::single_issuer | setup::defer_taskrun | setup::taskrun_flag;
    Ring ring;
    int ret = ring.init(4, p);
    if (ret == -EINVAL) {
        MESSAGE("skipped: kernel lacks DEFER_TASKRUN with TASKRUN_FLAG");
        return;
    }
    REQUIRE(ret == 0);
    CHECK_FALSE(ring.cq_needs_enter());  // nothing pending: no syscall needed
    int pipefd[2];
    REQUIRE(::pipe(pipefd) == 0);
    char buf[4];
    Sqe* sqe = ring.get_sqe();
    REQUIRE(sqe != nullptr);
    prep_read(*sqe, pipefd[0], buf, sizeof(buf), 0);
    sqe->user_data = 4;
    REQUIRE(ring.submit() == 1);
    REQUIRE(::write(pipefd[1], "xyz", 3) == 3);
    for (int i = 0; i < 100 && !ring.cq_needs_enter(); ++i) ::usleep(1000);
    CHECK(ring.cq_needs_enter());
    CHECK(ring.cq_ready() == 0);
    REQUIRE(ring.get_events() >= 0);
    CHECK_FALSE(ring.cq_needs_enter());
    wait_if_handed_to_worker(ring);
    Cqe cqe{};
    REQUIRE(ring.copy_cqes(&cqe, 1) == 1);
    CHECK(cqe.res == 3);
    ::close(pipefd[0]);
    ::close(pipefd[1]);
}

TEST_CASE("sqpoll: empty submits leave a sleeping poller alone; one SQE wakes it") {
    Params p{};
    p.flags = setup::sqpoll;
    p.sq_thread_idle = 1;  // ms: the poller goes to sleep almost at once
    Ring ring;
    int ret = ring.init(8, p);
    if (ret == -EPERM || ret == -EINVAL) {
        MESSAGE("skipped: SQPOLL not permitted here");
        return;
    }
    REQUIRE(ret == 0);
    // Wait for the poller to announce that it sleeps.
    for (int i = 0; i < 2000 && (ring.sq_flags() & sq_flag::need_wakeup) == 0; ++i) ::usleep(1000);
    REQUIRE((ring.sq_flags() & sq_flag::need_wakeup) != 0);

    // An event loop that submits every tick with nothing queued: no syscall, no wakeup
    // (liburing sq_ring_needs_enter returns false when there is nothing to submit).
    const std::uint64_t before = sys::enter_count();
    for (int i = 0; i < 100; ++i) CHECK(ring.submit() == 0);
    CHECK(sys::enter_count() == before);
    CHECK((ring.sq_flags() & sq_flag::need_wakeup) != 0);  // still asleep

    // Something to submit: exactly one enter, with SQ_WAKEUP, and the CQE arrives.
    queue_nop(ring, 77);
    CHECK(ring.submit() == 1);
    CHECK(sys::enter_count() == before + 1);
    KernelTimespec ts{2, 0};
    REQUIRE(ring.wait_cqes(1, ts) >= 0);
    Cqe cqe{};
    REQUIRE(ring.copy_cqes(&cqe, 1) == 1);
    CHECK(cqe.user_data == 77);
    CHECK(cqe.res == 0);
}

TEST_CASE("registered fd: enters name the slot, so a number closed behind the ring's back "
          "does not stop it; unregister and close free the slot (5.18+)") {
    Ring ring = make_ring(4);
    const int ret = ring.register_fd();
    if (ret == -EINVAL) {
        MESSAGE("skipped: kernel lacks IORING_REGISTER_RING_FDS (5.18)");
        return;
    }
    REQUIRE(ret == 0);
    const int slot = ring.registered_slot();
    REQUIRE(slot >= 0);
    CHECK(ring.register_fd() == 0);  // this thread has it already
    CHECK(ring.registered_slot() == slot);
    const std::uint32_t via_slot = enter::getevents | enter::registered_ring;

    // With the fd number gone, only an enter by the slot reaches the ring.
    REQUIRE(::close(ring.fd()) == 0);
    const int fds = fd_count();
    const std::uint64_t enters = sys::enter_count();
    queue_nop(ring, 7);
    Cqe cqe = luring::test::submit_and_reap_one(ring);
    CHECK(cqe.user_data == 7);
    CHECK(sys::enter_count() > enters);

    // Unregistered, enters go by the (now closed) number again: -EBADF.
    // Before FEAT_REG_REG_RING (6.3) the unregister goes by the closed number: -EBADF,
    // and the slot stays until the thread exits (Ring::unregister_fd says so).
    const bool by_slot = (ring.features() & feat::reg_reg_ring) != 0;
    CHECK(ring.unregister_fd() == (by_slot ? 0 : -EBADF));
    CHECK(ring.registered_slot() == -1);
    CHECK(ring.unregister_fd() == -EINVAL);
    if (by_slot) CHECK(sys::io_uring_enter(slot, 0, 0, via_slot, nullptr, 0) == -EBADF);
    queue_nop(ring, 8);
    CHECK(ring.submit() == -EBADF);
    ring.close();
    CHECK(fd_count() == fds);  // the number stayed closed; close() closed no other

    // close() frees the slot of a ring still registered.
    Ring other = make_ring(4);
    REQUIRE(other.register_fd() == 0);
    const int other_slot = other.registered_slot();
    CHECK(sys::io_uring_enter(other_slot, 0, 0, via_slot, nullptr, 0) == 0);
    other.close();
    CHECK(sys::io_uring_enter(other_slot, 0, 0, via_slot, nullptr, 0) == -EBADF);
}

TEST_CASE("registered fd: another thread and a forked child enter by the fd, not the slot") {
    Ring ring = make_ring(4);
    const int ret = ring.register_fd();
    if (ret == -EINVAL) {
        MESSAGE("skipped: kernel lacks IORING_REGISTER_RING_FDS (5.18)");
        return;
    }
    REQUIRE(ret == 0);
    int in_thread = 0;
    int slot_in_thread = 0;
    int second_owner = 0;
    std::thread t([&] {
        // That thread's io_uring context has no such slot: by the slot it would fail.
        slot_in_thread = ring.registered_slot();
        queue_nop(ring, 1);
        in_thread = ring.submit_and_wait(1);
        second_owner = ring.register_fd();
    });
    t.join();
    CHECK(slot_in_thread == -1);
    CHECK(in_thread == 1);
    CHECK(second_owner == -EEXIST);
    Cqe cqe{};
    CHECK(ring.copy_cqes(&cqe, 1) == 1);
    CHECK(cqe.user_data == 1);

    const pid_t pid = ::fork();
    REQUIRE(pid >= 0);
    if (pid == 0) {
        // The child's slots are empty (or its own rings'): the parent's number there
        // would be -EINVAL, or worse, drive another ring.
        Ring mine = make_ring(2);
        const bool own = mine.register_fd() == 0 && mine.registered_slot() >= 0;
        const bool parents_unused = ring.registered_slot() == -1;
        queue_nop(ring, 2);
        const int n = ring.submit_and_wait(1);
        Cqe c{};
        const bool reaped = ring.copy_cqes(&c, 1) == 1 && c.user_data == 2;
        ::_exit(own && parents_unused && n == 1 && reaped && mine.cq_ready() == 0 ? 0 : 1);
    }
    int status = 0;
    REQUIRE(::waitpid(pid, &status, 0) == pid);
    CHECK(WIFEXITED(status));
    CHECK(WEXITSTATUS(status) == 0);
    CHECK(ring.registered_slot() >= 0);  // the parent's registration is untouched
}
