// SPDX-License-Identifier: Apache-2.0
// echo-load PORT CONNECTIONS SECONDS [SIZE]: the load of the echo benchmark. Opens
// CONNECTIONS to 127.0.0.1:PORT (TCP_NODELAY); on each, sends one SIZE-byte line (default
// 1024, "\n" included), waits until the same bytes came back, checks them, and again,
// for SECONDS. Plain epoll, so it measures the servers and not itself. Prints
// "messages N seconds S"; exits 1 on a connect failure, a close or a wrong byte.
#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

namespace {

struct Conn {
    int fd = -1;
    std::size_t sent = 0;  // of the message in flight
    std::size_t got = 0;
};

double now() {
    timespec ts{};
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return static_cast<double>(ts.tv_sec) + static_cast<double>(ts.tv_nsec) * 1e-9;
}

int fail(const char* what) {
    std::fprintf(stderr, "echo-load: %s: %s\n", what, std::strerror(errno));
    return 1;
}

}  // namespace

int main(int argc, char** argv) {
    if (argc < 4) {
        std::fprintf(stderr, "usage: echo-load PORT CONNECTIONS SECONDS [SIZE]\n");
        return 2;
    }
    const int port = std::atoi(argv[1]);
    const int n = std::atoi(argv[2]);
    const double seconds = std::atof(argv[3]);
    const std::size_t size = argc > 4 ? std::strtoul(argv[4], nullptr, 10) : 1024;
    if (n < 1 || size < 2) return 2;
    std::string msg(size - 1, 'x');
    for (std::size_t i = 0; i < msg.size(); ++i) msg[i] = static_cast<char>('a' + i % 26);
    msg += '\n';

    const int ep = epoll_create1(EPOLL_CLOEXEC);
    std::vector<Conn> conns(static_cast<std::size_t>(n));
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_port = htons(static_cast<std::uint16_t>(port));
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    for (int i = 0; i < n; ++i) {
        Conn& c = conns[static_cast<std::size_t>(i)];
        c.fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
        if (c.fd < 0) return fail("socket");
        if (connect(c.fd, reinterpret_cast<sockaddr*>(&a), sizeof(a)) != 0) return fail("connect");
        const int one = 1;
        setsockopt(c.fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
        epoll_event ev{};
        ev.events = EPOLLIN | EPOLLOUT | EPOLLET;
        ev.data.u32 = static_cast<std::uint32_t>(i);
        if (epoll_ctl(ep, EPOLL_CTL_ADD, c.fd, &ev) != 0) return fail("epoll_ctl");
    }
    std::vector<char> buf(size);
    std::vector<epoll_event> events(static_cast<std::size_t>(n));
    long long messages = 0;
    const double t0 = now();
    const double end = t0 + seconds;
    while (now() < end) {
        const int k = epoll_wait(ep, events.data(), n, 100);
        if (k < 0 && errno != EINTR) return fail("epoll_wait");
        for (int e = 0; e < k; ++e) {
            Conn& c = conns[events[static_cast<std::size_t>(e)].data.u32];
            for (;;) {  // edge-triggered: go until the socket would block
                if (c.sent < size) {
                    const ssize_t w = send(c.fd, msg.data() + c.sent, size - c.sent, MSG_NOSIGNAL | MSG_DONTWAIT);
                    if (w < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) break;
                    if (w < 0) return fail("send");
                    c.sent += static_cast<std::size_t>(w);
                    continue;
                }
                const ssize_t r = recv(c.fd, buf.data(), size - c.got, MSG_DONTWAIT);
                if (r < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) break;
                if (r <= 0) {
                    if (r == 0) errno = ECONNRESET;
                    return fail("recv");
                }
                if (std::memcmp(buf.data(), msg.data() + c.got, static_cast<std::size_t>(r)) != 0) {
                    std::fprintf(stderr, "echo-load: wrong bytes back\n");
                    return 1;
                }
                c.got += static_cast<std::size_t>(r);
                if (c.got == size) {
                    ++messages;
                    c.sent = c.got = 0;
                }
            }
        }
    }
    std::printf("messages %lld seconds %.3f\n", messages, now() - t0);
    for (Conn& c : conns) close(c.fd);
    return 0;
}
