// SPDX-License-Identifier: Apache-2.0
// The Ring userdata: creation, checks, submission, and a teardown that never frees a
// buffer the kernel could still write (liolib.c's userdata pattern: created closed,
// closed once however many times close is asked for).
#include <time.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <climits>
#include <cstdio>
#include <cstring>
#include <new>

#include "fixed.hpp"
#include "module.hpp"
#include "prep.hpp"
#include "register.hpp"
#include "probe.hpp"
#include "sys.hpp"

// LeakSanitizer's, when it is loaded; a weak reference, so null in other builds.
extern "C" void __lsan_ignore_object(const void* p) __attribute__((weak));

namespace luring::lua {

unsigned g_fork_generation = 0;
const char kRingTag = 0;
const char kRefsKey = 0;

namespace {

std::atomic<std::uint32_t> g_next_serial{1};  // rings may be made in several threads

// How long closing a ring waits for cancelled requests to come back before it leaks
// their buffers instead of freeing them.
constexpr long kDrainTimeoutMs = 2000;

// The slot table (and the buffers it holds) that close_ring leaves to the kernel for
// good is a deliberate leak: say so to LeakSanitizer in the ASan build, so that it
// reports real leaks only. A list of such tables would not do: Lua unloads this module
// (and its globals) before the leak check runs at exit.
void keep_abandoned(LuaRing* r) {
    if (r->requests.capacity() != 0 && __lsan_ignore_object != nullptr) {
        __lsan_ignore_object(&r->requests[0]);
    }
}

long now_ms() {
    timespec ts{};
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec * 1000 + ts.tv_nsec / 1'000'000;
}

// Ends the request of a completion without calling back (on its final CQE only: a
// zero-copy send's bytes stay pinned until F_NOTIF). A new descriptor is closed: nobody
// will ever learn it.
void end_silently(LuaRing* r, const uring::Cqe& cqe) {
    std::uint32_t i = r->requests.find(cqe.user_data);
    if (i == Requests::kNone) return;
    const Slot& s = r->requests[i];
    const std::int32_t res = s.sync ? s.held_res : cqe.res;
    if (res >= 0 && (s.op->flags & op_flag::result_fd) != 0) uring::sys::close(res);
    if ((cqe.flags & uring::cqe_flag::more) != 0) return;
    std::uint64_t prev = s.chain_prev;
    r->requests.finish(i);
    // Silent chain members ahead of it have ended too (see end_silent_chain).
    while (prev != 0) {
        std::uint32_t j = r->requests.find(prev);
        if (j == Requests::kNone) break;
        prev = r->requests[j].chain_prev;
        r->requests.finish(j);
    }
}

// Takes every available CQE and ends its request without calling back.
void reap_silently(LuaRing* r, bool& cancel_any_refused) {
    uring::Cqe batch[kBatch];
    for (;;) {
        std::uint32_t n = r->ring.copy_cqes(batch, kBatch);
        if (n == 0) return;
        for (std::uint32_t k = 0; k < n; ++k) {
            if (batch[k].user_data == kInternalUserData) {
                if (batch[k].res == -EINVAL) cancel_any_refused = true;
                continue;
            }
            end_silently(r, batch[k]);
        }
    }
}

// Queues a cancel SQE, submitting first when the SQ is full. False if impossible.
bool queue_cancel(LuaRing* r, std::uint64_t target, std::uint32_t flags) {
    uring::Sqe* sqe = r->ring.get_sqe();
    if (sqe == nullptr) {
        if (r->ring.submit() < 0) return false;
        sqe = r->ring.get_sqe();
        if (sqe == nullptr) return false;
    }
    uring::prep_cancel(*sqe, target, flags);
    sqe->user_data = kInternalUserData;
    return true;
}

// Cancels everything in flight and reaps it. True when nothing is left in flight.
// Without `can_enter` (the fd is no longer the ring's) it only reaps what the kernel
// has already posted: that needs our mapping, not the fd.
bool drain(LuaRing* r, bool can_enter) {
    // CQEs taken but not yet handled: their requests are done.
    for (std::uint32_t k = 0; k < r->pending_count; ++k) {
        end_silently(r, r->pending[r->pending_head + k]);
    }
    r->pending_count = 0;
    if (r->requests.in_flight() == 0) return true;
    bool refused = false;
    if (!can_enter) {
        reap_silently(r, refused);
        return r->requests.in_flight() == 0;
    }

    // One request cancels all (5.19+); SQEs still queued are submitted ahead of it. A
    // chain's next member only starts when the one before it ends, so after this cancel:
    // the cancel goes again whenever requests ended (and every 50 ms), or a hard chain's
    // later members would run on after close, on descriptors the program closes next
    // (finding F7 of the fuzzer).
    if (queue_cancel(r, 0, uring::cancel_flag::any | uring::cancel_flag::all)) r->ring.submit();
    const long start = now_ms();
    const long deadline = start + kDrainTimeoutMs;
    long next_cancel = start + 50;
    bool sync_tried = false;
    bool per_request = false;
    std::uint32_t seen = r->requests.in_flight();
    while (r->requests.in_flight() > 0) {
        reap_silently(r, refused);
        if (r->requests.in_flight() == 0) break;
        const bool newly_refused = refused && !per_request;
        if (refused) per_request = true;  // older kernels: cancel each by its user_data
        const long now = now_ms();
        if (newly_refused || r->requests.in_flight() < seen || now >= next_cancel) {
            if (per_request) {
                for (std::uint32_t i = 0; i < r->requests.capacity(); ++i) {
                    const Slot& s = r->requests[i];
                    if (s.op == nullptr) continue;
                    queue_cancel(r, std::uint64_t{s.generation} << 32 | i, 0);
                }
            } else {
                queue_cancel(r, 0, uring::cancel_flag::any | uring::cancel_flag::all);
            }
            r->ring.submit();
            seen = r->requests.in_flight();
            next_cancel = now + 50;
        }
        if (!sync_tried && now >= start + 100) {
            // Still in flight after 100 ms: a cancel may sit in the SQ's order behind an
            // IO_DRAIN that waits on the very request it is to cancel (6.18, finding F3).
            // IORING_REGISTER_SYNC_CANCEL (6.0) needs no SQE and reaches it; older kernels
            // refuse it (-EINVAL), and the cancels above go on.
            sync_tried = true;
            uring::SyncCancelReg reg{};
            reg.fd = -1;
            reg.flags = uring::cancel_flag::any | uring::cancel_flag::all;
            reg.timeout = uring::KernelTimespec{0, 200'000'000};
            uring::register_sync_cancel(r->ring, reg);
            continue;
        }
        long left = deadline - now;
        if (left <= 0) break;
        uring::KernelTimespec ts{0, (left < 50 ? left : 50) * 1'000'000};
        int ret = r->ring.wait_cqes(1, ts);
        if (ret < 0 && ret != -ETIME && ret != -EINTR && ret != -EAGAIN && ret != -EBUSY) break;
    }
    return r->requests.in_flight() == 0;
}

// "defer_taskrun" as the Lua constant spells it: "DEFER_TASKRUN".
void upper(const char* name, char* out, std::size_t size) {
    std::size_t k = 0;
    for (; name[k] != '\0' && k + 1 < size; ++k) {
        out[k] = name[k] >= 'a' && name[k] <= 'z' ? static_cast<char>(name[k] - 'a' + 'A')
                                                  : name[k];
    }
    out[k] = '\0';
}

}  // namespace

void push_refs(lua_State* L, const LuaRing* r, int idx) {
    // The fast way: the ring's user value, if it is still the table the ring made.
    if (lua_getiuservalue(L, idx, 1) == LUA_TTABLE && lua_topointer(L, -1) == r->refs) return;
    lua_pop(L, 1);
    // debug.setuservalue replaced it: the anchor (an ephemeron table in the registry)
    // still holds the real one, which goes back in place.
    lua_rawgetp(L, LUA_REGISTRYINDEX, &kRefsKey);
    lua_pushvalue(L, idx);
    lua_rawget(L, -2);
    lua_remove(L, -2);
    lua_pushvalue(L, -1);
    lua_setiuservalue(L, idx, 1);
}

void grow_slots(lua_State* L, LuaRing* r, int ring_idx, std::uint32_t n) {
    std::uint32_t old = 0;
    if (!r->requests.ensure_free(n, old)) luaL_error(L, "not enough memory for another request");
    const std::uint32_t now = r->requests.capacity();
    if (now == old) return;
    // Give the new slots' keys a value, so that later stores into them never allocate
    // (and so never raise) while a request is half queued.
    push_refs(L, r, ring_idx);
    for (lua_Integer k = 2 * static_cast<lua_Integer>(old) + 1; k <= 2 * lua_Integer{now}; ++k) {
        lua_pushboolean(L, 0);
        lua_rawseti(L, -2, k);
    }
    lua_pop(L, 1);
}

LuaRing* to_ring(lua_State* L, int arg) {
    if (lua_type(L, arg) != LUA_TUSERDATA || lua_rawlen(L, arg) != sizeof(LuaRing)) {
        return nullptr;
    }
    auto* r = static_cast<LuaRing*>(lua_touserdata(L, arg));
    return r->tag == &kRingTag ? r : nullptr;
}

LuaRing* check_ring(lua_State* L, int arg) {
    LuaRing* r = to_ring(L, arg);
    if (r == nullptr) luaL_typeerror(L, arg, kRingMeta);
    if (r->closed || r->closing) luaL_argerror(L, arg, "attempt to use a closed ring");
    if (r->fork_generation != g_fork_generation) {
        luaL_argerror(L, arg, "ring used after fork (it belongs to the parent process)");
    }
    return r;
}

void close_ring(lua_State* L, LuaRing* r, int idx) {
    if (r->closed) return;
    r->closing = true;
    if (r->dispatch_depth > 0) return;  // do_cqes finishes the job when it unwinds

    bool finished = true;
    bool ours = true;
    if (r->fork_generation == g_fork_generation) {
        // If the descriptor was closed behind our back and its number reused, the drain's
        // enters would reach somebody else's file, or ring (and cancel its requests):
        // enter nothing then, close nothing, and leak the buffers of what is in flight.
        ours = r->ring.owns_fd();
        finished = drain(r, ours);
    }
    // In a forked child the requests are the parent's: touch nothing in the kernel; the
    // child's copies of the buffers are its own and can be freed. owns_fd() is not
    // asked there (it writes into the SQE array, shared with the parent): the inherited
    // number is closed as before.
    if (!finished) {
        // Keep the pinned strings alive for good: the kernel may still read them.
        push_refs(L, r, idx);
        luaL_ref(L, LUA_REGISTRYINDEX);
    }
    // Registered buffers are no longer the ring's to keep once nothing can write them
    // (otherwise they stay, with the refs table).
    if (finished) drop_registrations(L, r, idx);
    lua_rawgetp(L, LUA_REGISTRYINDEX, &kRefsKey);
    lua_pushvalue(L, idx);
    lua_pushnil(L);
    lua_rawset(L, -3);
    lua_pop(L, 1);
    // The provided buffers: unmapped once nothing can still write them (a forked child
    // unmaps its copy only; the group is the parent's ring's). Otherwise left mapped.
    if (finished) r->recv_bufs.release(r->ring, ours && r->fork_generation == g_fork_generation);
    r->ring.close(ours);
    if (finished) {
        r->requests.release_all();
    } else {
        keep_abandoned(r);
        r->requests.abandon();  // leak the buffers rather than free them under the kernel
    }
    r->pending_count = 0;
    r->tasks.release();
    r->closed = true;
}

// luring.queue_init(entries [, flags | options]) -> ring
// options: { flags = n, cq_entries = n, sq_thread_idle = ms, sq_thread_cpu = n }
int queue_init(lua_State* L) {
    lua_Integer entries = luaL_checkinteger(L, 1);
    uring::Params p{};
    if (lua_istable(L, 2)) {
        // Every key must be one we know: a misspelt option must not pass silently.
        lua_pushnil(L);
        while (lua_next(L, 2) != 0) {
            const char* key = lua_type(L, -2) == LUA_TSTRING ? lua_tostring(L, -2) : nullptr;
            bool known = false;
            for (const char* k : {"flags", "cq_entries", "sq_thread_idle", "sq_thread_cpu"}) {
                if (key != nullptr && std::strcmp(key, k) == 0) known = true;
            }
            if (!known) {
                return luaL_error(L, "bad argument #2 to 'queue_init' (unknown option '%s'; "
                                  "options are flags, cq_entries, sq_thread_idle, "
                                  "sq_thread_cpu)", luaL_tolstring(L, -2, nullptr));
            }
            lua_pop(L, 1);
        }
        auto field = [&](const char* name, lua_Integer max) -> std::uint32_t {
            lua_getfield(L, 2, name);
            lua_Integer v = 0;
            if (!lua_isnil(L, -1)) {
                int ok = 0;
                v = lua_tointegerx(L, -1, &ok);
                if (ok == 0 || v < 0 || v > max) {
                    luaL_error(L, "bad argument #2 to 'queue_init' (field '%s' must be an "
                               "integer in 0..%I)", name, max);
                }
            }
            lua_pop(L, 1);
            return static_cast<std::uint32_t>(v);
        };
        p.flags = field("flags", UINT32_MAX);
        p.cq_entries = field("cq_entries", UINT32_MAX);
        p.sq_thread_idle = field("sq_thread_idle", UINT32_MAX);
        p.sq_thread_cpu = field("sq_thread_cpu", UINT32_MAX);
        if (p.cq_entries != 0) p.flags |= uring::setup::cqsize;
    } else {
        lua_Integer flags = luaL_optinteger(L, 2, 0);
        luaL_argcheck(L, flags >= 0 && flags <= UINT32_MAX, 2, "flags out of range");
        p.flags = static_cast<std::uint32_t>(flags);
    }
    // Flags that need another one (DEFER_TASKRUN needs SINGLE_ISSUER): say so, as the
    // probe knows, instead of the kernel's bare EINVAL.
    // DEFER_TASKRUN stands in for COOP_TASKRUN: TASKRUN_FLAG needs one of the two.
    std::uint32_t have = p.flags;
    if ((have & uring::setup::defer_taskrun) != 0) have |= uring::setup::coop_taskrun;
    for (const uring::SetupFlagInfo& f : uring::setup_flag_table()) {
        if ((p.flags & f.value) == 0 || (have & f.with_flags) == f.with_flags) continue;
        for (const uring::SetupFlagInfo& g : uring::setup_flag_table()) {
            if ((f.with_flags & g.value) != 0 && (p.flags & g.value) == 0) {
                char need[32];
                char with[32];
                upper(f.name, need, sizeof(need));
                upper(g.name, with, sizeof(with));
                if (g.value == uring::setup::coop_taskrun) {
                    std::snprintf(with, sizeof(with), "COOP_TASKRUN or DEFER_TASKRUN");
                }
                return luaL_error(L, "bad argument #2 to 'queue_init' (%s needs %s)", need,
                                  with);
            }
        }
    }
    // A disabled ring would need an enable call, and ATTACH_WQ another ring's fd: neither
    // exists in this API, so refuse them instead of making a ring that cannot work.
    luaL_argcheck(L, (p.flags & (uring::setup::r_disabled | uring::setup::attach_wq)) == 0, 2,
                  "R_DISABLED and ATTACH_WQ are not supported");
    const lua_Integer max_entries = (p.flags & uring::setup::clamp) != 0 ? UINT32_MAX : 32768;
    luaL_argcheck(L, entries >= 1 && entries <= max_entries, 1,
                  (p.flags & uring::setup::clamp) != 0 ? "entries must be at least 1"
                                                       : "entries must be between 1 and 32768");

    // The userdata starts closed, so a failed init leaves a harmless object to collect.
    auto* r = static_cast<LuaRing*>(lua_newuserdatauv(L, sizeof(LuaRing), 1));
    new (r) LuaRing{};
    r->tag = &kRingTag;
    lua_pushvalue(L, lua_upvalueindex(1));
    lua_setmetatable(L, -2);
    // The refs table: the user value (fast to reach), anchored in the registry's
    // ephemeron table too (what push_refs trusts if debug.setuservalue swapped it).
    lua_createtable(L, 128, 0);
    r->refs = lua_topointer(L, -1);
    lua_rawgetp(L, LUA_REGISTRYINDEX, &kRefsKey);
    lua_pushvalue(L, -3);
    lua_pushvalue(L, -3);
    lua_rawset(L, -3);
    lua_pop(L, 1);
    lua_setiuservalue(L, -2, 1);

    int ret = r->ring.init(static_cast<std::uint32_t>(entries), p);
    if (ret < 0) {
        char reason[512];
        if (ret == -EOPNOTSUPP && (p.flags & ~uring::kSupportedSetupFlags) != 0) {
            std::snprintf(reason, sizeof(reason),
                          "setup flags 0x%x are not supported by luring (it drives 64-byte "
                          "SQEs and 16-byte CQEs in rings the kernel allocates)",
                          static_cast<unsigned>(p.flags & ~uring::kSupportedSetupFlags));
        } else {
            // The reason in plain words, as luring-probe gives it (seccomp, sysctl...).
            uring::describe_setup_error(ret, reason, sizeof(reason));
        }
        return luaL_error(L, "could not initialise queue: %s", reason);
    }
    r->closed = false;
    // Which ops the kernel lacks, for the ops that can fall back to a synchronous call.
    uring::OpSupport support;
    if (uring::register_probe(r->ring, support) == 0) {
        for (unsigned op = 0; op < 64; ++op) {
            if (!support.supported[op]) r->lacks_ops |= std::uint64_t{1} << op;
        }
    }
    r->serial = g_next_serial.fetch_add(1, std::memory_order_relaxed);
    r->fork_generation = g_fork_generation;
    return 1;
}

// ring:setup_flags() -> the IORING_SETUP_* flags the ring was made with (luring.setup.*).
int ring_setup_flags(lua_State* L) {
    LuaRing* r = check_ring(L, 1);
    lua_pushinteger(L, r->ring.setup_flags());
    return 1;
}

// ring:register_ring_fd() -> 0 or -errno: the calling thread's enters of the ring name
// a registered slot instead of the fd (uring::Ring::register_fd: 5.18, -EINVAL before;
// -EBUSY when the thread's 16 slots are taken; 0 again when registered already).
int ring_register_fd(lua_State* L) {
    LuaRing* r = check_ring(L, 1);
    lua_pushinteger(L, r->ring.register_fd());
    return 1;
}

// ring:unregister_ring_fd() -> 0 or -errno (-EINVAL: not registered by this thread).
// Closing the ring does it too.
int ring_unregister_fd(lua_State* L) {
    LuaRing* r = check_ring(L, 1);
    lua_pushinteger(L, r->ring.unregister_fd());
    return 1;
}

// luring.queue_exit(ring): idempotent; a closed ring is fine here.
int queue_exit(lua_State* L) {
    LuaRing* r = to_ring(L, 1);
    if (r == nullptr) return luaL_typeerror(L, 1, kRingMeta);
    close_ring(L, r, 1);
    return 0;
}

// __gc and __close: the same idempotent close.
// Both check their argument like every other entry point: the metatable's functions
// are reachable with debug.getmetatable and can be called with anything.
int ring_gc(lua_State* L) {
    LuaRing* r = to_ring(L, 1);
    if (r == nullptr) return luaL_typeerror(L, 1, kRingMeta);
    close_ring(L, r, 1);
    return 0;
}

int ring_tostring(lua_State* L) {
    LuaRing* r = to_ring(L, 1);
    if (r == nullptr) return luaL_typeerror(L, 1, kRingMeta);
    if (r->closed || r->closing) {
        lua_pushfstring(L, "luring.Ring (closed) (%p)", lua_topointer(L, 1));
    } else {
        lua_pushfstring(L, "luring.Ring (sq %d, cq %d, %d in flight) (%p)",
                        static_cast<int>(r->ring.sq_entries()),
                        static_cast<int>(r->ring.cq_entries()),
                        static_cast<int>(r->requests.in_flight()), lua_topointer(L, 1));
    }
    return 1;
}

// luring.submit(ring) -> submitted count or -errno
int submit(lua_State* L) {
    LuaRing* r = check_ring(L, 1);
    lua_pushinteger(L, r->ring.submit());
    return 1;
}

// luring.submit_and_wait(ring, wait_nr) -> submitted count or -errno (-EINTR on a signal)
int submit_and_wait(lua_State* L) {
    LuaRing* r = check_ring(L, 1);
    lua_Integer wait_nr = luaL_checkinteger(L, 2);
    luaL_argcheck(L, wait_nr >= 0 && wait_nr <= UINT32_MAX, 2,
                  "wait_nr must be between 0 and 4294967295");
    // Never wait for completions that cannot come: at most the requests the kernel
    // still owes us (queued ones included: this call submits them), and at most what
    // the CQ can hold. Waiting with nothing outstanding returns at once.
    lua_Integer owed = owed_completions(r);
    if (wait_nr > owed) wait_nr = owed;
    if (wait_nr > r->ring.cq_entries()) wait_nr = r->ring.cq_entries();
    lua_pushinteger(L, r->ring.submit_and_wait(static_cast<std::uint32_t>(wait_nr)));
    return 1;
}

}  // namespace luring::lua
