#!/bin/bash
# SPDX-License-Identifier: Apache-2.0
# tools/bench/scorecard.sh [--quick] [BUILD]
#   The whole benchmark set from one command, scored against the speed targets (issue
#   10): bench-run all (the micro workloads, their coroutine forms, the ring modes),
#   instructions per operation of the Lua workloads (callgrind), the HTTP and echo
#   servers (server-bench.sh) and the 1 GiB file copy (file-copy-bench.sh). Each tool's
#   own tables go to BUILD/scorecard/ (micro.md, instructions.md, http.md, echo.md,
#   copy.md); stdout gets the machine and one Markdown table: each target, luring's
#   figure, what it is measured against, the goal, and whether it holds.
#   BUILD: a release build (default: build-bench); about 25 minutes, most of it the
#   servers. --quick (or LURING_BENCH_QUICK=1): every tool's smoke run (a few minutes,
#   rough numbers).
# Needs what the tools need (wrk, taskset, /usr/bin/time); valgrind for the
#   instruction rows (without it they say n/a). Exit: 0, or 1 when a tool failed.
set -uo pipefail
here=$(cd "$(dirname "$0")/../.." && pwd)
quick=${LURING_BENCH_QUICK:-0}
if [ "${1:-}" = --quick ]; then quick=1; shift; fi
case ${1:-} in -*) sed -n '3,14p' "$0" | sed 's/^# \{0,1\}//'; exit 2 ;; esac
build=$(cd "${1:-$here/build-bench}" && pwd) || exit 2
out=$build/scorecard
mkdir -p "$out"
status=0
export LURING_BENCH_QUICK=$quick

run() {  # run FILE CMD...: CMD's stdout to FILE; a failure is reported and remembered
  local file=$1
  shift
  echo "scorecard: $* > $file" >&2
  "$@" >"$file" || { echo "scorecard: $1 failed (exit $?)" >&2; status=1; }
}

run "$out/micro.md" "$build/tools/bench/bench-run" all
run "$out/http.md" "$here/tools/bench/server-bench.sh" http "$build"
run "$out/echo.md" "$here/tools/bench/server-bench.sh" echo "$build"
run "$out/copy.md" "$here/tools/bench/file-copy-bench.sh" "$build"

# Instructions per operation: (Ir(N2) - Ir(N1)) / (N2 - N1), start-up cancelled out.
instructions() {  # instructions SCRIPT ARGS...: prints the count per operation
  local n1=20000 n2=100000 ir1 ir2 vg script=$1
  shift
  [ $quick = 1 ] && n1=2000 n2=10000
  # Once without valgrind first: read_4k.lua makes its 64 MiB file on its first run.
  for n in 1 $n1 $n2; do
    vg=(valgrind --tool=callgrind --callgrind-out-file="$out/cg.out")
    [ $n = 1 ] && vg=()
    (cd "$build" && LUA_CPATH="$build/src/lua/?.so;$build/tools/bench/?.so;;" \
      LUA_PATH="$here/tools/bench/lua/?.lua;;" "${vg[@]}" lua5.4 \
      "$here/tools/bench/lua/$script" "$@" --ops $n >/dev/null 2>"$out/cg.err") ||
      { cat "$out/cg.err" >&2; return 1; }
    [ $n = 1 ] && continue
    ir2=$(sed -n 's/^summary: *//p' "$out/cg.out")
    [ $n = $n1 ] && ir1=$ir2
  done
  rm -f "$out/cg.out" "$out/cg.err"
  echo $(((ir2 - ir1) / (n2 - n1)))
}
declare -A ir
if command -v valgrind >/dev/null; then
  for w in "write_small.lua --impl luring" "read_4k.lua --impl luring --batch 32" \
           "ping_pong.lua --impl luring --transport unix"; do
    echo "scorecard: callgrind $w" >&2
    # shellcheck disable=SC2086 # the workload's words are its arguments
    ir[${w%%.lua*}]=$(instructions $w) || { ir[${w%%.lua*}]=n/a; status=1; }
  done
  {
    echo "### Instructions per operation (callgrind, Lua callbacks)"
    echo
    echo "| workload | instructions/op |"
    echo "|---|---:|"
    for w in write_small read_4k ping_pong; do echo "| $w | ${ir[$w]} |"; done
  } >"$out/instructions.md"
else
  echo "scorecard: valgrind is not installed: no instruction counts" >&2
fi

# cell FILE SECTION ROW COLUMN: column COLUMN (1 = the first) of the table row whose
# first cell is ROW, in the part of FILE after the heading line that starts SECTION.
cell() {
  awk -F'|' -v sec="$2" -v row="$3" -v col="$4" '
    /^#/ { on = index($0, sec) == 1 }
    on && /^\|/ { c = $2; gsub(/^ +| +$/, "", c)
                  if (c == row) { v = $(col + 1); gsub(/^ +| +$/, "", v); print v; exit } }' "$1"
}
# server FILE NAME CONNS COLUMN: a server table's cell (3 rate, 4 total, 5 user, 6 system).
server() {
  awk -F'|' -v n="$2" -v c="$3" -v col="$4" '
    { a = $2; b = $3; gsub(/ /, "", a); gsub(/ /, "", b)
      if (a == n && b == c) { v = $(col + 1); gsub(/ /, "", v); print v; exit } }' "$1"
}
copy() {  # copy NAME COLUMN: the cached copy's cell (3 seconds, 4 RSS MiB)
  awk -F'|' -v n="$1" -v col="$2" '
    { a = $2; b = $3; gsub(/^ +| +$/, "", a); gsub(/ /, "", b)
      if (a == n && b == "cached") { v = $(col + 1); gsub(/ /, "", v); print v; exit } }' \
    "$out/copy.md"
}

