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
    free_count_ += want - old;
    count_ = want;
    return true;
}

bool Requests::ensure_free(std::uint32_t n, std::uint32_t& grown_from) noexcept {
    grown_from = count_;
    while (free_count_ < n) {
        if (!grow()) return false;
    }
    return true;
}

std::uint32_t Requests::acquire() noexcept {
    assert(free_head_ != kNone);
    std::uint32_t i = free_head_;
    free_head_ = slots_[i].next_free;
    slots_[i].next_free = kNone;
    --free_count_;
    return i;
}

void Requests::unacquire(std::uint32_t i) noexcept {
    slots_[i].next_free = free_head_;
    free_head_ = i;
    ++free_count_;
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

std::uint64_t Requests::start(std::uint32_t i, const OpDesc* op) noexcept {
    Slot& s = slots_[i];
    s.op = op;
    ++in_flight_;
    if (s.silent) ++silent_;
    return user_data(s, i);
}

std::uint32_t Requests::find(std::uint64_t user_data) const noexcept {
    std::uint32_t i = static_cast<std::uint32_t>(user_data);
    std::uint32_t generation = static_cast<std::uint32_t>(user_data >> 32);
    if (i >= count_) return kNone;
    const Slot& s = slots_[i];
    if (s.op == nullptr || s.generation != generation) return kNone;
    return i;
}

void Requests::finish(std::uint32_t i) noexcept {
    Slot& s = slots_[i];
    if (s.silent) --silent_;
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

void Requests::trim(std::uint32_t i) noexcept {
    Slot& s = slots_[i];
    if (s.op != nullptr || s.buf_cap <= kKeepBufferMax) return;
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
    free_count_ = 0;
    in_flight_ = 0;
    silent_ = 0;
}

}  // namespace luring::lua
