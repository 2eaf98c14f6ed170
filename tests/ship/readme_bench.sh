#!/bin/bash
# SPDX-License-Identifier: Apache-2.0
# readme_bench.sh SRC: runs the README's benchmark command blocks, word for word, in a
# copy of the source tree (so its build-bench folder lands in the copy), with
# LURING_BENCH_QUICK=1 so the rounds are short: the one with `bench-run all`, then the
# servers-and-copies one. Passes when each exits 0 and printed every section. The command
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

# The servers-and-copies block, in the same copy (it uses the build-bench made above).
block=$(awk '/^```sh$/ { b = ""; inb = 1; next }
             /^```$/  { if (inb && b ~ /server-bench.sh/) printf "%s", b; inb = 0; next }
             inb      { b = b $0 "\n" }' "$src/README.md")
if [ -z "$block" ]; then
  echo "FAIL: no sh block with 'server-bench.sh' in README.md"
  exit 1
fi
echo "README block: $block"
rc=0
LURING_BENCH_QUICK=1 bash -e -c "$block" >servers.log 2>&1 || rc=$?
if [ $rc != 0 ]; then
  tail -40 servers.log
  echo "FAIL: the README's servers-and-copies command exited $rc"
  exit 1
fi
for section in "HTTP hello server" "Echo server" "File copy"; do
  grep -q "^### $section" servers.log ||
    { tail -40 servers.log; echo "FAIL: no '### $section' section"; exit 1; }
done
cat servers.log
echo "ok: the README's benchmark commands ran"
