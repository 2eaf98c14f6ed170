// SPDX-License-Identifier: Apache-2.0
// The only door to the kernel: the three io_uring system calls, mmap/munmap and close.
// Every function returns >= 0 on success and -errno on failure; errno itself is read
// here and nowhere else (liburing arch/generic/syscall.h does the same), so no caller can
// mix up the two conventions.
#pragma once

#include <atomic>
#include <cstddef>
#include <cstdint>

#include "abi.hpp"

namespace luring::uring::sys {

// io_uring_setup(2). Returns the ring fd.
int io_uring_setup(std::uint32_t entries, Params* p) noexcept;


// io_uring_register(2).
int io_uring_register(int fd, std::uint32_t opcode, const void* arg,
                      std::uint32_t nr_args) noexcept;

// mmap(MAP_SHARED | MAP_POPULATE) of one ring region of `fd` at `offset`.
int mmap_ring(void** out, std::size_t length, int fd, std::uint64_t offset) noexcept;

// Private anonymous read/write memory, page-aligned (rings in user memory, NO_MMAP).
int mmap_anonymous(void** out, std::size_t length) noexcept;

// mmap(PROT_READ, MAP_SHARED) of `length` bytes of `fd` at `offset`: a second, read-only
// view of ring memory, for Ring::owns_fd(). Fails with -ENODEV, -EACCES or -EINVAL on
// most files that are not an io_uring, but succeeds on a readable regular file, whose
// pages past its end raise SIGBUS when read: ask is_io_uring() first. On a ring, 6.x
// kernels map more than the region holds (but refuse less with -EFAULT), and the pages
// past it raise SIGBUS too.
int mmap_ring_readonly(void** out, std::size_t length, int fd, std::uint64_t offset) noexcept;

int munmap(void* addr, std::size_t length) noexcept;

// True if `fd` is an open io_uring instance (anyone's). Asks with an io_uring_enter that
// has nothing to submit, waits for nothing and has no flags: the kernel answers
// -EOPNOTSUPP for every other kind of file (its f_op check, there since 5.1) and -EBADF
// for a closed number; on a ring it does nothing (0, or -EBADFD on a disabled ring,
// -ENXIO on a dying one, -EOWNERDEAD under SQPOLL without a poller: rings all the same).
// Not counted in enter_count(), and the fault seam does not apply.
bool is_io_uring(int fd) noexcept;

int close(int fd) noexcept;

// Test seam, used only by tests/unit: make the kernel look older or failing so that the
// fallback paths run on a new kernel. All zero means "off" (the default).
struct Faults {
    std::uint32_t hide_features = 0;  // feature bits cleared from setup's answer
    int enter_error = 0;              // next io_uring_enter returns this -errno once
    int setup_error = 0;              // every io_uring_setup returns this -errno
};
Faults& faults() noexcept;

// How many io_uring_enter calls this process made (tests count syscalls with it).
std::uint64_t enter_count() noexcept;

namespace detail {
extern Faults g_faults;
// Atomic: rings may live in several threads. Relaxed: a statistic, ordering nothing.
extern std::atomic<std::uint64_t> g_enter_count;
long enter_syscall(int fd, std::uint32_t to_submit, std::uint32_t min_complete,
                   std::uint32_t flags, const void* arg, std::size_t argsz) noexcept;

// The kernel's raw system call: it returns -errno itself, so errno is never involved.
// liburing does the same on these architectures (arch/*/syscall.h); libc's syscall()
// would add a call, errno handling and a conversion back on the hottest path we have.
inline long raw_enter(int fd, std::uint32_t to_submit, std::uint32_t min_complete,
                      std::uint32_t flags, const void* arg, std::size_t argsz) noexcept {
#if defined(__x86_64__) && !defined(__ILP32__)  // not x32: its numbers carry a flag bit
    long ret;
    register long r10 __asm__("r10") = static_cast<long>(flags);
    register long r8 __asm__("r8") = reinterpret_cast<long>(arg);
    register long r9 __asm__("r9") = static_cast<long>(argsz);
    __asm__ volatile("syscall"
                     : "=a"(ret)
                     : "0"(426L /* __NR_io_uring_enter */), "D"(static_cast<long>(fd)),
                       "S"(static_cast<long>(to_submit)), "d"(static_cast<long>(min_complete)),
                       "r"(r10), "r"(r8), "r"(r9)
                     : "rcx", "r11", "memory");
    return ret;
#elif defined(__aarch64__)
    register long x8 __asm__("x8") = 426L;  // __NR_io_uring_enter
    register long x0 __asm__("x0") = fd;
    register long x1 __asm__("x1") = static_cast<long>(to_submit);
    register long x2 __asm__("x2") = static_cast<long>(min_complete);
    register long x3 __asm__("x3") = static_cast<long>(flags);
    register long x4 __asm__("x4") = reinterpret_cast<long>(arg);
    register long x5 __asm__("x5") = static_cast<long>(argsz);
    __asm__ volatile("svc 0"
                     : "+r"(x0)
                     : "r"(x8), "r"(x1), "r"(x2), "r"(x3), "r"(x4), "r"(x5)
                     : "memory");
    return x0;
#else
    return enter_syscall(fd, to_submit, min_complete, flags, arg, argsz);
#endif
}
}  // namespace detail

// io_uring_enter(2) with an optional argument block (sigmask or GeteventsArg).
// Returns the number of SQEs consumed, or -errno.
inline int io_uring_enter(int fd, std::uint32_t to_submit, std::uint32_t min_complete,
                          std::uint32_t flags, const void* arg, std::size_t argsz) noexcept {
    detail::g_enter_count.fetch_add(1, std::memory_order_relaxed);
    if (detail::g_faults.enter_error != 0) [[unlikely]] {
        int err = detail::g_faults.enter_error;
        detail::g_faults.enter_error = 0;
        return err;
    }
    return static_cast<int>(detail::raw_enter(fd, to_submit, min_complete, flags, arg, argsz));
}

}  // namespace luring::uring::sys
