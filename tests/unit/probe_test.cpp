// SPDX-License-Identifier: Apache-2.0
#include "probe.hpp"

#include <cerrno>
#include <cstring>
#include <set>
#include <string>

#include "helpers.hpp"
#include "sys.hpp"

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

TEST_CASE("flag tables: one bit each, no gaps through 6.18, unique names") {
    auto check_table = [](std::span<const FlagInfo> table, std::uint32_t all) {
        std::uint32_t seen = 0;
        std::set<std::string> names;
        for (const FlagInfo& f : table) {
            CHECK(f.value != 0);
            CHECK((f.value & (f.value - 1)) == 0);
            CHECK((seen & f.value) == 0);
            seen |= f.value;
            CHECK(names.insert(f.name).second);
        }
        CHECK(seen == all);
    };
    check_table(feature_table(), 0x3ffffU);  // the mask 6.18 reports
    check_table(enter_flag_table(), 0xffU);
    check_table(sqe_flag_table(), 0x7fU);

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

TEST_CASE("read_host_facts reads this machine") {
    const HostFacts h = read_host_facts();
    CHECK(h.kernel[0] != 0);
    CHECK(h.kernel_major >= 5);
    CHECK(h.seccomp_mode.has_value());
    CHECK(h.memlock_known);
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
            INFO("setup flag ", table[i].name);
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

TEST_CASE("try_setup_flag: prerequisites it cannot arrange are 'not tried'") {
    for (const SetupFlagInfo& f : setup_flag_table()) {
        if (f.value == setup::attach_wq) CHECK(try_setup_flag(f, -1) == kSetupFlagNotTried);
    }
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
