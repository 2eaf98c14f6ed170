// SPDX-License-Identifier: Apache-2.0
// bench-run: runs the workload implementations (bench-io for C/C++, the Lua scripts
// under the stock interpreter) as child processes, interleaved round by round, and
// prints one Markdown table per workload: median rate, spread, and the ratio to C on
// liburing measured in the same rounds. `bench-run all` also runs bench-nop and
// bench-alloc and prints the machine first: that output is tools/bench/RESULTS.md.
#include <fcntl.h>
#include <sched.h>
#include <spawn.h>
#include <sys/utsname.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <ctime>
#include <fstream>
#include <string>
#include <vector>

#include "bench.hpp"
#include "bench_config.hpp"
#include "stats.hpp"

extern char** environ;

namespace {

using namespace luring::bench;

#if defined(__clang__)
constexpr const char* kCompiler = "clang " __clang_version__;
#else
constexpr const char* kCompiler = "g++ " __VERSION__;
#endif

constexpr const char* kUsage =
    "Usage: bench-run [--quick] [--rounds N] [--seconds S] [--warmup S] [--setup-flags N]\n"
    "                 [--file PATH] [WORKLOAD...]\n"
    "  WORKLOAD  write-small | read-4k | read-4k-depth | ping-pong-unix | ping-pong-tcp |\n"
    "            setup-flags | coroutines | nop | alloc | all (the default: the machine,\n"
    "            then every one of these)\n"
    "Environment: LURING_BENCH_QUICK=1 is --quick (3 short rounds, for smoke runs).\n";

// What one child printed and how it ended.
struct Outcome {
    int status = 1;  // exit status; 77 means skipped
    double rate = 0;
    std::string output;
};

// Runs argv with stdout captured (stderr passes through) and waits for it. With
// `want_result`, a run that printed no RESULT line counts as failed.
Outcome spawn(const std::vector<std::string>& args, bool want_result) {
    Outcome out;
    int pipefd[2];
    if (::pipe2(pipefd, O_CLOEXEC) != 0) return out;
    posix_spawn_file_actions_t fa;
    posix_spawn_file_actions_init(&fa);
    posix_spawn_file_actions_adddup2(&fa, pipefd[1], STDOUT_FILENO);
    std::vector<char*> argv;
    for (const std::string& a : args) argv.push_back(const_cast<char*>(a.c_str()));
    argv.push_back(nullptr);
    pid_t pid = -1;
    int err = posix_spawn(&pid, argv[0], &fa, nullptr, argv.data(), environ);
    posix_spawn_file_actions_destroy(&fa);
    ::close(pipefd[1]);
    if (err != 0) {
        std::fprintf(stderr, "bench-run: cannot run %s: %s\n", argv[0], std::strerror(err));
        ::close(pipefd[0]);
        return out;
    }
    char buf[4096];
    ssize_t n;
    while ((n = ::read(pipefd[0], buf, sizeof(buf))) > 0 || (n < 0 && errno == EINTR)) {
        if (n > 0) out.output.append(buf, static_cast<std::size_t>(n));
    }
    ::close(pipefd[0]);
    int ws = 0;
    while (::waitpid(pid, &ws, 0) < 0 && errno == EINTR) {
    }
    out.status = WIFEXITED(ws) ? WEXITSTATUS(ws) : 128 + WTERMSIG(ws);
    if (out.status == 0 && want_result) {
        std::size_t at = out.output.find("RESULT ");
        unsigned long long ops = 0;
        double secs = 0;
        if (at == std::string::npos ||
            std::sscanf(out.output.c_str() + at, "RESULT ops=%llu seconds=%lf", &ops, &secs) != 2 ||
            secs <= 0) {
            out.status = 1;
        } else {
            out.rate = static_cast<double>(ops) / secs;
        }
    }
    return out;
}

struct Options {
    Plan plan;
    std::uint32_t setup_flags = 0;
    std::string file = LURING_BENCH_DATA_FILE;
    bool failed = false;
    bool measured = false;  // false at the end: everything was skipped (exit 77)
};

// One row of a table: its cell and the command that measures it.
struct Entry {
    Cell cell;
    std::vector<std::string> argv;
};

std::vector<std::string> common_args(const Options& o) {
    return {"--seconds",     fixed(o.plan.seconds, 3),     "--warmup", fixed(o.plan.warmup, 3),
            "--setup-flags", std::to_string(o.setup_flags)};
}

Entry c_entry(const Options& o, const std::string& group, const std::string& label,
              const char* workload, const char* impl, std::vector<std::string> extra) {
    Entry e;
    e.cell.group = group;
    e.cell.impl = label;
    e.argv = {std::string(LURING_BENCH_BUILD_DIR) + "/bench-io", workload, "--impl", impl};
    e.argv.insert(e.argv.end(), extra.begin(), extra.end());
    for (auto& a : common_args(o)) e.argv.push_back(a);
    return e;
}

Entry lua_entry(const Options& o, const std::string& group, const std::string& label,
                const char* script, const char* impl, std::vector<std::string> extra) {
    Entry e;
    e.cell.group = group;
    e.cell.impl = label;
    e.cell.available = *LURING_BENCH_LUA != '\0';
    e.argv = {LURING_BENCH_LUA, std::string(LURING_BENCH_SCRIPTS) + "/" + script, "--impl", impl};
    e.argv.insert(e.argv.end(), extra.begin(), extra.end());
    for (auto& a : common_args(o)) e.argv.push_back(a);
    return e;
}

const char* liburing_label() { return "C, liburing " LURING_BENCH_LIBURING_VERSION; }

// The C-on-liburing entry is the baseline; without liburing the core takes its place.
void add_floor(std::vector<Entry>& rows, const Options& o, const std::string& group,
               const char* workload, std::vector<std::string> extra) {
    if (LURING_BENCH_HAVE_LIBURING) {
        rows.push_back(c_entry(o, group, liburing_label(), workload, "liburing", extra));
        rows.back().cell.baseline = true;
    }
    rows.push_back(c_entry(o, group, "C++, luring core", workload, "core", extra));
    if (!LURING_BENCH_HAVE_LIBURING) rows.back().cell.baseline = true;
}

const char* baseline_name() {
    return LURING_BENCH_HAVE_LIBURING ? "C liburing" : "C++ core (liburing not found)";
}

// Measures every row, interleaved, and prints the table.
void run_table(Options& o, const char* title, const char* what, const char* group_title,
               const char* unit, std::vector<Entry> rows, const char* baseline = nullptr) {
    for (int round = 0; round < o.plan.rounds; ++round) {
        for (std::size_t k : round_order(rows.size(), round)) {
            Cell& c = rows[k].cell;
            if (!c.available) continue;
            Outcome r = spawn(rows[k].argv, true);
            if (r.status == 77) {
                c.available = false;  // not installed here: n/a, not a failure
            } else if (r.status != 0) {
                std::fprintf(stderr, "bench-run: %s / %s failed (exit %d)\n", title, c.impl.c_str(),
                             r.status);
                c.available = false;
                o.failed = true;
            } else {
                c.rates.push_back(r.rate);
                o.measured = true;
            }
        }
    }
    std::vector<Cell> cells;
    for (Entry& e : rows) cells.push_back(std::move(e.cell));
    std::string flags;
    if (o.setup_flags != 0) {
        flags = "; every ring set up with flags " + std::to_string(o.setup_flags);
    }
    std::printf("### %s\n\n%s; %s%s.\n\n", title, what, o.plan.describe().c_str(), flags.c_str());
    print_table(cells, group_title, baseline != nullptr ? baseline : baseline_name(), unit);
    std::printf("\n");
}

// The read workloads' 64 MiB file, made and read into the page cache if needed. False
// (with the run marked failed) when it cannot be.
bool have_data_file(Options& o) {
    if (int ret = ensure_data_file(o.file.c_str(), true); ret < 0) {
        std::fprintf(stderr, "bench-run: %s: %s\n", o.file.c_str(), std::strerror(-ret));
        o.failed = true;
        return false;
    }
    return true;
}

void write_small(Options& o) {
    std::vector<Entry> rows;
    const std::vector<std::string> b32 = {"--batch", "32"};
    add_floor(rows, o, "", "write-small", b32);
    rows.push_back(lua_entry(o, "", "Lua, luring", "write_small.lua", "luring", b32));
    rows.push_back(c_entry(o, "", "C, write(2) each", "write-small", "syscall", b32));
    rows.push_back(lua_entry(o, "", "Lua, io (unbuffered)", "write_small.lua", "io", b32));
    rows.push_back(lua_entry(o, "", "Lua, luv fs_write sync", "write_small.lua", "luv-sync", b32));
    rows.push_back(
        lua_entry(o, "", "Lua, luv fs_write async ×32", "write_small.lua", "luv-async", b32));
    run_table(o, "write-small",
              "64-byte writes to /dev/null, 32 per submit (one write(2) each for the plain "
              "calls, 32 thread-pool requests per loop run for luv async)",
              "", "write", rows);
}

void read_4k(Options& o) {
    if (!have_data_file(o)) return;
    std::vector<Entry> rows;
    const std::vector<std::string> args = {"--batch", "32", "--file", o.file};
    add_floor(rows, o, "", "read-4k", args);
    rows.push_back(lua_entry(o, "", "Lua, luring", "read_4k.lua", "luring", args));
    rows.push_back(c_entry(o, "", "C, pread(2) each", "read-4k", "syscall", args));
    rows.push_back(lua_entry(o, "", "Lua, io seek+read", "read_4k.lua", "io", args));
    rows.push_back(lua_entry(o, "", "Lua, luv fs_read sync", "read_4k.lua", "luv-sync", args));
    rows.push_back(
        lua_entry(o, "", "Lua, luv fs_read async ×32", "read_4k.lua", "luv-async", args));
    run_table(o, "read-4k",
              "random 4 KiB reads from a 64 MiB file in the page cache, 32 per submit", "", "read",
              rows);
}

void read_4k_depth(Options& o) {
    if (!have_data_file(o)) return;
    std::vector<Entry> rows;
    for (const char* depth : {"1", "8", "64", "256"}) {
        const std::vector<std::string> args = {"--batch", depth, "--file", o.file};
        add_floor(rows, o, depth, "read-4k", args);
        rows.push_back(lua_entry(o, depth, "Lua, luring", "read_4k.lua", "luring", args));
        rows.push_back(
            lua_entry(o, depth, "Lua, luv fs_read async", "read_4k.lua", "luv-async", args));
    }
    run_table(o, "read-4k depth sweep",
              "read-4k with depth reads queued per submit (luv: depth requests per loop run)",
              "depth", "read", rows);
}

void ping_pong(Options& o, const char* transport) {
    std::vector<Entry> rows;
    const std::vector<std::string> args = {"--transport", transport};
    add_floor(rows, o, "", "ping-pong", args);
    rows.push_back(lua_entry(o, "", "Lua, luring", "ping_pong.lua", "luring", args));
    rows.push_back(c_entry(o, "", "C, send/recv(2)", "ping-pong", "syscall", args));
    rows.push_back(lua_entry(o, "", "Lua, luv streams", "ping_pong.lua", "luv", args));
    rows.push_back(
        lua_entry(o, "", "Lua, LuaSocket (blocking)", "ping_pong.lua", "luasocket", args));
    const bool tcp = std::strcmp(transport, "tcp") == 0;
    run_table(o, tcp ? "ping-pong, loopback TCP" : "ping-pong, AF_UNIX socketpair",
              tcp ? "one 64-byte message there and back over 127.0.0.1 (TCP_NODELAY), one "
                    "thread holding both ends; an op is a round trip"
                  : "one 64-byte message there and back over a socketpair, one thread "
                    "holding both ends; an op is a round trip",
              "", "round trip", rows);
}

// bench-nop and bench-alloc print their own tables.
void run_program(Options& o, const char* name, bool with_plan) {
    std::vector<std::string> args = {std::string(LURING_BENCH_BUILD_DIR) + "/" + name};
    if (with_plan) {
        if (o.plan.quick) args.emplace_back("--quick");
        for (auto& a :
             {std::string("--rounds"), std::to_string(o.plan.rounds), std::string("--seconds"),
              fixed(o.plan.seconds, 3), std::string("--warmup"), fixed(o.plan.warmup, 3),
              std::string("--setup-flags"), std::to_string(o.setup_flags)}) {
            args.push_back(a);
        }
    }
    Outcome r = spawn(args, false);
    std::fputs(r.output.c_str(), stdout);
    std::fflush(stdout);
    if (r.status == 0) o.measured = true;
    // 77: io_uring or Lua missing. bench-alloc exits 1 when the bar is not met.
    if (r.status != 0 && r.status != 77) {
        std::fprintf(stderr, "bench-run: %s failed (exit %d)\n", name, r.status);
        o.failed = true;
    }
}

void nop(Options& o) { run_program(o, "bench-nop", true); }
void alloc(Options& o) { run_program(o, "bench-alloc", false); }
// What the faster ring modes give: the Lua workloads with luring's rings set up with each
// combination of the task-work flags, against C on liburing with default rings.
void setup_flags(Options& o) {
    if (!have_data_file(o)) return;
    struct Mode {
        const char* name;
        std::uint32_t flags;  // IORING_SETUP_*
    };
    constexpr Mode kModes[] = {
        {"default", 0},
        {"SINGLE_ISSUER|DEFER_TASKRUN", 0x1000 | 0x2000},
        {"SINGLE_ISSUER|DEFER_TASKRUN|TASKRUN_FLAG", 0x1000 | 0x2000 | 0x200},
        {"COOP_TASKRUN|TASKRUN_FLAG", 0x100 | 0x200},
        {"SINGLE_ISSUER|COOP_TASKRUN", 0x1000 | 0x100},
    };
    struct Workload {
        const char* group;
        const char* c_name;
        const char* script;
        std::vector<std::string> args;
    };
    const Workload workloads[] = {
        {"write-small", "write-small", "write_small.lua", {"--batch", "32"}},
        {"read-4k", "read-4k", "read_4k.lua", {"--batch", "32", "--file", o.file}},
        {"ping-pong unix", "ping-pong", "ping_pong.lua", {"--transport", "unix"}},
    };
    std::vector<Entry> rows;
    Options base = o;
    base.setup_flags = 0;
    for (const Workload& w : workloads) {
        add_floor(rows, base, w.group, w.c_name, w.args);
        for (const Mode& m : kModes) {
            Options with = o;
            with.setup_flags = m.flags;
            rows.push_back(lua_entry(with, w.group, std::string("Lua, luring, ") + m.name,
                                     w.script, "luring", w.args));
        }
    }
    run_table(base, "ring setup flags",
              "write-small, read-4k and ping-pong (unix) through luring rings set up with "
              "each task-work mode (queue_init's flags), C rings with none",
              "workload", "op", rows);
}

// The coroutine layer against the callback API it is built on: the same workloads as
// tasks of luring.async (write_at, read_at, LuaSocket-style send/receive). The ratio is
// to the callback form of the same workload, measured in the same round.
void coroutines(Options& o) {
    if (!have_data_file(o)) return;
    struct Workload {
        const char* group;
        const char* script;
        std::vector<std::string> args;
    };
    const Workload workloads[] = {
        {"write-small", "write_small.lua", {"--batch", "32"}},
        {"read-4k", "read_4k.lua", {"--batch", "32", "--file", o.file}},
        {"ping-pong unix", "ping_pong.lua", {"--transport", "unix"}},
    };
    std::vector<Entry> rows;
    for (const Workload& w : workloads) {
        rows.push_back(lua_entry(o, w.group, "Lua, luring callbacks", w.script, "luring", w.args));
        rows.back().cell.baseline = true;
        // The tasks queue each recv as soon as their last send completed, before the
        // peer's send that brings its data; the callback loop above queues it behind that
        // send, so it finds the data at submission. This row makes the tasks' requests in
        // their order, and luring.async's ring moves a round's receives after its sends
        // (async.run's receives_last), measured on and off.
        const bool ping = std::string(w.script) == "ping_pong.lua";
        if (ping) {
            rows.push_back(lua_entry(o, w.group, "Lua, luring callbacks, the tasks' order",
                                     w.script, "luring-echo", w.args));
        }
        rows.push_back(lua_entry(o, w.group, "Lua, luring.async tasks", w.script, "async", w.args));
        if (ping) {
            std::vector<std::string> off = w.args;
            off.insert(off.end(), {"--receives-last", "off"});
            rows.push_back(lua_entry(o, w.group, "Lua, luring.async tasks, receives_last off",
                                     w.script, "async", off));
        }
    }
    run_table(o, "coroutines",
              "the callback form against luring.async tasks (32 tasks for write-small and "
              "read-4k, one task per end for ping-pong; ping-pong also with callbacks "
              "making their requests in the tasks' order, and with the tasks' receives "
              "left in that order)",
              "workload", "op", rows, "callbacks");
}

void ping_pong_unix(Options& o) { ping_pong(o, "unix"); }
void ping_pong_tcp(Options& o) { ping_pong(o, "tcp"); }

// The workloads in the order `all` runs them.
struct Step {
    const char* name;
    void (*run)(Options&);
};
constexpr Step kSteps[] = {
    {"nop", nop},
    {"write-small", write_small},
    {"read-4k", read_4k},
    {"read-4k-depth", read_4k_depth},
    {"ping-pong-unix", ping_pong_unix},
    {"ping-pong-tcp", ping_pong_tcp},
    {"setup-flags", setup_flags},
    {"coroutines", coroutines},
    {"alloc", alloc},
};

// A version string printed by the interpreter, or "not installed".
std::string lua_probe(const char* code) {
    if (*LURING_BENCH_LUA == '\0') return "not installed";
    Outcome r = spawn({LURING_BENCH_LUA, "-e", code}, false);
    std::string s = r.output;
    while (!s.empty() && (s.back() == '\n' || s.back() == ' ')) s.pop_back();
    return s.empty() ? "not installed" : s;
}

void print_machine(const Options& o) {
    char date[64];
    std::time_t t = std::time(nullptr);
    std::strftime(date, sizeof(date), "%Y-%m-%d %H:%M UTC", std::gmtime(&t));
    utsname u{};
    ::uname(&u);
    cpu_set_t set;
    CPU_ZERO(&set);
    int cpus = sched_getaffinity(0, sizeof(set), &set) == 0 ? CPU_COUNT(&set) : 0;
    std::string model = "unknown";
    std::ifstream cpuinfo("/proc/cpuinfo");
    for (std::string line; std::getline(cpuinfo, line);) {
        if (line.rfind("model name", 0) == 0) {
            model = line.substr(line.find(':') + 2);
            break;
        }
    }
    std::printf("## luring benchmarks\n\n");
    std::printf("- date: %s\n", date);
    std::printf("- machine: %d CPUs (nproc), %s, Linux %s %s\n", cpus, model.c_str(), u.release,
                u.machine);
    std::printf("- build: buildtype %s, %s; liburing %s\n", LURING_BENCH_BUILDTYPE, kCompiler,
                LURING_BENCH_HAVE_LIBURING ? LURING_BENCH_LIBURING_VERSION : "not found");
    const std::string lua = lua_probe("io.write(_VERSION)");
    const std::string luv = lua_probe(
        "local ok, m = pcall(require, 'luv') if ok then io.write(m.version_string()) end");
    const std::string socket =
        lua_probe("local ok, m = pcall(require, 'socket') if ok then io.write(m._VERSION) end");
    std::printf("- Lua: %s; luv: %s; LuaSocket: %s\n", lua.c_str(), luv.c_str(), socket.c_str());
    std::printf(
        "- plan: %s%s\n\n", o.plan.describe().c_str(),
        o.setup_flags != 0 ? ("; setup flags " + std::to_string(o.setup_flags)).c_str() : "");
}

}  // namespace

