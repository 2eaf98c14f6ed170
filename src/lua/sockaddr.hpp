// SPDX-License-Identifier: Apache-2.0
// Socket addresses between Lua and the kernel: the peer tables callbacks get, and the
// (host, port) pairs and peer tables that connect, bind and sendmsg take.
#pragma once

#include <lua.hpp>
#include <sys/socket.h>

namespace luring::lua {

// Pushes { family = "inet", address = "127.0.0.1", port = n } for IPv4 (likewise
// "inet6"), { family = "unix", path = "..." } for AF_UNIX ("" when unnamed; an abstract
// name keeps its leading NUL), { family = n } for anything else.
void push_peer(lua_State* L, const sockaddr_storage& addr, socklen_t len);

// The address (host at host_arg, port at port_arg) for socket `fd`, in the family of the
// socket itself (getsockopt SO_DOMAIN):
//   AF_INET   host an IPv4 literal, "localhost" (127.0.0.1) or "*" (any); port 0..65535;
//   AF_INET6  host an IPv6 literal (brackets and a %scope allowed), an IPv4 literal (as
//             its v4-mapped address), "localhost" (::1) or "*" (any); port 0..65535;
//   AF_UNIX   host the path, port nil; a leading "\0" makes an abstract name, and ""
//             the unnamed address (bind: autobind).
// Raises on misuse (a bad literal, naming it; a port out of range; a path too long; a
// family without addresses here). Returns false, with `out` zeroed and `len` 0, when
// `fd` is no socket or no descriptor: the kernel then gives the op its own answer
// (-EBADF, -ENOTSOCK). Only reads the stack.
bool check_sockaddr(lua_State* L, int fd, int host_arg, int port_arg, sockaddr_storage& out,
                    socklen_t& len);

// The address in a peer table at `arg`, as push_peer makes them ({family = "inet",
// address =, port =}, {family = "unix", path =}; family may also be luring.af.*).
// Raises on misuse, naming the field. Leaves the stack as it was.
void check_peer(lua_State* L, int arg, sockaddr_storage& out, socklen_t& len);

// AF_INET, AF_INET6 or AF_UNIX for "inet", "inet6" or "unix"; -1 for anything else.
int family_from_name(const char* name);

}  // namespace luring::lua
