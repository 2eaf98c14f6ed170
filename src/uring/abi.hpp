// SPDX-License-Identifier: Apache-2.0
// The io_uring kernel ABI, spelled out here instead of taken from <linux/io_uring.h>.
//
// Why our own copy: the build host's uapi header is often older than the running
// kernel (Debian 12 ships 6.1 headers; kernels up to 6.18 run on it). Features are
// detected at run time from the kernel's answers, so the constants must exist at
// build time whatever the header says. Values follow include/uapi/linux/io_uring.h
// of Linux 6.18; tests/unit/abi_test.cpp checks every one the host header also has.
#pragma once

#include <cstddef>
#include <cstdint>

namespace luring::uring {

// ---- Structures shared with the kernel ----------------------------------------------

// struct io_uring_sqe. Only the fields we fill are named; unions keep the kernel's names
// for the words several opcodes share.
struct Sqe {
    std::uint8_t opcode;
    std::uint8_t flags;  // IOSQE_*
    std::uint16_t ioprio;
    std::int32_t fd;
    union {
        std::uint64_t off;
        std::uint64_t addr2;
    };
    union {
        std::uint64_t addr;
        std::uint64_t splice_off_in;
    };
    std::uint32_t len;
    union {  // the per-opcode flags word
        std::uint32_t rw_flags;
        std::uint32_t fsync_flags;
        std::uint32_t poll32_events;
        std::uint32_t msg_flags;
        std::uint32_t timeout_flags;
        std::uint32_t accept_flags;
        std::uint32_t cancel_flags;
        std::uint32_t open_flags;
        std::uint32_t statx_flags;
        std::uint32_t splice_flags;
        std::uint32_t rename_flags;
        std::uint32_t unlink_flags;
        std::uint32_t hardlink_flags;
        std::uint32_t op_flags;
    };
    std::uint64_t user_data;
    union {
        std::uint16_t buf_index;
        std::uint16_t buf_group;
    };
    std::uint16_t personality;
    union {
        std::int32_t splice_fd_in;
        std::uint32_t file_index;
        // The kernel's struct { __u16 addr_len; __u16 __pad3[1]; }: a union member starts
        // at the union's first byte, so the plain u16 lands on the same two bytes (and
        // avoids an anonymous struct, which ISO C++ does not have).
        std::uint16_t addr_len;
    };
    std::uint64_t addr3;
    std::uint64_t pad2;
};

// struct io_uring_cqe (without the CQE32 extension, which we never ask for).
struct Cqe {
    std::uint64_t user_data;
    std::int32_t res;
    std::uint32_t flags;  // IORING_CQE_F_*
};

struct SqringOffsets {
    std::uint32_t head, tail, ring_mask, ring_entries, flags, dropped, array, resv1;
    std::uint64_t user_addr;
};

struct CqringOffsets {
    std::uint32_t head, tail, ring_mask, ring_entries, overflow, cqes, flags, resv1;
    std::uint64_t user_addr;
};

// struct io_uring_params: inputs (flags, sq_thread_*, cq_entries, wq_fd) and outputs.
struct Params {
    std::uint32_t sq_entries;
    std::uint32_t cq_entries;
    std::uint32_t flags;
    std::uint32_t sq_thread_cpu;
    std::uint32_t sq_thread_idle;
    std::uint32_t features;
    std::uint32_t wq_fd;
    std::uint32_t resv[3];
    SqringOffsets sq_off;
    CqringOffsets cq_off;
};

struct KernelTimespec {
    std::int64_t tv_sec;
    std::int64_t tv_nsec;
};

// struct io_uring_getevents_arg, passed with IORING_ENTER_EXT_ARG (5.11).
struct GeteventsArg {
    std::uint64_t sigmask;
    std::uint32_t sigmask_sz;
    std::uint32_t min_wait_usec;  // 6.12; "pad" before, must then be 0
    std::uint64_t ts;
};

struct ProbeOp {
    std::uint8_t op;
    std::uint8_t resv;
    std::uint16_t flags;  // IO_URING_OP_SUPPORTED
    std::uint32_t resv2;
};

// struct io_uring_probe is followed by ops[]; we keep room for all 256 opcode numbers.
struct ProbeHeader {
    std::uint8_t last_op;
    std::uint8_t ops_len;
    std::uint16_t resv;
    std::uint32_t resv2[3];
};

// struct io_uring_sync_cancel_reg (IORING_REGISTER_SYNC_CANCEL, 6.0).
struct SyncCancelReg {
    std::uint64_t addr;
    std::int32_t fd;
    std::uint32_t flags;
    KernelTimespec timeout;
    std::uint8_t opcode;
    std::uint8_t pad[7];
    std::uint64_t pad2[3];
};

// struct io_uring_buf: one entry of a provided-buffer ring (IORING_REGISTER_PBUF_RING,
// 5.19). The ring is an array of these in page-aligned memory of the caller's, a power
// of two entries long. Its tail has no field of its own: struct io_uring_buf_ring
// overlays the u16 tail on bufs[0].resv (byte 14), so the tail is ring[0].resv. We write
// addr/len/bid of the entries from the tail on, then store the new tail; the kernel
// owns the head and never writes the ring (except with pbuf_ring_flag::inc).
struct Buf {
    std::uint64_t addr;
    std::uint32_t len;
    std::uint16_t bid;   // comes back in the CQE: flags >> kCqeBufferShift
    std::uint16_t resv;  // in bufs[0]: the ring's tail
};

// struct io_uring_buf_reg, the argument of IORING_(UN)REGISTER_PBUF_RING (6.18 layout;
// later kernels name a u32 min_left in the first reserved word).
struct BufReg {
    std::uint64_t ring_addr;
    std::uint32_t ring_entries;
    std::uint16_t bgid;
    std::uint16_t flags;  // pbuf_ring_flag::*
    std::uint64_t resv[3];
};

static_assert(sizeof(Sqe) == 64 && offsetof(Sqe, user_data) == 32 && offsetof(Sqe, addr3) == 48);
static_assert(offsetof(Sqe, addr_len) == 44 && offsetof(Sqe, buf_group) == 40);
static_assert(sizeof(Cqe) == 16);
static_assert(sizeof(SqringOffsets) == 40 && sizeof(CqringOffsets) == 40);
static_assert(sizeof(Params) == 120);
static_assert(sizeof(GeteventsArg) == 24);
static_assert(sizeof(ProbeOp) == 8 && sizeof(ProbeHeader) == 16);
static_assert(sizeof(SyncCancelReg) == 64);
static_assert(sizeof(Buf) == 16 && offsetof(Buf, resv) == 14);  // the tail's place
static_assert(sizeof(BufReg) == 40);

// ---- mmap offsets ---------------------------------------------------------------------

inline constexpr std::uint64_t kOffSqRing = 0;
inline constexpr std::uint64_t kOffCqRing = 0x8000000;
inline constexpr std::uint64_t kOffSqes = 0x10000000;

// ---- io_uring_setup flags (IORING_SETUP_*) -------------------------------------------

namespace setup {
inline constexpr std::uint32_t iopoll = 1U << 0;
inline constexpr std::uint32_t sqpoll = 1U << 1;
inline constexpr std::uint32_t sq_aff = 1U << 2;
inline constexpr std::uint32_t cqsize = 1U << 3;
inline constexpr std::uint32_t clamp = 1U << 4;
inline constexpr std::uint32_t attach_wq = 1U << 5;
inline constexpr std::uint32_t r_disabled = 1U << 6;
inline constexpr std::uint32_t submit_all = 1U << 7;
inline constexpr std::uint32_t coop_taskrun = 1U << 8;
inline constexpr std::uint32_t taskrun_flag = 1U << 9;
inline constexpr std::uint32_t sqe128 = 1U << 10;
inline constexpr std::uint32_t cqe32 = 1U << 11;
inline constexpr std::uint32_t single_issuer = 1U << 12;
inline constexpr std::uint32_t defer_taskrun = 1U << 13;
inline constexpr std::uint32_t no_mmap = 1U << 14;
inline constexpr std::uint32_t registered_fd_only = 1U << 15;
inline constexpr std::uint32_t no_sqarray = 1U << 16;
inline constexpr std::uint32_t hybrid_iopoll = 1U << 17;
inline constexpr std::uint32_t cqe_mixed = 1U << 18;
}  // namespace setup

// ---- Feature bits returned in Params::features (IORING_FEAT_*) -------------------------

namespace feat {
inline constexpr std::uint32_t single_mmap = 1U << 0;
inline constexpr std::uint32_t nodrop = 1U << 1;
inline constexpr std::uint32_t submit_stable = 1U << 2;
inline constexpr std::uint32_t rw_cur_pos = 1U << 3;
inline constexpr std::uint32_t cur_personality = 1U << 4;
inline constexpr std::uint32_t fast_poll = 1U << 5;
inline constexpr std::uint32_t poll_32bits = 1U << 6;
inline constexpr std::uint32_t sqpoll_nonfixed = 1U << 7;
inline constexpr std::uint32_t ext_arg = 1U << 8;
inline constexpr std::uint32_t native_workers = 1U << 9;
inline constexpr std::uint32_t rsrc_tags = 1U << 10;
inline constexpr std::uint32_t cqe_skip = 1U << 11;
inline constexpr std::uint32_t linked_file = 1U << 12;
inline constexpr std::uint32_t reg_reg_ring = 1U << 13;
inline constexpr std::uint32_t recvsend_bundle = 1U << 14;
inline constexpr std::uint32_t min_timeout = 1U << 15;
inline constexpr std::uint32_t rw_attr = 1U << 16;
inline constexpr std::uint32_t no_iowait = 1U << 17;
}  // namespace feat

// ---- io_uring_enter flags (IORING_ENTER_*) ---------------------------------------------

namespace enter {
inline constexpr std::uint32_t getevents = 1U << 0;
inline constexpr std::uint32_t sq_wakeup = 1U << 1;
inline constexpr std::uint32_t sq_wait = 1U << 2;
inline constexpr std::uint32_t ext_arg = 1U << 3;
inline constexpr std::uint32_t registered_ring = 1U << 4;
}  // namespace enter

// ---- sq_flags words written by the kernel (IORING_SQ_*) --------------------------------

namespace sq_flag {
inline constexpr std::uint32_t need_wakeup = 1U << 0;
inline constexpr std::uint32_t cq_overflow = 1U << 1;
inline constexpr std::uint32_t taskrun = 1U << 2;
}  // namespace sq_flag

// ---- Per-SQE flags (IOSQE_*) -------------------------------------------------------------

namespace sqe_flag {
inline constexpr std::uint8_t fixed_file = 1U << 0;
inline constexpr std::uint8_t io_drain = 1U << 1;
inline constexpr std::uint8_t io_link = 1U << 2;
inline constexpr std::uint8_t io_hardlink = 1U << 3;
inline constexpr std::uint8_t async = 1U << 4;
inline constexpr std::uint8_t buffer_select = 1U << 5;
inline constexpr std::uint8_t cqe_skip_success = 1U << 6;
}  // namespace sqe_flag

// ---- CQE flags (IORING_CQE_F_*) ---------------------------------------------------------

namespace cqe_flag {
inline constexpr std::uint32_t buffer = 1U << 0;
inline constexpr std::uint32_t more = 1U << 1;
inline constexpr std::uint32_t sock_nonempty = 1U << 2;
inline constexpr std::uint32_t notif = 1U << 3;
inline constexpr std::uint32_t buf_more = 1U << 4;
}  // namespace cqe_flag

// With cqe_flag::buffer set, the upper 16 bits of the CQE flags are the buffer id.
inline constexpr unsigned kCqeBufferShift = 16;  // IORING_CQE_BUFFER_SHIFT

// ---- Per-opcode flag words -------------------------------------------------------------

namespace timeout_flag {  // IORING_TIMEOUT_*
inline constexpr std::uint32_t abs = 1U << 0;
inline constexpr std::uint32_t update = 1U << 1;
inline constexpr std::uint32_t boottime = 1U << 2;
inline constexpr std::uint32_t realtime = 1U << 3;
inline constexpr std::uint32_t link_timeout_update = 1U << 4;
inline constexpr std::uint32_t etime_success = 1U << 5;
inline constexpr std::uint32_t multishot = 1U << 6;
}  // namespace timeout_flag

namespace cancel_flag {  // IORING_ASYNC_CANCEL_*
inline constexpr std::uint32_t all = 1U << 0;
inline constexpr std::uint32_t fd = 1U << 1;
inline constexpr std::uint32_t any = 1U << 2;
inline constexpr std::uint32_t fd_fixed = 1U << 3;
inline constexpr std::uint32_t userdata = 1U << 4;
inline constexpr std::uint32_t op = 1U << 5;
}  // namespace cancel_flag

// IORING_POLL_*, in the len word of POLL_ADD / POLL_REMOVE (poll32_events is taken).
namespace poll_flag {
inline constexpr std::uint32_t add_multi = 1U << 0;         // 5.13: F_MORE until removed
inline constexpr std::uint32_t update_events = 1U << 1;     // 5.13
inline constexpr std::uint32_t update_user_data = 1U << 2;  // 5.13
inline constexpr std::uint32_t add_level = 1U << 3;         // 6.0: level-triggered
}  // namespace poll_flag

// IORING_ACCEPT_*, in the ioprio word of ACCEPT (accept_flags holds accept4's SOCK_*).
namespace accept_flag {
inline constexpr std::uint16_t multishot = 1U << 0;   // 5.19
inline constexpr std::uint16_t dontwait = 1U << 1;    // 6.10
inline constexpr std::uint16_t poll_first = 1U << 2;  // 6.10
}  // namespace accept_flag

// IORING_RECVSEND_* and friends, in the ioprio word of SEND/RECV/SENDMSG/RECVMSG/SEND_ZC.
namespace recvsend_flag {
inline constexpr std::uint16_t poll_first = 1U << 0;            // 5.19
inline constexpr std::uint16_t recv_multishot = 1U << 1;        // 6.0, with buffer select
inline constexpr std::uint16_t fixed_buf = 1U << 2;             // 6.0, SEND_ZC only
inline constexpr std::uint16_t send_zc_report_usage = 1U << 3;  // 6.2
inline constexpr std::uint16_t bundle = 1U << 4;                // 6.10
}  // namespace recvsend_flag

// The res of a SEND_ZC notification CQE with send_zc_report_usage: the data was copied.
inline constexpr std::uint32_t kNotifUsageZcCopied = 1U << 31;  // IORING_NOTIF_USAGE_ZC_COPIED

// enum io_uring_register_pbuf_ring_flags, in BufReg::flags.
namespace pbuf_ring_flag {
inline constexpr std::uint16_t mmap = 1;  // 6.4: the kernel allocates the ring
inline constexpr std::uint16_t inc = 2;   // 6.12: incremental consumption
}  // namespace pbuf_ring_flag

inline constexpr std::uint32_t kFsyncDatasync = 1U << 0;  // IORING_FSYNC_DATASYNC
inline constexpr std::uint16_t kOpSupported = 1U << 0;    // IO_URING_OP_SUPPORTED

// ---- Opcodes (enum io_uring_op), numbered explicitly so the probe can name ops that the
// build host's header does not know. ---------------------------------------------------

enum class Op : std::uint8_t {
    nop = 0,
    readv = 1,
    writev = 2,
    fsync = 3,
    read_fixed = 4,
    write_fixed = 5,
    poll_add = 6,
    poll_remove = 7,
    sync_file_range = 8,
    sendmsg = 9,
    recvmsg = 10,
    timeout = 11,
    timeout_remove = 12,
    accept = 13,
    async_cancel = 14,
    link_timeout = 15,
    connect = 16,
    fallocate = 17,
    openat = 18,
    close = 19,
    files_update = 20,
    statx = 21,
    read = 22,
    write = 23,
    fadvise = 24,
    madvise = 25,
    send = 26,
    recv = 27,
    openat2 = 28,
    epoll_ctl = 29,
    splice = 30,
    provide_buffers = 31,
    remove_buffers = 32,
    tee = 33,
    shutdown = 34,
    renameat = 35,
    unlinkat = 36,
    mkdirat = 37,
    symlinkat = 38,
    linkat = 39,
    msg_ring = 40,
    fsetxattr = 41,
    setxattr = 42,
    fgetxattr = 43,
    getxattr = 44,
    socket = 45,
    uring_cmd = 46,
    send_zc = 47,
    sendmsg_zc = 48,
    read_multishot = 49,
    waitid = 50,
    futex_wait = 51,
    futex_wake = 52,
    futex_waitv = 53,
    fixed_fd_install = 54,
    ftruncate = 55,
    bind = 56,
    listen = 57,
    recv_zc = 58,
    epoll_wait = 59,
    readv_fixed = 60,
    writev_fixed = 61,
    pipe = 62,
};

// ---- io_uring_register opcodes (IORING_REGISTER_*) --------------------------------------

namespace reg {
inline constexpr std::uint32_t buffers = 0;
inline constexpr std::uint32_t unregister_buffers = 1;
inline constexpr std::uint32_t files = 2;
inline constexpr std::uint32_t unregister_files = 3;
inline constexpr std::uint32_t eventfd = 4;
inline constexpr std::uint32_t unregister_eventfd = 5;
inline constexpr std::uint32_t files_update = 6;
inline constexpr std::uint32_t probe = 8;
inline constexpr std::uint32_t enable_rings = 12;
inline constexpr std::uint32_t ring_fds = 20;
inline constexpr std::uint32_t unregister_ring_fds = 21;
inline constexpr std::uint32_t pbuf_ring = 22;
inline constexpr std::uint32_t unregister_pbuf_ring = 23;
inline constexpr std::uint32_t sync_cancel = 24;
inline constexpr std::uint32_t query = 35;
}  // namespace reg

}  // namespace luring::uring
