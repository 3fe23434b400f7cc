#!/bin/sh
# `larder clone`, `roots --version` and `checkout` of a heap that does not
# open: a clone holds the version and checks clean, a version reads
# straight from the store, and a heap whose metadata is damaged gets its
# version back through its file.
# Usage: clone_test.sh LARDER_TOOL VALUE_WRITER
set -eu
tool=$1
writer=$2
dir=$(mktemp -d /tmp/larder-clone-XXXXXX)
trap 'rm -rf "$dir"' EXIT
heap=$dir/c.heap
fail() { echo "FAIL: $*" >&2; exit 1; }
status() { if "$@" > "$dir/out" 2> "$dir/err"; then echo 0; else echo $?; fi; }
json_field() { python3 -c "import json,sys; d=json.load(open('$dir/out')); print($1)"; }

"$writer" "$heap" 1
[ "$(status "$tool" checkpoint "$heap" -m one --json)" = 0 ] || fail "checkpoint: $(cat "$dir/err")"
first=$(json_field 'd["id"]')
"$writer" "$heap" 2
[ "$(status "$tool" checkpoint "$heap" -m two)" = 0 ] || fail "second checkpoint: $(cat "$dir/err")"

# A clone by the heap's name and by the store's, each a heap of its own.
[ "$(status "$tool" clone "$heap" "$first" "$dir/one.heap" --json)" = 0 ] || fail "clone: $(cat "$dir/err")"
[ "$(json_field 'd["id"]')" = "$first" ] || fail "clone names the version it wrote"
[ "$(status "$tool" check "$dir/one.heap")" = 0 ] || fail "a clone checks clean: $(cat "$dir/out") $(cat "$dir/err")"
[ "$("$writer" "$dir/one.heap")" = 1 ] || fail "the clone holds the first version's value"
[ "$("$writer" "$heap")" = 2 ] || fail "the heap itself is unchanged by a clone"
[ "$(status "$tool" clone "$heap.versions" main "$dir/two.heap")" = 0 ] || fail "clone from a store: $(cat "$dir/err")"
[ "$("$writer" "$dir/two.heap")" = 2 ] || fail "a clone of main holds the second value"
[ "$(status "$tool" clone "$heap" main "$dir/two.heap")" = 2 ] || fail "a clone never overwrites a file"
grep -q "exists" "$dir/err" || fail "the refusal says the file exists: $(cat "$dir/err")"
[ "$(status "$tool" clone "$heap" nosuchthing "$dir/three.heap")" = 2 ] || fail "an unknown version exits 2"
[ ! -e "$dir/three.heap" ] || fail "a failed clone leaves no file"
# Sparse: the clone takes storage for the version's pages, not its size.
used=$(du -k "$dir/one.heap" | cut -f1)
[ "$used" -lt 1024 ] || fail "a clone of a small version should take little storage, not ${used} KiB"

# A version read straight from the store, beside the heap's newer state.
"$writer" "$heap" 3
[ "$(status "$tool" roots --version "$first" "$heap" --json)" = 0 ] || fail "roots --version: $(cat "$dir/err")"
[ "$(json_field '[r["name"] for r in d]')" = "['value']" ] || fail "the version's roots are listed"
[ "$(status "$tool" pods --version main --store "$heap.versions" "$heap" --json)" = 0 ] || fail "pods --version --store"
[ "$(status "$tool" roots --version nosuchthing "$heap")" = 2 ] || fail "roots of an unknown version exits 2"

# Damaged metadata: the heap does not open, checkout restores it offline.
python3 - "$heap" <<'PY'
import sys
with open(sys.argv[1], "r+b") as f:
    f.seek(8192)
    f.write(b"\xde\xad\xbe\xef" * 16)
PY
[ "$(status "$tool" roots "$heap")" != 0 ] || fail "damaged metadata should keep the heap from opening"
[ "$(status "$tool" checkout "$heap" "$first")" = 0 ] || fail "checkout of a heap that does not open: $(cat "$dir/err")"
grep -q "does not open" "$dir/err" || fail "checkout says why it wrote the file: $(cat "$dir/err")"
[ "$(status "$tool" check "$heap")" = 0 ] || fail "the restored heap checks clean: $(cat "$dir/out")"
[ "$("$writer" "$heap")" = 1 ] || fail "the restored heap holds the first value"
[ "$(status "$tool" checkout "$heap" main --offline --json)" = 0 ] || fail "checkout --offline: $(cat "$dir/err")"
[ "$(json_field 'd["offline"]')" = True ] || fail "an offline checkout says so"
[ "$("$writer" "$heap")" = 2 ] || fail "an offline checkout of main brings the second value back"
other=$dir/other.heap
"$writer" "$other" 5
[ "$(status "$tool" checkout "$other" "$first" --store "$heap.versions" --offline)" = 2 ] ||
  fail "another heap's version is refused offline too"
[ "$("$writer" "$other")" = 5 ] || fail "a refused offline checkout leaves the heap alone"
echo "clone test passed"
