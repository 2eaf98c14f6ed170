#!/bin/sh
# SPDX-License-Identifier: Apache-2.0
# needed.sh READELF BINARY [--sanitized]: BINARY's NEEDED entries are exactly libc.so.6,
# and it asks for no C++ runtime symbol (GLIBCXX_*, CXXABI_*: operator new, __cxa_*,
# __gxx_personality_v0...). With --sanitized, the sanitizer runtimes it links
# (libasan, libubsan...) are not counted.
set -eu
readelf=$1; binary=$2
needed=$("$readelf" -d "$binary" | sed -n 's/.*(NEEDED).*\[\(.*\)\]$/\1/p')
echo "NEEDED of $(basename "$binary"):" $needed
if [ "${3:-}" = --sanitized ]; then
  needed=$(echo "$needed" | tr ' ' '\n' | grep -v '^lib[a-z]*san\.so\.[0-9]*$' || true)
fi
if [ "$(echo $needed)" != libc.so.6 ]; then
  echo "FAIL: want exactly libc.so.6"
  exit 1
fi
cxx=$("$readelf" --dyn-syms -W "$binary" | grep -E '@(GLIBCXX|CXXABI)_' || true)
if [ -n "$cxx" ]; then
  echo "FAIL: symbols of the C++ runtime:"
  echo "$cxx"
  exit 1
fi
echo "ok: libc.so.6 only, no C++ runtime symbol"
