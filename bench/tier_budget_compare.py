#!/usr/bin/env python3
"""A data set 4x larger than its memory: larder's migrator against the
kernel's own paging, side by side in one run.

What it runs
  bench/tier_budget_bench.cpp, alternately, --repeats times each, per
  workload (zipfian, uniform):
    * larder: an anonymous heap with a DRAM budget of --budget MiB and the
      disk tier under --dir; its cold pods are written out and faulted back
      on touch (docs/tiers.md);
    * mmap: the same data in a plain MAP_SHARED file under --dir, the
      process's memory capped by a memory cgroup at --budget + --slack MiB
      (the slack covers the program itself), so the kernel reads pages in
      and writes them back as it would for any program that maps a file
      larger than its memory.
  larder's own budget bounds it; its peak resident memory through the
  fill and the run is reported beside the mapping's. Both run the same
  operations (same seed) and must end with the same checksum over every
  byte (computed after the timing; a heap's close brings its evicted
  pages back, so larder runs outside the cgroup).

What it prints
  Markdown: machine and run details, then operations per second of each
  (median of the repeats), the ratio larder / mmap (target: >= 2x on the
  Zipfian workload), larder's evictions and faults, and the peak resident
  memory of each. --json PATH saves every sample.
  Needs root (it creates cgroups); exits 77 (skipped) without it.

Usage (from the repository root, after a Release build with
-DLARDER_BUILD_BENCH=ON):
    sudo python3 bench/tier_budget_compare.py --build-dir build
    sudo python3 bench/tier_budget_compare.py --data 1024 --budget 256 --repeats 3
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import uuid
from pathlib import Path

SCRIPT_DIR = Path(__file__).resolve().parent
sys.path.insert(0, str(SCRIPT_DIR))
from bench_env import find_in_build, machine_info, median, resolve_build_dir  # noqa: E402

TARGET = 2.0
WORKLOADS = ("zipfian", "uniform")
SYSTEMS = ("larder", "mmap")


class memory_cgroup:
    """A memory cgroup (v1 or v2) limited to `limit` bytes, removed on exit."""

    def __init__(self, limit: int):
        v2 = Path("/sys/fs/cgroup/cgroup.controllers")
        name = f"larder-bench-{uuid.uuid4().hex[:8]}"
        if v2.exists():
            self.path = Path("/sys/fs/cgroup") / name
            self.limit_file = "memory.max"
        else:
            self.path = Path("/sys/fs/cgroup/memory") / name
            self.limit_file = "memory.limit_in_bytes"
        self.limit = limit

    def __enter__(self):
        self.path.mkdir()
        (self.path / self.limit_file).write_text(str(self.limit))
        swap = self.path / ("memory.swap.max" if self.limit_file == "memory.max" else "memory.memsw.limit_in_bytes")
        if swap.exists():  # no swapping around the cap: file pages only
            try:
                swap.write_text("0" if self.limit_file == "memory.max" else str(self.limit))
            except OSError:
                pass
        return self

    def command(self, argv: list[str]) -> list[str]:
        # The shell enters the cgroup, then becomes the program.
        return ["sh", "-c", f'echo $$ > "{self.path}/cgroup.procs" && exec "$@"', "sh", *argv]

    def __exit__(self, *exc):
        try:
            self.path.rmdir()
        except OSError:
            pass


def cgroups_usable() -> str | None:
    if os.geteuid() != 0:
        return "creating a memory cgroup needs root"
    if not (Path("/sys/fs/cgroup/cgroup.controllers").exists() or Path("/sys/fs/cgroup/memory").is_dir()):
        return "no memory cgroup controller is mounted"
    return None


def sample(bench: Path, system: str, workload: str, args) -> dict:
    tiers = "2" if system == "larder-2t" else "1"
    argv = [str(bench), f"--system={system.removesuffix('-2t')}", f"--tiers={tiers}", f"--workload={workload}",
            f"--pods={args.data // args.pod}",
            f"--pod-mib={args.pod}", f"--budget-mib={args.budget}", f"--ops={args.ops}",
            f"--threads={args.threads}", f"--writes={args.writes}", f"--dir={args.dir}", "--seed=7"]
    if system == "mmap":
        with memory_cgroup((args.budget + args.slack) << 20) as group:
            done = subprocess.run(group.command(argv), capture_output=True, text=True)
    else:
        done = subprocess.run(argv, capture_output=True, text=True)
    if done.returncode != 0:
        sys.exit(f"{system} {workload} failed ({done.returncode}; -9 is the cgroup's OOM kill):\n{done.stderr}")
    return json.loads(done.stdout)


def plot(samples: dict, path: str, args) -> None:
    """Operations per second of each system per workload (log scale), the
    median with min-max bars. Needs matplotlib (python3-matplotlib)."""
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        print("note: matplotlib is not installed; no plot", file=sys.stderr)
        return
    labels = {"larder": f"larder, {args.budget} MiB DRAM budget + disk tier",
              "mmap": f"file mapping, cgroup {args.budget + args.slack} MiB"}
    fig, ax = plt.subplots(figsize=(6.4, 3.6))
    width = 0.36
    for i, system in enumerate(SYSTEMS):
        rates = [[r["ops_per_s"] for r in samples[w][system]] for w in WORKLOADS]
        mid = [median(r) for r in rates]
        errors = [[m - min(r) for m, r in zip(mid, rates)], [max(r) - m for m, r in zip(mid, rates)]]
        ax.bar([x + (i - 0.5) * width for x in range(len(WORKLOADS))], mid, width, yerr=errors,
               label=labels[system], capsize=3)
    ax.set_yscale("log")
    ax.set_xticks(range(len(WORKLOADS)), [f"{w} ({args.writes:.0%} writes)" for w in WORKLOADS])
    ax.set_ylabel("operations per second (log)")
    ax.set_title(f"{args.data} MiB of pods, {args.data / args.budget:.0f}x the memory: medians, min-max bars")
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)


def fmt_rate(value) -> str:
    if value is None:
        return "-"
    return f"{value / 1e6:.2f} M" if value >= 1e6 else f"{value / 1e3:.1f} k"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--build-dir", default="build")
    parser.add_argument("--dir", default="/var/tmp", help="where the file and the disk tier live")
    parser.add_argument("--data", type=int, default=1024, help="data set, MiB")
    parser.add_argument("--pod", type=int, default=4, help="pod size, MiB")
    parser.add_argument("--budget", type=int, default=256, help="memory budget, MiB")
    parser.add_argument("--slack", type=int, default=64, help="cgroup limit above the budget, MiB")
    parser.add_argument("--ops", type=int, default=2_000_000)
    parser.add_argument("--writes", type=float, default=0.5)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--json", help="save every sample here")
    parser.add_argument("--plot", help="draw the throughput of each system here (PNG; matplotlib)")
    parser.add_argument("--two-tiers", action="store_true",
                        help="also run larder with a disk tier of the budget's size over a second one it cascades to")
    args = parser.parse_args()
    systems = SYSTEMS + (("larder-2t",) if args.two_tiers else ())

    why = cgroups_usable()
    if why:
        print(f"skipped: {why}")
        return 77
    build = resolve_build_dir(args.build_dir)
    bench = find_in_build(build, "tier_budget_bench", ["bench"])
    if bench is None:
        sys.exit(f"tier_budget_bench is not built in {build} (-DLARDER_BUILD_BENCH=ON)")

    samples: dict[str, dict[str, list[dict]]] = {w: {s: [] for s in systems} for w in WORKLOADS}
    for _ in range(args.repeats):
        for workload in WORKLOADS:
            for system in systems:
                samples[workload][system].append(sample(bench, system, workload, args))

    failed = False
    info = machine_info()
    print(f"Machine: {info['cpu']}, {info['cores']} cores, Linux {info['kernel']}; {info['date']}, "
          f"larder {info['revision']}")
    print(f"\nData {args.data} MiB in pods of {args.pod} MiB, budget {args.budget} MiB "
          f"(the mapping's cgroup limit {args.budget + args.slack} MiB), {args.ops:,} operations "
          f"({args.writes:.0%} writes) on {args.threads} thread(s), files under {args.dir}; "
          f"medians of {args.repeats}.\n")
    print("| workload | larder ops/s | mmap + cgroup ops/s | larder / mmap | larder evictions / faults "
          "| peak RSS through fill and run, larder / mmap (MiB) |")
    print("|---|---:|---:|---:|---:|---:|")
    for workload in WORKLOADS:
        rows = samples[workload]
        for a, b in zip(rows["larder"], rows["mmap"]):
            if a["checksum"] != b["checksum"]:
                print(f"checksums differ on {workload}: larder {a['checksum']}, mmap {b['checksum']}", file=sys.stderr)
                failed = True
        rate = {s: median(r["ops_per_s"] for r in rows[s]) for s in SYSTEMS}
        ratio = rate["larder"] / rate["mmap"] if rate["mmap"] else None
        mark = ""
        if workload == "zipfian" and ratio is not None:
            mark = " (target met)" if ratio >= TARGET else f" (MISSED: target {TARGET:.0f}x)"
        evictions = median(r.get("evictions") for r in rows["larder"])
        faults = median(r.get("faults") for r in rows["larder"])
        rss = {s: median(r["max_rss_mib"] for r in rows[s]) for s in SYSTEMS}
        print(f"| {workload} | {fmt_rate(rate['larder'])} | {fmt_rate(rate['mmap'])} | "
              f"{ratio:.2f}x{mark} | {evictions:.0f} / {faults:.0f} | {rss['larder']:.0f} / {rss['mmap']:.0f} |")
    if args.two_tiers:
        print(f"\nlarder with two tiers: a disk tier of {args.budget} MiB over a second one, against one disk tier "
              "holding everything (same operations, same checksum).\n")
        print("| workload | one tier ops/s | two tiers ops/s | two / one | MiB cascaded to the lower tier |")
        print("|---|---:|---:|---:|---:|")
        for workload in WORKLOADS:
            rows = samples[workload]
            for a, b in zip(rows["larder"], rows["larder-2t"]):
                if a["checksum"] != b["checksum"]:
                    print(f"checksums differ on {workload}: one tier {a['checksum']}, two {b['checksum']}",
                          file=sys.stderr)
                    failed = True
            one = median(r["ops_per_s"] for r in rows["larder"])
            two = median(r["ops_per_s"] for r in rows["larder-2t"])
            lower = median(r.get("lowest_tier_mib", 0) for r in rows["larder-2t"])
            print(f"| {workload} | {fmt_rate(one)} | {fmt_rate(two)} | {two / one:.2f}x | {lower:.0f} |")
    if args.json:
        Path(args.json).write_text(json.dumps(samples, indent=1))
    if args.plot:
        plot(samples, args.plot, args)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
