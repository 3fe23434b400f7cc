#!/usr/bin/env bash
# Invalid option values and misspelt LARDER_* names under the preloaded
# malloc: each draws one warning naming the variable, is ignored, and the
# program (python3, which needs a fair reserve to start) runs as usual.
# usage: bad_options_test.sh LIBLARDER_MALLOC
source "$(dirname "$0")/common.sh"

if ! command -v python3 >/dev/null 2>&1; then
  echo "python3 not found: skipping"
  exit 77
fi
# python3 may be a wrapper script (pyenv shims); preload only the interpreter.
python=$(python3 -c 'import sys; print(sys.executable)') || { echo "cannot run python3: skipping"; exit 77; }

# check SETTING EXPECTED_WARNING: runs python3 with SETTING in the
# environment and larder preloaded.
check() {
  local setting=$1 expected=$2 status
  env "$setting" LD_PRELOAD="$LARDER_LIB" LARDER_SHOW_STATS=1 "$python" -c 'import json; print(json.dumps([1, 2]))' \
    >"$WORK/out" 2>"$WORK/err"
  status=$?
  if [ $status != 0 ]; then
    fail "$setting: python3 exited with status $status"
    tail -5 "$WORK/err" >&2
  elif [ "$(cat "$WORK/out")" != "[1, 2]" ]; then
    fail "$setting: python3 printed '$(head -c 200 "$WORK/out")'"
  elif ! grep -q '^larder: statistics' "$WORK/err"; then
    fail "$setting: larder printed no statistics: was it preloaded?"
  elif [ -z "$expected" ]; then
    if grep -q '^larder: warning' "$WORK/err"; then
      fail "$setting: unexpected warning: $(grep '^larder: warning' "$WORK/err")"
    else
      echo "ok: $setting (no warning)"
    fi
  elif [ "$(grep -c '^larder: warning' "$WORK/err")" != 1 ]; then
    fail "$setting: expected one warning, got: $(grep '^larder: warning' "$WORK/err")"
  elif ! grep -qF "larder: warning: $expected" "$WORK/err"; then
    fail "$setting: expected 'larder: warning: $expected', got: $(grep '^larder: warning' "$WORK/err")"
  else
    echo "ok: $setting: $(grep '^larder: warning' "$WORK/err")"
  fi
}

check LARDER_PROCESS_RESERVE=1M "ignoring LARDER_PROCESS_RESERVE=1M: below the minimum of 1G"
check LARDER_PROCESS_RESERVE=0 "ignoring LARDER_PROCESS_RESERVE=0: below the minimum of 1G"
check LARDER_PROCESS_RESERVE=4096 "ignoring LARDER_PROCESS_RESERVE=4096: below the minimum of 1G"
check LARDER_PROCESS_RESERVE=3T "ignoring LARDER_PROCESS_RESERVE=3T: above the maximum of 2T"
check LARDER_PROCESS_RESERVE=lots "ignoring LARDER_PROCESS_RESERVE=lots: expected a size"
check LARDER_PROCESS_RESERVE=1G ""
check LARDER_PROCESS_RESERVE=2GiB ""
check LARDER_TRACKER=nope "ignoring LARDER_TRACKER=nope: expected uffd-async, mprotect or pkey"
check LARDER_TRACKER=mprotect ""
check LARDER_PURGE_SLICSE=3 "unknown option LARDER_PURGE_SLICSE (did you mean LARDER_PURGE_SLICES?)"
check LARDER_PURGE_SLICES=-3 "ignoring LARDER_PURGE_SLICES=-3: expected a whole number"
check LARDER_VERBOSE=maybe "ignoring LARDER_VERBOSE=maybe: expected 0 or 1"
check LARDER_NO_SUCH_THING=1 "unknown option LARDER_NO_SUCH_THING"
check LARDER_CRASH_AT=soon "ignoring LARDER_CRASH_AT=soon: expected a whole number"
check LARDER_CRASHTEST_PHASE=run ""

# The reserve really is the default after an invalid value: the statistics
# name the heap's reserve.
env LARDER_PROCESS_RESERVE=1M LD_PRELOAD="$LARDER_LIB" LARDER_SHOW_STATS=1 "$python" -c 'pass' 2>"$WORK/err"
if grep -q 'reserve 262144 MiB' "$WORK/err"; then
  echo "ok: LARDER_PROCESS_RESERVE=1M keeps the default reserve"
else
  fail "LARDER_PROCESS_RESERVE=1M: the statistics show another reserve: $(grep 'reserve' "$WORK/err")"
fi
finish
