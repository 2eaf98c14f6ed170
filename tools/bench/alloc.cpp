// SPDX-License-Identifier: Apache-2.0
// bench-alloc: heap allocations per operation in steady state for write, read, recv,
// send, and one op of each newer area (fsync, sendmsg, nop, timeout) through luring,
// counted in both allocators a Lua program has: Lua's (a counting
// lua_Alloc on an embedded interpreter) and the C/C++ one luring.so calls directly
// (malloc and friends interposed here; operator new ends in malloc). The bar: 0 per
// write/send, 1 per read/recv (the result string Lua needs). Exit 1 if it is not met,
// 77 if io_uring is unavailable, so it runs as a test (suite 'alloc') and a benchmark.
//
// Under AddressSanitizer, which owns malloc, interposing is impossible; the count then
// comes from ASan's allocation hook instead, minus the allocations Lua made through it.
#include <sys/socket.h>

#include <cerrno>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <lua.hpp>
#include <string>

#include "bench_config.hpp"

namespace {

// Every allocation that did not come through Lua's allocator. Not atomic: the program
// has one thread, and the kernel's io_uring workers never run our code.
std::uint64_t g_c_allocs = 0;

}  // namespace

#if defined(__SANITIZE_ADDRESS__)

// compiler-rt's allocator_interface.h (not shipped by Debian's GCC, exported by libasan).
extern "C" int __sanitizer_install_malloc_and_free_hooks(void (*malloc_hook)(const volatile void*,
                                                                             std::size_t),
                                                         void (*free_hook)(const volatile void*));

namespace {
constexpr bool kHooked = true;
void on_malloc(const volatile void*, std::size_t) { ++g_c_allocs; }
void on_free(const volatile void*) {}
void* raw_realloc(void* p, std::size_t n) { return std::realloc(p, n); }
void raw_free(void* p) { std::free(p); }
}  // namespace

#else

// glibc's own entry points, so the interposers below (and Lua's allocator) can reach the
// real allocator without counting.
extern "C" {
void* __libc_malloc(std::size_t size);
void* __libc_calloc(std::size_t n, std::size_t size);
void* __libc_realloc(void* p, std::size_t size);
void* __libc_memalign(std::size_t align, std::size_t size);
void __libc_free(void* p);
}

namespace {
constexpr bool kHooked = false;
void* raw_realloc(void* p, std::size_t n) { return __libc_realloc(p, n); }
void raw_free(void* p) { __libc_free(p); }
}  // namespace

// The interposers: the executable's definitions win over libc's for every object,
// luring.so included. free() is not replaced: everything still lives on glibc's heap.
extern "C" {
void* malloc(std::size_t size) {
    ++g_c_allocs;
    return __libc_malloc(size);
}
void* calloc(std::size_t n, std::size_t size) {
    ++g_c_allocs;
    return __libc_calloc(n, size);
}
void* realloc(void* p, std::size_t size) {
    ++g_c_allocs;
    return __libc_realloc(p, size);
}
void* aligned_alloc(std::size_t align, std::size_t size) {
    ++g_c_allocs;
    return __libc_memalign(align, size);
}
void* memalign(std::size_t align, std::size_t size) {
    ++g_c_allocs;
    return __libc_memalign(align, size);
}
int posix_memalign(void** out, std::size_t align, std::size_t size) {
    ++g_c_allocs;
    if (align < sizeof(void*) || (align & (align - 1)) != 0) return EINVAL;
    void* p = __libc_memalign(align, size);
    if (p == nullptr) return ENOMEM;
    *out = p;
    return 0;
}
}

#endif

namespace {

constexpr int kBatch = 32;  // operations per submit, as in the benchmarks
constexpr int kWarmBatches = 512;
constexpr int kMeasureBatches = 2048;

struct LuaCounts {
    std::uint64_t allocs = 0;   // new blocks and resizes
    std::uint64_t strings = 0;  // new blocks that are strings
};

// Lua's allocator, counting. Resizes count as allocations too: they may move the block.
void* counting_alloc(void* ud, void* ptr, std::size_t osize, std::size_t nsize) {
    auto* c = static_cast<LuaCounts*>(ud);
    if (nsize == 0) {
        raw_free(ptr);
        return nullptr;
    }
    ++c->allocs;
    // For a new block, osize is the type of the object being made (lua_Alloc's manual).
    if (ptr == nullptr && (osize == LUA_TSTRING)) ++c->strings;
    return raw_realloc(ptr, nsize);
}

// Sends (or receives) exactly `bytes` bytes on fd, 4 KiB at a time.
int transfer(lua_State* L, bool send, const char* name) {
    static char buf[4096];
    int fd = static_cast<int>(luaL_checkinteger(L, 1));
    lua_Integer left = luaL_checkinteger(L, 2);
    while (left > 0) {
        std::size_t n =
            left < lua_Integer{sizeof(buf)} ? static_cast<std::size_t>(left) : sizeof(buf);
        ssize_t got = send ? ::send(fd, buf, n, 0) : ::recv(fd, buf, n, 0);
        if (got <= 0) return luaL_error(L, "%s: %s", name, std::strerror(errno));
        left -= got;
    }
    return 0;
}

// fill(fd, bytes): writes that many bytes with send(2), for recv to find.
int fill(lua_State* L) { return transfer(L, true, "fill"); }

// drain(fd, bytes): reads exactly that many bytes with recv(2), what send sent.
int drain(lua_State* L) { return transfer(L, false, "drain"); }

struct Row {
    const char* op;
    double bar;
    double lua = 0;
    double strings = 0;
    double c = 0;
};

// Calls workloads[name](batches) under pcall; false (message printed) on error.
bool run(lua_State* L, const char* name, int batches) {
    lua_getfield(L, 2, name);
    lua_pushinteger(L, batches);
    if (lua_pcall(L, 1, 0, 1) != LUA_OK) {
        std::fprintf(stderr, "bench-alloc: %s: %s\n", name, lua_tostring(L, -1));
        lua_pop(L, 1);
        return false;
    }
    return true;
}

int traceback(lua_State* L) {
    luaL_traceback(L, L, lua_tostring(L, 1), 1);
    return 1;
}

}  // namespace

