// SPDX-License-Identifier: Apache-2.0
// Each prep_<op> against the kernel: SQE fields, submit, then the exact CQE.
#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <string>

#include "helpers.hpp"
#include "prep.hpp"

using namespace luring::uring;
using luring::test::make_ring;
using luring::test::require_op;
using luring::test::submit_and_reap_one;

namespace {

// A temporary file, removed when done.
struct TempFile {
    std::string path;
    int fd = -1;
    TempFile() {
        char name[] = "/tmp/luring-test-XXXXXX";
        fd = ::mkstemp(name);
        REQUIRE(fd >= 0);
        path = name;
    }
    ~TempFile() {
        ::close(fd);
        ::unlink(path.c_str());
    }
};

struct SocketPair {
    int fds[2] = {-1, -1};
    SocketPair() { REQUIRE(::socketpair(AF_UNIX, SOCK_STREAM, 0, fds) == 0); }
    ~SocketPair() {
        ::close(fds[0]);
        ::close(fds[1]);
    }
};

Sqe& next_sqe(Ring& ring, std::uint64_t user_data) {
    Sqe* sqe = ring.get_sqe();
    REQUIRE(sqe != nullptr);
    sqe->user_data = user_data;  // prep_* never touches user_data
    return *sqe;
}

}  // namespace

TEST_CASE("prep_write / prep_read: a temp file round trip, short read at EOF") {
    if (!require_op(Op::read, "IORING_OP_READ (5.6)")) return;
    Ring ring = make_ring(4);
    TempFile file;
    const char text[] = "hello, io_uring";
    Sqe& w = next_sqe(ring, 1);
    prep_write(w, file.fd, text, sizeof(text) - 1, 0);
    CHECK(w.opcode == static_cast<std::uint8_t>(Op::write));
    CHECK(w.len == sizeof(text) - 1);
    CHECK(w.user_data == 1);
    Cqe cqe = submit_and_reap_one(ring);
    CHECK(cqe.user_data == 1);
    CHECK(cqe.res == static_cast<int>(sizeof(text) - 1));

    char buf[64] = {};
    prep_read(next_sqe(ring, 2), file.fd, buf, sizeof(buf), 7);
    cqe = submit_and_reap_one(ring);
    CHECK(cqe.user_data == 2);
    CHECK(cqe.res == 8);  // short: the file ends
    CHECK(std::string(buf, 8) == "io_uring");

    prep_read(next_sqe(ring, 3), -1, buf, sizeof(buf), 0);
    CHECK(submit_and_reap_one(ring).res == -EBADF);
}

TEST_CASE("prep_writev / prep_readv") {
    Ring ring = make_ring(4);
    TempFile file;
    char a[] = "abc";
    char b[] = "defg";
    iovec out[2] = {{a, 3}, {b, 4}};
    prep_writev(next_sqe(ring, 1), file.fd, out, 2, 0);
    CHECK(submit_and_reap_one(ring).res == 7);
    char x[2];
    char y[5];
    iovec in[2] = {{x, 2}, {y, 5}};
    prep_readv(next_sqe(ring, 2), file.fd, in, 2, 0);
    CHECK(submit_and_reap_one(ring).res == 7);
    CHECK(std::string(x, 2) == "ab");
    CHECK(std::string(y, 5) == "cdefg");
}

TEST_CASE("prep_send / prep_recv on a socketpair") {
    if (!require_op(Op::send, "IORING_OP_SEND (5.6)")) return;
    Ring ring = make_ring(4);
    SocketPair sp;
    prep_send(next_sqe(ring, 1), sp.fds[0], "ping", 4, MSG_NOSIGNAL);
    Cqe cqe = submit_and_reap_one(ring);
    CHECK(cqe.res == 4);
    char buf[16];
    Sqe& r = next_sqe(ring, 2);
    prep_recv(r, sp.fds[1], buf, sizeof(buf), 0);
    CHECK(r.msg_flags == 0);
    cqe = submit_and_reap_one(ring);
    CHECK(cqe.user_data == 2);
    CHECK(cqe.res == 4);
    CHECK(std::string(buf, 4) == "ping");
}

TEST_CASE("prep_accept / prep_connect on loopback TCP, with the peer address") {
    if (!require_op(Op::connect, "IORING_OP_CONNECT (5.5)")) return;
    int listener = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    REQUIRE(listener >= 0);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    REQUIRE(::bind(listener, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) == 0);
    REQUIRE(::listen(listener, 4) == 0);
    socklen_t len = sizeof(addr);
    REQUIRE(::getsockname(listener, reinterpret_cast<sockaddr*>(&addr), &len) == 0);

    Ring ring = make_ring(4);
    sockaddr_storage peer{};
    std::uint32_t peer_len = sizeof(peer);
    Sqe& a = next_sqe(ring, 10);
    prep_accept(a, listener, reinterpret_cast<sockaddr*>(&peer), &peer_len, SOCK_CLOEXEC);
    int client = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    REQUIRE(client >= 0);
    prep_connect(next_sqe(ring, 11), client, reinterpret_cast<sockaddr*>(&addr), sizeof(addr));
    REQUIRE(ring.submit_and_wait(2) >= 0);
    Cqe cqes[2];
    REQUIRE(ring.copy_cqes(cqes, 2) == 2);
    int accepted = -1;
    for (const Cqe& c : cqes) {
        if (c.user_data == 10) accepted = c.res;
        if (c.user_data == 11) CHECK(c.res == 0);
    }
    CHECK(accepted >= 0);
    CHECK(peer_len == sizeof(sockaddr_in));
    CHECK(reinterpret_cast<sockaddr_in&>(peer).sin_family == AF_INET);
    CHECK(::fcntl(accepted, F_GETFD) == FD_CLOEXEC);
    ::close(accepted);
    ::close(client);
    ::close(listener);
}

