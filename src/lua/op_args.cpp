// SPDX-License-Identifier: Apache-2.0
// Argument checks shared by the ops: each raises "bad argument #n to 'name' (...)".
#include <climits>
#include <cstring>

#include "fixed.hpp"
#include "module.hpp"

namespace luring::lua {

int check_fd(lua_State* L, int arg) {
    int ok = 0;
    lua_Integer fd = lua_tointegerx(L, arg, &ok);
    if (ok == 0) {
        if (to_fixed_file(L, arg) != nullptr) {
            luaL_argerror(L, arg, "a registered file cannot stand in for a descriptor here");
        }
        fd = luaL_checkinteger(L, arg);  // raises, saying what it got
    }
    luaL_argcheck(L, fd >= 0 && fd <= INT_MAX, arg, "file descriptor out of range");
    return static_cast<int>(fd);
}

std::uint64_t check_offset(lua_State* L, int arg) {
    lua_Integer off = luaL_checkinteger(L, arg);
    luaL_argcheck(L, off >= -1, arg, "offset must be >= 0, or -1 for the file position");
    return static_cast<std::uint64_t>(off);  // -1 becomes (u64)-1, the kernel's "current"
}

int check_flags(lua_State* L, int arg) {
    lua_Integer flags = luaL_optinteger(L, arg, 0);
    luaL_argcheck(L, flags >= 0 && flags <= INT_MAX, arg, "flags out of range");
    return static_cast<int>(flags);
}

std::uint32_t check_size(lua_State* L, int arg) {
    lua_Integer size = luaL_checkinteger(L, arg);
    luaL_argcheck(L, size >= 0 && size <= kMaxTransfer, arg,
                  "size must be between 0 and 2147479552");
    return static_cast<std::uint32_t>(size);
}

bool check_callback(lua_State* L, int arg) {
    switch (lua_type(L, arg)) {
        case LUA_TNONE:
        case LUA_TNIL:
            return false;
        case LUA_TFUNCTION:
        case LUA_TTHREAD:  // a coroutine: resumed with the callback's arguments
            return true;
        default:
            if (luaL_getmetafield(L, arg, "__call") != LUA_TNIL) {
                lua_pop(L, 1);
                return true;
            }
            luaL_typeerror(L, arg, "function");
            return false;
    }
}

void check_path(lua_State* L, int arg, OpArgs& a, bool second) {
    std::size_t len = 0;
    const char* path = luaL_checklstring(L, arg, &len);
    luaL_argcheck(L, std::strlen(path) == len, arg, "path contains a NUL byte");
    luaL_argcheck(L, len < 4096, arg, "path is longer than PATH_MAX");
    if (second) {
        a.str2 = path;
        a.str2_len = len;
    } else {
        a.str = path;
        a.str_len = len;
    }
    a.buf += static_cast<std::uint32_t>(len + 1);
}

const char* copy_path(char* buf, std::uint32_t offset, const char* s, std::size_t len) {
    char* out = buf + offset;
    std::memcpy(out, s, len);
    out[len] = '\0';
    return out;
}

lua_Integer check_int_range(lua_State* L, int arg, lua_Integer def, lua_Integer lo,
                            lua_Integer hi, const char* what) {
    if (lua_isnoneornil(L, arg)) return def;
    int ok = 0;
    lua_Integer v = lua_tointegerx(L, arg, &ok);
    if (ok == 0 || v < lo || v > hi) {
        if (ok == 0 && lua_type(L, arg) != LUA_TNUMBER) luaL_typeerror(L, arg, "integer");
        luaL_argerror(L, arg, what);
    }
    return v;
}

uring::KernelTimespec check_seconds(lua_State* L, int arg) {
    double t = luaL_checknumber(L, arg);
    luaL_argcheck(L, t >= 0 && t < 1e15, arg, "seconds must be a number >= 0");
    // t >= 0: truncating is flooring, with no libm call (see to_timespec in loop.cpp).
    uring::KernelTimespec ts{};
    ts.tv_sec = static_cast<std::int64_t>(t);
    ts.tv_nsec = static_cast<std::int64_t>((t - static_cast<double>(ts.tv_sec)) * 1e9);
    if (ts.tv_nsec > 999'999'999) ts.tv_nsec = 999'999'999;
    return ts;
}

void check_output(lua_State* L, int arg, OpArgs& a) {
    a.str = luaL_checklstring(L, arg, &a.str_len);
    if (a.str_len <= kCopyMax) {
        a.buf += static_cast<std::uint32_t>(a.str_len);
    } else {
        a.pin = arg;
    }
    if (a.str_len > static_cast<std::size_t>(kMaxTransfer)) a.str_len = kMaxTransfer;
}

const char* output_bytes(const OpArgs& a, char* copy) {
    if (a.pin != 0) return a.str;
    std::memcpy(copy, a.str, a.str_len);
    return copy;
}

}  // namespace luring::lua
