# Shared by the scripts in this folder (sourced, not run).
# Each script gets the path of liblarder_malloc.so as its first argument and
# compares what programs print with and without it preloaded.

set -u -o pipefail

if [ $# -lt 1 ] || [ ! -f "$1" ]; then
  echo "usage: $0 /path/to/liblarder_malloc.so [...]" >&2
  exit 2
fi
LARDER_LIB=$(readlink -f "$1")
shift

WORK=$(mktemp -d "${TMPDIR:-/tmp}/larder-malloc-test.XXXXXX")
trap 'rm -rf "$WORK"' EXIT

FAILED=0

fail() {
  echo "FAIL: $*" >&2
  FAILED=1
}

# with_larder CMD...: runs CMD with larder preloaded (and inherited by its children).
with_larder() {
  LD_PRELOAD="$LARDER_LIB" "$@"
}

# same_output NAME COMMAND: runs the shell command without and with larder
# preloaded (every process of the pipeline preloaded in the second run)
# and fails if exit status or standard output differ.
same_output() {
  local name=$1 command=$2
  local status_plain status_larder
  bash -c "$command" >"$WORK/$name.plain" 2>"$WORK/$name.plain.err"
  status_plain=$?
  LD_PRELOAD="$LARDER_LIB" bash -c "$command" >"$WORK/$name.larder" 2>"$WORK/$name.larder.err"
  status_larder=$?
  if [ "$status_plain" != "$status_larder" ]; then
    fail "$name: exit status $status_larder under larder, $status_plain without"
    sed 's/^/  stderr: /' "$WORK/$name.larder.err" | head -20 >&2
  elif ! cmp -s "$WORK/$name.plain" "$WORK/$name.larder"; then
    fail "$name: output differs under larder"
    diff "$WORK/$name.plain" "$WORK/$name.larder" | head -20 >&2
  else
    echo "ok: $name ($(wc -c <"$WORK/$name.plain") bytes of output)"
  fi
}

# uses_larder CMD...: checks that larder really serves CMD's allocations:
# with LARDER_SHOW_STATS=1 it prints its statistics at exit, and the
# dynamic loader binds the program's malloc to it. (Programs that close
# standard error before exiting, like GNU coreutils, lose the statistics;
# the binding still shows.)
uses_larder() {
  rm -f "$WORK"/bindings*
  LD_PRELOAD="$LARDER_LIB" LARDER_SHOW_STATS=1 LD_DEBUG=bindings LD_DEBUG_OUTPUT="$WORK/bindings" \
    "$@" >/dev/null 2>"$WORK/stats.err"
  local program
  program=$(basename "$1")
  if grep -q '^larder: statistics' "$WORK/stats.err"; then
    echo "ok: larder serves $program (statistics printed)"
  elif grep -h -F "$LARDER_LIB" "$WORK"/bindings.* 2>/dev/null >"$WORK/larder-bindings" &&
    grep -q "normal symbol \`malloc'" "$WORK/larder-bindings"; then
    echo "ok: larder serves $program (malloc bound to larder)"
  else
    fail "larder does not serve '$*': no statistics and no malloc binding"
  fi
}

finish() {
  if [ "$FAILED" != 0 ]; then
    echo "some checks failed" >&2
    exit 1
  fi
  echo "all checks passed"
  exit 0
}
