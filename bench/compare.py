#!/usr/bin/env python3
"""Run larder's benchmarks against other allocators and tabulate the results.

What it runs
  * larder_alloc_bench, once per workload (churn, pairs2t, prodcons, large,
    bursty, shortlived) per allocator, each run in a fresh process so that
    its peak-RSS counter covers that workload alone (shortlived times child
    processes of its own, from spawn to exit, and reports their RSS). The
    allocator is chosen with LD_PRELOAD: glibc (nothing preloaded),
    jemalloc, mimalloc, tcmalloc (the "minimal" build, without the profiler
    hooks), larder (liblarder_malloc.so from the build folder) and
    larder+placement (the same library with LARDER_PLACEMENT=sites: malloc's
    sites spread over 16 pods). An allocator whose library is missing is
    skipped with a note. Every workload is repeated --reps times; the
    allocators take turns within each round, in a rotating order, so that
    slow drifts in machine speed spread over all of them. The tables show
    medians (or, with --stat best, the best run's throughput, which is
    steadier on a machine with other load on it; peak RSS is always the
    median).
  * larder_persist_bench, once per workload per round: larder's file-backed
    heap against libpmemobj, both on --persist-dir (default /dev/shm).

What it writes
  * a Markdown summary on standard output;
  * the raw and summarised results as JSON (--json, default
    bench/results/latest.json);
  * with --write-doc, the tables into docs/PERFORMANCE.md between the markers
    <!-- alloc-table:begin/end --> and <!-- persist-table:begin/end -->,
    leaving the rest of the file alone (the markers are added if missing).

Usage (from the repository root, after a Release build with
-DLARDER_BUILD_BENCH=ON):
    python3 bench/compare.py --build-dir build --write-doc
    python3 bench/compare.py --quick            # a smoke test of a few seconds
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
from pathlib import Path

SCRIPT_DIR = Path(__file__).resolve().parent
REPO_ROOT = SCRIPT_DIR.parent
sys.path.insert(0, str(SCRIPT_DIR))
from bench_env import find_in_build, machine_info, resolve_build_dir  # noqa: E402

ALLOC_WORKLOADS = ["churn", "pairs2t", "prodcons", "large", "bursty", "shortlived"]

# (row name, larder benchmark, pmemobj benchmark)
PERSIST_WORKLOADS = [
    ("alloc64", "larder_alloc64", "pmemobj_alloc64"),
    ("free64", "larder_free64", "pmemobj_free64"),
    ("reuse64", "larder_reuse64", "pmemobj_reuse64"),
]

LIB_DIRS = [
    "/usr/lib/x86_64-linux-gnu",
    "/usr/lib/aarch64-linux-gnu",
    "/usr/lib64",
    "/usr/lib",
    "/usr/local/lib",
]

# Candidate library names, first found wins.
OTHER_ALLOCATORS = [
    ("jemalloc", ["libjemalloc.so.2", "libjemalloc.so"]),
    ("mimalloc", ["libmimalloc.so.2", "libmimalloc.so"]),
    ("tcmalloc", ["libtcmalloc_minimal.so.4", "libtcmalloc_minimal.so", "libtcmalloc.so.4"]),
]

# Systems that are an allocator run with settings of its own: the
# environment added to LD_PRELOAD.
ALLOCATOR_ENV = {"larder+placement": {"LARDER_PLACEMENT": "sites"}}
LARDER_SYSTEMS = ("larder", "larder+placement")

QUICK_SCALE = 0.05
ALLOC_MARKERS = ("<!-- alloc-table:begin -->", "<!-- alloc-table:end -->")
PERSIST_MARKERS = ("<!-- persist-table:begin -->", "<!-- persist-table:end -->")

DOC_SKELETON = """# Performance

## How to rerun

