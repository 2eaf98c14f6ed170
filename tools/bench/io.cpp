// SPDX-License-Identifier: Apache-2.0
// bench-io: one measurement of one C/C++ workload, printed as a RESULT line for
// bench-run (which interleaves and summarises). Run by hand, e.g.:
//   bench-io read-4k --impl liburing --batch 32 --file /tmp/read-4k.dat
#include <cerrno>
#include <cstdlib>
#include <string>
#include <string_view>

#include "bench_config.hpp"
#include "loops.hpp"

namespace {

using namespace luring::bench;

constexpr const char* kUsage =
    "Usage: bench-io WORKLOAD --impl IMPL [options]\n"
    "  WORKLOAD  nop | write-small | read-4k | ping-pong\n"
    "  IMPL      core (luring::uring::Ring) | liburing | syscall (not for nop)\n"
    "  --batch N         operations per submit (default 32; nop, write-small, read-4k)\n"
    "  --file PATH       read-4k's 64 MiB data file (created if missing)\n"
    "  --transport T     ping-pong over unix (socketpair, the default) or tcp (loopback)\n"
    "  --seconds S       measured time (default 0.25)\n"
    "  --warmup S        unmeasured time first (default 0.05)\n"
    "  --ops N           exactly N operations, no warm-up (for callgrind)\n"
    "  --entries N       ring size (default 256)\n"
    "  --setup-flags N   IORING_SETUP_* flags for the ring (default 0)\n"
    "Prints: RESULT ops=N seconds=S ops_per_sec=R. Exit 77: io_uring or liburing missing.\n";

int usage_error(const char* what) {
    std::fprintf(stderr, "bench-io: %s\n%s", what, kUsage);
    return 2;
}

LoopFn pick(std::string_view workload, std::string_view impl) {
    struct Entry {
        const char* workload;
        const char* impl;
        LoopFn fn;
    };
    static const Entry table[] = {
        {"nop", "core", core_nop},
        {"write-small", "core", core_write},
        {"read-4k", "core", core_read},
        {"ping-pong", "core", core_pingpong},
#if LURING_BENCH_HAVE_LIBURING
        {"nop", "liburing", liburing_nop},
        {"write-small", "liburing", liburing_write},
        {"read-4k", "liburing", liburing_read},
        {"ping-pong", "liburing", liburing_pingpong},
#endif
        {"write-small", "syscall", syscall_write},
        {"read-4k", "syscall", syscall_read},
        {"ping-pong", "syscall", syscall_pingpong},
    };
    for (const Entry& e : table) {
        if (workload == e.workload && impl == e.impl) return e.fn;
    }
    return nullptr;
}

}  // namespace

int main(int argc, char** argv) {
    if (argc < 2) return usage_error("no workload");
    std::string_view workload = argv[1];
    if (workload == "--help" || workload == "-h") {
        std::fputs(kUsage, stdout);
        return 0;
    }
    std::string impl;
    std::string file = "read-4k.dat";
    std::string transport = "unix";
    Workload w;
    RunSpec spec;
    for (int i = 2; i < argc; ++i) {
        std::string_view opt = argv[i];
        if (i + 1 >= argc) return usage_error("option without a value");
        const char* val = argv[++i];
        if (opt == "--impl") {
            impl = val;
        } else if (opt == "--batch") {
            w.batch = static_cast<unsigned>(std::strtoul(val, nullptr, 10));
        } else if (opt == "--file") {
            file = val;
        } else if (opt == "--transport") {
            transport = val;
        } else if (opt == "--seconds") {
            spec.seconds = std::strtod(val, nullptr);
        } else if (opt == "--warmup") {
            spec.warmup = std::strtod(val, nullptr);
        } else if (opt == "--ops") {
            spec.ops = std::strtoull(val, nullptr, 10);
        } else if (opt == "--entries") {
            w.entries = static_cast<std::uint32_t>(std::strtoul(val, nullptr, 10));
        } else if (opt == "--setup-flags") {
            w.setup_flags = static_cast<std::uint32_t>(std::strtoul(val, nullptr, 0));
        } else {
            return usage_error("unknown option");
        }
    }
    if (w.batch < 1 || w.batch > 256 || w.batch > w.entries) {
        return usage_error("--batch must be 1..256 and at most --entries");
    }
    if (transport != "unix" && transport != "tcp") return usage_error("bad --transport");
    LoopFn fn = pick(workload, impl);
    if (fn == nullptr) {
        if (impl == "liburing" && !LURING_BENCH_HAVE_LIBURING) {
            std::fprintf(stderr, "bench-io: built without liburing\n");
            return 77;
        }
        return usage_error("unknown workload or implementation");
    }

    std::vector<std::uint64_t> offsets;
    if (workload == "write-small") {
        w.fd = ::open("/dev/null", O_WRONLY | O_CLOEXEC);
    } else if (workload == "read-4k") {
        if (int ret = ensure_data_file(file.c_str(), false); ret < 0) {
            std::fprintf(stderr, "bench-io: %s: %s\n", file.c_str(), std::strerror(-ret));
            return 1;
        }
        w.fd = ::open(file.c_str(), O_RDONLY | O_CLOEXEC);
        offsets = make_offsets();
        w.offsets = offsets.data();
    } else if (workload == "ping-pong") {
        int fds[2];
        if (int ret = make_socket_pair(transport == "tcp", fds); ret < 0) {
            std::fprintf(stderr, "bench-io: socket pair: %s\n", std::strerror(-ret));
            return 1;
        }
        w.fd = fds[0];
        w.peer_fd = fds[1];
    }
    if (workload != "nop" && w.fd < 0) {
        std::fprintf(stderr, "bench-io: open: %s\n", std::strerror(errno));
        return 1;
    }

    Result r;
    int ret = fn(w, spec, r);
    if (ret == -ENOSYS || ret == -EPERM) {
        std::fprintf(stderr, "bench-io: io_uring unavailable: %s\n", std::strerror(-ret));
        return 77;
    }
    if (ret < 0) {
        std::fprintf(stderr, "bench-io: %s/%s failed: %s\n", std::string(workload).c_str(),
                     impl.c_str(), std::strerror(-ret));
        return 1;
    }
    print_result(r);
    return 0;
}
