#!/usr/bin/env python3
"""Run the remote tier's benchmark and `rados bench` side by side on
throwaway single-node Ceph clusters, and tabulate them.

What it runs
  For each object size in --objects, alternately, --repeats times each,
  on a single-node cluster of its own (scripts/ceph-cluster.sh: one mon,
  one OSD on memstore, 127.0.0.1) started in a temporary folder for that
  run and stopped after it:
    * tier_rados_bench (bench/tier_rados_bench.cpp): a pod of --size MiB
      put to the remote tier (tiers/rados) as objects of that size, --depth
      requests in flight (a new pod each time, --put-total MiB in all,
      none removed while it measures), then got back for at least
      --seconds;
    * rados bench (Ceph's own) with the same object size and --depth
      concurrent requests: `write` for --seconds, then `seq` over the
      objects it wrote.

What it prints
  Markdown: machine and run details, then put (write) and get (read)
  throughput in MB/s (10^6 bytes; rados bench's own "MB" are MiB and are
  converted) of each, the median of the repeats, and the ratio
  larder / rados bench against the target (90 %). --json PATH saves every
  sample. Exits 1 when a tool fails, 77 (skipped) when the ceph binaries are
  not installed.

Usage (from the repository root, after a Release build with
-DLARDER_BUILD_BENCH=ON):
    python3 bench/tier_rados_compare.py --build-dir build
    python3 bench/tier_rados_compare.py --objects 64,1024,4096 --repeats 5
"""

from __future__ import annotations

import argparse
import json
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

SCRIPT_DIR = Path(__file__).resolve().parent
sys.path.insert(0, str(SCRIPT_DIR))
from bench_env import find_in_build, machine_info, median, resolve_build_dir  # noqa: E402

TARGET = 0.90
CLUSTER_SCRIPT = SCRIPT_DIR.parent / "scripts" / "ceph-cluster.sh"
POOL = "bench"


def run(command: list[str], timeout: float = 600) -> str:
    done = subprocess.run(command, capture_output=True, text=True, timeout=timeout)
    if done.returncode != 0:
        sys.exit(f"{' '.join(command)} failed ({done.returncode}):\n{done.stdout}\n{done.stderr}")
    return done.stdout


def larder_sample(bench: Path, conf: Path, object_kib: int, args) -> dict:
    out = run([str(bench), f"--conf={conf}", f"--pool={POOL}", f"--size={args.size}", f"--object={object_kib}",
               f"--depth={args.depth}", f"--put-total={args.put_total}", f"--benchmark_min_time={args.seconds}",
               "--benchmark_format=json"])
    benchmarks = json.loads(out)["benchmarks"]
    for b in benchmarks:
        if b.get("error_occurred"):
            sys.exit(f"{bench.name} {b['name']}: {b.get('error_message')}")
    rates = {b["name"].split("/")[0]: b["bytes_per_second"] for b in benchmarks}
    return {"put": rates["BM_PutPod"], "get": rates["BM_GetPod"]}


def rados_bandwidth(output: str) -> float:
    """Bytes per second from rados bench's summary ("Bandwidth (MB/sec)" is MiB/s)."""
    found = re.search(r"^Bandwidth \(MB/sec\):\s*([0-9.]+)", output, re.MULTILINE)
    if found is None:
        sys.exit(f"rados bench printed no bandwidth:\n{output}")
    return float(found.group(1)) * (1 << 20)


def rados_sample(conf: Path, object_kib: int, args) -> dict:
    rados = ["rados", "-c", str(conf), "-p", POOL]
    name = ["--run-name", "compare"]
    put = run(rados + ["bench", str(args.seconds), "write", "-b", str(object_kib << 10), "-t", str(args.depth),
                       "--no-cleanup"] + name)
    get = run(rados + ["bench", str(args.seconds), "seq", "-t", str(args.depth)] + name)
    return {"put": rados_bandwidth(put), "get": rados_bandwidth(get)}


