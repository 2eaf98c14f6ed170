// SPDX-License-Identifier: Apache-2.0
// Files: openat, close_fd, statx, fsync, ... (being written).
#include "module.hpp"
#include "prep.hpp"

namespace luring::lua {

extern const OpDesc kFsOps[] = {
    {nullptr, uring::Op::nop, 0, 0, nullptr, nullptr, nullptr, nullptr},
};

void open_fs(lua_State*) {}

}  // namespace luring::lua
