// SPDX-License-Identifier: Apache-2.0
#include "sys.hpp"

#include <sys/mman.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cerrno>

namespace luring::uring::sys {

namespace detail {
Faults g_faults;
std::atomic<std::uint64_t> g_enter_count{0};
}  // namespace detail

using detail::g_enter_count;
using detail::g_faults;

namespace {

// syscall(2) gives -1 and errno; turn that into -errno right here.
long check(long ret) noexcept { return ret < 0 ? -errno : ret; }

}  // namespace

Faults& faults() noexcept { return g_faults; }

std::uint64_t enter_count() noexcept { return g_enter_count.load(std::memory_order_relaxed); }

#if (defined(__x86_64__) && !defined(__ILP32__)) || defined(__aarch64__)
static_assert(__NR_io_uring_enter == 426, "sys.hpp's raw_enter hard-codes the number");
#endif

int io_uring_setup(std::uint32_t entries, Params* p) noexcept {
    if (g_faults.setup_error != 0) return g_faults.setup_error;
    int fd = static_cast<int>(check(::syscall(__NR_io_uring_setup, entries, p)));
    if (fd >= 0) p->features &= ~g_faults.hide_features;
    return fd;
}

long detail::enter_syscall(int fd, std::uint32_t to_submit, std::uint32_t min_complete,
                          std::uint32_t flags, const void* arg, std::size_t argsz) noexcept {
    return check(::syscall(__NR_io_uring_enter, fd, to_submit, min_complete, flags, arg, argsz));
}

int io_uring_register(int fd, std::uint32_t opcode, const void* arg,
                      std::uint32_t nr_args) noexcept {
    return static_cast<int>(check(::syscall(__NR_io_uring_register, fd, opcode, arg, nr_args)));
}

int mmap_ring(void** out, std::size_t length, int fd, std::uint64_t offset) noexcept {
    void* addr = ::mmap(nullptr, length, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_POPULATE, fd,
                        static_cast<off_t>(offset));
    if (addr == MAP_FAILED) return -errno;
    *out = addr;
    return 0;
}

int mmap_anonymous(void** out, std::size_t length) noexcept {
    void* addr =
        ::mmap(nullptr, length, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (addr == MAP_FAILED) return -errno;
    *out = addr;
    return 0;
}

int mmap_ring_readonly(void** out, std::size_t length, int fd, std::uint64_t offset) noexcept {
    void* addr = ::mmap(nullptr, length, PROT_READ, MAP_SHARED, fd, static_cast<off_t>(offset));
    if (addr == MAP_FAILED) return -errno;
    *out = addr;
    return 0;
}

bool is_io_uring(int fd) noexcept {
    const long ret = detail::raw_enter(fd, 0, 0, 0, nullptr, 0);
    return ret != -EOPNOTSUPP && ret != -EBADF;
}

int munmap(void* addr, std::size_t length) noexcept {
    return static_cast<int>(check(::munmap(addr, length)));
}

int close(int fd) noexcept { return static_cast<int>(check(::close(fd))); }

}  // namespace luring::uring::sys
