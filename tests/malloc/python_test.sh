#!/usr/bin/env bash
# A real Python workload under liblarder_malloc.so: its output must match a
# run with the C library's malloc, with Python's own small-object allocator
# and with PYTHONMALLOC=malloc (every allocation through malloc).
# usage: python_test.sh LIBLARDER_MALLOC WORKLOAD.py
source "$(dirname "$0")/common.sh"
workload=$(readlink -f "$1")

if ! command -v python3 >/dev/null 2>&1; then
  echo "python3 not found: skipping"
  exit 77
fi
# python3 may be a wrapper script (pyenv shims); preload only the interpreter.
python=$(python3 -c 'import sys; print(sys.executable)') || { echo "cannot run python3: skipping"; exit 77; }
echo "interpreter: $python"
export PYTHONHASHSEED=0 PYTHONDONTWRITEBYTECODE=1

"$python" "$workload" >"$WORK/plain" 2>"$WORK/plain.err" || { cat "$WORK/plain.err" >&2; fail "workload fails without larder"; finish; }

for mode in pymalloc malloc; do
  if [ "$mode" = malloc ]; then export PYTHONMALLOC=malloc; else unset PYTHONMALLOC; fi
  LD_PRELOAD="$LARDER_LIB" LARDER_SHOW_STATS=1 "$python" "$workload" >"$WORK/larder.$mode" 2>"$WORK/larder.$mode.err"
  status=$?
  if [ $status != 0 ]; then
    fail "PYTHONMALLOC=$mode: workload exited with status $status under larder"
    grep -v '^larder: ' "$WORK/larder.$mode.err" | tail -20 >&2
    continue
  fi
  if ! cmp -s "$WORK/plain" "$WORK/larder.$mode"; then
    fail "PYTHONMALLOC=$mode: output differs under larder"
    diff "$WORK/plain" "$WORK/larder.$mode" | head -20 >&2
  elif ! grep -q '^larder: statistics' "$WORK/larder.$mode.err"; then
    fail "PYTHONMALLOC=$mode: larder printed no statistics: was it preloaded?"
  else
    echo "ok: PYTHONMALLOC=$mode, $(tail -1 "$WORK/plain")"
  fi
done
finish
