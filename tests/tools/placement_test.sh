#!/bin/sh
# `larder pods` and `larder stat` on a heap that automatic placement ran
# on: which sites feed which pod, and why, read by another process.
# Usage: placement_test.sh LARDER_TOOL PLACED_WRITER
set -eu
tool=$1
writer=$2
dir=$(mktemp -d /tmp/larder-placement-XXXXXX)
trap 'rm -rf "$dir"' EXIT
heap=$dir/placed.heap
fail() { echo "FAIL: $*" >&2; exit 1; }

"$writer" "$heap" 8 > "$dir/writer.out" || fail "the writer failed"
if grep -q "^skipped" "$dir/writer.out"; then cat "$dir/writer.out"; exit 0; fi

"$tool" pods "$heap" > "$dir/pods.out"
cat "$dir/pods.out"
grep -q "^automatic placement" "$dir/pods.out" || fail "pods should show the placement table"
grep -Eq "^[0-9]+ +auto\.0 " "$dir/pods.out" || fail "pods should list the overflow pod auto.0"
grep -q "apart: bundling it would write" "$dir/pods.out" || fail "the hot site should be kept apart, with the reason"
grep -Eq "^[0-9]+ +64 B +1\.000 " "$dir/pods.out" || fail "the session site should show a write rate of 1"
grep -Eq "^[0-9]+ +64 B +0\.000 " "$dir/pods.out" || fail "the settings site should show a write rate of 0"

"$tool" pods "$heap" --json > "$dir/pods.json"
python3 - "$dir/pods.json" <<'PY'
import json, sys
pods = json.load(open(sys.argv[1]))
sites = [s for p in pods for s in p["placed_sites"]]
assert len(sites) >= 2, sites
reasons = {s["reason"] for s in sites}
assert "apart" in reasons, reasons
for p in pods:
    for s in p["placed_sites"]:
        assert s["why"], s
print("json ok:", len(sites), "sites")
PY

# Another run of the same program finds its sites' pods again: no new
# auto.N pods, and its sites are not probing.
before=$("$tool" pods "$heap" | grep -Ec '^[0-9]+ +auto\.')
"$writer" "$heap" 8 > /dev/null || fail "the second run failed"
after=$("$tool" pods "$heap" | grep -Ec '^[0-9]+ +auto\.')
[ "$before" = "$after" ] || fail "a second run made new pods ($before, then $after)"
"$tool" pods "$heap" | grep -q "probing" && fail "the second run's sites should not be probing again"

"$tool" stat "$heap" > "$dir/stat.out"
cat "$dir/stat.out"
grep -Eq "^placement: [0-9]+ sites in [0-9]+ pods" "$dir/stat.out" || fail "stat should summarise placement"

"$tool" create "$dir/plain.heap" > /dev/null
"$tool" stat "$dir/plain.heap" | grep -q "^placement: off" || fail "a heap never placed should say off"
echo "placement tool test passed"
