// SPDX-License-Identifier: Apache-2.0
#include "sockaddr.hpp"

#include <arpa/inet.h>
#include <net/if.h>
#include <sys/un.h>

#include <cstddef>
#include <cstdint>
#include <cstdlib>
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

bool is(const char* s, std::size_t n, const char* word) {
    return n == std::strlen(word) && std::memcmp(s, word, n) == 0;
}

bool parse_ip4(const char* host, std::size_t n, in_addr& out) {
    if (is(host, n, "localhost")) {
        out.s_addr = htonl(INADDR_LOOPBACK);
        return true;
    }
    if (is(host, n, "*")) {
        out.s_addr = htonl(INADDR_ANY);
        return true;
    }
    return std::strlen(host) == n && inet_pton(AF_INET, host, &out) == 1;
}

// An IPv6 literal, bracketed or not, with an optional %scope (interface name or number);
// an IPv4 literal becomes its v4-mapped address (::ffff:a.b.c.d).
bool parse_ip6(const char* host, std::size_t n, sockaddr_in6& out) {
    if (is(host, n, "localhost")) {
        out.sin6_addr = in6addr_loopback;
        return true;
    }
    if (is(host, n, "*")) {
        out.sin6_addr = in6addr_any;
        return true;
    }
    char text[INET6_ADDRSTRLEN + IF_NAMESIZE + 3];
    if (n >= sizeof(text) || std::strlen(host) != n) return false;
    std::memcpy(text, host, n + 1);
    char* start = text;
    if (n >= 2 && text[0] == '[' && text[n - 1] == ']') {
        text[n - 1] = '\0';
        ++start;
    }
    char* scope = std::strchr(start, '%');
    if (scope != nullptr) {
        *scope++ = '\0';
        char* end = nullptr;
        unsigned long id = std::strtoul(scope, &end, 10);
        if (*scope == '\0' || *end != '\0') id = if_nametoindex(scope);
        if (id == 0 || id > 0xffff'ffffUL) return false;
        out.sin6_scope_id = static_cast<std::uint32_t>(id);
        return inet_pton(AF_INET6, start, &out.sin6_addr) == 1;
    }
    if (inet_pton(AF_INET6, start, &out.sin6_addr) == 1) return true;
    in_addr v4{};
    if (inet_pton(AF_INET, start, &v4) != 1) return false;
    out.sin6_addr = in6addr_any;
    out.sin6_addr.s6_addr[10] = 0xff;
    out.sin6_addr.s6_addr[11] = 0xff;
    std::memcpy(&out.sin6_addr.s6_addr[12], &v4, sizeof(v4));
    return true;
}

// Fills out/len (zeroed by the caller) with host and port in family `af`. Returns nullptr,
// or what is wrong (pushed on the stack) for the caller to raise.
const char* parse_host(lua_State* L, int af, const char* host, std::size_t n, unsigned port,
                       sockaddr_storage& out, socklen_t& len) {
    if (af == AF_INET) {
        auto* in = reinterpret_cast<sockaddr_in*>(&out);
        if (!parse_ip4(host, n, in->sin_addr)) {
            return lua_pushfstring(L, "not an IPv4 address: '%s'", host);
        }
        in->sin_family = AF_INET;
        in->sin_port = htons(static_cast<std::uint16_t>(port));
        len = sizeof(sockaddr_in);
    } else if (af == AF_INET6) {
        auto* in6 = reinterpret_cast<sockaddr_in6*>(&out);
        if (!parse_ip6(host, n, *in6)) {
            return lua_pushfstring(L, "not an IPv6 address: '%s'", host);
        }
        in6->sin6_family = AF_INET6;
        in6->sin6_port = htons(static_cast<std::uint16_t>(port));
        len = sizeof(sockaddr_in6);
    } else if (af == AF_UNIX) {
        auto* un = reinterpret_cast<sockaddr_un*>(&out);
        if (n > sizeof(un->sun_path)) {
            return lua_pushfstring(L, "unix path is longer than %d bytes",
                                   static_cast<int>(sizeof(un->sun_path)));
        }
        // A path name is NUL-terminated unless it fills sun_path; an abstract name (a
        // leading NUL) is its bytes, NULs and all; "" is the unnamed address.
        const bool abstract = n > 0 && host[0] == '\0';
        if (!abstract && std::strlen(host) != n) return "unix path contains a NUL byte";
        un->sun_family = AF_UNIX;
        std::memcpy(un->sun_path, host, n);
        std::size_t size = offsetof(sockaddr_un, sun_path) + n;
        if (n > 0 && !abstract && n < sizeof(un->sun_path)) ++size;
        len = static_cast<socklen_t>(size);
    } else {
        return lua_pushfstring(L, "addresses of family %d are not supported", af);
    }
    return nullptr;
}

unsigned check_port(lua_State* L, int arg) {
    lua_Integer port = luaL_checkinteger(L, arg);
    luaL_argcheck(L, port >= 0 && port <= 65535, arg, "port must be 0 to 65535");
    return static_cast<unsigned>(port);
}

}  // namespace

