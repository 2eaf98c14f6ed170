// SPDX-License-Identifier: Apache-2.0
// What the parts of the luring Lua module share: the Ring userdata and argument checks.
#pragma once

#include <lua.hpp>
#include <sys/socket.h>

#include <cstdint>

#include "buf_ring.hpp"
#include "op.hpp"
#include "requests.hpp"
#include "ring.hpp"
#include "task_table.hpp"

namespace luring::lua {

inline constexpr const char* kRingMeta = "luring.Ring";

// CQEs copied out of the ring per refill; handled from LuaRing::pending.
inline constexpr std::uint32_t kBatch = 64;

// The kernel's largest single transfer (MAX_RW_COUNT: INT_MAX rounded down to a page).
inline constexpr lua_Integer kMaxTransfer = 0x7fff'f000;

// Each ring's refs table: refs[2*slot+1] holds the slot's callback, refs[2*slot+2] the
// value the kernel reads from (pinned until the final completion). It is the ring's user
// value, checked on every use against the table the ring made (LuaRing::refs), and also
// kept in an ephemeron table in the registry, keyed by the ring: if debug.setuservalue
// swaps it, the real one is still alive there and is put back. Its keys are filled
// (false) whenever the slot table grows, so storing a callback or a pin never allocates.
extern const char kRefsKey;

// Internal requests (teardown's cancel) carry this user_data, which no slot matches.
inline constexpr std::uint64_t kInternalUserData = 0xffff'ffffULL;

// The request whose completion is being turned into callback arguments: if pushing
// them raises (out of memory), do_cqes ends it (closing a descriptor nobody received).
struct Completing {
    std::uint32_t slot = Requests::kNone;
    std::int32_t res = 0;
    bool final = false;
    std::int32_t bid = -1;  // the provided buffer its data is in, handed back on abort
};

// The ring's provided-buffer group for recv_multishot: its id, and the sizes it gets
// when recv_multishot is first queued without luring.recv_buffers having set them.
inline constexpr std::uint16_t kRecvGroup = 0;
inline constexpr std::uint32_t kRecvBuffersDefault = 64;
inline constexpr std::uint32_t kRecvBufferSizeDefault = 16384;

struct LuaRing {
    const void* tag = nullptr;  // &kRingTag: what makes this block a ring (see to_ring)
    uring::Ring ring;
    Requests requests;
    // CQEs already taken from the kernel but not yet handled. Kept here, not on the C
    // stack, so none is lost if a Lua error unwinds do_cqes mid-batch.
    uring::Cqe pending[kBatch];
    std::uint32_t pending_head = 0;
    std::uint32_t pending_count = 0;
    std::uintptr_t current_cqe = 0;  // token of the CQE whose callback is running
    std::uint32_t cqe_seq = 0;
    std::uint32_t serial = 0;  // tells rings apart in cqe tokens
    unsigned fork_generation = 0;
    Completing completing;
    const void* refs = nullptr;   // the refs table this ring made (see push_refs)
    std::uint64_t lacks_ops = 0;  // opcodes below 64 the kernel lacks (bit n: opcode n)
    TaskTable tasks;  // luring.async's tasks on this ring (see await.cpp)
    uring::BufRing recv_bufs;  // recv_multishot's buffers (group kRecvGroup), when set up
    // Registered files: the generation of the current registration (0: none), which
    // each handle carries, and the last one given out (fixed.cpp).
    std::uint32_t files_gen = 0;
    std::uint32_t files_last_gen = 0;
    bool buffers_registered = false;  // refs[&kFixedBuffersKey] is their table
    lua_Integer handled = 0;  // completions handled by the running do_cqes
    int dispatch_depth = 0;   // nesting of do_cqes on this ring
    // Test hook (luring._test_gc_on_push): a full collection, finalizers included, right
    // before a callback's arguments are pushed, where a GC step can otherwise land.
    bool test_gc_on_push = false;
    // aw.send tries a send(2) first (luring._direct_send; luring.async turns it on).
    bool direct_send = false;
    bool closing = false;    // queue_exit was called (teardown may wait for do_cqes)
    bool closed = true;      // everything released
};

// Bumped in the child after fork(): a ring from an earlier generation is the parent's.
extern unsigned g_fork_generation;

// Every ring holds the address of this variable, which no one outside the module can
// know, so no other userdata can pass for a ring.
extern const char kRingTag;

// The ring at `arg`, or nullptr if it is something else: a full userdata of exactly our
// size carrying kRingTag. Lua code cannot make such a block; only a C library that lets
// Lua write raw bytes into a userdata could forge one (and such a library can corrupt any
// memory anyway). A third of the cost of comparing metatables (luaL_checkudata) on every
// call: no metatable pushed, compared and popped.
LuaRing* to_ring(lua_State* L, int arg);

// The ring at `arg`, open and owned by this process; otherwise raises
// "bad argument #arg to 'fn' (...)".
LuaRing* check_ring(lua_State* L, int arg);

// Releases the ring at stack index `idx`: cancels and reaps what is in flight (no
// callbacks run), drops callbacks and pinned strings, unmaps, closes. Idempotent.
// Inside do_cqes it only marks the ring closing; the outermost do_cqes finishes it.
void close_ring(lua_State* L, LuaRing* r, int idx);

// Ends the request in slot `i` (its final completion was handled, or it never will
// be): drops its callback and pin from the refs table at stack index `refs`, frees the
// slot. Never raises.
void end_request(lua_State* L, LuaRing* r, int refs, std::uint32_t i);

// Completions the kernel still owes: at least one per request in flight (queued ones
// included), except silent chain members, minus those already taken but not handled.
// Waiting for more than this could wait forever.
inline lua_Integer owed_completions(const LuaRing* r) {
    lua_Integer owed = lua_Integer{r->requests.in_flight()} - r->requests.silent() -
                       r->pending_count;
    return owed > 0 ? owed : 0;
}

// Pushes the refs table of the ring `r` at stack index `idx`.
void push_refs(lua_State* L, const LuaRing* r, int idx);

// Makes room for `n` more requests: slots and their refs-table keys. Raises when out
// of memory (nothing is queued then).
void grow_slots(lua_State* L, LuaRing* r, int ring_idx, std::uint32_t n);
inline void ensure_slots(lua_State* L, LuaRing* r, int ring_idx, std::uint32_t n) {
    if (r->requests.free_count() < n) grow_slots(L, r, ring_idx, n);
}

// A table of integer constants (luring.msg, luring.errno, ...): a missing name raises
// ("luring.msg has no 'NOSIGNALL'"), so a misspelt flag never passes silently as nil.
struct Constant {
    const char* name;
    lua_Integer value;
};
void set_constants(lua_State* L, const char* table, const Constant* list);

// Each area adds its constants and synchronous helpers to the module table on top.
void open_fs(lua_State* L);
void open_net(lua_State* L);
void open_time(lua_State* L);
int now(lua_State* L);

// Argument checks that raise "bad argument" errors naming the function.
int check_fd(lua_State* L, int arg);
std::uint64_t check_offset(lua_State* L, int arg);
int check_flags(lua_State* L, int arg);
std::uint32_t check_size(lua_State* L, int arg);
bool check_callback(lua_State* L, int arg);
// A descriptor, or a registered file handle of a ring (fixed.cpp): queue() checks that
// the handle is of the ring the request goes to and sets IOSQE_FIXED_FILE.
void check_file(lua_State* L, int arg, OpArgs& a);

// The module's entry points (queue_init has the Ring metatable as upvalue 1).
int queue_init(lua_State* L);
int queue_exit(lua_State* L);
int submit(lua_State* L);
int submit_and_wait(lua_State* L);
int do_cqes(lua_State* L);
int cqe_seen(lua_State* L);
int ring_wait(lua_State* L);
int ring_run(lua_State* L);
int ring_in_flight(lua_State* L);
int ring_run_once(lua_State* L);
int recv_buffers(lua_State* L);
int register_files(lua_State* L);
int unregister_files(lua_State* L);
int register_buffers(lua_State* L);
int unregister_buffers(lua_State* L);
int ring_setup_flags(lua_State* L);
int ring_register_fd(lua_State* L);
int ring_unregister_fd(lua_State* L);
int probe(lua_State* L);
int test_gc_on_push(lua_State* L);
int ring_gc(lua_State* L);
int ring_tostring(lua_State* L);

}  // namespace luring::lua
