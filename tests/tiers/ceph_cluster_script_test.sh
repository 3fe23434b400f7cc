#!/usr/bin/env bash
# scripts/ceph-cluster.sh stop kills only what the script started: a pid
# file names a process by pid and start time, and the process must be that
# daemon run with `-c DIR/ceph.conf` exactly. Decoys: a process whose
# arguments merely contain the conf path, one whose pid file records
# another start time; and one that matches, which must be stopped. Needs
# no ceph: the daemons are stand-ins named ceph-mon and ceph-osd.
set -euo pipefail

script="$(dirname "$0")/../../scripts/ceph-cluster.sh"
dir=$(mktemp -d)
conf="$dir/ceph.conf"
decoys=()
cleanup() {
  for pid in "${decoys[@]}"; do kill -KILL "$pid" 2>/dev/null || true; done
  rm -rf "$dir"
}
trap cleanup EXIT
mkdir -p "$dir/pids"
mkfifo "$dir/block"

# Starts a stand-in named $1 with the arguments after it; sets $started_pid
# once it runs under that name.
stand_in() {
  local name=$1
  shift
  # bash waiting on a FIFO with a builtin: one process, under that name.
  (exec -a "$name" bash -c 'read -r -t 120 _ <>"$0"' "$dir/block" "$@") &
  started_pid=$!
  disown "$started_pid"
  decoys+=("$started_pid")
  for _ in $(seq 100); do
    [[ $(tr '\0' '\n' <"/proc/$started_pid/cmdline" | head -1) == "$name" ]] && return 0
    sleep 0.05
  done
  echo "FAIL: the stand-in $name did not start" >&2
  exit 1
}
start_time() { sed 's/.*) //' "/proc/$1/stat" | cut -d' ' -f20; }
alive() { [[ -d /proc/$1 ]] && [[ $(cut -d' ' -f3 <<<"$(sed 's/.*) //' "/proc/$1/stat")") != Z ]]; }
fail() {
  echo "FAIL: $*" >&2
  exit 1
}

# The conf path only as a prefix of another argument.
stand_in ceph-mon -c "$conf.old"
near_miss=$started_pid
echo "$near_miss $(start_time "$near_miss")" >"$dir/pids/mon.pid"
# The right daemon and conf, but not the process the pid file recorded.
stand_in ceph-osd -c "$conf"
reused=$started_pid
echo "$reused $(($(start_time "$reused") + 1))" >"$dir/pids/osd.pid"
bash "$script" stop "$dir"
alive "$near_miss" || fail "stop killed a process whose argument only began with the conf path"
alive "$reused" || fail "stop killed a process started after the one its pid file recorded"
[[ ! -e $dir/pids/mon.pid && ! -e $dir/pids/osd.pid ]] || fail "stop left the pid files"

# The daemon itself: stopped.
stand_in ceph-osd -c "$conf"
ours=$started_pid
echo "$ours $(start_time "$ours")" >"$dir/pids/osd.pid"
bash "$script" stop "$dir"
for _ in $(seq 50); do alive "$ours" || break; sleep 0.1; done
alive "$ours" && fail "stop did not stop the daemon it started"
alive "$near_miss" || fail "the first decoy died"
echo "PASS"
