// SPDX-License-Identifier: Apache-2.0
// luring.buffer(size): a fixed-size block of bytes that requests read into and write
// from (read_into, write_from, recv_into, send_from), so a copy or a proxy moves its
// data without a Lua string per chunk. The bytes live inside the userdata, which Lua
// never moves; a request on a buffer pins it until its final completion, so the
// collector cannot free memory the kernel may still use.
#pragma once

#include <lua.hpp>

#include <cstddef>
#include <cstdint>

namespace luring::lua {

inline constexpr const char* kBufferMeta = "luring.Buffer";

// The block's header; its bytes follow. `tag` is &kBufferTag, which no Lua code can
// write, so a userdata given this metatable with debug.setmetatable is still refused.
struct Buffer {
    const void* tag;
    std::size_t size;
    char* bytes() { return reinterpret_cast<char*>(this + 1); }
};

// The buffer at `arg`, or raises "bad argument #arg (luring.Buffer expected, got ...)".
// Checked by tag and length, as rings are (to_ring), not by metatable.
Buffer* check_buffer(lua_State* L, int arg);
// The buffer at `arg`, or nullptr.
Buffer* to_buffer(lua_State* L, int arg);

// Sets luring.buffer and the buffer metatable up in the module table on top.
void open_buffer(lua_State* L);

}  // namespace luring::lua
