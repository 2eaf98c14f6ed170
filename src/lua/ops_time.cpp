// SPDX-License-Identifier: Apache-2.0
// Time and control: timeout, link_timeout, poll, cancel, nop (being written).
#include "module.hpp"
#include "prep.hpp"

namespace luring::lua {

extern const OpDesc kTimeOps[] = {
    {nullptr, uring::Op::nop, 0, 0, nullptr, nullptr, nullptr, nullptr},
};

void open_time(lua_State*) {}

}  // namespace luring::lua
