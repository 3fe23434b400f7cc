#!/usr/bin/env bash
# A process heap reservation smaller than the default (or cut down by an
# address-space limit) still gives a working malloc.
set -euo pipefail
lib=$1
expected=$(seq 1 20000 | sort -r | md5sum)
got=$(seq 1 20000 | LARDER_PROCESS_RESERVE=64M LD_PRELOAD="$lib" sort -r | md5sum)
[[ "$got" == "$expected" ]] || { echo "sort under a 64 MiB reserve gave different output"; exit 1; }
got=$( (ulimit -v 2000000; seq 1 20000 | LD_PRELOAD="$lib" sort -r) | md5sum)
[[ "$got" == "$expected" ]] || { echo "sort under a 2 GB address-space limit gave different output"; exit 1; }
echo ok
