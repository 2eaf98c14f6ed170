// SPDX-License-Identifier: Apache-2.0
// Request slots: one per operation from submission until its final completion is handled.
//
// A request is named in the kernel by user_data = slot | generation << 32, never by a
// pointer, so a stale or duplicate completion can be recognised and ignored. Each slot
// keeps a reusable buffer (read data, a path, a timespec, accept's address), so
// steady-state I/O allocates nothing here. The Lua side (callbacks, pinned values) lives
// in a per-ring Lua table indexed by slot; this file knows nothing of Lua.
#pragma once

#include <cassert>
#include <cstddef>
#include <cstdlib>
#include <cstdint>

namespace luring::lua {

struct OpDesc;

// What a request uses of its ring's registrations (Slot::uses): dropping a registration
// is refused while a request that uses it is in flight (see fixed.cpp).
namespace uses {
inline constexpr std::uint8_t files = 1U << 0;    // a registered file (IOSQE_FIXED_FILE)
inline constexpr std::uint8_t buffers = 1U << 1;  // a registered buffer (read/write_fixed)
}  // namespace uses

struct Slot {
    std::uint32_t generation = 1;  // so the first handle is not 0
    std::uint32_t next_free = 0;
    const OpDesc* op = nullptr;  // nullptr while the slot is free
    // refs[2*slot+2] holds a pinned value: cleared at the slot's final completion.
    bool pinned = false;
    // A chain member with IOSQE_CQE_SKIP_SUCCESS: it posts no CQE when it succeeds, so
    // the final CQE of the request behind it (chain_next) ends it too.
    bool silent = false;
    bool sync = false;             // done synchronously: the CQE's result is held_res
    std::uint8_t uses = 0;         // uses::*, set before start()
    std::int32_t held_res = 0;     // a sync result, or a zero-copy send's until F_NOTIF
    std::uint64_t chain_prev = 0;  // user_data of a silent request ahead in the chain
    std::uint32_t len = 0;         // read/recv: the size asked for; never hand out more
    std::uint32_t buf_cap = 0;
    char* buf = nullptr;  // owned; kept across requests for reuse
};

class Requests {
public:
    static constexpr std::uint32_t kNone = 0xffff'ffffU;
    // Generations stay below 2^31 so user_data never reaches the core's reserved range.
    static constexpr std::uint32_t kGenerationMask = 0x7fff'ffffU;
    // Buffers larger than this go back to the allocator when their request ends, so a
    // burst of large reads does not leave every slot holding a large buffer. A 64 KiB
    // receive stays, with the room recv_until takes behind it for its delimiter (2 +
    // up to 255 bytes): luring.async's every receive is one, and a malloc and free of it
    // per request was 900 instructions of an HTTP server's 13k.
    static constexpr std::uint32_t kKeepBufferMax = (64U << 10) + 512;

    // No destructor: the table lives in a Lua userdata, which is never destroyed, and is
    // released by release_all() or deliberately abandoned (see close_ring).
    Requests() noexcept = default;
    Requests(const Requests&) = delete;
    Requests& operator=(const Requests&) = delete;

    // Grows the table until at least `n` slots are free. False when out of memory.
    // Returns the old capacity in `grown_from` so the caller can size its Lua side.
    bool ensure_free(std::uint32_t n, std::uint32_t& grown_from) noexcept;

    // Takes a free slot (ensure_free said there is one) off the free list. It is
    // neither free nor in flight until start() or unacquire().
    std::uint32_t acquire() noexcept;
    void unacquire(std::uint32_t i) noexcept;

    // Makes sure slot `i` has a buffer of at least `size` bytes. False when out of memory.
    bool reserve_buffer(std::uint32_t i, std::uint32_t size) noexcept;

    // Marks acquired slot `i` in flight for `op`; returns its user_data.
    std::uint64_t start(std::uint32_t i, const OpDesc* op) noexcept;

    // The slot for a completion's user_data, or kNone if no request in flight has it
    // (stale, duplicate, or one of our internal requests).
    std::uint32_t find(std::uint64_t user_data) const noexcept;

    // Ends the request in slot `i`: the next generation, back on the free list. Its
    // buffer stays attached, and readable until the next acquire.
    void finish(std::uint32_t i) noexcept;

