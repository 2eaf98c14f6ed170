// SPDX-License-Identifier: Apache-2.0
// Waiting and the loop: ring:wait(n, timeout), ring:run([timeout]), ring:in_flight().
#include <time.h>

#include <cerrno>
#include <cstring>

#include "module.hpp"

namespace luring::lua {

namespace {

double now_seconds() {
    timespec ts{};
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return static_cast<double>(ts.tv_sec) + static_cast<double>(ts.tv_nsec) * 1e-9;
}

uring::KernelTimespec to_timespec(double seconds) {
    if (seconds < 0) seconds = 0;
    // seconds >= 0: truncating is flooring, and needs no libm (std::floor is a call to
    // libm's floor in unoptimized builds).
    uring::KernelTimespec ts{};
    ts.tv_sec = static_cast<std::int64_t>(seconds);
    ts.tv_nsec = static_cast<std::int64_t>((seconds - static_cast<double>(ts.tv_sec)) * 1e9);
    if (ts.tv_nsec > 999'999'999) ts.tv_nsec = 999'999'999;
    return ts;
}

// A timeout argument: nil for none (-1), else seconds >= 0.
double check_timeout(lua_State* L, int arg) {
    if (lua_isnoneornil(L, arg)) return -1;
    double t = luaL_checknumber(L, arg);
    luaL_argcheck(L, t >= 0 && t < 1e12, arg, "timeout must be a number of seconds >= 0");
    return t;
}

// Submits, then waits until `n` completions are ready (capped at what can still come)
// or `timeout` seconds pass (< 0: no limit). Returns the submit/wait result.
int submit_and_wait_for(LuaRing* r, lua_Integer n, double timeout) {
    lua_Integer owed = owed_completions(r);
    if (n > owed) n = owed;
    if (n > r->ring.cq_entries()) n = r->ring.cq_entries();
    if (n <= 0 || r->pending_count > 0) return r->ring.submit();
    if (timeout < 0) return r->ring.submit_and_wait(static_cast<std::uint32_t>(n));
    // Submit first: an enter that submits reports the count and drops the wait's -ETIME.
    if (r->ring.sq_ready() > 0) {
        int ret = r->ring.submit();
        if (ret < 0) return ret;
    }
    return r->ring.wait_cqes(static_cast<std::uint32_t>(n), to_timespec(timeout));
}

}  // namespace

// luring.now() -> monotonic seconds (float): the clock of ring:timeout's "absolute".
int now(lua_State* L) {
    lua_pushnumber(L, now_seconds());
    return 1;
}

// ring:wait([n [, timeout]]) -> completions ready, or -ETIME / -EINTR / -errno.
// Submits what is queued, then waits for up to `n` (default 1) completions, never for
// more than the requests in flight can still produce. Does not dispatch: do_cqes does.
int ring_wait(lua_State* L) {
    LuaRing* r = check_ring(L, 1);
    lua_Integer n = luaL_optinteger(L, 2, 1);
    luaL_argcheck(L, n >= 0 && n <= UINT32_MAX, 2, "must be between 0 and 4294967295");
    double timeout = check_timeout(L, 3);
    int ret = submit_and_wait_for(r, n, timeout);
    if (ret < 0) {
        lua_pushinteger(L, ret);
        return 1;
    }
    lua_pushinteger(L, lua_Integer{r->pending_count} + r->ring.cq_ready());
    return 1;
}

// ring:run([timeout]) -> requests still in flight (0: all done).
// Submits, waits and dispatches until nothing is in flight or `timeout` seconds pass.
// A callback's error stops it and is raised, as from do_cqes. A signal (EINTR) ends
// the wait early and run returns; the requests stay in flight.
int ring_run(lua_State* L) {
    check_ring(L, 1);
    double timeout = check_timeout(L, 2);
    const double deadline = timeout < 0 ? -1 : now_seconds() + timeout;
    for (;;) {
        LuaRing* r = check_ring(L, 1);  // a callback may have closed it
        lua_settop(L, 2);
        lua_pushcfunction(L, do_cqes);
        lua_pushvalue(L, 1);
        lua_call(L, 1, 0);
        r = to_ring(L, 1);
        if (r->closed || r->closing || r->requests.in_flight() == 0) break;
        double left = -1;
        if (deadline >= 0) {
            left = deadline - now_seconds();
            if (left <= 0) break;
        }
        int ret = submit_and_wait_for(r, 1, left);
        if (ret == -EINTR) break;
        if (ret < 0 && ret != -ETIME && ret != -EAGAIN && ret != -EBUSY) {
            return luaL_error(L, "run: %s", std::strerror(-ret));
        }
    }
    LuaRing* r = to_ring(L, 1);
    lua_pushinteger(L, r->closed ? 0 : r->requests.in_flight());
    return 1;
}

// ring:run_once([timeout]) -> completions handled, requests still in flight.
// One round of an event loop in one call: submits, waits for a completion (at most
// `timeout` seconds; with no timeout never for one that cannot come), runs the
// callbacks. With a timeout it sleeps even when nothing is in flight, so a loop can wait
// for its own next deadline.
int ring_run_once(lua_State* L) {
    LuaRing* r = check_ring(L, 1);
    double timeout = check_timeout(L, 2);
    if (r->pending_count == 0 && r->ring.cq_ready() == 0) {
        int ret;
        if (timeout < 0) {
            ret = submit_and_wait_for(r, 1, -1);
        } else if (timeout == 0) {
            ret = r->ring.submit();  // no wait: only what is already there
        } else {
            if (r->ring.sq_ready() > 0) r->ring.submit();
            ret = r->ring.wait_cqes(1, to_timespec(timeout));
        }
        if (ret < 0 && ret != -ETIME && ret != -EINTR && ret != -EAGAIN && ret != -EBUSY) {
            return luaL_error(L, "run_once: %s", std::strerror(-ret));
        }
    }
    lua_settop(L, 1);
    lua_pushcfunction(L, do_cqes);
    lua_pushvalue(L, 1);
    lua_call(L, 1, 1);
    r = to_ring(L, 1);
    lua_pushinteger(L, r->closed ? 0 : r->requests.in_flight());
    return 2;
}

// ring:in_flight() -> requests queued or in the kernel whose final completion has not
// been handled yet.
int ring_in_flight(lua_State* L) {
    LuaRing* r = check_ring(L, 1);
    lua_pushinteger(L, r->requests.in_flight());
    return 1;
}

}  // namespace luring::lua
