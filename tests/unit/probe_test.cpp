// SPDX-License-Identifier: Apache-2.0
#include "probe.hpp"

#include <linux/capability.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <sys/utsname.h>
#include <unistd.h>

#include <bit>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <set>
#include <string>

#include "helpers.hpp"
#include "sys.hpp"
#include "unique_fd.hpp"

using namespace luring::uring;
using luring::test::fd_count;
using luring::test::make_ring;

namespace {

// Restores the sys fault seam whatever a test does to it.
struct FaultGuard {
    FaultGuard() = default;
    FaultGuard(const FaultGuard&) = delete;
    FaultGuard& operator=(const FaultGuard&) = delete;
    ~FaultGuard() { sys::faults() = sys::Faults{}; }
};

// A made-up host for the pure diagnosis tests.
HostFacts host(int disabled, int seccomp) {
    HostFacts h;
    std::strcpy(h.kernel, "6.18.0");
    h.kernel_major = 6;
    h.kernel_minor = 18;
    if (disabled >= 0) h.io_uring_disabled = disabled;
    h.io_uring_group = -1;
    h.seccomp_mode = seccomp;
    return h;
}

// A release as a number: "5.11" is 511. Parsed here with sscanf, independently of
// probe.cpp's own parser.
int version_number(const char* text) {
    int major = 0;
    int minor = 0;
    REQUIRE(std::sscanf(text, "%d.%d", &major, &minor) == 2);
    return major * 100 + minor;
}

// The running kernel as uname(2) gives it, as a version_number.
int running_kernel() {
    utsname u{};
    REQUIRE(::uname(&u) == 0);
    return version_number(u.release);
}

// Opcodes a kernel of their release may still lack because they are configured out
// (CONFIG_EPOLL, CONFIG_FUTEX); the probe then says "not supported".
bool config_dependent(unsigned code) {
    switch (static_cast<Op>(code)) {
        case Op::epoll_ctl:
        case Op::epoll_wait:
        case Op::futex_wait:
        case Op::futex_wake:
        case Op::futex_waitv:
            return true;
        default:
            return false;
    }
}

// Checks a table of one-bit flags against a mask the kernel reported (`kernel`):
// every bit the kernel has is named, and each entry is there exactly when its release
// is not newer than the running kernel. A distribution kernel may carry a newer
// io_uring than its version says (Debian's 5.10 has 5.15's: features up to RSRC_TAGS,
// 5.13). Bits are given out in release order, so such a kernel still has a prefix:
// every bit below its highest one, and then the release is only a lower bound.
void check_against_kernel(std::span<const FlagInfo> table, std::uint64_t kernel_mask,
                          const char* what) {
    const int kernel = running_kernel();
    std::uint64_t named = 0;
    std::uint64_t newer = 0;  // bits the kernel has that came after its version
    for (const FlagInfo& f : table) {
        if ((kernel_mask & f.value) != 0 && version_number(f.since) > kernel) newer |= f.value;
    }
    const std::uint64_t highest = std::bit_floor(kernel_mask);
    if (newer != 0) {
        MESSAGE(doctest::String(what), "s newer than the kernel's version (a backport): ", newer);
    }
    for (const FlagInfo& f : table) {
        named |= f.value;
        INFO(doctest::String(what), " ", doctest::String(f.name), " since ",
             doctest::String(f.since));
        const bool expected = newer != 0 ? f.value <= highest
                                         : version_number(f.since) <= kernel;
        CHECK(((kernel_mask & f.value) != 0) == expected);
    }
    INFO(doctest::String(what), ": bits the kernel has and the table does not name");
    CHECK((kernel_mask & ~named) == 0);
}

}  // namespace

TEST_CASE("op table: entry i is opcode i, names unique, every release known") {
    const auto ops = op_table();
    REQUIRE(ops.size() == static_cast<unsigned>(Op::pipe) + 1);  // IORING_OP_LAST of 6.18
    std::set<std::string> names;
    for (unsigned i = 0; i < ops.size(); ++i) {
        CHECK(ops[i].code == i);
        REQUIRE(ops[i].name != nullptr);
        CHECK(names.insert(ops[i].name).second);
        CHECK(std::string(ops[i].name).find_first_of("ABCDEFGHIJKLMNOPQRSTUVWXYZ ") ==
              std::string::npos);
        REQUIRE(ops[i].since != nullptr);
        CHECK(std::strlen(ops[i].since) >= 3);
    }
    // Spot checks against include/uapi/linux/io_uring.h.
    CHECK(std::string(ops[22].name) == "read");
    CHECK(std::string(ops[46].name) == "uring_cmd");
    CHECK(std::string(ops[62].name) == "pipe");
    CHECK(find_op(63) == nullptr);
}