int main(int argc, char** argv) {
    Options o;
    std::vector<std::string> workloads;
    for (int i = 1; i < argc; ++i) {
        std::string_view a = argv[i];
        if (o.plan.parse(argc, argv, i)) continue;
        if (a == "--help" || a == "-h") {
            std::fputs(kUsage, stdout);
            return 0;
        }
        if (a == "--setup-flags" && i + 1 < argc) {
            o.setup_flags = static_cast<std::uint32_t>(std::strtoul(argv[++i], nullptr, 0));
        } else if (a == "--file" && i + 1 < argc) {
            o.file = argv[++i];
        } else if (!a.empty() && a[0] != '-') {
            workloads.emplace_back(a);
        } else {
            std::fprintf(stderr, "bench-run: unknown option %s\n%s", argv[i], kUsage);
            return 2;
        }
    }
    if (workloads.empty()) workloads = {"all"};

    // The children find luring.so, luring_bench.so and bench.lua through these.
    std::string cpath =
        std::string(LURING_BENCH_MODULE_DIR) + "/?.so;" + LURING_BENCH_BUILD_DIR + "/?.so;;";
    std::string path = std::string(LURING_BENCH_SCRIPTS) + "/?.lua;" + LURING_BENCH_LUA_LAYER +
                       "/?.lua;;";
    ::setenv("LUA_CPATH", cpath.c_str(), 1);
    ::setenv("LUA_PATH", path.c_str(), 1);

    for (const std::string& w : workloads) {
        if (w == "all") {
            print_machine(o);
            for (const Step& s : kSteps) s.run(o);
            continue;
        }
        const Step* step = nullptr;
        for (const Step& s : kSteps) {
            if (w == s.name) step = &s;
        }
        if (step == nullptr) {
            std::fprintf(stderr, "bench-run: unknown workload %s\n%s", w.c_str(), kUsage);
            return 2;
        }
        step->run(o);
    }
    if (o.failed) return 1;
    return o.measured ? 0 : 77;  // no io_uring here: meson reports the benchmark skipped
}