Build larder in Release mode with the benchmarks enabled
(`cmake -B build -DCMAKE_BUILD_TYPE=Release -DLARDER_BUILD_BENCH=ON && cmake --build build`),
then, from the repository root, run

    python3 bench/compare.py --build-dir build --write-doc

It runs every workload against every installed allocator and rewrites the
tables below between their markers; the raw numbers go to
`bench/results/latest.json`. `bench/README.md` describes the workloads.

## General-purpose allocation

{alloc_begin}
_Not measured yet._
{alloc_end}

## Persistent allocation: larder and libpmemobj

{persist_begin}
_Not measured yet._
{persist_end}
"""


# ---------------------------------------------------------------------------
# discovery


def find_library(names: list[str]) -> str | None:
    for directory in LIB_DIRS:
        for name in names:
            path = Path(directory) / name
            if path.is_file():
                return str(path)
    return None


def package_version(path: str) -> str | None:
    """The Debian package version of the package owning `path`, if any."""
    try:
        owner = subprocess.run(["dpkg-query", "-S", os.path.realpath(path)],
                               capture_output=True, text=True, timeout=10)
        if owner.returncode != 0 or ":" not in owner.stdout:
            owner = subprocess.run(["dpkg-query", "-S", path],
                                   capture_output=True, text=True, timeout=10)
        if owner.returncode != 0:
            return None
        package = owner.stdout.split("\n")[0].split(": ")[0].split(",")[0].strip()
        version = subprocess.run(["dpkg-query", "-W", "-f=${Version}", package],
                                 capture_output=True, text=True, timeout=10)
        return version.stdout.strip() or None if version.returncode == 0 else None
    except (OSError, subprocess.SubprocessError):
        return None


# ---------------------------------------------------------------------------
# running


def run_one(binary: Path, workload: str, env_extra: dict, args: list[str], timeout: float) -> dict:
    """Runs one benchmark in a fresh process; returns its counters or an error."""
    env = dict(os.environ)
    env.pop("LD_PRELOAD", None)
    env.pop("LARDER_PLACEMENT", None)  # only larder+placement runs with it
    env.update(env_extra)
    cmd = [str(binary), f"--benchmark_filter=^{workload}(/|$)", "--benchmark_format=json"] + args
    try:
        proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        return {"error": f"timed out after {timeout:.0f} s"}
    if proc.returncode != 0:
        tail = (proc.stderr or proc.stdout).strip().splitlines()[-3:]
        return {"error": f"exit status {proc.returncode}: " + " | ".join(tail)}
    if not proc.stdout.strip():
        return {"error": "benchmark not found in the output"}
    try:
        data = json.loads(proc.stdout)
    except json.JSONDecodeError as e:
        return {"error": f"unreadable output ({e})"}
    for bench in data.get("benchmarks", []):
        if bench.get("name", "").split("/")[0] != workload:
            continue
        if bench.get("error_occurred"):
            return {"error": bench.get("error_message", "benchmark reported an error")}
        result = {k: v for k, v in bench.items()
                  if isinstance(v, (int, float)) and not isinstance(v, bool)}
        result["time_unit"] = bench.get("time_unit")
        return result
    return {"error": "benchmark not found in the output"}


def list_benchmarks(binary: Path) -> set[str] | None:
    """The benchmark names a binary was built with, or None if it cannot say."""
    try:
        proc = subprocess.run([str(binary), "--benchmark_list_tests=true"],
                              capture_output=True, text=True, timeout=60)
    except (OSError, subprocess.SubprocessError):
        return None
    if proc.returncode != 0:
        return None
    return {line.split("/")[0].strip() for line in proc.stdout.splitlines() if line.strip()}


def median_of(runs: list[dict], key: str) -> float | None:
    values = [r[key] for r in runs if "error" not in r and key in r]
    return statistics.median(values) if values else None


def best_of(runs: list[dict], key: str) -> float | None:
    values = [r[key] for r in runs if "error" not in r and key in r]
    return max(values) if values else None


# How throughputs are summarised: set from --stat in main().
THROUGHPUT_STAT = {"name": "median", "fn": median_of}


def spread_of(runs: list[dict], key: str) -> float | None:
    values = [r[key] for r in runs if "error" not in r and key in r]
    if len(values) < 2:
        return None
    mid = statistics.median(values)
    return (max(values) - min(values)) / mid if mid else None


# ---------------------------------------------------------------------------
# formatting


def fmt(value: float | None, digits: int = 2) -> str:
    return "—" if value is None else f"{value:.{digits}f}"


def ratio_text(value: float | None, versus: str | None) -> str:
    if value is None:
        return "n/a"
    return f"{value:.2f}× (vs {versus})" if versus else f"{value:.2f}×"


def placement_cell(cells: dict) -> list[str]:
    """The larder+placement / larder column's cell, when both ran."""
    if "larder+placement" not in cells or "larder" not in cells:
        return []
    placed, plain = cells["larder+placement"], cells["larder"]
    return [ratio_text(placed / plain, None) if placed is not None and plain else "n/a"]


