// SPDX-License-Identifier: Apache-2.0
// The coroutines that luring.async runs as tasks on a ring, found by address in a few
// instructions (luring._await's functions look the calling coroutine up on every
// request; a Lua table keyed by thread costs ten times as much). Per task: whether its
// waits may take the fast path (no cancel or expired deadline to notice), and the
// handle of the request it last waited on that way, for a cancel to name.
//
// Open addressing with linear probing and backward-shift deletion; plain memory from
// malloc (a LuaRing is trivially destroyed piecewise: see close_ring).
#pragma once

#include <cstdint>
#include <cstdlib>

struct lua_State;  // only its address is used (as lua.h's typedef names it)

namespace luring::lua {

struct TaskEntry {
    const lua_State* co;  // nullptr: free
    std::uint64_t pending;
    bool fast;
    // Sends done at once by a send(2) (await.cpp) since dispatch last resumed the task
    // with a completion: a task that only sends must still yield now and then.
    std::uint8_t direct_sends;
};

class TaskTable {
public:
    TaskEntry* find(const lua_State* co) noexcept {
        if (count_ == 0) return nullptr;
        for (std::uint32_t i = home(co);; i = (i + 1) & mask_) {
            if (e_[i].co == co) return &e_[i];
            if (e_[i].co == nullptr) return nullptr;
        }
    }

    // The entry of `co`, added if new; nullptr when memory ran out.
    TaskEntry* add(const lua_State* co) noexcept {
        if (TaskEntry* t = find(co)) return t;
        if (2 * (count_ + 1) > mask_ + 1 && !grow()) return nullptr;
        std::uint32_t i = home(co);
        while (e_[i].co != nullptr) i = (i + 1) & mask_;
        e_[i] = TaskEntry{co, 0, true, 0};
        ++count_;
        return &e_[i];
    }

    void erase(const lua_State* co) noexcept {
        TaskEntry* t = find(co);
        if (t == nullptr) return;
        std::uint32_t hole = static_cast<std::uint32_t>(t - e_);
        e_[hole].co = nullptr;
        --count_;
        // Moves back the entries after the hole that may not stay past it.
        for (std::uint32_t i = (hole + 1) & mask_; e_[i].co != nullptr; i = (i + 1) & mask_) {
            const std::uint32_t h = home(e_[i].co);
            if (((i - h) & mask_) >= ((i - hole) & mask_)) {
                e_[hole] = e_[i];
                e_[i].co = nullptr;
                hole = i;
            }
        }
    }

    void release() noexcept {
        std::free(e_);
        e_ = nullptr;
        mask_ = 0;
        count_ = 0;
    }

private:
    std::uint32_t home(const lua_State* co) const noexcept {
        auto k = reinterpret_cast<std::uintptr_t>(co);
        k ^= k >> 17;
        k *= 0x9e3779b97f4a7c15ULL;
        return static_cast<std::uint32_t>(k >> 32) & mask_;
    }

    bool grow() noexcept {
        const std::uint32_t cap = e_ == nullptr ? 16 : 2 * (mask_ + 1);
        auto* fresh = static_cast<TaskEntry*>(std::calloc(cap, sizeof(TaskEntry)));
        if (fresh == nullptr) return false;
        TaskEntry* old = e_;
        const std::uint32_t old_cap = e_ == nullptr ? 0 : mask_ + 1;
        e_ = fresh;
        mask_ = cap - 1;
        for (std::uint32_t j = 0; j < old_cap; ++j) {
            if (old[j].co == nullptr) continue;
            std::uint32_t i = home(old[j].co);
            while (e_[i].co != nullptr) i = (i + 1) & mask_;
            e_[i] = old[j];
        }
        std::free(old);
        return true;
    }

    TaskEntry* e_ = nullptr;
    std::uint32_t mask_ = 0;
    std::uint32_t count_ = 0;
};

}  // namespace luring::lua
