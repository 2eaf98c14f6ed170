// SPDX-License-Identifier: Apache-2.0
// testlib: a test-only Lua module with the few synchronous POSIX calls plain Lua lacks
// (fork, waitpid, raw descriptors). Built beside the tests, never installed.
// Failures return nil, "call: strerror", errno (luaL_fileresult, lauxlib.c:246).
#include <fcntl.h>
#include <lua.hpp>
#include <signal.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <climits>
#include <cstdio>

namespace {

// The largest read() the tests may ask for; keeps the Lua buffer allocation sane.
constexpr lua_Integer kMaxRead = 1 << 30;

int check_fd(lua_State* L, int arg) {
    lua_Integer fd = luaL_checkinteger(L, arg);
    luaL_argcheck(L, fd >= 0 && fd <= INT_MAX, arg, "file descriptor out of range");
    return static_cast<int>(fd);
}

pid_t check_pid(lua_State* L, int arg) {
    lua_Integer pid = luaL_checkinteger(L, arg);
    luaL_argcheck(L, pid >= INT_MIN && pid <= INT_MAX, arg, "pid out of range");
    return static_cast<pid_t>(pid);
}

// testlib.fork() -> pid (0 in the child). C stdio (Lua's io library) is flushed first,
// so output buffered before the fork is not written again by a child that exits
// through exit() (os.exit).
int fork_(lua_State* L) {
    std::fflush(nullptr);
    pid_t pid = ::fork();
    if (pid < 0) return luaL_fileresult(L, 0, "fork");
    lua_pushinteger(L, pid);
    return 1;
}

// testlib.waitpid(pid) -> exit status, or "signal", signo. No EINTR retry: a signal
// sent to interrupt a hung test must get through.
int waitpid_(lua_State* L) {
    pid_t pid = check_pid(L, 1);
    int status = 0;
    if (::waitpid(pid, &status, 0) < 0) return luaL_fileresult(L, 0, "waitpid");
    if (WIFSIGNALED(status)) {
        lua_pushliteral(L, "signal");
        lua_pushinteger(L, WTERMSIG(status));
        return 2;
    }
    lua_pushinteger(L, WEXITSTATUS(status));
    return 1;
}

// testlib._exit([code]): ends the process at once: no finalizers, no stdio flush, no
// atexit handlers (what a forked child should do).
int exit_(lua_State* L) {
    lua_Integer code = luaL_optinteger(L, 1, 0);
    ::_exit(static_cast<int>(code & 0xff));
}

int close_(lua_State* L) {
    int fd = check_fd(L, 1);
    return luaL_fileresult(L, ::close(fd) == 0, "close");
}

// testlib.pipe() -> rfd, wfd (close-on-exec).
int pipe_(lua_State* L) {
    int fds[2];
    if (::pipe2(fds, O_CLOEXEC) != 0) return luaL_fileresult(L, 0, "pipe");
    lua_pushinteger(L, fds[0]);
    lua_pushinteger(L, fds[1]);
    return 2;
}

// testlib.socketpair() -> fd1, fd2: connected AF_UNIX stream sockets, close-on-exec.
int socketpair_(lua_State* L) {
    int fds[2];
    if (::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, fds) != 0) {
        return luaL_fileresult(L, 0, "socketpair");
    }
    lua_pushinteger(L, fds[0]);
    lua_pushinteger(L, fds[1]);
    return 2;
}

// testlib.write(fd, str) -> bytes written (one write(2), may be short).
int write_(lua_State* L) {
    int fd = check_fd(L, 1);
    std::size_t len = 0;
    const char* s = luaL_checklstring(L, 2, &len);
    ssize_t n = ::write(fd, s, len);
    if (n < 0) return luaL_fileresult(L, 0, "write");
    lua_pushinteger(L, n);
    return 1;
}

// testlib.read(fd, n) -> up to n bytes ("" at end of file), from one read(2).
int read_(lua_State* L) {
    int fd = check_fd(L, 1);
    lua_Integer want = luaL_checkinteger(L, 2);
    luaL_argcheck(L, want >= 0 && want <= kMaxRead, 2, "size out of range");
    // The buffer is a Lua allocation made before the call, so nothing leaks if it raises.
    luaL_Buffer b;
    char* p = luaL_buffinitsize(L, &b, static_cast<std::size_t>(want));
    ssize_t n = ::read(fd, p, static_cast<std::size_t>(want));
    if (n < 0) return luaL_fileresult(L, 0, "read");
    luaL_pushresultsize(&b, static_cast<std::size_t>(n));
    return 1;
}

int kill_(lua_State* L) {
    pid_t pid = check_pid(L, 1);
    lua_Integer sig = luaL_checkinteger(L, 2);
    luaL_argcheck(L, sig >= 0 && sig < NSIG, 2, "signal out of range");
    return luaL_fileresult(L, ::kill(pid, static_cast<int>(sig)) == 0, "kill");
}

// testlib.alarm(seconds) -> seconds left of the previous alarm. SIGALRM's default action
// ends the process: a bound for a test that could hang in a blocking call (a wait for
// completions that never come, waitpid on a child that never exits). 0 cancels.
int alarm_(lua_State* L) {
    lua_Integer s = luaL_checkinteger(L, 1);
    luaL_argcheck(L, s >= 0 && s <= 3600, 1, "seconds out of range");
    lua_pushinteger(L, ::alarm(static_cast<unsigned>(s)));
    return 1;
}

int getpid_(lua_State* L) {
    lua_pushinteger(L, ::getpid());
    return 1;
}

const luaL_Reg kFunctions[] = {
    {"fork", fork_},
    {"waitpid", waitpid_},
    {"_exit", exit_},
    {"close", close_},
    {"pipe", pipe_},
    {"socketpair", socketpair_},
    {"write", write_},
    {"read", read_},
    {"kill", kill_},
    {"getpid", getpid_},
    {"alarm", alarm_},
    {nullptr, nullptr},
};

}  // namespace

extern "C" __attribute__((visibility("default"))) int luaopen_testlib(lua_State* L) {
    luaL_newlib(L, kFunctions);
    return 1;
}
