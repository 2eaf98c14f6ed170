// SPDX-License-Identifier: Apache-2.0
// One io_uring instance: setup, mapping, submit, wait, reap, teardown.
#pragma once

#include <cerrno>
#include <cstdint>

#include "abi.hpp"
#include "cq.hpp"
#include "mapping.hpp"
#include "sq.hpp"
#include "sys.hpp"
#include "unique_fd.hpp"

namespace luring::uring {

// user_data values at or above this are the core's own (the wait-timeout fallback);
// they are never handed out by copy_cqes.
inline constexpr std::uint64_t kReservedUserData = 0xffff'0000'0000'0000ULL;

// Setup flags Ring::init accepts. The rest change the SQE/CQE size or the way the rings
// are mapped, which this core does not implement; init refuses them with -EOPNOTSUPP.
inline constexpr std::uint32_t kSupportedSetupFlags =
    setup::iopoll | setup::sqpoll | setup::sq_aff | setup::cqsize | setup::clamp |
    setup::attach_wq | setup::r_disabled | setup::submit_all | setup::coop_taskrun |
    setup::taskrun_flag | setup::single_issuer | setup::defer_taskrun | setup::no_sqarray |
    setup::hybrid_iopoll;

class Ring {
public:
    Ring() noexcept = default;
    Ring(Ring&& other) noexcept;
    Ring& operator=(Ring&& other) noexcept;
    Ring(const Ring&) = delete;
    Ring& operator=(const Ring&) = delete;
    ~Ring() = default;  // members release in reverse order: mappings first, then the fd

    // Mirrors io_uring_queue_init_params(). Inputs are read from `p` (flags, cq_entries
    // with IORING_SETUP_CQSIZE, sq_thread_cpu/sq_thread_idle with SQPOLL, wq_fd with
    // ATTACH_WQ); on success `p` holds the kernel's answer (sizes, features, offsets).
    // Returns 0 or -errno: -EINVAL for 0 or too many entries or unknown flags, -ENOMEM,
    // -EPERM (io_uring disabled or seccomp), -ENOSYS (no io_uring), -EBUSY if already
    // open, -EOPNOTSUPP for flags this core does not implement (SQE128, CQE32, NO_MMAP,
    // REGISTERED_FD_ONLY). Available since 5.1; on failure nothing stays open or mapped.
    int init(std::uint32_t entries, Params& p) noexcept;

    // Mirrors io_uring_queue_exit(), but idempotent: the second call does nothing.
    // Does not wait for requests in flight; the kernel cancels them asynchronously.
    void close() noexcept;

    bool is_open() const noexcept { return fd_.valid(); }
    int fd() const noexcept { return fd_.get(); }
    const Params& params() const noexcept { return params_; }
    std::uint32_t features() const noexcept { return params_.features; }
    std::uint32_t setup_flags() const noexcept { return params_.flags; }

    // ---- submission ----

    // Mirrors io_uring_get_sqe(): a zeroed SQE, or nullptr when the SQ is full (or the
    // ring is closed). Fill it with a prep_* function and set user_data.
    Sqe* get_sqe() noexcept { return is_open() ? sq_.get_sqe() : nullptr; }

    // Mirrors io_uring_sq_space_left() / io_uring_sq_ready().
    std::uint32_t sq_space_left() const noexcept { return is_open() ? sq_.space_left() : 0; }
    std::uint32_t sq_ready() const noexcept { return is_open() ? sq_.ready() : 0; }
    std::uint32_t sq_entries() const noexcept { return sq_.entries(); }

    // Mirrors io_uring_submit(): returns the number of SQEs the kernel consumed (may be
    // fewer than queued; the rest stay queued) or -errno (-EAGAIN, -EBUSY: reap and
    // retry; the SQEs stay queued). Under SQPOLL, the number published.
    int submit() noexcept { return submit_and_wait(0); }

    // Mirrors io_uring_submit_and_wait(): submits, then blocks until at least `wait_nr`
    // CQEs are ready (ones already in the CQ count). -EINTR is returned, never retried.
    int submit_and_wait(std::uint32_t wait_nr) noexcept;

    // Mirrors io_uring_submit_and_wait_timeout() without the CQE pointer: submits, then
    // waits for `wait_nr` CQEs or until `timeout` (relative) elapses. Returns the
    // submitted count, or -ETIME on timeout with nothing submitted, or -EINTR. Uses
    // IORING_ENTER_EXT_ARG (5.11); on older kernels an internal timeout SQE.
    int wait_cqes(std::uint32_t wait_nr, const KernelTimespec& timeout) noexcept;

    // ---- completion ----

    // Mirrors io_uring_cq_ready().
    std::uint32_t cq_ready() const noexcept { return is_open() ? cq_.ready() : 0; }
    std::uint32_t cq_entries() const noexcept { return cq_.entries(); }

    // Copies up to `max` ready CQEs into `out` and advances the CQ head once. Does not
    // enter the kernel; see cq_needs_enter().
    std::uint32_t copy_cqes(Cqe* out, std::uint32_t max) noexcept;

