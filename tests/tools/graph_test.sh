#!/bin/sh
# `larder pods HEAP --graph [FILE]`: the references between pods in DOT,
# every pod a node and each pair of pods that point into each other an
# edge labelled with its pages, to stdout or a file; with --json, as JSON.
# Usage: graph_test.sh LARDER_TOOL GRAPH_WRITER
set -eu
tool=$1
writer=$2
. "$(dirname "$0")/tool_test_lib.sh"
heap=$dir/graph.heap

"$writer" "$heap" > /dev/null
"$tool" pods --json "$heap" > "$dir/pods.json"
# id NAME: the pod's id.
id() {
  python3 -c 'import json, sys; print([p["id"] for p in json.load(open(sys.argv[1])) if p["name"] == sys.argv[2]][0])' \
    "$dir/pods.json" "$1"
}
left=$(id left)
middle=$(id middle)
right=$(id right)
alone=$(id alone)

"$tool" pods "$heap" --graph > "$dir/graph.dot"
cat "$dir/graph.dot"
head -n 1 "$dir/graph.dot" | grep -q '^digraph pods {$' || fail "DOT starts with a digraph"
tail -n 1 "$dir/graph.dot" | grep -q '^}$' || fail "the digraph is closed"
for edge in "$left $middle" "$left $right" "$middle $right"; do
  set -- $edge
  grep -q "^  pod$1 -> pod$2 \[label=\"1\"\];\$" "$dir/graph.dot" || fail "no edge pod$1 -> pod$2 of one page"
done
[ "$(grep -c -- ' -> ' "$dir/graph.dot")" = 3 ] || fail "three edges, no more"
grep -q "^  pod$alone \[label=\"alone ($alone)\\\\n64 B\"\];\$" "$dir/graph.dot" ||
  fail "a pod without references is a node, with its name, id and bytes"

"$tool" pods "$heap" --graph "$dir/out.dot"
cmp -s "$dir/out.dot" "$dir/graph.dot" || fail "--graph FILE writes what stdout gets"

"$tool" pods --json "$heap" --graph > "$dir/graph.json"
json_holds "$dir/graph.json" \
  "sorted((e['from'], e['to'], e['pages']) for e in d['edges']) == [($left, $middle, 1), ($left, $right, 1), ($middle, $right, 1)]" ||
  fail "--json gives the edges: $(cat "$dir/graph.json")"
json_holds "$dir/graph.json" "sorted(p['name'] for p in d['pods']) == ['alone', 'default', 'left', 'middle', 'right']" ||
  fail "--json gives every pod: $(cat "$dir/graph.json")"
echo "graph test passed"
