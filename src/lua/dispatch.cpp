// SPDX-License-Identifier: Apache-2.0
// Completion dispatch, the same for every op: do_cqes and cqe_seen.
//
// Each completion is taken out of the ring (head advanced) and its request ended before
// its callback runs, so a completion is handled exactly once whatever the callback does:
// raise, forget cqe_seen, call cqe_seen twice, submit, call do_cqes, close the ring.
#include <cstdint>

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

// After pushing a callback's arguments raised: ends the request (on its final CQE) and
// closes a descriptor that nobody will now receive.
void abort_completing(lua_State* L, LuaRing* r) {
    const Completing c = r->completing;
    r->completing = Completing{};
    if (c.bid >= 0) r->recv_bufs.recycle(static_cast<std::uint32_t>(c.bid));
    if (c.slot == Requests::kNone) return;
    const OpDesc* op = r->requests[c.slot].op;
    if (op == nullptr) return;
    if (c.res >= 0 && (op->flags & op_flag::result_fd) != 0) uring::sys::close(c.res);
    if (!c.final) return;
    push_refs(L, r, 1);
    end_request(L, r, lua_gettop(L), c.slot);
    lua_pop(L, 1);
}

// Ends silent chain members ahead of a request that just ended: their success posted
// no CQE, and the request behind them could only run or fail after they finished.
void end_silent_chain(lua_State* L, LuaRing* r, std::uint64_t prev) {
    while (prev != 0) {
        std::uint32_t j = r->requests.find(prev);
        if (j == Requests::kNone) return;  // it failed, posted its CQE and ended already
        Slot& s = r->requests[j];
        prev = s.chain_prev;
        end_request(L, r, kRefsIdx, j);
    }
}

// Handles one completion: pushes its callback's arguments while the request still owns
// its slot (so a finalizer that runs during a GC step and queues I/O cannot get the
// slot's buffer), ends the request on its final CQE, then calls back unprotected (the
// pcall is do_cqes's, one per batch rather than one per callback).
void handle(lua_State* L, LuaRing* r, const uring::Cqe& cqe) {
    const std::uint32_t i = r->requests.find(cqe.user_data);
    if (i == Requests::kNone) return;  // stray, stale or internal: nobody to call
    // A reference into the slot table is only good until Lua runs: a finalizer that a GC
    // step runs while the arguments are pushed may queue requests and grow (realloc) the
    // table. So push reads a copy, and the slot is looked up again afterwards.
    Slot& slot = r->requests[i];
    Slot snap = slot;
    const OpDesc* op = slot.op;
    std::int32_t res = slot.sync ? slot.held_res : cqe.res;
    // Data in a provided buffer: push reads it from there, and it goes back to the
    // kernel right after (or in abort_completing, if pushing raised).
    std::int32_t bid = -1;
    if ((op->flags & op_flag::buffer_select) != 0 && !slot.sync &&
        (cqe.flags & uring::cqe_flag::buffer) != 0) {
        bid = static_cast<std::int32_t>(cqe.flags >> uring::kCqeBufferShift);
        snap.buf = r->recv_bufs.buffer(static_cast<std::uint32_t>(bid));
        snap.len = snap.buf != nullptr ? r->recv_bufs.size() : 0;
        if (snap.buf == nullptr) bid = -1;  // not one of ours: nothing to read or give back
    }
    // The kernel's own restart codes (-ERESTARTSYS... -ERESTART_RESTARTBLOCK, 512-516)
    // are no errno a program can name; a splice or tee cancelled in a kernel worker ends
    // with one (finding F4 of the fuzzer). They mean "interrupted": -EINTR.
    if (res <= -512 && res >= -516) res = -EINTR;
    const bool more = (cqe.flags & uring::cqe_flag::more) != 0;
    if ((op->flags & op_flag::notif) != 0) {
        // Zero-copy send: hold the result until the kernel says it is done with the bytes.
        if (more) {
            slot.held_res = res;
            return;
        }
        if ((cqe.flags & uring::cqe_flag::notif) != 0) res = slot.held_res;
    }
    const bool final = !more || (op->flags & op_flag::notif) != 0;
    const lua_Integer cb_key = 2 * static_cast<lua_Integer>(i) + 1;

    lua_rawgeti(L, kRefsIdx, cb_key);
    const bool call = lua_toboolean(L, -1) != 0 && !r->closing;
    const int top = lua_gettop(L);
    int nargs = 0;
    std::uintptr_t token = 0;
    if (call) {
        r->completing = Completing{i, res, final, bid};
        token = make_token(r);
        lua_pushlightuserdata(L, reinterpret_cast<void*>(token));
        lua_pushinteger(L, res);
        nargs = 2;
        if (r->test_gc_on_push) lua_gc(L, LUA_GCCOLLECT);
        if (op->push != nullptr) nargs += op->push(L, res, snap);
        if ((op->flags & op_flag::multishot) != 0) {
            lua_pushboolean(L, more ? 1 : 0);
            ++nargs;
        }
        r->completing = Completing{};
    }
    if (bid >= 0) r->recv_bufs.recycle(static_cast<std::uint32_t>(bid));
    // A GC step while pushing may have run a finalizer that closed the ring, or forked.
    const bool deliver = call && !r->closing && r->fork_generation == g_fork_generation;
    if (!deliver && res >= 0 && (op->flags & op_flag::result_fd) != 0) uring::sys::close(res);
    if (final) {
        const std::uint64_t prev = r->requests[i].chain_prev;
        end_request(L, r, kRefsIdx, i);
        end_silent_chain(L, r, prev);
    }
    ++r->handled;
    if (!deliver) {
        lua_settop(L, top - 1);
        return;
    }
    const std::uintptr_t outer = r->current_cqe;
    r->current_cqe = token;
    if (lua_type(L, top) == LUA_TTHREAD) {
        // A coroutine as callback: resumed with the callback's arguments, here, without
        // a Lua function in between (luring.async's tasks wait like this).
        lua_State* co = lua_tothread(L, top);
        if (!lua_checkstack(co, nargs + 1)) luaL_error(L, "coroutine stack overflow");
        // A luring.async task that waited by the fast path (await.cpp) but must now
        // notice a cancel or a deadline gets false for the cqe.
        // Its pending request is over either way (_task_pending means "waiting now").
        TaskEntry* task = r->tasks.find(co);
        if (task != nullptr) {
            task->pending = 0;
            task->direct_sends = 0;  // it waited: a new run of direct sends (await.cpp)
            if (!task->fast) {
                lua_pushboolean(L, 0);
                lua_replace(L, top + 1);
            }
        }
        lua_xmove(L, co, nargs);
        int nres = 0;
        const int status = lua_resume(co, L, nargs, &nres);
        r->current_cqe = outer;
        if (status != LUA_OK && status != LUA_YIELD) {
            lua_xmove(co, L, 1);  // its error, raised from do_cqes like a callback's
            lua_error(L);
        }
        lua_pop(co, nres);
        lua_settop(L, top - 1);
        return;
    }
    lua_call(L, nargs, 0);  // an error unwinds to do_cqes, which restores current_cqe
    r->current_cqe = outer;
}

