// SPDX-License-Identifier: Apache-2.0
// luring_bench: what the Lua benchmark scripts need and stock Lua lacks: a monotonic
// clock, connected socket pairs (luring has no socket() or connect()), and the read-4k
// data file. It shares bench.hpp with the C++ drivers, so every implementation uses the
// same sockets (same options) and the same file.
#include <lua.hpp>

#include "bench.hpp"

namespace {

using namespace luring::bench;

// luring_bench.now() -> seconds (CLOCK_MONOTONIC), a float.
int now_(lua_State* L) {
    lua_pushnumber(L, now());
    return 1;
}

// luring_bench.socket_pair("unix" | "tcp") -> fd_a, fd_b | nil, message
int socket_pair(lua_State* L) {
    static const char* const kinds[] = {"unix", "tcp", nullptr};
    const bool tcp = luaL_checkoption(L, 1, "unix", kinds) == 1;
    int fds[2];
    if (int ret = make_socket_pair(tcp, fds); ret < 0) {
        luaL_pushfail(L);
        lua_pushstring(L, std::strerror(-ret));
        return 2;
    }
    lua_pushinteger(L, fds[0]);
    lua_pushinteger(L, fds[1]);
    return 2;
}

// luring_bench.data_file(path [, preload]) -> true | nil, message
int data_file(lua_State* L) {
    const char* path = luaL_checkstring(L, 1);
    if (int ret = ensure_data_file(path, lua_toboolean(L, 2) != 0); ret < 0) {
        luaL_pushfail(L);
        lua_pushfstring(L, "%s: %s", path, std::strerror(-ret));
        return 2;
    }
    lua_pushboolean(L, 1);
    return 1;
}

// luring_bench.close(fd)
int close_(lua_State* L) {
    ::close(static_cast<int>(luaL_checkinteger(L, 1)));
    return 0;
}

const luaL_Reg kFunctions[] = {
    {"now", now_},     {"socket_pair", socket_pair}, {"data_file", data_file},
    {"close", close_}, {nullptr, nullptr},
};

}  // namespace

extern "C" __attribute__((visibility("default"))) int luaopen_luring_bench(lua_State* L) {
    luaL_newlib(L, kFunctions);
    lua_pushinteger(L, static_cast<lua_Integer>(kFileSize));
    lua_setfield(L, -2, "file_size");
    return 1;
}
