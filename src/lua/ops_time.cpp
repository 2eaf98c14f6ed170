// SPDX-License-Identifier: Apache-2.0
// Time and control: timeout, timeout_remove, link_timeout, poll_add, poll_multishot,
// poll_remove, cancel, cancel_fd, cancel_all and nop.
//
// Requests are named by their handles: the integer every op returns is the request's
// user_data, which is what the kernel matches when it removes or cancels. A timespec
// the kernel reads lives in the slot's buffer until the final completion (under SQPOLL
// the poller reads it after the call returned).
#include <poll.h>

#include <cstdint>
#include <cstring>

#include "module.hpp"
#include "prep.hpp"

namespace luring::lua {

namespace {

// Stores the timespec of `arg` (seconds >= 0) in a.n[0..1] and asks for room for it.
void check_timespec(lua_State* L, int arg, OpArgs& a) {
    const uring::KernelTimespec ts = check_seconds(L, arg);
    a.n[0] = ts.tv_sec;
    a.n[1] = ts.tv_nsec;
    a.buf = sizeof(uring::KernelTimespec);
}

// The timespec check_timespec() read, copied into the slot's buffer.
const uring::KernelTimespec* copy_timespec(const OpArgs& a, char* buf) {
    auto* ts = reinterpret_cast<uring::KernelTimespec*>(buf);
    ts->tv_sec = a.n[0];
    ts->tv_nsec = a.n[1];
    return ts;
}

// A request's handle: the positive integer an op returned (its user_data).
std::uint64_t check_handle(lua_State* L, int arg) {
    const lua_Integer h = luaL_checkinteger(L, arg);
    luaL_argcheck(L, h > 0, arg, "must be a request handle (the integer an op returned)");
    return static_cast<std::uint64_t>(h);
}

// Poll events: an integer of luring.poll.* bits, or a string of "r" (IN) and "w" (OUT).
std::int64_t check_events(lua_State* L, int arg) {
    if (lua_type(L, arg) == LUA_TSTRING) {
        std::size_t len = 0;
        const char* s = lua_tolstring(L, arg, &len);
        std::int64_t events = 0;
        for (std::size_t k = 0; k < len; ++k) {
            if (s[k] == 'r') {
                events |= POLLIN;
            } else if (s[k] == 'w') {
                events |= POLLOUT;
            } else {
                events = 0;
                break;
            }
        }
        luaL_argcheck(L, events != 0, arg, "events must be \"r\", \"w\" or \"rw\"");
        return events;
    }
    if (lua_isnoneornil(L, arg)) luaL_typeerror(L, arg, "integer or string");
    return check_int_range(L, arg, 0, 0, 0xffff, "events must be luring.poll.* bits");
}

// ---- timeout(seconds, count, mode, cb) -> cb(cqe, res)   (5.4)
// res: -ETIME when the time came, 0 when `count` other completions came first,
// -ECANCELED when timeout_remove or a cancel removed it.
void check_timeout(lua_State* L, int base, OpArgs& a) {
    check_timespec(L, base, a);
    a.n[2] =
        check_int_range(L, base + 1, 0, 0, UINT32_MAX, "count must be between 0 and 4294967295");
    const char* mode = luaL_optstring(L, base + 2, "relative");
    if (std::strcmp(mode, "relative") == 0) {
        a.n[3] = 0;
    } else if (std::strcmp(mode, "absolute") == 0) {
        a.n[3] = uring::timeout_flag::abs;  // CLOCK_MONOTONIC, luring.now()'s clock
    } else if (std::strcmp(mode, "realtime") == 0) {
        a.n[3] = uring::timeout_flag::abs | uring::timeout_flag::realtime;  // 5.15
    } else {
        luaL_argerror(L, base + 2, "mode must be 'relative', 'absolute' or 'realtime'");
    }
}
void prep_timeout(lua_State*, uring::Sqe& sqe, const OpArgs& a, char* buf) {
    uring::prep_timeout(sqe, copy_timespec(a, buf), static_cast<std::uint32_t>(a.n[2]),
                        static_cast<std::uint32_t>(a.n[3]));
}

// ---- timeout_remove(handle, cb) -> cb(cqe, res)   (5.5)
// res: 0 (the timeout completes with -ECANCELED), -ENOENT (no such timeout pending),
// -EALREADY (it is firing).
// The one argument of timeout_remove, poll_remove and cancel: the handle to act on.
void check_target(lua_State* L, int base, OpArgs& a) {
    a.n[0] = static_cast<std::int64_t>(check_handle(L, base));
}
void prep_timeout_remove(lua_State*, uring::Sqe& sqe, const OpArgs& a, char*) {
    uring::prep_timeout_remove(sqe, static_cast<std::uint64_t>(a.n[0]), 0);
}

// ---- link_timeout(seconds, cb) -> cb(cqe, res)   (5.5; ring:link only)
// res: -ETIME when it fired (the request before it then gets -ECANCELED), -ECANCELED
// when that request completed first.
void check_link_timeout(lua_State* L, int base, OpArgs& a) { check_timespec(L, base, a); }
void prep_link_timeout(lua_State*, uring::Sqe& sqe, const OpArgs& a, char* buf) {
    uring::prep_link_timeout(sqe, copy_timespec(a, buf), 0);
}

// ---- poll_add(fd, events, cb) -> cb(cqe, res)   (5.1; res the ready mask)
// ---- poll_multishot(fd, events, cb) -> cb(cqe, res, more)   (5.13)
void check_poll(lua_State* L, int base, OpArgs& a) {
    check_file(L, base, a);
    a.n[0] = check_events(L, base + 1);
}
void prep_poll_add(lua_State*, uring::Sqe& sqe, const OpArgs& a, char*) {
    uring::prep_poll_add(sqe, a.fd, static_cast<std::uint32_t>(a.n[0]));
}
void prep_poll_multishot(lua_State*, uring::Sqe& sqe, const OpArgs& a, char*) {
    uring::prep_poll_multishot(sqe, a.fd, static_cast<std::uint32_t>(a.n[0]));
}

// ---- poll_remove(handle, cb) -> cb(cqe, res)   (5.1; 0 or -ENOENT / -EALREADY)
void prep_poll_remove(lua_State*, uring::Sqe& sqe, const OpArgs& a, char*) {
    uring::prep_poll_remove(sqe, static_cast<std::uint64_t>(a.n[0]));
}

// ---- cancel(handle, cb) -> cb(cqe, res)   (5.5)
// res: 0 (found; the request completes with -ECANCELED, or -EINTR for one that was
// running in a worker), -ENOENT (not in flight), -EALREADY (running, told to stop).
void prep_cancel(lua_State*, uring::Sqe& sqe, const OpArgs& a, char*) {
    uring::prep_cancel(sqe, static_cast<std::uint64_t>(a.n[0]), 0);
}

// ---- cancel_fd(fd, cb) -> cb(cqe, res)   (5.19; res how many were cancelled, 0 none)
void check_cancel_fd(lua_State* L, int base, OpArgs& a) { a.fd = check_fd(L, base); }
void prep_cancel_fd(lua_State*, uring::Sqe& sqe, const OpArgs& a, char*) {
    uring::prep_cancel_fd(sqe, a.fd, uring::cancel_flag::all);
}

// ---- cancel_all(cb) -> cb(cqe, res)   (5.19; res how many were cancelled, 0 none)
// IORING_ASYNC_CANCEL_ANY matches every request of the ring the kernel finds: waiting
// ones (polls, timeouts, armed reads and recvs) and ones queued in its workers. It
// never counts or cancels itself: issued inline it is on none of those lists; with
// luring.sqe.ASYNC its worker sees it running, but a running match only yields
// -EALREADY, which the search of the poll and timeout lists replaces (io_try_cancel,
// cancel.c), so it is not counted (test_time checks both). Requests queued behind it
// in the same submission are not started yet, so they are not cancelled.
void check_none(lua_State*, int, OpArgs&) {}
void prep_cancel_all(lua_State*, uring::Sqe& sqe, const OpArgs&, char*) {
    uring::prep_cancel(sqe, 0, uring::cancel_flag::any | uring::cancel_flag::all);
}

// ---- nop(cb) -> cb(cqe, res)   (5.1; res 0)
void prep_nop(lua_State*, uring::Sqe& sqe, const OpArgs&, char*) { uring::prep_nop(sqe); }

const Constant kPollEvents[] = {
    {"IN", POLLIN},   {"OUT", POLLOUT},     {"PRI", POLLPRI},   {"ERR", POLLERR},
    {"HUP", POLLHUP}, {"RDHUP", POLLRDHUP}, {"NVAL", POLLNVAL}, {nullptr, 0},
};

}  // namespace

extern const OpDesc kTimeOps[] = {
    {"timeout", uring::Op::timeout, 3, 0, check_timeout, prep_timeout, nullptr, nullptr},
    {"timeout_remove", uring::Op::timeout_remove, 1, 0, check_target, prep_timeout_remove, nullptr,
     nullptr},
    {"link_timeout", uring::Op::link_timeout, 1, op_flag::link_only, check_link_timeout,
     prep_link_timeout, nullptr, nullptr},
    {"poll_add", uring::Op::poll_add, 2, 0, check_poll, prep_poll_add, nullptr, nullptr},
    {"poll_multishot", uring::Op::poll_add, 2, op_flag::multishot, check_poll, prep_poll_multishot,
     nullptr, nullptr},
    {"poll_remove", uring::Op::poll_remove, 1, 0, check_target, prep_poll_remove, nullptr, nullptr},
    {"cancel", uring::Op::async_cancel, 1, 0, check_target, prep_cancel, nullptr, nullptr},
    {"cancel_fd", uring::Op::async_cancel, 1, 0, check_cancel_fd, prep_cancel_fd, nullptr, nullptr},
    {"cancel_all", uring::Op::async_cancel, 0, 0, check_none, prep_cancel_all, nullptr, nullptr},
    {"nop", uring::Op::nop, 0, 0, check_none, prep_nop, nullptr, nullptr},
    {nullptr, uring::Op::nop, 0, 0, nullptr, nullptr, nullptr, nullptr},
};

void open_time(lua_State* L) { set_constants(L, "poll", kPollEvents); }

}  // namespace luring::lua
