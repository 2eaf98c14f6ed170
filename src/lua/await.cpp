// SPDX-License-Identifier: Apache-2.0
// The await form of the hot ops, for luring.async: one C call queues the request with
// the calling coroutine as its callback and yields that coroutine; the completion
// resumes it from dispatch, and the call returns what the callback would have got. The
// Lua way of the same (find the task, check each argument's type, queue, note the
// handle, coroutine.yield, clear the handle) is five calls into C and twice the
// instructions per request.
//
// luring._task(ring, co, fast): makes the coroutine `co` a task of the ring (fast true:
//   its waits may take the fast path; false: a cancel or deadline waits to be noticed,
//   so they may not); fast nil: no longer a task.
// luring._task_pending(ring, co): the handle of the request the task waits on by the
//   fast path now (dispatch clears it when it resumes the task), or nil.
// luring._receives_last(ring [, on]) -> whether it was on: whether each submit of the
//   ring moves the receives of its batch after the batch's other requests
//   (uring::SubmissionQueue::order_receives_last). luring.async turns it on for its ring.
// luring._direct_send(ring [, on]) -> whether it was on: whether aw.send first tries a
//   send(2) with MSG_DONTWAIT (below). luring.async turns it on for its ring.
// luring._await(): a table of aw.<op>(ring, args... [, note, key]) for read, write,
//   recv and send (the op's arguments without the callback) and recv_until (below). When the calling coroutine
//   is a fast task of the ring, the arguments have exactly the types and ranges the op
//   takes, the ring is open, the SQ has room, and note[key] is nil or false (when a note
//   table is given): queues, stores the handle as the task's pending one and in
//   note[key] (a socket's close cancels what is noted there; the caller sets it back to
//   false, not nil, so the table does not rehash each time), and yields. Resumed by the completion, it returns cqe, res, results...
//   as the op's callback gets them, except that cqe is false when the task stopped
//   being fast while it waited (the caller owes the wait its slow end). Otherwise it
//   returns nothing at once, having done nothing: the caller takes its general path,
//   which raises the right errors and retries a full SQ.
// aw.send with _direct_send on: the bytes go to the socket at once by a send(2) with
//   MSG_DONTWAIT, as the kernel would send them inline for the request, when the
//   socket takes any; it returns true, res (bytes sent or -errno) without yielding. A
//   request, its completion and a resume of the task are a seventh of an HTTP server's
//   instructions per request. Only when the socket takes nothing now (EAGAIN) is the
//   send a request, waited for; and after kDirectSendsMax sends in a row without a
//   wait for a completion, the next one is too, so a task that only sends still lets
//   the others run. The caller keeps the order of its sends: luring.async's socket
//   takes this path only when no send of its own is queued or in flight.
// aw.send_now(ring, fd, data, flags [, note, key]): only that send(2), under the same
//   conditions: true, res, or nothing when the send must be a request (the caller then
//   arms its deadline and calls aw.send; a send that can go at once needs no deadline).
// aw.recv_until(ring, fd, size, flags, delim, mode [, note, key]): a recv whose
//   completion, when the bytes hold `delim` (1..255 bytes) once and at their end, hands
//   back only the part the caller wants and true: mode 0 the bytes before delim, 1 all
//   of them, 2 a line (delim "\n", a CR before it dropped, none elsewhere). Otherwise the
//   bytes, as recv. A request-response protocol's receive is then one Lua string, not a
//   chunk and then the part cut out of it (luring.async's receive('*l'), receiveuntil).
#include <sys/socket.h>

#include <cerrno>
#include <climits>
#include <cstring>

#include "module.hpp"

