// SPDX-License-Identifier: Apache-2.0
// Sockets: socket, connect, bind, listen, accept (luring 0.1), multishot_accept,
// shutdown, sendmsg, recvmsg and send_zc; the constants luring.af, luring.sock and
// luring.shut; the synchronous helpers getsockname, getpeername, setsockopt and
// getsockopt (what the coroutine layer's LuaSocket-like sockets are built on).
//
// New descriptors are close-on-exec, and closed by the module if no callback receives
// them. Addresses are parsed in check(), in the family of the socket itself
// (sockaddr.cpp), and written into the slot's buffer by prep(), with the msghdr and
// iovec of sendmsg/recvmsg: all of it lives until the final completion.
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>
#include <sys/uio.h>

#include <cerrno>
#include <climits>
#include <cstring>

#include "module.hpp"
#include "prep.hpp"
#include "sockaddr.hpp"

namespace luring::lua {

namespace {

// The buffer of an accept request: the peer address and its in/out length.
struct AcceptAddr {
    sockaddr_storage addr;
    socklen_t len;
};

// ---- accept(fd, flags, cb) -> cb(cqe, res, peer)   (peer nil on failure)
void check_accept(lua_State* L, int base, OpArgs& a) {
    check_file(L, base, a);
    a.n[0] = check_flags(L, base + 1);
    a.buf = sizeof(AcceptAddr);
}
void prep_accept(lua_State*, uring::Sqe& sqe, const OpArgs& a, char* buf) {
    auto* peer = reinterpret_cast<AcceptAddr*>(buf);
    peer->len = sizeof(peer->addr);  // in/out: the room there is, then the size written
    uring::prep_accept(sqe, a.fd, reinterpret_cast<sockaddr*>(&peer->addr), &peer->len,
                       static_cast<int>(a.n[0]) | SOCK_CLOEXEC);
}
int push_accept(lua_State* L, std::int32_t res, const Slot& s) {
    if (res < 0) {
        lua_pushnil(L);
        return 1;
    }
    const auto* peer = reinterpret_cast<const AcceptAddr*>(s.buf);
    push_peer(L, peer->addr, peer->len);
    return 1;
}

// ---- multishot_accept(fd, flags, cb) -> cb(cqe, res, peer, more)   (5.19)
// One request, a CQE per connection. The kernel would write every peer address into
// the same buffer, possibly while an earlier one is read, so each is asked with
// getpeername instead.
void check_multishot_accept(lua_State* L, int base, OpArgs& a) {
    check_file(L, base, a);
    a.n[0] = check_flags(L, base + 1);
}
void prep_multishot_accept(lua_State*, uring::Sqe& sqe, const OpArgs& a, char*) {
    uring::prep_multishot_accept(sqe, a.fd, nullptr, nullptr,
                                 static_cast<int>(a.n[0]) | SOCK_CLOEXEC);
}
int push_multishot_accept(lua_State* L, std::int32_t res, const Slot&) {
    AcceptAddr peer{};
    peer.len = sizeof(peer.addr);
    if (res < 0 || getpeername(res, reinterpret_cast<sockaddr*>(&peer.addr), &peer.len) != 0) {
        lua_pushnil(L);
        return 1;
    }
    push_peer(L, peer.addr, peer.len);
    return 1;
}


// ---- Addresses in OpArgs ----------------------------------------------------------------
// check() parses an address into a sockaddr_storage on its own frame, which is gone by
// prep(). An IP address is kept as bytes in a.n; a longer one (AF_UNIX) as a Lua string
// that replaces argument `arg` on the stack, where it lives until prep() has run.
// a.str2_len is its length (0: no address).
static_assert(sizeof(sockaddr_in6) <= sizeof(OpArgs::n));

void keep_addr(lua_State* L, int arg, const sockaddr_storage& ss, socklen_t len, OpArgs& a) {
    a.str2_len = len;
    if (len <= sizeof(a.n)) {
        std::memcpy(a.n, &ss, len);
        return;
    }
    a.str2 = lua_pushlstring(L, reinterpret_cast<const char*>(&ss), len);
    lua_replace(L, arg);
}

// Writes the kept address to `out` (room for a sockaddr_storage); returns its length.
socklen_t copy_addr(const OpArgs& a, void* out) {
    const void* from = a.str2 != nullptr ? static_cast<const void*>(a.str2) : a.n;
    std::memcpy(out, from, a.str2_len);
    return static_cast<socklen_t>(a.str2_len);
}

// fd, then (host, port) at base+1, base+2 as check_sockaddr reads them, into the buffer.
void check_fd_addr(lua_State* L, int base, OpArgs& a) {
    a.fd = check_fd(L, base);
    sockaddr_storage ss;
    socklen_t len = 0;
    check_sockaddr(L, a.fd, base + 1, base + 2, ss, len);
    keep_addr(L, base + 1, ss, len, a);
    a.buf = sizeof(sockaddr_storage);
}

int sync_result(int ret) { return ret >= 0 ? ret : -errno; }

// ---- socket(family, type, protocol, cb) -> cb(cqe, fd)   (5.19; before: socket(2))
int check_family(lua_State* L, int arg) {
    if (lua_type(L, arg) == LUA_TSTRING) {
        int af = family_from_name(lua_tostring(L, arg));
        if (af < 0) luaL_argerror(L, arg, "family must be 'inet', 'inet6', 'unix' or luring.af.*");
        return af;
    }
    lua_Integer af = luaL_checkinteger(L, arg);
    luaL_argcheck(L, af >= 0 && af <= INT_MAX, arg, "family out of range");
    return static_cast<int>(af);
}
int check_type(lua_State* L, int arg) {
    if (lua_type(L, arg) == LUA_TSTRING) {
        const char* name = lua_tostring(L, arg);
        if (std::strcmp(name, "stream") == 0) return SOCK_STREAM;
        if (std::strcmp(name, "dgram") == 0) return SOCK_DGRAM;
        if (std::strcmp(name, "seqpacket") == 0) return SOCK_SEQPACKET;
        luaL_argerror(L, arg, "type must be 'stream', 'dgram', 'seqpacket' or luring.sock.*");
    }
    lua_Integer type = luaL_checkinteger(L, arg);
    luaL_argcheck(L, type >= 0 && type <= INT_MAX, arg, "type out of range");
    return static_cast<int>(type);
}
void check_socket(lua_State* L, int base, OpArgs& a) {
    a.n[0] = check_family(L, base);
    a.n[1] = check_type(L, base + 1) | SOCK_CLOEXEC;
    a.n[2] = check_int_range(L, base + 2, 0, 0, INT_MAX, "protocol must be >= 0");
}
void prep_socket(lua_State*, uring::Sqe& sqe, const OpArgs& a, char*) {
    uring::prep_socket(sqe, static_cast<int>(a.n[0]), static_cast<int>(a.n[1]),
                       static_cast<int>(a.n[2]), 0);
}
std::int32_t sync_socket(const OpArgs& a, char*) {
    return sync_result(::socket(static_cast<int>(a.n[0]), static_cast<int>(a.n[1]),
                                static_cast<int>(a.n[2])));
}

// ---- connect(fd, host, port, cb) -> cb(cqe, res)   (5.5)
void prep_connect(lua_State*, uring::Sqe& sqe, const OpArgs& a, char* buf) {
    socklen_t len = copy_addr(a, buf);
    uring::prep_connect(sqe, a.fd, reinterpret_cast<const sockaddr*>(buf), len);
}

// ---- bind(fd, host, port, cb) -> cb(cqe, res)   (6.11; before: bind(2))
void prep_bind(lua_State*, uring::Sqe& sqe, const OpArgs& a, char* buf) {
    socklen_t len = copy_addr(a, buf);
    uring::prep_bind(sqe, a.fd, reinterpret_cast<const sockaddr*>(buf), len);
}
std::int32_t sync_bind(const OpArgs& a, char* buf) {
    socklen_t len = copy_addr(a, buf);
    return sync_result(::bind(a.fd, reinterpret_cast<const sockaddr*>(buf), len));
}

// ---- listen(fd, backlog, cb) -> cb(cqe, res)   (6.11; before: listen(2))
void check_listen(lua_State* L, int base, OpArgs& a) {
    a.fd = check_fd(L, base);
    a.n[0] = check_int_range(L, base + 1, SOMAXCONN, 0, INT_MAX, "backlog must be >= 0");
}
void prep_listen(lua_State*, uring::Sqe& sqe, const OpArgs& a, char*) {
    uring::prep_listen(sqe, a.fd, static_cast<int>(a.n[0]));
}
std::int32_t sync_listen(const OpArgs& a, char*) {
    return sync_result(::listen(a.fd, static_cast<int>(a.n[0])));
}

// ---- shutdown(fd, how, cb) -> cb(cqe, res)   (5.11)
// how: LuaSocket's "receive", "send", "both" (the default), or luring.shut.*.
void check_shutdown(lua_State* L, int base, OpArgs& a) {
    check_file(L, base, a);
    const int arg = base + 1;
    if (lua_type(L, arg) == LUA_TSTRING) {
        const char* how = lua_tostring(L, arg);
        if (std::strcmp(how, "receive") == 0) {
            a.n[0] = SHUT_RD;
        } else if (std::strcmp(how, "send") == 0) {
            a.n[0] = SHUT_WR;
        } else if (std::strcmp(how, "both") == 0) {
            a.n[0] = SHUT_RDWR;
        } else {
            luaL_argerror(L, arg, "how must be 'receive', 'send', 'both' or luring.shut.*");
        }
    } else {
        a.n[0] = check_int_range(L, arg, SHUT_RDWR, SHUT_RD, SHUT_RDWR,
                                 "how must be 'receive', 'send', 'both' or luring.shut.*");
    }
}
void prep_shutdown(lua_State*, uring::Sqe& sqe, const OpArgs& a, char*) {
    uring::prep_shutdown(sqe, a.fd, static_cast<int>(a.n[0]));
}

// ---- sendmsg / recvmsg: the slot's buffer starts with this, data after it.
struct MsgBuf {
    msghdr msg;
    iovec iov;
    sockaddr_storage addr;
};

// ---- sendmsg(fd, data, peer, flags, cb) -> cb(cqe, res)   (5.3)
// peer: nil (a connected socket) or a table as accept and recvmsg give. a.fd2 holds the
// flags (there is no second descriptor here).
void check_sendmsg(lua_State* L, int base, OpArgs& a) {
    check_file(L, base, a);
    a.buf = sizeof(MsgBuf);
    check_output(L, base + 1, a);
    if (!lua_isnoneornil(L, base + 2)) {
        sockaddr_storage ss;
        socklen_t len = 0;
        check_peer(L, base + 2, ss, len);
        keep_addr(L, base + 2, ss, len, a);
    }
    a.fd2 = check_flags(L, base + 3);
}
void prep_sendmsg(lua_State*, uring::Sqe& sqe, const OpArgs& a, char* buf) {
    auto* m = reinterpret_cast<MsgBuf*>(buf);
    m->iov.iov_base = const_cast<char*>(output_bytes(a, buf + sizeof(MsgBuf)));
    m->iov.iov_len = a.str_len;
    m->msg = msghdr{};
    m->msg.msg_iov = &m->iov;
    m->msg.msg_iovlen = 1;
    if (a.str2_len > 0) {
        m->msg.msg_name = &m->addr;
        m->msg.msg_namelen = copy_addr(a, &m->addr);
    }
    uring::prep_sendmsg(sqe, a.fd, &m->msg, static_cast<unsigned>(a.fd2));
}

// ---- recvmsg(fd, size, flags, cb) -> cb(cqe, res, data, peer)   (5.3)
// data: exactly res bytes; peer: the sender's address table, nil when the socket gives
// none (connected streams) or on failure.
void check_recvmsg(lua_State* L, int base, OpArgs& a) {
    check_file(L, base, a);
    a.out_len = check_size(L, base + 1);
    a.n[0] = check_flags(L, base + 2);
    // As recv (ops_io.cpp): with MSG_TRUNC res could exceed the bytes there are.
    luaL_argcheck(L, (a.n[0] & MSG_TRUNC) == 0, base + 2, "MSG_TRUNC is not supported");
    a.buf = static_cast<std::uint32_t>(sizeof(MsgBuf)) + a.out_len;
}
void prep_recvmsg(lua_State*, uring::Sqe& sqe, const OpArgs& a, char* buf) {
    auto* m = reinterpret_cast<MsgBuf*>(buf);
    m->iov.iov_base = buf + sizeof(MsgBuf);
    m->iov.iov_len = a.out_len;
    m->msg = msghdr{};
    m->msg.msg_name = &m->addr;
    m->msg.msg_namelen = sizeof(m->addr);
    m->msg.msg_iov = &m->iov;
    m->msg.msg_iovlen = 1;
    uring::prep_recvmsg(sqe, a.fd, &m->msg, static_cast<unsigned>(a.n[0]));
}
int push_recvmsg(lua_State* L, std::int32_t res, const Slot& s) {
    // Everything is read out of the slot before the first Lua allocation: a GC step there
    // may run a finalizer that queues I/O and moves the slot table (not this buffer).
    const char* base = s.buf;
    std::uint32_t n = res > 0 ? static_cast<std::uint32_t>(res) : 0;
    if (n > s.len) n = s.len;
    const auto* m = reinterpret_cast<const MsgBuf*>(base);
    sockaddr_storage peer{};
    socklen_t peer_len = res >= 0 ? m->msg.msg_namelen : 0;
    if (peer_len > sizeof(peer)) peer_len = sizeof(peer);
    std::memcpy(&peer, &m->addr, peer_len);
    lua_pushlstring(L, base + sizeof(MsgBuf), n);
    if (peer_len > 0) {
        push_peer(L, peer, peer_len);
    } else {
        lua_pushnil(L);
    }
    return 2;
}

// ---- send_zc(fd, data, flags, cb) -> cb(cqe, res)   (6.0)
// Zero copy: the string itself is handed to the kernel (pinned, never copied) and the
// callback runs once, at the notification that the kernel is done with it.
void check_send_zc(lua_State* L, int base, OpArgs& a) {
    check_file(L, base, a);
    a.str = luaL_checklstring(L, base + 1, &a.str_len);
    a.pin = base + 1;
    if (a.str_len > static_cast<std::size_t>(kMaxTransfer)) a.str_len = kMaxTransfer;
    a.n[0] = check_flags(L, base + 2);
}
void prep_send_zc(lua_State*, uring::Sqe& sqe, const OpArgs& a, char*) {
    uring::prep_send_zc(sqe, a.fd, a.str, static_cast<std::uint32_t>(a.str_len),
                        static_cast<int>(a.n[0]), 0);
}

// ---- Constants and synchronous helpers -----------------------------------------------

const Constant kFamilies[] = {
    {"INET", AF_INET},
    {"INET6", AF_INET6},
    {"UNIX", AF_UNIX},
    {nullptr, 0},
};

// Socket types, and the flags accept and socket take (socket always adds CLOEXEC).
const Constant kSockTypes[] = {
    {"STREAM", SOCK_STREAM},     {"DGRAM", SOCK_DGRAM},     {"SEQPACKET", SOCK_SEQPACKET},
    {"NONBLOCK", SOCK_NONBLOCK}, {"CLOEXEC", SOCK_CLOEXEC}, {nullptr, 0},
};

const Constant kShutHow[] = {
    {"RD", SHUT_RD},
    {"WR", SHUT_WR},
    {"RDWR", SHUT_RDWR},
    {nullptr, 0},
};

// luring.getsockname(fd) / luring.getpeername(fd) -> peer table | nil, msg, errno
int getsockname_(lua_State* L) {
    int fd = check_fd(L, 1);
    sockaddr_storage ss{};
    socklen_t len = sizeof(ss);
    if (::getsockname(fd, reinterpret_cast<sockaddr*>(&ss), &len) != 0) {
        return luaL_fileresult(L, 0, "getsockname");
    }
    push_peer(L, ss, len);
    return 1;
}
int getpeername_(lua_State* L) {
    int fd = check_fd(L, 1);
    sockaddr_storage ss{};
    socklen_t len = sizeof(ss);
    if (::getpeername(fd, reinterpret_cast<sockaddr*>(&ss), &len) != 0) {
        return luaL_fileresult(L, 0, "getpeername");
    }
    push_peer(L, ss, len);
    return 1;
}

// The options LuaSocket's setoption names, and how their values look in Lua.
enum class OptKind { boolean, integer, linger };
struct SockOpt {
    const char* name;
    int level;
    int option;
    OptKind kind;
};
const SockOpt kSockOpts[] = {
    {"tcp-nodelay", IPPROTO_TCP, TCP_NODELAY, OptKind::boolean},
    {"keepalive", SOL_SOCKET, SO_KEEPALIVE, OptKind::boolean},
    {"reuseaddr", SOL_SOCKET, SO_REUSEADDR, OptKind::boolean},
    {"reuseport", SOL_SOCKET, SO_REUSEPORT, OptKind::boolean},
    {"linger", SOL_SOCKET, SO_LINGER, OptKind::linger},
    {"rcvbuf", SOL_SOCKET, SO_RCVBUF, OptKind::integer},
    {"sndbuf", SOL_SOCKET, SO_SNDBUF, OptKind::integer},
};

const SockOpt& check_sockopt(lua_State* L, int arg) {
    const char* name = luaL_checkstring(L, arg);
    for (const SockOpt& o : kSockOpts) {
        if (std::strcmp(name, o.name) == 0) return o;
    }
    luaL_argerror(L, arg, lua_pushfstring(L, "unknown option '%s' (tcp-nodelay, keepalive, "
                                          "reuseaddr, reuseport, linger, rcvbuf, sndbuf)", name));
    return kSockOpts[0];  // not reached
}

// luring.setsockopt(fd, name, value) -> true | nil, msg, errno. Booleans for the flags,
// bytes for rcvbuf/sndbuf, seconds or false for linger.
int setsockopt_(lua_State* L) {
    int fd = check_fd(L, 1);
    const SockOpt& o = check_sockopt(L, 2);
    int value = 0;
    linger lg{};
    const void* p = &value;
    socklen_t len = sizeof(value);
    if (o.kind == OptKind::boolean) {
        luaL_checktype(L, 3, LUA_TBOOLEAN);
        value = lua_toboolean(L, 3);
    } else if (o.kind == OptKind::integer) {
        lua_Integer bytes = luaL_checkinteger(L, 3);
        luaL_argcheck(L, bytes >= 0 && bytes <= INT_MAX, 3, "size must be 0 to 2147483647");
        value = static_cast<int>(bytes);
    } else {
        if (lua_type(L, 3) != LUA_TBOOLEAN || lua_toboolean(L, 3) != 0) {
            lua_Integer secs = luaL_checkinteger(L, 3);
            luaL_argcheck(L, secs >= 0 && secs <= INT_MAX, 3,
                          "linger must be seconds (>= 0) or false");
            lg.l_onoff = 1;
            lg.l_linger = static_cast<int>(secs);
        }
        p = &lg;
        len = sizeof(lg);
    }
    if (::setsockopt(fd, o.level, o.option, p, len) != 0) {
        return luaL_fileresult(L, 0, "setsockopt");
    }
    lua_pushboolean(L, 1);
    return 1;
}

// luring.getsockopt(fd, name) -> value | nil, msg, errno (values as setsockopt takes them;
// rcvbuf/sndbuf as the kernel reports them, twice what was set).
int getsockopt_(lua_State* L) {
    int fd = check_fd(L, 1);
    const SockOpt& o = check_sockopt(L, 2);
    int value = 0;
    linger lg{};
    void* p = o.kind == OptKind::linger ? static_cast<void*>(&lg) : &value;
    socklen_t len = o.kind == OptKind::linger ? sizeof(lg) : sizeof(value);
    if (::getsockopt(fd, o.level, o.option, p, &len) != 0) {
        return luaL_fileresult(L, 0, "getsockopt");
    }
    if (o.kind == OptKind::boolean) {
        lua_pushboolean(L, value != 0);
    } else if (o.kind == OptKind::integer) {
        lua_pushinteger(L, value);
    } else if (lg.l_onoff != 0) {
        lua_pushinteger(L, lg.l_linger);
    } else {
        lua_pushboolean(L, 0);
    }
    return 1;
}

const luaL_Reg kNetFunctions[] = {
    {"getsockname", getsockname_},
    {"getpeername", getpeername_},
    {"setsockopt", setsockopt_},
    {"getsockopt", getsockopt_},
    {nullptr, nullptr},
};

}  // namespace

extern const OpDesc kNetOps[] = {
    {"accept", uring::Op::accept, 2, op_flag::result_fd, check_accept, prep_accept, push_accept,
     nullptr},
    {"multishot_accept", uring::Op::accept, 2, op_flag::result_fd | op_flag::multishot,
     check_multishot_accept, prep_multishot_accept, push_multishot_accept, nullptr},
    {"socket", uring::Op::socket, 3, op_flag::result_fd, check_socket, prep_socket, nullptr,
     sync_socket},
    {"connect", uring::Op::connect, 3, 0, check_fd_addr, prep_connect, nullptr, nullptr},
    {"bind", uring::Op::bind, 3, 0, check_fd_addr, prep_bind, nullptr, sync_bind},
    {"listen", uring::Op::listen, 2, 0, check_listen, prep_listen, nullptr, sync_listen},
    {"shutdown", uring::Op::shutdown, 2, 0, check_shutdown, prep_shutdown, nullptr, nullptr},
    {"sendmsg", uring::Op::sendmsg, 4, 0, check_sendmsg, prep_sendmsg, nullptr, nullptr},
    {"recvmsg", uring::Op::recvmsg, 3, 0, check_recvmsg, prep_recvmsg, push_recvmsg, nullptr},
    {"send_zc", uring::Op::send_zc, 3, op_flag::notif, check_send_zc, prep_send_zc, nullptr,
     nullptr},
    {nullptr, uring::Op::nop, 0, 0, nullptr, nullptr, nullptr, nullptr},
};

void open_net(lua_State* L) {
    set_constants(L, "af", kFamilies);
    set_constants(L, "sock", kSockTypes);  // replaces luring.cpp's NONBLOCK/CLOEXEC table
    set_constants(L, "shut", kShutHow);
    luaL_setfuncs(L, kNetFunctions, 0);
}

}  // namespace luring::lua
