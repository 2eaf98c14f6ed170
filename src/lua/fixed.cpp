// SPDX-License-Identifier: Apache-2.0
// ring:register_files(fds), ring:unregister_files(), ring:register_buffers(bufs),
// ring:unregister_buffers(), and the registered file handle (luring.FixedFile).
//
// Everything a call allocates (the kernel's argument array, the handles, the buffers'
// table and its place in the refs table) is made before the system call, so a memory
// error never leaves a registration the Lua side does not know of. The state checks
// (closed, registered already, -EBUSY) come after the allocations, since a GC step may
// have run a finalizer meanwhile, and after every entry was checked: a bad entry raises
// whatever the ring's state (the fuzzer found -EBUSY for { "x" } with files registered).
#include <sys/uio.h>

#include <cerrno>
#include <climits>

#include "buffer.hpp"
#include "fixed.hpp"
#include "module.hpp"
#include "register.hpp"

namespace luring::lua {

const char kFixedBuffersKey = 0;

namespace {

const char kFixedFileTag = 0;

// The kernel's limits: IORING_MAX_FIXED_FILES (5.15; 32768 before, and RLIMIT_NOFILE
// always) and IORING_MAX_REG_BUFFERS.
constexpr lua_Integer kMaxFiles = 1 << 20;
constexpr lua_Integer kMaxBuffers = 1 << 14;

// Whether the kernel could make this register call wait instead of answering: up to
// 6.12 dropping either registration waits for every request in flight that uses a
// registered file or buffer (the two share the ring's resource node: a recv on a
// handle of a quiet socket holds up unregister_buffers for ever), and before 5.13 (no
// IORING_FEAT_RSRC_TAGS) registering or dropping files or buffers waits until no
// request at all is in flight. luring answers -EBUSY then, as the kernel does for a
// second registration. (6.13 counts each file and buffer apart; one rule for all.) The
// users are the requests made with a handle or a registered buffer, also those luring
// completes itself (start.cpp), so a program gets the same answer on every kernel.
bool would_wait(const LuaRing* r, bool dropping) {
    if (dropping && r->requests.file_users() + r->requests.buffer_users() > 0) return true;
    return (r->ring.features() & uring::feat::rsrc_tags) == 0 && r->requests.in_flight() > 0;
}

// The ring at 1 is still open after Lua ran (a finalizer may have closed it).
void check_still_open(lua_State* L, const LuaRing* r) {
    if (r->closed || r->closing) luaL_argerror(L, 1, "attempt to use a closed ring");
}

int push_result(lua_State* L, int res) {
    lua_pushinteger(L, res);
    return 1;
}

// The ring at `idx` no longer references its registered buffers.
void drop_buffers(lua_State* L, LuaRing* r, int idx) {
    if (!r->buffers_registered) return;
    push_refs(L, r, idx);
    lua_pushboolean(L, 0);  // the key stays: storing there never allocates
    lua_rawsetp(L, -2, &kFixedBuffersKey);
    lua_pop(L, 1);
    r->buffers_registered = false;
}

int fixed_file_index(lua_State* L) {
    const FixedFile* f = to_fixed_file(L, 1);
    if (f == nullptr) return luaL_typeerror(L, 1, kFixedFileMeta);
    lua_pushinteger(L, f->index);
    return 1;
}

int fixed_file_tostring(lua_State* L) {
    const FixedFile* f = to_fixed_file(L, 1);
    if (f == nullptr) return luaL_typeerror(L, 1, kFixedFileMeta);
    lua_pushfstring(L, "luring.FixedFile (index %d, fd %d) (%p)", static_cast<int>(f->index),
                    f->fd, static_cast<const void*>(f));
    return 1;
}

}  // namespace

const FixedFile* to_fixed_file(lua_State* L, int arg) {
    if (lua_type(L, arg) != LUA_TUSERDATA || lua_rawlen(L, arg) != sizeof(FixedFile)) {
        return nullptr;
    }
    const auto* f = static_cast<const FixedFile*>(lua_touserdata(L, arg));
    return f->tag == &kFixedFileTag ? f : nullptr;
}

void check_file(lua_State* L, int arg, OpArgs& a) {
    int ok = 0;
    const lua_Integer fd = lua_tointegerx(L, arg, &ok);
    if (ok != 0) {
        luaL_argcheck(L, fd >= 0 && fd <= INT_MAX, arg, "file descriptor out of range");
        a.fd = static_cast<int>(fd);
        return;
    }
    const FixedFile* f = to_fixed_file(L, arg);
    if (f == nullptr) {
        a.fd = check_fd(L, arg);  // raises, saying what it got
        return;
    }
    a.fd = static_cast<int>(f->index);
    a.file_serial = f->serial;
    a.file_gen = f->generation;
    a.file_arg = arg;
}

void resolve_fixed(lua_State* L, LuaRing* r, OpArgs& a) {
    if (a.file_gen != 0) {
        if (a.file_serial != r->serial) {
            luaL_argerror(L, a.file_arg, "registered file of another ring");
        }
        if (a.file_gen != r->files_gen) {
            luaL_argerror(L, a.file_arg, "stale registered file: its registration was dropped");
        }
    }
    if (a.fixed_buf == 0) return;
    lua_Integer index = -1;
    if (r->buffers_registered) {
        push_refs(L, r, 1);
        lua_rawgetp(L, -1, &kFixedBuffersKey);
        lua_pushvalue(L, a.fixed_buf);
        if (lua_rawget(L, -2) == LUA_TNUMBER) index = lua_tointeger(L, -1);
        lua_pop(L, 3);
    }
    if (index < 0) {
        luaL_argerror(L, a.fixed_buf,
                      "not a registered buffer of this ring (ring:register_buffers)");
    }
    a.buf_index = static_cast<std::uint16_t>(index);
}

void drop_registrations(lua_State* L, LuaRing* r, int idx) {
    drop_buffers(L, r, idx);
    r->files_gen = 0;
}

// luring.register_files(ring, fds) -> one handle per entry of fds (descriptors, -1 for
// an empty slot), or -errno: -EBUSY when files are registered already (or the kernel
// would wait, see would_wait), -EMFILE past RLIMIT_NOFILE, -EBADF for a bad descriptor.
int register_files(lua_State* L) {
    LuaRing* r = check_ring(L, 1);
    luaL_checktype(L, 2, LUA_TTABLE);
    const lua_Integer n = luaL_len(L, 2);
    luaL_argcheck(L, n >= 1 && n <= kMaxFiles, 2, "must hold 1 to 1048576 descriptors");
    check_still_open(L, r);
    lua_settop(L, 2);
    auto* fds =
        static_cast<int*>(lua_newuserdatauv(L, static_cast<std::size_t>(n) * sizeof(int), 0));
    for (lua_Integer k = 1; k <= n; ++k) {
        lua_geti(L, 2, k);
        int ok = 0;
        const lua_Integer fd = lua_tointegerx(L, -1, &ok);
        if (ok == 0 || fd < -1 || fd > INT_MAX) {
            luaL_argerror(L, 2, lua_pushfstring(L, "entry %I is not a descriptor or -1", k));
        }
        fds[k - 1] = static_cast<int>(fd);
        lua_pop(L, 1);
    }
    // A generation no handle of this ring had before, even if a finalizer registers
    // files on this ring while the handles are made.
    if (++r->files_last_gen == 0) ++r->files_last_gen;
    const std::uint32_t gen = r->files_last_gen;
    lua_createtable(L, static_cast<int>(n), 0);
    luaL_getmetatable(L, kFixedFileMeta);
    for (lua_Integer k = 1; k <= n; ++k) {
        auto* f = static_cast<FixedFile*>(lua_newuserdatauv(L, sizeof(FixedFile), 0));
        *f = FixedFile{&kFixedFileTag, r->serial, gen, static_cast<std::uint32_t>(k - 1),
                       fds[k - 1]};
        lua_pushvalue(L, 5);
        lua_setmetatable(L, -2);
        lua_rawseti(L, 4, k);
    }
    check_still_open(L, r);
    if (r->files_gen != 0 || would_wait(r, false)) return push_result(L, -EBUSY);
    const int ret = uring::register_files(r->ring, fds, static_cast<std::uint32_t>(n));
    if (ret < 0) return push_result(L, ret);
    r->files_gen = gen;
    lua_settop(L, 4);
    return 1;
}

// luring.unregister_files(ring) -> 0 or -errno: -ENXIO when none are registered, -EBUSY
// while a request that uses one is in flight. Every handle of the registration is stale.
int unregister_files(lua_State* L) {
    LuaRing* r = check_ring(L, 1);
    if (r->files_gen == 0) return push_result(L, -ENXIO);
    if (would_wait(r, true)) return push_result(L, -EBUSY);
    const int ret = uring::unregister_files(r->ring);
    if (ret < 0) return push_result(L, ret);
    r->files_gen = 0;
    return push_result(L, 0);
}

// luring.register_buffers(ring, bufs) -> 0 or -errno: bufs are luring.buffer objects,
// registration index k-1 for bufs[k]. The ring references each until unregister_buffers
// or its close. -EBUSY when buffers are registered already (or see would_wait), -ENOMEM
// past RLIMIT_MEMLOCK (5.10, without CAP_IPC_LOCK), -EFAULT for a buffer above 1 GiB.
int register_buffers(lua_State* L) {
    LuaRing* r = check_ring(L, 1);
    luaL_checktype(L, 2, LUA_TTABLE);
    const lua_Integer n = luaL_len(L, 2);
    luaL_argcheck(L, n >= 1 && n <= kMaxBuffers, 2, "must hold 1 to 16384 buffers");
    check_still_open(L, r);
    lua_settop(L, 2);
    auto* iovs =
        static_cast<iovec*>(lua_newuserdatauv(L, static_cast<std::size_t>(n) * sizeof(iovec), 0));
    lua_createtable(L, 0, static_cast<int>(n));  // 4: buffer -> index
    for (lua_Integer k = 1; k <= n; ++k) {
        lua_geti(L, 2, k);
        Buffer* b = to_buffer(L, -1);
        if (b == nullptr) {
            luaL_argerror(L, 2, lua_pushfstring(L, "entry %I is not a luring.buffer", k));
        }
        iovs[k - 1].iov_base = b->bytes();
        iovs[k - 1].iov_len = b->size;
        lua_pushinteger(L, k - 1);
        lua_rawset(L, 4);
    }
    // Its place in the refs table, so that storing it after the call cannot fail; never
    // over a registration's table: a metamethod of `bufs` (or a finalizer) may have
    // registered buffers meanwhile, and those would lose their references (then read_fixed
    // indexed false). A raw set runs no collector step, so nothing registers in between.
    push_refs(L, r, 1);  // 5
    if (!r->buffers_registered) {
        lua_pushboolean(L, 0);
        lua_rawsetp(L, 5, &kFixedBuffersKey);
    }
    check_still_open(L, r);
    if (r->buffers_registered || would_wait(r, false)) return push_result(L, -EBUSY);
    const int ret = uring::register_buffers(r->ring, iovs, static_cast<std::uint32_t>(n));
    if (ret < 0) return push_result(L, ret);
    lua_pushvalue(L, 4);
    lua_rawsetp(L, 5, &kFixedBuffersKey);
    r->buffers_registered = true;
    return push_result(L, 0);
}

// luring.unregister_buffers(ring) -> 0 or -errno: -ENXIO when none are registered,
// -EBUSY while a read_fixed or write_fixed is in flight. The ring lets the buffers go.
int unregister_buffers(lua_State* L) {
    LuaRing* r = check_ring(L, 1);
    if (!r->buffers_registered) return push_result(L, -ENXIO);
    if (would_wait(r, true)) return push_result(L, -EBUSY);
    const int ret = uring::unregister_buffers(r->ring);
    if (ret < 0) return push_result(L, ret);
    drop_buffers(L, r, 1);
    return push_result(L, 0);
}

void open_fixed(lua_State* L) {
    luaL_newmetatable(L, kFixedFileMeta);
    lua_pushcfunction(L, fixed_file_tostring);
    lua_setfield(L, -2, "__tostring");
    lua_createtable(L, 0, 1);
    lua_pushcfunction(L, fixed_file_index);
    lua_setfield(L, -2, "index");
    lua_setfield(L, -2, "__index");
    lua_pop(L, 1);
}

}  // namespace luring::lua