def on_fresh_cluster(folder: Path, sample):
    """sample(conf) run on a cluster of its own, started in `folder` and
    stopped after. The OSD keeps the memory of removed objects and goes on
    freeing them after a removal returns: a run on a used cluster would be
    timed against what the one before left."""
    run([str(CLUSTER_SCRIPT), "start", str(folder), "--pool", POOL], timeout=120)
    try:
        return sample(folder / "ceph.conf")
    finally:
        subprocess.run([str(CLUSTER_SCRIPT), "stop", str(folder)], check=False)


def table(samples: dict[int, dict[str, list[dict]]]) -> str:
    lines = ["| object size | direction | larder remote tier MB/s | rados bench MB/s | larder / rados bench | target |",
             "| ---: | --- | ---: | ---: | ---: | --- |"]
    for object_kib, runs in samples.items():
        size = f"{object_kib // 1024} MiB" if object_kib % 1024 == 0 else f"{object_kib} KiB"
        for direction in ("put", "get"):
            ours = median([s[direction] for s in runs["larder"]]) / 1e6
            theirs = median([s[direction] for s in runs["rados"]]) / 1e6
            ratio = ours / theirs
            verdict = f">= {TARGET:.0%}: " + ("met" if ratio >= TARGET else "missed")
            lines.append(f"| {size} | {direction} | {ours:.0f} | {theirs:.0f} | {ratio:.0%} | {verdict} |")
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--build-dir", default="build")
    parser.add_argument("--size", type=int, default=64, help="MiB per larder pod")
    parser.add_argument("--objects", default="64,1024,4096", help="object sizes in KiB, comma separated")
    parser.add_argument("--depth", type=int, default=16, help="requests in flight")
    parser.add_argument("--seconds", type=int, default=5,
                        help="length of each rados bench write, and the least larder's get lasts")
    parser.add_argument("--put-total", type=int, default=2048,
                        help="MiB larder puts per run (the cluster's OSD holds 8 GiB)")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    object_sizes = [int(s) for s in args.objects.split(",")]
    if any(s <= 0 or s % 4 for s in object_sizes):
        sys.exit("--objects: sizes in KiB, multiples of 4")

    missing = [tool for tool in ("ceph-mon", "ceph-osd", "rados") if shutil.which(tool) is None]
    if missing:
        print(f"{', '.join(missing)} not installed (scripts/install-deps.sh installs them): skipped")
        return 77
    bench = find_in_build(resolve_build_dir(args.build_dir), "tier_rados_bench", ["bench"])
    if bench is None:
        sys.exit("tier_rados_bench not found: build with -DLARDER_BUILD_BENCH=ON")

    samples: dict[int, dict[str, list[dict]]] = {}
    with tempfile.TemporaryDirectory(prefix="larder_rados_compare_") as folder:
        for object_kib in object_sizes:
            runs = samples.setdefault(object_kib, {"larder": [], "rados": []})
            for repeat in range(args.repeats):
                runs["larder"].append(on_fresh_cluster(Path(folder) / f"larder-{object_kib}-{repeat}",
                                                       lambda conf: larder_sample(bench, conf, object_kib, args)))
                runs["rados"].append(on_fresh_cluster(Path(folder) / f"rados-{object_kib}-{repeat}",
                                                      lambda conf: rados_sample(conf, object_kib, args)))

    info = machine_info()
    print(f"Machine: {info['cpu']}, {info['cores']} cores, Linux {info['kernel']}; {info['date']}, "
          f"larder {info['revision']}")
    print(f"Single-node Ceph (memstore OSD, 127.0.0.1), a fresh cluster per run; larder pods of {args.size} MiB; rados bench writes for "
          f"{args.seconds} s; {args.depth} requests in flight; median of {args.repeats} runs each\n")
    print(table(samples))
    if args.json:
        args.json.write_text(json.dumps({"machine": info, "samples": samples}, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
