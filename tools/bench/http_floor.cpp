// SPDX-License-Identifier: Apache-2.0
// http-floor [--echo] PORT: the floor of the server benchmarks. The same keep-alive
// server as examples/http_hello.lua (one "Hello, World!" per request, on
// 127.0.0.1:PORT, until killed), or with --echo an echo server (every byte back, as
// examples/echo_server.lua does line by line), in C++ on the project's own core with
// what io_uring offers a server: one multishot accept, one multishot recv per
// connection into a provided-buffer ring (echo: sent back from that buffer, which goes
// back to the kernel when the send is done), and DEFER_TASKRUN (a plain ring where the
// kernel lacks it, said on stderr). What a Lua server costs beyond this is what the
// binding and the language add.
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <deque>
#include <vector>

#include "buf_ring.hpp"
#include "prep.hpp"
#include "ring.hpp"

using namespace luring::uring;

namespace {

constexpr char kResponse[] =
    "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 13\r\n\r\nHello, World!";
constexpr std::uint32_t kResponseLen = sizeof(kResponse) - 1;
constexpr std::uint32_t kBatch = 32;  // responses per send, at most (pipelined requests)
constexpr std::uint16_t kGroup = 1;

enum Kind : std::uint64_t { kAccept = 1, kRecv = 2, kSend = 3 };
std::uint64_t tag(Kind k, int fd) { return std::uint64_t{k} << 32 | static_cast<std::uint32_t>(fd); }

// Echo: a received chunk still to send back, in provided buffer `bid`.
struct Chunk {
    std::uint32_t bid;
    std::uint32_t len;
};

struct Conn {
    std::deque<Chunk> echo;  // chunks to send back, the first one being sent

    int match = 0;         // how much of "\r\n\r\n" the bytes so far end with
    std::uint32_t owed = 0;  // responses not yet handed to a send
    std::uint32_t total = 0;  // bytes of the responses being sent, from g_responses
    std::uint32_t done = 0;   // of which the kernel took
    bool sending = false;
    bool open = false;
    bool receiving = false;
};

char g_responses[kBatch * kResponseLen];
bool g_echo = false;
std::vector<Conn> g_conns;
Ring g_ring;
BufRing g_bufs;

Sqe* sqe_or_flush() {
    Sqe* sqe = g_ring.get_sqe();
    while (sqe == nullptr) {
        g_ring.submit();
        sqe = g_ring.get_sqe();
    }
    return sqe;
}

void arm_recv(int fd) {
    Sqe* sqe = sqe_or_flush();
    prep_recv_multishot(*sqe, fd, kGroup, 0);
    sqe->user_data = tag(kRecv, fd);
    g_conns[fd].receiving = true;
}

// Sends the responses owed, up to kBatch at once (one send in flight per connection).
void send_owed(int fd) {
    Conn& c = g_conns[fd];
    if (c.sending || c.owed == 0) return;
    const std::uint32_t n = c.owed < kBatch ? c.owed : kBatch;
    c.owed -= n;
    c.total = n * kResponseLen;
    c.done = 0;
    c.sending = true;
    Sqe* sqe = sqe_or_flush();
    prep_send(*sqe, fd, g_responses, c.total, MSG_NOSIGNAL);
    sqe->user_data = tag(kSend, fd);
}

// Echo: sends the first chunk waiting (from c.done on), if no send is in flight.
void send_echo(int fd) {
    Conn& c = g_conns[fd];
    if (c.sending || c.echo.empty()) return;
    const Chunk& k = c.echo.front();
    c.sending = true;
    Sqe* sqe = sqe_or_flush();
    prep_send(*sqe, fd, g_bufs.buffer(k.bid) + c.done, k.len - c.done, MSG_NOSIGNAL);
    sqe->user_data = tag(kSend, fd);
}

// Closes the connection once no request is on it: a shutdown ends its recv (res 0).
void close_conn(int fd) {
    Conn& c = g_conns[fd];
    if (c.open && c.receiving) ::shutdown(fd, SHUT_RDWR);
    c.open = false;
    if (c.sending || c.receiving) return;
    ::close(fd);
    for (const Chunk& k : c.echo) g_bufs.recycle(k.bid);
    c = Conn{};
}

// Counts the requests (header blocks ending in an empty line) in received bytes.
std::uint32_t count_requests(Conn& c, const char* p, std::uint32_t n) {
    static constexpr char kEnd[] = "\r\n\r\n";
    std::uint32_t found = 0;
    for (std::uint32_t i = 0; i < n; ++i) {
        if (p[i] == kEnd[c.match]) {
            if (++c.match == 4) {
                ++found;
                c.match = 0;
            }
        } else {
            c.match = p[i] == '\r' ? 1 : 0;
        }
    }
    return found;
}

void on_accept(const Cqe& cqe, int listener) {
    if (cqe.res >= 0) {
        const int fd = cqe.res;
        if (static_cast<std::size_t>(fd) >= g_conns.size()) g_conns.resize(fd + 1024);
        g_conns[fd] = Conn{};
        g_conns[fd].open = true;
        arm_recv(fd);
    }
    if ((cqe.flags & cqe_flag::more) == 0) {  // re-arm (an error ended it)
        Sqe* sqe = sqe_or_flush();
        prep_multishot_accept(*sqe, listener, nullptr, nullptr, SOCK_CLOEXEC);
        sqe->user_data = tag(kAccept, listener);
    }
}

void on_recv(const Cqe& cqe, int fd) {
    Conn& c = g_conns[fd];
    if (cqe.res > 0 && (cqe.flags & cqe_flag::buffer) != 0) {
        const std::uint32_t bid = cqe.flags >> kCqeBufferShift;
        if (g_echo) {
            if (c.open) {
                c.echo.push_back(Chunk{bid, static_cast<std::uint32_t>(cqe.res)});
                send_echo(fd);
            } else {
                g_bufs.recycle(bid);
            }
        } else if (c.open) {
            c.owed += count_requests(c, g_bufs.buffer(bid), static_cast<std::uint32_t>(cqe.res));
            g_bufs.recycle(bid);
            send_owed(fd);
        } else {
            g_bufs.recycle(bid);
        }
    }
    if ((cqe.flags & cqe_flag::more) != 0) return;
    c.receiving = false;
    if (c.open && (cqe.res == -ENOBUFS || cqe.res > 0)) {
        arm_recv(fd);  // ran out of buffers (or the CQ was full): nothing is lost
    } else {
        close_conn(fd);  // end of stream or an error
    }
}

void on_send(const Cqe& cqe, int fd) {
    Conn& c = g_conns[fd];
    c.sending = false;
    if (cqe.res < 0 || !c.open) {
        close_conn(fd);
        return;
    }
    c.done += static_cast<std::uint32_t>(cqe.res);
    if (g_echo) {
        if (c.done == c.echo.front().len) {  // this chunk is back: its buffer too
            g_bufs.recycle(c.echo.front().bid);
            c.echo.pop_front();
            c.done = 0;
        }
        send_echo(fd);
        return;
    }
    if (c.done < c.total) {  // short send: the rest from where it stopped
        c.sending = true;
        Sqe* sqe = sqe_or_flush();
        prep_send(*sqe, fd, g_responses + c.done, c.total - c.done, MSG_NOSIGNAL);
        sqe->user_data = tag(kSend, fd);
        return;
    }
    send_owed(fd);
}

int listen_on(int port) {
    const int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0) return -errno;
    const int one = 1;
    ::setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_port = htons(static_cast<std::uint16_t>(port));
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (::bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof(a)) != 0 || ::listen(fd, 1024) != 0) {
        const int err = errno;
        ::close(fd);
        return -err;
    }
    return fd;
}

}  // namespace

