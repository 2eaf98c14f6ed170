// SPDX-License-Identifier: Apache-2.0
// The only door to the kernel: the three io_uring system calls, mmap/munmap and close.
// Every function returns >= 0 on success and -errno on failure; errno itself is read
// here and nowhere else (liburing arch/generic/syscall.h does the same), so no caller can
// mix up the two conventions.
#pragma once

#include <cstddef>
#include <cstdint>

#include "abi.hpp"

namespace luring::uring::sys {

// io_uring_setup(2). Returns the ring fd.
int io_uring_setup(std::uint32_t entries, Params* p) noexcept;

// io_uring_enter(2) with an optional argument block (sigmask or GeteventsArg).
// Returns the number of SQEs consumed.
int io_uring_enter(int fd, std::uint32_t to_submit, std::uint32_t min_complete,
                   std::uint32_t flags, const void* arg, std::size_t argsz) noexcept;

// io_uring_register(2).
int io_uring_register(int fd, std::uint32_t opcode, const void* arg,
                      std::uint32_t nr_args) noexcept;

// mmap(MAP_SHARED | MAP_POPULATE) of one ring region of `fd` at `offset`.
int mmap_ring(void** out, std::size_t length, int fd, std::uint64_t offset) noexcept;

int munmap(void* addr, std::size_t length) noexcept;

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

}  // namespace luring::uring::sys
