// SPDX-License-Identifier: Apache-2.0
// luaopen_luring: the module table, the Ring metatable, constants, and the two
// synchronous helpers of luring 0.1 (open_file, strerror).
#include <fcntl.h>
#include <pthread.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>

#include "buffer.hpp"
#include "fixed.hpp"
#include "module.hpp"

namespace luring::lua {

namespace {

// luring.open_file(path [, mode]) -> fd | -errno. Modes as luring 0.1's README says:
//   w  read/write, create          w+ the same, truncated
//   a  write only, create, append   a+ the same, truncated
//   r  read only
// Permissions rw-rw-r-- before umask; always close-on-exec; fd 0 is a valid answer.
int open_file(lua_State* L) {
    std::size_t len = 0;
    const char* path = luaL_checklstring(L, 1, &len);
    luaL_argcheck(L, std::strlen(path) == len, 1, "path contains a NUL byte");
    const char* mode = luaL_optstring(L, 2, "w");
    int flags = 0;
    if (std::strcmp(mode, "w") == 0) {
        flags = O_RDWR | O_CREAT;
    } else if (std::strcmp(mode, "w+") == 0) {
        flags = O_RDWR | O_CREAT | O_TRUNC;
    } else if (std::strcmp(mode, "a") == 0) {
        flags = O_WRONLY | O_CREAT | O_APPEND;
    } else if (std::strcmp(mode, "a+") == 0) {
        flags = O_WRONLY | O_CREAT | O_APPEND | O_TRUNC;
    } else if (std::strcmp(mode, "r") == 0) {
        flags = O_RDONLY;
    } else {
        return luaL_argerror(L, 2, "mode must be one of 'w', 'w+', 'a', 'a+', 'r'");
    }
    int fd = ::open(path, flags | O_CLOEXEC, 0664);
    lua_pushinteger(L, fd >= 0 ? fd : -errno);
    return 1;
}

// luring.strerror(errno) -> message. Either sign works, so strerror(res) is fine.
int strerror_(lua_State* L) {
    lua_Integer n = luaL_checkinteger(L, 1);
    if (n < -INT32_MAX || n > INT32_MAX) n = INT32_MAX;  // "Unknown error", and no overflow
    if (n < 0) n = -n;
    lua_pushstring(L, std::strerror(static_cast<int>(n)));
    return 1;
}

void on_fork_child() { ++g_fork_generation; }

const Constant kSetupFlags[] = {
    {"IOPOLL", uring::setup::iopoll},
    {"SQPOLL", uring::setup::sqpoll},
    {"SQ_AFF", uring::setup::sq_aff},
    {"CQSIZE", uring::setup::cqsize},
    {"CLAMP", uring::setup::clamp},
    {"SUBMIT_ALL", uring::setup::submit_all},
    {"COOP_TASKRUN", uring::setup::coop_taskrun},
    {"TASKRUN_FLAG", uring::setup::taskrun_flag},
    {"SINGLE_ISSUER", uring::setup::single_issuer},
    {"DEFER_TASKRUN", uring::setup::defer_taskrun},
    {"NO_SQARRAY", uring::setup::no_sqarray},
    {nullptr, 0},
};

#define LURING_ERRNO(e) {#e, e}
const Constant kErrno[] = {
    LURING_ERRNO(EPERM),     LURING_ERRNO(ENOENT),      LURING_ERRNO(EINTR),
    LURING_ERRNO(EIO),       LURING_ERRNO(EBADF),       LURING_ERRNO(EAGAIN),
    LURING_ERRNO(ENOMEM),    LURING_ERRNO(EACCES),      LURING_ERRNO(EFAULT),
    LURING_ERRNO(EBUSY),     LURING_ERRNO(EEXIST),      LURING_ERRNO(EINVAL),
    LURING_ERRNO(ENFILE),    LURING_ERRNO(EMFILE),      LURING_ERRNO(ENOSPC),
    LURING_ERRNO(EPIPE),     LURING_ERRNO(ENOSYS),      LURING_ERRNO(ETIME),
    LURING_ERRNO(ECANCELED), LURING_ERRNO(EOPNOTSUPP),  LURING_ERRNO(ECONNREFUSED),
    LURING_ERRNO(ECONNRESET), LURING_ERRNO(ENOTCONN),   LURING_ERRNO(ETIMEDOUT),
    LURING_ERRNO(EALREADY),  LURING_ERRNO(EADDRINUSE),  LURING_ERRNO(ENOBUFS),
    LURING_ERRNO(ENOTSOCK),  LURING_ERRNO(EISDIR),      LURING_ERRNO(EBADR),
    LURING_ERRNO(ENOTDIR),   LURING_ERRNO(ENOTEMPTY),   LURING_ERRNO(ESPIPE),
    LURING_ERRNO(EXDEV),     LURING_ERRNO(ELOOP),       LURING_ERRNO(ENAMETOOLONG),
    LURING_ERRNO(EROFS),     LURING_ERRNO(EFBIG),       LURING_ERRNO(ENXIO),
    LURING_ERRNO(ENODEV),    LURING_ERRNO(ESRCH),       LURING_ERRNO(EMSGSIZE),
    LURING_ERRNO(EINPROGRESS), LURING_ERRNO(EADDRNOTAVAIL), LURING_ERRNO(EAFNOSUPPORT),
    LURING_ERRNO(ENETUNREACH), LURING_ERRNO(EHOSTUNREACH), LURING_ERRNO(ECONNABORTED),
    LURING_ERRNO(EPROTONOSUPPORT), LURING_ERRNO(EDESTADDRREQ), LURING_ERRNO(EISCONN),
    LURING_ERRNO(ENOEXEC),   LURING_ERRNO(E2BIG),       LURING_ERRNO(EOVERFLOW),
    {nullptr, 0},
};
#undef LURING_ERRNO

const Constant kMsgFlags[] = {
    {"DONTWAIT", MSG_DONTWAIT}, {"NOSIGNAL", MSG_NOSIGNAL}, {"PEEK", MSG_PEEK},
    {"WAITALL", MSG_WAITALL},   {"MORE", MSG_MORE},         {nullptr, 0},
};

const Constant kSockFlags[] = {
    {"NONBLOCK", SOCK_NONBLOCK},
    {"CLOEXEC", SOCK_CLOEXEC},
    {nullptr, 0},
};

const Constant kSqeFlags[] = {
    {"IO_DRAIN", uring::sqe_flag::io_drain},
    {"ASYNC", uring::sqe_flag::async},
    {"CQE_SKIP_SUCCESS", uring::sqe_flag::cqe_skip_success},
    {nullptr, 0},
};

// The functions that take a ring besides the ops: in the module table, and as the
// ring's methods.
const luaL_Reg kRingFunctions[] = {
    {"queue_exit", queue_exit},
    {"submit", submit},
    {"submit_and_wait", submit_and_wait},
    {"do_cqes", do_cqes},
    {"cqe_seen", cqe_seen},
    {"wait", ring_wait},
    {"run", ring_run},
    {"in_flight", ring_in_flight},
    {"run_once", ring_run_once},
    {"recv_buffers", recv_buffers},
    {"register_files", register_files},
    {"unregister_files", unregister_files},
    {"register_buffers", register_buffers},
    {"unregister_buffers", unregister_buffers},
    {"setup_flags", ring_setup_flags},
    {"register_ring_fd", ring_register_fd},
    {"unregister_ring_fd", ring_unregister_fd},
    {nullptr, nullptr},
};

// Sets every ring function and op (as an op_entry closure over its OpDesc) in the
// table on top of the stack; `methods` is the method table that ring:link looks ops
// up in.
void set_ring_functions(lua_State* L, int methods) {
    luaL_setfuncs(L, kRingFunctions, 0);
    for (const OpDesc* list : kOpLists) {
        for (const OpDesc* op = list; op->name != nullptr; ++op) {
            lua_pushlightuserdata(L, const_cast<OpDesc*>(op));
            lua_pushcclosure(L, op_entry, 1);
            lua_setfield(L, -2, op->name);
        }
    }
    lua_pushvalue(L, methods);
    lua_pushcclosure(L, op_link, 1);
    lua_setfield(L, -2, "link");
}

const luaL_Reg kMeta[] = {
    {"__gc", ring_gc},
    {"__close", ring_gc},
    {"__tostring", ring_tostring},
    {nullptr, nullptr},
};

// __index of a constants table: only reached for a name it does not have.
int missing_constant(lua_State* L) {
    return luaL_error(L, "luring.%s has no constant '%s'", lua_tostring(L, lua_upvalueindex(1)),
                      luaL_tolstring(L, 2, nullptr));
}

}  // namespace

void set_constants(lua_State* L, const char* table, const Constant* list) {
    lua_newtable(L);
    for (const Constant* c = list; c->name != nullptr; ++c) {
        lua_pushinteger(L, c->value);
        lua_setfield(L, -2, c->name);
    }
    lua_createtable(L, 0, 1);
    lua_pushstring(L, table);
    lua_pushcclosure(L, missing_constant, 1);
    lua_setfield(L, -2, "__index");
    lua_setmetatable(L, -2);
    lua_setfield(L, -2, table);
}

}  // namespace luring::lua

