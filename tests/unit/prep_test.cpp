// SPDX-License-Identifier: Apache-2.0
// Each prep_<op> against the kernel: SQE fields, submit, then the exact CQE.
#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <set>
#include <string>
#include <vector>

#include "helpers.hpp"
#include "prep.hpp"
#include "unique_fd.hpp"

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

// ---- Files and directories ---------------------------------------------------------------

namespace {

// A temporary directory, removed with everything in it when done; `fd` is open on it for
// the *at() calls.
struct TempDir {
    std::string path;
    int fd = -1;
    TempDir() {
        char name[] = "/tmp/luring-dir-XXXXXX";
        REQUIRE(::mkdtemp(name) != nullptr);
        path = name;
        fd = ::open(name, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        REQUIRE(fd >= 0);
    }
    ~TempDir() {
        ::close(fd);
        std::error_code ec;
        std::filesystem::remove_all(path, ec);
    }
    std::string at(const char* name) const { return path + "/" + name; }
};

// lstat(2) of `path`: its errno as -errno, or 0 with `st` filled.
int lstat_of(const std::string& path, struct stat& st) {
    return ::lstat(path.c_str(), &st) == 0 ? 0 : -errno;
}

void make_file(const std::string& path, const char* text) {
    int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    REQUIRE(fd >= 0);
    const auto len = static_cast<ssize_t>(std::strlen(text));
    REQUIRE(::write(fd, text, static_cast<std::size_t>(len)) == len);
    ::close(fd);
}

}  // namespace

TEST_CASE("prep_mkdirat / prep_unlinkat: a directory made, refused twice, removed") {
    if (!require_op(Op::mkdirat, "IORING_OP_MKDIRAT (5.15)")) return;
    if (!require_op(Op::unlinkat, "IORING_OP_UNLINKAT (5.11)")) return;
    Ring ring = make_ring(4);
    TempDir dir;
    const mode_t mask = ::umask(0);
    ::umask(mask);

    const char sub[] = "sub";  // one object, so the SQE's addr can be compared
    Sqe& m = next_sqe(ring, 1);
    prep_mkdirat(m, dir.fd, sub, 0750);
    CHECK(m.opcode == static_cast<std::uint8_t>(Op::mkdirat));
    CHECK(m.fd == dir.fd);
    CHECK(m.addr == to_u64(sub));
    CHECK(m.len == 0750);
    CHECK(m.off == 0);
    CHECK(m.user_data == 1);
    Cqe cqe = submit_and_reap_one(ring);
    CHECK(cqe.user_data == 1);
    CHECK(cqe.res == 0);
    struct stat st{};
    REQUIRE(lstat_of(dir.at("sub"), st) == 0);
    CHECK(S_ISDIR(st.st_mode));
    CHECK((st.st_mode & 07777) == (0750 & ~mask));

    prep_mkdirat(next_sqe(ring, 2), dir.fd, "sub", 0750);
    CHECK(submit_and_reap_one(ring).res == -EEXIST);

    // A directory needs AT_REMOVEDIR; a file must not have it.
    prep_unlinkat(next_sqe(ring, 3), dir.fd, "sub", 0);
    CHECK(submit_and_reap_one(ring).res == -EISDIR);
    Sqe& u = next_sqe(ring, 4);
    prep_unlinkat(u, dir.fd, sub, AT_REMOVEDIR);
    CHECK(u.opcode == static_cast<std::uint8_t>(Op::unlinkat));
    CHECK(u.fd == dir.fd);
    CHECK(u.addr == to_u64(sub));
    CHECK(u.unlink_flags == static_cast<std::uint32_t>(AT_REMOVEDIR));
    CHECK(submit_and_reap_one(ring).res == 0);
    CHECK(lstat_of(dir.at("sub"), st) == -ENOENT);

    make_file(dir.at("file"), "x");
    prep_unlinkat(next_sqe(ring, 5), dir.fd, "file", AT_REMOVEDIR);
    CHECK(submit_and_reap_one(ring).res == -ENOTDIR);
    const std::string absolute = dir.at("file");  // must outlive the submit
    prep_unlinkat(next_sqe(ring, 6), AT_FDCWD, absolute.c_str(), 0);
    CHECK(submit_and_reap_one(ring).res == 0);
    CHECK(lstat_of(dir.at("file"), st) == -ENOENT);
}

TEST_CASE("prep_renameat: moves a file; RENAME_NOREPLACE refuses an existing target") {
    if (!require_op(Op::renameat, "IORING_OP_RENAMEAT (5.11)")) return;
    Ring ring = make_ring(4);
    TempDir dir;
    TempDir other;
    make_file(dir.at("a"), "contents");

    const char from[] = "a";
    const char to[] = "b";
    Sqe& r = next_sqe(ring, 1);
    prep_renameat(r, dir.fd, from, other.fd, to, 0);
    CHECK(r.opcode == static_cast<std::uint8_t>(Op::renameat));
    CHECK(r.fd == dir.fd);
    CHECK(r.addr == to_u64(from));
    CHECK(r.len == static_cast<std::uint32_t>(other.fd));
    CHECK(r.addr2 == to_u64(to));
    CHECK(r.rename_flags == 0);
    CHECK(submit_and_reap_one(ring).res == 0);
    struct stat st{};
    CHECK(lstat_of(dir.at("a"), st) == -ENOENT);
    REQUIRE(lstat_of(other.at("b"), st) == 0);
    CHECK(st.st_size == 8);

    make_file(dir.at("c"), "c");
    Sqe& n = next_sqe(ring, 2);
    prep_renameat(n, dir.fd, "c", other.fd, "b", RENAME_NOREPLACE);
    CHECK(n.rename_flags == RENAME_NOREPLACE);
    CHECK(submit_and_reap_one(ring).res == -EEXIST);
    CHECK(lstat_of(dir.at("c"), st) == 0);  // nothing moved
}

TEST_CASE("prep_symlinkat / prep_linkat: a symlink reads back, a hard link shares the inode") {
    if (!require_op(Op::symlinkat, "IORING_OP_SYMLINKAT (5.15)")) return;
    if (!require_op(Op::linkat, "IORING_OP_LINKAT (5.15)")) return;
    Ring ring = make_ring(4);
    TempDir dir;
    make_file(dir.at("file"), "data");

    const char file[] = "file";
    const char sym[] = "sym";
    const char hard[] = "hard";
    Sqe& s = next_sqe(ring, 1);
    prep_symlinkat(s, file, dir.fd, sym);
    CHECK(s.opcode == static_cast<std::uint8_t>(Op::symlinkat));
    CHECK(s.fd == dir.fd);
    CHECK(s.addr == to_u64(file));
    CHECK(s.addr2 == to_u64(sym));
    CHECK(submit_and_reap_one(ring).res == 0);
    char target[64] = {};
    CHECK(::readlink(dir.at("sym").c_str(), target, sizeof(target) - 1) == 4);
    CHECK(std::string(target) == "file");
    prep_symlinkat(next_sqe(ring, 2), "elsewhere", dir.fd, "sym");
    CHECK(submit_and_reap_one(ring).res == -EEXIST);

    Sqe& l = next_sqe(ring, 3);
    prep_linkat(l, dir.fd, file, dir.fd, hard, 0);
    CHECK(l.opcode == static_cast<std::uint8_t>(Op::linkat));
    CHECK(l.fd == dir.fd);
    CHECK(l.addr == to_u64(file));
    CHECK(l.len == static_cast<std::uint32_t>(dir.fd));
    CHECK(l.addr2 == to_u64(hard));
    CHECK(l.hardlink_flags == 0);
    CHECK(submit_and_reap_one(ring).res == 0);
    struct stat a{};
    struct stat b{};
    REQUIRE(lstat_of(dir.at("file"), a) == 0);
    REQUIRE(lstat_of(dir.at("hard"), b) == 0);
    CHECK(a.st_ino == b.st_ino);
    CHECK(a.st_nlink == 2);

    // Without AT_SYMLINK_FOLLOW a link to the symlink is a second symlink; with it, a
    // third name for the file.
    prep_linkat(next_sqe(ring, 4), dir.fd, "sym", dir.fd, "nofollow", 0);
    CHECK(submit_and_reap_one(ring).res == 0);
    REQUIRE(lstat_of(dir.at("nofollow"), b) == 0);
    CHECK(S_ISLNK(b.st_mode));
    Sqe& f = next_sqe(ring, 5);
    prep_linkat(f, dir.fd, "sym", dir.fd, "follow", AT_SYMLINK_FOLLOW);
    CHECK(f.hardlink_flags == static_cast<std::uint32_t>(AT_SYMLINK_FOLLOW));
    CHECK(submit_and_reap_one(ring).res == 0);
    REQUIRE(lstat_of(dir.at("follow"), b) == 0);
    CHECK(b.st_ino == a.st_ino);
}

TEST_CASE("prep_fallocate: extends the file, or only allocates with KEEP_SIZE") {
    if (!require_op(Op::fallocate, "IORING_OP_FALLOCATE (5.6)")) return;
    Ring ring = make_ring(4);
    TempFile file;
    Sqe& f = next_sqe(ring, 1);
    prep_fallocate(f, file.fd, 0, 4096, 65536);
    CHECK(f.opcode == static_cast<std::uint8_t>(Op::fallocate));
    CHECK(f.fd == file.fd);
    CHECK(f.addr == 65536);  // the length
    CHECK(f.len == 0);       // the mode
    CHECK(f.off == 4096);
    CHECK(submit_and_reap_one(ring).res == 0);
    struct stat st{};
    REQUIRE(::fstat(file.fd, &st) == 0);
    CHECK(st.st_size == 4096 + 65536);
    const auto blocks = st.st_blocks;

    Sqe& k = next_sqe(ring, 2);
    prep_fallocate(k, file.fd, FALLOC_FL_KEEP_SIZE, 1 << 20, 1 << 20);
    CHECK(k.len == static_cast<std::uint32_t>(FALLOC_FL_KEEP_SIZE));
    const int res = submit_and_reap_one(ring).res;
    if (res == -EOPNOTSUPP) {
        MESSAGE("this file system lacks FALLOC_FL_KEEP_SIZE");
    } else {
        CHECK(res == 0);
        REQUIRE(::fstat(file.fd, &st) == 0);
        CHECK(st.st_size == 4096 + 65536);
        CHECK(st.st_blocks > blocks);
    }
    prep_fallocate(next_sqe(ring, 3), file.fd, 0, 0, 0);
    CHECK(submit_and_reap_one(ring).res == -EINVAL);  // a length of 0
}

TEST_CASE("prep_ftruncate: shrinks and grows a file") {
    if (!require_op(Op::ftruncate, "IORING_OP_FTRUNCATE (6.9)")) return;
    Ring ring = make_ring(4);
    TempFile file;
    REQUIRE(::write(file.fd, "0123456789", 10) == 10);
    Sqe& t = next_sqe(ring, 1);
    prep_ftruncate(t, file.fd, 3);
    CHECK(t.opcode == static_cast<std::uint8_t>(Op::ftruncate));
    CHECK(t.fd == file.fd);
    CHECK(t.off == 3);
    CHECK(t.addr == 0);
    CHECK(t.len == 0);
    CHECK(submit_and_reap_one(ring).res == 0);
    struct stat st{};
    REQUIRE(::fstat(file.fd, &st) == 0);
    CHECK(st.st_size == 3);
    prep_ftruncate(next_sqe(ring, 2), file.fd, 100);
    CHECK(submit_and_reap_one(ring).res == 0);
    REQUIRE(::fstat(file.fd, &st) == 0);
    CHECK(st.st_size == 100);
    int pipefd[2];
    REQUIRE(::pipe(pipefd) == 0);
    prep_ftruncate(next_sqe(ring, 3), pipefd[0], 0);
    CHECK(submit_and_reap_one(ring).res == -EINVAL);
    ::close(pipefd[0]);
    ::close(pipefd[1]);
}

TEST_CASE("prep_tee: copies between pipes without consuming") {
    if (!require_op(Op::tee, "IORING_OP_TEE (5.8)")) return;
    Ring ring = make_ring(4);
    int in[2];
    int out[2];
    REQUIRE(::pipe(in) == 0);
    REQUIRE(::pipe(out) == 0);
    REQUIRE(::write(in[1], "teedata", 7) == 7);
    Sqe& t = next_sqe(ring, 1);
    prep_tee(t, in[0], out[1], 64, 0);
    CHECK(t.opcode == static_cast<std::uint8_t>(Op::tee));
    CHECK(t.fd == out[1]);
    CHECK(t.splice_fd_in == in[0]);
    CHECK(t.len == 64);
    CHECK(t.splice_off_in == 0);
    CHECK(t.off == 0);
    CHECK(t.splice_flags == 0);
    CHECK(submit_and_reap_one(ring).res == 7);
    char buf[16] = {};
    CHECK(::read(out[0], buf, sizeof(buf)) == 7);
    CHECK(std::string(buf, 7) == "teedata");
    CHECK(::read(in[0], buf, sizeof(buf)) == 7);  // still there
    CHECK(std::string(buf, 7) == "teedata");
    // A file is not a pipe.
    TempFile file;
    prep_tee(next_sqe(ring, 2), file.fd, out[1], 8, 0);
    CHECK(submit_and_reap_one(ring).res == -EINVAL);
    for (int fd : {in[0], in[1], out[0], out[1]}) ::close(fd);
}

// ---- Registered buffers ------------------------------------------------------------------

TEST_CASE("prep_write_fixed / prep_read_fixed: through a registered buffer, bounds checked") {
    Ring ring = make_ring(4);
    TempFile file;
    void* mem = nullptr;
    REQUIRE(::posix_memalign(&mem, 4096, 8192) == 0);
    auto* buf = static_cast<char*>(mem);
    std::memset(buf, 0, 8192);
    iovec iov{buf, 8192};
    REQUIRE(register_buffers(ring, &iov, 1) == 0);

    std::memcpy(buf, "fixed-data", 10);
    Sqe& w = next_sqe(ring, 1);
    prep_write_fixed(w, file.fd, buf, 10, 0, 0);
    CHECK(w.opcode == static_cast<std::uint8_t>(Op::write_fixed));
    CHECK(w.fd == file.fd);
    CHECK(w.addr == to_u64(buf));
    CHECK(w.len == 10);
    CHECK(w.off == 0);
    CHECK(w.buf_index == 0);
    CHECK(submit_and_reap_one(ring).res == 10);
    char check[16] = {};
    CHECK(::pread(file.fd, check, sizeof(check), 0) == 10);
    CHECK(std::string(check, 10) == "fixed-data");

    Sqe& r = next_sqe(ring, 2);
    prep_read_fixed(r, file.fd, buf + 4096, 5, 6, 0);
    CHECK(r.opcode == static_cast<std::uint8_t>(Op::read_fixed));
    CHECK(r.addr == to_u64(buf + 4096));
    CHECK(r.len == 5);
    CHECK(r.off == 6);
    CHECK(submit_and_reap_one(ring).res == 4);  // "data", then EOF
    CHECK(std::string(buf + 4096, 4) == "data");

    // Past the end of the registered range, and an index nothing is registered at.
    prep_read_fixed(next_sqe(ring, 3), file.fd, buf + 8190, 10, 0, 0);
    CHECK(submit_and_reap_one(ring).res == -EFAULT);
    Sqe& bad = next_sqe(ring, 4);
    prep_write_fixed(bad, file.fd, buf, 10, 0, 1);
    CHECK(bad.buf_index == 1);
    CHECK(submit_and_reap_one(ring).res == -EFAULT);

    CHECK(unregister_buffers(ring) == 0);
    std::free(mem);
}

// ---- Sockets -----------------------------------------------------------------------------

namespace {

// A connected loopback TCP pair (the zero-copy paths need a real inet socket).
struct TcpPair {
    UniqueFd client;
    UniqueFd server;
    TcpPair() {
        UniqueFd listener(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
        REQUIRE(listener.valid());
        sockaddr_in addr{};
        addr.sin_family = AF_INET;
        addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        REQUIRE(::bind(listener.get(), reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) == 0);
        REQUIRE(::listen(listener.get(), 1) == 0);
        socklen_t len = sizeof(addr);
        REQUIRE(::getsockname(listener.get(), reinterpret_cast<sockaddr*>(&addr), &len) == 0);
        client.reset(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
        REQUIRE(client.valid());
        REQUIRE(::connect(client.get(), reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) == 0);
        server.reset(::accept4(listener.get(), nullptr, nullptr, SOCK_CLOEXEC));
        REQUIRE(server.valid());
    }
};

// A TCP listener on 127.0.0.1 at a port the kernel picked; `addr` says where.
struct Listener {
    UniqueFd fd;
    sockaddr_in addr{};
    Listener() {
        fd.reset(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
        REQUIRE(fd.valid());
        addr.sin_family = AF_INET;
        addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        REQUIRE(::bind(fd.get(), reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) == 0);
        REQUIRE(::listen(fd.get(), 8) == 0);
        socklen_t len = sizeof(addr);
        REQUIRE(::getsockname(fd.get(), reinterpret_cast<sockaddr*>(&addr), &len) == 0);
    }
};

// A UDP socket bound to 127.0.0.1 at a port the kernel picked.
struct UdpSocket {
    UniqueFd fd;
    sockaddr_in addr{};
    UdpSocket() {
        fd.reset(::socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0));
        REQUIRE(fd.valid());
        addr.sin_family = AF_INET;
        addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        REQUIRE(::bind(fd.get(), reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) == 0);
        socklen_t len = sizeof(addr);
        REQUIRE(::getsockname(fd.get(), reinterpret_cast<sockaddr*>(&addr), &len) == 0);
    }
};

// Waits (at most 2 s each time) until `n` CQEs have been copied out; fails otherwise.
// Takes exactly `n`: a CQE that came early (6.1 and 6.12 post a multishot recv's
// -ENOBUFS right after the CQE that used the last buffer) stays for the next call.
std::vector<Cqe> reap(Ring& ring, std::size_t n) {
    std::vector<Cqe> out;
    while (out.size() < n) {
        const KernelTimespec ts{2, 0};
        const int ret = ring.wait_cqes(static_cast<std::uint32_t>(n - out.size()), ts);
        REQUIRE_MESSAGE(ret >= 0, "waiting for ", n - out.size(), " CQEs: ",
                        doctest::String(std::strerror(-ret)));
        Cqe cqes[16];
        const std::size_t want = n - out.size() < 16 ? n - out.size() : 16;
        const std::uint32_t got = ring.copy_cqes(cqes, static_cast<std::uint32_t>(want));
        out.insert(out.end(), cqes, cqes + got);
    }
    return out;
}

const Cqe& find_cqe(const std::vector<Cqe>& cqes, std::uint64_t user_data) {
    for (const Cqe& c : cqes) {
        if (c.user_data == user_data) return c;
    }
    FAIL("no CQE with user_data ", user_data);
    return cqes.front();
}

bool has(const Cqe& cqe, std::uint32_t flag) { return (cqe.flags & flag) != 0; }

}  // namespace

TEST_CASE("prep_sendmsg / prep_recvmsg: two iovecs each way and an fd over SCM_RIGHTS") {
    if (!require_op(Op::sendmsg, "IORING_OP_SENDMSG (5.3)")) return;
    Ring ring = make_ring(4);
    SocketPair sp;
    int pipefd[2];
    REQUIRE(::pipe(pipefd) == 0);

    char a[] = "hello ";
    char b[] = "world";
    iovec out[2] = {{a, 6}, {b, 5}};
    alignas(cmsghdr) char ctrl[CMSG_SPACE(sizeof(int))] = {};
    msghdr sent{};
    sent.msg_iov = out;
    sent.msg_iovlen = 2;
    sent.msg_control = ctrl;
    sent.msg_controllen = sizeof(ctrl);
    cmsghdr* c = CMSG_FIRSTHDR(&sent);
    c->cmsg_level = SOL_SOCKET;
    c->cmsg_type = SCM_RIGHTS;
    c->cmsg_len = CMSG_LEN(sizeof(int));
    std::memcpy(CMSG_DATA(c), &pipefd[1], sizeof(int));
    Sqe& s = next_sqe(ring, 1);
    prep_sendmsg(s, sp.fds[0], &sent, MSG_NOSIGNAL);
    CHECK(s.opcode == static_cast<std::uint8_t>(Op::sendmsg));
    CHECK(s.fd == sp.fds[0]);
    CHECK(s.addr == to_u64(&sent));
    CHECK(s.len == 1);
    CHECK(s.msg_flags == static_cast<std::uint32_t>(MSG_NOSIGNAL));
    CHECK(submit_and_reap_one(ring).res == 11);

    char x[4];
    char y[16];
    iovec in[2] = {{x, sizeof(x)}, {y, sizeof(y)}};
    alignas(cmsghdr) char rctrl[CMSG_SPACE(sizeof(int))] = {};
    msghdr got{};
    got.msg_iov = in;
    got.msg_iovlen = 2;
    got.msg_control = rctrl;
    got.msg_controllen = sizeof(rctrl);
    Sqe& r = next_sqe(ring, 2);
    prep_recvmsg(r, sp.fds[1], &got, MSG_CMSG_CLOEXEC);
    CHECK(r.opcode == static_cast<std::uint8_t>(Op::recvmsg));
    CHECK(r.addr == to_u64(&got));
    CHECK(r.msg_flags == static_cast<std::uint32_t>(MSG_CMSG_CLOEXEC));
    Cqe cqe = submit_and_reap_one(ring);
    CHECK(cqe.user_data == 2);
    CHECK(cqe.res == 11);
    CHECK(std::string(x, 4) == "hell");
    CHECK(std::string(y, 7) == "o world");
    // The kernel wrote the control data back through `got`.
    CHECK((got.msg_flags & MSG_CTRUNC) == 0);
    const cmsghdr* rc = CMSG_FIRSTHDR(&got);
    REQUIRE(rc != nullptr);
    CHECK(rc->cmsg_type == SCM_RIGHTS);
    int passed = -1;
    std::memcpy(&passed, CMSG_DATA(rc), sizeof(int));
    REQUIRE(passed >= 0);
    CHECK(::fcntl(passed, F_GETFD) == FD_CLOEXEC);
    REQUIRE(::write(passed, "z", 1) == 1);  // the pipe's write end, received
    char z = 0;
    CHECK(::read(pipefd[0], &z, 1) == 1);
    CHECK(z == 'z');
    ::close(passed);
    ::close(pipefd[0]);
    ::close(pipefd[1]);
}

TEST_CASE("prep_send_zc: the result with F_MORE, then the F_NOTIF notification") {
    if (!require_op(Op::send_zc, "IORING_OP_SEND_ZC (6.0)")) return;
    Ring ring = make_ring(4);
    TcpPair tcp;
    std::vector<char> data(16384);
    for (std::size_t i = 0; i < data.size(); ++i) data[i] = static_cast<char>(i * 7);
    Sqe& s = next_sqe(ring, 1);
    prep_send_zc(s, tcp.client.get(), data.data(), 16384, MSG_NOSIGNAL, 0);
    CHECK(s.opcode == static_cast<std::uint8_t>(Op::send_zc));
    CHECK(s.fd == tcp.client.get());
    CHECK(s.addr == to_u64(data.data()));
    CHECK(s.len == 16384);
    CHECK(s.msg_flags == static_cast<std::uint32_t>(MSG_NOSIGNAL));
    CHECK(s.ioprio == 0);
    const std::vector<Cqe> cqes = reap(ring, 2);
    REQUIRE(cqes.size() == 2);
    CHECK(ring.cq_ready() == 0);
    // Both carry the request's user_data; the flags tell them apart.
    const Cqe* result = nullptr;
    const Cqe* notif = nullptr;
    for (const Cqe& c : cqes) {
        CHECK(c.user_data == 1);
        (has(c, cqe_flag::notif) ? notif : result) = &c;
    }
    REQUIRE(result != nullptr);
    REQUIRE(notif != nullptr);
    CHECK(result->res == 16384);
    CHECK(has(*result, cqe_flag::more));
    CHECK(notif->res == 0);
    CHECK_FALSE(has(*notif, cqe_flag::more));
    std::vector<char> got(16384);
    CHECK(::recv(tcp.server.get(), got.data(), got.size(), MSG_WAITALL) == 16384);
    CHECK(got == data);

    // With REPORT_USAGE the notification says whether the data was copied after all
    // (loopback copies it); nothing else may be set in res.
    Sqe& u = next_sqe(ring, 2);
    prep_send_zc(u, tcp.client.get(), data.data(), 100, MSG_NOSIGNAL,
                 recvsend_flag::send_zc_report_usage);
    CHECK(u.ioprio == recvsend_flag::send_zc_report_usage);
    const std::vector<Cqe> more = reap(ring, 2);
    for (const Cqe& c : more) {
        if (has(c, cqe_flag::notif)) {
            CHECK((static_cast<std::uint32_t>(c.res) & ~kNotifUsageZcCopied) == 0);
        } else {
            CHECK(c.res == 100);
        }
    }
    CHECK(::recv(tcp.server.get(), got.data(), 100, MSG_WAITALL) == 100);

    // AF_UNIX has no zero-copy.
    SocketPair sp;
    prep_send_zc(next_sqe(ring, 3), sp.fds[0], data.data(), 10, MSG_NOSIGNAL, 0);
    Cqe cqe = submit_and_reap_one(ring);
    CHECK(cqe.res == -EOPNOTSUPP);
    if (has(cqe, cqe_flag::more)) CHECK(has(reap(ring, 1).front(), cqe_flag::notif));
}

TEST_CASE("prep_send_set_addr: send and send_zc to an address on an unconnected UDP socket") {
    // A destination for SEND came with SEND_ZC in 6.0.
    if (!require_op(Op::send_zc, "IORING_OP_SEND_ZC with a destination (6.0)")) return;
    Ring ring = make_ring(4);
    UdpSocket rx;
    UniqueFd tx(::socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0));
    REQUIRE(tx.valid());

