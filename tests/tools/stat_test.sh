#!/bin/sh
# `larder stat`: statistics of a heap being tracked by another process, and
# of the same heap after that process exits; a clear error on a non-heap.
# Usage: stat_test.sh LARDER_TOOL TRACK_WRITER
set -eu
tool=$1
writer=$2
dir=$(mktemp -d /tmp/larder-stat-XXXXXX)
trap 'rm -rf "$dir"' EXIT
heap=$dir/tracked.heap
fail() { echo "FAIL: $*" >&2; exit 1; }

"$tool" create "$heap" > /dev/null
"$tool" stat "$heap" | grep -q "never tracked" || fail "a fresh heap should say never tracked"

"$writer" "$heap" 2 50 > "$dir/writer.out" &
writer_pid=$!
sleep 0.8
"$tool" stat "$heap" --interval 0.4 --count 1 > "$dir/live.out"
wait "$writer_pid" || fail "the writer failed"
cat "$dir/live.out"
grep -q "tracked by pid $writer_pid" "$dir/live.out" || fail "stat should name the tracking process"
grep -Eq "^[0-9]+ +hot +64 " "$dir/live.out" || fail "hot should show 64 pages in its last epoch"
grep -Eq "^[0-9]+ +cold +1 " "$dir/live.out" || fail "cold should show 1 page in its last epoch"
grep -Eq "^   hot +[0-9]+ pages" "$dir/live.out" || fail "the interval sample should show hot's pages"

"$tool" stat "$heap" > "$dir/after.out"
cat "$dir/after.out"
grep -q "not tracked now" "$dir/after.out" || fail "after the writer exits, the heap is not tracked"
grep -Eq "^[0-9]+ +hot +64 " "$dir/after.out" || fail "the saved statistics should survive the writer"

head -c 100000 /dev/urandom > "$dir/garbage"
if "$tool" stat "$dir/garbage" 2> "$dir/err.out"; then fail "stat of garbage should fail"; fi
grep -q "not a larder heap" "$dir/err.out" || fail "stat of garbage should say not a larder heap"
echo "stat test passed"