int family_from_name(const char* name) {
    if (std::strcmp(name, "inet") == 0) return AF_INET;
    if (std::strcmp(name, "inet6") == 0) return AF_INET6;
    if (std::strcmp(name, "unix") == 0) return AF_UNIX;
    return -1;
}

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

bool check_sockaddr(lua_State* L, int fd, int host_arg, int port_arg, sockaddr_storage& out,
                    socklen_t& len) {
    out = sockaddr_storage{};
    len = 0;
    std::size_t n = 0;
    const char* host = luaL_checklstring(L, host_arg, &n);
    int af = 0;
    socklen_t af_len = sizeof(af);
    if (getsockopt(fd, SOL_SOCKET, SO_DOMAIN, &af, &af_len) != 0) {
        if (!lua_isnoneornil(L, port_arg)) check_port(L, port_arg);
        return false;  // no socket: the kernel says so in the op's result
    }
    unsigned port = 0;
    if (af == AF_UNIX) {
        luaL_argcheck(L, lua_isnoneornil(L, port_arg), port_arg, "must be nil for a unix socket");
    } else if (af == AF_INET || af == AF_INET6) {
        port = check_port(L, port_arg);
    }
    const char* err = parse_host(L, af, host, n, port, out, len);
    if (err != nullptr) luaL_argerror(L, host_arg, err);
    return true;
}

void check_peer(lua_State* L, int arg, sockaddr_storage& out, socklen_t& len) {
    arg = lua_absindex(L, arg);
    luaL_checktype(L, arg, LUA_TTABLE);
    out = sockaddr_storage{};
    len = 0;
    const int top = lua_gettop(L);
    int af = -1;
    lua_getfield(L, arg, "family");
    if (lua_type(L, -1) == LUA_TSTRING) {
        af = family_from_name(lua_tostring(L, -1));
    } else if (lua_isinteger(L, -1)) {
        lua_Integer v = lua_tointeger(L, -1);
        if (v == AF_INET || v == AF_INET6 || v == AF_UNIX) af = static_cast<int>(v);
    }
    if (af < 0) luaL_argerror(L, arg, "peer.family must be 'inet', 'inet6' or 'unix'");
    unsigned port = 0;
    const char* field = af == AF_UNIX ? "path" : "address";
    if (af != AF_UNIX) {
        lua_getfield(L, arg, "port");
        int ok = 0;
        lua_Integer p = lua_tointegerx(L, -1, &ok);
        if (ok == 0 || p < 0 || p > 65535) {
            luaL_argerror(L, arg, "peer.port must be an integer from 0 to 65535");
        }
        port = static_cast<unsigned>(p);
    }
    if (lua_getfield(L, arg, field) != LUA_TSTRING) {
        luaL_argerror(L, arg, lua_pushfstring(L, "peer.%s must be a string", field));
    }
    std::size_t n = 0;
    const char* host = lua_tolstring(L, -1, &n);
    const char* err = parse_host(L, af, host, n, port, out, len);
    if (err != nullptr) luaL_argerror(L, arg, lua_pushfstring(L, "peer.%s: %s", field, err));
    lua_settop(L, top);
}

}  // namespace luring::lua
