#!/bin/bash
# SPDX-License-Identifier: Apache-2.0
# readme_bench.sh SRC: runs the README's benchmark command blocks, word for word, in a
# copy of the source tree (so its build-bench folder lands in the copy), with
# LURING_BENCH_QUICK=1 so the rounds are short: the one with `bench-run all`, then the
# scorecard one. Passes when each exits 0 and printed every section. The command
# builds the whole project in release mode: about a minute here.
set -euo pipefail
src=$1
block=$(awk '/^```sh$/ { b = ""; inb = 1; next }
             /^```$/  { if (inb && b ~ /bench-run all/) printf "%s", b; inb = 0; next }
             inb      { b = b $0 "\n" }' "$src/README.md")
if [ -z "$block" ]; then
  echo "FAIL: no sh block with 'bench-run all' in README.md"
  exit 1
fi
echo "README block: $block"
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
# The files a clone has: tracked ones when this is a git tree, else all but build folders.
if git -C "$src" rev-parse --is-inside-work-tree >/dev/null 2>&1; then
  (cd "$src" && git ls-files -z --cached --others --exclude-standard |
     xargs -0 cp --parents -t "$tmp" 2>/dev/null || true)
else
  (cd "$src" && tar -c --exclude='./build*' . | tar -x -C "$tmp")
fi
cd "$tmp"
rc=0
LURING_BENCH_QUICK=1 bash -c "$block" >out.log 2>&1 || rc=$?
if [ $rc != 0 ]; then  # bench-run exits 1 when a run failed or an allocation bar was missed
  tail -40 out.log
  echo "FAIL: the README's benchmark command exited $rc"
  exit 1
fi
for section in nop write-small read-4k ping-pong coroutines alloc; do
  grep -q "^### $section" out.log || { tail -40 out.log; echo "FAIL: no '### $section' section"; exit 1; }
done
sed -n '/^### coroutines/,$p' out.log

# The scorecard block (the servers, the copy, the instruction counts and the targets
# table), in the same copy: it uses the build-bench made above.
block=$(awk '/^```sh$/ { b = ""; inb = 1; next }
             /^```$/  { if (inb && b ~ /scorecard.sh/) printf "%s", b; inb = 0; next }
             inb      { b = b $0 "\n" }' "$src/README.md")
if [ -z "$block" ]; then
  echo "FAIL: no sh block with 'scorecard.sh' in README.md"
  exit 1
fi
echo "README block: $block"
rc=0
LURING_BENCH_QUICK=1 bash -e -c "$block" >scorecard.log 2>&1 || rc=$?
if [ $rc != 0 ]; then
  tail -40 scorecard.log
  echo "FAIL: the README's scorecard command exited $rc"
  exit 1
fi
for row in "HTTP hello, -c64" "echo 1 KiB" "file copy, page-cached" "write-small" \
           "ping-pong unix" "read-4k, 32 per submit"; do
  grep -q "^| $row" scorecard.log ||
    { tail -40 scorecard.log; echo "FAIL: no '$row' row in the scorecard"; exit 1; }
done
for t in "micro:## luring benchmarks" "http:### HTTP hello server" "echo:### Echo server" \
         "copy:### File copy"; do
  grep -q "^${t#*:}" "build-bench/scorecard/${t%%:*}.md" ||
    { echo "FAIL: no '${t#*:}' in build-bench/scorecard/${t%%:*}.md"; exit 1; }
done
cat scorecard.log
echo "ok: the README's benchmark commands ran"