def alloc_tables(summary: dict, allocators: list[str], workloads: list[str]) -> list[str]:
    others = [a for a in allocators if a not in LARDER_SYSTEMS]
    has_larder = "larder" in allocators
    has_placement = has_larder and "larder+placement" in allocators
    lines = []

    lines.append(f"Throughput in million operations per second ({THROUGHPUT_STAT['name']}; "
                 "higher is better):")
    lines.append("")
    header = ["workload"] + allocators + (["larder / best other"] if has_larder else []) + \
        (["larder+placement / larder"] if has_placement else [])
    lines.append("| " + " | ".join(header) + " |")
    lines.append("|" + "|".join(["---"] + ["---:"] * (len(header) - 1)) + "|")
    for w in workloads:
        row = [f"`{w}`"]
        cells = {a: summary[w][a]["mops"] for a in allocators}
        row += [fmt(cells[a]) for a in allocators]
        if has_larder:
            best = max(((cells[a], a) for a in others if cells[a] is not None), default=None)
            if best and cells["larder"] is not None:
                row.append(ratio_text(cells["larder"] / best[0], best[1]))
            else:
                row.append("n/a")
        row += placement_cell(cells)
        lines.append("| " + " | ".join(row) + " |")

    lines.append("")
    lines.append("Peak resident set in MiB (median; lower is better):")
    lines.append("")
    header = ["workload"] + allocators + (["larder / smallest other"] if has_larder else []) + \
        (["larder+placement / larder"] if has_placement else [])
    lines.append("| " + " | ".join(header) + " |")
    lines.append("|" + "|".join(["---"] + ["---:"] * (len(header) - 1)) + "|")
    for w in workloads:
        row = [f"`{w}`"]
        cells = {a: summary[w][a]["rss_mib"] for a in allocators}
        row += [fmt(cells[a], 1) for a in allocators]
        if has_larder:
            small = min(((cells[a], a) for a in others if cells[a] is not None), default=None)
            if small and cells["larder"] is not None:
                row.append(ratio_text(cells["larder"] / small[0], small[1]))
            else:
                row.append("n/a")
        row += placement_cell(cells)
        lines.append("| " + " | ".join(row) + " |")
    return lines


def persist_table(summary: dict) -> list[str]:
    lines = [
        f"Million operations per second ({THROUGHPUT_STAT['name']}; higher is better). "
        "\"With close\" also "
        "counts the time to close the heap or pool, which for larder is what makes the "
        "objects durable (pmemobj_alloc is durable on return).",
        "",
        "| workload | larder | pmemobj | larder / pmemobj | with close: larder | "
        "with close: pmemobj | with close: larder / pmemobj |",
        "|---|---:|---:|---:|---:|---:|---:|",
    ]
    for row_name, _, _ in PERSIST_WORKLOADS:
        if row_name not in summary:
            continue
        s = summary[row_name]
        lines.append("| " + " | ".join([
            f"`{row_name}`",
            fmt(s["larder"]["mops"]), fmt(s["pmemobj"]["mops"]), ratio_text(s["ratio"], None),
            fmt(s["larder"]["mops_with_close"]), fmt(s["pmemobj"]["mops_with_close"]),
            ratio_text(s["ratio_with_close"], None),
        ]) + " |")
    return lines