TEST_CASE("op table agrees with IORING_REGISTER_PROBE: supported exactly from its release on") {
    Ring ring = make_ring(2);
    OpSupport ops;
    const int ret = register_probe(ring, ops);
    if (ret == -EINVAL) {
        MESSAGE("skipped: kernel lacks IORING_REGISTER_PROBE (5.6)");
        return;
    }
    REQUIRE(ret == 0);
    const int kernel = running_kernel();
    const auto table = op_table();
    if (kernel > 618 && ops.last_op >= table.size()) {
        MESSAGE("kernel newer than the table (6.18): opcodes from ", table.size(), " unnamed");
    } else {
        CHECK(ops.last_op < table.size());
    }
    unsigned newest = 0;  // the highest opcode whose release is not newer than this kernel
    for (const OpInfo& op : table) {
        if (version_number(op.since) <= kernel) newest = op.code;
    }
    // A distribution kernel may carry a newer io_uring than its version says (Debian's
    // 5.10 has 5.15's, up to UNLINKAT = 36). Opcodes are numbered in release order, so
    // it still supports a prefix: every opcode up to last_op, none after; then each
    // release is only a lower bound.
    const bool backport = kernel <= 618 && ops.last_op > newest;
    if (backport) {
        MESSAGE("opcodes ", newest + 1, " to ", ops.last_op,
                " are newer than the kernel's version (a backport)");
    }
    for (const OpInfo& op : table) {
        const bool expected =
            backport ? op.code <= ops.last_op : version_number(op.since) <= kernel;
        INFO("opcode ", op.code, " ", doctest::String(op.name), " since ",
             doctest::String(op.since));
        if (expected && !ops.supported[op.code] && config_dependent(op.code)) {
            MESSAGE("kernel built without ", doctest::String(op.name));
            continue;
        }
        CHECK(ops.supported[op.code] == expected);
    }
    if (kernel <= 618 && !backport) CHECK(ops.last_op == newest);
}

TEST_CASE("feature table agrees with the features io_uring_setup reports") {
    Params p{};
    const int fd = sys::io_uring_setup(2, &p);
    REQUIRE(fd >= 0);
    sys::close(fd);
    check_against_kernel(feature_table(), p.features, "feature");
}

TEST_CASE("setup, enter and SQE flag tables agree with IORING_REGISTER_QUERY (6.18+)") {
    QueryReport q;
    if (register_query_opcodes(q) < 0) {
        MESSAGE("skipped: kernel lacks IORING_REGISTER_QUERY (6.18)");
        return;
    }
    check_against_kernel(enter_flag_table(), q.enter_flags, "enter flag");
    check_against_kernel(sqe_flag_table(), q.sqe_flags, "SQE flag");
    const int kernel = running_kernel();
    std::uint64_t named = 0;
    for (const SetupFlagInfo& f : setup_flag_table()) {
        named |= f.value;
        INFO("setup flag ", doctest::String(f.name), " since ", doctest::String(f.since));
        CHECK(((q.ring_setup_flags & f.value) != 0) == (version_number(f.since) <= kernel));
    }
    CHECK((q.ring_setup_flags & ~named) == 0);
    CHECK(q.nr_request_opcodes == op_table().size());
}

TEST_CASE("op_label names opcodes beyond the table op_N") {
    CHECK(std::string(op_label(0).text) == "nop");
    CHECK(std::string(op_label(54).text) == "fixed_fd_install");  // the longest name
    CHECK(std::string(op_label(63).text) == "op_63");
    CHECK(std::string(op_label(255).text) == "op_255");
    CHECK(std::string(op_label(1000).text) == "op_1000");
}

TEST_CASE("parse_op accepts the spellings users type and rejects the rest") {
    CHECK(parse_op("read") == 22);
    CHECK(parse_op("READ") == 22);
    CHECK(parse_op("IORING_OP_READ") == 22);
    CHECK(parse_op("ioring_op_read") == 22);
    CHECK(parse_op("22") == 22);
    CHECK(parse_op("op_200") == 200);
    CHECK(parse_op("IORING_OP_PIPE") == 62);
    CHECK(parse_op("255") == 255);
    CHECK(parse_op("256") == -EINVAL);
    CHECK(parse_op("op_") == -EINVAL);
    CHECK(parse_op("") == -EINVAL);
    CHECK(parse_op("frobnicate") == -EINVAL);
    CHECK(parse_op("read ") == -EINVAL);
    CHECK(parse_op("-1") == -EINVAL);
}