    // True when completions may be waiting that only an enter with GETEVENTS makes
    // visible: a CQ overflow backlog (IORING_SQ_CQ_OVERFLOW), pending task work
    // (IORING_SQ_TASKRUN, set with IORING_SETUP_TASKRUN_FLAG), or an IOPOLL ring or a
    // DEFER_TASKRUN ring without TASKRUN_FLAG (which always need it).
    bool cq_needs_enter() const noexcept;

    // Mirrors io_uring_get_events(): enter(0, 0, GETEVENTS) to flush the overflow backlog
    // and run task work. Returns >= 0 or -errno.
    int get_events() noexcept;

    // The kernel's count of CQEs it had to drop (see CompletionQueue::overflow).
    std::uint32_t cq_dropped() const noexcept { return is_open() ? cq_.overflow() : 0; }
    std::uint32_t sq_dropped() const noexcept { return is_open() ? sq_.dropped() : 0; }
    std::uint32_t sq_flags() const noexcept { return is_open() ? sq_.flags() : 0; }

    // Mirrors io_uring_enable_rings() for rings set up with IORING_SETUP_R_DISABLED.
    int enable() noexcept;

private:
    int map_rings(const Params& p) noexcept;
    int enter(std::uint32_t wait_nr, std::uint32_t extra_flags, const void* arg,
              std::size_t argsz) noexcept;
    int wait_cqes_fallback(std::uint32_t wait_nr, const KernelTimespec& timeout) noexcept;

    UniqueFd fd_;  // declared first, so it is closed after every mapping is gone
    Mapping sq_ring_;
    Mapping cq_ring_;  // unused with FEAT_SINGLE_MMAP
    Mapping sqes_;
    SubmissionQueue sq_;
    CompletionQueue cq_;
    Params params_{};
    std::uint64_t timeout_seq_ = 0;  // for the wait fallback's reserved user_data
    KernelTimespec fallback_ts_{};   // the wait fallback's timer, read by the kernel
};

// The hot path is inline: submitting and reaping are a few loads and stores plus, at
// most, one system call.

// The one place that decides whether io_uring_enter is needed and with which flags
// (liburing queue.c __io_uring_submit, sq_ring_needs_enter, cq_ring_needs_flush).
inline int Ring::enter(std::uint32_t wait_nr, std::uint32_t extra_flags, const void* arg,
                       std::size_t argsz) noexcept {
    if (!is_open()) return -EBADF;
    const std::uint32_t to_submit = sq_.flush();
    std::uint32_t flags = extra_flags;
    // Waiting needs GETEVENTS; so does a CQ overflow backlog or pending task work, which
    // only an enter moves into the CQ; IOPOLL rings reap only inside enter.
    if (wait_nr > 0 || (sq_.flags() & (sq_flag::cq_overflow | sq_flag::taskrun)) != 0 ||
        (params_.flags & setup::iopoll) != 0) {
        flags |= enter::getevents;
    }
    if ((params_.flags & setup::sqpoll) != 0) {
        // Wake a sleeping poller only when there is something for it to do, as
        // liburing's sq_ring_needs_enter: an event loop that submits every tick with
        // nothing queued must not keep waking a kernel thread. Nothing is lost: the
        // poller re-reads the tail after setting NEED_WAKEUP and before it sleeps, so
        // SQEs published earlier were either seen by it or woke it then.
        if (to_submit != 0) {
            // Full fence between flush()'s tail store and the NEED_WAKEUP load (kernel
            // io_uring.c header comment; liburing queue.c:31; tokio squeue.rs need_wakeup).
            atomics::fence_seq_cst();
            if ((sq_.flags() & sq_flag::need_wakeup) != 0) flags |= enter::sq_wakeup;
        }
        // The poller is awake and will see the tail: no syscall needed.
        if ((flags & (enter::getevents | enter::sq_wakeup)) == 0) {
            return static_cast<int>(to_submit);
        }
    } else if (to_submit == 0 && (flags & enter::getevents) == 0) {
        return 0;
    }
    int ret = sys::io_uring_enter(fd_.get(), to_submit, wait_nr, flags, arg, argsz);
    // Under SQPOLL the kernel does not count: report what we published.
    if (ret >= 0 && (params_.flags & setup::sqpoll) != 0) return static_cast<int>(to_submit);
    return ret;
}

inline int Ring::submit_and_wait(std::uint32_t wait_nr) noexcept {
    return enter(wait_nr, 0, nullptr, 0);
}

inline std::uint32_t Ring::copy_cqes(Cqe* out, std::uint32_t max) noexcept {
    if (!is_open()) return 0;
    for (;;) {
        std::uint32_t n = cq_.copy(out, max);
        if (timeout_seq_ == 0) return n;  // the wait fallback never ran: nothing to drop
        std::uint32_t kept = 0;
        for (std::uint32_t i = 0; i < n; ++i) {
            if (out[i].user_data < kReservedUserData) out[kept++] = out[i];
        }
        if (kept != 0 || n == 0) return kept;
    }
}

}  // namespace luring::uring
