#!/bin/bash
# SPDX-License-Identifier: Apache-2.0
# Quick start, step one: install what is missing (Debian/Ubuntu, as root or with sudo),
# build luring into ./build, and run luring-probe to show what io_uring this kernel
# offers. Safe to run again; it only installs packages that are not there yet.
set -euo pipefail
cd "$(dirname "$0")"

# To build: meson ninja-build g++ pkg-config liblua5.4-dev; to run: lua5.4. For the tests
# only: cmake doctest-dev (unit tests), lua-socket, lua-check, wrk, groff-base (the man
# page test). Benchmark baselines
# only: liburing-dev lua-luv lua-cqueues (the product never links liburing); and for the
# server and file-copy benchmarks, time (/usr/bin/time) and iproute2 (ss).
packages=(meson ninja-build g++ pkg-config liblua5.4-dev lua5.4
          cmake doctest-dev lua-socket lua-check wrk groff-base
          liburing-dev lua-luv lua-cqueues time iproute2)

missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'ok installed' || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  sudo=""
  [ "$(id -u)" -eq 0 ] || sudo="sudo"
  echo "bootstrap: installing ${missing[*]}"
  echo "bootstrap: apt-get update"
  $sudo apt-get update -qq
  echo "bootstrap: apt-get install (${#missing[@]} packages; this takes a few minutes)"
  # Show each package as it is set up; keep apt's exit status.
  set +e
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -q --no-install-recommends \
    "${missing[@]}" 2>&1 | while IFS= read -r line; do
      case $line in "Setting up "* | E:* | "Err"*) echo "  $line" ;; esac
    done
  rc=${PIPESTATUS[0]}
  set -e
  if [ "$rc" -ne 0 ]; then
    echo "bootstrap: apt-get install failed (exit $rc)" >&2
    exit "$rc"
  fi
else
  echo "bootstrap: every package is installed"
fi

builddir=${BUILDDIR:-build}
if [ ! -f "$builddir/build.ninja" ]; then
  echo "bootstrap: meson setup $builddir"
  meson setup "$builddir" "$@"
fi
echo "bootstrap: building"
meson compile -C "$builddir"
echo
"$builddir/tools/luring-probe/luring-probe" || true