TEST_CASE("flag tables: one bit each, in order, unique names") {
    auto check_table = [](std::span<const FlagInfo> table) {
        std::set<std::string> names;
        unsigned bit = 0;
        for (const FlagInfo& f : table) {
            CHECK(f.value == 1U << bit);  // no gaps, no repeats
            ++bit;
            CHECK(names.insert(f.name).second);
        }
    };
    check_table(feature_table());
    check_table(enter_flag_table());
    check_table(sqe_flag_table());

    std::set<std::string> names;
    unsigned bit = 0;
    for (const SetupFlagInfo& f : setup_flag_table()) {
        CHECK(f.value == 1U << bit);
        ++bit;
        CHECK(names.insert(f.name).second);
        CHECK((f.with_flags & f.value) == 0);
        // A flag with prerequisites says so in words.
        CHECK((f.with_flags == 0 && f.needs == 0) == (f.needs_text[0] == 0));
    }
    CHECK(bit == kSetupFlagCount);
}

TEST_CASE("diagnose_setup_error tells the causes apart") {
    CHECK(diagnose_setup_error(0, host(0, 0)).cause == Cause::none);

    CHECK(diagnose_setup_error(-ENOSYS, host(0, 2)).cause == Cause::seccomp);
    CHECK(diagnose_setup_error(-ENOSYS, host(0, 0)).cause == Cause::not_in_kernel);
    CHECK(diagnose_setup_error(-ENOSYS, host(-1, 0)).cause == Cause::not_in_kernel);
    HostFacts old = host(-1, 0);
    old.kernel_major = 4;
    old.kernel_minor = 19;
    CHECK(diagnose_setup_error(-ENOSYS, old).cause == Cause::kernel_too_old);

    CHECK(diagnose_setup_error(-EPERM, host(2, 0)).cause == Cause::sysctl_disabled);
    CHECK(diagnose_setup_error(-EPERM, host(2, 2)).cause == Cause::sysctl_disabled);
    CHECK(diagnose_setup_error(-EPERM, host(1, 0)).cause == Cause::sysctl_restricted);
    CHECK(diagnose_setup_error(-EPERM, host(0, 2)).cause == Cause::seccomp);
    CHECK(diagnose_setup_error(-EPERM, host(0, 0)).cause == Cause::denied);
    HostFacts admin = host(1, 2);
    admin.cap_sys_admin = true;  // allowed by the sysctl, so the filter is to blame
    CHECK(diagnose_setup_error(-EPERM, admin).cause == Cause::seccomp);
    HostFacts member = host(1, 0);
    member.in_io_uring_group = true;
    CHECK(diagnose_setup_error(-EPERM, member).cause == Cause::sysctl_restricted);

    CHECK(diagnose_setup_error(-ENOMEM, host(0, 0)).cause == Cause::memlock);
    CHECK(diagnose_setup_error(-EMFILE, host(0, 0)).cause == Cause::fd_limit);
    CHECK(diagnose_setup_error(-ENFILE, host(0, 0)).cause == Cause::fd_limit);
    CHECK(diagnose_setup_error(-EOPNOTSUPP, host(0, 0)).cause == Cause::refused);
    CHECK(diagnose_setup_error(-EIO, host(0, 0)).cause == Cause::other);

    for (int err : {ENOSYS, EPERM, ENOMEM, EMFILE, EOPNOTSUPP, EINVAL, EIO}) {
        const Diagnosis d = diagnose_setup_error(-err, host(0, 2));
        CHECK(std::strlen(d.reason) > 10);
        CHECK(std::strlen(d.fix) > 10);
        CHECK(std::string(cause_name(d.cause)) != "");
    }
    CHECK(std::string(explain_setup_error(-EPERM)).size() > 10);
}

TEST_CASE("describe_setup_error: errno name, reason, fix, and never overflows") {
    char buf[512];
    int n = describe_setup_error(-ENOMEM, buf, sizeof buf);
    CHECK(n > 0);
    const std::string text(buf);
    CHECK(text.find("(ENOMEM)") != std::string::npos);
    CHECK(text.find("RLIMIT_MEMLOCK") != std::string::npos);
    CHECK(text.find("Fix: ") != std::string::npos);

    char small[16];
    std::memset(small, 'x', sizeof small);
    n = describe_setup_error(-EPERM, small, sizeof small);
    CHECK(n > static_cast<int>(sizeof small));
    CHECK(std::strlen(small) == sizeof small - 1);
}