int main(int argc, char** argv) {
    // Where luring.so and alloc.lua are: the build's, unless given.
    const char* module_dir = argc > 1 ? argv[1] : LURING_BENCH_MODULE_DIR;
    const std::string script =
        argc > 2 ? argv[2] : std::string(LURING_BENCH_SCRIPTS) + "/alloc.lua";
#if defined(__SANITIZE_ADDRESS__)
    __sanitizer_install_malloc_and_free_hooks(on_malloc, on_free);
#endif

    LuaCounts lc;
    lua_State* L = lua_newstate(counting_alloc, &lc);
    if (L == nullptr) return 1;
    luaL_openlibs(L);
    lua_pushcfunction(L, traceback);  // index 1: the message handler
    const std::string cpath = std::string(module_dir) + "/?.so";
    lua_getglobal(L, "package");
    lua_pushstring(L, cpath.c_str());
    lua_setfield(L, -2, "cpath");
    lua_pop(L, 1);

    // The script gets its I/O helpers and returns { name = function(batches) }, or
    // nil and a reason to skip.
    if (luaL_loadfile(L, script.c_str()) != LUA_OK) {
        std::fprintf(stderr, "bench-alloc: %s\n", lua_tostring(L, -1));
        return 1;
    }
    int sv[2];
    if (::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) != 0) {
        std::fprintf(stderr, "bench-alloc: socketpair: %s\n", std::strerror(errno));
        return 1;
    }
    lua_createtable(L, 0, 6);
    lua_pushinteger(L, sv[0]);
    lua_setfield(L, -2, "socket_a");
    lua_pushinteger(L, sv[1]);
    lua_setfield(L, -2, "socket_b");
    lua_pushinteger(L, kBatch);
    lua_setfield(L, -2, "batch");
    lua_pushcfunction(L, fill);
    lua_setfield(L, -2, "fill");
    lua_pushcfunction(L, drain);
    lua_setfield(L, -2, "drain");
    if (lua_pcall(L, 1, 2, 1) != LUA_OK) {
        std::fprintf(stderr, "bench-alloc: %s\n", lua_tostring(L, -1));
        return 1;
    }
    if (lua_isnil(L, -2)) {
        std::printf("bench-alloc: skipped: %s\n", lua_tostring(L, -1));
        lua_close(L);
        return 77;
    }
    lua_pop(L, 1);  // index 2: the workloads

    Row rows[] = {{"write", 0}, {"send", 0}, {"read", 1},    {"recv", 1},
                  {"fsync", 0}, {"sendmsg", 0}, {"nop", 0}, {"timeout", 0}};
    bool ok = true;
    bool counter_works = false;
    for (Row& row : rows) {
        const std::uint64_t c_before_warm = g_c_allocs;
        if (!run(L, row.op, kWarmBatches)) return 1;
        // The first requests grow luring's slot table with realloc: seeing that proves
        // the interposer (or hook) catches luring.so's own calls.
        if (g_c_allocs != c_before_warm) counter_works = true;
        lua_getfield(L, 2, row.op);  // looked up before the snapshot
        lua_pushinteger(L, kMeasureBatches);
        const LuaCounts lua0 = lc;
        const std::uint64_t c0 = g_c_allocs;
        if (lua_pcall(L, 1, 0, 1) != LUA_OK) {
            std::fprintf(stderr, "bench-alloc: %s: %s\n", row.op, lua_tostring(L, -1));
            return 1;
        }
        const double ops = double{kMeasureBatches} * kBatch;
        const std::uint64_t lua_allocs = lc.allocs - lua0.allocs;
        std::uint64_t c_allocs = g_c_allocs - c0;
        // ASan's hook also saw every block Lua's allocator asked for.
        if (kHooked) c_allocs = c_allocs >= lua_allocs ? c_allocs - lua_allocs : 0;
        row.lua = static_cast<double>(lua_allocs) / ops;
        row.strings = static_cast<double>(lc.strings - lua0.strings) / ops;
        row.c = static_cast<double>(c_allocs) / ops;
    }
    lua_close(L);

    std::printf("### alloc: heap allocations per operation in steady state\n\n");
    std::printf(
        "%d batches of %d operations after %d warm-up batches, through luring.so in "
        "an embedded Lua 5.4; C/C++ allocations counted by %s.\n\n",
        kMeasureBatches, kBatch, kWarmBatches,
        kHooked ? "AddressSanitizer's malloc hook" : "interposed malloc/calloc/realloc");
    std::printf(
        "| operation | Lua allocator | of which strings | C/C++ allocator | total | bar "
        "| |\n|---|---:|---:|---:|---:|---:|---|\n");
    for (const Row& row : rows) {
        const double total = row.lua + row.c;
        // A whole allocation is 1.0 per op; GC housekeeping may add a few per million.
        const bool met = total < row.bar + 0.01 && total > row.bar - 0.01;
        ok = ok && met;
        std::printf("| %s | %.4f | %.4f | %.4f | %.4f | %.0f | %s |\n", row.op, row.lua,
                    row.strings, row.c, total, row.bar, met ? "ok" : "**FAIL**");
    }
    std::printf("\n");
    if (!counter_works) {
        std::printf("bench-alloc: the C allocator counter saw nothing: not measuring\n");
        return 1;
    }
    return ok ? 0 : 1;
}