    Sqe& s = next_sqe(ring, 1);
    prep_send(s, tx.get(), "dgram", 5, 0);
    prep_send_set_addr(s, reinterpret_cast<const sockaddr*>(&rx.addr), sizeof(rx.addr));
    CHECK(s.opcode == static_cast<std::uint8_t>(Op::send));
    CHECK(s.addr2 == to_u64(&rx.addr));
    CHECK(s.addr_len == sizeof(sockaddr_in));
    CHECK(s.splice_fd_in == static_cast<std::int32_t>(sizeof(sockaddr_in)));  // pad3 stays 0
    CHECK(submit_and_reap_one(ring).res == 5);
    char buf[16] = {};
    CHECK(::recv(rx.fd.get(), buf, sizeof(buf), MSG_DONTWAIT) == 5);
    CHECK(std::string(buf, 5) == "dgram");

    Sqe& z = next_sqe(ring, 2);
    prep_send_zc(z, tx.get(), "zcgram", 6, 0, 0);
    prep_send_set_addr(z, reinterpret_cast<const sockaddr*>(&rx.addr), sizeof(rx.addr));
    const std::vector<Cqe> cqes = reap(ring, 2);
    for (const Cqe& c : cqes) CHECK(c.res == (has(c, cqe_flag::notif) ? 0 : 6));
    CHECK(::recv(rx.fd.get(), buf, sizeof(buf), MSG_DONTWAIT) == 6);
    CHECK(std::string(buf, 6) == "zcgram");

