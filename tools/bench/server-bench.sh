#!/bin/bash
# SPDX-License-Identifier: Apache-2.0
# tools/bench/server-bench.sh http|echo [-d SECONDS] [-r ROUNDS] [-c "CONNS..."] [-s "SERVERS..."] [BUILD]
#   One server workload, the same server on luring.async, luv, cqueues and in C++ on the
#   project's core (BUILD's http-floor: multishot accept and recv, provided buffers,
#   DEFER_TASKRUN: the floor), each pinned to CPU 0 with the load on CPU 1, for each
#   connection count, the servers interleaved round by round. luring.async runs five
#   ways (tools/bench/lua/async_variant.lua): as the example asks (DEFER_TASKRUN and
#   the registered ring fd where the kernel has them), with recv_multishot, on a plain
#   ring (flags 0), with each round's requests in the order made (receives_last =
#   false), entering by the ring's fd (register_ring = false), and with every send an
#   io_uring request (direct_send = false).
#     http  examples/http_hello.lua (keep-alive, one response per request) under
#           wrk -t1; connections 1 64 512 by default.
#     echo  examples/echo_server.lua (every line back) under BUILD's echo-load: one 1 KiB
#           line in flight per connection, each echo checked; connections 1 16 256.
#   Per run: operations/s (requests, messages), and the server's CPU time per operation
#   (user and system from /proc/PID/stat around the run): on two cores the load
#   saturates before the servers do, so the rate alone cannot tell them apart. Prints
#   one table of medians. BUILD: the build folder whose luring.so and tools to use
#   (default: build). A server whose library is missing is left out, saying so.
#   -s: only the servers named (as the table names them: "luring.async luv C++-floor"),
#   for a longer paired run of a few.
# LURING_BENCH_QUICK=1: 1 s runs, one round, the middle connection count (a smoke test).
# Needs taskset, ss, and wrk for http. Exit: 0, or 1 when a run failed (a server that
#   did not start, load errors, non-2xx answers, wrong echoes).
set -uo pipefail
here=$(cd "$(dirname "$0")/../.." && pwd)
me=server-bench
workload=${1:-}
case $workload in
  http) conns="1 64 512" unit=request ;;
  echo) conns="1 16 256" unit=message ;;
  *) sed -n '3,26p' "$0" | sed 's/^# \{0,1\}//'; exit 2 ;;
esac
shift
seconds=5 rounds=3 only=""
while getopts "d:r:c:s:" o; do
  case $o in
    d) seconds=$OPTARG ;;
    r) rounds=$OPTARG ;;
    c) conns=$OPTARG ;;
    s) only=" $OPTARG " ;;
    *) sed -n '3,26p' "$0" | sed 's/^# \{0,1\}//'; exit 2 ;;
  esac
done
shift $((OPTIND - 1))
if [ "${LURING_BENCH_QUICK:-0}" = 1 ]; then
  seconds=1 rounds=1
  read -r _ conns _ <<<"$conns"
fi
build=$(cd "${1:-$here/build}" && pwd) || exit 2
tools=(taskset ss lua5.4)
[ "$workload" = http ] && tools+=(wrk)
for tool in "${tools[@]}"; do
  command -v "$tool" >/dev/null || { echo "$me: needs $tool" >&2; exit 2; }
done
if [ "$workload" = echo ] && [ ! -x "$build/tools/bench/echo-load" ]; then
  echo "$me: needs $build/tools/bench/echo-load (build the benchmarks)" >&2
  exit 2
fi
export LUA_CPATH="$build/src/lua/?.so;;" LUA_PATH="$here/lua/?.lua;$here/tools/bench/lua/?.lua;;"
tck=$(getconf CLK_TCK)

if [ "$workload" = http ]; then
  example=examples/http_hello.lua luv=tools/bench/peers/http_hello_luv.lua
  cq=tools/bench/peers/http_hello_cqueues.lua floor_args=""
else
  example=examples/echo_server.lua luv=tools/bench/peers/echo_luv.lua
  cq=tools/bench/peers/echo_cqueues.lua floor_args="--echo"
fi
servers=()
# name:script:library:variant (LURING_BENCH_ASYNC for async_variant.lua; none for peers)
for s in "luring.async:$example:luring:default" \
         "luring.async/multishot:$example:luring:multishot" \
         "luring.async/plain:$example:luring:plain" \
         "luring.async/ordered:$example:luring:ordered" \
         "luring.async/fd-enter:$example:luring:fd" \
         "luring.async/ring-send:$example:luring:ringsend" \
         "luv:$luv:luv:" \
         "cqueues:$cq:cqueues:"; do
  IFS=: read -r name script lib variant <<<"$s"
  [ -n "$only" ] && [[ $only != *" $name "* ]] && continue
  if lua5.4 -e "require '$lib'" 2>/dev/null; then
    servers+=("$name:$script:$variant")
  else
    echo "$me: $name left out ($lib is not installed)" >&2
  fi
done
if [ -n "$only" ] && [[ $only != *" C++-floor "* ]]; then
  :
elif [ -x "$build/tools/bench/http-floor" ]; then
  servers+=("C++-floor:$build/tools/bench/http-floor:floor")
else
  echo "$me: the C++ floor left out ($build/tools/bench/http-floor not built)" >&2
fi

# cpu_ticks PID: user and system clock ticks of the process so far.
cpu_ticks() { awk '{ print $14, $15 }' "/proc/$1/stat"; }

