#!/bin/bash
# SPDX-License-Identifier: Apache-2.0
# tools/bench/http-server-bench.sh [-d SECONDS] [-r ROUNDS] [-c "1 64 512"] [BUILD]
#   The HTTP/1.1 keep-alive hello server (examples/http_hello.lua, one response per
#   request) against the same server on luv and on cqueues (tools/bench/peers), each
#   pinned to CPU 0 with wrk -t1 on CPU 1, for each connection count, the servers
#   and the floor, the same server in C++ on the project's core with multishot accept and
#   recv, provided buffers and DEFER_TASKRUN (tools/bench/http_floor.cpp, BUILD's
#   http-floor), interleaved round by round; luring.async three ways (tools/bench/lua/async_variant.lua):
#   as the example runs (DEFER_TASKRUN where the kernel has it), with recv_multishot, and
#   on a plain ring (flags 0). Per run: requests/s, and the server's CPU time per
#   request (user and system from /proc/PID/stat around the wrk run): on two cores wrk
#   saturates before the servers do, so requests/s alone cannot tell them apart.
#   Prints one table of medians. BUILD is the build folder whose luring.so to use
#   (default: build). A server whose library is missing is left out, saying so.
# Needs wrk, taskset and ss. Exit: 0, or 1 when a run failed (a server that did not start,
#   wrk errors or non-2xx answers).
set -uo pipefail
here=$(cd "$(dirname "$0")/../.." && pwd)
seconds=5 rounds=3 conns="1 64 512"
while getopts "d:r:c:" o; do
  case $o in
    d) seconds=$OPTARG ;;
    r) rounds=$OPTARG ;;
    c) conns=$OPTARG ;;
    *) sed -n '3,13p' "$0" | sed 's/^# \{0,1\}//'; exit 2 ;;
  esac
done
shift $((OPTIND - 1))
build=$(cd "${1:-$here/build}" && pwd) || exit 2
for tool in wrk taskset ss lua5.4; do
  command -v $tool >/dev/null || { echo "http-server-bench: needs $tool" >&2; exit 2; }
done
export LUA_CPATH="$build/src/lua/?.so;;" LUA_PATH="$here/lua/?.lua;$here/tools/bench/lua/?.lua;;"
tck=$(getconf CLK_TCK)
servers=()
# name:script:library:variant (LURING_BENCH_ASYNC for async_variant.lua; none for peers)
for s in "luring.async:examples/http_hello.lua:luring:default" \
         "luring.async/multishot:examples/http_hello.lua:luring:multishot" \
         "luring.async/plain:examples/http_hello.lua:luring:plain" \
         "luv:tools/bench/peers/http_hello_luv.lua:luv:" \
         "cqueues:tools/bench/peers/http_hello_cqueues.lua:cqueues:"; do
  IFS=: read -r name script lib variant <<<"$s"
  if lua5.4 -e "require '$lib'" 2>/dev/null; then
    servers+=("$name:$script:$variant")
  else
    echo "http-server-bench: $name left out ($lib is not installed)" >&2
  fi
done
if [ -x "$build/tools/bench/http-floor" ]; then
  servers+=("C++-floor:$build/tools/bench/http-floor:floor")
else
  echo "http-server-bench: the C++ floor left out ($build/tools/bench/http-floor not built)" >&2
fi

# cpu_ticks PID: user and system clock ticks of the process so far.
cpu_ticks() { awk '{ print $14, $15 }' "/proc/$1/stat"; }

results=$(mktemp)
trap 'rm -f "$results"' EXIT
status=0
port=$((20000 + $$ % 20000))  # a fresh range per run: a server left by another run
for round in $(seq "$rounds"); do
  for c in $conns; do
    order=("${servers[@]}")
    [ $((round % 2)) = 0 ] && mapfile -t order < <(printf '%s\n' "${servers[@]}" | tac)
    for s in "${order[@]}"; do
      IFS=: read -r name script variant <<<"$s"
      port=$((port + 1))
      if [ "$variant" = floor ]; then
        taskset -c 0 "$script" $port >/dev/null 2>&1 &
      elif [ -n "$variant" ]; then
        LURING_BENCH_ASYNC=$variant taskset -c 0 lua5.4 -l async_variant "$here/$script" $port \
          >/dev/null 2>&1 &
      else
        taskset -c 0 lua5.4 "$here/$script" $port >/dev/null 2>&1 &
      fi
      pid=$!
      for _ in $(seq 100); do  # until it accepts
        (exec 3<>/dev/tcp/127.0.0.1/$port) 2>/dev/null && break
        sleep 0.05
      done
      # The listener must be this server (its CPU time is what is measured).
      if ! ss -ltnpH "sport = :$port" 2>/dev/null | grep -q "pid=$pid,"; then
        echo "http-server-bench: $name did not listen on port $port" >&2
        kill -9 $pid 2>/dev/null
        status=1
        continue
      fi
      read -r u0 s0 < <(cpu_ticks $pid)
      out=$(taskset -c 1 wrk -t1 -c"$c" -d"${seconds}s" "http://127.0.0.1:$port/" 2>&1)
      if ! read -r u1 s1 < <(cpu_ticks $pid 2>/dev/null); then
        echo "http-server-bench: $name -c$c died during the run" >&2
        status=1
        continue
      fi
      kill -9 $pid 2>/dev/null
      wait $pid 2>/dev/null
      reqs=$(sed -n 's/^ *\([0-9]*\) requests in .*/\1/p' <<<"$out")
      rps=$(sed -n 's/^Requests\/sec: *\([0-9.]*\).*/\1/p' <<<"$out")
      if [ -z "$reqs" ] || [ "$reqs" = 0 ] || grep -q "errors\|Non-2xx" <<<"$out"; then
        echo "http-server-bench: $name -c$c failed:" >&2
        echo "$out" >&2
        status=1
        continue
      fi
      awk -v n="$name" -v c="$c" -v r="$reqs" -v rps="$rps" -v tck="$tck" \
          -v du=$((u1 - u0)) -v ds=$((s1 - s0)) \
          'BEGIN { printf "%s %s %s %.3f %.3f\n", n, c, rps, du / tck / r * 1e6, ds / tck / r * 1e6 }' \
          >>"$results"
    done
  done
done

echo "### HTTP hello server: requests/s and server CPU time per request"
echo
echo "wrk -t1 on CPU 1, the server on CPU 0, ${seconds} s per run, $rounds rounds interleaved;"
echo "medians. CPU time from /proc/PID/stat (clock ticks of 1/$tck s)."
echo
echo "| server | connections | requests/s | CPU µs/request | of which user | system |"
echo "|---|---:|---:|---:|---:|---:|"
for c in $conns; do
  for s in "${servers[@]}"; do
    name=${s%%:*}
    awk -v n="$name" -v c="$c" '$1 == n && $2 == c { print $3, $4, $5 }' "$results" |
      sort -n | awk -v n="$name" -v c="$c" '
        { rps[NR] = $1; u[NR] = $2; s[NR] = $3 }
        function med(a, k,   i, j, t) {  # median of a[1..k]
          for (i = 1; i <= k; i++) for (j = i + 1; j <= k; j++) if (a[j] < a[i]) { t = a[i]; a[i] = a[j]; a[j] = t }
          return a[int((k + 1) / 2)]
        }
        END { if (NR == 0) exit
              mu = med(u, NR); ms = med(s, NR)
              printf "| %s | %s | %.0f | %.1f | %.1f | %.1f |\n", n, c, med(rps, NR), mu + ms, mu, ms }'
  done
done
exit $status
