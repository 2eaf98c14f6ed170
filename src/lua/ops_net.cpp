// SPDX-License-Identifier: Apache-2.0
// Sockets: accept (luring 0.1) and multishot_accept. New descriptors are close-on-exec.
#include <sys/socket.h>

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
    a.fd = check_fd(L, base);
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
    a.fd = check_fd(L, base);
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

}  // namespace

extern const OpDesc kNetOps[] = {
    {"accept", uring::Op::accept, 2, op_flag::result_fd, check_accept, prep_accept, push_accept,
     nullptr},
    {"multishot_accept", uring::Op::accept, 2, op_flag::result_fd | op_flag::multishot,
     check_multishot_accept, prep_multishot_accept, push_multishot_accept, nullptr},
    {nullptr, uring::Op::nop, 0, 0, nullptr, nullptr, nullptr, nullptr},
};

void open_net(lua_State*) {}

}  // namespace luring::lua
