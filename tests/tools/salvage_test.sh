#!/bin/sh
# `larder salvage`: exit status 0 when every root comes back (the copy
# checks clean and holds the root), 1 when a damaged page descriptor costs
# the root (named in text and JSON), 2 when OUT exists or HEAP is missing,
# 64 for a usage error.
# Usage: salvage_test.sh LARDER_TOOL ODD_NAMES
set -eu
tool=$1
make_heap=$2
dir=$(mktemp -d /tmp/larder-salvage-XXXXXX)
trap 'rm -rf "$dir"' EXIT
heap=$dir/source.heap
fail() { echo "FAIL: $*" >&2; exit 1; }
# status COMMAND...: runs it and prints its exit status (set -e stays on).
status() { if "$@" > "$dir/out" 2> "$dir/err"; then echo 0; else echo $?; fi; }

"$make_heap" "$heap" > /dev/null
[ "$(status "$tool" salvage "$heap" "$dir/copy.heap")" = 0 ] || fail "an intact heap should salvage with 0"
cat "$dir/out"
grep -q "^salvaged: red" "$dir/out" || fail "the root should be salvaged"
grep -q "1 roots salvaged, 0 lost" "$dir/out" || fail "the summary should count it"
[ "$(status "$tool" check "$dir/copy.heap")" = 0 ] || fail "the copy should check clean"
[ "$(status "$tool" roots "$dir/copy.heap")" = 0 ] || fail "the copy's roots should list"
grep -q 'red\\x1b\[31mroot' "$dir/out" || fail "the copy should hold the root, its name escaped"

[ "$(status "$tool" salvage "$heap" "$dir/copy.heap")" = 2 ] || fail "an existing OUT should exit 2"
grep -q "already exists" "$dir/err" || fail "an existing OUT should say so"
[ "$(status "$tool" salvage "$dir/missing" "$dir/other.heap")" = 2 ] || fail "a missing heap should exit 2"
[ "$(status "$tool" salvage "$heap")" = 64 ] || fail "a missing OUT should be a usage error"

# Wipe the size class of the root's page: its blocks cannot be told apart.
address=$("$tool" roots --json "$heap" | sed -n 's/.*"address": "\(0x[0-9a-f]*\)".*/\1/p')
base=$("$tool" info --json "$heap" | sed -n 's/.*"base": "\(0x[0-9a-f]*\)".*/\1/p')
offset=$((address - base))
descriptor=$(( (offset / 4194304) * 4194304 + 64 + ((offset % 4194304) / 65536) * 64 ))
dd if=/dev/zero of="$heap" bs=1 seek=$((descriptor + 56)) count=4 conv=notrunc status=none  # block size
dd if=/dev/zero of="$heap" bs=1 seek=$((descriptor + 62)) count=1 conv=notrunc status=none  # bin
[ "$(status "$tool" salvage "$heap" "$dir/lost.heap")" = 1 ] || fail "a lost root should exit 1"
cat "$dir/out"
grep -q "^lost: red.*page descriptor of slice" "$dir/out" || fail "the lost root should name the page"
[ "$(status "$tool" salvage --json "$heap" "$dir/lost2.heap")" = 1 ] || fail "--json should exit 1 too"
grep -q '"lost": 1' "$dir/out" || fail "the JSON should count the lost root"
grep -q '"lost_because": ".*page descriptor of slice' "$dir/out" || fail "the JSON should say why"
echo "salvage test passed"
