# shellcheck shell=sh
# What the tools' shell tests share; each sources it after `set -eu`:
#   . "$(dirname "$0")/tool_test_lib.sh"
# $dir: a scratch directory, removed at exit. $pids: the background
# processes a test starts, killed at exit if still listed. A test sets
# $tool (the larder tool) and $heap for info_holds.
dir=$(mktemp -d "/tmp/larder-$(basename "$0" .sh)-XXXXXX")
pids=
trap 'for p in $pids; do kill -9 "$p" 2>/dev/null || true; done; rm -rf "$dir"' EXIT

fail() { echo "FAIL: $*" >&2; exit 1; }

# json_holds FILE PYTHON_EXPRESSION: true when the expression holds for `d`,
# the JSON in FILE.
json_holds() {
  python3 -c 'import json, sys; d = json.load(open(sys.argv[1])); sys.exit(0 if eval(sys.argv[2]) else 1)' \
    "$1" "$2"
}

# info_holds PYTHON_EXPRESSION: json_holds for the JSON of
# `"$tool" info --json "$heap"`, which is left in $dir/info.json.
info_holds() {
  # shellcheck disable=SC2154  # the sourcing test sets $tool and $heap
  "$tool" info --json "$heap" > "$dir/info.json"
  json_holds "$dir/info.json" "$1"
}

# stop PID: kills one of $pids and reaps it; the exit trap forgets it, so
# it never signals a pid that was reused since.
stop() {
  kill -9 "$1"
  wait "$1" 2>/dev/null || true
  left=
  for p in $pids; do [ "$p" = "$1" ] || left="$left $p"; done
  pids=$left
}