TEST_CASE("prep_openat / prep_fsync / prep_statx / prep_close") {
    if (!require_op(Op::openat, "IORING_OP_OPENAT (5.6)")) return;
    Ring ring = make_ring(4);
    TempFile file;
    prep_openat(next_sqe(ring, 1), AT_FDCWD, file.path.c_str(), O_RDWR | O_CLOEXEC, 0);
    int fd = submit_and_reap_one(ring).res;
    REQUIRE(fd >= 0);
    prep_write(next_sqe(ring, 2), fd, "12345", 5, 0);
    CHECK(submit_and_reap_one(ring).res == 5);
    prep_fsync(next_sqe(ring, 3), fd, kFsyncDatasync);
    CHECK(submit_and_reap_one(ring).res == 0);
    struct statx st{};
    prep_statx(next_sqe(ring, 4), AT_FDCWD, file.path.c_str(), 0, STATX_SIZE, &st);
    CHECK(submit_and_reap_one(ring).res == 0);
    CHECK(st.stx_size == 5);
    prep_close(next_sqe(ring, 5), fd);
    CHECK(submit_and_reap_one(ring).res == 0);
    CHECK(::fcntl(fd, F_GETFD) == -1);
    prep_openat(next_sqe(ring, 6), AT_FDCWD, "/nonexistent/x", O_RDONLY, 0);
    CHECK(submit_and_reap_one(ring).res == -ENOENT);
}

TEST_CASE("prep_timeout: -ETIME after the time, 0 after `count` completions") {
    Ring ring = make_ring(4);
    KernelTimespec ts{0, 20'000'000};
    prep_timeout(next_sqe(ring, 1), &ts, 0, 0);
    CHECK(submit_and_reap_one(ring).res == -ETIME);
    KernelTimespec long_ts{10, 0};
    prep_timeout(next_sqe(ring, 2), &long_ts, 1, 0);
    prep_nop(next_sqe(ring, 3));
    REQUIRE(ring.submit_and_wait(2) >= 0);
    Cqe cqes[2];
    REQUIRE(ring.copy_cqes(cqes, 2) == 2);
    for (const Cqe& c : cqes) CHECK(c.res == 0);
}

TEST_CASE("prep_poll_add / prep_cancel: poll fires; a parked read is cancelled") {
    Ring ring = make_ring(8);
    SocketPair sp;
    prep_poll_add(next_sqe(ring, 1), sp.fds[1], POLLIN);
    REQUIRE(ring.submit() == 1);
    REQUIRE(::write(sp.fds[0], "x", 1) == 1);
    Cqe cqe = submit_and_reap_one(ring);
    CHECK(cqe.user_data == 1);
    CHECK((cqe.res & POLLIN) != 0);

    int pipefd[2];
    REQUIRE(::pipe(pipefd) == 0);
    char buf[4];
    prep_read(next_sqe(ring, 2), pipefd[0], buf, 4, 0);
    REQUIRE(ring.submit() == 1);
    prep_cancel(next_sqe(ring, 3), 2, 0);
    REQUIRE(ring.submit_and_wait(2) >= 0);
    Cqe cqes[2];
    REQUIRE(ring.copy_cqes(cqes, 2) == 2);
    for (const Cqe& c : cqes) {
        if (c.user_data == 2) CHECK(c.res == -ECANCELED);
        if (c.user_data == 3) CHECK(c.res == 0);
    }
    ::close(pipefd[0]);
    ::close(pipefd[1]);
}

TEST_CASE("prep_shutdown") {
    if (!require_op(Op::shutdown, "IORING_OP_SHUTDOWN (5.11)")) return;
    Ring ring = make_ring(4);
    SocketPair sp;
    prep_shutdown(next_sqe(ring, 1), sp.fds[0], SHUT_WR);
    CHECK(submit_and_reap_one(ring).res == 0);
    char c;
    CHECK(::read(sp.fds[1], &c, 1) == 0);  // EOF after the peer's shutdown
}

TEST_CASE("prep_socket") {
    if (!require_op(Op::socket, "IORING_OP_SOCKET (5.19)")) return;
    Ring ring = make_ring(4);
    prep_socket(next_sqe(ring, 1), AF_INET, SOCK_STREAM, 0, 0);
    int fd = submit_and_reap_one(ring).res;
    CHECK(fd >= 0);
    int type = 0;
    socklen_t len = sizeof(type);
    CHECK(::getsockopt(fd, SOL_SOCKET, SO_TYPE, &type, &len) == 0);
    CHECK(type == SOCK_STREAM);
    ::close(fd);
}

TEST_CASE("prep_splice: pipe to file") {
    if (!require_op(Op::splice, "IORING_OP_SPLICE (5.7)")) return;
    Ring ring = make_ring(4);
    TempFile file;
    int pipefd[2];
    REQUIRE(::pipe(pipefd) == 0);
    REQUIRE(::write(pipefd[1], "spliced", 7) == 7);
    prep_splice(next_sqe(ring, 1), pipefd[0], -1, file.fd, 0, 7, 0);
    CHECK(submit_and_reap_one(ring).res == 7);
    char buf[8] = {};
    CHECK(::pread(file.fd, buf, 7, 0) == 7);
    CHECK(std::string(buf) == "spliced");
    ::close(pipefd[0]);
    ::close(pipefd[1]);
}
