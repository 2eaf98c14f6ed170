// SPDX-License-Identifier: Apache-2.0
// luring.buffer(size) and its methods: #buf, buf:get([i [, j]]), buf:set(s [, at]).
#include "buffer.hpp"

#include <cstring>

#include "module.hpp"

namespace luring::lua {

namespace {

const char kBufferTag = 0;

// luring.buffer(size) -> a buffer of `size` bytes, zeroed.
int new_buffer(lua_State* L) {
    const lua_Integer size = luaL_checkinteger(L, 1);
    luaL_argcheck(L, size >= 1 && size <= kMaxTransfer, 1,
                  "size must be between 1 and 2147479552");
    auto* b = static_cast<Buffer*>(
        lua_newuserdatauv(L, sizeof(Buffer) + static_cast<std::size_t>(size), 0));
    b->tag = &kBufferTag;
    b->size = static_cast<std::size_t>(size);
    std::memset(b->bytes(), 0, b->size);
    luaL_setmetatable(L, kBufferMeta);
    return 1;
}

// A string.sub-style position: negative counts from the end.
lua_Integer position(lua_Integer i, std::size_t size) {
    if (i < 0) i += static_cast<lua_Integer>(size) + 1;
    return i;
}

// buf:get([i [, j]]) -> bytes i..j as a string (as string.sub: default all, negative
// from the end, clipped to the buffer).
int buffer_get(lua_State* L) {
    Buffer* b = check_buffer(L, 1);
    lua_Integer i = position(luaL_optinteger(L, 2, 1), b->size);
    lua_Integer j = position(luaL_optinteger(L, 3, -1), b->size);
    if (i < 1) i = 1;
    if (j > static_cast<lua_Integer>(b->size)) j = static_cast<lua_Integer>(b->size);
    if (i > j) {
        lua_pushliteral(L, "");
    } else {
        lua_pushlstring(L, b->bytes() + (i - 1), static_cast<std::size_t>(j - i + 1));
    }
    return 1;
}

// buf:set(s [, at]) -> the position after the last byte written: copies s into the
// buffer from position `at` (default 1). Raises if it does not fit.
int buffer_set(lua_State* L) {
    Buffer* b = check_buffer(L, 1);
    std::size_t len = 0;
    const char* s = luaL_checklstring(L, 2, &len);
    const lua_Integer at = luaL_optinteger(L, 3, 1);
    luaL_argcheck(L, at >= 1 && static_cast<std::size_t>(at - 1) <= b->size, 3,
                  "position out of the buffer");
    if (len > b->size - static_cast<std::size_t>(at - 1)) {
        return luaL_error(L, "bad argument #1 to 'set' (%d bytes from position %d do not fit "
                          "in a buffer of %d)", static_cast<int>(len), static_cast<int>(at),
                          static_cast<int>(b->size));
    }
    std::memcpy(b->bytes() + (at - 1), s, len);
    lua_pushinteger(L, at + static_cast<lua_Integer>(len));
    return 1;
}

int buffer_len(lua_State* L) {
    lua_pushinteger(L, static_cast<lua_Integer>(check_buffer(L, 1)->size));
    return 1;
}

int buffer_tostring(lua_State* L) {
    Buffer* b = check_buffer(L, 1);
    lua_pushfstring(L, "luring.Buffer (%d bytes) (%p)", static_cast<int>(b->size),
                    static_cast<const void*>(b));
    return 1;
}

const luaL_Reg kBufferMethods[] = {
    {"get", buffer_get},
    {"set", buffer_set},
    {nullptr, nullptr},
};

}  // namespace

Buffer* to_buffer(lua_State* L, int arg) {
    if (lua_type(L, arg) == LUA_TUSERDATA) {
        const std::size_t len = lua_rawlen(L, arg);
        auto* b = static_cast<Buffer*>(lua_touserdata(L, arg));
        if (len >= sizeof(Buffer) && b->tag == &kBufferTag && len == sizeof(Buffer) + b->size) {
            return b;
        }
    }
    return nullptr;
}

Buffer* check_buffer(lua_State* L, int arg) {
    Buffer* b = to_buffer(L, arg);
    if (b == nullptr) luaL_typeerror(L, arg, kBufferMeta);
    return b;
}

void open_buffer(lua_State* L) {
    luaL_newmetatable(L, kBufferMeta);
    lua_pushcfunction(L, buffer_len);
    lua_setfield(L, -2, "__len");
    lua_pushcfunction(L, buffer_tostring);
    lua_setfield(L, -2, "__tostring");
    luaL_newlib(L, kBufferMethods);
    lua_setfield(L, -2, "__index");
    lua_pop(L, 1);
    lua_pushcfunction(L, new_buffer);
    lua_setfield(L, -2, "buffer");
}

}  // namespace luring::lua
