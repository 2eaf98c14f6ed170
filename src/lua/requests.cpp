// SPDX-License-Identifier: Apache-2.0
#include "requests.hpp"

#include <cassert>
#include <cstdlib>
#include <new>

namespace luring::lua {

bool Requests::grow() noexcept {
    std::uint32_t old = count_;
    std::uint32_t want = old == 0 ? 64 : old * 2;
    if (want > (1U << 30) || want <= old) return false;
    // Slot is trivially copyable, so realloc moves the table safely.
    void* mem = std::realloc(slots_, std::size_t{want} * sizeof(Slot));
    if (mem == nullptr) return false;
    slots_ = static_cast<Slot*>(mem);
    // Link the new slots into the free list in index order.
    for (std::uint32_t i = old; i < want; ++i) {
        new (&slots_[i]) Slot{};
        slots_[i].next_free = i + 1 < want ? i + 1 : free_head_;
    }
    free_head_ = old;
    count_ = want;
    return true;
}

std::uint32_t Requests::acquire() noexcept {
    if (free_head_ == kNone && !grow()) return kNone;
    return free_head_;
}

bool Requests::reserve_buffer(std::uint32_t i, std::uint32_t size) noexcept {
    Slot& s = slots_[i];
    if (s.buf_cap >= size && s.buf != nullptr) return true;
    // malloc(0) may return nullptr; always ask for at least one byte.
    char* buf = static_cast<char*>(std::malloc(size == 0 ? 1 : size));
    if (buf == nullptr) return false;
    std::free(s.buf);
    s.buf = buf;
    s.buf_cap = size;
    return true;
}

std::uint64_t Requests::start(std::uint32_t i, Kind kind) noexcept {
    Slot& s = slots_[i];
    // i is the head: acquire() returned it, and nothing between the two can run Lua code
    // that would acquire another slot (no GC step, hence no finalizer, in between).
    assert(i == free_head_);
    free_head_ = s.next_free;
    s.next_free = kNone;
    s.kind = kind;
    ++in_flight_;
    return std::uint64_t{s.generation} << 32 | i;
}

std::uint32_t Requests::find(std::uint64_t user_data) const noexcept {
    std::uint32_t i = static_cast<std::uint32_t>(user_data);
    std::uint32_t generation = static_cast<std::uint32_t>(user_data >> 32);
    if (i >= count_) return kNone;
    const Slot& s = slots_[i];
    if (s.kind == Kind::none || s.generation != generation) return kNone;
    return i;
}

void Requests::finish(std::uint32_t i) noexcept {
    Slot& s = slots_[i];
    s.kind = Kind::none;
    s.generation = (s.generation + 1) & kGenerationMask;
    s.next_free = free_head_;
    free_head_ = i;
    --in_flight_;
}

void Requests::trim(std::uint32_t i) noexcept {
    Slot& s = slots_[i];
    if (s.kind != Kind::none || s.buf_cap <= kKeepBufferMax) return;
    std::free(s.buf);
    s.buf = nullptr;
    s.buf_cap = 0;
}

void Requests::release_all() noexcept {
    for (std::uint32_t i = 0; i < count_; ++i) std::free(slots_[i].buf);
    std::free(slots_);
    abandon();
}

void Requests::abandon() noexcept {
    slots_ = nullptr;
    count_ = 0;
    free_head_ = kNone;
    in_flight_ = 0;
}

}  // namespace luring::lua
