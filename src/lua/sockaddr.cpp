// SPDX-License-Identifier: Apache-2.0
#include "sockaddr.hpp"

#include <arpa/inet.h>
#include <sys/un.h>

#include <cstddef>
#include <cstring>

namespace luring::lua {

namespace {

void set_ip(lua_State* L, const char* family, int af, const void* in_addr, unsigned port) {
    char text[INET6_ADDRSTRLEN] = "";
    inet_ntop(af, in_addr, text, sizeof(text));
    lua_pushstring(L, family);
    lua_setfield(L, -2, "family");
    lua_pushstring(L, text);
    lua_setfield(L, -2, "address");
    lua_pushinteger(L, port);
    lua_setfield(L, -2, "port");
}

}  // namespace

void push_peer(lua_State* L, const sockaddr_storage& addr, socklen_t len) {
    lua_createtable(L, 0, 3);
    const auto family = addr.ss_family;
    if (family == AF_INET) {
        const auto* in = reinterpret_cast<const sockaddr_in*>(&addr);
        set_ip(L, "inet", AF_INET, &in->sin_addr, ntohs(in->sin_port));
    } else if (family == AF_INET6) {
        const auto* in6 = reinterpret_cast<const sockaddr_in6*>(&addr);
        set_ip(L, "inet6", AF_INET6, &in6->sin6_addr, ntohs(in6->sin6_port));
    } else if (family == AF_UNIX) {
        const auto* un = reinterpret_cast<const sockaddr_un*>(&addr);
        std::size_t off = offsetof(sockaddr_un, sun_path);
        std::size_t n = len > off ? len - off : 0;
        if (n > sizeof(un->sun_path)) n = sizeof(un->sun_path);
        // Unnamed peers have no path; abstract ones start with a NUL (kept as is).
        if (n > 0 && un->sun_path[0] != '\0') n = strnlen(un->sun_path, n);
        lua_pushliteral(L, "unix");
        lua_setfield(L, -2, "family");
        lua_pushlstring(L, un->sun_path, n);
        lua_setfield(L, -2, "path");
    } else {
        lua_pushinteger(L, family);
        lua_setfield(L, -2, "family");
    }
}

}  // namespace luring::lua