    // Frees slot `i`'s buffer if it is free and the buffer is large (kKeepBufferMax).
    void trim(std::uint32_t i) noexcept;

    static std::uint64_t user_data(const Slot& s, std::uint32_t i) noexcept {
        return std::uint64_t{s.generation} << 32 | i;
    }

    Slot& operator[](std::uint32_t i) noexcept { return slots_[i]; }
    std::uint32_t in_flight() const noexcept { return in_flight_; }
    // Requests in flight that may end without a CQE of their own (silent chain members).
    std::uint32_t silent() const noexcept { return silent_; }
    // Requests in flight that use a registered file / a registered buffer.
    std::uint32_t file_users() const noexcept { return file_users_; }
    std::uint32_t buffer_users() const noexcept { return buffer_users_; }
    std::uint32_t capacity() const noexcept { return count_; }
    std::uint32_t free_count() const noexcept { return free_count_; }

    // Frees every buffer and the table. Only call when the kernel can no longer write
    // into any buffer (all requests reaped), or never (leak them instead).
    void release_all() noexcept;

    // Forgets everything without freeing: used when the kernel might still write into
    // buffers of requests it did not give back in time.
    void abandon() noexcept;

private:
    bool grow() noexcept;
    void count_uses(std::uint8_t u, int delta) noexcept {
        if ((u & uses::files) != 0) file_users_ += static_cast<std::uint32_t>(delta);
        if ((u & uses::buffers) != 0) buffer_users_ += static_cast<std::uint32_t>(delta);
    }
    bool replace_buffer(std::uint32_t i, std::uint32_t size) noexcept;

    Slot* slots_ = nullptr;
    std::uint32_t count_ = 0;
    std::uint32_t free_head_ = kNone;
    std::uint32_t free_count_ = 0;
    std::uint32_t in_flight_ = 0;
    std::uint32_t silent_ = 0;
    std::uint32_t file_users_ = 0;
    std::uint32_t buffer_users_ = 0;
};

// The hot path, inline: a request is one acquire/start and one find/finish.

inline std::uint32_t Requests::acquire() noexcept {
    assert(free_head_ != kNone);
    std::uint32_t i = free_head_;
    free_head_ = slots_[i].next_free;
    slots_[i].next_free = kNone;
    --free_count_;
    return i;
}
inline void Requests::unacquire(std::uint32_t i) noexcept {
    slots_[i].next_free = free_head_;
    free_head_ = i;
    ++free_count_;
}
inline std::uint64_t Requests::start(std::uint32_t i, const OpDesc* op) noexcept {
    Slot& s = slots_[i];
    s.op = op;
    ++in_flight_;
    if (s.silent) ++silent_;
    if (s.uses != 0) count_uses(s.uses, 1);
    return user_data(s, i);
}
inline std::uint32_t Requests::find(std::uint64_t user_data) const noexcept {
    std::uint32_t i = static_cast<std::uint32_t>(user_data);
    std::uint32_t generation = static_cast<std::uint32_t>(user_data >> 32);
    if (i >= count_) return kNone;
    const Slot& s = slots_[i];
    if (s.op == nullptr || s.generation != generation) return kNone;
    return i;
}
inline void Requests::finish(std::uint32_t i) noexcept {
    Slot& s = slots_[i];
    if (s.silent) --silent_;
    if (s.uses != 0) count_uses(s.uses, -1);
    s.uses = 0;
    s.op = nullptr;
    s.silent = false;
    s.sync = false;
    s.chain_prev = 0;
    s.generation = (s.generation + 1) & kGenerationMask;
    s.next_free = free_head_;
    free_head_ = i;
    ++free_count_;
    --in_flight_;
}
inline void Requests::trim(std::uint32_t i) noexcept {
    Slot& s = slots_[i];
    if (s.op != nullptr || s.buf_cap <= kKeepBufferMax) return;
    std::free(s.buf);
    s.buf = nullptr;
    s.buf_cap = 0;
}

inline bool Requests::reserve_buffer(std::uint32_t i, std::uint32_t size) noexcept {
    const Slot& s = slots_[i];
    if (s.buf_cap >= size && s.buf != nullptr) return true;
    return replace_buffer(i, size);
}

}  // namespace luring::lua
