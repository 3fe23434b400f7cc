#!/usr/bin/env bash
# Builds the Lightning object store (VLDB 2022, "Lightning: Fast and Reliable
# Object Store for Co-located Workers") from its public source, for
# bench/store_bench.cpp's Lightning backend.
#
# Usage: bench/lightning/build.sh LIGHTNING_SOURCE [BUILD_DIR]
#   LIGHTNING_SOURCE  a checkout of https://github.com/danyangz/lightning
#                     (measured at commit b969467e1bd7); it is only read.
#   BUILD_DIR         where the build goes (default /work/lightning-build);
#                     emptied first. Keep it outside the repository.
# Then configure larder with -DLARDER_BENCH_LIGHTNING_DIR=BUILD_DIR.
#
# What it changes in its copy of the source, and why:
#   * inc/config.h: USE_MPK is not defined. Lightning guards its metadata
#     with memory protection keys; CPUs without PKU cannot run that, and the
#     comparison is with MPK off.
# What it builds: the `store` daemon and the `lightning` library with
# Lightning's own CMake, and liblightning_client.a (src/client.cc, which the
# upstream CMake compiles into each test program instead of a library).
set -euo pipefail

if [[ $# -lt 1 || $# -gt 2 ]]; then
  echo "usage: $0 LIGHTNING_SOURCE [BUILD_DIR]" >&2
  exit 2
fi
source_dir=$(realpath "$1")
build_dir=$(realpath -m "${2:-/work/lightning-build}")
for f in CMakeLists.txt inc/client.h inc/config.h src/client.cc src/store.cc; do
  [[ -f "$source_dir/$f" ]] || { echo "$source_dir is not a Lightning checkout (no $f)" >&2; exit 1; }
done
case "$build_dir/" in
  "$source_dir"/*) echo "BUILD_DIR must not be inside the source" >&2; exit 1 ;;
esac
case "$source_dir/" in
  "$build_dir"/*) echo "BUILD_DIR must not hold the source: it is emptied first" >&2; exit 1 ;;
esac

rm -rf "$build_dir"
mkdir -p "$build_dir"
cp -r "$source_dir" "$build_dir/src"
echo "// USE_MPK left undefined: built for a CPU without memory protection keys" > "$build_dir/src/inc/config.h"

cmake -S "$build_dir/src" -B "$build_dir/cmake" -DCMAKE_BUILD_TYPE=Release -DVERIFIER=OFF >/dev/null
cmake --build "$build_dir/cmake" -j"$(nproc)" --target lightning store

cxx=${CXX:-c++}
mkdir -p "$build_dir/lib" "$build_dir/bin"
"$cxx" -std=c++17 -O3 -fPIC -I"$build_dir/src/inc" -c "$build_dir/src/src/client.cc" -o "$build_dir/cmake/client.o"
ar rcs "$build_dir/lib/liblightning_client.a" "$build_dir/cmake/client.o"
cp "$build_dir/cmake/liblightning.a" "$build_dir/lib/"
cp "$build_dir/cmake/store" "$build_dir/bin/lightning_store"
ln -sfn "$build_dir/src/inc" "$build_dir/include"
echo "built Lightning into $build_dir (include/, lib/, bin/lightning_store)"
