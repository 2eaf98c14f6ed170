// SPDX-License-Identifier: Apache-2.0
// luring.probe(): the luring-probe report as a Lua table, with the keys of its --json
// output (JSON null is a missing key here).
#include <cstring>
#include <type_traits>

#include "module.hpp"
#include "probe.hpp"

namespace luring::lua {

namespace {

using namespace luring::uring;

// The report lives in this frame while Lua allocates (and may raise): it must have no
// destructor that a longjmp could skip.
static_assert(std::is_trivially_destructible_v<ProbeReport>);

void set_string(lua_State* L, const char* key, const char* value) {
    if (value == nullptr) return;
    lua_pushstring(L, value);
    lua_setfield(L, -2, key);
}

void set_integer(lua_State* L, const char* key, lua_Integer value) {
    lua_pushinteger(L, value);
    lua_setfield(L, -2, key);
}

void set_boolean(lua_State* L, const char* key, bool value) {
    lua_pushboolean(L, value ? 1 : 0);
    lua_setfield(L, -2, key);
}

// { value = n, names = { "SINGLE_MMAP", ... }, unknown = bits without a name }
void set_flags(lua_State* L, const char* key, std::uint64_t value,
               std::span<const FlagInfo> table) {
    lua_createtable(L, 0, 3);
    set_integer(L, "value", static_cast<lua_Integer>(value));
    lua_newtable(L);
    std::uint64_t known = 0;
    lua_Integer n = 0;
    for (const FlagInfo& f : table) {
        known |= f.value;
        if ((value & f.value) != 0) {
            lua_pushstring(L, f.name);
            lua_rawseti(L, -2, ++n);
        }
    }
    lua_setfield(L, -2, "names");
    set_integer(L, "unknown", static_cast<lua_Integer>(value & ~known));
    lua_setfield(L, -2, key);
}

void set_memlock(lua_State* L, const char* key, const HostFacts& h,
                 const std::optional<std::uint64_t>& v) {
    if (!h.memlock_known) return;
    if (v) {
        set_integer(L, key, static_cast<lua_Integer>(*v));
    } else {
        set_string(L, key, "unlimited");
    }
}

}  // namespace

// luring.probe() -> report table. Never raises for a kernel without io_uring: that is
// `available = false` with `error`, `errno`, `cause`, `reason` and `fix`.
int probe(lua_State* L) {
    ProbeReport r;
    gather_report(r);
    const HostFacts& h = r.host;

    lua_createtable(L, 0, 24);
    set_string(L, "tool", "luring");
    set_string(L, "kernel", h.kernel);
    set_boolean(L, "available", r.available);
    if (!r.available) {
        set_string(L, "error", std::strerror(-r.setup_error));
        set_integer(L, "errno", -r.setup_error);
        set_string(L, "errno_name", errno_name(-r.setup_error));
        set_string(L, "cause", cause_name(r.diagnosis.cause));
        set_string(L, "reason", r.diagnosis.reason);
        set_string(L, "fix", r.diagnosis.fix);
    }
    if (h.io_uring_disabled) set_integer(L, "io_uring_disabled", *h.io_uring_disabled);
    if (h.io_uring_group) set_integer(L, "io_uring_group", *h.io_uring_group);
    set_boolean(L, "cap_sys_admin", h.cap_sys_admin);
    lua_createtable(L, 0, 2);
    if (h.seccomp_mode) set_integer(L, "mode", *h.seccomp_mode);
    if (h.seccomp_filters) set_integer(L, "filters", *h.seccomp_filters);
    lua_setfield(L, -2, "seccomp");
    lua_createtable(L, 0, 2);
    set_memlock(L, "soft", h, h.memlock_soft);
    set_memlock(L, "hard", h, h.memlock_hard);
    lua_setfield(L, -2, "memlock");

    set_flags(L, "features", r.features, feature_table());

    lua_createtable(L, 0, 2);
    set_boolean(L, "supported", r.probe_ok);
    if (r.probe_ok) set_integer(L, "last_op", r.ops.last_op);
    lua_setfield(L, -2, "probe");

    lua_createtable(L, r.probe_ok ? r.ops.last_op + 1 : 0, 0);
    if (r.probe_ok) {
        for (unsigned code = 0; code <= r.ops.last_op; ++code) {
            const OpInfo* info = find_op(code);
            lua_createtable(L, 0, 4);
            set_integer(L, "code", code);
            set_string(L, "name", op_label(code).text);
            if (info != nullptr) set_string(L, "since", info->since);
            set_boolean(L, "supported", r.ops.supported[code]);
            lua_rawseti(L, -2, static_cast<lua_Integer>(code) + 1);
        }
    }
    lua_setfield(L, -2, "ops");

    lua_createtable(L, r.available ? static_cast<int>(kSetupFlagCount) : 0, 0);
    if (r.available) {
        const auto table = setup_flag_table();
        for (std::size_t i = 0; i < kSetupFlagCount; ++i) {
            const SetupFlagResult& res = r.setup_flags[i];
            lua_createtable(L, 0, 6);
            set_string(L, "name", table[i].name);
            set_integer(L, "value", table[i].value);
            set_string(L, "since", table[i].since);
            set_string(L, "needs", table[i].needs_text);
            set_boolean(L, "supported", res.status == FlagStatus::supported);
            set_string(L, "status", flag_status_name(res.status));
            if (res.error < 0) set_integer(L, "errno", -res.error);
            lua_rawseti(L, -2, static_cast<lua_Integer>(i) + 1);
        }
    }
    lua_setfield(L, -2, "setup_flags");

    if (r.max_entries_tried && r.max_entries.sq_entries != 0) {
        lua_createtable(L, 0, 2);
        set_integer(L, "sq", r.max_entries.sq_entries);
        set_integer(L, "cq", r.max_entries.cq_entries);
        lua_setfield(L, -2, "max_entries");
    }
    return 1;
}

}  // namespace luring::lua