def header_line(info: dict, reps: int, scale: float | None) -> str:
    text = (f"Measured {info['date']} on {info['cpu']}, {info['cores']} cores, "
            f"Linux {info['kernel']}; {THROUGHPUT_STAT['name']} of {reps} "
            f"run{'s' if reps != 1 else ''} each, "
            f"every run in its own process.")
    if scale is not None and scale != 1.0:
        text += f" **Work scaled by {scale:g}: not representative.**"
    return text


def replace_between(text: str, markers: tuple[str, str], body: str, heading: str) -> str:
    begin, end = markers
    block = f"{begin}\n{body.rstrip()}\n{end}"
    start = text.find(begin)
    stop = text.find(end, start + len(begin)) if start >= 0 else -1
    if start >= 0 and stop >= 0:
        return text[:start] + block + text[stop + len(end):]
    if not text.endswith("\n"):
        text += "\n"
    return text + f"\n{heading}\n\n{block}\n"


def write_doc(path: Path, alloc_body: str | None, persist_body: str | None) -> None:
    if path.exists():
        text = path.read_text(encoding="utf-8")
    else:
        text = DOC_SKELETON.format(alloc_begin=ALLOC_MARKERS[0], alloc_end=ALLOC_MARKERS[1],
                                   persist_begin=PERSIST_MARKERS[0], persist_end=PERSIST_MARKERS[1])
    if alloc_body is not None:
        text = replace_between(text, ALLOC_MARKERS, alloc_body, "## General-purpose allocation")
    if persist_body is not None:
        text = replace_between(text, PERSIST_MARKERS, persist_body,
                               "## Persistent allocation: larder and libpmemobj")
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")


# ---------------------------------------------------------------------------
# main


def parse_args() -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--build-dir", default="build",
                   help="CMake build folder holding the benchmarks and liblarder_malloc.so "
                        "(default: build)")
    p.add_argument("--reps", type=int, default=None,
                   help="runs per workload and allocator (default 5, or 1 with --quick)")
    p.add_argument("--quick", action="store_true",
                   help=f"smoke test: work scaled by {QUICK_SCALE}, one run each unless --reps")
    p.add_argument("--scale", type=float, default=None,
                   help="multiply every workload's object and operation counts (overrides --quick's)")
    p.add_argument("--workloads", default=",".join(ALLOC_WORKLOADS),
                   help="comma-separated malloc workloads (default: all)")
    p.add_argument("--allocators", default=None,
                   help="comma-separated subset of glibc,jemalloc,mimalloc,tcmalloc,larder,"
                        "larder+placement")
    p.add_argument("--preload", action="append", default=[], metavar="NAME=PATH",
                   help="use PATH as allocator NAME's library (may add a new allocator); repeatable")
    p.add_argument("--alloc-bench", default=None, help="path of larder_alloc_bench")
    p.add_argument("--persist-bench", default=None, help="path of larder_persist_bench")
    p.add_argument("--no-persist", action="store_true", help="skip the persistent-heap comparison")
    p.add_argument("--persist-dir", default="/dev/shm",
                   help="folder for the persistent heap files (default /dev/shm)")
    p.add_argument("--pmem-flush", action="store_true",
                   help="run pmemobj with cache-line flushes (PMEM_NO_FLUSH=0) instead of the "
                        "fastest setting")
    p.add_argument("--stat", choices=["median", "best"], default="median",
                   help="summarise each cell's throughputs by their median (default) or by the "
                        "best run (steadier when other programs share the machine)")
    p.add_argument("--timeout", type=float, default=300.0, help="seconds per run (default 300)")
    p.add_argument("--json", default=str(SCRIPT_DIR / "results" / "latest.json"),
                   help="where to write the raw results (default bench/results/latest.json)")
    p.add_argument("--write-doc", action="store_true",
                   help="write the tables into the performance document")
    p.add_argument("--doc", default=str(REPO_ROOT / "docs" / "PERFORMANCE.md"),
                   help="the performance document (default docs/PERFORMANCE.md)")
    args = p.parse_args()
    if args.reps is None:
        args.reps = 1 if args.quick else 5
    if args.reps < 1:
        p.error("--reps must be at least 1")
    if args.scale is None and args.quick:
        args.scale = QUICK_SCALE
    if args.scale is not None and args.scale <= 0:
        p.error("--scale must be positive")
    return args


