#!/bin/sh
# `larder store info|ls|stat|check`: a client process leaves five sealed
# objects, an unsealed one and a reference; the tool lists them beside the
# live client, and after the client is killed, the tool (a client itself)
# recovers it: the unsealed object goes, the reference is released, the
# store checks clean.
# Usage: store_cli_test.sh LARDER_TOOL STORE_FILLER
set -eu
tool=$1
filler=$2
# shellcheck source=tool_test_lib.sh
. "$(dirname "$0")/tool_test_lib.sh"
heap=$dir/store.heap
holds() {
  "$tool" store "$1" --json "$heap" > "$dir/out.json"
  json_holds "$dir/out.json" "$2"
}

mkfifo "$dir/ready"
"$filler" "$heap" > "$dir/ready" &
pid=$!
pids=$pid
read -r line < "$dir/ready"
[ "$line" = "ready" ] || fail "the filler did not start: $line"

holds info 'd["objects"] == 6 and d["clients"] == 2 and len(d["processes"]) == 1 and d["processes"][0]["alive"]' ||
  fail "info beside a live client: $(cat "$dir/out.json")"
holds ls 'len(d) == 6 and [o["state"] for o in d if o["id"] == "6"] == ["unsealed"] and [o["refcount"] for o in d if o["id"] == "1"] == [1]' ||
  fail "ls beside a live client: $(cat "$dir/out.json")"
"$tool" store ls "$heap" | grep -q "unsealed" || fail "ls should show the unsealed object: $("$tool" store ls "$heap")"

stop "$pid"
"$tool" store check "$heap" > "$dir/check" || fail "check after the kill: $(cat "$dir/check")"
grep -q "the store is sound: 5 objects" "$dir/check" || fail "check should find 5 objects: $(cat "$dir/check")"
holds ls 'len(d) == 5 and all(o["state"] == "sealed" and o["refcount"] == 0 for o in d)' ||
  fail "the dead client's unsealed object and reference should be gone: $(cat "$dir/out.json")"
holds stat 'd["by_state"]["sealed"]["objects"] == 5 and d["by_state"]["sealed"]["bytes"] == 5 * 1024 and d["referenced"] == 0' ||
  fail "stat: $(cat "$dir/out.json")"
echo "ok"
