// SPDX-License-Identifier: Apache-2.0
// The luring 0.1 I/O operations: write, read, recv, send, accept.
//
// Order inside each: every argument check, then the slot, its buffer and the Lua refs
// (each of which may raise), and only then the SQE, so a raised error never leaves a
// half-made request and a full queue (nil) retains nothing. What the kernel reads for
// write/send (a copy of a small string, or the string itself, pinned) and what it
// writes for read/recv/accept (the slot's buffer) live until the completion is handled.
#include <sys/socket.h>

#include <climits>
#include <cstring>

#include "module.hpp"
#include "prep.hpp"

namespace luring::lua {

namespace {

// Prepares a request: a slot (with a buffer of `buf_size` bytes if `with_buf`), the
// callback at `cb_arg` (if any) and the string at `pin_arg` (if non-zero) pinned in the
// refs table. Returns the SQE, or nullptr when the SQ is full (nothing retained).
uring::Sqe* begin(lua_State* L, LuaRing* r, bool has_cb, int cb_arg, int pin_arg,
                  bool with_buf, std::uint32_t buf_size, std::uint32_t& slot) {
    if (r->ring.sq_space_left() == 0) return nullptr;
    std::uint32_t i = r->requests.acquire();
    if (i == Requests::kNone) luaL_error(L, "not enough memory for another request");
    if (with_buf && !r->requests.reserve_buffer(i, buf_size)) {
        luaL_error(L, "not enough memory for a %u-byte buffer", buf_size);
    }
    const lua_Integer key = 2 * static_cast<lua_Integer>(i) + 1;
    if (has_cb || pin_arg != 0) {
        lua_getiuservalue(L, 1, kRefsUservalue);
        // The string first: if storing the callback then fails (out of memory), no
        // callback is left behind for the slot's next request to run by mistake, and the
        // sticky `pinned` makes that request's completion drop the stray pin.
        if (pin_arg != 0) {
            r->requests[i].pinned = true;
            lua_pushvalue(L, pin_arg);
            lua_rawseti(L, -2, key + 1);
        }
        if (has_cb) {
            lua_pushvalue(L, cb_arg);
            lua_rawseti(L, -2, key);
        }
        lua_pop(L, 1);
    }
    uring::Sqe* sqe = r->ring.get_sqe();  // space was checked; nothing ran in between
    slot = i;
    return sqe;
}

// Starts the request in `slot` with `sqe` and returns its handle (the user_data).
int finish(lua_State* L, LuaRing* r, uring::Sqe* sqe, std::uint32_t slot, Kind kind) {
    sqe->user_data = r->requests.start(slot, kind);
    lua_pushinteger(L, static_cast<lua_Integer>(sqe->user_data));
    return 1;
}

int queue_full(lua_State* L) {
    lua_pushnil(L);
    return 1;
}

// Contents up to this size are copied into the slot's buffer: a copy of a small string
// costs less than pinning it in the refs table and unpinning it at completion. Larger
// ones are pinned, never copied.
constexpr std::size_t kCopyMax = 1024;

// Queues a read or recv of up to `size` bytes into the slot's buffer. Returns the SQE
// with `*out` pointing at that buffer, or nullptr (queue full).
uring::Sqe* begin_input(lua_State* L, LuaRing* r, bool has_cb, std::uint32_t size, char** out,
                        std::uint32_t& slot) {
    uring::Sqe* sqe = begin(L, r, has_cb, 5, 0, true, size, slot);
    if (sqe == nullptr) return nullptr;
    r->requests[slot].len = size;  // the callback never gets more than this
    *out = r->requests[slot].buf;
    return sqe;
}

// Queues the write or send of the string at argument 3, copied or pinned. Returns the SQE
// with `*out` pointing at bytes that live until completion, or nullptr (queue full).
uring::Sqe* begin_output(lua_State* L, LuaRing* r, bool has_cb, const char* data,
                         std::size_t len, const char** out, std::uint32_t& slot) {
    const bool copy = len <= kCopyMax;
    uring::Sqe* sqe = begin(L, r, has_cb, 5, copy ? 0 : 3, copy,
                            static_cast<std::uint32_t>(copy ? len : 0), slot);
    if (sqe == nullptr) return nullptr;
    *out = data;
    if (copy) {
        char* buf = r->requests[slot].buf;
        std::memcpy(buf, data, len);
        *out = buf;
    }
    return sqe;
}

}  // namespace

int check_fd(lua_State* L, int arg) {
    lua_Integer fd = luaL_checkinteger(L, arg);
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

// luring.write(ring, fd, content, offset [, cb(cqe, res)]) -> handle | nil
int op_write(lua_State* L) {
    LuaRing* r = check_ring(L, 1);
    int fd = check_fd(L, 2);
    std::size_t len = 0;
    const char* data = luaL_checklstring(L, 3, &len);
    std::uint64_t off = check_offset(L, 4);
    bool has_cb = check_callback(L, 5);
    std::uint32_t slot = 0;
    const char* bytes = nullptr;
    uring::Sqe* sqe = begin_output(L, r, has_cb, data, len, &bytes, slot);
    if (sqe == nullptr) return queue_full(L);
    // Longer writes are cut to the kernel's single-transfer maximum: res says how much.
    std::uint32_t n = len > kMaxTransfer ? kMaxTransfer : static_cast<std::uint32_t>(len);
    uring::prep_write(*sqe, fd, bytes, n, off);
    return finish(L, r, sqe, slot, Kind::write);
}

// luring.read(ring, fd, size, offset [, cb(cqe, res, data)]) -> handle | nil
int op_read(lua_State* L) {
    LuaRing* r = check_ring(L, 1);
    int fd = check_fd(L, 2);
    std::uint32_t size = check_size(L, 3);
    std::uint64_t off = check_offset(L, 4);
    bool has_cb = check_callback(L, 5);
    std::uint32_t slot = 0;
    char* buf = nullptr;
    uring::Sqe* sqe = begin_input(L, r, has_cb, size, &buf, slot);
    if (sqe == nullptr) return queue_full(L);
    uring::prep_read(*sqe, fd, buf, size, off);
    return finish(L, r, sqe, slot, Kind::read);
}

// luring.recv(ring, sockfd, size, flags [, cb(cqe, res, data)]) -> handle | nil
int op_recv(lua_State* L) {
    LuaRing* r = check_ring(L, 1);
    int fd = check_fd(L, 2);
    std::uint32_t size = check_size(L, 3);
    int flags = check_flags(L, 4);
    // With MSG_TRUNC the kernel reports the full length but copies at most `size` bytes
    // (UDP) or nothing at all (TCP): there would be no data to hand over for `res`.
    luaL_argcheck(L, (flags & MSG_TRUNC) == 0, 4, "MSG_TRUNC is not supported");
    bool has_cb = check_callback(L, 5);
    std::uint32_t slot = 0;
    char* buf = nullptr;
    uring::Sqe* sqe = begin_input(L, r, has_cb, size, &buf, slot);
    if (sqe == nullptr) return queue_full(L);
    uring::prep_recv(*sqe, fd, buf, size, flags);
    return finish(L, r, sqe, slot, Kind::recv);
}

// luring.send(ring, sockfd, content, flags [, cb(cqe, res)]) -> handle | nil
int op_send(lua_State* L) {
    LuaRing* r = check_ring(L, 1);
    int fd = check_fd(L, 2);
    std::size_t len = 0;
    const char* data = luaL_checklstring(L, 3, &len);
    int flags = check_flags(L, 4);
    bool has_cb = check_callback(L, 5);
    std::uint32_t slot = 0;
    const char* bytes = nullptr;
    uring::Sqe* sqe = begin_output(L, r, has_cb, data, len, &bytes, slot);
    if (sqe == nullptr) return queue_full(L);
    std::uint32_t n = len > kMaxTransfer ? kMaxTransfer : static_cast<std::uint32_t>(len);
    uring::prep_send(*sqe, fd, bytes, n, flags);
    return finish(L, r, sqe, slot, Kind::send);
}

// luring.accept(ring, sockfd, flags [, cb(cqe, res, peer)]) -> handle | nil
// The new descriptor is always close-on-exec.
int op_accept(lua_State* L) {
    LuaRing* r = check_ring(L, 1);
    int fd = check_fd(L, 2);
    int flags = check_flags(L, 3);
    bool has_cb = check_callback(L, 4);
    std::uint32_t slot = 0;
    uring::Sqe* sqe = begin(L, r, has_cb, 4, 0, true, sizeof(AcceptAddr), slot);
    if (sqe == nullptr) return queue_full(L);
    auto* a = reinterpret_cast<AcceptAddr*>(r->requests[slot].buf);
    a->len = sizeof(a->addr);  // in/out: the kernel reads the room it has, writes the size
    uring::prep_accept(*sqe, fd, reinterpret_cast<sockaddr*>(&a->addr), &a->len,
                       flags | SOCK_CLOEXEC);
    return finish(L, r, sqe, slot, Kind::accept);
}

}  // namespace luring::lua
