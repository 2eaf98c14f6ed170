// SPDX-License-Identifier: Apache-2.0
// The operation contract. Every io_uring operation the module offers is one OpDesc:
// its Lua name, its argument checks, what its slot must hold, its SQE preparation, what
// its callback receives and what to release if nobody receives the result. One generic
// entry point (start.cpp) and one generic dispatch (dispatch.cpp) read it, so adding an
// op is its description in ops_<area>.cpp, its prep helper if new, and its test.
//
// The Lua shape of every op: luring.<name>(ring, args..., cb [, sqe_flags]) and
// ring:<name>(args..., cb [, sqe_flags]); it returns the request's handle, or nil when
// the submission queue is full; cb(cqe, res, results...) runs from do_cqes with res the
// CQE's result (-errno on failure) and the op's results in Lua form after it.
#pragma once

#include <lua.hpp>

#include <cstddef>
#include <cstdint>

#include "abi.hpp"

namespace luring::lua {

struct Slot;
struct LuaRing;

// What an op's check() reads from its Lua arguments, for prep(). Plain data only: it
// lives on the C stack of a function that may raise (longjmp), so nothing in it has a
// destructor. The fields mean what the op says; most ops use a few.
struct OpArgs {
    int fd = -1;
    int fd2 = -1;
    std::int64_t n[4] = {};           // integers: offsets, lengths, flags, modes
    const char* str = nullptr;        // bytes prep() reads or copies: data, a path
    std::size_t str_len = 0;
    const char* str2 = nullptr;       // a second path (rename, link)
    std::size_t str2_len = 0;
    int pin = 0;                      // stack index of a value kept alive to the final CQE
    std::uint32_t buf = 0;            // bytes the slot's buffer must hold for prep()
    std::uint32_t out_len = 0;        // the most bytes the callback may be handed
    // A registered file in place of `fd` (check_file): fd is its index, and queue()
    // checks that it is of this ring (file_serial) and registration (file_gen, 0: none).
    std::uint32_t file_serial = 0;
    std::uint32_t file_gen = 0;
    int file_arg = 0;                 // its stack index, for the error
    // Stack index of a buffer that must be one of the ring's registered buffers
    // (read_fixed, write_fixed); queue() finds its registration index, buf_index.
    int fixed_buf = 0;
    std::uint16_t buf_index = 0;
};

// Op properties (OpDesc::flags).
namespace op_flag {
// res >= 0 is a new descriptor: closed by the module if no callback receives it.
inline constexpr std::uint8_t result_fd = 1U << 0;
// May complete many times (IORING_CQE_F_MORE): the slot, callback and buffer stay until
// the final CQE, and the callback gets `more` (a boolean) after the op's results.
inline constexpr std::uint8_t multishot = 1U << 1;
// Zero-copy send: the first CQE (F_MORE) carries the result, a second (F_NOTIF) says the
// kernel is done with the bytes; the callback runs once, at the second.
inline constexpr std::uint8_t notif = 1U << 2;
// Only meaningful linked behind another request (link_timeout): ring:link{} only.
inline constexpr std::uint8_t link_only = 1U << 3;
// Takes its buffers from the ring's provided-buffer group (LuaRing::recv_bufs, set up
// on first use): each CQE names the buffer its data is in, handed back after the push.
inline constexpr std::uint8_t buffer_select = 1U << 4;
}  // namespace op_flag

struct OpDesc {
    const char* name;
    uring::Op opcode;      // the kernel op (also what the probe is asked about)
    std::uint8_t nargs;    // Lua arguments after the ring and before the callback
    std::uint8_t flags;    // op_flag::*
    // Reads and checks arguments base .. base+nargs-1 into `a`; raises on misuse. May
    // allocate Lua values (a pinned table) but must not touch the ring.
    void (*check)(lua_State* L, int base, OpArgs& a);
    // Fills the zeroed SQE. `buf` is the slot's buffer (a.buf bytes), alive until the
    // final CQE. Cannot fail and runs no Lua: it may only read values check() left on
    // the stack (rawget on its own tables, strings), which never allocates.
    void (*prep)(lua_State* L, uring::Sqe& sqe, const OpArgs& a, char* buf);
    // Pushes what the callback gets after res (the op's results); returns how many.
    // nullptr: nothing. May raise (memory); the slot's buffer is still the request's.
    int (*push)(lua_State* L, std::int32_t res, const Slot& s);
    // Does the op synchronously, for kernels without `opcode` (bind, listen, socket):
    // returns the result as the CQE would carry it. The callback still runs from
    // do_cqes (the request becomes a NOP that completes with this result).
    std::int32_t (*sync)(const OpArgs& a, char* buf);
};

// A null-terminated list of descriptions, one per API area (ops_<area>.cpp).
extern const OpDesc kIoOps[];
extern const OpDesc kFsOps[];
extern const OpDesc kNetOps[];
extern const OpDesc kTimeOps[];
// All of them, for whoever walks every op (the module's tables, await.cpp's lookup).
inline const OpDesc* const kOpLists[] = {kIoOps, kFsOps, kNetOps, kTimeOps};
// recv with a delimiter, for luring.async's receives only: not a luring.<op> (await.cpp).
extern const OpDesc kRecvUntil;

// The generic entry point: a C closure whose upvalue 1 is its OpDesc (light userdata).
int op_entry(lua_State* L);

// Queues one request whose arguments `op`'s check() has read into `a`, with the value at
// stack index `cb` as its callback (0: none). Pushes its handle, or nil when the SQ is
// full. The ring must be open. (For entry points other than op_entry: await.cpp.)
int queue_request(lua_State* L, LuaRing* r, const OpDesc* op, const OpArgs& a, int cb);

// Sets luring._await, luring._task, luring._task_pending and luring._receives_last in
// the table on top of the stack: the await form of the hot ops, for luring.async
// (await.cpp).
void open_await(lua_State* L);

// ring:link({ {name, args..., cb [, sqe_flags]}, ... } [, "hard"]): queues the requests
// as one chain (IOSQE_IO_LINK, or IO_HARDLINK with "hard"), whole or not at all.
int op_link(lua_State* L);

// ---- Helpers for check() and prep() -----------------------------------------------

// Data the kernel reads (write, send, sendmsg): contents up to kCopyMax bytes are
// copied into the slot's buffer (a copy of a small string costs less than pinning it
// and unpinning it at completion); larger ones are pinned, never copied. check_output
// reads the string at `arg` (adding its copy to a.buf, or pinning it; longer than the
// kernel's single-transfer maximum is cut to it: res says how much), and output_bytes
// gives prep() the bytes: the pinned string, or its copy made at `copy`.
inline constexpr std::size_t kCopyMax = 1024;
void check_output(lua_State* L, int arg, OpArgs& a);
const char* output_bytes(const OpArgs& a, char* copy);

// Paths: a string without NUL bytes, at most PATH_MAX. Sets a.str/str_len (or str2) and
// adds its copy (with the terminating NUL) to a.buf; copy_path() writes it in prep().
void check_path(lua_State* L, int arg, OpArgs& a, bool second = false);
// Copies a.str (or str2) NUL-terminated into buf + offset; returns where it went.
const char* copy_path(char* buf, std::uint32_t offset, const char* s, std::size_t len);

// An optional integer in [lo, hi] (def when nil or absent), raising a named error.
lua_Integer check_int_range(lua_State* L, int arg, lua_Integer def, lua_Integer lo,
                            lua_Integer hi, const char* what);

// Seconds as a number (>= 0), to the kernel's timespec.
uring::KernelTimespec check_seconds(lua_State* L, int arg);

}  // namespace luring::lua
