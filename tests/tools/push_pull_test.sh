#!/bin/sh
# `larder push` and `larder pull`: a heap's version pushed to a backup
# directory, pulled into another store and cloned there holds the heap's
# value; a second push sends only what changed; a version checked out
# straight from the backup (checkout --from) holds it too; bad remotes
# exit 2 with a message; --json reports the counts.
# Usage: push_pull_test.sh LARDER_TOOL VALUE_WRITER
set -eu
tool=$1
writer=$2
. "$(dirname "$0")/tool_test_lib.sh"
heap=$dir/p.heap
status() { if "$@" > "$dir/out" 2> "$dir/err"; then echo 0; else echo $?; fi; }

"$writer" "$heap" 1
[ "$(status "$tool" checkpoint "$heap" -m one)" = 0 ] || fail "checkpoint: $(cat "$dir/err")"
[ "$(status "$tool" push "$heap" "$dir/backup" --json)" = 0 ] || fail "push: $(cat "$dir/err")"
json_holds "$dir/out" 'd["versions_sent"] == 1 and d["refs_set"] == 1 and d["chunks_sent"] > 0' ||
  fail "the first push sends a version, its ref and its chunks: $(cat "$dir/out")"
first_bytes=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["chunk_bytes_sent"])' "$dir/out")
[ "$(status "$tool" push "$heap" "$dir/backup" --json)" = 0 ] || fail "push again: $(cat "$dir/err")"
json_holds "$dir/out" 'd["versions_sent"] == 0 and d["chunks_sent"] == 0' || fail "nothing to send twice: $(cat "$dir/out")"

"$writer" "$heap" 2
[ "$(status "$tool" checkpoint "$heap" -m two)" = 0 ] || fail "second checkpoint: $(cat "$dir/err")"
[ "$(status "$tool" push "$heap" "$dir/backup" --json)" = 0 ] || fail "second push: $(cat "$dir/err")"
json_holds "$dir/out" "d['versions_sent'] == 1 and 0 < d['chunk_bytes_sent'] < $first_bytes" ||
  fail "the second push sends what changed only: $(cat "$dir/out")"

# The other machine: pull into a store of its own, clone, read.
[ "$(status "$tool" pull "$dir/backup" "$dir/there")" = 0 ] || fail "pull: $(cat "$dir/err")"
grep -q "pulled 1 version," "$dir/out" || fail "pull says what it copied: $(cat "$dir/out")"
[ "$(status "$tool" clone "$dir/there" main "$dir/there.heap")" = 0 ] || fail "clone: $(cat "$dir/err")"
[ "$("$writer" "$dir/there.heap")" = 2 ] || fail "the pulled version holds the heap's value"

# Or straight from the backup: a clone of the first version, then the
# second checked out from the backup (`checkout --from`), fetching only
# the chunks that differ; its store gets the version, so again fetches none.
"$tool" log "$heap" --json > "$dir/log.json"
first=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))[-1]["id"])' "$dir/log.json")
far=$dir/far.heap
[ "$(status "$tool" clone "$dir/backup" "$first" "$far")" = 0 ] || fail "clone from the backup: $(cat "$dir/err")"
[ "$("$writer" "$far")" = 1 ] || fail "the clone holds the first version's value"
[ "$(status "$tool" checkout "$far" main --from "$dir/backup" --json)" = 0 ] || fail "checkout --from: $(cat "$dir/err")"
json_holds "$dir/out" 'd["chunks_fetched"] > 0 and d["bytes_fetched"] > 0' || fail "what was fetched: $(cat "$dir/out")"
[ "$("$writer" "$far")" = 2 ] || fail "checked out from the backup, the heap holds the second value"
[ "$(status "$tool" checkout "$far" main --from "$dir/backup")" = 0 ] || fail "again: $(cat "$dir/err")"
grep -q "; 0 chunks (0 B) fetched from $dir/backup" "$dir/out" || fail "nothing fetched twice: $(cat "$dir/out")"
[ "$(status "$tool" log "$far" --json)" = 0 ] && json_holds "$dir/out" 'd[0]["refs"] == ["heads/main"]' ||
  fail "the heap's store got the version and its branch: $(cat "$dir/out")"
[ "$(status "$tool" checkout "$far" main --from "$dir/backup" --lazy)" = 2 ] || fail "a file heap is not lazy"
grep -q "eagerly" "$dir/err" || fail "the refusal says why: $(cat "$dir/err")"
[ "$(status "$tool" checkout "$far" main --from "$dir/backup" --pod 1)" = 64 ] || fail "--from and --pod exclude each other"
[ "$(status "$tool" checkout "$far" main --from "$dir/nothing")" = 2 ] || fail "no store there exits 2"
[ "$("$writer" "$far")" = 2 ] || fail "refusals leave the heap as it was"

# Bad remotes and names: exit 2, with a message.
mkdir "$dir/junk" && echo mine > "$dir/junk/notes"
[ "$(status "$tool" push "$heap" "$dir/junk")" = 2 ] || fail "a directory holding something else is refused"
grep -q "not a chunk store" "$dir/err" || fail "the refusal says why: $(cat "$dir/err")"
[ -z "$(ls "$dir/junk" | grep -v notes)" ] || fail "a refused directory is left as it was"
[ "$(status "$tool" pull "$dir/nothing" "$dir/s")" = 2 ] || fail "pulling from nothing exits 2"
[ "$(status "$tool" push "$heap" "$dir/backup" nosuchversion)" = 2 ] || fail "an unknown version exits 2"
[ "$(status "$tool" push "$heap" "$dir/backup" main --all)" = 64 ] || fail "--all and a version exclude each other"
echo "push_pull_test: ok"
