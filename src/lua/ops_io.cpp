// SPDX-License-Identifier: Apache-2.0
// Data I/O: luring 0.1's write, read, recv and send, recv_multishot, readv / writev, and
// the buffer forms read_into, write_from, recv_into, send_from, read_fixed, write_fixed.
//
// What the kernel reads (a copy of a small string in the slot's buffer, or the string
// itself, pinned) and what it writes (the slot's buffer) live until the final
// completion. The callback of a read gets exactly res bytes, never more than asked.
#include <sys/socket.h>
#include <sys/uio.h>

#include <algorithm>
#include <cstring>

#include "buffer.hpp"
#include "module.hpp"
#include "prep.hpp"

namespace luring::lua {

namespace {

// Most iovecs one readv/writev takes (the kernel's UIO_MAXIOV).
constexpr lua_Integer kMaxIov = 1024;

// The callback's data: exactly res bytes (none on failure), never more than asked for.
int push_input(lua_State* L, std::int32_t res, const Slot& s) {
    std::uint32_t n = res > 0 ? static_cast<std::uint32_t>(res) : 0;
    if (n > s.len) n = s.len;
    lua_pushlstring(L, s.buf, n);
    return 1;
}

// ---- write(fd, content, offset, cb) -> cb(cqe, res)
// check_write, check_read, check_recv and check_send have a twin for valid arguments in
// await.cpp (read_arguments, luring.async's fast path): a change here goes there too.
void check_write(lua_State* L, int base, OpArgs& a) {
    check_file(L, base, a);
    check_output(L, base + 1, a);
    a.n[0] = static_cast<std::int64_t>(check_offset(L, base + 2));
}
void prep_write(lua_State*, uring::Sqe& sqe, const OpArgs& a, char* buf) {
    uring::prep_write(sqe, a.fd, output_bytes(a, buf), static_cast<std::uint32_t>(a.str_len),
                      static_cast<std::uint64_t>(a.n[0]));
}

// ---- read(fd, size, offset, cb) -> cb(cqe, res, data)
void check_read(lua_State* L, int base, OpArgs& a) {
    check_file(L, base, a);
    a.buf = a.out_len = check_size(L, base + 1);
    a.n[0] = static_cast<std::int64_t>(check_offset(L, base + 2));
}
void prep_read(lua_State*, uring::Sqe& sqe, const OpArgs& a, char* buf) {
    uring::prep_read(sqe, a.fd, buf, a.buf, static_cast<std::uint64_t>(a.n[0]));
}

// ---- recv(fd, size, flags, cb) -> cb(cqe, res, data)
void check_recv(lua_State* L, int base, OpArgs& a) {
    check_file(L, base, a);
    a.buf = a.out_len = check_size(L, base + 1);
    a.n[0] = check_flags(L, base + 2);
    // With MSG_TRUNC the kernel reports the full length but copies at most `size` bytes
    // (UDP) or nothing at all (TCP): there would be no data to hand over for `res`.
    luaL_argcheck(L, (a.n[0] & MSG_TRUNC) == 0, base + 2, "MSG_TRUNC is not supported");
}
void prep_recv(lua_State*, uring::Sqe& sqe, const OpArgs& a, char* buf) {
    uring::prep_recv(sqe, a.fd, buf, a.buf, static_cast<int>(a.n[0]));
}

// ---- recv_multishot(fd, flags, cb) -> cb(cqe, res, data, more)   (6.0)
// One request, a completion per chunk of data, each in a buffer of the ring's provided
// group (luring.recv_buffers), copied into `data` and handed back to the kernel at once.
// It ends (more false) with 0 at end of stream, -ENOBUFS when every buffer was taken
// before dispatch gave one back, -ECANCELED, or an error: queue it again to go on.
void check_recv_multishot(lua_State* L, int base, OpArgs& a) {
    check_file(L, base, a);
    a.n[0] = check_flags(L, base + 1);
    luaL_argcheck(L, (a.n[0] & (MSG_TRUNC | MSG_WAITALL)) == 0, base + 1,
                  "MSG_TRUNC and MSG_WAITALL are not supported");
}
void prep_recv_multishot(lua_State*, uring::Sqe& sqe, const OpArgs& a, char*) {
    uring::prep_recv_multishot(sqe, a.fd, kRecvGroup, static_cast<int>(a.n[0]));
}

// ---- Buffers: read_into, write_from, recv_into, send_from ------------------------------
// (fd, buf, offset | flags, len, at, cb) -> cb(cqe, res): bytes at..at+len-1 of the buffer
// (at default 1, len default the rest of it). The buffer is pinned until the final CQE.
void check_span(lua_State* L, int buf, int len_arg, int at_arg, OpArgs& a) {
    Buffer* b = check_buffer(L, buf);
    const lua_Integer at = luaL_optinteger(L, at_arg, 1);
    luaL_argcheck(L, at >= 1 && static_cast<std::size_t>(at) <= b->size, at_arg,
                  "position out of the buffer");
    const auto room = static_cast<lua_Integer>(b->size) - at + 1;
    const lua_Integer len = luaL_optinteger(L, len_arg, room);
    luaL_argcheck(L, len >= 0 && len <= room, len_arg, "length past the end of the buffer");
    a.str = b->bytes() + (at - 1);
    a.str_len = static_cast<std::size_t>(len < kMaxTransfer ? len : kMaxTransfer);
    a.pin = buf;
}
char* span(const OpArgs& a) { return const_cast<char*>(a.str); }  // the buffer's, ours

void check_file_span(lua_State* L, int base, OpArgs& a) {
    check_file(L, base, a);
    a.n[0] = static_cast<std::int64_t>(check_offset(L, base + 2));
    check_span(L, base + 1, base + 3, base + 4, a);
}
void check_socket_span(lua_State* L, int base, OpArgs& a) {
    check_file(L, base, a);
    a.n[0] = check_flags(L, base + 2);
    check_span(L, base + 1, base + 3, base + 4, a);
}
void check_recv_into(lua_State* L, int base, OpArgs& a) {
    check_socket_span(L, base, a);
    luaL_argcheck(L, (a.n[0] & MSG_TRUNC) == 0, base + 2, "MSG_TRUNC is not supported");
}
void prep_read_into(lua_State*, uring::Sqe& sqe, const OpArgs& a, char*) {
    uring::prep_read(sqe, a.fd, span(a), static_cast<std::uint32_t>(a.str_len),
                     static_cast<std::uint64_t>(a.n[0]));
}
void prep_write_from(lua_State*, uring::Sqe& sqe, const OpArgs& a, char*) {
    uring::prep_write(sqe, a.fd, a.str, static_cast<std::uint32_t>(a.str_len),
                      static_cast<std::uint64_t>(a.n[0]));
}
void prep_recv_into(lua_State*, uring::Sqe& sqe, const OpArgs& a, char*) {
    uring::prep_recv(sqe, a.fd, span(a), static_cast<std::uint32_t>(a.str_len),
                     static_cast<int>(a.n[0]));
}
void prep_send_from(lua_State*, uring::Sqe& sqe, const OpArgs& a, char*) {
    uring::prep_send(sqe, a.fd, a.str, static_cast<std::uint32_t>(a.str_len),
                     static_cast<int>(a.n[0]));
}

// ---- read_fixed, write_fixed: (fd, buf, offset, len, at, cb) -> cb(cqe, res)   (5.1)
// As read_into / write_from, with buf one of the ring's registered buffers (queue()
// finds its index): the kernel skips mapping and pinning its pages per request. The
// span lies inside the buffer, hence inside the registered iovec, which is all of it.
void check_fixed_span(lua_State* L, int base, OpArgs& a) {
    check_file_span(L, base, a);
    a.fixed_buf = base + 1;
}
void prep_read_fixed(lua_State*, uring::Sqe& sqe, const OpArgs& a, char*) {
    uring::prep_read_fixed(sqe, a.fd, span(a), static_cast<std::uint32_t>(a.str_len),
                           static_cast<std::uint64_t>(a.n[0]), a.buf_index);
}
void prep_write_fixed(lua_State*, uring::Sqe& sqe, const OpArgs& a, char*) {
    uring::prep_write_fixed(sqe, a.fd, a.str, static_cast<std::uint32_t>(a.str_len),
                            static_cast<std::uint64_t>(a.n[0]), a.buf_index);
}

// ---- send(fd, content, flags, cb) -> cb(cqe, res)
void check_send(lua_State* L, int base, OpArgs& a) {
    check_file(L, base, a);
    check_output(L, base + 1, a);
    a.n[0] = check_flags(L, base + 2);
}
void prep_send(lua_State*, uring::Sqe& sqe, const OpArgs& a, char* buf) {
    uring::prep_send(sqe, a.fd, output_bytes(a, buf), static_cast<std::uint32_t>(a.str_len),
                     static_cast<int>(a.n[0]));
}

// ---- readv(fd, sizes, offset, cb) -> cb(cqe, res, {strings})
// The slot's buffer holds the iovec count, the iovecs, then the data buffers in order.
struct IovHeader {
    std::size_t count;
};
constexpr std::size_t kIovStart = sizeof(IovHeader) > alignof(iovec) ? sizeof(IovHeader)
                                                                       : alignof(iovec);

// Copies the table at `arg` (integers or strings) into a fresh one that the caller
// cannot change; returns its length. prep() reads the copy.
lua_Integer copy_sequence(lua_State* L, int arg, int type, const char* what) {
    luaL_checktype(L, arg, LUA_TTABLE);
    const lua_Integer n = luaL_len(L, arg);
    if (n < 1 || n > kMaxIov) luaL_argerror(L, arg, "must hold 1 to 1024 entries");
    lua_createtable(L, static_cast<int>(n), 0);
    for (lua_Integer k = 1; k <= n; ++k) {
        lua_geti(L, arg, k);
        if (lua_type(L, -1) != type || (type == LUA_TNUMBER && !lua_isinteger(L, -1))) {
            luaL_argerror(L, arg, what);
        }
        lua_rawseti(L, -2, k);
    }
    lua_replace(L, arg);
    return n;
}

void check_readv(lua_State* L, int base, OpArgs& a) {
    check_file(L, base, a);
    const lua_Integer n = copy_sequence(L, base + 1, LUA_TNUMBER, "must hold only sizes");
    std::uint64_t total = 0;
    for (lua_Integer k = 1; k <= n; ++k) {
        lua_rawgeti(L, base + 1, k);
        lua_Integer size = lua_tointeger(L, -1);
        lua_pop(L, 1);
        if (size < 0) luaL_argerror(L, base + 1, "sizes must be >= 0");
        total += static_cast<std::uint64_t>(size);
        if (total > static_cast<std::uint64_t>(kMaxTransfer)) {
            luaL_argerror(L, base + 1, "sizes add up to more than 2147479552");
        }
    }
    a.n[0] = static_cast<std::int64_t>(check_offset(L, base + 2));
    a.n[1] = n;
    a.fd2 = base + 1;  // where prep() finds the sizes
    a.out_len = static_cast<std::uint32_t>(total);
    a.buf = static_cast<std::uint32_t>(kIovStart + n * sizeof(iovec) + total);
}
void prep_readv(lua_State* L, uring::Sqe& sqe, const OpArgs& a, char* buf) {
    reinterpret_cast<IovHeader*>(buf)->count = static_cast<std::size_t>(a.n[1]);
    auto* iov = reinterpret_cast<iovec*>(buf + kIovStart);
    char* data = reinterpret_cast<char*>(iov + a.n[1]);
    for (lua_Integer k = 0; k < a.n[1]; ++k) {
        lua_rawgeti(L, a.fd2, k + 1);  // an integer from our own copy: no Lua runs
        iov[k].iov_base = data;
        iov[k].iov_len = static_cast<std::size_t>(lua_tointeger(L, -1));
        lua_pop(L, 1);
        data += iov[k].iov_len;
    }
    uring::prep_readv(sqe, a.fd, iov, static_cast<std::uint32_t>(a.n[1]),
                      static_cast<std::uint64_t>(a.n[0]));
}
// One string per buffer: full ones, then the one res ended in, then empty ones.
int push_readv(lua_State* L, std::int32_t res, const Slot& s) {
    const std::size_t count = reinterpret_cast<const IovHeader*>(s.buf)->count;
    const auto* iov = reinterpret_cast<const iovec*>(s.buf + kIovStart);
    std::size_t left = res > 0 ? static_cast<std::size_t>(res) : 0;
    if (left > s.len) left = s.len;
    lua_createtable(L, static_cast<int>(count), 0);
    for (std::size_t k = 0; k < count; ++k) {
        std::size_t n = iov[k].iov_len < left ? iov[k].iov_len : left;
        lua_pushlstring(L, static_cast<const char*>(iov[k].iov_base), n);
        lua_rawseti(L, -2, static_cast<lua_Integer>(k + 1));
        left -= n;
    }
    return 1;
}

// ---- writev(fd, strings, offset, cb) -> cb(cqe, res)
// The strings are pinned through a copy of the table, so the caller may change its own.
void check_writev(lua_State* L, int base, OpArgs& a) {
    check_file(L, base, a);
    a.n[1] = copy_sequence(L, base + 1, LUA_TSTRING, "must hold only strings");
    a.n[0] = static_cast<std::int64_t>(check_offset(L, base + 2));
    a.pin = base + 1;
    a.buf = static_cast<std::uint32_t>(a.n[1] * sizeof(iovec));
}
void prep_writev(lua_State* L, uring::Sqe& sqe, const OpArgs& a, char* buf) {
    auto* iov = reinterpret_cast<iovec*>(buf);
    for (lua_Integer k = 0; k < a.n[1]; ++k) {
        lua_rawgeti(L, a.pin, k + 1);  // a string from our own copy: no Lua runs
        std::size_t len = 0;
        iov[k].iov_base = const_cast<char*>(lua_tolstring(L, -1, &len));
        iov[k].iov_len = len;
        lua_pop(L, 1);
    }
    uring::prep_writev(sqe, a.fd, iov, static_cast<std::uint32_t>(a.n[1]),
                       static_cast<std::uint64_t>(a.n[0]));
}

// ---- recv_until(fd, size, flags, delim, mode): luring._await's only (await.cpp says what
// it gives). Its slot buffer: the recv's `size` bytes, then the mode, delim's length and
// delim (prep writes them, push reads them: the request owns its buffer to the end).
enum : unsigned char { kUntilBefore = 0, kUntilWith = 1, kUntilLine = 2 };

void prep_recv_until(lua_State*, uring::Sqe& sqe, const OpArgs& a, char* buf) {
    buf[a.out_len] = static_cast<char>(a.n[1]);
    buf[a.out_len + 1] = static_cast<char>(a.str2_len);
    std::memcpy(buf + a.out_len + 2, a.str2, a.str2_len);
    uring::prep_recv(sqe, a.fd, buf, a.out_len, static_cast<int>(a.n[0]));
}

// Whether delim's first occurrence in data is at `last` (memmem is slower on short
// inputs: a request head is a few header lines).
bool first_at(const char* data, const char* last, const char* delim, std::size_t dlen) {
    const char* p = data;
    while ((p = static_cast<const char*>(std::memchr(p, delim[0], last - p + 1))) != nullptr) {
        if (std::memcmp(p, delim, dlen) == 0) return p == last;
        ++p;
    }
    return false;
}

// The part and true when the bytes are one whole part (see aw.recv_until), else the bytes.
int push_until(lua_State* L, std::int32_t res, const Slot& s) {
    const std::size_t n = res > 0 ? std::min(static_cast<std::uint32_t>(res), s.len) : 0U;
    const char* data = s.buf;
    const auto mode = static_cast<unsigned char>(s.buf[s.len]);
    const auto dlen = static_cast<std::size_t>(static_cast<unsigned char>(s.buf[s.len + 1]));
    const char* delim = s.buf + s.len + 2;
    if (n >= dlen && n > 0) {
        if (mode == kUntilLine) {
            std::size_t e = n - 1;
            if (std::memchr(data, '\n', n) == data + e) {
                if (e > 0 && data[e - 1] == '\r') --e;
                if (std::memchr(data, '\r', e) == nullptr) {
                    lua_pushlstring(L, data, e);
                    lua_pushboolean(L, 1);
                    return 2;
                }
            }
        } else if (first_at(data, data + n - dlen, delim, dlen)) {
            lua_pushlstring(L, data, mode == kUntilWith ? n : n - dlen);
            lua_pushboolean(L, 1);
            return 2;
        }
    }
    lua_pushlstring(L, data, n);
    return 1;
}

}  // namespace

// Not one of the module's ops (luring.recv_until does not exist): luring._await's only.
const OpDesc kRecvUntil = {
    "recv_until", uring::Op::recv, 5, 0, nullptr, prep_recv_until, push_until, nullptr};

// luring.recv_buffers(ring, count, size) -> 0 or -errno: sets up the ring's provided
// buffers for recv_multishot, `count` (a power of two up to 32768) of `size` bytes (up
// to 1 MiB), instead of the 64 of 16 KiB the first recv_multishot would make. Once per
// ring: they stay until it closes. -EINVAL before 5.19.
int recv_buffers(lua_State* L) {
    LuaRing* r = check_ring(L, 1);
    const lua_Integer count = luaL_checkinteger(L, 2);
    const lua_Integer size = luaL_checkinteger(L, 3);
    luaL_argcheck(L, count >= 1 && count <= uring::BufRing::kMaxCount && (count & (count - 1)) == 0,
                  2, "count must be a power of two from 1 to 32768");
    luaL_argcheck(L, size >= 1 && size <= uring::BufRing::kMaxSize, 3,
                  "size must be from 1 to 1048576 bytes");
    if (r->recv_bufs.active()) {
        return luaL_error(L, "recv_buffers: this ring's buffers are already set up (%d of %d "
                          "bytes); they stay until it closes",
                          static_cast<int>(r->recv_bufs.count()),
                          static_cast<int>(r->recv_bufs.size()));
    }
    lua_pushinteger(L, r->recv_bufs.setup(r->ring, kRecvGroup, static_cast<std::uint32_t>(count),
                                          static_cast<std::uint32_t>(size)));
    return 1;
}

extern const OpDesc kIoOps[] = {
    {"write", uring::Op::write, 3, 0, check_write, prep_write, nullptr, nullptr},
    {"read", uring::Op::read, 3, 0, check_read, prep_read, push_input, nullptr},
    {"recv", uring::Op::recv, 3, 0, check_recv, prep_recv, push_input, nullptr},
    {"recv_multishot", uring::Op::recv, 2, op_flag::multishot | op_flag::buffer_select,
     check_recv_multishot, prep_recv_multishot, push_input, nullptr},
    {"send", uring::Op::send, 3, 0, check_send, prep_send, nullptr, nullptr},
    {"read_into", uring::Op::read, 5, 0, check_file_span, prep_read_into, nullptr, nullptr},
    {"write_from", uring::Op::write, 5, 0, check_file_span, prep_write_from, nullptr, nullptr},
    {"read_fixed", uring::Op::read_fixed, 5, 0, check_fixed_span, prep_read_fixed, nullptr,
     nullptr},
    {"write_fixed", uring::Op::write_fixed, 5, 0, check_fixed_span, prep_write_fixed, nullptr,
     nullptr},
    {"recv_into", uring::Op::recv, 5, 0, check_recv_into, prep_recv_into, nullptr, nullptr},
    {"send_from", uring::Op::send, 5, 0, check_socket_span, prep_send_from, nullptr, nullptr},
    {"readv", uring::Op::readv, 3, 0, check_readv, prep_readv, push_readv, nullptr},
    {"writev", uring::Op::writev, 3, 0, check_writev, prep_writev, nullptr, nullptr},
    {nullptr, uring::Op::nop, 0, 0, nullptr, nullptr, nullptr, nullptr},
};

}  // namespace luring::lua
