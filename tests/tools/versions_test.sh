#!/bin/sh
# `larder checkpoint`, `log`, `checkout` and `versions verify|gc|du`: versions
# recorded and checked out again, HEAD moving, JSON output, bad names and
# other heaps' versions refused.
# Usage: versions_test.sh LARDER_TOOL VALUE_WRITER
set -eu
tool=$1
writer=$2
dir=$(mktemp -d /tmp/larder-versions-XXXXXX)
trap 'rm -rf "$dir"' EXIT
heap=$dir/v.heap
fail() { echo "FAIL: $*" >&2; exit 1; }
status() { if "$@" > "$dir/out" 2> "$dir/err"; then echo 0; else echo $?; fi; }
json_field() { python3 -c "import json,sys; d=json.load(open('$dir/out')); print($1)"; }

"$writer" "$heap" 1
[ "$(status "$tool" checkpoint "$heap" -m "one" --json)" = 0 ] || fail "checkpoint: $(cat "$dir/err")"
first=$(json_field 'd["id"]')
"$writer" "$heap" 2
[ "$(status "$tool" checkpoint "$heap" -m "two")" = 0 ] || fail "second checkpoint: $(cat "$dir/err")"
grep -q "^version [0-9a-f]\{32\}: " "$dir/out" || fail "checkpoint should name its version: $(cat "$dir/out")"
"$writer" "$heap" 3

[ "$(status "$tool" log "$heap" --json)" = 0 ] || fail "log: $(cat "$dir/err")"
[ "$(json_field 'len(d)')" = 2 ] || fail "log should list 2 versions"
[ "$(json_field 'd[0]["message"]')" = two ] || fail "the newest version comes first"
[ "$(json_field 'd[0]["parent"]')" = "$first" ] || fail "the second version's parent is the first"
[ "$(json_field 'd[0]["refs"]')" = "['heads/main']" ] || fail "heads/main names the newest version"
[ "$(json_field '[r["name"] for r in d[1]["roots"]]')" = "['value']" ] || fail "a version lists its roots"
[ "$(status "$tool" log "$heap")" = 0 ] || fail "log as text"
grep -q "^    one$" "$dir/out" || fail "log shows messages: $(cat "$dir/out")"

# Back to the first version by a prefix of its id, then to main by name.
prefix=$(echo "$first" | cut -c1-8)
[ "$(status "$tool" checkout "$heap" "$prefix")" = 0 ] || fail "checkout by prefix: $(cat "$dir/err")"
[ "$("$writer" "$heap")" = 1 ] || fail "checkout of the first version should bring value 1 back"
[ "$(status "$tool" check "$heap")" = 0 ] || fail "the heap should check clean after a checkout: $(cat "$dir/out")"
[ "$(status "$tool" log "$heap" --json)" = 0 ] || fail "log after checkout"
[ "$(json_field 'len(d)')" = 1 ] || fail "a detached HEAD at the first version logs one version"
[ "$(status "$tool" checkout "$heap" main --json)" = 0 ] || fail "checkout main: $(cat "$dir/err")"
[ "$("$writer" "$heap")" = 2 ] || fail "checkout of main should bring value 2 back"

[ "$(status "$tool" checkout "$heap" nosuchthing)" = 2 ] || fail "an unknown version exits 2"
grep -q "no version, branch or tag" "$dir/err" || fail "the error names what is missing: $(cat "$dir/err")"
other=$dir/other.heap
"$writer" "$other" 5
[ "$(status "$tool" checkout "$other" "$first" --store "$heap.versions")" = 2 ] || fail "another heap's version is refused"
grep -q "not of" "$dir/err" || fail "the refusal says whose version it is: $(cat "$dir/err")"
[ "$("$writer" "$other")" = 5 ] || fail "a refused checkout leaves the heap alone"

[ "$(status "$tool" versions verify "$heap" --json)" = 0 ] || fail "verify: $(cat "$dir/err")"
[ "$(json_field 'd["clean"]')" = True ] || fail "the store verifies clean"
[ "$(status "$tool" versions du "$heap" --json)" = 0 ] || fail "du: $(cat "$dir/err")"
[ "$(json_field 'len(d["versions"])')" = 2 ] || fail "du lists both versions"
[ "$(status "$tool" versions gc "$heap")" = 0 ] || fail "gc: $(cat "$dir/err")"
[ "$(status "$tool" checkout "$heap" "$first")" = 0 ] || fail "a version stays restorable after gc"
[ "$("$writer" "$heap")" = 1 ] || fail "value 1 after gc and checkout"

# Lazy: a file heap takes no missing faults: refused, the heap left alone.
"$writer" "$heap" 7
[ "$(status "$tool" checkout "$heap" "$first" --lazy)" != 0 ] || fail "a lazy checkout of a file heap is refused"
grep -q "eagerly" "$dir/err" || fail "the refusal says to check out eagerly: $(cat "$dir/err")"
[ "$("$writer" "$heap")" = 7 ] || fail "a refused lazy checkout leaves the heap alone"
# Some pods: the pod holding root "value" in the version, then by pod id.
[ "$(status "$tool" checkout "$heap" "$first" --root value --json)" = 0 ] || fail "checkout --root: $(cat "$dir/err")"
[ "$(json_field 'd["pods"]')" = "[0]" ] || fail "--root value restores the default pod: $(cat "$dir/out")"
[ "$("$writer" "$heap")" = 1 ] || fail "restoring value's pod brings value 1 back"
[ "$(status "$tool" check "$heap")" = 0 ] || fail "clean after a partial restore: $(cat "$dir/out")"
"$writer" "$heap" 8
[ "$(status "$tool" checkout "$heap" "$first" --pod 0)" = 0 ] || fail "checkout --pod 0: $(cat "$dir/err")"
grep -q "^restored 1 pod(s) of " "$dir/out" || fail "a partial restore says so: $(cat "$dir/out")"
[ "$("$writer" "$heap")" = 1 ] || fail "restoring pod 0 brings value 1 back"
[ "$(status "$tool" checkout "$heap" "$first" --pod no-such-pod)" = 2 ] || fail "an unknown pod exits 2: $(cat "$dir/err")"
[ "$(status "$tool" checkout "$heap" "$first" --pod 0 --offline)" = 64 ] || fail "--offline with --pod is a usage error"
echo "versions test passed"
