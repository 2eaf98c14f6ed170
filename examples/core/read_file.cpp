// SPDX-License-Identifier: Apache-2.0
// The C++ core without Lua: read_file PATH prints the first 4 KiB of PATH, read through
// one io_uring request.
#include <fcntl.h>
#include <unistd.h>

#include <cstdio>
#include <cstring>

#include "prep.hpp"
#include "ring.hpp"
using namespace luring::uring;

int main(int argc, char** argv) {
    if (argc != 2) return 2;
    int fd = ::open(argv[1], O_RDONLY | O_CLOEXEC);
    if (fd < 0) return 1;
    char buf[4096];

    Ring ring;
    Params p{};                                  // flags, cq_entries, sq_thread_idle...
    if (int ret = ring.init(64, p); ret < 0) {
        std::fprintf(stderr, "io_uring: %s\n", std::strerror(-ret));
        return 1;
    }
    Sqe* sqe = ring.get_sqe();                   // nullptr when the SQ is full
    prep_read(*sqe, fd, buf, sizeof buf, 0);
    sqe->user_data = 42;
    ring.submit_and_wait(1);                     // -EINTR on a signal, never retried
    Cqe cqes[16];
    unsigned n = ring.copy_cqes(cqes, 16);       // copies out, advances the head once
    if (n != 1 || cqes[0].user_data != 42 || cqes[0].res < 0) return 1;
    std::fwrite(buf, 1, static_cast<std::size_t>(cqes[0].res), stdout);
    ::close(fd);
    return 0;
}
