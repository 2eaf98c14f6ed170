// SPDX-License-Identifier: Apache-2.0
// io_uring_register(2) operations: opcode probe, registered files, synchronous cancel.
#pragma once

#include <array>
#include <cstdint>

#include "abi.hpp"
#include "ring.hpp"

namespace luring::uring {

// What IORING_REGISTER_PROBE said: the highest opcode the kernel knows and, for each
// opcode number, whether it is supported.
struct OpSupport {
    std::uint8_t last_op = 0;
    std::array<bool, 256> supported{};
};

// Mirrors io_uring_register_probe(). Available since 5.6; older kernels give -EINVAL.
// The kernel demands an all-zero buffer (io_probe's memchr_inv), which we provide.
int register_probe(const Ring& ring, OpSupport& out) noexcept;

// Mirrors io_uring_register_files(). Available since 5.1. -EBUSY if files are already
// registered, -EMFILE above RLIMIT_NOFILE.
int register_files(const Ring& ring, const int* fds, std::uint32_t count) noexcept;

// Mirrors io_uring_unregister_files(). -ENXIO when none are registered.
int unregister_files(const Ring& ring) noexcept;

// Mirrors io_uring_register_sync_cancel(). Available since 6.0: cancels matching
// requests and waits (up to reg.timeout; -1/-1 for no limit) until they have completed.
// Returns 0, -ENOENT (nothing matched), -ETIME, -EINVAL.
int register_sync_cancel(const Ring& ring, const SyncCancelReg& reg) noexcept;

}  // namespace luring::uring
