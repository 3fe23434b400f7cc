#!/usr/bin/env bash
# One entry point for a fresh Debian 12 machine:
#   scripts/quickstart.sh demo    install what is missing, build, run the demo
#   scripts/quickstart.sh test    install what is missing, build (Release and
#                                 ASan+UBSan) and run every test, then fuzz
#                                 heap images for a minute (clang build)
#   scripts/quickstart.sh bench   install, build and run the comparison
#                                 against other allocators (docs/PERFORMANCE.md)
#   scripts/quickstart.sh bench-versions
#                                 install, build and run the versions
#                                 benchmark against full copies, restic and
#                                 borg (a 1 GiB heap: about 45 minutes)
#   scripts/quickstart.sh tsan    install, build with ThreadSanitizer and run
#                                 the tests but the every-point crash sweeps
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
jobs=$(nproc 2>/dev/null || echo 2)

install_deps() {
  "$root/scripts/install-deps.sh" "$@"
}

# Each configure names every option its command relies on: CMake keeps
# cached values, so a build/ configured by another command (demo leaves the
# tests out) or by hand would otherwise decide what gets built and run.
no_sanitizers=(-DLARDER_ASAN=OFF -DLARDER_TSAN=OFF -DLARDER_FUZZ=OFF)

configure_and_build() {  # dir, cmake args...
  local dir=$1
  shift
  cmake -S "$root" -B "$dir" "$@" >/dev/null
  cmake --build "$dir" -j "$jobs"
}

# The libFuzzer target tests/fuzz/open_fuzz, for LARDER_FUZZ_SECONDS (60)
# seconds, in its own clang build; skipped with a message where clang or
# libFuzzer is missing. A crash fails the run and leaves its input in
# build-fuzz/artifacts/ (replay: build-fuzz/tests/fuzz/open_fuzz FILE).
fuzz_run() {
  local seconds=${LARDER_FUZZ_SECONDS:-60}
  if ! command -v clang++ >/dev/null; then
    echo "skipping the fuzz run: clang++ is not installed (scripts/install-deps.sh installs it)"
    return 0
  fi
  local probe
  probe=$(mktemp -d)
  echo 'extern "C" int LLVMFuzzerTestOneInput(const unsigned char*, unsigned long) { return 0; }' > "$probe/p.cpp"
  if ! clang++ -fsanitize=fuzzer "$probe/p.cpp" -o "$probe/p" 2>/dev/null; then
    rm -rf "$probe"
    echo "skipping the fuzz run: clang++ cannot link libFuzzer (Debian 12: apt-get install libclang-rt-14-dev)"
    return 0
  fi
  rm -rf "$probe"
  # The fuzz target opens heap images: the GPU and Ceph modules are not built.
  configure_and_build build-fuzz -DCMAKE_BUILD_TYPE=RelWithDebInfo -DCMAKE_C_COMPILER=clang \
    -DCMAKE_CXX_COMPILER=clang++ -DLARDER_FUZZ=ON -DLARDER_ASAN=OFF -DLARDER_TSAN=OFF \
    -DLARDER_TIER_GPU=OFF -DLARDER_TIER_RADOS=OFF \
    -DLARDER_BUILD_TESTS=OFF -DLARDER_BUILD_TOOLS=OFF -DLARDER_BUILD_BENCH=OFF
  mkdir -p build-fuzz/corpus build-fuzz/artifacts
  echo "fuzzing heap images for ${seconds} s (tests/fuzz/open_fuzz)"
  if ! build-fuzz/tests/fuzz/open_fuzz build-fuzz/corpus -max_total_time="$seconds" \
         -artifact_prefix=build-fuzz/artifacts/ -print_final_stats=1 > build-fuzz/fuzz.log 2>&1; then
    tail -n 100 build-fuzz/fuzz.log
    echo "the fuzz run failed: see build-fuzz/fuzz.log; the input is in build-fuzz/artifacts/" >&2
    return 1
  fi
  tail -n 12 build-fuzz/fuzz.log
}

