#!/usr/bin/env bash
# The C++ snippets of README.md and docs/**/*.md compile and run: each
# ```cpp block, built against the build tree's headers and libraries, run
# plainly, with liblarder_malloc.so preloaded, and linked against it. A
# snippet that does not compile, exits nonzero, dies by a signal or runs
# over 30 seconds fails.
#
#   snippets_test.sh list SOURCE_DIR
#       prints the id of every snippet that runs: FILE#N, the Nth ```cpp
#       block of FILE (fragments counted), FILE relative to SOURCE_DIR
#   snippets_test.sh build SOURCE_DIR ID CXX OUT_DIR
#       compiles snippet ID once, into OUT_DIR
#   snippets_test.sh run ID OUT_DIR plain|preload|linked CXX LIBLARDER LIBLARDER_MALLOC
#       links it and runs it in a fresh temporary directory
#
# The rules a snippet is built by:
# * The line just before the fence may hold a marker. `<!-- fragment -->`
#   (or `<!-- fragment: why -->`) marks a block that is intentionally
#   incomplete (it uses names it does not define): it is not built.
#   `<!-- args: A B | C -->` runs the program once per `|`-separated group
#   of arguments, in order, in the same directory; without it, once with
#   none.
# * A block with `int main` is a whole program and is built as it is.
#   Any other block is the body of one: its #include lines are moved to
#   the top, after `#include <larder/larder.hpp>`, and the rest is placed,
#   in order, inside `int main() { ... }`.
# * Every string literal that starts with "/tmp/ is made to start with
#   "./" instead: each run has a temporary directory of its own, in which
#   it runs, so its heap files are its own.
set -euo pipefail

fence_re='^[[:space:]]*```'
close_re='^[[:space:]]*```[[:space:]]*$'
cpp_fence_re='^[[:space:]]*```(cpp|c\+\+)[[:space:]]*$'

# Every Markdown file with snippets, relative to the source directory.
markdown_files() {
  (cd "$1" && { echo README.md; find docs -name '*.md' | sort; })
}

# extract FILE N: prints "LINE<TAB>MARKER" of the Nth cpp block of FILE
# (LINE: its first line, MARKER: the line before its fence), then its lines.
extract() {
  awk -v want="$2" -v fence="$fence_re" -v closing="$close_re" -v cpp="$cpp_fence_re" '
    in_block == 0 && $0 ~ cpp { n++; in_block = 1; if (n == want) print NR + 1 "\t" prev; prev = $0; next }
    in_block == 0 && $0 ~ fence { in_block = 2; prev = $0; next }
    in_block != 0 && $0 ~ closing { in_block = 0; prev = $0; next }
    in_block == 1 && n == want { print }
    { prev = $0 }' "$1"
}

# count FILE: the number of cpp blocks in FILE.
count() {
  awk -v fence="$fence_re" -v closing="$close_re" -v cpp="$cpp_fence_re" '
    in_block == 0 && $0 ~ cpp { n++; in_block = 1; next }
    in_block == 0 && $0 ~ fence { in_block = 2; next }
    in_block != 0 && $0 ~ closing { in_block = 0 }
    END { print n + 0 }' "$1"
}

fragment_re='^[[:space:]]*<!--[[:space:]]*fragment([[:space:]:]|-->)'
is_fragment() { [[ $1 =~ $fragment_re ]]; }

list() {
  local source_dir=$1 file n blocks header
  while read -r file; do
    blocks=$(count "$source_dir/$file")
    for ((n = 1; n <= blocks; n++)); do
      header=$(extract "$source_dir/$file" "$n" | head -n 1)
      is_fragment "${header#*$'\t'}" || echo "$file#$n"
    done
  done < <(markdown_files "$source_dir")
}

# wrap FILE LINE < block > program: the rules above, with #line directives
# so that compiler messages name the Markdown file and line.
wrap() {
  local file=$1 line=$2 body
  body=$(cat)
  if grep -Eq '(^|[^[:alnum:]_])int[[:space:]]+main[[:space:]]*\(' <<<"$body"; then
    printf '#line %d "%s"\n%s\n' "$line" "$file" "$body"
    return
  fi
  echo '#include <larder/larder.hpp>'
  grep -E '^[[:space:]]*#[[:space:]]*include' <<<"$body" || true
  printf 'int main() {\n#line %d "%s"\n' "$line" "$file"
  sed -E 's/^[[:space:]]*#[[:space:]]*include.*$//' <<<"$body"
  printf '}\n'
}