    // Without an address there is nowhere to send to.
    prep_send(next_sqe(ring, 3), tx.get(), "x", 1, 0);
    CHECK(submit_and_reap_one(ring).res == -EDESTADDRREQ);
}

TEST_CASE("prep_bind / prep_listen: a fresh socket ends up listening where it was bound") {
    if (!require_op(Op::bind, "IORING_OP_BIND (6.11)")) return;
    if (!require_op(Op::listen, "IORING_OP_LISTEN (6.11)")) return;
    Ring ring = make_ring(4);
    UniqueFd sock(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
    REQUIRE(sock.valid());
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    Sqe& b = next_sqe(ring, 1);
    prep_bind(b, sock.get(), reinterpret_cast<const sockaddr*>(&addr), sizeof(addr));
    CHECK(b.opcode == static_cast<std::uint8_t>(Op::bind));
    CHECK(b.fd == sock.get());
    CHECK(b.addr == to_u64(&addr));
    CHECK(b.off == sizeof(addr));
    CHECK(b.len == 0);
    CHECK(submit_and_reap_one(ring).res == 0);
    sockaddr_in bound{};
    socklen_t len = sizeof(bound);
    REQUIRE(::getsockname(sock.get(), reinterpret_cast<sockaddr*>(&bound), &len) == 0);
    CHECK(bound.sin_addr.s_addr == htonl(INADDR_LOOPBACK));
    CHECK(bound.sin_port != 0);

    Sqe& l = next_sqe(ring, 2);
    prep_listen(l, sock.get(), 7);
    CHECK(l.opcode == static_cast<std::uint8_t>(Op::listen));
    CHECK(l.fd == sock.get());
    CHECK(l.len == 7);
    CHECK(l.addr == 0);
    CHECK(submit_and_reap_one(ring).res == 0);
    int listening = 0;
    len = sizeof(listening);
    REQUIRE(::getsockopt(sock.get(), SOL_SOCKET, SO_ACCEPTCONN, &listening, &len) == 0);
    CHECK(listening == 1);
    UniqueFd client(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
    CHECK(::connect(client.get(), reinterpret_cast<sockaddr*>(&bound), sizeof(bound)) == 0);
    UniqueFd accepted(::accept4(sock.get(), nullptr, nullptr, SOCK_CLOEXEC));
    CHECK(accepted.valid());

    // A second bind of the same socket is refused.
    prep_bind(next_sqe(ring, 3), sock.get(), reinterpret_cast<const sockaddr*>(&addr),
              sizeof(addr));
    CHECK(submit_and_reap_one(ring).res == -EINVAL);
}

TEST_CASE("prep_multishot_accept: three connections from one SQE, each with F_MORE") {
    // The probe has no bit for multishot accept; IORING_OP_SOCKET came in the same 5.19.
    if (!require_op(Op::socket, "IORING_ACCEPT_MULTISHOT (5.19)")) return;
    Ring ring = make_ring(8);
    Listener listener;
    Sqe& a = next_sqe(ring, 1);
    prep_multishot_accept(a, listener.fd.get(), nullptr, nullptr, SOCK_CLOEXEC);
    CHECK(a.opcode == static_cast<std::uint8_t>(Op::accept));
    CHECK(a.fd == listener.fd.get());
    CHECK(a.ioprio == accept_flag::multishot);
    CHECK(a.accept_flags == static_cast<std::uint32_t>(SOCK_CLOEXEC));
    CHECK(a.addr == 0);
    CHECK(a.off == 0);
    REQUIRE(ring.submit() == 1);

    UniqueFd clients[3];
    std::set<int> accepted;
    for (UniqueFd& client : clients) {
        client.reset(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
        REQUIRE(::connect(client.get(), reinterpret_cast<sockaddr*>(&listener.addr),
                          sizeof(listener.addr)) == 0);
        const Cqe cqe = reap(ring, 1).front();
        CHECK(cqe.user_data == 1);
        REQUIRE(cqe.res >= 0);
        CHECK(has(cqe, cqe_flag::more));
        CHECK(::fcntl(cqe.res, F_GETFD) == FD_CLOEXEC);
        CHECK(accepted.insert(cqe.res).second);
    }
    CHECK(accepted.size() == 3);

    // Still armed until cancelled; the last CQE has no F_MORE.
    prep_cancel(next_sqe(ring, 2), 1, 0);
    const std::vector<Cqe> cqes = reap(ring, 2);
    CHECK(find_cqe(cqes, 1).res == -ECANCELED);
    CHECK_FALSE(has(find_cqe(cqes, 1), cqe_flag::more));
    CHECK(find_cqe(cqes, 2).res == 0);
    for (int fd : accepted) ::close(fd);
}

TEST_CASE("prep_poll_multishot: fires on each new readiness with F_MORE until removed") {
    Ring ring = make_ring(4);
    SocketPair sp;
    Sqe& p = next_sqe(ring, 1);
    prep_poll_multishot(p, sp.fds[1], POLLIN);
    CHECK(p.opcode == static_cast<std::uint8_t>(Op::poll_add));
    CHECK(p.fd == sp.fds[1]);
    CHECK(p.len == poll_flag::add_multi);
#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
    CHECK(p.poll32_events == POLLIN);
#endif
    REQUIRE(ring.submit() == 1);
    char c = 0;
    for (const char* byte : {"x", "y"}) {
        REQUIRE(::write(sp.fds[0], byte, 1) == 1);
        const Cqe cqe = reap(ring, 1).front();
        CHECK(cqe.user_data == 1);
        CHECK((cqe.res & POLLIN) != 0);
        CHECK(has(cqe, cqe_flag::more));
        CHECK(::read(sp.fds[1], &c, 1) == 1);
        CHECK(c == *byte);
    }
    ::usleep(10'000);
    CHECK(ring.cq_ready() == 0);  // nothing new, nothing posted

    prep_poll_remove(next_sqe(ring, 2), 1);
    const std::vector<Cqe> cqes = reap(ring, 2);
    CHECK(find_cqe(cqes, 1).res == -ECANCELED);
    CHECK_FALSE(has(find_cqe(cqes, 1), cqe_flag::more));
    CHECK(find_cqe(cqes, 2).res == 0);
}

TEST_CASE("prep_recv_multishot: one CQE per message from a buffer ring, -ENOBUFS when dry") {
    // No probe bit for multishot recv either; SEND_ZC came in the same 6.0.
    if (!require_op(Op::send_zc, "IORING_RECV_MULTISHOT (6.0)")) return;
    Ring ring = make_ring(8);
    constexpr std::uint32_t kEntries = 4;
    constexpr std::uint32_t kBufSize = 64;
    constexpr std::uint16_t kGroup = 7;
    void* page = ::mmap(nullptr, 4096, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    REQUIRE(page != MAP_FAILED);
    auto* br = static_cast<Buf*>(page);
    static char data[kEntries][kBufSize];
    for (std::uint16_t i = 0; i < kEntries; ++i) {
        br[i].addr = to_u64(data[i]);
        br[i].len = kBufSize;
        br[i].bid = i;
    }
    br[0].resv = kEntries;  // the tail: all four are the kernel's (published by the register)
    BufReg reg{};
    reg.ring_addr = to_u64(page);
    reg.ring_entries = kEntries;
    reg.bgid = kGroup;
    REQUIRE(register_buf_ring(ring, reg) == 0);

    SocketPair sp;
    Sqe& r = next_sqe(ring, 1);
    prep_recv_multishot(r, sp.fds[1], kGroup, 0);
    CHECK(r.opcode == static_cast<std::uint8_t>(Op::recv));
    CHECK(r.fd == sp.fds[1]);
    CHECK(r.addr == 0);
    CHECK(r.len == 0);
    CHECK(r.ioprio == recvsend_flag::recv_multishot);
    CHECK(r.flags == sqe_flag::buffer_select);
    CHECK(r.buf_group == kGroup);
    CHECK(r.msg_flags == 0);
    REQUIRE(ring.submit() == 1);

    // One message at a time, so the stream socket keeps them apart.
    for (unsigned i = 0; i < kEntries; ++i) {
        const std::string msg = "message " + std::to_string(i);
        REQUIRE(::send(sp.fds[0], msg.data(), msg.size(), 0) == static_cast<ssize_t>(msg.size()));
        const Cqe cqe = reap(ring, 1).front();
        CHECK(cqe.user_data == 1);
        REQUIRE(cqe.res == static_cast<int>(msg.size()));
        CHECK(has(cqe, cqe_flag::more));
        REQUIRE(has(cqe, cqe_flag::buffer));
        const unsigned bid = cqe.flags >> kCqeBufferShift;
        CHECK(bid == i);  // taken in ring order
        REQUIRE(bid < kEntries);
        CHECK(std::string(data[bid], msg.size()) == msg);
    }
    // Every buffer is used: the next message ends the request with -ENOBUFS (right away
    // or when it arrives), and no F_MORE.
    REQUIRE(::send(sp.fds[0], "more", 4, 0) == 4);
    const Cqe last = reap(ring, 1).front();
    CHECK(last.res == -ENOBUFS);
    CHECK_FALSE(has(last, cqe_flag::more));
    CHECK(ring.cq_ready() == 0);

    CHECK(unregister_buf_ring(ring, kGroup) == 0);
    ::munmap(page, 4096);
}

// ---- Timeouts ------------------------------------------------------------------------------

TEST_CASE("prep_timeout_update: a 10 s timeout moved to 20 ms fires early") {
    Ring ring = make_ring(4);
    KernelTimespec long_ts{10, 0};
    prep_timeout(next_sqe(ring, 1), &long_ts, 0, 0);
    REQUIRE(ring.submit() == 1);

    KernelTimespec short_ts{0, 20'000'000};
    Sqe& u = next_sqe(ring, 2);
    prep_timeout_update(u, &short_ts, 1, 0);
    CHECK(u.opcode == static_cast<std::uint8_t>(Op::timeout_remove));
    CHECK(u.fd == -1);
    CHECK(u.addr == 1);  // the target's user_data
    CHECK(u.addr2 == to_u64(&short_ts));
    CHECK(u.len == 0);
    CHECK(u.timeout_flags == timeout_flag::update);
    const auto start = std::chrono::steady_clock::now();
    const std::vector<Cqe> cqes = reap(ring, 2);
    const auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(
                        std::chrono::steady_clock::now() - start)
                        .count();
    if (find_cqe(cqes, 2).res == -EINVAL) {
        MESSAGE("skipped: kernel lacks IORING_TIMEOUT_UPDATE (5.11)");
        return;
    }
    CHECK(find_cqe(cqes, 2).res == 0);
    CHECK(find_cqe(cqes, 1).res == -ETIME);
    CHECK(ms < 2000);

    Sqe& none = next_sqe(ring, 3);
    prep_timeout_update(none, &short_ts, 99, timeout_flag::abs);
    CHECK(none.timeout_flags == (timeout_flag::abs | timeout_flag::update));
    CHECK(submit_and_reap_one(ring).res == -ENOENT);
}
