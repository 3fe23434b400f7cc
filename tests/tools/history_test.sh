#!/bin/sh
# `larder diff`, `tag`, `branch` and `versions delete`: versions compared with
# each other and with the live heap, tags and branches created, listed and
# deleted, a named version's deletion refused, and delete + gc freeing what
# du said it would.
# Usage: history_test.sh LARDER_TOOL VALUE_WRITER
set -eu
tool=$1
writer=$2
dir=$(mktemp -d /tmp/larder-history-XXXXXX)
trap 'rm -rf "$dir"' EXIT
heap=$dir/h.heap
fail() { echo "FAIL: $*" >&2; exit 1; }
status() { if "$@" > "$dir/out" 2> "$dir/err"; then echo 0; else echo $?; fi; }
json_field() { python3 -c "import json,sys; d=json.load(open('$dir/out')); print($1)"; }
checkpoint() { "$tool" checkpoint "$heap" -m "$1" --json > "$dir/out" || fail "checkpoint $1"; json_field 'd["id"]'; }

"$writer" "$heap" 1
first=$(checkpoint one)
"$writer" "$heap" 2
second=$(checkpoint two)

[ "$(status "$tool" diff "$heap" "$first" "$second" --json)" = 0 ] || fail "diff: $(cat "$dir/err")"
[ "$(json_field 'd["from"]')" = "$first" ] || fail "diff names its versions"
[ "$(json_field '[r["change"] for r in d["roots"] if r["name"] == "value"]')" = "['written']" ] ||
  fail "the value root was written: $(cat "$dir/out")"
[ "$(json_field 'd["pages_fingerprinted"]')" = 0 ] || fail "a diff of two versions reads no page"
[ "$(json_field 'sum(a["pages"] for a in d["areas"] if a["pod"] is not None) >= 1')" = True ] ||
  fail "the value's page differs in its pod"
[ "$(status "$tool" diff "$heap" "$second" --json)" = 0 ] || fail "diff with the heap: $(cat "$dir/err")"
[ "$(json_field 'd["to"]')" = None ] || fail "the live heap has no id"
[ "$(json_field 'd["roots"]')" = "[]" ] || fail "the heap is as the second version left it: $(cat "$dir/out")"
[ "$(json_field 'd["pages_fingerprinted"] > 0')" = True ] || fail "a diff with the heap reads the used pages"
"$writer" "$heap" 3
[ "$(status "$tool" diff "$heap" main)" = 0 ] || fail "diff as text: $(cat "$dir/err")"
grep -q "root value .*written" "$dir/out" || fail "text diff names the written root: $(cat "$dir/out")"

[ "$(status "$tool" tag "$heap" v1 "$first" --json)" = 0 ] || fail "tag: $(cat "$dir/err")"
[ "$(json_field 'd["id"]')" = "$first" ] || fail "the tag names the first version"
[ "$(status "$tool" tag "$heap" v1 "$second")" = 2 ] || fail "an existing tag is not moved"
[ "$(status "$tool" branch "$heap" topic)" = 0 ] || fail "branch at HEAD: $(cat "$dir/err")"
[ "$(status "$tool" branch "$heap" --json)" = 0 ] || fail "branch list"
[ "$(json_field 'sorted((b["name"], b["id"], b["head"]) for b in d)')" = \
  "[('heads/main', '$second', True), ('heads/topic', '$second', False)]" ] || fail "branches: $(cat "$dir/out")"
[ "$(status "$tool" tag "$heap")" = 0 ] || fail "tag list"
grep -q "tags/v1 *$first" "$dir/out" || fail "tag list as text: $(cat "$dir/out")"
[ "$(status "$tool" log "$heap" --json)" = 0 ] || fail "log"
[ "$(json_field 'd[1]["refs"]')" = "['tags/v1']" ] || fail "log shows the tag beside its version"
[ "$(status "$tool" branch "$heap" -d main)" = 2 ] || fail "the branch HEAD is on is not deleted"
[ "$(status "$tool" branch "$heap" -d topic)" = 0 ] || fail "branch -d: $(cat "$dir/err")"
[ "$(status "$tool" checkout "$heap" v1)" = 0 ] || fail "checkout of a tag: $(cat "$dir/err")"
[ "$("$writer" "$heap")" = 1 ] || fail "the tag brings value 1 back"

third=$(checkpoint three)
[ "$(status "$tool" versions delete "$heap" "$first")" = 2 ] || fail "a tagged version is not deleted"
grep -q "named by tags/v1" "$dir/err" || fail "the refusal names the tag: $(cat "$dir/err")"
[ "$(status "$tool" versions du "$heap" --json)" = 0 ] || fail "du"
frees=$(json_field "[v['freed_by_delete'] for v in d['versions'] if v['id'] == '$second'][0]")
[ "$(status "$tool" versions delete "$heap" "$second" --force --json)" = 0 ] || fail "delete --force: $(cat "$dir/err")"
[ "$(status "$tool" versions gc "$heap" --json)" = 0 ] || fail "gc"
[ "$(json_field 'd["bytes_freed"]')" = "$frees" ] || fail "gc freed $(json_field 'd["bytes_freed"]'), du said $frees"
[ "$(status "$tool" log "$heap" --all --json)" = 0 ] || fail "log --all"
[ "$(json_field 'len(d)')" = 2 ] || fail "two versions are left"
[ "$(status "$tool" checkout "$heap" "$third")" = 0 ] || fail "the third version still checks out"
[ "$(status "$tool" versions verify "$heap")" = 0 ] || fail "the store verifies clean after delete and gc"
echo "history test passed"
