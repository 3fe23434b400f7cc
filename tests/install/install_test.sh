#!/usr/bin/env bash
# Installs the build into a scratch prefix and checks one part of what a user
# of the installed package gets: cmake (find_package and each exported
# target), pkgconfig (larder, larder-malloc, larder-static with plain g++/gcc)
# or tools (the installed larder and larder_demo, man page and docs). Every
# program runs in a clean environment, without LD_LIBRARY_PATH: RPATHs only.
# Usage: install_test.sh BUILD_DIR cmake|pkgconfig|tools
set -euo pipefail
build_dir=$1
part=$2
source_dir=$(cd "$(dirname "$0")" && pwd)
scratch=$(mktemp -d)
trap 'rm -rf "$scratch"' EXIT
prefix=$scratch/prefix

fail() { echo "FAIL: $*" >&2; exit 1; }
ok() { echo "ok: $*"; }
# Runs a program with nothing from this environment but a minimal PATH.
clean() { env -i PATH=/usr/bin:/bin "$@"; }
# Fails unless PROGRAM loads every larder library from the scratch prefix
# and, with "static", loads none.
check_libs() {
  local program=$1 how=$2 libs
  libs=$(clean ldd "$program" | grep liblarder || true)
  if [[ $how == static ]]; then
    [[ -z $libs ]] || fail "$program loads $libs"
  else
    [[ -n $libs ]] || fail "$program loads no larder library"
    if grep -v -e "=> $prefix/" <<<"$libs"; then fail "$program loads larder from outside $prefix"; fi
  fi
}
# Runs a consumer on a new heap and checks whose malloc it ran on.
run_consumer() {
  local program=$1 malloc_from=$2 out
  out=$(clean "$program" "$scratch/$(basename "$program").heap")
  echo "$out"
  [[ $out == "consumer ok (malloc from "*"$malloc_from"* ]] || fail "$program: expected malloc from $malloc_from"
}

cmake --install "$build_dir" --prefix "$prefix" >/dev/null
pc_dir=$(dirname "$(find "$prefix" -name larder.pc)")
libdir=$(dirname "$pc_dir")

case $part in
cmake)
  cmake -S "$source_dir/consumer" -B "$scratch/build" -DCMAKE_PREFIX_PATH="$prefix" >/dev/null
  cmake --build "$scratch/build" >/dev/null
  check_libs "$scratch/build/consumer_larder" shared
  run_consumer "$scratch/build/consumer_larder" libc.so
  ok "find_package: larder::larder"
  check_libs "$scratch/build/consumer_malloc" shared
  run_consumer "$scratch/build/consumer_malloc" "$libdir/liblarder_malloc.so"
  ok "find_package: larder::malloc"
  check_libs "$scratch/build/consumer_static" static
  run_consumer "$scratch/build/consumer_static" libc.so
  check_libs "$scratch/build/consumer_c_static" static
  clean "$scratch/build/consumer_c_static"
  ok "find_package: larder::static (C++ and C)"
  # The GPU tier's module, where it is built: beside liblarder, which
  # never loads the CUDA runtime; the module has it linked in.
  if [[ -f $build_dir/liblarder_gpu_tier.so ]]; then
    [[ -f $libdir/liblarder_gpu_tier.so ]] || fail "liblarder_gpu_tier.so is not installed in $libdir"
    for lib in "$libdir/liblarder.so" "$libdir/liblarder_gpu_tier.so"; do
      if clean ldd "$lib" | grep -i cuda; then fail "$lib loads a CUDA library"; fi
    done
    ok "liblarder_gpu_tier.so installed beside liblarder; neither loads a CUDA library"
  fi
  # Ceph support's module, where librados is found: beside liblarder, and
  # the only one to load librados.
  for lib in "$libdir/liblarder.so" "$libdir/liblarder_malloc.so"; do
    if clean ldd "$lib" | grep -i -e rados -e ceph; then fail "$lib loads a Ceph library"; fi
  done
  ok "neither liblarder nor liblarder_malloc loads a Ceph library"
  if [[ -f $build_dir/liblarder_rados.so ]]; then
    [[ -f $libdir/liblarder_rados.so ]] || fail "liblarder_rados.so is not installed in $libdir"
    clean ldd "$libdir/liblarder_rados.so" | grep -q librados || fail "liblarder_rados.so does not load librados"
    ok "liblarder_rados.so installed beside liblarder"
  fi
  ;;
