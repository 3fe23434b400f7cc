#!/bin/sh
# The tool's shared contract: --version, one exit-code table (0 ok, 1
# damaged, 2 cannot run, 64 usage), --json on listings, human-readable
# sizes, `recover` after a crash and `rm` that removes only larder heaps.
# Usage: toolbox_test.sh LARDER_TOOL ODD_NAMES
set -eu
tool=$1
maker=$2
dir=$(mktemp -d /tmp/larder-toolbox-XXXXXX)
trap 'rm -rf "$dir"' EXIT
heap=$dir/t.heap
fail() { echo "FAIL: $*" >&2; exit 1; }
status() { if "$@" > "$dir/out" 2> "$dir/err"; then echo 0; else echo $?; fi; }

"$tool" --version | grep -Eq '^larder [0-9]+\.[0-9]+\.[0-9]+$' || fail "--version should print larder X.Y.Z"
[ "$(status "$tool")" = 64 ] || fail "no subcommand is a usage error (64)"
[ "$(status "$tool" info --no-such-option "$heap")" = 64 ] || fail "an unknown option is a usage error (64)"
[ "$(status "$tool" info "$dir/missing")" = 2 ] || fail "a missing heap cannot be opened (2)"
echo "not a heap at all" > "$dir/garbage"
[ "$(status "$tool" info "$dir/garbage")" = 2 ] || fail "garbage is not a heap (2)"

"$maker" "$heap"
"$tool" info "$heap" > "$dir/info"
grep -Eq '^reserve +[0-9.]+ (MiB|GiB)$' "$dir/info" || fail "info should show the reserve in human units"
grep -q '^created .*UTC$' "$dir/info" || fail "info should show when the heap was created"
grep -Eq '^view +as stored$' "$dir/info" || fail "info of a closed heap should say as stored"
for command in info roots pods stat check; do
  "$tool" "$command" --json "$heap" > "$dir/$command.json" || fail "$command --json failed"
  python3 -c 'import json,sys; json.load(open(sys.argv[1]))' "$dir/$command.json" ||
    fail "$command --json is not JSON"
done
python3 - "$dir/roots.json" <<'PY' || fail "roots --json should give the exact root name"
import json, sys
names = [r["name"] for r in json.load(open(sys.argv[1]))]
assert any("\x1b[31m" in n and "\n" in n for n in names), names
PY
python3 -c 'import json,sys; d=json.load(open(sys.argv[1])); assert d["clean"] is True' "$dir/check.json" ||
  fail "check --json should say clean"

# Damage: exit 1 from check and from an open that refuses the heap.
cp "$heap" "$dir/damaged.heap"
printf '\377\377\377\377' | dd of="$dir/damaged.heap" bs=1 seek=8200 conv=notrunc status=none  # metadata magic
[ "$(status "$tool" check "$dir/damaged.heap")" = 1 ] || fail "check of a damaged heap exits 1"
[ "$(status "$tool" info "$dir/damaged.heap")" = 1 ] || fail "info of a damaged heap exits 1"

# recover: nothing pending on a clean heap.
"$tool" recover "$heap" | grep -q "0 pending transactions rolled back" || fail "recover should report what it did"

# rm: removes heaps, refuses what is not one.
[ "$(status "$tool" rm "$dir/garbage")" = 2 ] || fail "rm of a file that is not a heap is refused (2)"
[ -f "$dir/garbage" ] || fail "rm removed a file that is not a heap"
[ "$(status "$tool" rm "$heap")" = 0 ] || fail "rm of a heap should succeed"
[ ! -e "$heap" ] || fail "rm left the heap"
[ "$(status "$tool" rm "$heap")" = 2 ] || fail "rm of a missing heap exits 2"
echo "ok"