# load CONNS PORT: runs the load on CPU 1; prints "operations rate", or fails.
load() {
  local out ops rate
  if [ "$workload" = http ]; then
    out=$(taskset -c 1 wrk -t1 -c"$1" -d"${seconds}s" "http://127.0.0.1:$2/" 2>&1)
    ops=$(sed -n 's/^ *\([0-9]*\) requests in .*/\1/p' <<<"$out")
    rate=$(sed -n 's/^Requests\/sec: *\([0-9.]*\).*/\1/p' <<<"$out")
    if grep -q "errors\|Non-2xx" <<<"$out"; then ops=""; fi
  else
    out=$(taskset -c 1 "$build/tools/bench/echo-load" "$2" "$1" "$seconds" 2>&1)
    ops=$(sed -n 's/^messages \([0-9]*\) seconds .*/\1/p' <<<"$out")
    rate=$(awk '/^messages/ { printf "%.1f", $2 / $4 }' <<<"$out")
  fi
  if [ -z "$ops" ] || [ "$ops" = 0 ]; then
    echo "$out" >&2
    return 1
  fi
  echo "$ops $rate"
}

results=$(mktemp) errs=$(mktemp)
trap 'rm -f "$results" "$errs"' EXIT
status=0
# A fresh range per run (a server left by another run), below the ephemeral ports (32768
# up): a load's client sockets, lingering in TIME_WAIT, can hold any port of those.
port=$((20000 + $$ % 10000))
for round in $(seq "$rounds"); do
  for c in $conns; do
    order=("${servers[@]}")
    [ $((round % 2)) = 0 ] && mapfile -t order < <(printf '%s\n' "${servers[@]}" | tac)
    for s in "${order[@]}"; do
      IFS=: read -r name script variant <<<"$s"
      port=$((port + 1))
      if [ "$variant" = floor ]; then
        taskset -c 0 "$script" $floor_args $port >/dev/null 2>"$errs" &
      elif [ -n "$variant" ]; then
        LURING_BENCH_ASYNC=$variant taskset -c 0 lua5.4 -l async_variant "$here/$script" $port \
          >/dev/null 2>"$errs" &
      else
        taskset -c 0 lua5.4 "$here/$script" $port >/dev/null 2>"$errs" &
      fi
      pid=$!
      for _ in $(seq 200); do  # until it accepts
        (exec 3<>/dev/tcp/127.0.0.1/$port) 2>/dev/null && break
        sleep 0.05
      done
      # The listener must be this server (its CPU time is what is measured).
      if ! ss -ltnpH "sport = :$port" 2>/dev/null | grep -q "pid=$pid,"; then
        echo "$me: $name did not listen on port $port; it said:" >&2
        cat "$errs" >&2
        kill -9 $pid 2>/dev/null
        status=1
        continue
      fi
      read -r u0 s0 < <(cpu_ticks $pid)
      out=$(load "$c" "$port")
      ok=$?
      if ! read -r u1 s1 < <(cpu_ticks $pid 2>/dev/null); then
        echo "$me: $name -c$c died during the run" >&2
        status=1
        continue
      fi
      kill -9 $pid 2>/dev/null
      wait $pid 2>/dev/null
      if [ $ok != 0 ]; then
        echo "$me: $name -c$c failed" >&2
        status=1
        continue
      fi
      read -r ops rate <<<"$out"
      awk -v n="$name" -v c="$c" -v r="$ops" -v rate="$rate" -v tck="$tck" \
          -v du=$((u1 - u0)) -v ds=$((s1 - s0)) \
          'BEGIN { printf "%s %s %s %.3f %.3f\n", n, c, rate, du / tck / r * 1e6, ds / tck / r * 1e6 }' \
          >>"$results"
    done
  done
done

if [ "$workload" = http ]; then
  echo "### HTTP hello server: requests/s and server CPU time per request"
  echo
  echo "wrk -t1 on CPU 1, the server on CPU 0, ${seconds} s per run, $rounds rounds interleaved;"
else
  echo "### Echo server, 1 KiB lines: messages/s and server CPU time per message"
  echo
  echo "echo-load on CPU 1 (one line in flight per connection), the server on CPU 0,"
  echo "${seconds} s per run, $rounds rounds interleaved;"
fi
echo "medians. CPU time from /proc/PID/stat (clock ticks of 1/$tck s)."
echo
echo "| server | connections | ${unit}s/s | CPU µs/$unit | of which user | system |"
echo "|---|---:|---:|---:|---:|---:|"
for c in $conns; do
  for s in "${servers[@]}"; do
    name=${s%%:*}
    awk -v n="$name" -v c="$c" '$1 == n && $2 == c { print $3, $4, $5 }' "$results" |
      awk '
        { rate[NR] = $1; u[NR] = $2; s[NR] = $3 }
        function med(a, k,   i, j, t) {  # median of a[1..k]
          for (i = 1; i <= k; i++) for (j = i + 1; j <= k; j++) if (a[j] < a[i]) { t = a[i]; a[i] = a[j]; a[j] = t }
          return a[int((k + 1) / 2)]
        }
        END { if (NR == 0) exit
              mu = med(u, NR); ms = med(s, NR)
              printf "%.0f %.1f %.1f %.1f\n", med(rate, NR), mu + ms, mu, ms }' |
      while read -r rate total user sys; do
        echo "| $name | $c | $rate | $total | $user | $sys |"
      done
  done
done
exit $status
