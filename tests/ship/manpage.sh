#!/bin/sh
# SPDX-License-Identifier: Apache-2.0
# manpage.sh PAGE PROBE: luring-probe.1 renders without a warning (groff -ww) and documents
# every option and exit status that `luring-probe --help` lists.
set -eu
page=$1 probe=$2
if command -v groff >/dev/null; then
  warnings=$(groff -man -Tutf8 -ww -z "$page" 2>&1)
  [ -z "$warnings" ] || { echo "FAIL: groff warns:"; echo "$warnings"; exit 1; }
  text=$(groff -man -Tutf8 -rLL=1000n -rHY=0 -P-cbou "$page" 2>/dev/null)  # no line breaks
else
  echo "note: no groff, the page is read as source"
  text=$(sed 's/\\-/-/g' "$page")
fi
help=$("$probe" --help)
status=0
for opt in $(echo "$help" | grep -o -- '--[a-z]*' | sort -u) -h; do
  echo "$text" | grep -q -- "$opt" || { echo "FAIL: the page lacks $opt"; status=1; }
done
for code in $(echo "$help" | sed -n 's/^  \([0-9]\)  .*/\1/p'); do
  if command -v groff >/dev/null; then
    echo "$text" | grep -q "^       $code  *[A-Za-z]"
  else
    grep -q "^\.B $code\$" "$page"  # the source: an entry of the EXIT STATUS list
  fi || { echo "FAIL: the page lacks exit $code"; status=1; }
done
echo "$text" | grep -q 'run luring-probe without arguments for the names' ||
  { echo "FAIL: the page lacks the hint for unknown names"; status=1; }
[ $status = 0 ] && echo ok
exit $status
