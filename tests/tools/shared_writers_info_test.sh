#!/bin/sh
# `larder info` on a heap with shared writers: it lists every attached
# process, tells a dead one (killed inside a transaction), and a client
# attaching afterwards recovers it (rolls its transaction back and frees
# its slot).
# Usage: shared_writers_info_test.sh LARDER_TOOL PENDING_WRITER
set -eu
tool=$1
writer=$2
# shellcheck source=tool_test_lib.sh
. "$(dirname "$0")/tool_test_lib.sh"
heap=$dir/shared.heap
# start_writer: a shared writer left inside a transaction; waits until it is.
start_writer() {
  fifo=$dir/out.$1
  mkfifo "$fifo"
  "$writer" --shared "$heap" > "$fifo" &
  pids="$pids $!"
  last=$!
  read -r line < "$fifo"
  [ "$line" = "in transaction" ] || fail "writer $1 did not start: $line"
}

"$tool" create "$heap" > /dev/null
start_writer a
first=$last
start_writer b
info_holds 'len(d["shared_writers"]) == 2 and all(c["alive"] for c in d["shared_writers"])' ||
  fail "info should list two live shared writers: $(cat "$dir/info.json")"
info_holds 'sum(1 for l in d["lanes"] if l["state"] == "pending transaction") == 2' ||
  fail "each writer's transaction is in flight in its own lane: $(cat "$dir/info.json")"
"$tool" info "$heap" > "$dir/info"
grep -q '^writers     2 shared writers$' "$dir/info" || fail "info should count the writers: $(cat "$dir/info")"
stop "$first"
info_holds 'sorted(c["alive"] for c in d["shared_writers"]) == [False, True]' ||
  fail "info should tell the dead writer: $(cat "$dir/info.json")"
grep -q 'dead' "$dir/info" || "$tool" info "$heap" | grep -q 'dead: the next client to attach recovers it' ||
  fail "info should say the dead writer is recovered by the next: $("$tool" info "$heap")"
start_writer c
info_holds 'len(d["shared_writers"]) == 2 and all(c["alive"] for c in d["shared_writers"])' ||
  fail "the third writer should have recovered the dead one: $(cat "$dir/info.json")"
info_holds 'sum(1 for l in d["lanes"] if l["state"] == "pending transaction") == 2' ||
  fail "the dead writer's transaction should be rolled back: $(cat "$dir/info.json")"
echo "ok"
