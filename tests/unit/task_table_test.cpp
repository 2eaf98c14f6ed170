// SPDX-License-Identifier: Apache-2.0
// The Lua module's table of luring.async tasks (src/lua/task_table.hpp), against a
// std::map of the same keys: random adds and erases, with keys chosen to collide, and
// every key looked up after each step (backward-shift deletion must keep each entry
// reachable from its home slot).
#include <map>
#include <random>

#include "helpers.hpp"
#include "task_table.hpp"

using luring::lua::TaskEntry;
using luring::lua::TaskTable;

namespace {

const lua_State* key(std::uintptr_t n) {
    return reinterpret_cast<const lua_State*>(n * 0x40 + 0x1000);  // aligned like real ones
}

}  // namespace

TEST_CASE("task table: adds, finds and erases as a map does") {
    TaskTable t;
    std::map<const lua_State*, std::uint64_t> model;
    std::mt19937 rng(12345);
    for (int step = 0; step < 20000; ++step) {
        const lua_State* k = key(rng() % 300);
        if (rng() % 3 != 0) {
            TaskEntry* e = t.add(k);
            REQUIRE(e != nullptr);
            REQUIRE(e->co == k);
            if (model.count(k) == 0) CHECK(e->fast);  // a new task starts fast
            e->pending = static_cast<std::uint64_t>(step);
            model[k] = static_cast<std::uint64_t>(step);
        } else {
            t.erase(k);
            model.erase(k);
        }
        if (step % 97 == 0) {
            for (std::uintptr_t n = 0; n < 300; ++n) {
                const TaskEntry* e = t.find(key(n));
                auto it = model.find(key(n));
                REQUIRE((e != nullptr) == (it != model.end()));
                if (e != nullptr) REQUIRE(e->pending == it->second);
            }
        }
    }
    t.release();
    CHECK(t.find(key(1)) == nullptr);
    // Usable again after release.
    REQUIRE(t.add(key(7)) != nullptr);
    CHECK(t.find(key(7)) != nullptr);
    t.release();
}
