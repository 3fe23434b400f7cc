#!/bin/sh
# `larder info`: the last-close time and each lane's state. A clean close
# records a time no earlier than the creation; a writer killed inside a
# transaction leaves its lane with a pending transaction, which `larder
# recover` rolls back; a heap with no close time recorded (format 1.3 and
# older) shows "unknown".
# Usage: info_lanes_test.sh LARDER_TOOL PENDING_WRITER
set -eu
tool=$1
writer=$2
# shellcheck source=tool_test_lib.sh
. "$(dirname "$0")/tool_test_lib.sh"
heap=$dir/lanes.heap

"$tool" create "$heap" > /dev/null
info_holds 'd["created_ns"] > 0 and d["last_close_ns"] >= d["created_ns"]' ||
  fail "a clean close should record a time no earlier than the creation: $(cat "$dir/info.json")"
info_holds 'd["last_close"].endswith("UTC") and all(l["state"] == "clean" for l in d["lanes"])' ||
  fail "after a clean close every lane should be clean: $(cat "$dir/info.json")"
"$tool" info "$heap" > "$dir/info"
grep -Eq '^last close  [0-9-]+ [0-9:]+ UTC$' "$dir/info" || fail "info should show the last close: $(cat "$dir/info")"
closed=$(python3 -c 'import json, sys; print(json.load(open(sys.argv[1]))["last_close_ns"])' "$dir/info.json")

# A writer killed inside a transaction.
"$writer" "$heap" > "$dir/writer.out" &
pid=$!
pids=$pid
tries=0
until grep -q "in transaction" "$dir/writer.out"; do
  tries=$((tries + 1))
  [ "$tries" -lt 400 ] || fail "the writer did not reach its transaction"
  sleep 0.05
done
stop "$pid"
info_holds '([l["state"] for l in d["lanes"]].count("pending transaction") == 1 and
             all(l["pending_records"] > 0 and l["pending_bytes"] > 0 for l in d["lanes"] if l["state"] != "clean"))' ||
  fail "the killed writer's lane should hold a pending transaction: $(cat "$dir/info.json")"
info_holds 'd["view"].startswith("a private copy") and d["last_close_ns"] == '"$closed" ||
  fail "info after the kill: $(cat "$dir/info.json")"
"$tool" info "$heap" > "$dir/info"
grep -Eq '^  lane [0-9]+ +pending transaction [0-9]+ \([0-9]+ records, .*the next writer open rolls it back' "$dir/info" ||
  fail "info should show the pending transaction: $(cat "$dir/info")"

"$tool" recover "$heap" | grep -q "1 pending transactions rolled back" || fail "recover should roll the transaction back"
info_holds 'all(l["state"] == "clean" for l in d["lanes"]) and d["view"] == "as stored"' ||
  fail "after recover every lane should be clean: $(cat "$dir/info.json")"
info_holds 'd["last_close_ns"] >= '"$closed" || fail "recover's close should record its time: $(cat "$dir/info.json")"

# What a heap of format 1.3 or older holds there: no time.
python3 -c '
import sys
with open(sys.argv[1], "r+b") as f:
    f.seek(8192 + 2740224)  # the metadata block, last_close_ns (docs/format/heap.md)
    f.write(bytes(8))' "$heap"
"$tool" info "$heap" | grep -Eq '^last close  unknown$' || fail "a heap with no close time should show unknown"
info_holds 'd["last_close"] == "unknown" and d["last_close_ns"] == 0' || fail "--json: $(cat "$dir/info.json")"
echo "ok"