// Whether dispatch may go on: the ring is open, and this is the process that made it
// (a child forked inside a callback must not run the parent's callbacks or move the CQ
// head, which is shared memory).
bool may_dispatch(const LuaRing* r) {
    return !r->closing && r->fork_generation == g_fork_generation;
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
    push_refs(L, r, kRingIdx);
    luaL_checkstack(L, 16, "do_cqes");

    if (finish_only) {
        while (r->pending_count > 0 && may_dispatch(r)) handle(L, r, take_pending(r));
        return 0;
    }
    // A round handles what is ready when it starts (the CQ tail snapshot), so a callback
    // that keeps completing new work inline cannot keep do_cqes running forever. Another
    // round follows only while the kernel holds an overflow backlog.
    for (int round = 0; round < 1024; ++round) {
        if (r->ring.cq_needs_enter()) r->ring.get_events();
        std::uint32_t budget = r->pending_count + r->ring.cq_ready();
        while (budget > 0 && may_dispatch(r)) {
            if (r->pending_count == 0) {
                std::uint32_t want = budget < kBatch ? budget : kBatch;
                r->pending_count = r->ring.copy_cqes(r->pending, want);
                r->pending_head = 0;
                if (r->pending_count == 0) break;
            }
            --budget;
            handle(L, r, take_pending(r));
        }
        if (!may_dispatch(r)) break;
        if ((r->ring.sq_flags() & uring::sq_flag::cq_overflow) == 0) break;
    }
    return 0;
}

}  // namespace

void end_request(lua_State* L, LuaRing* r, int refs, std::uint32_t i) {
    Slot& s = r->requests[i];
    const lua_Integer key = 2 * static_cast<lua_Integer>(i) + 1;
    // The keys exist (ensure_slots filled them), so these stores never allocate.
    lua_pushboolean(L, 0);
    lua_rawseti(L, refs, key);
    if (s.pinned) {
        lua_pushboolean(L, 0);
        lua_rawseti(L, refs, key + 1);
        s.pinned = false;
    }
    r->requests.finish(i);
    r->requests.trim(i);
}

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
        if (r->fork_generation != g_fork_generation) {
            r->pending_count = 0;  // the parent's completions: drop them unhandled
            break;
        }
        lua_pushcfunction(L, dispatch);
        lua_pushvalue(L, 1);
        lua_pushboolean(L, finish_only ? 1 : 0);
        if (lua_pcall(L, 2, 0, 2) == LUA_OK) break;
        r->current_cqe = entry_cqe;  // the failing callback never restored it
        abort_completing(L, r);
        if (caught) {
            lua_pop(L, 1);  // only the first error is raised again
        } else {
            caught = true;
        }
        if (!may_dispatch(r) || r->pending_count == 0) break;
        finish_only = true;
    }
    if (r->fork_generation != g_fork_generation) r->pending_count = 0;
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

// luring._test_gc_on_push(ring, on): for tests only. Makes every callback's argument
// push start with a full collection, so a finalizer runs exactly where a GC step could.
int test_gc_on_push(lua_State* L) {
    LuaRing* r = check_ring(L, 1);
    r->test_gc_on_push = lua_toboolean(L, 2) != 0;
    return 0;
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
