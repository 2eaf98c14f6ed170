#!/bin/sh
# SPDX-License-Identifier: Apache-2.0
# minroot.sh [--root-in DIR] LUA LURING_SO TESTLIB_SO SOURCE_ROOT TEST... [!TEST:CASE...]:
# runs the Lua tests TEST... (tests/lua/TEST.lua, every case but the !TEST:CASE ones,
# which need a program or LuaSocket) on a minimal system: a root file system holding only the
# interpreter, exactly the files `ldd` names for it, luring.so, the Lua layer (lua/luring),
# the Lua test files and testlib.so, plus /tmp, /proc and five /dev nodes. There is no
# libstdc++, no shell and no other program: each case runs as `lua5.4 TEST.lua CASE`,
# started from outside. Needs root (unshare --root into a private mount namespace with
# its own /proc). The root is made in DIR (meson passes the build folder), else in
# ${TMPDIR:-/tmp}: the first of them whose file system lets device nodes be opened (a
# /tmp mounted nodev, as in kernel-run.sh's guests, does not).
set -eu
[ "$(id -u)" = 0 ] || { echo "SKIP: needs root (unshare --root, mount)"; exit 77; }
command -v unshare >/dev/null || { echo "SKIP: no unshare (util-linux)"; exit 77; }
root_in=""
if [ "$1" = --root-in ]; then root_in=$2; shift 2; fi
lua=$(command -v "$1"); module=$2; testlib=$3; src=$4
shift 4
case "${LD_PRELOAD:-}" in
  *san*) echo "SKIP: a sanitizer build needs its runtimes, which a minimal system lacks"; exit 77 ;;
esac

# A root where /dev/null, made with mknod, can be opened for writing.
root=""
tried=""
for dir in $root_in "${TMPDIR:-/tmp}"; do
  r=$(mktemp -d "$dir/luring-minroot.XXXXXX") || continue
  if mkdir "$r/dev" && mknod -m 666 "$r/dev/null" c 1 3 && (: >"$r/dev/null") 2>/dev/null; then
    root=$r
    break
  fi
  rm -rf "$r"
  tried="$tried $dir ($(findmnt -n -o OPTIONS --target "$dir" 2>/dev/null || echo '?'))"
done
if [ -z "$root" ]; then
  echo "SKIP: no folder here can hold the root's /dev nodes (mounted nodev?):$tried"
  exit 77
fi
trap 'rm -rf "$root" "$root.out"' EXIT

# The files ldd names (the loader by its absolute path), copied to the same paths.
deps() { ldd "$1" | awk '$2 == "=>" && $3 ~ /^\// { print $3 } $1 ~ /^\// { print $1 }'; }
put() { mkdir -p "$root$(dirname "$2")" && cp -L "$1" "$root$2"; }
put "$lua" /usr/bin/lua5.4
for f in $(deps "$lua"); do put "$f" "$f"; done
# luring.so and testlib.so may need nothing the interpreter does not bring.
for so in "$module" "$testlib"; do
  for f in $(deps "$so"); do
    [ -e "$root$f" ] || { echo "FAIL: $(basename "$so") needs $f, which lua5.4 does not"; exit 1; }
  done
done
put "$module" /luring/lib/luring.so
put "$testlib" /luring/lib/testlib.so
mkdir -p "$root/luring/lua" "$root/luring/tests" "$root/proc" "$root/dev" "$root/tmp"
chmod 1777 "$root/tmp"
cp -r "$src/lua/luring" "$root/luring/lua/"
cp "$src"/tests/lua/*.lua "$src/tests/ship/list_cases.lua" "$root/luring/tests/"
node() { mknod -m 666 "$root/dev/$1" c "$2" "$3"; }
node zero 1 5; node full 1 7; node random 1 8; node urandom 1 9
if [ -n "$(find "$root" -name 'libstdc++*')" ]; then echo "FAIL: libstdc++ in the root"; exit 1; fi
echo "root file system ($(find "$root" -type f | wc -l) files, no shell):"
find "$root" -type f -o -type c | sed "s|^$root||" | sort | sed 's/^/  /'

# lua5.4 inside the root, in /luring/tests, with nothing from the host's environment.
inside() {
  env -i LUA_PATH='/luring/tests/?.lua;/luring/lua/?.lua' LUA_CPATH='/luring/lib/?.so' \
    unshare --mount --root="$root" --wd=/luring/tests --mount-proc=/proc /usr/bin/lua5.4 "$@"
}

# Some environments cannot give us a private mount namespace with its own root and /proc
# (a chroot without mount rights, a container without CAP_SYS_ADMIN): skip there, naming
# what the system said.
if ! why=$(inside -e 'os.exit(0)' 2>&1); then
  echo "SKIP: cannot enter a private root here (unshare --mount --root): $why"
  exit 77
fi

except=" "
for t in "$@"; do
  case $t in !*) except="$except${t#!} " ;; esac
done
out=$root.out
failed=0; passed=0; skipped=0; left=0
for t in "$@"; do
  case $t in !*) continue ;; esac
  cases=$(inside list_cases.lua "$t.lua") || { echo "FAIL $t: cannot list its cases"; exit 1; }
  old_ifs=$IFS; IFS='
'
  for c in $cases; do
    IFS=$old_ifs
    case $except in *" $t:$c "*)
      left=$((left + 1)); except=$(echo "$except" | sed "s| $t:$c | |"); echo "left out $t $c"
      continue ;;
    esac
    code=0
    inside "$t.lua" "$c" >"$out" 2>&1 || code=$?
    if [ "$code" = 0 ] && [ "$(tail -n 1 "$out")" = ok ]; then
      passed=$((passed + 1)); echo "ok   $t $c"
    elif [ "$code" = 77 ]; then
      skipped=$((skipped + 1)); echo "skip $t $c: $(sed 's/^SKIP: //' "$out")"
    else
      failed=$((failed + 1)); echo "FAIL $t $c: exit status $code"; sed 's/^/    /' "$out"
    fi
  done
done
if [ -n "${except# }" ]; then
  echo "FAIL: no such case to leave out:$except"
  failed=$((failed + 1))
fi
echo "$passed passed, $skipped skipped, $left left out, $failed failed in the minimal root"
[ "$failed" = 0 ]