namespace luring::lua {

namespace {

// What each argument after the ring must be, one letter per argument:
//   f  a descriptor (integer, 0 .. INT_MAX)    s  a string
//   n  a size (integer, 0 .. kMaxTransfer)     o  an offset (integer >= 0)
//   g  flags (integer, 0 .. INT_MAX)           r  recv flags (g without MSG_TRUNC)
//   d  a delimiter (a string of 1..255 bytes)  m  recv_until's mode (0, 1, 2)
struct AwaitOp {
    const char* name;
    const char* args;
    const OpDesc* op;  // nullptr: the module's op of that name
    bool direct;       // a send: may be done at once by send(2) (see the top)
    bool now_only;     // and only that: never a request (aw.send_now)
    const char* of;    // the module's op it is a form of, when not `name`
};

constexpr AwaitOp kAwaitOps[] = {
    {"read", "fno", nullptr, false, false, nullptr},
    {"write", "fso", nullptr, false, false, nullptr},
    {"recv", "fnr", nullptr, false, false, nullptr},
    {"send", "fsg", nullptr, true, false, nullptr},
    {"send_now", "fsg", nullptr, true, true, "send"},
    {"recv_until", "fnrdm", &kRecvUntil, false, false, nullptr},
};

constexpr std::uint8_t kDirectSendsMax = 16;

// aw.send's send(2): pushes true and the result, returning 2; or 0, having pushed
// nothing, when the socket takes no bytes now (the request waits for room then).
int send_now(lua_State* L, const OpArgs& a, TaskEntry* task) {
    ssize_t n = 0;
    do {
        n = ::send(a.fd, a.str, a.str_len, static_cast<int>(a.n[0]) | MSG_DONTWAIT);
    } while (n < 0 && errno == EINTR);
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) return 0;
    ++task->direct_sends;
    lua_pushboolean(L, 1);
    lua_pushinteger(L, n < 0 ? -errno : static_cast<lua_Integer>(n));
    return 2;
}

// An integer in [lo, hi] at idx, into *v; false for anything else (a float, a string).
bool integer_in(lua_State* L, int idx, lua_Integer lo, lua_Integer hi, lua_Integer* v) {
    if (lua_isinteger(L, idx) == 0) return false;
    *v = lua_tointeger(L, idx);
    return *v >= lo && *v <= hi;
}

// Reads the arguments at 2.. into `a` as the op's check() would, when they match
// `kinds` exactly; false (having raised nothing) otherwise. For read, write, recv and
// send this is what check_read, check_write, check_recv and check_send (ops_io.cpp) do
// with valid arguments: fd; the data (check_output) or the size (buf, out_len); the
// offset or flags in n[0]. One pass instead of a screen and then check(): a tenth of
// the instructions of a request.
bool read_arguments(lua_State* L, const char* kinds, OpArgs& a) {
    int idx = 2;
    lua_Integer v = 0;
    for (const char* k = kinds; *k != '\0'; ++k, ++idx) {
        switch (*k) {
            case 'f':
                if (!integer_in(L, idx, 0, INT_MAX, &v)) return false;
                a.fd = static_cast<int>(v);
                break;
            case 's':
                if (lua_type(L, idx) != LUA_TSTRING) return false;
                check_output(L, idx, a);
                break;
            case 'n':
                if (!integer_in(L, idx, 0, kMaxTransfer, &v)) return false;
                a.buf = a.out_len = static_cast<std::uint32_t>(v);
                break;
            case 'o':
                if (!integer_in(L, idx, 0, LUA_MAXINTEGER, &v)) return false;
                a.n[0] = v;
                break;
            case 'd': {  // after 'n': its bytes go behind the recv's in the slot buffer
                std::size_t len = 0;
                if (lua_type(L, idx) != LUA_TSTRING) return false;
                a.str2 = lua_tolstring(L, idx, &len);
                if (len == 0 || len > 255) return false;
                a.str2_len = len;
                a.buf = a.out_len + 2 + static_cast<std::uint32_t>(len);
                break;
            }
            case 'm':
                if (!integer_in(L, idx, 0, 2, &v)) return false;
                a.n[1] = v;
                break;
            case 'g':
            case 'r':
                if (!integer_in(L, idx, 0, INT_MAX, &v)) return false;
                if (*k == 'r' && (v & MSG_TRUNC) != 0) return false;
                a.n[0] = v;
                break;
            default:
                return false;
        }
    }
    return true;
}

const OpDesc* find_op(const char* name) {
    for (const OpDesc* list : kOpLists) {
        for (const OpDesc* op = list; op->name != nullptr; ++op) {
            if (std::strcmp(op->name, name) == 0) return op;
        }
    }
    return nullptr;
}

// Upvalues of each aw.<op>: its AwaitOp and its OpDesc.
int await_op(lua_State* L) {
    const auto* w = static_cast<const AwaitOp*>(lua_touserdata(L, lua_upvalueindex(1)));
    const auto* op = static_cast<const OpDesc*>(lua_touserdata(L, lua_upvalueindex(2)));
    const char* kinds = w->args;
    const int nargs = op->nargs;
    const int top = lua_gettop(L);
    const bool noted = top == 1 + nargs + 2;
    LuaRing* r = to_ring(L, 1);
    if ((top != 1 + nargs && !noted) || r == nullptr || r->closed || r->closing ||
        r->fork_generation != g_fork_generation) {
        return 0;
    }
    TaskEntry* task = r->tasks.find(L);
    // Not yieldable: inside a C function that called Lua (a sort comparator, say),
    // where coroutine.yield would raise too; the general path says so.
    OpArgs a;
    if (task == nullptr || !task->fast || !lua_isyieldable(L) || !read_arguments(L, kinds, a)) {
        return 0;
    }
    const int note = 2 + nargs;
    bool new_key = false;
    if (noted) {
        if (lua_type(L, note) != LUA_TTABLE || lua_type(L, note + 1) != LUA_TSTRING) return 0;
        lua_pushvalue(L, note + 1);
        const int was = lua_rawget(L, note);
        const bool busy = lua_toboolean(L, -1) != 0;  // nil or false: free
        lua_settop(L, top);
        if (busy) return 0;
        new_key = was == LUA_TNIL;
    }
    if (w->direct && r->direct_send && task->direct_sends < kDirectSendsMax) {
        const int n = send_now(L, a, task);
        if (n != 0) return n;
    }
    if (w->now_only) return 0;
    if (new_key) {
        // note[key] = true first: a new key may need memory, and running out must raise
        // before the request is queued, not after (it would never be waited for). A key
        // that holds false already (the usual case) takes the handle without allocating.
        lua_pushvalue(L, note + 1);
        lua_pushboolean(L, 1);
        lua_rawset(L, note);
    }
    lua_pushthread(L);   // the callback: this coroutine
    queue_request(L, r, op, a, lua_gettop(L));
    if (lua_isnil(L, -1)) {  // the SQ is full
        if (new_key) {  // over the key just made: no allocation
            lua_pushvalue(L, note + 1);
            lua_pushboolean(L, 0);
            lua_rawset(L, note);
        }
        return 0;
    }
    // queue_request ran no Lua, so the entry is still where it was.
    task->pending = static_cast<std::uint64_t>(lua_tointeger(L, -1));
    if (noted) {  // note[key] = handle, over the existing key: no allocation
        lua_pushvalue(L, note + 1);
        lua_pushvalue(L, -2);
        lua_rawset(L, note);
    }
    // No continuation: resumed, this call returns what the resume passes (cqe, res...).
    return lua_yield(L, 0);
}

int task_set(lua_State* L) {
    LuaRing* r = check_ring(L, 1);
    luaL_checktype(L, 2, LUA_TTHREAD);
    const lua_State* co = lua_tothread(L, 2);
    if (lua_isnoneornil(L, 3)) {
        r->tasks.erase(co);
        return 0;
    }
    TaskEntry* t = r->tasks.add(co);
    if (t == nullptr) return luaL_error(L, "not enough memory for another task");
    t->fast = lua_toboolean(L, 3) != 0;
    return 0;
}

int task_pending(lua_State* L) {
    LuaRing* r = check_ring(L, 1);
    luaL_checktype(L, 2, LUA_TTHREAD);
    const TaskEntry* t = r->tasks.find(lua_tothread(L, 2));
    if (t == nullptr || t->pending == 0) {
        lua_pushnil(L);
    } else {
        lua_pushinteger(L, static_cast<lua_Integer>(t->pending));
    }
    return 1;
}

int receives_last(lua_State* L) {
    LuaRing* r = check_ring(L, 1);
    const bool was = r->ring.receives_last();
    if (!lua_isnone(L, 2)) {
        luaL_checktype(L, 2, LUA_TBOOLEAN);
        r->ring.set_receives_last(lua_toboolean(L, 2) != 0);
    }
    lua_pushboolean(L, was ? 1 : 0);
    return 1;
}

int direct_send(lua_State* L) {
    LuaRing* r = check_ring(L, 1);
    const bool was = r->direct_send;
    if (!lua_isnone(L, 2)) {
        luaL_checktype(L, 2, LUA_TBOOLEAN);
        r->direct_send = lua_toboolean(L, 2) != 0;
    }
    lua_pushboolean(L, was ? 1 : 0);
    return 1;
}

int await_ops(lua_State* L) {
    lua_createtable(L, 0, sizeof kAwaitOps / sizeof kAwaitOps[0]);
    for (const AwaitOp& w : kAwaitOps) {
        const OpDesc* op = w.op != nullptr ? w.op : find_op(w.of != nullptr ? w.of : w.name);
        if (op == nullptr || std::strlen(w.args) != op->nargs) {
            return luaL_error(L, "luring._await: no op %s of %d arguments", w.name,
                              static_cast<int>(std::strlen(w.args)));
        }
        lua_pushlightuserdata(L, const_cast<AwaitOp*>(&w));
        lua_pushlightuserdata(L, const_cast<OpDesc*>(op));
        lua_pushcclosure(L, await_op, 2);
        lua_setfield(L, -2, w.name);
    }
    return 1;
}

}  // namespace

void open_await(lua_State* L) {
    lua_pushcfunction(L, await_ops);
    lua_setfield(L, -2, "_await");
    lua_pushcfunction(L, task_set);
    lua_setfield(L, -2, "_task");
    lua_pushcfunction(L, task_pending);
    lua_setfield(L, -2, "_task_pending");
    lua_pushcfunction(L, receives_last);
    lua_setfield(L, -2, "_receives_last");
    lua_pushcfunction(L, direct_send);
    lua_setfield(L, -2, "_direct_send");
}

}  // namespace luring::lua
