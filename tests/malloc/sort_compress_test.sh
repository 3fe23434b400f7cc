#!/usr/bin/env bash
# Multithreaded Debian programs under liblarder_malloc.so: GNU sort with
# parallel threads and a 64 MiB buffer, xz with two threads, gzip. Their
# output must match the runs without larder.
# usage: sort_compress_test.sh LIBLARDER_MALLOC
source "$(dirname "$0")/common.sh"
export LC_ALL=C

# ~300k lines of pseudo-random text (the same every time).
awk 'BEGIN {
  srand(20240601);
  for (i = 0; i < 300000; i++)
    printf "%09d %s%s %d %.6f\n", int(rand() * 1e9), substr("abcdefghijklmnopqrstuvwxyz", int(rand() * 26) + 1, 4),
           substr("ZYXWVUTSRQPONMLKJIHGFEDCBA", int(rand() * 26) + 1, 3), i % 977, rand();
}' >"$WORK/lines.txt"
echo "input: $(wc -l <"$WORK/lines.txt") lines"
export INPUT="$WORK/lines.txt"

same_output sort-parallel 'sort --parallel=4 -S 64M "$INPUT"'
same_output sort-numeric-key 'sort --parallel=4 -S 64M -t " " -k3,3n -k1,1r "$INPUT"'
same_output sort-unique 'sort --parallel=2 -u -k2,2 "$INPUT" | sort -r | head -c 100000'
uses_larder sort --parallel=4 -S 64M "$INPUT" -o "$WORK/sorted.txt"

if command -v xz >/dev/null 2>&1; then
  # Text plus a run of one byte, in 1 MiB blocks so that both threads of
  # xz get work. Compressed bytes and the round trip must match.
  head -c 4000000 "$INPUT" >"$WORK/mixed.bin"
  head -c 2000000 /dev/zero | tr '\0' 'x' >>"$WORK/mixed.bin"
  export MIXED="$WORK/mixed.bin"
  same_output xz-round-trip 'out=$(mktemp); xz -T2 -1 --block-size=1MiB -c "$MIXED" >"$out"; md5sum <"$out"; xz -T2 -dc "$out" | md5sum; rm -f "$out"'
  head -c 1000000 "$INPUT" >"$WORK/small.bin"
  uses_larder xz -T2 -1 --block-size=256KiB -c "$WORK/small.bin"
else
  echo "xz not installed: xz checks skipped"
fi

if command -v gzip >/dev/null 2>&1; then
  same_output gzip-round-trip 'gzip -6 -c "$INPUT" | tee "$INPUT.gz.$$" | gzip -dc | md5sum; md5sum <"$INPUT.gz.$$"; rm -f "$INPUT.gz.$$"'
fi
finish
