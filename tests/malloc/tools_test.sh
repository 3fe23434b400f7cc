#!/usr/bin/env bash
# Everyday command-line tools under liblarder_malloc.so: output must match
# the runs without it.
# usage: tools_test.sh LIBLARDER_MALLOC
source "$(dirname "$0")/common.sh"
export LC_ALL=C

same_output ls-recursive 'ls -lR /usr/share/doc | wc -l; ls -lR /usr/share/doc | md5sum'
same_output find-sort 'find /usr/share -maxdepth 3 -name "*.gz" | sort | md5sum; find /usr/lib -maxdepth 2 | wc -l'
same_output du 'du -s /usr/share/doc /usr/include 2>/dev/null'
same_output tar-md5 'tar -C /usr/share -cf - doc 2>/dev/null | md5sum'
same_output grep-count 'grep -r -c -i "license" /usr/share/doc 2>/dev/null | sort | md5sum'
same_output awk-words 'cat /usr/share/doc/*/copyright 2>/dev/null | tr -cs "A-Za-z" "\n" | awk "{ n[tolower(\$0)]++ } END { for (w in n) print n[w], w }" | sort -k1,1nr -k2 | head -50'
same_output bash-arrays 'declare -A m; for i in $(seq 1 20000); do m[k$i]=$((i * i)); done; s=0; for k in "${!m[@]}"; do s=$((s + m[$k])); done; echo $s'
if command -v perl >/dev/null 2>&1; then
  same_output perl-hashes 'perl -e "my %h; for my \$i (1..200000) { \$h{\"k\$i\"} = [\$i, \"v\" x (\$i % 50)] } my \$s = 0; \$s += \$_->[0] + length(\$_->[1]) for values %h; my @k = sort keys %h; print scalar(@k), \" \$s \$k[0] \$k[-1]\n\""'
fi
uses_larder ls -lR /usr/share/doc
finish
