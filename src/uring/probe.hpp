// SPDX-License-Identifier: Apache-2.0
// What io_uring the running kernel offers, and in plain words why not when it offers
// nothing. Holds the name tables (opcodes, IORING_FEAT_*, IORING_SETUP_*, IORING_ENTER_*,
// IOSQE_*; numbers spelled out through Linux 6.18 so a build on an older uapi header still
// names them) and gather_report(), which luring-probe and luring.probe() both print.
//
// Nothing here allocates: the report is a plain struct of fixed-size members, so the
// Lua module can fill one on the stack inside a lua_CFunction.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <span>
#include <string_view>

#include "abi.hpp"
#include "register.hpp"

namespace luring::uring {

// ---- Name tables ------------------------------------------------------------------------

// One io_uring opcode: its number, its short name (IORING_OP_READ is "read") and the
// kernel release that introduced it.
struct OpInfo {
    std::uint8_t code;
    const char* name;
    const char* since;
};

// Every opcode through Linux 6.18 (nop = 0 ... pipe = 62); entry i has code i.
std::span<const OpInfo> op_table() noexcept;

// The table entry for `code`, or nullptr for an opcode newer than our table.
const OpInfo* find_op(unsigned code) noexcept;

// A printable opcode name: the table's name, or "op_N" for an opcode beyond the table.
struct OpLabel {
    char text[24];  // the longest name, "fixed_fd_install", or "op_255"
};
OpLabel op_label(unsigned code) noexcept;

// Parses an opcode as a user types it: "read", "READ", "IORING_OP_READ", "22" or "op_22".
// Returns the code (0..255), or -EINVAL for a name we do not know or a number above 255.
int parse_op(std::string_view text) noexcept;

// One bit of a flags word (IORING_FEAT_*, IORING_ENTER_*, IOSQE_*).
struct FlagInfo {
    std::uint32_t value;
    const char* name;
    const char* since;
};

std::span<const FlagInfo> feature_table() noexcept;     // IORING_FEAT_*, through 6.18
std::span<const FlagInfo> enter_flag_table() noexcept;  // IORING_ENTER_*, through 6.18
std::span<const FlagInfo> sqe_flag_table() noexcept;    // IOSQE_*, through 6.18

// What a setup flag needs besides itself before the kernel can accept it.
namespace need {
inline constexpr std::uint8_t cq_entries = 1U << 0;     // Params::cq_entries set (CQSIZE)
inline constexpr std::uint8_t wq_fd = 1U << 1;          // Params::wq_fd = another ring
inline constexpr std::uint8_t sq_thread_cpu = 1U << 2;  // Params::sq_thread_cpu = a usable CPU
inline constexpr std::uint8_t user_memory = 1U << 3;    // sq_off/cq_off.user_addr = our pages
}  // namespace need

// One IORING_SETUP_* flag and how to try it on its own: `with_flags` are the other flags
// it cannot go without (DEFER_TASKRUN needs SINGLE_ISSUER), `needs` the parameters.
struct SetupFlagInfo {
    std::uint32_t value;
    const char* name;
    const char* since;
    std::uint32_t with_flags;
    std::uint8_t needs;
    const char* needs_text;  // plain words, "" when the flag stands alone
};

inline constexpr std::size_t kSetupFlagCount = 19;  // IORING_SETUP_IOPOLL .. CQE_MIXED (6.18)

std::span<const SetupFlagInfo, kSetupFlagCount> setup_flag_table() noexcept;

// "EPERM" for EPERM and so on for the errnos the probe can meet; nullptr otherwise.
const char* errno_name(int err) noexcept;

// ---- Why io_uring_setup failed ------------------------------------------------------------

// Facts about this host and process that tell the causes of a failed setup apart.
struct HostFacts {
    char kernel[65] = {};  // uname -r
    int kernel_major = -1;
    int kernel_minor = -1;
    // /proc/sys/kernel/io_uring_disabled (6.6+): 0 allowed, 1 only CAP_SYS_ADMIN or members
    // of io_uring_group, 2 nobody. Empty when the file does not exist.
    std::optional<int> io_uring_disabled;
    std::optional<long> io_uring_group;  // /proc/sys/kernel/io_uring_group; -1 means none
    bool in_io_uring_group = false;      // our effective or a supplementary gid matches
    bool cap_sys_admin = false;          // CAP_SYS_ADMIN in CapEff of /proc/self/status
    // "Seccomp:" of /proc/self/status: 0 none, 1 strict, 2 filter. Empty if unreadable.
    std::optional<int> seccomp_mode;
    std::optional<int> seccomp_filters;  // "Seccomp_filters:" (5.9+)
    // RLIMIT_MEMLOCK in bytes; empty means unlimited (RLIM_INFINITY).
    bool memlock_known = false;
    std::optional<std::uint64_t> memlock_soft;
    std::optional<std::uint64_t> memlock_hard;
};

// Reads uname, /proc/sys/kernel/io_uring_*, /proc/self/status and getrlimit. Anything
// it cannot read stays empty; it never fails.
HostFacts read_host_facts() noexcept;

enum class Cause : std::uint8_t {
    none,               // setup worked
    kernel_too_old,     // ENOSYS on a kernel before 5.1
    not_in_kernel,      // ENOSYS: built without CONFIG_IO_URING, or an emulating sandbox
    seccomp,            // ENOSYS/EPERM with a seccomp filter installed (containers)
    sysctl_disabled,    // EPERM, kernel.io_uring_disabled = 2
    sysctl_restricted,  // EPERM, kernel.io_uring_disabled = 1 and we are not allowed
    denied,             // EPERM with none of the above: an LSM or sandbox said no
    memlock,            // ENOMEM: locked-memory limit or no contiguous memory
    fd_limit,           // EMFILE / ENFILE
    refused,            // EOPNOTSUPP: the environment refuses io_uring
    other,              // anything else
};

// "seccomp", "sysctl_disabled", ... (the JSON spelling of a Cause).
const char* cause_name(Cause cause) noexcept;

// A cause with its plain-words reason and fix (static strings).
struct Diagnosis {
    Cause cause = Cause::none;
    const char* reason = "";
    const char* fix = "";
};

// Tells apart the reasons io_uring_setup can fail with `neg_errno` (-ENOSYS, -EPERM,
// -ENOMEM, ...) using `host`. Pure: the unit tests feed it made-up hosts.
Diagnosis diagnose_setup_error(int neg_errno, const HostFacts& host) noexcept;

// Same, reading the host facts itself.
Diagnosis diagnose_setup_error(int neg_errno) noexcept;

// The reason in plain words for a setup failure (a static string), for error messages.
const char* explain_setup_error(int neg_errno) noexcept;

// Writes "<strerror> (<ERRNO>): <reason>, <facts>. Fix: <fix>" into buf, with the facts
// that matter filled in (the sysctl value, the seccomp mode, RLIMIT_MEMLOCK). Always
// NUL-terminates when size > 0. Returns the length it wanted, like snprintf.
int describe_setup_error(int neg_errno, char* buf, std::size_t size) noexcept;

// ---- The report ----------------------------------------------------------------------------

enum class FlagStatus : std::uint8_t {
    not_tried,        // io_uring unavailable, or a prerequisite could not be arranged
    supported,        // the kernel accepted the flag
    unsupported,      // EINVAL: this kernel does not know it (or refuses this combination)
    needs_privilege,  // EPERM
    failed,           // another errno (see SetupFlagResult::error)
};

// "not_tried", "supported", "unsupported", "needs_privilege", "failed".
const char* flag_status_name(FlagStatus status) noexcept;

struct SetupFlagResult {
    FlagStatus status = FlagStatus::not_tried;
    int error = 0;  // -errno of the attempt, 0 if accepted or not tried
};

// IORING_REGISTER_QUERY with IO_URING_QUERY_OPCODES (6.18): what the kernel knows, asked
// without a ring.
struct QueryReport {
    int error = 0;  // 0, or -errno (-EINVAL/-EBADF before 6.18, or the op's result)
    std::uint32_t nr_request_opcodes = 0;
    std::uint32_t nr_register_opcodes = 0;
    std::uint32_t nr_query_opcodes = 0;  // 0 on a kernel that does not fill it
    std::uint64_t feature_flags = 0;
    std::uint64_t ring_setup_flags = 0;
    std::uint64_t enter_flags = 0;
    std::uint64_t sqe_flags = 0;
};

// The largest ring io_uring_setup accepted, trying 32768 entries downward by halves,
// and what IORING_SETUP_CLAMP (5.6) makes of a request above the maximum.
struct MaxEntriesReport {
    std::uint32_t sq_entries = 0;  // 0 if no size was accepted
    std::uint32_t cq_entries = 0;
    int first_error = 0;  // -errno for the first size refused (0 if 32768 worked)
    std::uint32_t clamp_sq_entries = 0;
    std::uint32_t clamp_cq_entries = 0;
    int clamp_error = 0;  // -errno if CLAMP was refused
};

inline constexpr std::uint32_t kMaxEntriesTried = 32768;  // IORING_MAX_ENTRIES since 5.4

struct ProbeOptions {
    bool setup_flags = true;  // try every setup flag (one throw-away ring each)
    bool query = true;        // IORING_REGISTER_QUERY
    bool max_entries = true;  // find the largest ring size
};

struct ProbeReport {
    HostFacts host;
    bool available = false;
    int setup_error = 0;         // -errno from creating (or mapping) a default 2-entry ring
    Diagnosis diagnosis;         // cause none when available
    std::uint32_t features = 0;  // Params::features of the default ring
    // IORING_REGISTER_PROBE on the default ring: probe_error is -EINVAL before 5.6, when
    // `ops` stays empty.
    bool probe_ok = false;
    int probe_error = 0;
    OpSupport ops;
    std::array<SetupFlagResult, kSetupFlagCount> setup_flags{};  // same order as the table
    bool query_tried = false;
    QueryReport query;
    bool max_entries_tried = false;
    MaxEntriesReport max_entries;
};

// Fills `out` with everything above. Every ring it opens is closed (or, for
// REGISTERED_FD_ONLY, unregistered) before it returns. Returns 0 when io_uring works,
// else the -errno of the default ring's setup (out.diagnosis says why). Available
// everywhere; on kernels without io_uring it reports so.
int gather_report(ProbeReport& out, const ProbeOptions& options = {}) noexcept;

// Mirrors io_uring_register(-1, IORING_REGISTER_QUERY) with IO_URING_QUERY_OPCODES.
// Available since 6.18; before that -EINVAL or -EBADF. Returns 0 or -errno.
int register_query_opcodes(QueryReport& out) noexcept;

// Mirrors liburing's test/probe.c way of asking for one flag: io_uring_setup(2, flags)
// on a throw-away ring with whatever else the flag needs (see SetupFlagInfo), then
// closes it. `wq_fd` is a live ring for ATTACH_WQ (or -1). Returns 0 if the kernel
// accepted it, -errno if it refused (-EINVAL unknown, -EPERM privilege), or
// kSetupFlagNotTried when a prerequisite could not be arranged (no wq_fd, no usable CPU,
// pages larger than our buffers).
inline constexpr int kSetupFlagNotTried = 1;
int try_setup_flag(const SetupFlagInfo& flag, int wq_fd) noexcept;

}  // namespace luring::uring
