// SPDX-License-Identifier: Apache-2.0
// What every benchmark driver shares: the clock, the timed loop, the result line, the
// read-4k data file and its random offsets, and socket pairs for ping-pong. Header-only
// and free of liburing and Lua, so each driver and the Lua helper module can include it.
#pragma once

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <cerrno>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <vector>

namespace luring::bench {

// The read-4k data set: 64 MiB read in 4 KiB blocks at random block-aligned offsets.
inline constexpr std::uint64_t kFileSize = 64ULL << 20;
inline constexpr std::uint32_t kBlock = 4096;
// Offsets come from a table of this many entries, walked in a cycle (a power of two).
inline constexpr std::uint32_t kOffsetCount = 1U << 16;
// Every write and every ping-pong message carries this many bytes.
inline constexpr std::uint32_t kMessage = 64;
// The clock is read once per this many operations at most, so reading it costs the
// batch-1 loops no more than the batch-32 ones.
inline constexpr std::uint64_t kClockEvery = 64;

inline double now() noexcept {
    timespec ts{};
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return static_cast<double>(ts.tv_sec) + static_cast<double>(ts.tv_nsec) * 1e-9;
}

// How long one measurement runs: a warm-up, then a measured duration; or, with `ops`
// set, exactly that many operations and no warm-up (deterministic, for callgrind).
struct RunSpec {
    double warmup = 0.05;
    double seconds = 0.25;
    std::uint64_t ops = 0;
};

struct Result {
    std::uint64_t ops = 0;
    double seconds = 0;
};

// Calls `batch()` (which does some operations and returns how many, or -errno) until the
// spec is met, and measures the part after the warm-up. Returns 0 or -errno.
template <class Batch>
int timed(const RunSpec& spec, Result& out, Batch&& batch) {
    if (spec.ops == 0) {
        const double end = now() + spec.warmup;
        do {
            int n = batch();
            if (n < 0) return n;
        } while (now() < end);
    }
    std::uint64_t ops = 0;
    std::uint64_t since_clock = 0;
    const double start = now();
    const double end = start + spec.seconds;
    double t = start;
    for (;;) {
        int n = batch();
        if (n < 0) return n;
        ops += static_cast<std::uint64_t>(n);
        if (spec.ops != 0) {
            if (ops >= spec.ops) break;
            continue;
        }
        since_clock += static_cast<std::uint64_t>(n);
        if (since_clock >= kClockEvery) {
            since_clock = 0;
            t = now();
            if (t >= end) break;
        }
    }
    out = {ops, now() - start};
    return 0;
}

// The one line bench-run reads from every driver and Lua script.
inline void print_result(const Result& r) {
    std::printf("RESULT ops=%llu seconds=%.6f ops_per_sec=%.1f\n",
                static_cast<unsigned long long>(r.ops), r.seconds,
                r.seconds > 0 ? static_cast<double>(r.ops) / r.seconds : 0.0);
    std::fflush(stdout);
}

// xorshift64, so C++ and Lua (tools/bench/lua/bench.lua) draw the same offsets.
inline std::vector<std::uint64_t> make_offsets() {
    std::vector<std::uint64_t> out(kOffsetCount);
    std::uint64_t x = 0x9e3779b97f4a7c15ULL;
    const std::uint64_t blocks = kFileSize / kBlock;
    for (auto& off : out) {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        off = ((x >> 20) & (blocks - 1)) * kBlock;
    }
    return out;
}

// Makes sure `path` is a kFileSize file of non-zero data (a sparse file would read
// holes, not page-cache pages); with `preload`, reads it all so it is in the page
// cache. Returns 0 or -errno.
inline int ensure_data_file(const char* path, bool preload) {
    struct stat st {};
    if (::stat(path, &st) != 0 || static_cast<std::uint64_t>(st.st_size) != kFileSize) {
        int fd = ::open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
        if (fd < 0) return -errno;
        std::vector<unsigned char> chunk(1 << 20);
        std::uint64_t x = 88172645463325252ULL;
        for (std::uint64_t done = 0; done < kFileSize; done += chunk.size()) {
            for (auto& c : chunk) {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                c = static_cast<unsigned char>(x | 1);
            }
            if (::write(fd, chunk.data(), chunk.size()) != static_cast<ssize_t>(chunk.size())) {
                int err = errno != 0 ? errno : EIO;
                ::close(fd);
                return -err;
            }
        }
        ::close(fd);
    }
    if (preload) {
        int fd = ::open(path, O_RDONLY | O_CLOEXEC);
        if (fd < 0) return -errno;
        std::vector<char> buf(1 << 20);
        while (::read(fd, buf.data(), buf.size()) > 0) {
        }
        ::close(fd);
    }
    return 0;
}

// A connected pair of blocking stream sockets: AF_UNIX (socketpair) or loopback TCP
// with Nagle off on both ends. The descriptors are inheritable, so a parent can pass
// them on. Returns 0 or -errno.
inline int make_socket_pair(bool tcp, int fds[2]) {
    if (!tcp) return ::socketpair(AF_UNIX, SOCK_STREAM, 0, fds) == 0 ? 0 : -errno;
    int listener = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (listener < 0) return -errno;
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t len = sizeof(addr);
    auto* sa = reinterpret_cast<sockaddr*>(&addr);
    int a = -1;
    int b = -1;
    int err = 0;
    if (::bind(listener, sa, sizeof(addr)) != 0 || ::listen(listener, 1) != 0 ||
        ::getsockname(listener, sa, &len) != 0) {
        err = errno;
    } else if ((a = ::socket(AF_INET, SOCK_STREAM, 0)) < 0 || ::connect(a, sa, len) != 0 ||
               (b = ::accept(listener, nullptr, nullptr)) < 0) {
        err = errno;
    }
    ::close(listener);
    if (err != 0) {
        if (a >= 0) ::close(a);
        return -err;
    }
    int one = 1;
    ::setsockopt(a, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    ::setsockopt(b, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    fds[0] = a;
    fds[1] = b;
    return 0;
}

}  // namespace luring::bench
