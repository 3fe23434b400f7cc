#!/bin/sh
# `larder check`: exit status 0 on a sound heap, 1 on a damaged one (with
# the place named), 2 when the heap cannot be read; --repair rewrites a torn
# superblock copy; --shm checks a shm heap.
# Usage: check_test.sh LARDER_TOOL
set -eu
tool=$1
dir=$(mktemp -d /tmp/larder-check-XXXXXX)
shm="/larder-check-test-$$"
trap 'rm -rf "$dir"; rm -f "/dev/shm${shm}"' EXIT
heap=$dir/checked.heap
fail() { echo "FAIL: $*" >&2; exit 1; }
# status COMMAND...: runs it and prints its exit status (set -e stays on).
status() { if "$@" > "$dir/out" 2> "$dir/err"; then echo 0; else echo $?; fi; }
# poke FILE OFFSET: overwrites one byte with 0xFF.
poke() { printf '\377' | dd of="$1" bs=1 seek="$2" conv=notrunc status=none; }

"$tool" create "$heap" > /dev/null
[ "$(status "$tool" check "$heap")" = 0 ] || fail "a new heap should check clean"
grep -q "clean, 0 problems" "$dir/out" || fail "the summary should say clean"

cp "$heap" "$dir/before"
poke "$heap" 300  # inside superblock copy 0, under its checksum
[ "$(status "$tool" check "$heap")" = 1 ] || fail "a torn superblock copy should exit 1"
cat "$dir/out"
grep -q "^problem: superblock copy 0 (offset 0x0): the checksum" "$dir/out" || fail "the problem should name copy 0"
grep -q "DAMAGED" "$dir/out" || fail "the summary should say DAMAGED"
[ "$(status "$tool" check --repair "$heap")" = 0 ] || fail "repair should leave the heap clean"
cat "$dir/out"
grep -q "^repaired: rewrote superblock copy 0" "$dir/out" || fail "repair should report the rewrite"
# The good copy is left as it was and the torn one rewritten from it. (The
# repair's writable open records a close, its journal and time, in the
# metadata: the rest of the file may change.)
cmp -s -n 4096 -i 4096:4096 "$heap" "$dir/before" || fail "the repair changed the good superblock copy"
cmp -s -n 4096 -i 0:4096 "$heap" "$heap" || fail "the repaired superblock copy should equal the good one"

[ "$(status "$tool" check "$dir/missing")" = 2 ] || fail "a missing heap should exit 2"
grep -q "not found" "$dir/err" || fail "a missing heap should say not found"
head -c 100000 /dev/urandom > "$dir/garbage"
[ "$(status "$tool" check "$dir/garbage")" = 1 ] || fail "garbage should exit 1"
grep -q "not a larder heap" "$dir/out" || fail "garbage should be not a larder heap"
: > "$dir/empty"
[ "$(status "$tool" check "$dir/empty")" = 1 ] || fail "an empty file should exit 1"
head -c 6000 "$heap" > "$dir/short"
[ "$(status "$tool" check "$dir/short")" = 1 ] || fail "a truncated heap should exit 1"

"$tool" create --shm "$shm" > /dev/null
[ "$(status "$tool" check --shm "$shm")" = 0 ] || fail "a new shm heap should check clean"
echo "check test passed"
