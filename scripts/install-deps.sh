#!/usr/bin/env bash
# Installs the Debian 12 packages larder needs that are not installed yet.
# With --bench, also the allocators and libraries the benchmarks compare
# against.
set -euo pipefail

packages=(
  cmake g++ make pkg-config
  libgtest-dev libgmock-dev libbenchmark-dev
  libxxhash-dev libzstd-dev liburing-dev libpmem2-dev libpmemobj-dev libcli11-dev nlohmann-json3-dev
  python3 xz-utils coreutils
  pybind11-dev python3-dev python3-numpy  # the Python module of the object store (tools/python) and its test
  clang libclang-rt-14-dev  # the libFuzzer run of `quickstart.sh test` (libFuzzer is in libclang-rt-14-dev)
  ceph-mon ceph-osd librados-dev libradospp-dev  # the remote tier (tiers/rados) and its single-node test cluster
)
if [[ "${1:-}" == "--bench" ]]; then
  packages+=(libjemalloc2 libmimalloc2.0 libtcmalloc-minimal4 libpmemobj-dev strace)
  packages+=(restic borgbackup python3-matplotlib)  # bench/versions_compare.py and its plot
  packages+=(redis-server memcached libhiredis-dev libmemcached-dev)  # bench/store_compare.py
  packages+=(fio)  # bench/tier_disk_compare.py
fi

missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
[[ ${#missing[@]} -eq 0 ]] && exit 0

echo "installing: ${missing[*]}"
sudo=""
if [[ $(id -u) -ne 0 ]]; then
  command -v sudo >/dev/null || { echo "need root (or sudo) to install: ${missing[*]}" >&2; exit 1; }
  sudo=sudo
fi
export DEBIAN_FRONTEND=noninteractive
$sudo apt-get update -qq
$sudo apt-get install -y -qq --no-install-recommends "${missing[@]}"
