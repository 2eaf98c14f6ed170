#!/bin/bash
# SPDX-License-Identifier: Apache-2.0
# Quick start, step one: install what is missing (Debian/Ubuntu, as root or with sudo),
# build luring into ./build, and run luring-probe to show what io_uring this kernel
# offers. Safe to run again; it only installs packages that are not there yet.
set -euo pipefail
cd "$(dirname "$0")"

# Build and test needs. liburing-dev and lua-luv are benchmark baselines only: the
# product never links liburing.
packages=(meson ninja-build g++ pkg-config cmake lua5.4 liblua5.4-dev doctest-dev lua-socket
          liburing-dev lua-luv)

missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'ok installed' || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  sudo=""
  [ "$(id -u)" -eq 0 ] || sudo="sudo"
  echo "bootstrap: installing ${missing[*]}"
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends \
    "${missing[@]}" >/dev/null
fi

builddir=${BUILDDIR:-build}
if [ ! -f "$builddir/build.ninja" ]; then
  meson setup "$builddir" "$@"
fi
meson compile -C "$builddir"
echo
"$builddir/tools/luring-probe/luring-probe" || true