# row WORKLOAD FIGURE LURING AGAINST GOAL TEST: one line of the table; TEST is an awk
# expression over l (luring's figure) and r (the reference) deciding "yes" or "no".
row() {
  local met
  met=$(awk -v l="$3" -v r="$6" "BEGIN { if (l == \"\" || r == \"\" || l == \"n/a\") print \"n/a\";
        else print (($7) ? \"yes\" : \"no\") }")
  echo "| $1 | $2 | $3 | $4 | $5 | $met |"
}
min() { awk -v a="$1" -v b="$2" 'BEGIN { if (a == "") print b; else if (b == "" || a < b) print a; else print b }'; }

hc=64 ec=256
[ $quick = 1 ] && ec=16   # the quick runs measure the middle connection count only
echo "## luring scorecard"
echo
buildtype=$(python3 -c 'import json, sys
print(next(o["value"] for o in json.load(open(sys.argv[1])) if o["name"] == "buildtype"))' \
  "$build/meson-info/intro-buildoptions.json" 2>/dev/null || echo unknown)
echo "$(date -u +%Y-%m-%d), commit $(git -C "$here" rev-parse --short HEAD 2>/dev/null || echo '?')," \
  "$(nproc) CPUs ($(sed -n 's/^model name[^:]*: //p' /proc/cpuinfo | head -1)), Linux $(uname -r)," \
  "$buildtype build$([ $quick = 1 ] && echo '; quick run: rough numbers')."
echo "Every tool's tables: $out/."
echo
echo "| workload | figure | luring | measured against | goal | met |"
echo "|---|---|---:|---|---|---|"
for w in http echo; do
  f=$out/$w.md c=$hc unit=request
  [ $w = echo ] && c=$ec unit=message
  lt=$(server "$f" luring.async $c 4) lu=$(server "$f" luring.async $c 5)
  ft=$(server "$f" C++-floor $c 4)
  peer_t=$(min "$(server "$f" luv $c 4)" "$(server "$f" cqueues $c 4)")
  peer_u=$(min "$(server "$f" luv $c 5)" "$(server "$f" cqueues $c 5)")
  name="HTTP hello, -c$c"
  [ $w = echo ] && name="echo 1 KiB, $c conns"
  row "$name" "CPU µs/$unit, total" "$lt" "C++ floor $ft" "≤ 1.15x the floor" "$ft" "l <= 1.15 * r"
  row "$name" "CPU µs/$unit, total" "$lt" "best of luv, cqueues $peer_t" "below both" "$peer_t" "l < r"
  row "$name" "CPU µs/$unit, user" "$lu" "best of luv, cqueues $peer_u" "≤ 0.5x" "$peer_u" "l <= 0.5 * r"
done
ct=$(copy "luring.async cp.lua" 3) cr=$(copy "luring.async cp.lua" 4)
cpt=$(copy cp 3) ior=$(copy "Lua io" 4)
row "file copy, page-cached" "seconds" "$ct" "cp $cpt" "≤ 1.0x cp" "$cpt" "l <= r"
row "file copy, page-cached" "peak RSS MiB" "$cr" "Lua io $ior" "≤ 2x Lua io" "$ior" "l <= 2 * r"
m=$out/micro.md
ws=$(cell "$m" "### write-small" "Lua, luring" 3) wio=$(cell "$m" "### write-small" "Lua, io (unbuffered)" 3)
row "write-small" "ns/write" "$ws" "Lua io unbuffered $wio" "≤ Lua io" "$wio" "l <= r"
pp=$(cell "$m" "### ping-pong, AF_UNIX" "Lua, luring" 6)
pp=${pp%% *}
row "ping-pong unix" "x C on liburing" "$pp" "C on liburing 1" "≥ 0.9" "1" "l >= 0.9"
rl=$(cell "$m" "### read-4k" "Lua, luring" 3) rv=$(cell "$m" "### read-4k" "Lua, luv fs_read sync" 3)
rx=$(awk -v l="$rl" -v v="$rv" 'BEGIN { if (l > 0 && v > 0) printf "%.2f", v / l }')
row "read-4k, 32 per submit" "x luv sync (its ns / ours)" "$rx" "luv sync $rv ns" "≥ 1.5" "1" "l >= 1.5"
# The counts at 7ead648 (tools/bench/RESULTS.md): the goal is 40% fewer.
for w in "write_small 1736 write" "read_4k 3246 read" "ping_pong 11413 round trip"; do
  read -r key base op <<<"$w"
  row "${key/_/-}, callbacks" "instructions/$op" "${ir[$key]:-n/a}" "$base at 7ead648" \
    "≤ $((base * 6 / 10))" "$base" "l <= 0.6 * r"
done
exit $status
