// SPDX-License-Identifier: Apache-2.0
// One io_uring instance: setup, mapping, submit, wait, reap, teardown.
#pragma once

#include <pthread.h>

#include <atomic>
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
    ~Ring() { close(); }  // mappings first, then the fd, and that only if it is ours

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
    // Unmaps the rings, then closes the fd only if owns_fd() says it is still this ring:
    // a number closed behind our back and reused belongs to somebody else.
    void close() noexcept { close(owns_fd()); }

    // close() with owns_fd()'s answer given: `close_fd` false unmaps everything but
    // leaves the number alone. For a caller that asked owns_fd() before other work on
    // the ring (a drain), or that must not ask it (a process forked after init).
    void close(bool close_fd) noexcept;

    // True if fd() is still this ring's descriptor. It may not be: code that does not
    // own it can close the number (a close-all loop, a double close elsewhere), and the
    // next open, socket or io_uring_setup gets the same number. Closing it then would
    // close somebody else's file, and entering it would drive somebody else's ring.
    // The ring itself survives that close: our mappings hold its file.
    // How: is_io_uring() first (anything else is not ours; a readable regular file must
    // never be mapped, its pages past the end raise SIGBUS), then a second, read-only
    // mapping of the fd's SQE array, compared with ours by writing two markers into the
    // user_data of an SQE slot in its first 4 KiB (the only part sure to be there if the
    // fd is another, smaller ring) and reading each back through the new view; the word
    // is restored. Inode numbers cannot tell rings apart (old kernels
    // give every ring the one shared anonymous inode); memory we write can.
    // The slot must be one the kernel is not reading. Without SQPOLL that is any slot:
    // the kernel reads SQEs only inside our own io_uring_enter. Under SQPOLL the poller
    // may read a published, unconsumed SQE at any moment, so such slots are skipped; if
    // all of the first 4 KiB are, nothing is written and the two views are compared
    // instead (ours always matches; another ring would need the very same SQEs).
    // Not in a process forked after init: the SQE array is shared with the parent,
    // which may be filling that very slot; there, use close(true) or close(false).
    // False for a closed ring. No allocation; four system calls.
    bool owns_fd() const noexcept;

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

    // Whether each submit moves the batch's receives after its other requests
    // (SubmissionQueue::order_receives_last).
    void set_receives_last(bool on) noexcept { sq_.set_receives_last(on); }
    bool receives_last() const noexcept { return sq_.receives_last(); }

    // Mirrors io_uring_submit(): returns the number of SQEs the kernel consumed (may be
    // fewer than queued; the rest stay queued) or -errno (-EAGAIN, -EBUSY: reap and
    // retry; the SQEs stay queued). Under SQPOLL, the number this call published: the
    // kernel does not count there, and `tail - khead` (what liburing returns, "may report
    // a higher number", man io_uring_submit.3) also counts SQEs published by earlier calls
    // that the poller has not consumed yet (it may post their CQEs before it moves khead).
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

    // ---- the registered ring fd ----

    // Mirrors io_uring_register_ring_fd() (IORING_REGISTER_RING_FDS, 5.18): the calling
    // thread's io_uring context takes a reference on the ring in one of its 16 slots, and
    // this thread's enters then name the slot (IORING_ENTER_REGISTERED_RING) instead of
    // the fd, which skips the kernel's fd lookup on each one. The slot is the
    // registering thread's alone: enters from another thread, or in a child after
    // fork() (whose slots are empty or hold its own rings), use the fd as before.
    // Returns 0 (0 too when this thread registered it already) or -errno: -EINVAL
    // before 5.18, -EBUSY when the thread's 16 slots are taken, -EEXIST when another
    // thread (or process) holds the registration.
    int register_fd() noexcept;

    // Mirrors io_uring_unregister_ring_fd(): frees the slot. 0, or -EINVAL when this
    // thread of this process has no registration of the ring. close() calls it; a ring
    // closed by another thread stays referenced by the registering thread's slot until
    // that thread exits (the kernel drops its slots then).
    int unregister_fd() noexcept;

    // The registered slot this thread's enters take, or -1 (none, or not this thread's).
    int registered_slot() const noexcept {
        const bool here = reg_index_ >= 0 && reg_fork_ == fork_count() &&
                          pthread_equal(reg_thread_, pthread_self()) != 0;
        return here ? reg_index_ : -1;
    }

private:
    // How many times this process forked (bumped in the child by a pthread_atfork
    // handler that register_fd installs): a registration from an earlier count is the
    // parent's.
    static std::uint32_t fork_count() noexcept {
        return fork_count_.load(std::memory_order_relaxed);
    }
    static std::atomic<std::uint32_t> fork_count_;

    // The fd or registered slot to enter with, and the flag that says which.
    int enter_target(std::uint32_t& flags) const noexcept {
        const int slot = registered_slot();
        if (slot < 0) return fd_.get();
        flags |= enter::registered_ring;
        return slot;
    }

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
    int reg_index_ = -1;             // the registered slot, -1: none
    pthread_t reg_thread_{};         // the thread whose slot it is
    std::uint32_t reg_fork_ = 0;     // fork_count() when it was registered
};

// The hot path is inline: submitting and reaping are a few loads and stores plus, at
// most, one system call.

// The one place that decides whether io_uring_enter is needed and with which flags
// (liburing queue.c __io_uring_submit, sq_ring_needs_enter, cq_ring_needs_flush).
inline int Ring::enter(std::uint32_t wait_nr, std::uint32_t extra_flags, const void* arg,
                       std::size_t argsz) noexcept {
    if (!is_open()) return -EBADF;
    const bool sqpoll = (params_.flags & setup::sqpoll) != 0;
    // Under SQPOLL, what this call publishes: ktail before and after the flush. Relaxed:
    // ktail is our own store; the kernel only reads it.
    const std::uint32_t* ktail = sq_ring_.at<const std::uint32_t>(params_.sq_off.tail);
    const std::uint32_t old_tail = sqpoll ? atomics::load_relaxed(ktail) : 0;
    const std::uint32_t to_submit = sq_.flush();
    std::uint32_t flags = extra_flags;
    // Waiting needs GETEVENTS; so does a CQ overflow backlog or pending task work, which
    // only an enter moves into the CQ; IOPOLL rings reap only inside enter.
    if (wait_nr > 0 || (sq_.flags() & (sq_flag::cq_overflow | sq_flag::taskrun)) != 0 ||
        (params_.flags & setup::iopoll) != 0) {
        flags |= enter::getevents;
    }
    std::uint32_t published = 0;
    if (sqpoll) {
        published = atomics::load_relaxed(ktail) - old_tail;
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
            return static_cast<int>(published);
        }
    } else if (to_submit == 0 && (flags & enter::getevents) == 0) {
        return 0;
    }
    const int target = enter_target(flags);
    int ret = sys::io_uring_enter(target, to_submit, wait_nr, flags, arg, argsz);
    // Under SQPOLL the kernel does not count: report what this call published.
    if (ret >= 0 && sqpoll) return static_cast<int>(published);
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
