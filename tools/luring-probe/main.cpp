// SPDX-License-Identifier: Apache-2.0
// luring-probe: what io_uring the running kernel offers, and in plain words why not when
// it offers nothing. Links only the core (src/uring); no liburing.
//
// Exit status: 0 io_uring works (with --check: every OP is supported), 1 error or usage
// (with --check: also an unknown OP name), 2 io_uring unavailable, 3 with --check: an OP
// is not supported by this kernel.
#include <cerrno>
#include <csignal>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <string_view>

#include "json_writer.hpp"
#include "probe.hpp"

#ifndef LURING_VERSION
#define LURING_VERSION "unknown"
#endif

namespace {

using namespace luring::uring;

constexpr int kExitOk = 0;
constexpr int kExitError = 1;
constexpr int kExitUnavailable = 2;
constexpr int kExitNotSupported = 3;

constexpr std::size_t kMaxChecks = 256;

// The first n characters of s (all of s if shorter). Instead of substr(), which can
// throw std::out_of_range and so needs libstdc++ in unoptimized builds.
std::string_view head(std::string_view s, std::size_t n) {
    return {s.data(), n < s.size() ? n : s.size()};
}

// Where --check sends a user who typed a name we do not know.
constexpr const char* kNamesHint = "run luring-probe without arguments for the names";

void print_usage(std::FILE* out) {
    std::fputs(
        "Usage: luring-probe [--json] [--check OP[,OP...]] [--help] [--version]\n"
        "\n"
        "Reports what io_uring the running kernel offers: availability (and why not),\n"
        "feature bits, supported opcodes, which setup flags the kernel accepts, the\n"
        "IORING_REGISTER_QUERY answer (6.18+) and the largest ring size.\n"
        "\n"
        "  --json              print the report (or, with --check, the answers) as one\n"
        "                      JSON object\n"
        "  --check OP[,OP...]  only check that these opcodes are supported, one line each\n"
        "                      (names as in the report: read, IORING_OP_READ, 22 or op_22;\n"
        "                      run luring-probe without arguments for the names)\n"
        "  --help              show this help\n"
        "  --version           show the version\n"
        "\n"
        "Exit status:\n"
        "  0  io_uring works (and, with --check, every OP is supported)\n"
        "  1  usage error, such as an unknown OP name (the other names are still checked),\n"
        "     or an error (output not written; --check without IORING_REGISTER_PROBE,\n"
        "     before Linux 5.6, cannot tell)\n"
        "  2  io_uring is unavailable (the report says why)\n"
        "  3  --check: io_uring works, but an OP is not supported by this kernel\n",
        out);
}

// ---- JSON output ------------------------------------------------------------------------

using luring::tools::Json;

void json_errno(Json& j, const char* key, int neg_errno) {
    neg_errno < 0 ? j.field_int(key, -neg_errno) : j.field_null(key);
}

void json_optional_int(Json& j, const char* key, const std::optional<int>& v) {
    v ? j.field_int(key, *v) : j.field_null(key);
}

void json_limit(Json& j, const char* key, const HostFacts& h,
                const std::optional<std::uint64_t>& v) {
    if (!h.memlock_known) {
        j.field_null(key);
    } else if (v) {
        j.field_uint(key, *v);
    } else {
        j.field(key, "unlimited");
    }
}

// Names of the bits of `value` from `table`; unknown bits as "0x..." strings.
void json_flag_names(Json& j, const char* key, std::uint64_t value,
                     std::span<const FlagInfo> table) {
    j.key(key);
    j.begin_array();
    std::uint64_t known = 0;
    for (const FlagInfo& f : table) {
        known |= f.value;
        if ((value & f.value) != 0) j.string(f.name);
    }
    for (unsigned bit = 0; bit < 64; ++bit) {
        const std::uint64_t mask = std::uint64_t{1} << bit;
        if ((value & mask) != 0 && (known & mask) == 0) {
            char hex[24];
            std::snprintf(hex, sizeof hex, "0x%llx", static_cast<unsigned long long>(mask));
            j.string(hex);
        }
    }
    j.end_array();
}

// The setup-flag table as FlagInfo, for naming IORING_REGISTER_QUERY's mask.
std::span<const FlagInfo> setup_flags_as_flag_info() {
    static FlagInfo table[kSetupFlagCount];
    std::size_t i = 0;
    for (const SetupFlagInfo& s : setup_flag_table()) table[i++] = {s.value, s.name, s.since};
    return table;
}

std::uint32_t known_mask(std::span<const FlagInfo> table) {
    std::uint32_t mask = 0;
    for (const FlagInfo& f : table) mask |= f.value;
    return mask;
}

void print_json(const ProbeReport& r) {
    Json j(stdout);
    j.begin_object();
    j.field("tool", "luring-probe");
    j.field("version", LURING_VERSION);
    j.field("kernel", r.host.kernel);
    j.field("available", r.available);
    if (r.available) {
        j.field_null("error");
        j.field_null("errno");
        j.field_null("errno_name");
        j.field_null("cause");
        j.field_null("reason");
        j.field_null("fix");
    } else {
        j.field("error", std::strerror(-r.setup_error));
        j.field_int("errno", -r.setup_error);
        j.field("errno_name", errno_name(-r.setup_error));
        j.field("cause", cause_name(r.diagnosis.cause));
        j.field("reason", r.diagnosis.reason);
        j.field("fix", r.diagnosis.fix);
    }
    json_optional_int(j, "io_uring_disabled", r.host.io_uring_disabled);
    r.host.io_uring_group ? j.field_int("io_uring_group", *r.host.io_uring_group)
                          : j.field_null("io_uring_group");
    j.field("cap_sys_admin", r.host.cap_sys_admin);
    j.key("seccomp");
    j.begin_object();
    json_optional_int(j, "mode", r.host.seccomp_mode);
    json_optional_int(j, "filters", r.host.seccomp_filters);
    j.end_object();
    j.key("memlock");
    j.begin_object();
    json_limit(j, "soft", r.host, r.host.memlock_soft);
    json_limit(j, "hard", r.host, r.host.memlock_hard);
    j.end_object();

    j.key("features");
    j.begin_object();
    j.field_uint("value", r.features);
    json_flag_names(j, "names", r.features, feature_table());
    j.field_uint("unknown", r.features & ~known_mask(feature_table()));
    j.end_object();

    j.key("probe");
    j.begin_object();
    j.field("supported", r.probe_ok);
    json_errno(j, "errno", r.available ? r.probe_error : 0);
    r.probe_ok ? j.field_int("last_op", r.ops.last_op) : j.field_null("last_op");
    j.end_object();

    j.key("ops");
    j.begin_array();
    if (r.probe_ok) {
        for (unsigned code = 0; code <= r.ops.last_op; ++code) {
            const OpInfo* info = find_op(code);
            j.begin_object();
            j.field_int("code", code);
            j.field("name", op_label(code).text);
            j.field("since", info != nullptr ? info->since : nullptr);
            j.field("supported", r.ops.supported[code]);
            j.end_object();
        }
    }
    j.end_array();

    j.key("setup_flags");
    j.begin_array();
    if (r.available) {
        const auto table = setup_flag_table();
        for (std::size_t i = 0; i < kSetupFlagCount; ++i) {
            const SetupFlagResult& res = r.setup_flags[i];
            j.begin_object();
            j.field("name", table[i].name);
            j.field_uint("value", table[i].value);
            j.field("since", table[i].since);
            j.field("needs", table[i].needs_text);
            j.field("supported", res.status == FlagStatus::supported);
            j.field("status", flag_status_name(res.status));
            json_errno(j, "errno", res.error);
            j.end_object();
        }
    }
    j.end_array();

    j.key("query");
    if (!r.query_tried) {
        j.null();
    } else {
        const QueryReport& q = r.query;
        j.begin_object();
        j.field("supported", q.error == 0);
        json_errno(j, "errno", q.error);
        if (q.error == 0) {
            j.field_uint("nr_request_opcodes", q.nr_request_opcodes);
            j.field_uint("nr_register_opcodes", q.nr_register_opcodes);
            j.field_uint("nr_query_opcodes", q.nr_query_opcodes);
            j.field_uint("feature_flags", q.feature_flags);
            json_flag_names(j, "feature_names", q.feature_flags, feature_table());
            j.field_uint("ring_setup_flags", q.ring_setup_flags);
            json_flag_names(j, "ring_setup_names", q.ring_setup_flags, setup_flags_as_flag_info());
            j.field_uint("enter_flags", q.enter_flags);
            json_flag_names(j, "enter_names", q.enter_flags, enter_flag_table());
            j.field_uint("sqe_flags", q.sqe_flags);
            json_flag_names(j, "sqe_names", q.sqe_flags, sqe_flag_table());
        }
        j.end_object();
    }

    j.key("max_entries");
    if (!r.max_entries_tried) {
        j.null();
    } else {
        const MaxEntriesReport& m = r.max_entries;
        j.begin_object();
        m.sq_entries != 0 ? j.field_uint("sq", m.sq_entries) : j.field_null("sq");
        m.sq_entries != 0 ? j.field_uint("cq", m.cq_entries) : j.field_null("cq");
        json_errno(j, "first_errno", m.first_error);
        m.clamp_error == 0 ? j.field_uint("clamp_sq", m.clamp_sq_entries)
                           : j.field_null("clamp_sq");
        m.clamp_error == 0 ? j.field_uint("clamp_cq", m.clamp_cq_entries)
                           : j.field_null("clamp_cq");
        json_errno(j, "clamp_errno", m.clamp_error);
        j.end_object();
    }
    j.end_object();
    std::fputc('\n', stdout);
}

// ---- text output ------------------------------------------------------------------------

const char* or_unknown(const char* s) { return s != nullptr ? s : "?"; }

void print_memlock(const HostFacts& h) {
    if (!h.memlock_known) {
        std::printf("RLIMIT_MEMLOCK     unknown\n");
        return;
    }
    auto show = [](const std::optional<std::uint64_t>& v) {
        if (v) {
            std::printf("%llu KiB", static_cast<unsigned long long>(*v / 1024));
        } else {
            std::printf("unlimited");
        }
    };
    std::printf("RLIMIT_MEMLOCK     ");
    show(h.memlock_soft);
    std::printf(" (hard ");
    show(h.memlock_hard);
    std::printf(")\n");
}

// Prints `label` padded to the value column, then `text` wrapped at 100 columns with
// its continuation lines under the first word.
void print_wrapped(const char* label, const char* text) {
    constexpr int kIndent = 19;
    constexpr int kWidth = 100;
    int column = std::printf("%-*s", kIndent, label);
    bool first = true;
    std::string_view rest(text);
    while (!rest.empty()) {
        const std::size_t space = rest.find(' ');
        const std::string_view word = head(rest, space);
        const int len = static_cast<int>(word.size());
        if (!first && column + 1 + len > kWidth) {
            column = std::printf("\n%*s", kIndent, "") - 1;
        } else if (!first) {
            column += std::printf(" ");
        }
        column += std::printf("%.*s", len, word.data());
        first = false;
        if (space == std::string_view::npos) break;
        rest.remove_prefix(space + 1);
    }
    std::printf("\n");
}

void print_host(const ProbeReport& r) {
    const HostFacts& h = r.host;
    std::printf("Kernel             %s\n", h.kernel[0] != 0 ? h.kernel : "unknown");
    if (r.available) {
        std::printf("io_uring           available\n");
    } else {
        std::printf("io_uring           UNAVAILABLE: %s (%s)\n", std::strerror(-r.setup_error),
                    or_unknown(errno_name(-r.setup_error)));
        std::printf("  Cause            %s\n", cause_name(r.diagnosis.cause));
        print_wrapped("  Reason", r.diagnosis.reason);
        print_wrapped("  Fix", r.diagnosis.fix);
    }
    if (h.io_uring_disabled) {
        std::printf("io_uring_disabled  %d (sysctl kernel.io_uring_disabled", *h.io_uring_disabled);
        if (h.io_uring_group) std::printf("; io_uring_group %ld", *h.io_uring_group);
        std::printf(")\n");
    } else {
        std::printf("io_uring_disabled  no such sysctl (kernel before 6.6)\n");
    }
    if (h.seccomp_mode) {
        static const char* const kModes[] = {"no filter", "strict", "filter"};
        const int m = *h.seccomp_mode;
        std::printf("Seccomp            %d (%s", m, (m >= 0 && m <= 2) ? kModes[m] : "?");
        if (h.seccomp_filters) std::printf(", %d filter(s)", *h.seccomp_filters);
        std::printf(")\n");
    } else {
        std::printf("Seccomp            unknown (/proc/self/status unreadable)\n");
    }
    print_memlock(h);
}

void print_features(const ProbeReport& r) {
    const auto table = feature_table();
    std::printf("\nFeatures of a default ring (IORING_FEAT_*): 0x%x\n", r.features);
    for (const FlagInfo& f : table) {
        std::printf("  %-4s %-18s since %s\n", (r.features & f.value) != 0 ? "yes" : "no", f.name,
                    f.since);
    }
    const std::uint32_t unknown = r.features & ~known_mask(table);
    if (unknown != 0) std::printf("  yes  unknown bits 0x%x (newer than this tool)\n", unknown);
}

void print_ops(const ProbeReport& r) {
    if (!r.probe_ok) {
        std::printf("\nOpcodes: unknown, IORING_REGISTER_PROBE failed: %s (%s)\n",
                    std::strerror(-r.probe_error), or_unknown(errno_name(-r.probe_error)));
        if (r.probe_error == -EINVAL) {
            std::printf("  This kernel has no IORING_REGISTER_PROBE (it arrived in Linux 5.6).\n");
        }
        return;
    }
    unsigned supported = 0;
    for (unsigned code = 0; code <= r.ops.last_op; ++code) supported += r.ops.supported[code];
    std::printf("\nOpcodes (IORING_REGISTER_PROBE): last_op %u, %u of %u supported\n",
                r.ops.last_op, supported, r.ops.last_op + 1U);
    for (unsigned code = 0; code <= r.ops.last_op; ++code) {
        const OpInfo* info = find_op(code);
        std::printf("  %3u %-18s %-6s %s\n", code, op_label(code).text,
                    info != nullptr ? info->since : "new", r.ops.supported[code] ? "yes" : "no");
    }
}

void print_setup_flags(const ProbeReport& r) {
    std::printf("\nSetup flags (IORING_SETUP_*), each tried alone on a throw-away 2-entry ring\n");
    const auto table = setup_flag_table();
    for (std::size_t i = 0; i < kSetupFlagCount; ++i) {
        const SetupFlagResult& res = r.setup_flags[i];
        char status[64];
        if (res.status == FlagStatus::failed) {
            std::snprintf(status, sizeof status, "failed (%s)", or_unknown(errno_name(-res.error)));
        } else {
            std::snprintf(status, sizeof status, "%s", flag_status_name(res.status));
        }
        const int width = std::printf("  %-18s 0x%05x  %-5s %s", table[i].name, table[i].value,
                                      table[i].since, status);
        // The prerequisites in a column of their own; no trailing blanks without them.
        const char* needs = table[i].needs_text;
        if (needs[0] != 0) std::printf("%*s%s", width < 56 ? 56 - width : 1, "", needs);
        std::printf("\n");
    }
}

// Names of the set bits of `value`, wrapped under a label; unknown bits as hex.
void print_names(const char* label, std::uint64_t value, std::span<const FlagInfo> table) {
    constexpr int kWidth = 100;
    int column = std::printf("  %-12s0x%llx:", label, static_cast<unsigned long long>(value));
    auto word = [&column](const char* w) {
        const int len = static_cast<int>(std::strlen(w)) + 1;
        if (column + len > kWidth) column = std::printf("\n%*s", 14, "") - 1;
        column += std::printf(" %s", w);
    };
    std::uint64_t known = 0;
    for (const FlagInfo& f : table) {
        known |= f.value;
        if ((value & f.value) != 0) word(f.name);
    }
    if ((value & ~known) != 0) {
        char hex[24];
        std::snprintf(hex, sizeof hex, "+0x%llx", static_cast<unsigned long long>(value & ~known));
        word(hex);
    }
    std::printf("\n");
}

void print_query(const ProbeReport& r) {
    if (!r.query_tried) return;
    const QueryReport& q = r.query;
    if (q.error == -EINVAL || q.error == -EBADF) {
        std::printf("\nIORING_REGISTER_QUERY: not in this kernel (%s; it arrived in 6.18)\n",
                    or_unknown(errno_name(-q.error)));
        return;
    }
    if (q.error != 0) {
        std::printf("\nIORING_REGISTER_QUERY: failed (%s)\n", or_unknown(errno_name(-q.error)));
        return;
    }
    std::printf(
        "\nIORING_REGISTER_QUERY: %u request opcodes, %u register opcodes, "
        "%u query opcodes\n",
        q.nr_request_opcodes, q.nr_register_opcodes, q.nr_query_opcodes);
    print_names("features", q.feature_flags, feature_table());
    print_names("setup flags", q.ring_setup_flags, setup_flags_as_flag_info());
    print_names("enter flags", q.enter_flags, enter_flag_table());
    print_names("sqe flags", q.sqe_flags, sqe_flag_table());
}

void print_max_entries(const ProbeReport& r) {
    if (!r.max_entries_tried) return;
    const MaxEntriesReport& m = r.max_entries;
    std::printf("\nLargest ring       ");
    if (m.sq_entries != 0) {
        std::printf("%u SQ / %u CQ entries", m.sq_entries, m.cq_entries);
        if (m.first_error != 0) {
            std::printf(" (%u refused: %s)", kMaxEntriesTried,
                        or_unknown(errno_name(-m.first_error)));
        }
    } else {
        std::printf("none accepted (%s)", or_unknown(errno_name(-m.first_error)));
    }
    std::printf("\nWith SETUP_CLAMP   ");
    if (m.clamp_error == 0) {
        std::printf("%u SQ / %u CQ entries\n", m.clamp_sq_entries, m.clamp_cq_entries);
    } else {
        std::printf("refused (%s)\n", or_unknown(errno_name(-m.clamp_error)));
    }
}

void print_text(const ProbeReport& r) {
    std::printf("luring-probe %s: io_uring on this host\n\n", LURING_VERSION);
    print_host(r);
    if (r.available) {
        print_features(r);
        print_ops(r);
        print_setup_flags(r);
    }
    print_query(r);
    if (r.available) print_max_entries(r);
}

// ---- --check ------------------------------------------------------------------------------

// One name of --check as typed, and its opcode (-1: not a name we know).
struct Check {
    std::string_view text;
    int code;
};

struct CheckList {
    Check items[kMaxChecks];
    std::size_t count = 0;
    std::size_t unknown = 0;
};

// Adds the comma-separated opcodes of `arg`, known or not (unknown names are answered
// with the others). Returns false (after saying why) on an empty list or too many.
bool add_checks(const char* arg, CheckList& list) {
    std::string_view rest(arg);
    bool any = false;
    while (true) {
        const std::size_t comma = rest.find(',');
        const std::string_view name = head(rest, comma);
        if (!name.empty()) {
            if (list.count == kMaxChecks) {
                std::fprintf(stderr, "luring-probe: too many opcodes for --check (at most %zu)\n",
                             kMaxChecks);
                return false;
            }
            const int code = parse_op(name);
            list.items[list.count++] = {name, code < 0 ? -1 : code};
            if (code < 0) ++list.unknown;
            any = true;
        }
        if (comma == std::string_view::npos) break;
        rest.remove_prefix(comma + 1);
    }
    if (!any) std::fprintf(stderr, "luring-probe: --check needs at least one opcode\n");
    return any;
}

enum class Answer { unknown_name, supported, not_supported, cannot_tell };

Answer answer(const ProbeReport& r, const Check& c) {
    if (c.code < 0) return Answer::unknown_name;
    if (!r.available || !r.probe_ok) return Answer::cannot_tell;
    const auto code = static_cast<unsigned>(c.code);
    return code <= r.ops.last_op && r.ops.supported[code] ? Answer::supported
                                                          : Answer::not_supported;
}

// 1 if a name is unknown (the command is wrong, whatever the kernel), else 2 without
// io_uring, 1 if the kernel cannot tell, 3 if an opcode is not supported, 0 otherwise.
int check_status(const ProbeReport& r, const CheckList& list) {
    if (list.unknown != 0) return kExitError;
    if (!r.available) return kExitUnavailable;
    if (!r.probe_ok) return kExitError;
    for (std::size_t i = 0; i < list.count; ++i) {
        if (answer(r, list.items[i]) != Answer::supported) return kExitNotSupported;
    }
    return kExitOk;
}

void print_check_text(const ProbeReport& r, const CheckList& list) {
    if (!r.available) {
        std::printf("io_uring unavailable: %s (%s): %s\n", std::strerror(-r.setup_error),
                    or_unknown(errno_name(-r.setup_error)), r.diagnosis.reason);
    } else if (!r.probe_ok) {
        std::printf("cannot tell: this kernel has no IORING_REGISTER_PROBE (it arrived in 5.6)\n");
    }
    for (std::size_t i = 0; i < list.count; ++i) {
        const Check& c = list.items[i];
        const Answer a = answer(r, c);
        if (a == Answer::unknown_name) {
            std::printf("%.*s: UNKNOWN opcode name (%s)\n", static_cast<int>(c.text.size()),
                        c.text.data(), kNamesHint);
            continue;
        }
        const auto code = static_cast<unsigned>(c.code);
        const OpInfo* info = find_op(code);
        if (a == Answer::supported) {
            std::printf("%s: supported\n", op_label(code).text);
        } else if (a == Answer::not_supported && info != nullptr) {
            std::printf("%s: NOT supported (added in Linux %s)\n", op_label(code).text,
                        info->since);
        } else if (a == Answer::not_supported) {
            std::printf("%s: NOT supported\n", op_label(code).text);
        }
        // cannot_tell: the line above said why, for every name at once.
    }
}

// {"tool", "version", "kernel", "available", "error"... as in the report, "probe",
//  "check": [{"arg", "name", "code", "since", "known", "supported"}], "exit"}.
// supported is null where it cannot be told (unknown name, no io_uring, no probe).
void print_check_json(const ProbeReport& r, const CheckList& list, int status) {
    Json j(stdout);
    j.begin_object();
    j.field("tool", "luring-probe");
    j.field("version", LURING_VERSION);
    j.field("kernel", r.host.kernel);
    j.field("available", r.available);
    if (r.available) {
        j.field_null("error");
        j.field_null("errno");
        j.field_null("errno_name");
        j.field_null("cause");
        j.field_null("reason");
        j.field_null("fix");
    } else {
        j.field("error", std::strerror(-r.setup_error));
        j.field_int("errno", -r.setup_error);
        j.field("errno_name", errno_name(-r.setup_error));
        j.field("cause", cause_name(r.diagnosis.cause));
        j.field("reason", r.diagnosis.reason);
        j.field("fix", r.diagnosis.fix);
    }
    j.key("probe");
    j.begin_object();
    j.field("supported", r.available && r.probe_ok);
    json_errno(j, "errno", r.available ? r.probe_error : 0);
    j.end_object();
    j.key("check");
    j.begin_array();
    for (std::size_t i = 0; i < list.count; ++i) {
        const Check& c = list.items[i];
        const Answer a = answer(r, c);
        char arg[128];
        std::snprintf(arg, sizeof arg, "%.*s", static_cast<int>(c.text.size()), c.text.data());
        j.begin_object();
        j.field("arg", arg);
        if (a == Answer::unknown_name) {
            j.field_null("name");
            j.field_null("code");
            j.field_null("since");
            j.field("known", false);
        } else {
            const auto code = static_cast<unsigned>(c.code);
            const OpInfo* info = find_op(code);
            j.field("name", op_label(code).text);
            j.field_int("code", code);
            j.field("since", info != nullptr ? info->since : nullptr);
            j.field("known", true);
        }
        if (a == Answer::supported || a == Answer::not_supported) {
            j.field("supported", a == Answer::supported);
        } else {
            j.field_null("supported");
        }
        j.end_object();
    }
    j.end_array();
    j.field_int("exit", status);
    j.end_object();
    std::fputc('\n', stdout);
}

int run_check(const CheckList& list, bool json) {
    ProbeOptions options;
    options.setup_flags = false;
    options.query = false;
    options.max_entries = false;
    ProbeReport report;
    gather_report(report, options);
    const int status = check_status(report, list);
    json ? print_check_json(report, list, status) : print_check_text(report, list);
    return status;
}

// Output that could not be written is an error, not a silent success.
int finish(int status) {
    if (std::fflush(stdout) != 0 || std::ferror(stdout) != 0) return kExitError;
    return status;
}

}  // namespace

