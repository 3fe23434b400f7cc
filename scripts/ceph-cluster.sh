#!/usr/bin/env bash
# A throwaway single-node Ceph cluster for the remote tier's tests and
# benchmarks: one mon and one OSD on memstore (the objects live in the OSD's
# memory), bound to 127.0.0.1, no mgr, every file under DIR.
#
#   ceph-cluster.sh start DIR [--port P] [--pool NAME]
#       Builds the cluster in DIR (which must be empty or absent), starts it,
#       waits until a first object write succeeds and creates the pool
#       (default "larder"). The mon listens on P, or on a free port picked
#       here, so that two clusters do not collide. Prints the lines of `env`.
#   ceph-cluster.sh stop DIR
#       Stops the daemons this script started in DIR, and nothing else: each
#       pid file in DIR/pids/ holds a pid and that process's start time, and
#       a process is stopped only while it is the same process (same start
#       time), that daemon, run with `-c DIR/ceph.conf`. The files stay.
#   ceph-cluster.sh env DIR
#       Prints CEPH_CONF=... and LARDER_RADOS_POOL=... for `eval`/`export`:
#       librados, the rados and ceph tools, and larder's remote tier read them.
#
# Needs ceph-mon, ceph-osd and the ceph tools (scripts/install-deps.sh).
# Exit status: 0, 1 on a failure (the log files are named), 2 on bad usage.
set -euo pipefail

usage() {
  echo "usage: $0 start DIR [--port P] [--pool NAME] | stop DIR | env DIR" >&2
  exit 2
}

die() {
  echo "ceph-cluster.sh: $*" >&2
  exit 1
}