TEST_CASE("read_host_facts agrees with the system asked directly") {
    const HostFacts h = read_host_facts();
    utsname u{};
    REQUIRE(::uname(&u) == 0);
    CHECK(std::string(h.kernel) == u.release);
    int major = -1;
    int minor = -1;
    REQUIRE(std::sscanf(u.release, "%d.%d", &major, &minor) == 2);
    CHECK(h.kernel_major == major);
    CHECK(h.kernel_minor == minor);

    // prctl gives the seccomp mode (0 none, 2 filter; strict mode would have killed us).
    REQUIRE(h.seccomp_mode.has_value());
    CHECK(*h.seccomp_mode == ::prctl(PR_GET_SECCOMP, 0, 0, 0, 0));

    // capget(2) gives the effective capabilities.
    __user_cap_header_struct header{_LINUX_CAPABILITY_VERSION_3, 0};
    __user_cap_data_struct caps[2] = {};
    REQUIRE(::syscall(SYS_capget, &header, caps) == 0);
    CHECK(h.cap_sys_admin == ((caps[CAP_SYS_ADMIN / 32].effective >> (CAP_SYS_ADMIN % 32)) & 1U));

    rlimit lim{};
    REQUIRE(::getrlimit(RLIMIT_MEMLOCK, &lim) == 0);
    CHECK(h.memlock_known);
    CHECK(h.memlock_soft.has_value() == (lim.rlim_cur != RLIM_INFINITY));
    if (h.memlock_soft) CHECK(*h.memlock_soft == lim.rlim_cur);
    CHECK(h.memlock_hard.has_value() == (lim.rlim_max != RLIM_INFINITY));
    if (h.memlock_hard) CHECK(*h.memlock_hard == lim.rlim_max);

    std::ifstream disabled("/proc/sys/kernel/io_uring_disabled");
    int value = -1;
    if (disabled >> value) {
        REQUIRE(h.io_uring_disabled.has_value());
        CHECK(*h.io_uring_disabled == value);
    } else {
        CHECK_FALSE(h.io_uring_disabled.has_value());
    }
}

TEST_CASE("gather_report agrees with the kernel asked directly, and closes every ring") {
    const int fds_before = fd_count();
    ProbeReport report;
    REQUIRE(gather_report(report) == 0);
    CHECK(fd_count() == fds_before);
    CHECK(report.available);
    CHECK(report.setup_error == 0);
    CHECK(report.diagnosis.cause == Cause::none);

    // Features: a raw io_uring_setup gives the same word.
    Params p{};
    const int fd = sys::io_uring_setup(2, &p);
    REQUIRE(fd >= 0);
    sys::close(fd);
    CHECK(report.features == p.features);

    // Opcodes: the same as register_probe on a ring of our own.
    Ring ring = make_ring(2);
    OpSupport ops;
    const int probe = register_probe(ring, ops);
    CHECK(report.probe_error == probe);
    if (probe == 0) {
        CHECK(report.probe_ok);
        CHECK(report.ops.last_op == ops.last_op);
        for (unsigned i = 0; i < 256; ++i) CHECK(report.ops.supported[i] == ops.supported[i]);
        CHECK(report.ops.supported[static_cast<unsigned>(Op::nop)]);
        CHECK(report.ops.supported[static_cast<unsigned>(Op::read)]);
        CHECK(report.ops.supported[static_cast<unsigned>(Op::write)]);
    }

    // Setup flags: none is left untried on a kernel where io_uring works, plain flags
    // need nothing, and where the kernel has IORING_REGISTER_QUERY the answers agree.
    CHECK(report.setup_flags[0].status != FlagStatus::not_tried);
    if (report.query_tried && report.query.error == 0) {
        CHECK(report.query.feature_flags == report.features);
        CHECK(report.query.nr_request_opcodes == report.ops.last_op + 1U);
        const auto table = setup_flag_table();
        for (std::size_t i = 0; i < kSetupFlagCount; ++i) {
            const FlagStatus s = report.setup_flags[i].status;
            const bool known = (report.query.ring_setup_flags & table[i].value) != 0;
            INFO("setup flag ", doctest::String(table[i].name));
            if (s == FlagStatus::supported) CHECK(known);
            if (s == FlagStatus::unsupported) CHECK_FALSE(known);
        }
    } else {
        MESSAGE("kernel lacks IORING_REGISTER_QUERY (6.18); cross-check skipped");
    }

    // The largest ring.
    CHECK(report.max_entries_tried);
    CHECK(report.max_entries.sq_entries >= 1);
    CHECK(report.max_entries.sq_entries <= kMaxEntriesTried);
    CHECK(report.max_entries.cq_entries >= report.max_entries.sq_entries);
    if (report.max_entries.clamp_error == 0) {
        CHECK(report.max_entries.clamp_sq_entries >= report.max_entries.sq_entries);
    }
}