extern "C" __attribute__((visibility("default"))) int luaopen_luring(lua_State* L) {
    using namespace luring::lua;
    static bool atfork_registered = false;
    if (!atfork_registered) {
        pthread_atfork(nullptr, nullptr, on_fork_child);
        atfork_registered = true;
    }
    luaL_checkversion(L);

    // The rings' refs tables, weak-keyed by ring (an ephemeron table: a callback that
    // refers to its ring does not keep the ring alive).
    lua_newtable(L);
    lua_createtable(L, 0, 1);
    lua_pushliteral(L, "k");
    lua_setfield(L, -2, "__mode");
    lua_setmetatable(L, -2);
    lua_rawsetp(L, LUA_REGISTRYINDEX, &kRefsKey);

    // The metatable; __index is the method table.
    luaL_newmetatable(L, kRingMeta);
    luaL_setfuncs(L, kMeta, 0);
    lua_newtable(L);
    const int methods = lua_gettop(L);
    set_ring_functions(L, methods);
    lua_getfield(L, -1, "queue_exit");
    lua_setfield(L, -2, "close");  // ring:close() is queue_exit
    lua_setfield(L, -2, "__index");
    lua_pushliteral(L, "luring.Ring is not accessible");
    lua_setfield(L, -2, "__metatable");
    const int meta = lua_gettop(L);
    lua_getfield(L, meta, "__index");
    const int method_table = lua_gettop(L);

    lua_newtable(L);
    set_ring_functions(L, method_table);
    lua_pushvalue(L, meta);  // queue_init gives new rings this metatable
    lua_pushcclosure(L, queue_init, 1);
    lua_setfield(L, -2, "queue_init");
    lua_pushcfunction(L, open_file);
    lua_setfield(L, -2, "open_file");
    lua_pushcfunction(L, strerror_);
    lua_setfield(L, -2, "strerror");
    lua_pushcfunction(L, probe);
    lua_setfield(L, -2, "probe");
    set_constants(L, "setup", kSetupFlags);
    set_constants(L, "errno", kErrno);
    set_constants(L, "msg", kMsgFlags);
    set_constants(L, "sock", kSockFlags);
    set_constants(L, "sqe", kSqeFlags);
    lua_pushcfunction(L, now);
    lua_setfield(L, -2, "now");
    lua_pushcfunction(L, test_gc_on_push);
    lua_setfield(L, -2, "_test_gc_on_push");
    open_await(L);
    open_buffer(L);
    open_fixed(L);
    open_fs(L);
    open_net(L);
    open_time(L);
    lua_pushliteral(L, "0.2.0");
    lua_setfield(L, -2, "_VERSION");
    return 1;
}
