-- SPDX-License-Identifier: Apache-2.0
-- luring for LuaRocks: `luarocks make` in a clone, or `luarocks install luring-scm-1.rockspec`.
-- The build is meson's (needs meson >= 0.63, ninja and a C++20 compiler, g++ 12 or
-- clang 15; Debian: apt install meson ninja-build g++): luring.so and luring-probe need
-- libc alone. LuaRocks' own directories are passed on, so the module and luring.async go
-- where this LuaRocks deploys modules for its Lua; tests and benchmarks are not built.
rockspec_format = "3.0"
package = "luring"
version = "scm-1"
source = {
  url = "git+https://github.com/thislight/luring.git",
}
description = {
  summary = "Linux io_uring for Lua 5.4: the callback API and luring.async (coroutines, sockets, files)",
  detailed = [[
luring talks to the kernel's io_uring with its own system calls (no liburing): every
operation of the callback API (read, write, openat, statx, socket, accept, send, recv,
timeout, cancel, ...) and luring.async, coroutine tasks with LuaSocket-compatible
sockets and io-compatible files on the ring. Kernels from 5.10 on; operations a
kernel lacks are reported (luring.probe(), the luring-probe tool).
]],
  homepage = "https://github.com/thislight/luring",
  license = "Apache-2.0",
  labels = { "io_uring", "linux", "async", "coroutines", "sockets" },
}
supported_platforms = { "linux" }
dependencies = {
  "lua >= 5.4, < 5.5",
}
build = {
  type = "command",
  -- A fresh build directory each time: the install directories are those of this call.
  build_command = [[
rm -rf build-luarocks &&
meson setup build-luarocks --buildtype=release -Dtests=false \
  "-Dlua_incdir=$(LUA_INCDIR)" "--prefix=$(PREFIX)" \
  "-Dlua_cmod_dir=$(LIBDIR)" "-Dlua_lmod_dir=$(LUADIR)" --bindir=bin --mandir=doc/man &&
meson compile -C build-luarocks luring luring-probe
]],
  install_command = [[meson install -C build-luarocks --no-rebuild]],
}
test = {
  -- The Lua suite against a build of its own, with lua5.4 and its headers as pkg-config
  -- finds them (LuaRocks 3.8 substitutes no $(VARIABLES) here). Meson's tests need
  -- doctest and cmake, and LuaSocket and luv for the cases that use them (those skip,
  -- saying why, without them).
  type = "command",
  command = [[
rm -rf build-luarocks-test &&
meson setup build-luarocks-test &&
meson test -C build-luarocks-test --suite lua --print-errorlogs
]],
}
