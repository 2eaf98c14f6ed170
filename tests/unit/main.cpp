// SPDX-License-Identifier: Apache-2.0
// doctest main: skip the whole program (exit 77, meson's "skipped") when io_uring
// itself is unavailable here, as liburing's tests do with T_EXIT_SKIP.
#define DOCTEST_CONFIG_IMPLEMENT
#include "helpers.hpp"

#include <dirent.h>

#include <cerrno>
#include <cstring>
#include <fstream>
#include <string>

namespace luring::test {

int fd_count() {
    int n = 0;
    DIR* dir = opendir("/proc/self/fd");
    if (dir == nullptr) return -1;
    while (readdir(dir) != nullptr) ++n;
    closedir(dir);
    return n;
}

int map_count() {
    std::ifstream maps("/proc/self/maps");
    std::string line;
    int n = 0;
    // Only ring mappings: the allocator (and ASan's) map memory of their own.
    while (std::getline(maps, line)) n += line.find("io_uring") != std::string::npos ? 1 : 0;
    return n;
}

Ring make_ring(std::uint32_t entries, std::uint32_t flags) {
    Ring ring;
    Params p{};
    p.flags = flags;
    int ret = ring.init(entries, p);
    REQUIRE_MESSAGE(ret == 0, "io_uring_setup: ", std::strerror(-ret));
    return ring;
}

bool require_op(Op op, const char* what) {
    Ring ring = make_ring(2);
    OpSupport ops;
    if (register_probe(ring, ops) < 0 || !ops.supported[static_cast<unsigned>(op)]) {
        // doctest prints a const char* as a pointer (DOCTEST_CONFIG_TREAT_CHAR_STAR_AS_STRING
        // is off by default): hand it a string.
        MESSAGE("skipped: kernel lacks ", doctest::String(what));
        return false;
    }
    return true;
}

Cqe submit_and_reap_one(Ring& ring) {
    int ret = ring.submit_and_wait(1);
    REQUIRE(ret >= 0);
    Cqe cqe{};
    REQUIRE(ring.copy_cqes(&cqe, 1) == 1);
    return cqe;
}

}  // namespace luring::test

int main(int argc, char** argv) {
    luring::uring::Ring ring;
    luring::uring::Params p{};
    int ret = ring.init(2, p);
    if (ret == -ENOSYS || ret == -EPERM || ret == -EOPNOTSUPP) {
        std::printf("io_uring unavailable here (%s): skipping\n", std::strerror(-ret));
        return 77;
    }
    ring.close();
    doctest::Context context(argc, argv);
    return context.run();
}