# build SOURCE_DIR ID CXX OUT_DIR: compiles the snippet once, to
# OUT_DIR/snippet.o, for every way of running it.
build() {
  local source_dir=$1 id=$2 cxx=$3 out=$4
  local file=${id%#*} n=${id##*#} extracted header line marker
  [[ -f $source_dir/$file ]] || { echo "FAIL $id: no $file" >&2; return 1; }
  extracted=$(extract "$source_dir/$file" "$n")
  [[ -n $extracted ]] || { echo "FAIL $id: $file has no cpp block $n (re-run cmake)" >&2; return 1; }
  header=$(head -n 1 <<<"$extracted")
  line=${header%%$'\t'*}
  marker=${header#*$'\t'}
  if is_fragment "$marker"; then
    echo "FAIL $id: $file:$line is marked as a fragment now (re-run cmake)" >&2
    return 1
  fi
  rm -rf "$out"
  mkdir -p "$out"
  # Paths under /tmp/ become relative: each run has a directory of its own.
  tail -n +2 <<<"$extracted" | wrap "$file" "$line" | sed 's|"/tmp/|"./|g' >"$out/snippet.cpp"
  sed -nE 's/^[[:space:]]*<!--[[:space:]]*args:(.*)-->[[:space:]]*$/\1/p' <<<"$marker" >"$out/args"
  echo "snippet $id ($file:$line)"
  if ! "$cxx" -std=c++20 -O1 -Wall -pthread -I"$source_dir/include" -c -o "$out/snippet.o" "$out/snippet.cpp" \
      2>"$out/compile.log"; then
    cat "$out/compile.log" >&2
    echo "--- the program built from $file:$line:" >&2
    cat -n "$out/snippet.cpp" >&2
    echo "FAIL $id: does not compile" >&2
    return 1
  fi
  cat "$out/compile.log"
}

# run ID OUT_DIR plain|preload|linked CXX LIBLARDER LIBLARDER_MALLOC: links
# what build compiled and runs it in a fresh directory.
run() {
  local id=$1 out=$2 variant=$3 cxx=$4 liblarder=$5 liblarder_malloc=$6 work status args
  liblarder=$(realpath -e "$liblarder")
  liblarder_malloc=$(realpath -e "$liblarder_malloc")
  [[ -f $out/snippet.o ]] || { echo "FAIL $id: not compiled (snippet.$id.build)" >&2; return 1; }
  work=$(mktemp -d)
  # shellcheck disable=SC2064  # expand now: work is local
  trap "rm -rf '$work'" EXIT

  local link=$liblarder preload=
  case $variant in
  plain) ;;
  preload) preload=$liblarder_malloc ;;
  linked) link=$liblarder_malloc ;;
  *) echo "unknown variant $variant" >&2; return 2 ;;
  esac
  echo "snippet $id, $variant"
  if ! "$cxx" -pthread -o "$work/snippet" "$out/snippet.o" "$link" -Wl,-rpath,"$(dirname "$link")"; then
    echo "FAIL $id: does not link" >&2
    return 1
  fi

  args=$(cat "$out/args")
  local -a runs
  IFS='|' read -r -a runs <<<"${args:- }"
  for args in "${runs[@]}"; do
    args=$(xargs <<<"$args")
    status=0
    # shellcheck disable=SC2086  # the arguments are split as a shell would
    (cd "$work" && exec timeout -k 5 30 env ${preload:+LD_PRELOAD="$preload"} ./snippet $args) || status=$?
    if ((status == 124 || status == 137)); then
      echo "FAIL $id ($variant): hangs: killed after 30 s${args:+ (arguments: $args)}" >&2
      return 1
    elif ((status > 128)); then
      echo "FAIL $id ($variant): died by signal $((status - 128))${args:+ (arguments: $args)}" >&2
      return 1
    elif ((status != 0)); then
      echo "FAIL $id ($variant): exited with $status${args:+ (arguments: $args)}" >&2
      return 1
    fi
  done
  echo "ok: snippet $id, $variant"
}

case ${1:-} in
list) list "$2" ;;
build) build "${@:2}" ;;
run) run "${@:2}" ;;
*)
  echo "usage: $0 list SOURCE_DIR | build SOURCE_DIR ID CXX OUT_DIR |" \
    "run ID OUT_DIR plain|preload|linked CXX LIBLARDER LIBLARDER_MALLOC" >&2
  exit 2
  ;;
esac
