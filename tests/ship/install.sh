#!/bin/sh
# SPDX-License-Identifier: Apache-2.0
# install.sh layout|require MESON BUILD_DIR SOURCE_ROOT LUA CMOD_DIR LMOD_DIR BINDIR MANDIR
# `meson install` into a fresh DESTDIR, then
#   layout:  it holds exactly luring.so in CMOD_DIR, lua/luring/**.lua under LMOD_DIR/luring,
#            luring-probe in BINDIR and luring-probe.1 in MANDIR/man1, and the probe runs;
#   require: `lua5.4 -e 'require "luring.async"'` works with only the installed directories
#            on LUA_PATH and LUA_CPATH (no ";;": none of Lua's defaults), and so does
#            tests/ship/echo_roundtrip.lua.
set -eu
mode=$1 meson=$2 build=$3 src=$4 lua=$5 cmod=$6 lmod=$7 bindir=$8 man1=$9/man1
# A sanitizer build preloads its runtimes for the interpreter (tests/lua/meson.build):
# for lua5.4 only, not for meson.
preload=${LD_PRELOAD:-}
unset LD_PRELOAD
dest=$(mktemp -d "${TMPDIR:-/tmp}/luring-destdir.XXXXXX")
trap 'rm -rf "$dest"' EXIT
if ! "$meson" install -C "$build" --no-rebuild --destdir "$dest" >"$dest.log" 2>&1; then
  cat "$dest.log"; rm -f "$dest.log"; echo "FAIL: meson install"; exit 1
fi
rm -f "$dest.log"

case $mode in
layout)
  want=$( {
    echo "$cmod/luring.so"
    (cd "$src/lua" && find luring -name '*.lua') | sed "s|^|$lmod/|"
    echo "$bindir/luring-probe"
    echo "$man1/luring-probe.1"
  } | sort)
  got=$(cd "$dest" && find . -type f -o -type l | sed 's|^\.||' | sort)
  echo "installed under DESTDIR:"
  echo "$got" | sed 's/^/  /'
  if [ "$got" != "$want" ]; then
    echo "FAIL: want exactly:"; echo "$want" | sed 's/^/  /'; exit 1
  fi
  for f in $(cd "$src/lua" && find luring -name '*.lua'); do
    cmp "$src/lua/$f" "$dest$lmod/$f" || { echo "FAIL: $lmod/$f differs from lua/$f"; exit 1; }
  done
  [ -x "$dest$bindir/luring-probe" ] || { echo "FAIL: luring-probe is not executable"; exit 1; }
  "$dest$bindir/luring-probe" --version
  ;;
require)
  LD_PRELOAD=$preload DEST=$dest LUA_PATH="$dest$lmod/?.lua;$dest$lmod/?/init.lua" LUA_CPATH="$dest$cmod/?.so" \
    "$lua" -e '
    local async = require "luring.async"
    local luring = require "luring"
    assert(type(async.run) == "function" and type(luring.queue_init) == "function")
    for name in ("luring luring.async luring.async.core luring.async.socket"):gmatch("%S+") do
      local path = package.searchpath(name, package.cpath) or package.searchpath(name, package.path)
      print(name, path)
      assert(path:sub(1, #os.getenv("DEST")) == os.getenv("DEST"), name .. " not from DESTDIR")
    end'
  # And a program: an echo round trip over loopback, run from outside the tree.
  (cd / && LD_PRELOAD=$preload LUA_PATH="$dest$lmod/?.lua;$dest$lmod/?/init.lua" LUA_CPATH="$dest$cmod/?.so" \
    "$lua" "$src/tests/ship/echo_roundtrip.lua")
  ;;
*) echo "usage: install.sh layout|require ..."; exit 1 ;;
esac
echo ok
