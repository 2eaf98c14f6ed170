// SPDX-License-Identifier: Apache-2.0
// Registered files and buffers (IORING_REGISTER_FILES / _BUFFERS): ring:register_files
// gives one handle per slot, never an fd -> index map (descriptor numbers are reused);
// ring:register_buffers keeps each luring.buffer referenced while the kernel has it.
#pragma once

#include <lua.hpp>

#include <cstdint>

#include "op.hpp"

namespace luring::lua {

inline constexpr const char* kFixedFileMeta = "luring.FixedFile";

// A registered file handle: the slot `index` of registration `generation` of the ring
// with `serial`. It names the ring by serial, not by pointer, so it keeps no ring alive
// and a new ring at the same address is still another ring. `tag` as Buffer's.
struct FixedFile {
    const void* tag;
    std::uint32_t serial;
    std::uint32_t generation;
    std::uint32_t index;
    int fd;  // what was registered in the slot (-1: empty), for tostring
};

// The handle at `arg`, or nullptr.
const FixedFile* to_fixed_file(lua_State* L, int arg);

// The key of the ring's registered buffers in its refs table: a table buffer -> index.
extern const char kFixedBuffersKey;

// For queue(), after every check ran (Lua may have unregistered since): raises unless
// a's registered file is of ring `r` (stack index 1) and its current registration, and
// a's fixed buffer one of its registered buffers, whose index it sets in a.buf_index.
void resolve_fixed(lua_State* L, LuaRing* r, OpArgs& a);

// At close, once nothing is in flight: the buffers are no longer referenced by the ring
// and every handle is stale. The kernel drops both registrations with the ring's fd.
void drop_registrations(lua_State* L, LuaRing* r, int idx);

// Sets up the handle metatable.
void open_fixed(lua_State* L);

}  // namespace luring::lua