int main(int argc, char** argv) {
    g_echo = argc == 3 && std::strcmp(argv[1], "--echo") == 0;
    if (argc != 2 && !g_echo) {
        std::fprintf(stderr, "usage: http-floor [--echo] PORT\n");
        return 2;
    }
    for (std::uint32_t i = 0; i < kBatch; ++i) {
        std::memcpy(g_responses + i * kResponseLen, kResponse, kResponseLen);
    }
    const int listener = listen_on(std::atoi(argv[argc - 1]));
    if (listener < 0) {
        std::fprintf(stderr, "http-floor: listen: %s\n", std::strerror(-listener));
        return 1;
    }
    Params p{};
    p.flags = setup::single_issuer | setup::defer_taskrun | setup::taskrun_flag;
    int ret = g_ring.init(4096, p);
    if (ret == -EINVAL) {
        std::fprintf(stderr, "http-floor: no DEFER_TASKRUN here, a plain ring\n");
        p = Params{};
        ret = g_ring.init(4096, p);
    }
    if (ret < 0) {
        std::fprintf(stderr, "http-floor: io_uring_setup: %s\n", std::strerror(-ret));
        return 1;
    }
    ret = g_bufs.setup(g_ring, kGroup, 1024, 4096);
    if (ret < 0) {
        std::fprintf(stderr, "http-floor: provided buffers: %s (needs 5.19)\n", std::strerror(-ret));
        return 1;
    }
    g_conns.resize(4096);
    Sqe* sqe = sqe_or_flush();
    prep_multishot_accept(*sqe, listener, nullptr, nullptr, SOCK_CLOEXEC);
    sqe->user_data = tag(kAccept, listener);
    Cqe cqes[256];
    for (;;) {
        ret = g_ring.submit_and_wait(1);
        if (ret < 0 && ret != -EINTR && ret != -EAGAIN && ret != -EBUSY) {
            std::fprintf(stderr, "http-floor: io_uring_enter: %s\n", std::strerror(-ret));
            return 1;
        }
        std::uint32_t n;
        while ((n = g_ring.copy_cqes(cqes, 256)) > 0) {
            for (std::uint32_t i = 0; i < n; ++i) {
                const int fd = static_cast<int>(cqes[i].user_data & 0xffff'ffffU);
                switch (cqes[i].user_data >> 32) {
                    case kAccept: on_accept(cqes[i], listener); break;
                    case kRecv: on_recv(cqes[i], fd); break;
                    case kSend: on_send(cqes[i], fd); break;
                    default: break;
                }
            }
        }
    }
}
