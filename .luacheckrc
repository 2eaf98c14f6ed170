-- SPDX-License-Identifier: Apache-2.0
-- luacheck (Debian lua-check) over lua/, examples/, tests/lua/ and tools/bench/lua/: a
-- meson test. The tests keep the callback signatures of luring 0.1 (unused cqe, res),
-- hold values only to keep them alive or to make garbage, and shadow loop helpers.
std = "lua54"
max_line_length = 100
files["tests/lua"] = { ignore = { "212", "311", "241", "431", "432" }, max_line_length = 120 }