TEST_CASE("gather_report again and again leaks nothing (registered-only ring included)") {
    const int fds_before = fd_count();
    ProbeOptions options;
    options.query = false;
    options.max_entries = false;
    std::size_t registered_only = kSetupFlagCount;
    const auto table = setup_flag_table();
    for (std::size_t i = 0; i < kSetupFlagCount; ++i) {
        if (table[i].value == setup::registered_fd_only) registered_only = i;
    }
    REQUIRE(registered_only < kSetupFlagCount);
    // A task has 16 registered-ring slots (IO_RINGFD_REG_MAX): if the REGISTERED_FD_ONLY
    // trial left its ring registered, the 17th run would fail with EBUSY.
    FlagStatus first = FlagStatus::not_tried;
    for (int run = 0; run < 20; ++run) {
        ProbeReport report;
        REQUIRE(gather_report(report, options) == 0);
        const FlagStatus status = report.setup_flags[registered_only].status;
        if (run == 0) first = status;
        INFO("run ", run, " errno ", -report.setup_flags[registered_only].error);
        CHECK(status == first);
    }
    CHECK(fd_count() == fds_before);
}

TEST_CASE("gather_report with setup failing: unavailable, diagnosed, nothing opened") {
    FaultGuard guard;
    const int fds_before = fd_count();
    for (int err : {ENOSYS, EPERM, ENOMEM}) {
        sys::faults().setup_error = -err;
        ProbeReport report;
        CHECK(gather_report(report) == -err);
        CHECK_FALSE(report.available);
        CHECK(report.setup_error == -err);
        CHECK_FALSE(report.probe_ok);
        CHECK(report.diagnosis.cause == diagnose_setup_error(-err, report.host).cause);
        CHECK(report.diagnosis.cause != Cause::none);
        for (const SetupFlagResult& f : report.setup_flags) {
            CHECK(f.status == FlagStatus::not_tried);
        }
    }
    CHECK(fd_count() == fds_before);
}

TEST_CASE("gather_report reports the features the ring answered with") {
    FaultGuard guard;
    sys::faults().hide_features = feat::ext_arg;
    ProbeReport report;
    ProbeOptions options;
    options.setup_flags = false;
    options.max_entries = false;
    REQUIRE(gather_report(report, options) == 0);
    CHECK((report.features & feat::ext_arg) == 0);
    CHECK((report.features & feat::single_mmap) != 0);
    CHECK_FALSE(report.max_entries_tried);
    CHECK(report.setup_flags[0].status == FlagStatus::not_tried);
}

TEST_CASE("try_setup_flag: ATTACH_WQ is 'not tried' without a ring, accepted with one") {
    const SetupFlagInfo* attach = nullptr;
    for (const SetupFlagInfo& f : setup_flag_table()) {
        if (f.value == setup::attach_wq) attach = &f;
    }
    REQUIRE(attach != nullptr);
    CHECK(try_setup_flag(*attach, -1) == kSetupFlagNotTried);
    Ring ring = make_ring(2);
    CHECK(try_setup_flag(*attach, ring.fd()) == 0);  // 5.6+
    UniqueFd not_ring(::dup(STDIN_FILENO));
    if (not_ring.valid()) CHECK(try_setup_flag(*attach, not_ring.get()) < 0);
}

TEST_CASE("register_query_opcodes: 6.18's answer, or an error before it") {
    QueryReport q;
    const int ret = register_query_opcodes(q);
    if (ret < 0) {
        MESSAGE("kernel lacks IORING_REGISTER_QUERY (6.18): ", ret);
        CHECK(q.error == ret);
        return;
    }
    CHECK(q.error == 0);
    CHECK(q.nr_request_opcodes >= static_cast<unsigned>(Op::pipe) + 1);
    CHECK(q.nr_register_opcodes > reg::query);
    CHECK((q.ring_setup_flags & setup::sqpoll) != 0);
    CHECK((q.enter_flags & enter::getevents) != 0);
    CHECK((q.sqe_flags & sqe_flag::io_link) != 0);
}

TEST_CASE("require_op (the tests' helper): true for nop, false past the kernel's last opcode") {
    CHECK(luring::test::require_op(Op::nop, "IORING_OP_NOP"));
    CHECK_FALSE(luring::test::require_op(static_cast<Op>(255), "opcode 255"));
}
