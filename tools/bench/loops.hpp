// SPDX-License-Identifier: Apache-2.0
// The C/C++ workload loops, one set per implementation: the luring core
// (core_loops.cpp), liburing (liburing_loops.cpp, only built when liburing is found) and
// plain system calls (syscall_loops.cpp). Every set does the same I/O in the same order,
// so their rates compare the interfaces and nothing else.
#pragma once

#include <cstdint>

#include "bench.hpp"

namespace luring::bench {

struct Workload {
    int fd = -1;                    // write: /dev/null; read: the data file; ping-pong: end A
    int peer_fd = -1;               // ping-pong: end B
    unsigned batch = 32;            // operations per submit (nop, write, read's depth)
    std::uint32_t entries = 256;    // ring size
    std::uint32_t setup_flags = 0;  // IORING_SETUP_*, the same for every ring
    const std::uint64_t* offsets = nullptr;  // read: kOffsetCount block offsets
};

// Each returns 0 or -errno; an operation whose result is not the full transfer fails the
// run (-EIO for a short one), so a broken run cannot look fast.
using LoopFn = int (*)(const Workload&, const RunSpec&, Result&);

// One submit of `batch` NOPs, then every completion consumed.
int core_nop(const Workload& w, const RunSpec& spec, Result& out);
// `batch` 64-byte writes to w.fd per submit.
int core_write(const Workload& w, const RunSpec& spec, Result& out);
// `batch` 4 KiB reads at the next offsets per submit.
int core_read(const Workload& w, const RunSpec& spec, Result& out);
// One round trip: send A + recv B in one submit, then send B (the bytes received) + recv A.
int core_pingpong(const Workload& w, const RunSpec& spec, Result& out);

int liburing_nop(const Workload& w, const RunSpec& spec, Result& out);
int liburing_write(const Workload& w, const RunSpec& spec, Result& out);
int liburing_read(const Workload& w, const RunSpec& spec, Result& out);
int liburing_pingpong(const Workload& w, const RunSpec& spec, Result& out);

// write(2), pread(2), and send(2)/recv(2): one system call per operation.
int syscall_write(const Workload& w, const RunSpec& spec, Result& out);
int syscall_read(const Workload& w, const RunSpec& spec, Result& out);
int syscall_pingpong(const Workload& w, const RunSpec& spec, Result& out);

}  // namespace luring::bench
