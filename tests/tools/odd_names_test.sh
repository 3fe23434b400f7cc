#!/bin/sh
# `larder roots`, `pods` and `stat` print names holding control characters
# escaped: no raw escape byte reaches the terminal and each name stays on
# its one line.
# Usage: odd_names_test.sh LARDER_TOOL ODD_NAMES
set -eu
tool=$1
maker=$2
dir=$(mktemp -d /tmp/larder-names-XXXXXX)
trap 'rm -rf "$dir"' EXIT
heap=$dir/odd.heap
fail() { echo "FAIL: $*" >&2; exit 1; }
esc=$(printf '\033')
bel=$(printf '\007')
c1=$(printf '\302\233')

"$maker" "$heap" > /dev/null || fail "could not make the heap"
"$tool" roots "$heap" > "$dir/roots"
"$tool" pods "$heap" > "$dir/pods"
"$tool" stat "$heap" > "$dir/stat"
cat "$dir/roots" "$dir/pods"
for out in roots pods stat; do
  if grep -q "$esc" "$dir/$out" || grep -q "$bel" "$dir/$out" || grep -q "$c1" "$dir/$out"; then
    fail "larder $out printed a raw control character"
  fi
done
# The root's name: ESC as \x1b, the line break as \n, the backslash doubled.
grep -qF 'red\x1b[31mroot\nsecond line\\end ' "$dir/roots" || fail "roots should show the name escaped on one line"
[ "$(wc -l < "$dir/roots")" = 1 ] || fail "roots should print one line for its one root"
grep -q '^second line' "$dir/roots" && fail "the line break inside the root's name reached the output"
# The pod's name: ESC, BEL and the C1 control escaped, UTF-8 kept.
grep -qF 'pod\x1b]0;title\x07\xc2\x9bcafé ' "$dir/pods" || fail "pods should show the name escaped, UTF-8 kept"
if ! grep -q "never tracked" "$dir/stat"; then
  grep -qF 'pod\x1b]0;title\x07\xc2\x9bcafé ' "$dir/stat" || fail "stat should show the pod's name escaped"
fi
echo "odd names test passed"
