#!/usr/bin/env python3
"""Run track_bench and tabulate what page-write tracking costs.

What it runs
  track_bench (bench/track_bench.cpp), once, with --benchmark_format=json and
  --reps=N repetitions of every benchmark (default 9), all backends side by
  side in one process:
    * collect/...      one collect over a 1 GiB region with 0.1 %, 1 % and
                       10 % of its pages written, per tracker backend
                       (uffd_async, mprotect, pkey where the CPU has it),
                       against the bare PAGEMAP_SCAN ioctl and against
                       hashing every page with XXH3;
    * collect_pair/... a uffd_async collect and the bare ioctl timed back to
                       back on one registration, for a ratio that stays
                       steady on a shared machine;
    * first_write/...  the cost of the first write to an armed page, per
                       backend and backing (anonymous, shm, a file on disk),
                       with the same writes without any tracker as baseline.

What it prints
  Markdown: machine and run details, (a) collect cost in ms per backend and
  fraction with the ratios uffd collect / bare ioctl and XXH3 hashing / uffd
  collect, (b) first-write cost in microseconds per page, each with the
  targets of the tracking work next to the numbers. Every number is the
  median of the repetitions (each repetition the mean of its iterations).

  --write-doc PATH replaces the text between <!-- tracking-table:begin -->
  and <!-- tracking-table:end --> in PATH with the same Markdown (the file is
  left alone, with a note, if it lacks the markers). --json PATH saves the
  raw benchmark output and the medians.

Usage (from the repository root, after a Release build with
-DLARDER_BUILD_BENCH=ON):
    python3 bench/track_compare.py --build-dir build
    python3 bench/track_compare.py --quick      # smoke test, a few seconds
"""

from __future__ import annotations

import argparse
import json
import os
import re
import statistics
import subprocess
import sys
import time
from pathlib import Path

SCRIPT_DIR = Path(__file__).resolve().parent
REPO_ROOT = SCRIPT_DIR.parent
sys.path.insert(0, str(SCRIPT_DIR))
from bench_env import find_in_build, machine_info, resolve_build_dir, write_between_markers  # noqa: E402

MARKERS = ("<!-- tracking-table:begin -->", "<!-- tracking-table:end -->")

# Column order and display names. track_bench names the backends as
# port::tracker_name does ("uffd-async"); both spellings are accepted.
TRACKERS = [("uffd-async", "uffd_async"), ("mprotect", "mprotect"), ("pkey", "pkey")]
CANONICAL = {"uffd_async": "uffd-async"}

# (row label, backing in the benchmark name)
FIRST_WRITE_ROWS = [
    ("anonymous", "anon"),
    ("shm (memfd)", "shm"),
    ("{fs} file, clean (msync before each round)", "file"),
    ("{fs} file, dirty (no msync between rounds)", "file_dirty"),
]

# The targets.
TARGET_RATIO_IOCTL = 1.2      # uffd collect <= 1.2x the bare ioctl, at 1 %
TARGET_RATIO_HASH = 50.0      # uffd collect <= 1/50 of hashing, at 1 %
TARGET_FIRST_WRITE_US = 1.5   # first write under uffd_async, anon and shm

QUICK_ARGS = ["--iter-scale=0.2", "--collect-mib=64", "--first-write-mib=16", "--first-write-pages=1024"]


# ---------------------------------------------------------------------------
# running and reading


