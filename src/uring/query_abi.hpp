// SPDX-License-Identifier: Apache-2.0
// The few kernel ABI pieces only the probe needs, kept out of abi.hpp so the hot-path
// header stays small: IORING_REGISTER_QUERY (include/uapi/linux/io_uring/query.h of
// Linux 6.18) and what it takes to release a ring created with
// IORING_SETUP_REGISTERED_FD_ONLY.
#pragma once

#include <cstdint>

namespace luring::uring {

// struct io_uring_query_hdr. Passed to io_uring_register(-1, IORING_REGISTER_QUERY, &hdr, 0);
// the kernel follows next_entry as a chain and writes `result` (0 or -errno) and `size`
// (bytes of query_data it filled) back into each header. io_uring/query.c.
struct QueryHdr {
    std::uint64_t next_entry;  // user pointer to the next QueryHdr, or 0
    std::uint64_t query_data;  // user pointer to the op's answer struct
    std::uint32_t query_op;    // IO_URING_QUERY_*
    std::uint32_t size;        // in: room at query_data; out: bytes written
    std::int32_t result;       // must be 0 on input
    std::uint32_t resv[3];     // must be 0
};

// struct io_uring_query_opcode, the answer to IO_URING_QUERY_OPCODES. Needs no ring.
struct QueryOpcodes {
    std::uint32_t nr_request_opcodes;   // IORING_OP_LAST
    std::uint32_t nr_register_opcodes;  // IORING_REGISTER_LAST
    std::uint64_t feature_flags;        // every IORING_FEAT_* the kernel sets
    std::uint64_t ring_setup_flags;     // every IORING_SETUP_* it accepts
    std::uint64_t enter_flags;          // every IORING_ENTER_* it accepts
    std::uint64_t sqe_flags;            // every IOSQE_* it accepts
    std::uint32_t nr_query_opcodes;     // __IO_URING_QUERY_MAX
    std::uint32_t pad;
};

static_assert(sizeof(QueryHdr) == 40);
static_assert(sizeof(QueryOpcodes) == 48);

namespace query_op {
inline constexpr std::uint32_t opcodes = 0;  // IO_URING_QUERY_OPCODES (6.18)
}  // namespace query_op

// IORING_REGISTER_USE_REGISTERED_RING: or'ed into the register opcode, `fd` is then an
// index into the task's registered rings (6.3).
inline constexpr std::uint32_t kRegisterUseRegisteredRing = 1U << 31;

// struct io_uring_rsrc_update, the argument of IORING_UNREGISTER_RING_FDS.
struct RsrcUpdate {
    std::uint32_t offset;  // registered ring index
    std::uint32_t resv;
    std::uint64_t data;
};

static_assert(sizeof(RsrcUpdate) == 16);

}  // namespace luring::uring