pkgconfig)
  export PKG_CONFIG_PATH=$pc_dir
  [[ $(pkg-config --variable=libdir larder) == "$libdir" ]] || fail "larder.pc: libdir is not $libdir"
  rpath=-Wl,-rpath,$(pkg-config --variable=libdir larder)
  # shellcheck disable=SC2046  # pkg-config's output is meant to be split
  g++ -std=c++20 -o "$scratch/pc_larder" "$source_dir/consumer/consumer.cpp" $(pkg-config --cflags --libs larder) "$rpath"
  check_libs "$scratch/pc_larder" shared
  run_consumer "$scratch/pc_larder" libc.so
  ok "pkg-config larder"
  # shellcheck disable=SC2046
  g++ -std=c++20 -o "$scratch/pc_malloc" "$source_dir/consumer/consumer.cpp" $(pkg-config --cflags --libs larder-malloc) "$rpath"
  check_libs "$scratch/pc_malloc" shared
  run_consumer "$scratch/pc_malloc" "$libdir/liblarder_malloc.so"
  ok "pkg-config larder-malloc"
  # shellcheck disable=SC2046
  g++ -std=c++20 -o "$scratch/pc_static" "$source_dir/consumer/consumer.cpp" $(pkg-config --cflags --libs larder-static)
  check_libs "$scratch/pc_static" static
  run_consumer "$scratch/pc_static" libc.so
  # shellcheck disable=SC2046
  gcc -o "$scratch/pc_c_static" "$source_dir/consumer/consumer_c.c" $(pkg-config --cflags --libs larder-static)
  check_libs "$scratch/pc_c_static" static
  clean "$scratch/pc_c_static"
  ok "pkg-config larder-static (C++ and C)"
  # --static lists what liblarder.a needs, as larder-static links it.
  static_libs=$(pkg-config --static --libs-only-l larder)
  for lib in $(pkg-config --libs-only-l larder-static) -llarder; do
    [[ " $static_libs " == *" $lib "* ]] || fail "pkg-config --static --libs larder lacks $lib"
  done
  ok "pkg-config --static --libs larder: $(pkg-config --static --libs larder)"
  ;;
tools)
  for program in larder larder_demo; do
    check_libs "$prefix/bin/$program" shared
    # shellcheck disable=SC2016  # a literal $ORIGIN
    readelf -d "$prefix/bin/$program" | grep -q 'R.*PATH.*\$ORIGIN/' || fail "$program has no \$ORIGIN RPATH"
  done
  clean "$prefix/bin/larder" --help | grep -q 'Subcommands:' || fail "larder --help"
  clean "$prefix/bin/larder" create "$scratch/created.heap"
  clean "$prefix/bin/larder" info "$scratch/created.heap" | grep -q . || fail "larder info printed nothing"
  ok "installed larder: --help, create, info"
  # A heap made by an installed-package program, read by the installed tool.
  export PKG_CONFIG_PATH=$pc_dir
  # shellcheck disable=SC2046
  g++ -std=c++20 -o "$scratch/consumer" "$source_dir/consumer/consumer.cpp" $(pkg-config --cflags --libs larder) \
    -Wl,-rpath,"$(pkg-config --variable=libdir larder)"
  clean "$scratch/consumer" "$scratch/consumer.heap" >/dev/null
  clean "$prefix/bin/larder" info "$scratch/consumer.heap"
  clean "$prefix/bin/larder" roots "$scratch/consumer.heap" | grep -qw text || fail "larder roots: no root \"text\""
  clean "$prefix/bin/larder" check "$scratch/consumer.heap" >/dev/null || fail "larder check: the consumer's heap is not clean"
  ok "installed larder: info, roots, check on a consumer's heap"
  # A rados: remote loads the installed Ceph support module, whose own
  # error names the missing ceph.conf.
  if [[ -f $build_dir/liblarder_rados.so ]]; then
    clean "$prefix/bin/larder" checkpoint "$scratch/consumer.heap" -m one >/dev/null
    out=$(clean "$prefix/bin/larder" push "$scratch/consumer.heap" "rados:larder@$scratch/no-ceph.conf" 2>&1) &&
      fail "larder push to a cluster without a ceph.conf succeeded"
    [[ $out == *"no configuration file $scratch/no-ceph.conf"* ]] || fail "larder push rados: $out"
    ok "installed larder: push to rados: loads the installed module"
  fi
  (cd "$scratch" && clean "$prefix/bin/larder_demo" "$scratch/demo.heap" >/dev/null) || fail "larder_demo"
  ok "installed larder_demo"
  [[ -f $prefix/share/doc/larder/larder.md ]] || fail "share/doc/larder/larder.md is not installed"
  [[ -f $prefix/share/man/man1/larder.1 ]] || fail "share/man/man1/larder.1 is not installed"
  if command -v groff >/dev/null; then
    warnings=$(groff -man -ww -z "$prefix/share/man/man1/larder.1" 2>&1)
    [[ -z $warnings ]] || fail "larder.1: $warnings"
  fi
  # The man page documents every option docs/tools/larder.md names.
  missing=$(comm -23 <(grep -o -- '--[a-z][a-z-]*' "$prefix/share/doc/larder/larder.md" | sort -u) \
                     <(sed 's/\\-/-/g' "$prefix/share/man/man1/larder.1" | grep -o -- '--[a-z][a-z-]*' | sort -u))
  [[ -z $missing ]] || fail "larder.1 lacks options of larder.md: ${missing//$'\n'/ }"
  ok "man page and docs installed"
  ;;
*)
  fail "unknown part $part"
  ;;
esac
echo "install test $part: all checks passed"
