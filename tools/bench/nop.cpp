// SPDX-License-Identifier: Apache-2.0
// bench-nop: NOP throughput through the luring core and through liburing, in one process,
// interleaved, at batch sizes 1, 32 and 256. What it measures is the cost of the ring
// protocol itself (SQE handout, tail publish, enter, CQE copy-out and head release),
// since a NOP does no work in the kernel. Prints a Markdown table.
#include <cerrno>
#include <cstring>

#include "bench_config.hpp"
#include "loops.hpp"
#include "stats.hpp"

namespace {

using namespace luring::bench;

constexpr unsigned kBatches[] = {1, 32, 256};

int usage() {
    std::fputs(
        "Usage: bench-nop [--quick] [--rounds N] [--seconds S] [--warmup S]\n"
        "                 [--setup-flags N]\n"
        "Environment: LURING_BENCH_QUICK=1 is --quick. Exit 77: no io_uring.\n",
        stderr);
    return 2;
}

}  // namespace

int main(int argc, char** argv) {
    Plan plan;
    std::uint32_t setup_flags = 0;
    for (int i = 1; i < argc; ++i) {
        if (plan.parse(argc, argv, i)) continue;
        if (std::strcmp(argv[i], "--setup-flags") == 0 && i + 1 < argc) {
            setup_flags = static_cast<std::uint32_t>(std::strtoul(argv[++i], nullptr, 0));
            continue;
        }
        return usage();
    }

    struct Impl {
        const char* name;
        LoopFn fn;
    };
    std::vector<Impl> impls = {{"luring core", core_nop}};
#if LURING_BENCH_HAVE_LIBURING
    impls.insert(impls.begin(), Impl{"liburing " LURING_BENCH_LIBURING_VERSION, liburing_nop});
#endif
    std::vector<Cell> cells;
    std::vector<LoopFn> fns;
    for (unsigned batch : kBatches) {
        for (const Impl& impl : impls) {
            Cell c;
            c.group = std::to_string(batch);
            c.impl = impl.name;
            c.baseline = impl.fn != core_nop || impls.size() == 1;
            cells.push_back(c);
            fns.push_back(impl.fn);
        }
    }

    const RunSpec spec{plan.warmup, plan.seconds, 0};
    for (int round = 0; round < plan.rounds; ++round) {
        for (std::size_t k : round_order(cells.size(), round)) {
            Workload w;
            w.batch = static_cast<unsigned>(std::stoul(cells[k].group));
            w.setup_flags = setup_flags;
            Result r;
            int ret = fns[k](w, spec, r);
            if (ret == -ENOSYS || ret == -EPERM) {
                std::printf("bench-nop: io_uring unavailable (%s)\n", std::strerror(-ret));
                return 77;
            }
            if (ret < 0) {
                std::fprintf(stderr, "bench-nop: %s batch %s: %s\n", cells[k].impl.c_str(),
                             cells[k].group.c_str(), std::strerror(-ret));
                return 1;
            }
            cells[k].rates.push_back(static_cast<double>(r.ops) / r.seconds);
        }
    }

    std::printf("### nop: ring protocol cost, C++ (core) vs C (liburing)\n\n");
    std::printf(
        "One submit_and_wait per batch of NOPs, then every CQE consumed; %s.%s\n\n",
        plan.describe().c_str(),
        setup_flags != 0 ? (" Setup flags " + std::to_string(setup_flags) + ".").c_str() : "");
    const char* base = LURING_BENCH_HAVE_LIBURING ? "liburing" : "core (no liburing found)";
    print_table(cells, "batch", base, "op");
    std::printf("\n");
    return 0;
}
