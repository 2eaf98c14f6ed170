// SPDX-License-Identifier: Apache-2.0
// The generic entry point: turns a Lua call of any op into a queued request, and
// ring:link{} into a chain of them.
//
// Order, the same for one request and for a chain: every argument check (which may
// raise or run a GC step, hence a finalizer that queues I/O), then the space check (nil
// when the SQ cannot take them all), then the slots, their buffers and their refs (only
// memory errors can raise here, before anything is started), and only then the SQEs,
// which nothing can interrupt. So a raised error never leaves a half-made request, a
// full queue retains nothing, and a chain is queued whole or not at all.
#include <climits>
#include <cstring>

#include "fixed.hpp"
#include "module.hpp"
#include "prep.hpp"

namespace luring::lua {

namespace {

// The SQE flags a caller may add to one request, and those allowed inside a chain.
constexpr lua_Integer kSqeFlagsAlone = uring::sqe_flag::io_drain | uring::sqe_flag::async;
constexpr lua_Integer kSqeFlagsInChain = kSqeFlagsAlone | uring::sqe_flag::cqe_skip_success;

// Longest chain ring:link accepts (the SQ could not take more in one go anyway).
constexpr lua_Integer kMaxChain = 64;

// One request being queued: its op, checked arguments, callback and SQE flags.
struct Member {
    const OpDesc* op;
    OpArgs a;
    int cb;  // stack index of the callback, 0 for none
    std::uint8_t sqe_flags;
};

// Reads the op's arguments at base.., the callback after them and the optional SQE
// flags after that.
void check_member(lua_State* L, const OpDesc* op, int base, Member& m, lua_Integer allowed) {
    m.op = op;
    m.a = OpArgs{};
    op->check(L, base, m.a);
    const int cb_arg = base + op->nargs;
    m.cb = check_callback(L, cb_arg) ? cb_arg : 0;
    lua_Integer f = luaL_optinteger(L, cb_arg + 1, 0);
    if ((f & ~allowed) != 0) {
        luaL_argerror(L, cb_arg + 1,
                      allowed == kSqeFlagsAlone
                          ? "sqe flags may be luring.sqe.ASYNC and IO_DRAIN (links: ring:link)"
                          : "sqe flags may be ASYNC, IO_DRAIN and CQE_SKIP_SUCCESS");
    }
    m.sqe_flags = static_cast<std::uint8_t>(f);
    // A silent request must not produce something only its CQE could hand over.
    if ((m.sqe_flags & uring::sqe_flag::cqe_skip_success) != 0 &&
        (op->flags & (op_flag::result_fd | op_flag::multishot | op_flag::notif)) != 0) {
        luaL_argerror(L, cb_arg + 1, "CQE_SKIP_SUCCESS cannot go on an op whose result is needed");
    }
    if (op->push != nullptr && (m.sqe_flags & uring::sqe_flag::cqe_skip_success) != 0) {
        luaL_argerror(L, cb_arg + 1, "CQE_SKIP_SUCCESS cannot go on an op that returns data");
    }
}

// recv_multishot's buffer group: set up by the first request that needs it, with the
// default sizes (a system call; no Lua). 0, or why it cannot be (-EINVAL before 5.19).
int ensure_recv_buffers(LuaRing* r) {
    if (r->recv_bufs.active()) return 0;
    return r->recv_bufs.setup(r->ring, kRecvGroup, kRecvBuffersDefault, kRecvBufferSizeDefault);
}

bool kernel_lacks(const LuaRing* r, uring::Op op) {
    const unsigned code = static_cast<unsigned>(op);
    return code < 64 && (r->lacks_ops >> code & 1U) != 0;
}

// Queues members[0..n) (checked) as one chain when `link` is an IOSQE link flag. Pushes
// a handle per member, or one nil when the SQ cannot take them all.
int queue(lua_State* L, LuaRing* r, Member* members, std::uint32_t n, std::uint8_t link) {
    // The checks ran Lua (metamethods of the tables they read): one may have closed it.
    if (r->closed || r->closing) return luaL_argerror(L, 1, "attempt to use a closed ring");
    // Registered files and buffers, checked here for the same reason: the checks may
    // have run an unregister.
    for (std::uint32_t k = 0; k < n; ++k) {
        OpArgs& a = members[k].a;
        if ((a.file_gen | static_cast<std::uint32_t>(a.fixed_buf)) != 0) resolve_fixed(L, r, a);
    }
    if (r->ring.sq_space_left() < n) {
        lua_pushnil(L);
        return 1;
    }
    // A C function starts with LUA_MINSTACK free slots: one request needs no more.
    if (n > 8) luaL_checkstack(L, static_cast<int>(n) + 2, "too many requests");
    ensure_slots(L, r, 1, n);
    std::uint32_t slots[kMaxChain];
    for (std::uint32_t k = 0; k < n; ++k) {
        slots[k] = r->requests.acquire();
        if (!r->requests.reserve_buffer(slots[k], members[k].a.buf)) {
            for (std::uint32_t j = 0; j <= k; ++j) r->requests.unacquire(slots[k - j]);
            return luaL_error(L, "not enough memory for a %u-byte request buffer",
                              members[k].a.buf);
        }
    }
    // Without its buffers (kernels before 5.19, no memory) recv_multishot completes with
    // the errno.
    int bufs_error = 0;
    for (std::uint32_t k = 0; k < n; ++k) {
        if ((members[k].op->flags & op_flag::buffer_select) != 0) {
            bufs_error = ensure_recv_buffers(r);
            break;
        }
    }
    // From here on nothing raises and no Lua runs.
    push_refs(L, r, 1);
    const int refs = lua_gettop(L);
    std::uint64_t prev_silent = 0;
    for (std::uint32_t k = 0; k < n; ++k) {
        const Member& m = members[k];
        const std::uint32_t i = slots[k];
        Slot& s = r->requests[i];
        const lua_Integer key = 2 * static_cast<lua_Integer>(i) + 1;
        if (m.a.pin != 0) {
            lua_pushvalue(L, m.a.pin);
            lua_rawseti(L, refs, key + 1);
            s.pinned = true;
        }
        if (m.cb != 0) {
            lua_pushvalue(L, m.cb);
            lua_rawseti(L, refs, key);
        }
        s.len = m.a.out_len;
        s.silent = (m.sqe_flags & uring::sqe_flag::cqe_skip_success) != 0;
        s.chain_prev = prev_silent;
        uring::Sqe* sqe = r->ring.get_sqe();  // space was checked; nothing ran since
        // A request made with a handle or a registered buffer holds up unregister_files
        // and unregister_buffers until its final completion, also when luring completes
        // it itself below (recv_multishot without provided buffers, before 5.19): the
        // same program gets the same answer on every kernel (the fuzzer's model does).
        if (m.a.file_gen != 0) s.uses |= uses::files;
        if (m.a.fixed_buf != 0) s.uses |= uses::buffers;
        if (m.op->sync != nullptr && kernel_lacks(r, m.op->opcode)) {
            // Done now; a NOP carries the result through the ring to the callback.
            s.sync = true;
            s.held_res = m.op->sync(m.a, s.buf);
            uring::prep_nop(*sqe);
        } else if ((m.op->flags & op_flag::buffer_select) != 0 && bufs_error < 0) {
            s.sync = true;  // no buffers to select from: the NOP carries why
            s.held_res = bufs_error;
            uring::prep_nop(*sqe);
        } else {
            m.op->prep(L, *sqe, m.a, s.buf);
            if (m.a.file_gen != 0) sqe->flags |= uring::sqe_flag::fixed_file;
        }
        sqe->flags |= m.sqe_flags;
        if (k + 1 < n) sqe->flags |= link;
        sqe->user_data = r->requests.start(i, m.op);
        prev_silent = s.silent ? sqe->user_data : 0;
        lua_pushinteger(L, static_cast<lua_Integer>(sqe->user_data));
    }
    return static_cast<int>(n);
}

}  // namespace

int queue_request(lua_State* L, LuaRing* r, const OpDesc* op, const OpArgs& a, int cb) {
    Member m{op, a, cb, 0};
    return queue(L, r, &m, 1, 0);
}

int op_entry(lua_State* L) {
    const auto* op = static_cast<const OpDesc*>(lua_touserdata(L, lua_upvalueindex(1)));
    LuaRing* r = check_ring(L, 1);
    if ((op->flags & op_flag::link_only) != 0) {
        return luaL_error(L, "%s bounds the request linked before it: queue both with "
                          "ring:link{...}", op->name);
    }
    Member m;
    check_member(L, op, 2, m, kSqeFlagsAlone);
    return queue(L, r, &m, 1, 0);
}

int op_link(lua_State* L) {
    LuaRing* r = check_ring(L, 1);
    luaL_checktype(L, 2, LUA_TTABLE);
    const char* kind = luaL_optstring(L, 3, "soft");
    std::uint8_t link = uring::sqe_flag::io_link;
    if (std::strcmp(kind, "hard") == 0) {
        link = uring::sqe_flag::io_hardlink;
    } else if (std::strcmp(kind, "soft") != 0) {
        return luaL_argerror(L, 3, "must be 'soft' (the default) or 'hard'");
    }
    const lua_Integer n = luaL_len(L, 2);
    // The table's __len ran Lua, which may have closed the ring (finding F2 of the fuzzer).
    if (r->closed || r->closing) return luaL_argerror(L, 1, "attempt to use a closed ring");
    luaL_argcheck(L, n >= 1 && n <= kMaxChain, 2, "a chain holds 1 to 64 requests");
    // nil would mean "full, submit and try again", which could never succeed.
    if (n > lua_Integer{r->ring.sq_entries()}) {
        return luaL_error(L, "bad argument #1 to 'link' (a chain of %I requests cannot fit in "
                          "a submission queue of %d entries)", n,
                          static_cast<int>(r->ring.sq_entries()));
    }
    lua_settop(L, 2);
    // The methods table names the ops: its values are op_entry closures carrying their
    // OpDesc. It is this function's upvalue 1.
    Member members[kMaxChain];
    for (lua_Integer k = 1; k <= n; ++k) {
        if (lua_geti(L, 2, k) != LUA_TTABLE) {
            return luaL_error(L, "bad argument #1 to 'link' (request %I is not a table)", k);
        }
        const int item = lua_gettop(L);
        lua_geti(L, item, 1);
        const char* name = lua_tostring(L, -1);
        if (name == nullptr) {
            return luaL_error(L, "bad argument #1 to 'link' (request %I: first field must be "
                              "an op name such as \"read\")", k);
        }
        lua_getfield(L, lua_upvalueindex(1), name);
        const OpDesc* op = nullptr;
        if (lua_getupvalue(L, -1, 1) != nullptr && lua_islightuserdata(L, -1) &&
            lua_tocfunction(L, -2) == op_entry) {
            op = static_cast<const OpDesc*>(lua_touserdata(L, -1));
        }
        if (op == nullptr) {
            return luaL_error(L, "bad argument #1 to 'link' (request %I: '%s' is not an op)",
                              k, name);
        }
        lua_settop(L, item);
        if ((op->flags & op_flag::link_only) != 0 && k == 1) {
            return luaL_error(L, "bad argument #1 to 'link' (%s must follow the request it "
                              "bounds)", op->name);
        }
        // The request's fields go on the stack where the op's check() reads them; they
        // stay there (pinned values included) until this function returns.
        const int base = lua_gettop(L) + 1;
        luaL_checkstack(L, op->nargs + 4, "link");
        for (lua_Integer j = 2; j <= op->nargs + 3; ++j) lua_geti(L, item, j);
        check_member(L, op, base, members[k - 1], kSqeFlagsInChain);
        // A failing silent request in a soft chain makes the kernel drop the CQEs of the
        // requests it cancels (io_fail_links with REQ_F_SKIP_LINK_CQES): nothing would
        // tell they ended. In a hard chain every later request still runs and completes.
        if ((members[k - 1].sqe_flags & uring::sqe_flag::cqe_skip_success) != 0 &&
            link != uring::sqe_flag::io_hardlink) {
            return luaL_error(L, "bad argument #1 to 'link' (CQE_SKIP_SUCCESS needs a hard "
                              "chain: ring:link({...}, \"hard\"))");
        }
        // A link_timeout that fires counts as failing: with the flag it would post nothing.
        if ((members[k - 1].sqe_flags & uring::sqe_flag::cqe_skip_success) != 0 &&
            (op->flags & op_flag::link_only) != 0) {
            return luaL_error(L, "bad argument #1 to 'link' (CQE_SKIP_SUCCESS cannot go on %s)",
                              op->name);
        }
        // An op this kernel lacks is done synchronously when it is queued: it could not
        // wait for the requests before it, nor stop the chain when it fails.
        if (op->sync != nullptr && kernel_lacks(r, op->opcode)) {
            return luaL_error(L, "bad argument #1 to 'link' (%s cannot be linked on this kernel: "
                              "it lacks the op, which is done synchronously instead)", op->name);
        }
        // Without provided buffers recv_multishot becomes a NOP carrying the errno, which
        // would not stop the chain: set them up now, or refuse.
        if ((op->flags & op_flag::buffer_select) != 0) {
            const int e = ensure_recv_buffers(r);
            if (e < 0) {
                return luaL_error(L, "bad argument #1 to 'link' (%s cannot be linked on this "
                                  "ring: its provided buffers could not be set up: %s)",
                                  op->name, std::strerror(-e));
            }
        }
        // A link_timeout runs beside the request it bounds and can complete first: a silent
        // request in front of one would be taken for ended while the kernel still has it.
        if ((op->flags & op_flag::link_only) != 0 && k >= 2 &&
            (members[k - 2].sqe_flags & uring::sqe_flag::cqe_skip_success) != 0) {
            return luaL_error(L, "bad argument #1 to 'link' (CQE_SKIP_SUCCESS cannot go on the "
                              "request a link_timeout bounds)");
        }
        // Nothing waits behind the last request for its silent CQE to be accounted.
        if (k == n && (members[k - 1].sqe_flags & uring::sqe_flag::cqe_skip_success) != 0) {
            return luaL_error(L, "bad argument #1 to 'link' (the last request cannot have "
                              "CQE_SKIP_SUCCESS: nothing would tell it ended)");
        }
    }
    // After the checks above, so misuse reads the same on every kernel. A kernel without
    // IORING_FEAT_CQE_SKIP (before 5.17) does not know the flag: it fails the request at
    // submission (-EINVAL), which also cancels the rest of the chain, hard or not, and
    // posts the CQE a silent request never gets.
    if ((r->ring.features() & uring::feat::cqe_skip) == 0) {
        for (lua_Integer k = 0; k < n; ++k) {
            if ((members[k].sqe_flags & uring::sqe_flag::cqe_skip_success) != 0) {
                return luaL_error(L, "bad argument #1 to 'link' (request %I: CQE_SKIP_SUCCESS "
                                  "needs IORING_FEAT_CQE_SKIP (5.17), which this kernel lacks)",
                                  k + 1);
            }
        }
    }
    return queue(L, r, members, static_cast<std::uint32_t>(n), link);
}

}  // namespace luring::lua
