// SPDX-License-Identifier: Apache-2.0
#include "probe.hpp"

#include <grp.h>
#include <sched.h>
#include <sys/resource.h>
#include <sys/utsname.h>
#include <unistd.h>

#include <cerrno>
#include <cinttypes>
#include <cstdio>
#include <cstdlib>
#include <cstring>

#include "query_abi.hpp"
#include "ring.hpp"
#include "sys.hpp"
#include "unique_fd.hpp"

namespace luring::uring {

namespace {

// enum io_uring_op of include/uapi/linux/io_uring.h (Linux 6.18: IORING_OP_LAST = 63), with
// the release that added each one (man io_uring_enter.2, kernelnewbies, the merge logs).
// Checked against IORING_REGISTER_PROBE on 6.18 by tests/unit/probe_test.cpp.
constexpr OpInfo kOps[] = {
    {0, "nop", "5.1"},
    {1, "readv", "5.1"},
    {2, "writev", "5.1"},
    {3, "fsync", "5.1"},
    {4, "read_fixed", "5.1"},
    {5, "write_fixed", "5.1"},
    {6, "poll_add", "5.1"},
    {7, "poll_remove", "5.1"},
    {8, "sync_file_range", "5.2"},
    {9, "sendmsg", "5.3"},
    {10, "recvmsg", "5.3"},
    {11, "timeout", "5.4"},
    {12, "timeout_remove", "5.5"},
    {13, "accept", "5.5"},
    {14, "async_cancel", "5.5"},
    {15, "link_timeout", "5.5"},
    {16, "connect", "5.5"},
    {17, "fallocate", "5.6"},
    {18, "openat", "5.6"},
    {19, "close", "5.6"},
    {20, "files_update", "5.6"},
    {21, "statx", "5.6"},
    {22, "read", "5.6"},
    {23, "write", "5.6"},
    {24, "fadvise", "5.6"},
    {25, "madvise", "5.6"},
    {26, "send", "5.6"},
    {27, "recv", "5.6"},
    {28, "openat2", "5.6"},
    {29, "epoll_ctl", "5.6"},
    {30, "splice", "5.7"},
    {31, "provide_buffers", "5.7"},
    {32, "remove_buffers", "5.7"},
    {33, "tee", "5.8"},
    {34, "shutdown", "5.11"},
    {35, "renameat", "5.11"},
    {36, "unlinkat", "5.11"},
    {37, "mkdirat", "5.15"},
    {38, "symlinkat", "5.15"},
    {39, "linkat", "5.15"},
    {40, "msg_ring", "5.18"},
    {41, "fsetxattr", "5.19"},
    {42, "setxattr", "5.19"},
    {43, "fgetxattr", "5.19"},
    {44, "getxattr", "5.19"},
    {45, "socket", "5.19"},
    {46, "uring_cmd", "5.19"},
    {47, "send_zc", "6.0"},
    {48, "sendmsg_zc", "6.1"},
    {49, "read_multishot", "6.7"},
    {50, "waitid", "6.7"},
    {51, "futex_wait", "6.7"},
    {52, "futex_wake", "6.7"},
    {53, "futex_waitv", "6.7"},
    {54, "fixed_fd_install", "6.8"},
    {55, "ftruncate", "6.9"},
    {56, "bind", "6.11"},
    {57, "listen", "6.11"},
    {58, "recv_zc", "6.15"},
    {59, "epoll_wait", "6.15"},
    {60, "readv_fixed", "6.15"},
    {61, "writev_fixed", "6.15"},
    {62, "pipe", "6.16"},
};

// The table must agree with the Op enum of abi.hpp wherever both name an opcode.
static_assert(kOps[static_cast<unsigned>(Op::read)].code == 22);
static_assert(kOps[static_cast<unsigned>(Op::pipe)].code == static_cast<unsigned>(Op::pipe));
static_assert(sizeof(kOps) / sizeof(kOps[0]) == static_cast<unsigned>(Op::pipe) + 1);

// IORING_FEAT_*; 6.18 sets all 18 (0x3ffff).
constexpr FlagInfo kFeatures[] = {
    {feat::single_mmap, "single_mmap", "5.4"},
    {feat::nodrop, "nodrop", "5.5"},
    {feat::submit_stable, "submit_stable", "5.5"},
    {feat::rw_cur_pos, "rw_cur_pos", "5.6"},
    {feat::cur_personality, "cur_personality", "5.6"},
    {feat::fast_poll, "fast_poll", "5.7"},
    {feat::poll_32bits, "poll_32bits", "5.9"},
    {feat::sqpoll_nonfixed, "sqpoll_nonfixed", "5.11"},
    {feat::ext_arg, "ext_arg", "5.11"},
    {feat::native_workers, "native_workers", "5.12"},
    {feat::rsrc_tags, "rsrc_tags", "5.13"},
    {feat::cqe_skip, "cqe_skip", "5.17"},
    {feat::linked_file, "linked_file", "5.17"},
    {feat::reg_reg_ring, "reg_reg_ring", "6.3"},
    {feat::recvsend_bundle, "recvsend_bundle", "6.10"},
    {feat::min_timeout, "min_timeout", "6.12"},
    {feat::rw_attr, "rw_attr", "6.14"},
    {feat::no_iowait, "no_iowait", "6.15"},
};

// IORING_ENTER_*; abi.hpp names only the ones the core uses, the rest are spelled here.
constexpr FlagInfo kEnterFlags[] = {
    {enter::getevents, "getevents", "5.1"},
    {enter::sq_wakeup, "sq_wakeup", "5.1"},
    {enter::sq_wait, "sq_wait", "5.10"},
    {enter::ext_arg, "ext_arg", "5.11"},
    {enter::registered_ring, "registered_ring", "5.18"},
    {1U << 5, "abs_timer", "6.12"},
    {1U << 6, "ext_arg_reg", "6.13"},
    {1U << 7, "no_iowait", "6.15"},
};

constexpr FlagInfo kSqeFlags[] = {
    {sqe_flag::fixed_file, "fixed_file", "5.1"},
    {sqe_flag::io_drain, "io_drain", "5.2"},
    {sqe_flag::io_link, "io_link", "5.3"},
    {sqe_flag::io_hardlink, "io_hardlink", "5.5"},
    {sqe_flag::async, "async", "5.6"},
    {sqe_flag::buffer_select, "buffer_select", "5.7"},
    {sqe_flag::cqe_skip_success, "cqe_skip_success", "5.17"},
};

// IORING_SETUP_*, each with what io_uring_setup needs before it can say yes
// (io_uring/io_uring.c io_uring_sanitise_params, io_sq_offload_create).
constexpr SetupFlagInfo kSetupFlags[kSetupFlagCount] = {
    {setup::iopoll, "iopoll", "5.1", 0, 0, ""},
    {setup::sqpoll, "sqpoll", "5.1", 0, 0, ""},
    {setup::sq_aff, "sq_aff", "5.1", setup::sqpoll, need::sq_thread_cpu,
     "with sqpoll and sq_thread_cpu"},
    {setup::cqsize, "cqsize", "5.5", 0, need::cq_entries, "with cq_entries"},
    {setup::clamp, "clamp", "5.6", 0, 0, ""},
    {setup::attach_wq, "attach_wq", "5.6", 0, need::wq_fd, "with wq_fd of another ring"},
    {setup::r_disabled, "r_disabled", "5.10", 0, 0, ""},
    {setup::submit_all, "submit_all", "5.18", 0, 0, ""},
    {setup::coop_taskrun, "coop_taskrun", "5.19", 0, 0, ""},
    {setup::taskrun_flag, "taskrun_flag", "5.19", setup::coop_taskrun, 0, "with coop_taskrun"},
    {setup::sqe128, "sqe128", "5.19", 0, 0, ""},
    {setup::cqe32, "cqe32", "5.19", 0, 0, ""},
    {setup::single_issuer, "single_issuer", "6.0", 0, 0, ""},
    {setup::defer_taskrun, "defer_taskrun", "6.1", setup::single_issuer, 0, "with single_issuer"},
    {setup::no_mmap, "no_mmap", "6.5", 0, need::user_memory, "with ring memory from the caller"},
    {setup::registered_fd_only, "registered_fd_only", "6.5", setup::no_mmap, need::user_memory,
     "with no_mmap and ring memory from the caller"},
    {setup::no_sqarray, "no_sqarray", "6.6", 0, 0, ""},
    {setup::hybrid_iopoll, "hybrid_iopoll", "6.13", setup::iopoll, 0, "with iopoll"},
    {setup::cqe_mixed, "cqe_mixed", "6.18", 0, 0, ""},
};

struct ErrnoName {
    int value;
    const char* name;
};

constexpr ErrnoName kErrnoNames[] = {
    {EPERM, "EPERM"},           {ENOENT, "ENOENT"},       {EINTR, "EINTR"},
    {EBADF, "EBADF"},           {EAGAIN, "EAGAIN"},       {ENOMEM, "ENOMEM"},
    {EACCES, "EACCES"},         {EFAULT, "EFAULT"},       {EBUSY, "EBUSY"},
    {EEXIST, "EEXIST"},         {ENXIO, "ENXIO"},         {ENODEV, "ENODEV"},
    {EINVAL, "EINVAL"},         {ENFILE, "ENFILE"},       {EMFILE, "EMFILE"},
    {ERANGE, "ERANGE"},         {ENOSYS, "ENOSYS"},       {EBADFD, "EBADFD"},
    {EOPNOTSUPP, "EOPNOTSUPP"}, {EOVERFLOW, "EOVERFLOW"}, {ECANCELED, "ECANCELED"},
    {ETIME, "ETIME"},
};

char lower(char c) noexcept { return (c >= 'A' && c <= 'Z') ? static_cast<char>(c + 32) : c; }

bool iequals(std::string_view a, std::string_view b) noexcept {
    if (a.size() != b.size()) return false;
    for (std::size_t i = 0; i < a.size(); ++i) {
        if (lower(a[i]) != lower(b[i])) return false;
    }
    return true;
}

// No substr() here or below: it can throw std::out_of_range, which would make luring.so
// and luring-probe need libstdc++ (__throw_out_of_range_fmt) in unoptimized builds.
bool istarts_with(std::string_view s, std::string_view prefix) noexcept {
    return s.size() >= prefix.size() && iequals({s.data(), prefix.size()}, prefix);
}

// A decimal number 0..255 with nothing else around it, or -1.
int parse_small_number(std::string_view s) noexcept {
    if (s.empty() || s.size() > 3) return -1;
    int value = 0;
    for (char c : s) {
        if (c < '0' || c > '9') return -1;
        value = value * 10 + (c - '0');
    }
    return value <= 255 ? value : -1;
}

// ---- reading /proc without exceptions: stdio, so sys.cpp keeps the only close() ----

// The first integer in a one-line file such as /proc/sys/kernel/io_uring_disabled.
std::optional<long> read_long_file(const char* path) noexcept {
    std::FILE* f = std::fopen(path, "re");
    if (f == nullptr) return std::nullopt;
    long value = 0;
    const bool ok = std::fscanf(f, "%ld", &value) == 1;
    std::fclose(f);
    if (!ok) return std::nullopt;
    return value;
}

void read_status(HostFacts& h) noexcept {
    std::FILE* f = std::fopen("/proc/self/status", "re");
    if (f == nullptr) return;
    char line[256];
    while (std::fgets(line, sizeof line, f) != nullptr) {
        int value = 0;
        unsigned long long caps = 0;
        // "Seccomp:\t2" and "Seccomp_filters:\t1" (5.9+), proc_pid_status().
        if (std::sscanf(line, "Seccomp: %d", &value) == 1) {
            h.seccomp_mode = value;
        } else if (std::sscanf(line, "Seccomp_filters: %d", &value) == 1) {
            h.seccomp_filters = value;
        } else if (std::sscanf(line, "CapEff: %llx", &caps) == 1) {
            h.cap_sys_admin = ((caps >> 21) & 1U) != 0;  // CAP_SYS_ADMIN is capability 21
        }
    }
    std::fclose(f);
}

// Mirrors the kernel's in_group_p() for kernel.io_uring_group, as far as userspace sees.
bool in_group(long group) noexcept {
    if (group < 0) return false;  // -1: no group is allowed
    const auto gid = static_cast<gid_t>(group);
    if (getegid() == gid) return true;
    gid_t groups[256];
    const int n = getgroups(256, groups);
    for (int i = 0; i < n; ++i) {
        if (groups[i] == gid) return true;
    }
    return false;
}

// The lowest CPU this thread may run on: the one SQ_AFF is asked to pin its thread to.
int first_allowed_cpu() noexcept {
    cpu_set_t set;
    CPU_ZERO(&set);
    if (sched_getaffinity(0, sizeof set, &set) != 0) return -1;
    for (int cpu = 0; cpu < CPU_SETSIZE; ++cpu) {
        if (CPU_ISSET(cpu, &set)) return cpu;
    }
    return -1;
}

// Ring memory for NO_MMAP and REGISTERED_FD_ONLY: one page for the SQEs and one for the
// rings of a 2-entry ring (pages up to 64 KiB). Mapped on first use and never unmapped,
// one pair per flag, because the kernel tears a ring down asynchronously after close and
// may still touch the pages it pinned. (Not a static array: a 64 KiB-aligned .bss
// section keeps valgrind from reading the library's symbols.)
constexpr std::size_t kUserPage = 65536;
struct UserRingMemory {
    unsigned char sqes[kUserPage];
    unsigned char rings[kUserPage];
};
UserRingMemory* g_user_memory[2] = {nullptr, nullptr};

// The pair of pages a flag uses (mmap'd, so page-aligned and zeroed), or nullptr.
UserRingMemory* user_memory(std::uint32_t flag) noexcept {
    UserRingMemory*& mem = g_user_memory[flag == setup::registered_fd_only ? 1 : 0];
    if (mem == nullptr) {
        void* addr = nullptr;
        if (sys::mmap_anonymous(&addr, sizeof(UserRingMemory)) == 0) {
            mem = static_cast<UserRingMemory*>(addr);
        }
    }
    return mem;
}

// A ring created with REGISTERED_FD_ONLY has no fd, only an index into this task's
// registered rings; IORING_UNREGISTER_RING_FDS drops it (io_uring/tctx.c).
void release_registered_ring(int index) noexcept {
    RsrcUpdate update{};
    update.offset = static_cast<std::uint32_t>(index);
    sys::io_uring_register(index, reg::unregister_ring_fds | kRegisterUseRegisteredRing, &update,
                           1);
}

FlagStatus classify(int ret) noexcept {
    if (ret == 0) return FlagStatus::supported;
    if (ret == kSetupFlagNotTried) return FlagStatus::not_tried;
    if (ret == -EINVAL) return FlagStatus::unsupported;
    if (ret == -EPERM) return FlagStatus::needs_privilege;
    return FlagStatus::failed;
}

void find_max_entries(MaxEntriesReport& out) noexcept {
    for (std::uint32_t n = kMaxEntriesTried; n >= 1; n /= 2) {
        Params p{};
        UniqueFd fd(sys::io_uring_setup(n, &p));
        if (fd.valid()) {
            out.sq_entries = p.sq_entries;
            out.cq_entries = p.cq_entries;
            break;
        }
        if (out.first_error == 0) out.first_error = fd.get();
        // EINVAL: above the kernel's maximum; ENOMEM: memlock or memory. Anything else
        // would repeat for every size.
        if (fd.get() != -EINVAL && fd.get() != -ENOMEM) break;
    }
    // Far above any maximum, with CQSIZE so the CQ is clamped too (io_uring_create).
    Params p{};
    p.flags = setup::clamp | setup::cqsize;
    p.cq_entries = 1U << 30;
    UniqueFd fd(sys::io_uring_setup(kMaxEntriesTried * 32, &p));
    if (fd.valid()) {
        out.clamp_sq_entries = p.sq_entries;
        out.clamp_cq_entries = p.cq_entries;
    } else {
        out.clamp_error = fd.get();
    }
}

// The plain words, one set per cause. Reasons say what happened; fixes say what to do.
constexpr const char* kSeccompReason =
    "the io_uring system calls are blocked by a seccomp filter on this process, as the "
    "default profiles of container runtimes (Docker, Podman, containerd) and systemd's "
    "SystemCallFilter= do";
constexpr const char* kSeccompFix =
    "allow io_uring_setup, io_uring_enter and io_uring_register in the seccomp profile "
    "(Docker/Podman: --security-opt seccomp=<profile.json>; seccomp=unconfined to test)";
constexpr const char* kRestrictedReason =
    "kernel.io_uring_disabled = 1 allows io_uring only to processes with CAP_SYS_ADMIN or in "
    "the group kernel.io_uring_group, and this process is neither";
constexpr const char* kRestrictedFix =
    "run as a member of the group whose gid is in kernel.io_uring_group (set one first if it "
    "is -1), or as root: sysctl -w kernel.io_uring_disabled=0";

}  // namespace

// ---- name tables ----

std::span<const OpInfo> op_table() noexcept { return kOps; }

const OpInfo* find_op(unsigned code) noexcept {
    return code < std::size(kOps) ? &kOps[code] : nullptr;
}

OpLabel op_label(unsigned code) noexcept {
    OpLabel label{};
    if (const OpInfo* op = find_op(code)) {
        std::snprintf(label.text, sizeof label.text, "%s", op->name);
    } else {
        std::snprintf(label.text, sizeof label.text, "op_%u", code);
    }
    return label;
}

int parse_op(std::string_view text) noexcept {
    if (istarts_with(text, "IORING_OP_")) text.remove_prefix(10);
    int number = parse_small_number(text);
    if (number < 0 && istarts_with(text, "op_")) {
        number = parse_small_number({text.data() + 3, text.size() - 3});
    }
    if (number >= 0) return number;
    for (const OpInfo& op : kOps) {
        if (iequals(text, op.name)) return op.code;
    }
    return -EINVAL;
}

std::span<const FlagInfo> feature_table() noexcept { return kFeatures; }
std::span<const FlagInfo> enter_flag_table() noexcept { return kEnterFlags; }
std::span<const FlagInfo> sqe_flag_table() noexcept { return kSqeFlags; }

std::span<const SetupFlagInfo, kSetupFlagCount> setup_flag_table() noexcept { return kSetupFlags; }

const char* errno_name(int err) noexcept {
    for (const ErrnoName& e : kErrnoNames) {
        if (e.value == err) return e.name;
    }
    return nullptr;
}

// ---- host facts and diagnosis ----

HostFacts read_host_facts() noexcept {
    HostFacts h;
    struct utsname uts {};
    if (uname(&uts) == 0) {
        std::snprintf(h.kernel, sizeof h.kernel, "%s", uts.release);
        int major = -1;
        int minor = -1;
        if (std::sscanf(uts.release, "%d.%d", &major, &minor) == 2) {
            h.kernel_major = major;
            h.kernel_minor = minor;
        }
    }
    // Both sysctls exist from 6.6 on (kernel commit 76d3ccecfa18, "add a sysctl to
    // disable io_uring system-wide"); before that io_uring cannot be switched off.
    if (auto v = read_long_file("/proc/sys/kernel/io_uring_disabled")) {
        h.io_uring_disabled = static_cast<int>(*v);
    }
    h.io_uring_group = read_long_file("/proc/sys/kernel/io_uring_group");
    if (h.io_uring_group) h.in_io_uring_group = in_group(*h.io_uring_group);
    read_status(h);
    struct rlimit lim {};
    if (getrlimit(RLIMIT_MEMLOCK, &lim) == 0) {
        h.memlock_known = true;
        if (lim.rlim_cur != RLIM_INFINITY) h.memlock_soft = lim.rlim_cur;
        if (lim.rlim_max != RLIM_INFINITY) h.memlock_hard = lim.rlim_max;
    }
    return h;
}

const char* cause_name(Cause cause) noexcept {
    switch (cause) {
        case Cause::none:
            return "none";
        case Cause::kernel_too_old:
            return "kernel_too_old";
        case Cause::not_in_kernel:
            return "not_in_kernel";
        case Cause::seccomp:
            return "seccomp";
        case Cause::sysctl_disabled:
            return "sysctl_disabled";
        case Cause::sysctl_restricted:
            return "sysctl_restricted";
        case Cause::denied:
            return "denied";
        case Cause::memlock:
            return "memlock";
        case Cause::fd_limit:
            return "fd_limit";
        case Cause::refused:
            return "refused";
        case Cause::other:
            return "other";
    }
    return "other";
}

Diagnosis diagnose_setup_error(int neg_errno, const HostFacts& host) noexcept {
    const bool filtered = host.seccomp_mode.value_or(0) == 2;
    const int disabled = host.io_uring_disabled.value_or(0);
    switch (-neg_errno) {
        case 0:
            return {Cause::none, "io_uring works", ""};
        case ENOSYS: {
            const bool before_5_1 =
                host.kernel_major >= 0 &&
                (host.kernel_major < 5 || (host.kernel_major == 5 && host.kernel_minor < 1));
            if (before_5_1) {
                return {Cause::kernel_too_old,
                        "this kernel predates io_uring, which arrived in Linux 5.1",
                        "run Linux 5.1 or newer (5.6 or newer for the opcode probe)"};
            }
            // Docker-style profiles answer ENOSYS for calls they do not list.
            if (filtered) return {Cause::seccomp, kSeccompReason, kSeccompFix};
            if (host.io_uring_disabled) {
                // The sysctl exists, so the kernel has io_uring: something in between
                // does not implement the calls.
                return {Cause::not_in_kernel,
                        "the kernel has io_uring, but the sandbox this process runs in (such "
                        "as gVisor) does not implement its system calls",
                        "run outside the sandbox, or configure it to pass io_uring through"};
            }
            return {Cause::not_in_kernel,
                    "the kernel was built without io_uring (CONFIG_IO_URING is not set), or a "
                    "sandbox such as gVisor does not implement it",
                    "use a kernel built with CONFIG_IO_URING=y, or run outside the sandbox"};
        }
        case EPERM:
            if (disabled == 2) {
                return {Cause::sysctl_disabled,
                        "io_uring is switched off for every process by the sysctl "
                        "kernel.io_uring_disabled = 2",
                        "as root: sysctl -w kernel.io_uring_disabled=0 (or 1 to allow only "
                        "kernel.io_uring_group), and put it in /etc/sysctl.d/ to keep it"};
            }
            if (disabled == 1 && !host.in_io_uring_group && !host.cap_sys_admin) {
                return {Cause::sysctl_restricted, kRestrictedReason, kRestrictedFix};
            }
            if (filtered) return {Cause::seccomp, kSeccompReason, kSeccompFix};
            // CAP_SYS_ADMIN only counts in the initial user namespace (capable()), so a
            // container's root can still be refused by the sysctl.
            if (disabled == 1) return {Cause::sysctl_restricted, kRestrictedReason, kRestrictedFix};
            return {Cause::denied,
                    "permission denied by a security module (SELinux, AppArmor) or a sandbox",
                    "look for an io_uring denial in the audit log (ausearch -m avc, dmesg) "
                    "and allow it"};
        case ENOMEM:
            return {Cause::memlock,
                    "the kernel could not get memory for the ring: the locked-memory limit "
                    "(RLIMIT_MEMLOCK, ulimit -l) is too low for it (kernels before 5.12 charge "
                    "rings to it), or there is no contiguous memory for a ring this large",
                    "raise the limit (ulimit -l, /etc/security/limits.conf, systemd "
                    "LimitMEMLOCK=, docker run --ulimit memlock=-1) or ask for fewer entries"};
        case EMFILE:
        case ENFILE:
            return {Cause::fd_limit,
                    "no file descriptor is free for the ring (EMFILE: this process's "
                    "RLIMIT_NOFILE; ENFILE: the system's file table)",
                    "close unused descriptors or raise ulimit -n"};
        case EOPNOTSUPP:
            return {Cause::refused,
                    "the environment refuses io_uring (some managed Kubernetes nodes and "
                    "sandboxes answer EOPNOTSUPP)",
                    "run where io_uring is allowed, or use a fallback that does not need it"};
        case EINVAL:
            return {Cause::other,
                    "the kernel refused the ring's parameters (entry count or setup flags)",
                    "ask for 1 to 32768 entries and only flags this kernel accepts "
                    "(luring-probe lists them)"};
        default:
            return {Cause::other, "io_uring_setup failed for a reason luring does not know",
                    "see the error number; luring-probe --json shows the whole picture"};
    }
}

Diagnosis diagnose_setup_error(int neg_errno) noexcept {
    return diagnose_setup_error(neg_errno, read_host_facts());
}

const char* explain_setup_error(int neg_errno) noexcept {
    return diagnose_setup_error(neg_errno).reason;
}

int describe_setup_error(int neg_errno, char* buf, std::size_t size) noexcept {
    const HostFacts host = read_host_facts();
    const Diagnosis d = diagnose_setup_error(neg_errno, host);
    const char* name = errno_name(-neg_errno);
    // The facts behind the diagnosis, so a user can check it.
    char facts[160] = "";
    switch (d.cause) {
        case Cause::sysctl_disabled:
        case Cause::sysctl_restricted:
            std::snprintf(facts, sizeof facts,
                          " [kernel.io_uring_disabled = %d, "
                          "kernel.io_uring_group = %ld]",
                          host.io_uring_disabled.value_or(-1), host.io_uring_group.value_or(-1));
            break;
        case Cause::seccomp:
            std::snprintf(facts, sizeof facts, " [Seccomp: %d, %d filter(s)]",
                          host.seccomp_mode.value_or(-1), host.seccomp_filters.value_or(-1));
            break;
        case Cause::memlock:
            if (host.memlock_soft) {
                std::snprintf(facts, sizeof facts, " [RLIMIT_MEMLOCK = %" PRIu64 " KiB]",
                              *host.memlock_soft / 1024);
            } else {
                std::snprintf(facts, sizeof facts, " [RLIMIT_MEMLOCK = unlimited]");
            }
            break;
        case Cause::kernel_too_old:
        case Cause::not_in_kernel:
            std::snprintf(facts, sizeof facts, " [kernel %s]", host.kernel);
            break;
        default:
            break;
    }
    return std::snprintf(buf, size, "%s (%s): %s%s. Fix: %s", std::strerror(-neg_errno),
                         name != nullptr ? name : "?", d.reason, facts, d.fix);
}

// ---- the probes ----

const char* flag_status_name(FlagStatus status) noexcept {
    switch (status) {
        case FlagStatus::not_tried:
            return "not_tried";
        case FlagStatus::supported:
            return "supported";
        case FlagStatus::unsupported:
            return "unsupported";
        case FlagStatus::needs_privilege:
            return "needs_privilege";
        case FlagStatus::failed:
            return "failed";
    }
    return "failed";
}

int register_query_opcodes(QueryReport& out) noexcept {
    out = QueryReport{};
    QueryOpcodes answer{};
    QueryHdr hdr{};
    hdr.query_data = reinterpret_cast<std::uintptr_t>(&answer);
    hdr.query_op = query_op::opcodes;
    hdr.size = sizeof answer;
    // fd -1: a "blind" register, no ring needed (io_uring_register_blind).
    int ret = sys::io_uring_register(-1, reg::query, &hdr, 0);
    if (ret == 0) ret = hdr.result;
    if (ret < 0) {
        out.error = ret;
        return ret;
    }
    out.nr_request_opcodes = answer.nr_request_opcodes;
    out.nr_register_opcodes = answer.nr_register_opcodes;
    out.nr_query_opcodes = answer.nr_query_opcodes;
    out.feature_flags = answer.feature_flags;
    out.ring_setup_flags = answer.ring_setup_flags;
    out.enter_flags = answer.enter_flags;
    out.sqe_flags = answer.sqe_flags;
    return 0;
}

int try_setup_flag(const SetupFlagInfo& flag, int wq_fd) noexcept {
    const std::uint32_t flags = flag.value | flag.with_flags;
    Params p{};
    p.flags = flags;
    if ((flag.needs & need::cq_entries) != 0) p.cq_entries = 8;
    if ((flag.needs & need::wq_fd) != 0) {
        if (wq_fd < 0) return kSetupFlagNotTried;
        p.wq_fd = static_cast<std::uint32_t>(wq_fd);
    }
    if ((flag.needs & need::sq_thread_cpu) != 0) {
        const int cpu = first_allowed_cpu();
        if (cpu < 0) return kSetupFlagNotTried;
        p.sq_thread_cpu = static_cast<std::uint32_t>(cpu);
    }
    if ((flag.needs & need::user_memory) != 0) {
        const long page = sysconf(_SC_PAGESIZE);
        if (page <= 0 || static_cast<unsigned long>(page) > kUserPage) return kSetupFlagNotTried;
        UserRingMemory* mem = user_memory(flag.value);
        if (mem == nullptr) return kSetupFlagNotTried;
        p.sq_off.user_addr = reinterpret_cast<std::uintptr_t>(mem->sqes);
        p.cq_off.user_addr = reinterpret_cast<std::uintptr_t>(mem->rings);
    }
    const int ret = sys::io_uring_setup(2, &p);
    if (ret < 0) return ret;
    if ((flags & setup::registered_fd_only) != 0) {
        release_registered_ring(ret);
    } else {
        sys::close(ret);
    }
    return 0;
}

int gather_report(ProbeReport& out, const ProbeOptions& options) noexcept {
    out = ProbeReport{};
    out.host = read_host_facts();
    // The query needs no ring, so it can answer even when setup is refused.
    if (options.query) {
        out.query_tried = true;
        register_query_opcodes(out.query);
    }

    Ring ring;
    Params params{};
    const int ret = ring.init(2, params);
    if (ret < 0) {
        out.setup_error = ret;
        out.diagnosis = diagnose_setup_error(ret, out.host);
        return ret;
    }
    out.available = true;
    out.features = params.features;

    const int probe = register_probe(ring, out.ops);
    out.probe_ok = probe == 0;
    out.probe_error = probe;  // -EINVAL: no IORING_REGISTER_PROBE before 5.6

    if (options.setup_flags) {
        for (std::size_t i = 0; i < kSetupFlagCount; ++i) {
            const int r = try_setup_flag(kSetupFlags[i], ring.fd());
            out.setup_flags[i].status = classify(r);
            out.setup_flags[i].error = r < 0 ? r : 0;
        }
    }
    if (options.max_entries) {
        out.max_entries_tried = true;
        find_max_entries(out.max_entries);
    }
    return 0;
}

}  // namespace luring::uring
