// SPDX-License-Identifier: Apache-2.0
// Completion dispatch: do_cqes and cqe_seen.
//
// Each completion is taken out of the ring (head advanced) and its request ended before
// its callback runs, so a completion is handled exactly once whatever the callback does:
// raise, forget cqe_seen, call cqe_seen twice, submit, call do_cqes, close the ring.
#include <arpa/inet.h>
#include <sys/socket.h>
#include <sys/un.h>

#include <cstddef>
#include <cstdint>
#include <cstring>

#include "module.hpp"
#include "sys.hpp"

namespace luring::lua {

namespace {

// Stack layout inside dispatch().
constexpr int kRingIdx = 1;
constexpr int kRefsIdx = 2;

// Light userdata tokens stand for CQEs in callbacks: a tag, the ring's serial and a
// sequence number, packed into a pointer-sized word. Nothing points anywhere, so a kept
// token can never dangle.
#if UINTPTR_MAX > 0xffff'ffffU
constexpr int kSerialShift = 32;
constexpr std::uintptr_t kSerialMask = 0xff'ffff;  // 24 bits of serial, 32 of sequence
constexpr std::uint32_t kSeqMask = 0xffff'ffffU;
#else
constexpr int kSerialShift = 16;
constexpr std::uintptr_t kSerialMask = 0xff;  // 32-bit hosts: 8 bits of serial, 16 of sequence
constexpr std::uint32_t kSeqMask = 0xffff;
#endif
constexpr int kTagShift = sizeof(std::uintptr_t) * 8 - 8;
constexpr std::uintptr_t kTokenTag = std::uintptr_t{0x4c} << kTagShift;
constexpr std::uintptr_t kTagMask = std::uintptr_t{0xff} << kTagShift;

std::uintptr_t make_token(LuaRing* r) {
    r->cqe_seq = (r->cqe_seq + 1) & kSeqMask;
    if (r->cqe_seq == 0) r->cqe_seq = 1;
    return kTokenTag | (r->serial & kSerialMask) << kSerialShift | r->cqe_seq;
}

// Message handler: string errors get a traceback; other values stay as they are, so a
// callback's error({code = 1}) reaches the caller of do_cqes unchanged.
int add_traceback(lua_State* L) {
    if (lua_type(L, 1) == LUA_TSTRING) luaL_traceback(L, L, lua_tostring(L, 1), 1);
    return 1;
}

// What accept's callback gets as its third argument: { family, address, port } for
// IP peers, { family = "unix", path } for AF_UNIX.
void push_peer(lua_State* L, const AcceptAddr& a) {
    lua_createtable(L, 0, 3);
    const auto family = a.addr.ss_family;
    char text[INET6_ADDRSTRLEN] = "";
    if (family == AF_INET) {
        const auto* in = reinterpret_cast<const sockaddr_in*>(&a.addr);
        inet_ntop(AF_INET, &in->sin_addr, text, sizeof(text));
        lua_pushliteral(L, "inet");
        lua_setfield(L, -2, "family");
        lua_pushstring(L, text);
        lua_setfield(L, -2, "address");
        lua_pushinteger(L, ntohs(in->sin_port));
        lua_setfield(L, -2, "port");
    } else if (family == AF_INET6) {
        const auto* in6 = reinterpret_cast<const sockaddr_in6*>(&a.addr);
        inet_ntop(AF_INET6, &in6->sin6_addr, text, sizeof(text));
        lua_pushliteral(L, "inet6");
        lua_setfield(L, -2, "family");
        lua_pushstring(L, text);
        lua_setfield(L, -2, "address");
        lua_pushinteger(L, ntohs(in6->sin6_port));
        lua_setfield(L, -2, "port");
    } else if (family == AF_UNIX) {
        const auto* un = reinterpret_cast<const sockaddr_un*>(&a.addr);
        std::size_t off = offsetof(sockaddr_un, sun_path);
        std::size_t n = a.len > off ? a.len - off : 0;
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

// Handles one completion: ends its request, then calls its callback unprotected (the
// pcall is do_cqes's, one per batch rather than one per callback).
void handle(lua_State* L, LuaRing* r, const uring::Cqe& cqe) {
    std::uint32_t i = r->requests.find(cqe.user_data);
    if (i == Requests::kNone) return;  // stray, stale or internal: nobody to call
    Slot& slot = r->requests[i];
    const Kind kind = slot.kind;
    const lua_Integer cb_key = 2 * static_cast<lua_Integer>(i) + 1;

    // Take the callback and unpin the string, then end the request: from here on the
    // completion is consumed, whatever happens below. Only keys that hold a value are
    // cleared: storing nil there never allocates, so none of this can raise.
    lua_rawgeti(L, kRefsIdx, cb_key);
    const bool has_cb = !lua_isnil(L, -1);
    if (has_cb) {
        lua_pushnil(L);
        lua_rawseti(L, kRefsIdx, cb_key);
    }
    if (slot.pinned) {
        lua_pushnil(L);
        lua_rawseti(L, kRefsIdx, cb_key + 1);
        slot.pinned = false;
    }
    // What the callback gets from the slot's buffer is bounded or copied out now: once
    // Lua runs (a GC step can call a __gc finalizer that queues I/O), the slot may be
    // reused and its buffer replaced.
    std::uint32_t n = cqe.res > 0 ? static_cast<std::uint32_t>(cqe.res) : 0;
    if (n > slot.len) n = slot.len;  // exactly res bytes, never more than were asked for
    AcceptAddr peer;
    if (kind == Kind::accept && cqe.res >= 0) peer = *reinterpret_cast<const AcceptAddr*>(slot.buf);
    r->requests.finish(i);
    ++r->handled;

    if (!has_cb) {
        lua_pop(L, 1);
        // Nobody can ever learn an accepted descriptor without a callback: close it.
        if (kind == Kind::accept && cqe.res >= 0) uring::sys::close(cqe.res);
        r->requests.trim(i);
        return;
    }
    const std::uintptr_t token = make_token(r);
    lua_pushlightuserdata(L, reinterpret_cast<void*>(token));
    lua_pushinteger(L, cqe.res);
    int nargs = 2;
    if (kind == Kind::read || kind == Kind::recv) {
        // lua_pushlstring copies the bytes before it can run a GC step.
        lua_pushlstring(L, slot.buf, n);
        nargs = 3;
    } else if (kind == Kind::accept) {
        if (cqe.res >= 0) {
            push_peer(L, peer);
        } else {
            lua_pushnil(L);
        }
        nargs = 3;
    }
    r->requests.trim(i);

    const std::uintptr_t outer = r->current_cqe;
    r->current_cqe = token;
    lua_call(L, nargs, 0);  // an error unwinds to do_cqes, which restores current_cqe
    r->current_cqe = outer;
}

// Takes the next CQE from those already copied out of the ring.
uring::Cqe take_pending(LuaRing* r) {
    const uring::Cqe cqe = r->pending[r->pending_head];
    ++r->pending_head;
    --r->pending_count;
    return cqe;
}

// dispatch(ring, finish_only): runs under do_cqes's lua_pcall. With finish_only it only
// handles the CQEs already taken from the ring (after a callback raised).
int dispatch(lua_State* L) {
    auto* r = static_cast<LuaRing*>(lua_touserdata(L, kRingIdx));
    const bool finish_only = lua_toboolean(L, 2) != 0;
    lua_settop(L, kRingIdx);
    lua_getiuservalue(L, kRingIdx, kRefsUservalue);
    luaL_checkstack(L, 8, "do_cqes");

    if (finish_only) {
        while (r->pending_count > 0 && !r->closing) handle(L, r, take_pending(r));
        return 0;
    }
    // A round handles what is ready when it starts (the CQ tail snapshot), so a callback
    // that keeps completing new work inline cannot keep do_cqes running forever. Another
    // round follows only while the kernel holds an overflow backlog.
    for (int round = 0; round < 1024; ++round) {
        if (r->ring.cq_needs_enter()) r->ring.get_events();
        std::uint32_t budget = r->pending_count + r->ring.cq_ready();
        while (budget > 0 && !r->closing) {
            if (r->pending_count == 0) {
                std::uint32_t want = budget < kBatch ? budget : kBatch;
                r->pending_count = r->ring.copy_cqes(r->pending, want);
                r->pending_head = 0;
                if (r->pending_count == 0) break;
            }
            --budget;
            handle(L, r, take_pending(r));
        }
        if (r->closing) break;
        if ((r->ring.sq_flags() & uring::sq_flag::cq_overflow) == 0) break;
    }
    return 0;
}

}  // namespace

// luring.do_cqes(ring) -> number of completions handled. Never blocks.
// If a callback raises, the completions already taken from the ring still run, then the
// first error is raised again; the ones still in the ring wait for the next do_cqes.
int do_cqes(lua_State* L) {
    LuaRing* r = check_ring(L, 1);
    lua_settop(L, 1);
    lua_pushcfunction(L, add_traceback);  // 2: message handler; 3: the first error
    const std::uintptr_t entry_cqe = r->current_cqe;
    const lua_Integer outer_handled = r->handled;  // a nested do_cqes counts its own
    r->handled = 0;
    ++r->dispatch_depth;
    bool caught = false;
    bool finish_only = false;
    for (;;) {
        lua_pushcfunction(L, dispatch);
        lua_pushvalue(L, 1);
        lua_pushboolean(L, finish_only ? 1 : 0);
        if (lua_pcall(L, 2, 0, 2) == LUA_OK) break;
        r->current_cqe = entry_cqe;  // the failing callback never restored it
        if (caught) {
            lua_pop(L, 1);  // only the first error is raised again
        } else {
            caught = true;
        }
        if (r->closing || r->pending_count == 0) break;
        finish_only = true;
    }
    --r->dispatch_depth;
    const lua_Integer handled = r->handled;
    r->handled = outer_handled;
    // A callback closed the ring: finish that now that no loop is walking it.
    if (r->dispatch_depth == 0 && r->closing) close_ring(L, r, 1);
    if (caught) {
        lua_settop(L, 3);
        return lua_error(L);
    }
    lua_pushinteger(L, handled);
    return 1;
}

// luring.cqe_seen(ring, cqe): kept for luring 0.1 scripts. The completion was already
// consumed before its callback ran; this only checks that `cqe` is the one whose
// callback is running, so calling it once, twice or never changes nothing.
int cqe_seen(lua_State* L) {
    LuaRing* r = check_ring(L, 1);
    if (lua_type(L, 2) != LUA_TLIGHTUSERDATA) return luaL_typeerror(L, 2, "cqe");
    const auto token = reinterpret_cast<std::uintptr_t>(lua_touserdata(L, 2));
    if ((token & kTagMask) != kTokenTag) return luaL_argerror(L, 2, "not a cqe");
    if (((token >> kSerialShift) & kSerialMask) != (r->serial & kSerialMask)) {
        return luaL_argerror(L, 2, "cqe belongs to another ring");
    }
    if (token != r->current_cqe) {
        return luaL_argerror(L, 2, "stale cqe (its callback has already returned)");
    }
    return 0;
}

}  // namespace luring::lua
