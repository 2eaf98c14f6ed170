#!/bin/bash
# SPDX-License-Identifier: Apache-2.0
# meson install and LuaRocks on a fresh Debian 12, run inside one (from the project root):
#   ../shared/tools/fresh-debian.sh 'bash tests/ship/fresh_install.sh'
# Installs what the build needs and Debian's luarocks, then: `meson install` (no tests),
# tests/ship/echo_roundtrip.lua run from /tmp with no LUA_PATH/LUA_CPATH (it finds luring
# and luring.async where Lua looks), `ninja uninstall`; `luarocks make` in this clone and
# the round trip; `luarocks remove`; `luarocks install` of the rockspec with its source
# pointed at this clone, the round trip; `luarocks test` (the Lua suite). Each step
# prints its time; the last line is "fresh install: ok (N s)".
set -euo pipefail
cd "$(dirname "$0")/../.."
export DEBIAN_FRONTEND=noninteractive
lr=(luarocks --lua-version=5.4)
t_all=$(date +%s.%N)
step() {  # step NAME COMMAND...: runs it, then prints how long it took
  local name=$1 t0 t1
  shift
  echo "== $name"
  t0=$(date +%s.%N)
  "$@"
  t1=$(date +%s.%N)
  awk -v n="$name" -v a="$t0" -v b="$t1" 'BEGIN { printf "== %s: %.1f s\n", n, b - a }'
}
roundtrip() {
  cp tests/ship/echo_roundtrip.lua /tmp/echo_roundtrip.lua
  (cd /tmp && env -u LUA_PATH -u LUA_CPATH lua5.4 echo_roundtrip.lua)
  lua5.4 -e 'print("luring from " .. package.searchpath("luring", package.cpath),
                   "luring.async from " .. package.searchpath("luring.async", package.path))'
}

step "apt-get install luarocks and the build tools" bash -c '
  apt-get update -qq &&
  apt-get install -y -qq --no-install-recommends luarocks lua5.4 liblua5.4-dev meson \
    ninja-build g++ pkg-config git ca-certificates >/dev/null &&
  dpkg-query -W luarocks lua5.4 meson g++ | sed "s/^/  /"'
"${lr[@]}" config lua_version
"${lr[@]}" config variables.LUA_INCDIR

step "meson setup + install (-Dtests=false)" bash -c '
  meson setup /tmp/build -Dtests=false >/dev/null && meson install -C /tmp/build --quiet'
ls -l /usr/local/lib/lua/5.4/luring.so /usr/local/share/lua/5.4/luring/async.lua \
  /usr/local/bin/luring-probe /usr/local/share/man/man1/luring-probe.1
step "echo round trip (meson install)" roundtrip
step "ninja uninstall" ninja -C /tmp/build uninstall >/dev/null
if lua5.4 -e 'require "luring"' 2>/dev/null; then echo "FAIL: luring still found"; exit 1; fi

"${lr[@]}" lint luring-scm-1.rockspec && echo "luarocks lint: ok"
step "luarocks make" "${lr[@]}" make luring-scm-1.rockspec
"${lr[@]}" list luring
command -v luring-probe
luring-probe --check read,send_zc,bogus || echo "luring-probe --check exit status $?"
step "echo round trip (luarocks make)" roundtrip

step "luarocks remove" "${lr[@]}" remove luring
if lua5.4 -e 'require "luring"' 2>/dev/null; then echo "FAIL: luring still found"; exit 1; fi

# The same rockspec, fetched by LuaRocks: only the source is this clone, not the upstream.
sed "s|url = \"git+https://[^\"]*\"|url = \"git+file://$PWD\"|" luring-scm-1.rockspec \
  > /tmp/luring-scm-1.rockspec
grep -n 'url = ' /tmp/luring-scm-1.rockspec
step "luarocks install <rockspec>" "${lr[@]}" install /tmp/luring-scm-1.rockspec
step "echo round trip (luarocks install)" roundtrip

step "apt-get install what the tests need" bash -c '
  apt-get install -y -qq --no-install-recommends cmake doctest-dev lua-socket >/dev/null'
step "luarocks test" "${lr[@]}" test luring-scm-1.rockspec
awk -v a="$t_all" -v b="$(date +%s.%N)" 'BEGIN { printf "fresh install: ok (%.0f s)\n", b - a }'
