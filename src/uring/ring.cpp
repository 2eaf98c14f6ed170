// SPDX-License-Identifier: Apache-2.0
#include "ring.hpp"

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <new>
#include <utility>

#include "prep.hpp"
#include "query_abi.hpp"  // RsrcUpdate
#include "sys.hpp"

namespace luring::uring {

namespace {

// Known flags whose rings this core cannot drive: 128-byte SQEs, 32-byte CQEs, rings in
// user memory, and rings reachable only through a registered index.
constexpr std::uint32_t kUnimplementedSetupFlags =
    setup::sqe128 | setup::cqe32 | setup::no_mmap | setup::registered_fd_only | setup::cqe_mixed;

constexpr std::uint32_t kKnownSetupFlags = kSupportedSetupFlags | kUnimplementedSetupFlags;

// The kernel's sigset_t is 64 bits (_NSIG / 8), not glibc's 128-byte sigset_t.
constexpr std::uint32_t kKernelSigsetSize = 8;

// owns_fd() writes these one after the other and reads each back through the other
// view: another ring would have to change the same word the same way at that moment.
constexpr std::uint64_t kMarkerA = 0x6c75'7269'6e67'0001ULL;  // "luring" 0 1
constexpr std::uint64_t kMarkerB = ~kMarkerA;

// How much of the second view owns_fd() reads: the smallest page there is, which every
// ring's SQE array has.
constexpr std::size_t kTouchBytes = 4096;

// Forgets the number in `fd` without closing it. UniqueFd has no release(), so the
// number moves into an owner that is never destroyed: its lifetime ends with this frame
// and nothing is closed ([basic.life]/5 allows skipping a destructor).
void forget(UniqueFd& fd) noexcept {
    alignas(UniqueFd) unsigned char storage[sizeof(UniqueFd)];
    ::new (static_cast<void*>(storage)) UniqueFd(std::move(fd));
}

}  // namespace

Ring::Ring(Ring&& other) noexcept { *this = std::move(other); }

Ring& Ring::operator=(Ring&& other) noexcept {
    if (this != &other) {
        close();
        fd_ = std::move(other.fd_);
        sq_ring_ = std::move(other.sq_ring_);
        cq_ring_ = std::move(other.cq_ring_);
        sqes_ = std::move(other.sqes_);
        sq_ = std::exchange(other.sq_, SubmissionQueue{});
        cq_ = std::exchange(other.cq_, CompletionQueue{});
        params_ = std::exchange(other.params_, Params{});
        timeout_seq_ = std::exchange(other.timeout_seq_, 0);
        fallback_ts_ = other.fallback_ts_;
        reg_index_ = std::exchange(other.reg_index_, -1);
        reg_thread_ = other.reg_thread_;
        reg_fork_ = other.reg_fork_;
    }
    return *this;
}

int Ring::init(std::uint32_t entries, Params& p) noexcept {
    if (is_open()) return -EBUSY;
    if ((p.flags & ~kKnownSetupFlags) != 0) return -EINVAL;
    if ((p.flags & kUnimplementedSetupFlags) != 0) return -EOPNOTSUPP;

    Params answer = p;
    int fd = sys::io_uring_setup(entries, &answer);
    if (fd < 0) return fd;

    // Build into a temporary: on any failure its destructor unmaps and closes.
    Ring ring;
    ring.fd_.reset(fd);
    ring.params_ = answer;
    int ret = ring.map_rings(answer);
    if (ret < 0) return ret;

    *this = std::move(ring);
    p = answer;
    return 0;
}

// Sizes come from the offsets the kernel returned, never from what we asked for
// (man io_uring_setup.2; liburing setup.c io_uring_mmap).
int Ring::map_rings(const Params& p) noexcept {
    const bool index_array = (p.flags & setup::no_sqarray) == 0;
    const SqringOffsets& so = p.sq_off;
    // Without the index array, sq_off.array is 0 and "array + entries * 4" means nothing
    // (liburing #1448); map at least up to the last SQ field we touch.
    std::size_t sq_size = std::max({so.head, so.tail, so.ring_mask, so.ring_entries, so.flags,
                                    so.dropped}) + sizeof(std::uint32_t);
    if (index_array) {
        sq_size = std::max<std::size_t>(sq_size, so.array + p.sq_entries * sizeof(std::uint32_t));
    }
    std::size_t cq_size = p.cq_off.cqes + p.cq_entries * sizeof(Cqe);

    const bool single = (p.features & feat::single_mmap) != 0;
    if (single) {
        // One mapping serves both rings (5.4+).
        int ret = sq_ring_.map(fd_.get(), std::max(sq_size, cq_size), kOffSqRing);
        if (ret < 0) return ret;
    } else {
        int ret = sq_ring_.map(fd_.get(), sq_size, kOffSqRing);
        if (ret < 0) return ret;
        ret = cq_ring_.map(fd_.get(), cq_size, kOffCqRing);
        if (ret < 0) return ret;
    }
    int ret = sqes_.map(fd_.get(), p.sq_entries * sizeof(Sqe), kOffSqes);
    if (ret < 0) return ret;

    sq_.attach(sq_ring_.data(), p.sq_off, sqes_.at<Sqe>(0), index_array);
    cq_.attach(single ? sq_ring_.data() : cq_ring_.data(), p.cq_off);
    return 0;
}

void Ring::close(bool close_fd) noexcept {
    // The slot holds a reference on the ring: without this the ring would outlive us.
    if (reg_index_ >= 0) unregister_fd();
    reg_index_ = -1;
    sq_ = SubmissionQueue{};
    cq_ = CompletionQueue{};
    // Mappings before the fd (tokio lib.rs Drop; Zig deinit).
    sqes_.reset();
    cq_ring_.reset();
    sq_ring_.reset();
    if (close_fd) {
        fd_.reset();
    } else {
        forget(fd_);  // somebody else's number now; our ring went with its last mapping
    }
    params_ = Params{};
    timeout_seq_ = 0;
}

bool Ring::owns_fd() const noexcept {
    if (!is_open()) return false;
    // Only init's failure path closes before the SQE array is mapped, a moment after
    // the kernel made the fd: nobody else can know the number yet.
    if (!sqes_.mapped()) return true;
    const int fd = fd_.get();
    if (!sys::is_io_uring(fd)) return false;
    // Our size, which our ring always accepts. Another ring refuses a size that is not
    // its own (-EINVAL on 5.x; -EFAULT on 6.x if smaller), except that 6.x maps a larger
    // size with no memory past that ring's end (SIGBUS if read): so only the first 4 KiB
    // of the view are read, which every ring has.
    const std::size_t len = sqes_.size();
    const std::size_t touch = std::min(len, kTouchBytes);
    void* view = nullptr;
    if (sys::mmap_ring_readonly(&view, len, fd, kOffSqes) < 0) return false;

    // The kernel reads the SQEs of the indices it was given and has not consumed,
    // [khead, ktail), and without SQPOLL only inside an io_uring_enter of ours. Under
    // SQPOLL the poller may read them at any moment: mark slot 0 unless it is one of
    // them, else the first slot after them (the one of index ktail), if in the 4 KiB.
    // Acquire pairs with the kernel's release of khead once it has read those SQEs, as
    // in get_sqe; the range only shrinks while we look. ktail is our own store.
    const std::uint32_t head =
        atomics::load_acquire(sq_ring_.at<const std::uint32_t>(params_.sq_off.head));
    const std::uint32_t tail =
        atomics::load_relaxed(sq_ring_.at<const std::uint32_t>(params_.sq_off.tail));
    const std::uint32_t published = tail - head;
    const bool sqpoll = (params_.flags & setup::sqpoll) != 0;
    std::uint32_t slot = 0;
    if (sqpoll && ((0U - head) & sq_.mask()) < published) slot = tail & sq_.mask();
    bool same = false;
    if (sqpoll && (published >= sq_.entries() || slot >= touch / sizeof(Sqe))) {
        // No slot to write: compare the views (ours always matches; another ring would
        // need the same SQEs).
        same = std::memcmp(view, sqes_.data(), touch) == 0;
    } else {
        // Volatile: each store must reach memory before the load through the other view,
        // which the compiler cannot know is the same memory.
        volatile std::uint64_t* mine = &sqes_.at<Sqe>(0)[slot].user_data;
        const volatile std::uint64_t* seen = &static_cast<const Sqe*>(view)[slot].user_data;
        const std::uint64_t saved = *mine;
        *mine = kMarkerA;
        same = *seen == kMarkerA;
        *mine = kMarkerB;
        same = same && *seen == kMarkerB;
        *mine = saved;
    }
    sys::munmap(view, len);
    return same;
}

int Ring::wait_cqes(std::uint32_t wait_nr, const KernelTimespec& timeout) noexcept {
    if (!is_open()) return -EBADF;
    if ((params_.features & feat::ext_arg) == 0) return wait_cqes_fallback(wait_nr, timeout);
    GeteventsArg arg{};
    arg.sigmask = 0;
    arg.sigmask_sz = kKernelSigsetSize;
    arg.ts = reinterpret_cast<std::uintptr_t>(&timeout);
    return enter(wait_nr, enter::ext_arg | enter::getevents, &arg, sizeof(arg));
}

// Before 5.11 there is no timeout argument to enter: queue a pure timer SQE tagged with
// a reserved user_data, then wait one CQE at a time until enough real CQEs are ready or
// the timer's CQE shows up. (liburing's io_uring_wait_cqes_old also uses a timer SQE,
// with a count.) copy_cqes drops the reserved CQEs, including those of timers that fire
// after we returned.
int Ring::wait_cqes_fallback(std::uint32_t wait_nr, const KernelTimespec& timeout) noexcept {
    Sqe* sqe = get_sqe();
    if (sqe == nullptr) {
        int ret = submit();
        if (ret < 0) return ret;
        sqe = get_sqe();
        if (sqe == nullptr) return -EBUSY;
    }
    const std::uint64_t tag = kReservedUserData | (++timeout_seq_ & 0xffff'ffff'ffffULL);
    // Our own copy of the timespec: the kernel reads it when it prepares the SQE, which
    // under SQPOLL happens in the poller thread, possibly after we returned. (So a Ring
    // must not be moved while such a timer may still be unread: SQPOLL before 5.11.)
    fallback_ts_ = timeout;
    prep_timeout(*sqe, &fallback_ts_, 0, 0);
    sqe->user_data = tag;

    // Submit first, whatever is ready already: "submits, then waits" like the EXT_ARG
    // path, and the timer must not stay queued behind a wait that needs no waiting.
    // The timer must stay the last SQE queued (`others` below counts on it), so no
    // receive moves behind it in this flush.
    const bool reorder = sq_.receives_last();
    sq_.set_receives_last(false);
    int submitted = enter(0, 0, nullptr, 0);  // the timer included
    sq_.set_receives_last(reorder);
    if (submitted < 0) return submitted;
    std::uint32_t last_ready = 0;
    bool waited = false;
    for (;;) {
        const std::uint32_t ready = cq_.ready();
        std::uint32_t real = 0;
        bool fired = false;
        for (std::uint32_t i = 0; i < ready; ++i) {
            std::uint64_t ud = cq_.peek(i).user_data;
            if (ud < kReservedUserData) ++real;
            fired = fired || ud == tag;
        }
        // The timer is the last SQE queued: it went in once nothing is left queued.
        const int others = submitted - (sq_.ready() == 0 ? 1 : 0);
        if (real >= wait_nr) return others;
        if (fired) return others > 0 ? others : -ETIME;
        // An enter that brought no CQE was cut short by a signal (the kernel returns 0
        // rather than -EINTR when the CQ is not empty): let the caller see it.
        if (waited && ready == last_ready) return others > 0 ? others : -EINTR;
        // Each enter also submits whatever is still queued: a partial submit may have
        // left the timer behind.
        int ret = enter(ready + 1, 0, nullptr, 0);
        if (ret < 0) return others > 0 ? others : ret;
        submitted += ret;
        last_ready = ready;
        waited = true;
    }
}

bool Ring::cq_needs_enter() const noexcept {
    if (!is_open()) return false;
    const std::uint32_t f = params_.flags;
    // IOPOLL rings reap only inside enter. DEFER_TASKRUN rings run completion work only
    // inside enter, and only with TASKRUN_FLAG does the kernel say when some is pending
    // (io_req_local_work_add sets IORING_SQ_TASKRUN when the work list was empty).
    if ((f & setup::iopoll) != 0 ||
        ((f & setup::defer_taskrun) != 0 && (f & setup::taskrun_flag) == 0)) {
        return true;
    }
    return (sq_.flags() & (sq_flag::cq_overflow | sq_flag::taskrun)) != 0;
}

int Ring::get_events() noexcept {
    if (!is_open()) return -EBADF;
    std::uint32_t flags = enter::getevents;
    const int target = enter_target(flags);
    return sys::io_uring_enter(target, 0, 0, flags, nullptr, 0);
}

int Ring::enable() noexcept {
    if (!is_open()) return -EBADF;
    return sys::io_uring_register(fd_.get(), reg::enable_rings, nullptr, 0);
}

std::atomic<std::uint32_t> Ring::fork_count_{0};

namespace {
std::atomic<bool> g_atfork_installed{false};  // register_fd's pthread_atfork handler
}  // namespace

int Ring::register_fd() noexcept {
    if (!is_open()) return -EBADF;
    if (registered_slot() >= 0) return 0;
    // Another thread's (or, after fork, the parent's) slot: that thread's enters use it,
    // and a second slot here would leave two owners to unregister.
    if (reg_index_ >= 0) return -EEXIST;
    // Once per process: a child must not enter by the parent's slot numbers. (A flag,
    // not a function-local static: its guard would need libstdc++. Two threads racing
    // here install the handler twice, which only counts each fork twice.)
    if (!g_atfork_installed.load(std::memory_order_acquire)) {
        const int err = pthread_atfork(nullptr, nullptr, [] {
            fork_count_.fetch_add(1, std::memory_order_relaxed);
        });
        if (err != 0) return -err;
        g_atfork_installed.store(true, std::memory_order_release);
    }
    RsrcUpdate update{};
    update.offset = UINT32_MAX;  // -1U: the kernel picks a free slot
    update.data = static_cast<std::uint64_t>(fd_.get());
    const int ret = sys::io_uring_register(fd_.get(), reg::ring_fds, &update, 1);
    if (ret < 0) return ret;
    if (ret != 1) return -EIO;
    reg_index_ = static_cast<int>(update.offset);
    reg_thread_ = pthread_self();
    reg_fork_ = fork_count();
    return 0;
}

int Ring::unregister_fd() noexcept {
    if (registered_slot() < 0) return -EINVAL;
    RsrcUpdate update{};
    update.offset = static_cast<std::uint32_t>(reg_index_);
    // By the slot where the kernel takes it (6.3): the fd number may no longer be ours
    // (closed behind our back, see owns_fd), and then the slot would keep the ring alive.
    // The kernel frees the calling thread's slot either way; the fd only has to be a ring.
    int ret = -EINVAL;
    if ((params_.features & feat::reg_reg_ring) != 0) {
        ret = sys::io_uring_register(reg_index_, reg::unregister_ring_fds |
                                     kRegisterUseRegisteredRing, &update, 1);
    }
    if (ret < 0) ret = sys::io_uring_register(fd_.get(), reg::unregister_ring_fds, &update, 1);
    reg_index_ = -1;
    return ret < 0 ? ret : 0;
}

}  // namespace luring::uring