def main() -> int:
    args = parse_args()
    if args.stat == "best":
        THROUGHPUT_STAT.update(name="best", fn=best_of)
    build_dir = resolve_build_dir(args.build_dir)
    info = machine_info()
    scale_args = [f"--scale={args.scale}"] if args.scale is not None else []

    # Allocators, in table order.
    candidates: list[tuple[str, str | None, str]] = [("glibc", None, "")]
    for name, libs in OTHER_ALLOCATORS:
        candidates.append((name, find_library(libs), "not installed (looked for " + ", ".join(libs) + ")"))
    larder_so = find_in_build(build_dir, "liblarder_malloc.so", ["", "lib", "src"])
    for name in LARDER_SYSTEMS:
        candidates.append((name, str(larder_so) if larder_so else None,
                           f"liblarder_malloc.so not found under {build_dir}"))
    for item in args.preload:
        if "=" not in item:
            print(f"error: --preload wants NAME=PATH, got {item!r}", file=sys.stderr)
            return 2
        name, path = item.split("=", 1)
        known = [c for c in candidates if c[0] == name]
        entry = (name, path if Path(path).is_file() else None, f"{path} does not exist")
        if known:
            candidates[candidates.index(known[0])] = entry
        else:
            candidates.insert(len(candidates) - len(LARDER_SYSTEMS), entry)
    wanted = None if args.allocators is None else [a.strip() for a in args.allocators.split(",") if a.strip()]

    allocators: list[tuple[str, str | None]] = []
    for name, path, why in candidates:
        if wanted is not None and name not in wanted:
            continue
        if name != "glibc" and path is None:
            print(f"note: skipping {name}: {why}")
            continue
        allocators.append((name, path))
    if not allocators:
        print("error: no allocator to run", file=sys.stderr)
        return 2
    names = [a for a, _ in allocators]

    workloads = [w.strip() for w in args.workloads.split(",") if w.strip()]
    unknown = [w for w in workloads if w not in ALLOC_WORKLOADS]
    if unknown:
        print(f"error: unknown workload(s) {', '.join(unknown)}; "
              f"known: {', '.join(ALLOC_WORKLOADS)}", file=sys.stderr)
        return 2

    alloc_bench = Path(args.alloc_bench) if args.alloc_bench else \
        find_in_build(build_dir, "larder_alloc_bench", ["bench", ""])
    if alloc_bench is None or not alloc_bench.is_file():
        print(f"error: larder_alloc_bench not found under {build_dir}; configure with "
              "-DLARDER_BUILD_BENCH=ON and build, or pass --alloc-bench", file=sys.stderr)
        return 2
    persist_bench = None
    if not args.no_persist:
        persist_bench = Path(args.persist_bench) if args.persist_bench else \
            find_in_build(build_dir, "larder_persist_bench", ["bench", ""])
        if persist_bench is None or not persist_bench.is_file():
            print(f"note: skipping the persistent-heap comparison: larder_persist_bench "
                  f"not found under {build_dir}")
            persist_bench = None

    versions = {"glibc": info["libc"], "larder": info["revision"], "larder+placement": info["revision"]}
    for name, path in allocators:
        if path and name not in LARDER_SYSTEMS:
            versions[name] = package_version(path) or "unknown"

    print(header_line(info, args.reps, args.scale))
    print("allocators: " + ", ".join(f"{n} ({p or 'built in'})" for n, p in allocators))
    print(f"benchmark: {alloc_bench}")
    sys.stdout.flush()

    # ---- malloc workloads: rounds; allocators rotate within each round.
    raw: dict = {w: {a: [] for a in names} for w in workloads}
    total = args.reps * len(workloads) * len(allocators)
    done = 0
    failures = 0
    for rep in range(args.reps):
        for w in workloads:
            shift = (rep + workloads.index(w)) % len(allocators)
            order = allocators[shift:] + allocators[:shift]
            for name, path in order:
                env = {"LD_PRELOAD": path} if path else {}
                env.update(ALLOCATOR_ENV.get(name, {}))
                result = run_one(alloc_bench, w, env, scale_args, args.timeout)
                raw[w][name].append(result)
                done += 1
                if "error" in result:
                    failures += 1
                    line = f"FAILED: {result['error']}"
                else:
                    line = (f"{result.get('items_per_second', 0) / 1e6:8.2f} Mops/s  "
                            f"{result.get('peak_rss_mb', 0):8.1f} MiB")
                print(f"[{done:3d}/{total}] round {rep + 1} {w:9s} {name:9s} {line}")
                sys.stdout.flush()

    alloc_summary: dict = {}
    for w in workloads:
        alloc_summary[w] = {}
        for a in names:
            runs = raw[w][a]
            ips = THROUGHPUT_STAT["fn"](runs, "items_per_second")
            alloc_summary[w][a] = {
                "mops": ips / 1e6 if ips is not None else None,
                "rss_mib": median_of(runs, "peak_rss_mb"),
                "mops_spread": spread_of(runs, "items_per_second"),
                "ok_runs": sum(1 for r in runs if "error" not in r),
            }

    # ---- persistent heaps
    persist_raw: dict = {}
    persist_summary: dict = {}
    if persist_bench is not None:
        env = {"PMEM_IS_PMEM_FORCE": "1", "PMEM_NO_FLUSH": "0" if args.pmem_flush else "1"}
        persist_args = scale_args + [f"--dir={args.persist_dir}"]
        print(f"persistent heaps in {args.persist_dir} "
              f"(pmemobj: PMEM_IS_PMEM_FORCE=1 PMEM_NO_FLUSH={env['PMEM_NO_FLUSH']})")
        names_p = [b for _, l, p in PERSIST_WORKLOADS for b in (l, p)]
        persist_raw = {b: [] for b in names_p}
        built = list_benchmarks(persist_bench)
        if built is not None:
            missing = [b for b in names_p if b not in built]
            if missing:
                print(f"note: {persist_bench.name} was built without {', '.join(missing)}")
            names_p = [b for b in names_p if b in built]
        total = args.reps * len(names_p)
        done = 0
        for rep in range(args.reps):
            order = names_p if rep % 2 == 0 else list(reversed(names_p))
            for bench in order:
                result = run_one(persist_bench, bench, env, persist_args, args.timeout)
                persist_raw[bench].append(result)
                done += 1
                if "error" in result:
                    if "not found in the output" in result["error"]:
                        line = "not built in"
                    else:
                        failures += 1
                        line = f"FAILED: {result['error']}"
                else:
                    secs = result["objects"] / result["items_per_second"]
                    result["items_per_second_with_close"] = \
                        result["objects"] / (secs + result.get("close_ms", 0.0) / 1000.0)
                    line = (f"{result['items_per_second'] / 1e6:8.2f} Mops/s  "
                            f"(with close {result['items_per_second_with_close'] / 1e6:.2f})")
                print(f"[{done:3d}/{total}] round {rep + 1} {bench:16s} {line}")
                sys.stdout.flush()
        for row_name, l_bench, p_bench in PERSIST_WORKLOADS:
            entry = {}
            for side, bench in (("larder", l_bench), ("pmemobj", p_bench)):
                runs = persist_raw[bench]
                ips = THROUGHPUT_STAT["fn"](runs, "items_per_second")
                ipc = THROUGHPUT_STAT["fn"](runs, "items_per_second_with_close")
                entry[side] = {
                    "mops": ips / 1e6 if ips is not None else None,
                    "mops_with_close": ipc / 1e6 if ipc is not None else None,
                    "close_ms": median_of(runs, "close_ms"),
                    "open_ms": median_of(runs, "open_ms"),
                    "mops_spread": spread_of(runs, "items_per_second"),
                }
            l, p = entry["larder"], entry["pmemobj"]
            entry["ratio"] = l["mops"] / p["mops"] if l["mops"] and p["mops"] else None
            entry["ratio_with_close"] = (l["mops_with_close"] / p["mops_with_close"]
                                         if l["mops_with_close"] and p["mops_with_close"] else None)
            persist_summary[row_name] = entry

    # ---- report
    quick = args.scale is not None and args.scale != 1.0
    head = header_line(info, args.reps, args.scale)
    version_line = "Versions: " + ", ".join(f"{n} {versions.get(n, 'unknown')}" for n in names) + "."
    json_path = Path(args.json).resolve()
    try:
        json_shown = str(json_path.relative_to(REPO_ROOT))
    except ValueError:
        json_shown = str(json_path)
    spreads = [s["mops_spread"] for w in alloc_summary.values() for s in w.values()
               if s["mops_spread"] is not None]
    alloc_lines = [head, "", version_line, ""] + alloc_tables(alloc_summary, names, workloads)
    if spreads:
        alloc_lines += ["", f"Largest spread between runs of one cell, (max − min) / median: "
                            f"{max(spreads) * 100:.0f}%. Raw numbers: `{json_shown}`."]
    if "larder" not in names and (wanted is None or "larder" in wanted):
        alloc_lines += ["", "_larder was not measured (liblarder_malloc.so not built)._"]

    print()
    print("\n".join(alloc_lines))
    persist_lines = None
    if persist_summary:
        persist_lines = [head, "",
                         f"Files on {args.persist_dir}; pmemobj with PMEM_IS_PMEM_FORCE=1 and "
                         f"PMEM_NO_FLUSH={'0' if args.pmem_flush else '1'} "
                         "(see bench/persist_alloc_bench.cpp).", ""] + persist_table(persist_summary)
        print()
        print("\n".join(persist_lines))

    results = {
        "machine": info,
        "settings": {"reps": args.reps, "stat": args.stat, "scale": args.scale or 1.0, "quick": quick,
                     "persist_dir": args.persist_dir, "pmem_no_flush": not args.pmem_flush,
                     "alloc_bench": str(alloc_bench),
                     "persist_bench": str(persist_bench) if persist_bench else None},
        "allocators": {n: {"library": p, "version": versions.get(n)} for n, p in allocators},
        "alloc": {"summary": alloc_summary, "runs": raw},
        "persist": {"summary": persist_summary, "runs": persist_raw},
    }
    json_path.parent.mkdir(parents=True, exist_ok=True)
    json_path.write_text(json.dumps(results, indent=2) + "\n", encoding="utf-8")
    print(f"\nraw results: {json_path}")

    if args.write_doc:
        doc = Path(args.doc)
        write_doc(doc, "\n".join(alloc_lines), "\n".join(persist_lines) if persist_lines else None)
        print(f"tables written to {doc}")

    if failures:
        print(f"\n{failures} run(s) failed; see above", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