# A TCP port on 127.0.0.1 that nothing listens on now.
free_port() {
  python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

# The start time of pid $1 (field 22 of /proc/PID/stat, clock ticks since
# boot): with the pid it names one process, never a later one given the
# same number. Field 2, the command, may hold spaces and ')': the fields
# are counted from after its last ')'.
start_time() {
  local stat fields
  { stat=$(<"/proc/$1/stat"); } 2>/dev/null || return 1
  read -ra fields <<<"${stat##*) }"
  echo "${fields[19]}"
}

# Writes DIR/pids/$1.pid for pid $2: the pid and its start time.
record_pid() {
  echo "$2 $(start_time "$2")" >"$dir/pids/$1.pid"
}

# Whether pid $1, started at $2, is still that process and is the ceph
# daemon $3 run with `-c` DIR's conf, compared argument by argument.
is_our_daemon() {
  local pid=$1 started=$2 daemon=$3 args=() i
  [[ -n $started && $(start_time "$pid" 2>/dev/null) == "$started" ]] || return 1
  mapfile -d '' -t args <"/proc/$pid/cmdline" 2>/dev/null || return 1
  [[ ${#args[@]} -gt 0 && ${args[0]##*/} == "$daemon" ]] || return 1
  for ((i = 1; i + 1 < ${#args[@]}; i++)); do
    [[ ${args[i]} == -c && ${args[i + 1]} == "$conf" ]] && return 0
  done
  return 1
}

# Stops daemon $1 (mon or osd) if this script started it: SIGTERM, then
# SIGKILL after $2 tenths of a second.
stop_daemon() {
  local name=$1 tenths=$2 pid_file="$dir/pids/$1.pid" pid started
  [[ -f $pid_file ]] || return 0
  read -r pid started <"$pid_file" || true
  if [[ $pid =~ ^[0-9]+$ ]] && is_our_daemon "$pid" "$started" "ceph-$name"; then
    kill -TERM "$pid" 2>/dev/null || true
    for ((i = 0; i < tenths; i++)); do
      is_our_daemon "$pid" "$started" "ceph-$name" || break
      sleep 0.1
    done
    if is_our_daemon "$pid" "$started" "ceph-$name"; then kill -KILL "$pid" 2>/dev/null || true; fi
  fi
  rm -f "$pid_file"
}

print_env() {
  echo "CEPH_CONF=$conf"
  echo "LARDER_RADOS_POOL=$(<"$dir/pool")"
}

# Runs a ceph tool against the cluster, bounded in time.
ceph_tool() {
  timeout 30 "$@" -c "$conf"
}

write_conf() {
  local port=$1
  cat >"$conf" <<EOF
[global]
fsid = $(uuidgen)
mon host = v2:127.0.0.1:$port
mon initial members = a
public addr = 127.0.0.1
cluster addr = 127.0.0.1
ms bind msgr1 = false
auth cluster required = cephx
auth service required = cephx
auth client required = cephx
osd pool default size = 1
osd pool default min size = 1
osd crush chooseleaf type = 0
mon allow pool size one = true
mon allow pool delete = true
run dir = $dir/run
crash dir = $dir/crash
log file = $dir/log/\$name.log
mon cluster log file = $dir/log/cluster.log
admin socket = $dir/run/\$name.asok
[mon]
mon data = $dir/mon/\$name
keyring = $dir/mon/\$name/keyring
paxos propose interval = 0.1
[osd]
osd data = $dir/osd/\$name
keyring = $dir/osd/\$name/keyring
osd objectstore = memstore
memstore device bytes = 8G
[client]
keyring = $dir/client.admin.keyring
EOF
}

start() {
  local port="" pool=larder
  while [[ $# -gt 0 ]]; do
    case $1 in
      --port) port=${2:?--port needs a value}; shift 2 ;;
      --pool) pool=${2:?--pool needs a value}; shift 2 ;;
      *) usage ;;
    esac
  done
  for tool in ceph-mon ceph-osd ceph ceph-authtool monmaptool rados uuidgen python3; do
    command -v "$tool" >/dev/null || die "$tool is not installed (scripts/install-deps.sh installs ceph-mon and ceph-osd)"
  done
  mkdir -p "$dir"
  [[ -z $(ls -A "$dir") ]] || die "$dir is not empty"
  mkdir -p "$dir"/{run,crash,log,pids,mon/mon.a,osd/osd.0}
  [[ -n $port ]] || port=$(free_port)
  echo "$pool" >"$dir/pool"
  write_conf "$port"
  local fsid osd_uuid
  fsid=$(sed -n 's/^fsid = //p' "$conf")
  osd_uuid=$(uuidgen)

  # Keys: the mon's, the admin client's and the OSD's, all known to the mon
  # from its first start.
  local keys="$dir/mon.keyring.tmp"
  ceph-authtool "$keys" --create-keyring --gen-key -n mon. --cap mon 'allow *' >/dev/null
  ceph-authtool "$dir/client.admin.keyring" --create-keyring --gen-key -n client.admin \
    --cap mon 'allow *' --cap osd 'allow *' --cap mds 'allow *' --cap mgr 'allow *' >/dev/null
  ceph-authtool "$dir/osd/osd.0/keyring" --create-keyring --gen-key -n osd.0 \
    --cap mon 'allow profile osd' --cap osd 'allow *' --cap mgr 'allow profile osd' >/dev/null
  ceph-authtool "$keys" --import-keyring "$dir/client.admin.keyring" >/dev/null
  ceph-authtool "$keys" --import-keyring "$dir/osd/osd.0/keyring" >/dev/null
  monmaptool --create --fsid "$fsid" --addv a "[v2:127.0.0.1:$port]" "$dir/monmap" >/dev/null
  ceph-mon -c "$conf" --mkfs -i a --monmap "$dir/monmap" --keyring "$keys" >>"$dir/log/mkfs.log" 2>&1 ||
    die "ceph-mon --mkfs failed: see $dir/log/mkfs.log"
  rm -f "$keys"
  timeout 60 ceph-osd -c "$conf" -i 0 --mkfs --no-mon-config --osd-uuid "$osd_uuid" >>"$dir/log/mkfs.log" 2>&1 ||
    die "ceph-osd --mkfs failed: see $dir/log/mkfs.log"

  # A start that fails from here on stops what it started.
  trap 'stop_daemon osd 50; stop_daemon mon 50' EXIT
  ceph-mon -c "$conf" -i a -f </dev/null >>"$dir/log/mon.a.out" 2>&1 &
  record_pid mon $!
  ceph_tool ceph osd new "$osd_uuid" 0 >/dev/null 2>>"$dir/log/start.log" ||
    die "the mon did not answer on port $port: see $dir/log/mon.a.log and $dir/log/start.log"
  ceph-osd -c "$conf" -i 0 -f </dev/null >>"$dir/log/osd.0.out" 2>&1 &
  record_pid osd $!

  ceph_tool ceph osd pool create "$pool" 8 8 >/dev/null 2>>"$dir/log/start.log" ||
    die "cannot create pool $pool: see $dir/log/start.log"
  ceph_tool ceph osd pool application enable "$pool" rados >/dev/null 2>>"$dir/log/start.log" ||
    die "cannot enable pool $pool: see $dir/log/start.log"
  # A first write blocks until the OSD is up and the pool's placement groups
  # are active: the cluster is ready when it returns.
  echo ready >"$dir/ready.txt"
  ceph_tool rados -p "$pool" put larder.cluster.ready "$dir/ready.txt" 2>>"$dir/log/start.log" ||
    die "the first object write did not succeed within 30 s: see $dir/log/osd.0.log and $dir/log/start.log"
  ceph_tool rados -p "$pool" rm larder.cluster.ready 2>>"$dir/log/start.log" || true
  trap - EXIT
  print_env
}

[[ $# -ge 2 ]] || usage
command=$1
dir=$(realpath -m "$2")
conf="$dir/ceph.conf"
shift 2
case $command in
  start)
    start "$@"
    ;;
  stop)
    [[ $# -eq 0 ]] || usage
    # The OSD first: it leaves in 0.1 s while the mon is up to hear it.
    stop_daemon osd 50
    stop_daemon mon 50
    ;;
  env)
    [[ $# -eq 0 ]] || usage
    [[ -f $conf && -f $dir/pool ]] || die "no cluster in $dir"
    print_env
    ;;
  *) usage ;;
esac