case "${1:-}" in
  demo)
    install_deps
    # Without the tests, which a later `test` turns on again.
    configure_and_build build -DCMAKE_BUILD_TYPE=Release "${no_sanitizers[@]}" \
      -DLARDER_BUILD_TOOLS=ON -DLARDER_BUILD_TESTS=OFF -DLARDER_BUILD_BENCH=OFF
    heap=${2:-/tmp/larder-demo.heap}
    rm -f "$heap"
    ./build/tools/larder_demo "$heap"
    echo "--- run again: the index is found in the heap and grows"
    ./build/tools/larder_demo "$heap"
    ;;
  test)
    install_deps
    configure_and_build build -DCMAKE_BUILD_TYPE=Release -DLARDER_WERROR=ON "${no_sanitizers[@]}" \
      -DLARDER_BUILD_TESTS=ON -DLARDER_BUILD_TOOLS=ON -DLARDER_BUILD_BENCH=ON
    # --no-tests=error: a build without tests must fail here, not pass.
    (cd build && ctest --no-tests=error --output-on-failure -j "$jobs")
    # With every assertion, the full invariant walk of each heap at every
    # writer open and close included (LARDER_DEBUG_FULL).
    configure_and_build build-asan -DCMAKE_BUILD_TYPE=Debug -DLARDER_WERROR=ON -DLARDER_ASAN=ON \
      -DLARDER_DEBUG_FULL=ON -DLARDER_TSAN=OFF -DLARDER_FUZZ=OFF -DLARDER_BUILD_TESTS=ON -DLARDER_BUILD_TOOLS=ON \
      -DLARDER_BUILD_BENCH=OFF
    # The every-point crash sweeps and the kill -9 runs go in the Release
    # build only (minutes under ASan; a killed child reports nothing), and so
    # do the tests against a Ceph cluster: the sanitizer pass checks the
    # recovery of the sampled crash points and everything else.
    (cd build-asan && ASAN_OPTIONS=detect_leaks=1 ctest --no-tests=error --output-on-failure -j "$jobs" \
      -LE 'crash_exhaustive|ceph' -E '^crash_.*_kill')
    fuzz_run
    ;;
  bench)
    install_deps --bench
    configure_and_build build -DCMAKE_BUILD_TYPE=Release "${no_sanitizers[@]}" -DLARDER_BUILD_BENCH=ON
    python3 bench/compare.py --build-dir build --write-doc "${@:2}"
    python3 bench/track_compare.py --build-dir build --write-doc docs/PERFORMANCE.md
    python3 bench/tx_compare.py --build-dir build --write-doc docs/PERFORMANCE.md
    ;;
  bench-versions)
    install_deps --bench
    configure_and_build build -DCMAKE_BUILD_TYPE=Release "${no_sanitizers[@]}" -DLARDER_BUILD_BENCH=ON
    python3 bench/versions_compare.py --build-dir build --write-doc docs/PERFORMANCE.md "${@:2}"
    ;;
  tsan)
    install_deps
    # Not part of `test`: about ten minutes on two cores. Without -Werror, as
    # GCC warns that ThreadSanitizer ignores the fences of two tests. The
    # pkey backend cannot run under it: its revoke signal edits the PKRU in
    # the interrupted thread's signal frame, and ThreadSanitizer runs the
    # handler of such a signal later, on a frame of its own.
    configure_and_build build-tsan -DCMAKE_BUILD_TYPE=RelWithDebInfo -DLARDER_TSAN=ON -DLARDER_ASAN=OFF \
      -DLARDER_FUZZ=OFF -DLARDER_WERROR=OFF -DLARDER_BUILD_TESTS=ON -DLARDER_BUILD_TOOLS=ON -DLARDER_BUILD_BENCH=OFF
    (cd build-tsan && ctest --no-tests=error --output-on-failure -j "$jobs" -LE crash_exhaustive -E pkey)
    ;;
  *)
    echo "usage: $0 demo|test|bench|bench-versions|tsan" >&2
    exit 2
    ;;
esac
