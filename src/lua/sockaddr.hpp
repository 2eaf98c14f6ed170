// SPDX-License-Identifier: Apache-2.0
// Socket addresses between Lua and the kernel: the peer tables callbacks get.
#pragma once

#include <lua.hpp>
#include <sys/socket.h>

namespace luring::lua {

// Pushes { family = "inet", address = "127.0.0.1", port = n } for IPv4 (likewise
// "inet6"), { family = "unix", path = "..." } for AF_UNIX ("" when unnamed; an abstract
// name keeps its leading NUL), { family = n } for anything else.
void push_peer(lua_State* L, const sockaddr_storage& addr, socklen_t len);

}  // namespace luring::lua