int main(int argc, char** argv) {
    // A closed pipe becomes a write error (exit 1), not death by SIGPIPE.
    std::signal(SIGPIPE, SIG_IGN);

    bool json = false;
    CheckList checks;
    bool checking = false;
    for (int i = 1; i < argc; ++i) {
        const std::string_view arg(argv[i]);
        if (arg == "--help" || arg == "-h") {
            print_usage(stdout);
            return finish(kExitOk);
        }
        if (arg == "--version") {
            std::printf("luring-probe %s\n", LURING_VERSION);
            return finish(kExitOk);
        }
        if (arg == "--json") {
            json = true;
        } else if (arg == "--check") {
            if (i + 1 >= argc) {
                std::fprintf(stderr, "luring-probe: --check needs a list of opcodes\n");
                return kExitError;
            }
            if (!add_checks(argv[++i], checks)) return kExitError;
            checking = true;
        } else if (head(arg, 8) == "--check=") {
            if (!add_checks(argv[i] + 8, checks)) return kExitError;
            checking = true;
        } else {
            std::fprintf(stderr, "luring-probe: unknown argument '%s'\n", argv[i]);
            print_usage(stderr);
            return kExitError;
        }
    }
    if (checking) return finish(run_check(checks, json));

    ProbeReport report;
    gather_report(report);
    json ? print_json(report) : print_text(report);
    return finish(report.available ? kExitOk : kExitUnavailable);
}
