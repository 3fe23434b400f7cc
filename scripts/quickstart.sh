#!/usr/bin/env bash
# One entry point for a fresh Debian 12 machine:
#   scripts/quickstart.sh demo    install what is missing, build, run the demo
#   scripts/quickstart.sh test    install what is missing, build (Release and
#                                 ASan+UBSan) and run every test
#   scripts/quickstart.sh bench   install, build and run the comparison
#                                 against other allocators (docs/PERFORMANCE.md)
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
jobs=$(nproc 2>/dev/null || echo 2)

install_deps() {
  "$root/scripts/install-deps.sh" "$@"
}

configure_and_build() {  # dir, cmake args...
  local dir=$1
  shift
  cmake -S "$root" -B "$dir" "$@" >/dev/null
  cmake --build "$dir" -j "$jobs"
}

case "${1:-}" in
  demo)
    install_deps
    configure_and_build build -DCMAKE_BUILD_TYPE=Release -DLARDER_BUILD_TESTS=OFF
    heap=${2:-/tmp/larder-demo.heap}
    rm -f "$heap"
    ./build/tools/larder_demo "$heap"
    echo "--- run again: the index is found in the heap and grows"
    ./build/tools/larder_demo "$heap"
    ;;
  test)
    install_deps
    configure_and_build build -DCMAKE_BUILD_TYPE=Release -DLARDER_WERROR=ON -DLARDER_BUILD_BENCH=ON
    (cd build && ctest --output-on-failure -j "$jobs")
    configure_and_build build-asan -DCMAKE_BUILD_TYPE=Debug -DLARDER_WERROR=ON -DLARDER_ASAN=ON
    (cd build-asan && ASAN_OPTIONS=detect_leaks=1 ctest --output-on-failure -j "$jobs")
    ;;
  bench)
    install_deps --bench
    configure_and_build build -DCMAKE_BUILD_TYPE=Release -DLARDER_BUILD_BENCH=ON
    python3 bench/compare.py --build-dir build --write-doc "${@:2}"
    python3 bench/track_compare.py --build-dir build --write-doc docs/PERFORMANCE.md
    ;;
  *)
    echo "usage: $0 demo|test|bench" >&2
    exit 2
    ;;
esac