def run_bench(binary: Path, reps: int, extra: list[str], env_extra: dict, timeout: float) -> tuple[dict, float]:
    cmd = [str(binary), "--benchmark_format=json", f"--reps={reps}"] + extra
    env = dict(os.environ)
    env.update(env_extra)
    print(f"running: {' '.join(cmd)}", file=sys.stderr)
    started = time.monotonic()
    try:
        proc = subprocess.run(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                              text=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        sys.exit(f"track_bench did not finish within {timeout:.0f} s")
    elapsed = time.monotonic() - started
    for line in proc.stderr.splitlines():
        if "Library was built as DEBUG" not in line:  # Debian's libbenchmark; see bench/README.md
            print(f"track_bench: {line}", file=sys.stderr)
    if proc.returncode != 0:
        sys.exit(f"track_bench failed with exit status {proc.returncode}")
    try:
        return json.loads(proc.stdout), elapsed
    except json.JSONDecodeError as e:
        sys.exit(f"unreadable output from track_bench ({e})")


UNIT_TO_MS = {"ns": 1e-6, "us": 1e-3, "ms": 1.0, "s": 1e3}
COUNTERS = ("ns_per_write", "folio_pages", "written_pages", "region_pages", "pages_per_round",
            "paired_ratio", "collect_ms", "ioctl_ms")


def key_of(run_name: str) -> tuple | None:
    """('collect', method, backing, percent) or ('first_write', tracker, backing)."""
    parts = run_name.split("/")
    if len(parts) >= 4 and parts[0] in ("collect", "collect_pair"):
        m = re.fullmatch(r"([0-9.]+)pct", parts[3])
        if m:
            return (parts[0], CANONICAL.get(parts[1], parts[1]), parts[2], float(m.group(1)))
    if len(parts) >= 3 and parts[0] == "first_write":
        return ("first_write", CANONICAL.get(parts[1], parts[1]), parts[2])
    return None


def summarise(data: dict) -> dict:
    """Medians per benchmark: {key: {"ms": ..., "ns_per_write": ..., "cv": ..., ...}} and errors."""
    cells: dict = {}
    for b in data.get("benchmarks", []):
        run_name = b.get("run_name") or b.get("name", "")
        key = key_of(run_name)
        if key is None:
            continue
        cell = cells.setdefault(key, {})
        if b.get("error_occurred"):
            cell["error"] = b.get("error_message", "error")
            continue
        if b.get("run_type") == "iteration":  # without ReportAggregatesOnly: keep the raw runs
            cell.setdefault("runs", []).append(b)
            continue
        agg = b.get("aggregate_name")
        scale = UNIT_TO_MS.get(b.get("time_unit", "ms"), 1.0)
        if agg == "median":
            cell["ms"] = b["real_time"] * scale
            for counter in COUNTERS:
                if counter in b:
                    cell[counter] = b[counter]
            cell["repetitions"] = b.get("repetitions")
        elif agg == "cv":
            cell["cv"] = b["real_time"]
        elif agg == "mean":
            cell["mean_ms"] = b["real_time"] * scale
        elif agg == "stddev":
            cell["stddev_ms"] = b["real_time"] * scale
    for cell in cells.values():
        runs = cell.pop("runs", None)
        if runs and "ms" not in cell:  # a single repetition reports no aggregates
            cell["ms"] = statistics.median(r["real_time"] * UNIT_TO_MS.get(r.get("time_unit", "ms"), 1.0)
                                           for r in runs)
            for counter in COUNTERS:
                values = [r[counter] for r in runs if counter in r]
                if values:
                    cell[counter] = statistics.median(values)
        if "cv" not in cell and cell.get("mean_ms") and "stddev_ms" in cell:
            cell["cv"] = cell["stddev_ms"] / cell["mean_ms"]
    return cells


# ---------------------------------------------------------------------------
# formatting


def fmt_ms(v: float | None) -> str:
    if v is None:
        return "—"
    return f"{v:.3f}" if v < 10 else f"{v:.1f}"


def fmt_us(v: float | None) -> str:
    if v is None:
        return "—"
    return f"{v:.3f}" if v < 0.1 else f"{v:.2f}"


def fmt_ratio(v: float | None) -> str:
    if v is None:
        return "n/a"
    return f"{v:.2f}×" if v < 10 else f"{v:.0f}×"


def verdict(ok: bool | None) -> str:
    return "n/a" if ok is None else ("**met**" if ok else "**not met**")


def percent_text(p: float) -> str:
    return f"{p:g} %"


def collect_section(cells: dict, trackers: list[str], ctx: dict) -> list[str]:
    keys = sorted({(k[2], k[3]) for k in cells if k[0] == "collect"},
                  key=lambda bp: (bp[0] != "anon", bp[0], bp[1]))
    if not keys:
        return []
    region_mib = ctx.get("collect_region_mib", "?")
    lines = [
        f"**Collect cost**, ms per collect (median; lower is better), over a {region_mib} MiB region "
        "of 4 KiB pages of which the given share was written since the last collect (distinct "
        "random pages, one byte each). A tracker's collect reports the written runs and re-arms "
        "them; \"bare PAGEMAP_SCAN\" is the ioctl alone over the same range and pages "
        "(`port::pagemap_scan_written`, re-protecting); \"XXH3 hashing\" hashes every page and "
        "compares with the previous hashes, the way to find written pages without a tracker. "
        "\"Paired\" is the median ratio of a collect and a bare ioctl timed back to back on one "
        "registration (`collect_pair`), steady on a shared machine; \"separate runs\" divides "
        "the two columns' medians, taken seconds apart. \"heap collect_dirty\" is the whole of "
        "`larder::heap::collect_dirty` on an anonymous heap holding one block of that size "
        "(collect, pages attributed to pods, statistics recorded), paired the same way with the "
        "ioctl over the heap's tracked range. The targets are checked on the paired ratios.",
        "",
    ]
    header = (["backing, written"] + [display for name, display in TRACKERS if name in trackers]
              + ["bare PAGEMAP_SCAN", "XXH3 hashing", "uffd / bare ioctl, paired",
                 "heap collect_dirty / bare ioctl, paired", "uffd / bare ioctl, separate runs", "XXH3 / uffd"])
    lines.append("| " + " | ".join(header) + " |")
    lines.append("|" + "|".join(["---"] + ["---:"] * (len(header) - 1)) + "|")

    def ms(method, backing, p):
        c = cells.get(("collect", method, backing, p), {})
        return c.get("ms"), c

    targets = []
    for backing, p in keys:
        any_cell = next((cells[k] for k in cells if k[0] == "collect" and k[2] == backing and k[3] == p
                         and "written_pages" in cells[k]), {})
        written = any_cell.get("written_pages")
        label = f"{backing}, {percent_text(p)}" + (f" ({int(written):,} pages)" if written else "")
        row = [label]
        for name, _ in TRACKERS:
            if name in trackers:
                v, c = ms(name, backing, p)
                row.append("error" if "error" in c else fmt_ms(v))
        uffd, _ = ms("uffd-async", backing, p)
        ioctl, ci = ms("pagemap_scan", backing, p)
        hashing, ch = ms("xxh3", backing, p)
        row.append("error" if "error" in ci else fmt_ms(ioctl))
        row.append("error" if "error" in ch else fmt_ms(hashing))
        r_separate = uffd / ioctl if uffd and ioctl else None
        r_paired = cells.get(("collect_pair", "uffd-async", backing, p), {}).get("paired_ratio")
        r_heap = cells.get(("collect_pair", "heap-uffd-async", backing, p), {}).get("paired_ratio")
        r_ioctl = r_paired if r_paired is not None else r_separate
        r_hash = hashing / uffd if uffd and hashing else None
        row += [fmt_ratio(r_paired), fmt_ratio(r_heap), fmt_ratio(r_separate), fmt_ratio(r_hash)]
        lines.append("| " + " | ".join(row) + " |")
        if p == 1.0:
            targets.append((backing, r_ioctl, r_hash))
            if r_heap is not None:
                targets.append((backing + ", heap collect_dirty", r_heap, None))
    lines.append("")
    for backing, r_ioctl, r_hash in targets:
        if r_hash is None:
            lines.append(
                f"Target at 1 % written ({backing}: pages attributed to pods, statistics recorded): "
                f"≤ {TARGET_RATIO_IOCTL}× the bare ioctl — {fmt_ratio(r_ioctl)}, "
                f"{verdict(None if r_ioctl is None else r_ioctl <= TARGET_RATIO_IOCTL)}.")
            lines.append("")
            continue
        lines.append(
            f"Targets at 1 % written ({backing}): uffd collect ≤ {TARGET_RATIO_IOCTL}× the bare ioctl — "
            f"{fmt_ratio(r_ioctl)}, {verdict(None if r_ioctl is None else r_ioctl <= TARGET_RATIO_IOCTL)}; "
            f"uffd collect ≤ 1/{TARGET_RATIO_HASH:g} of hashing (XXH3 / uffd ≥ {TARGET_RATIO_HASH:g}×) — "
            f"{fmt_ratio(r_hash)}, {verdict(None if r_hash is None else r_hash >= TARGET_RATIO_HASH)}.")
        lines.append("")
    return lines


def first_write_section(cells: dict, trackers: list[str], ctx: dict) -> list[str]:
    if not any(k[0] == "first_write" for k in cells):
        return []
    fs = ctx.get("file_dir_fs", "disk")
    pages = ctx.get("first_write_pages", "?")
    region = ctx.get("first_write_region_mib", "?")
    lines = [
        f"**First-write cost**, µs per page (median; lower is better): {int(pages):,} distinct "
        f"random pages of a {region} MiB resident region written one byte each, right after a "
        "collect armed them. \"No tracker\" is the same writes without any tracker, to pages that "
        "are resident and mapped writable (for the clean file: written back, so the kernel's "
        "dirty tracking still faults), so the tracker's fault cost is the difference.",
        "",
    ] if str(pages).isdigit() else []
    header = (["backing", "no tracker"] + [display for name, display in TRACKERS if name in trackers]
              + ["uffd − no tracker", "mean folio (pages)"])
    lines.append("| " + " | ".join(header) + " |")
    lines.append("|" + "|".join(["---"] + ["---:"] * (len(header) - 1)) + "|")

    def us(tracker, backing):
        c = cells.get(("first_write", tracker, backing), {})
        v = c.get("ns_per_write")
        return (v / 1000.0 if v is not None else None), c

    uffd_by_backing = {}
    for label, backing in FIRST_WRITE_ROWS:
        if not any(k[0] == "first_write" and k[2] == backing for k in cells):
            continue
        base, cb = us("none", backing)
        row = [label.format(fs=fs), "error" if "error" in cb else fmt_us(base)]
        folio = cb.get("folio_pages")
        for name, _ in TRACKERS:
            if name in trackers:
                v, c = us(name, backing)
                row.append("error" if "error" in c else fmt_us(v))
                folio = folio or c.get("folio_pages")
        uffd, _ = us("uffd-async", backing)
        uffd_by_backing[backing] = uffd
        row.append(fmt_us(uffd - base) if uffd is not None and base is not None else "—")
        row.append(f"{folio:.1f}" if folio else "—")
        lines.append("| " + " | ".join(row) + " |")
    lines.append("")
    parts = []
    for backing, name in (("anon", "anonymous"), ("shm", "shm")):
        v = uffd_by_backing.get(backing)
        parts.append(f"{name} {fmt_us(v)} µs, {verdict(None if v is None else v <= TARGET_FIRST_WRITE_US)}")
    lines.append(f"Target: first write under uffd_async ≤ {TARGET_FIRST_WRITE_US} µs on anonymous and "
                 f"shm memory — {'; '.join(parts)}.")
    lines.append("")
    return lines


def notes_section(ctx: dict, trackers_ctx: dict) -> list[str]:
    lines = []
    for name, display in TRACKERS:
        status = trackers_ctx.get(name)
        if status and status != "available":
            lines.append(f"* {display}: not measured — {status.removeprefix('unavailable: ')}.")
    lines.append(
        "* On the file the tracker's write fault also runs the file system's `page_mkwrite`, for every "
        "page, whose cost grows with the page-cache folio holding the page (ext4 uses large folios "
        "since Linux 6.16; the last column is their mean size here). Without a tracker, one such "
        "fault per folio makes the whole folio writable, so the baseline there depends on how many "
        "written pages share a folio.")
    return lines


def render(cells: dict, ctx: dict, info: dict, reps: int, elapsed: float, quick: bool) -> str:
    trackers_ctx = {}
    for name, _ in TRACKERS:
        for key in (f"tracker_{name}", f"tracker_{name.replace('-', '_')}"):
            if key in ctx:
                trackers_ctx[name] = ctx[key]
    measured = {k[1] for k in cells if k[0] in ("collect", "first_write")}
    trackers = [name for name, _ in TRACKERS if name in measured]

    head = (f"Measured {info['date']} on {info['cpu']}, {info['cores']} cores, Linux {info['kernel']}; "
            f"larder {info['revision']}; median of {reps} repetition{'s' if reps != 1 else ''} "
            f"(each the mean of a fixed number of iterations), all in one process; "
            f"THP `{ctx.get('thp_enabled', '?')}` (the anonymous regions use MADV_NOHUGEPAGE); "
            f"file on {ctx.get('file_dir_fs', '?')}. The run took {elapsed:.0f} s.")
    if quick:
        head += " **Quick run with small regions: not representative.**"
    lines = [head, ""]
    lines += collect_section(cells, trackers, ctx)
    lines += first_write_section(cells, trackers, ctx)
    lines += notes_section(ctx, trackers_ctx)
    cvs = [(c["cv"], k) for k, c in cells.items() if c.get("cv") is not None]
    if cvs:
        worst, key = max(cvs)
        lines.append(f"* Largest spread between the repetitions of one cell (coefficient of variation): "
                     f"{worst * 100:.0f} % (`{'/'.join(str(x) for x in key)}`); the machine is shared, "
                     "so read the ratios rather than the absolute numbers.")
    errors = [(k, c["error"]) for k, c in cells.items() if "error" in c]
    for k, e in errors:
        lines.append(f"* `{'/'.join(str(x) for x in k)}` failed: {e}")
    return "\n".join(lines) + "\n"


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--build-dir", default="build", help="CMake build folder holding bench/track_bench")
    p.add_argument("--bench", default=None, help="path of track_bench (overrides --build-dir)")
    p.add_argument("--reps", type=int, default=None,
                   help="repetitions of every benchmark; the tables show their medians (default 9, 1 with --quick)")
    p.add_argument("--dir", default=None,
                   help="folder for the file-backed benchmarks (LARDER_BENCH_DIR; default: the build folder). "
                        "Use a disk file system, not tmpfs")
    p.add_argument("--filter", default=None, help="--benchmark_filter regular expression (a subset)")
    p.add_argument("--quick", action="store_true",
                   help="smoke test: small regions, fewer iterations, one repetition; not representative")
    p.add_argument("--write-doc", metavar="PATH", default=None,
                   help="replace the text between the tracking-table markers in PATH")
    p.add_argument("--json", metavar="PATH", default=None, help="save the raw output and medians as JSON")
    p.add_argument("--timeout", type=float, default=1800, help="seconds before giving up on the run")
    args = p.parse_args()

    reps = args.reps if args.reps is not None else (1 if args.quick else 9)
    if reps < 1:
        p.error("--reps must be at least 1")
    binary = Path(args.bench) if args.bench else \
        find_in_build(resolve_build_dir(args.build_dir), "track_bench", ["bench", "."])
    if binary is None or not binary.is_file():
        sys.exit(f"track_bench not found under {args.build_dir}; build it with "
                 "-DLARDER_BUILD_BENCH=ON (target track_bench) or pass --bench")
    extra = list(QUICK_ARGS) if args.quick else []
    if args.filter:
        extra.append(f"--benchmark_filter={args.filter}")
    env = {"LARDER_BENCH_DIR": str(Path(args.dir).resolve())} if args.dir else {}

    info = machine_info()
    data, elapsed = run_bench(binary, reps, extra, env, args.timeout)
    ctx = data.get("context", {})
    cells = summarise(data)
    if not cells:
        sys.exit("track_bench reported no benchmarks")
    body = render(cells, ctx, info, reps, elapsed, args.quick)
    print(body)

    if args.json:
        out = Path(args.json)
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(json.dumps({
            "machine": info, "reps": reps, "elapsed_s": elapsed, "context": ctx,
            "medians": {"/".join(str(x) for x in k): v for k, v in sorted(cells.items(), key=str)},
            "raw": data,
        }, indent=2) + "\n", encoding="utf-8")
    if args.write_doc:
        write_between_markers(Path(args.write_doc), MARKERS, body)
    return 0


if __name__ == "__main__":
    sys.exit(main())
