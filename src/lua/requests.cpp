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



bool Requests::replace_buffer(std::uint32_t i, std::uint32_t size) noexcept {
    Slot& s = slots_[i];
    // malloc(0) may return nullptr; always ask for at least one byte.
    char* buf = static_cast<char*>(std::malloc(size == 0 ? 1 : size));
    if (buf == nullptr) return false;
    std::free(s.buf);
    s.buf = buf;
    s.buf_cap = size;
    return true;
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
    file_users_ = 0;
    buffer_users_ = 0;
}

}  // namespace luring::lua
