#!/usr/bin/env python3
"""Run the disk tier's benchmark and fio side by side, and tabulate them.

What it runs
  Alternately, --repeats times each, on the same file, block size and queue
  depth:
    * tier_disk_bench (bench/tier_disk_bench.cpp): a pod of --size MiB
      written to the disk tier (tiers/disk) and read back: io_uring,
      O_DIRECT where the file system takes it, adjacent pages in requests of
      --block KiB, --depth of them in flight; its pages either in memory of
      their own (--size MiB, as a pod's are) or cycling over depth x block
      bytes, as fio's buffers do;
    * fio (Debian's package) with ioengine=io_uring, direct=1, a sequential
      write then a sequential read of the same --size MiB.

What it prints
  Markdown: machine and run details, then write and read throughput in
  MB/s (10^6 bytes) of each, the median of the repeats, and the ratio
  larder / fio. The target (90 %) is judged on the like-for-like rows,
  where larder's memory cycles as fio's does; the rows with the pod's own
  memory show what fresh memory costs on top (the kernel pins pages the
  device has not seen before). --json PATH saves every sample.
  Exits 1 when a tool fails, 77 (skipped) when fio is not installed.

Usage (from the repository root, after a Release build with
-DLARDER_BUILD_BENCH=ON):
    python3 bench/tier_disk_compare.py --build-dir build
    python3 bench/tier_disk_compare.py --dir /var/tmp --size 512 --repeats 5
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

SCRIPT_DIR = Path(__file__).resolve().parent
sys.path.insert(0, str(SCRIPT_DIR))
from bench_env import find_in_build, machine_info, median, resolve_build_dir  # noqa: E402

TARGET = 0.90
# tier_disk_bench's memory argument: the pod's own pages, or cycling as fio's.
MEMORY = (("cycled", 1), ("pod", 0))


def run(command: list[str]) -> str:
    done = subprocess.run(command, capture_output=True, text=True)
    if done.returncode != 0:
        sys.exit(f"{' '.join(command)} failed ({done.returncode}):\n{done.stderr}")
    return done.stdout


def larder_sample(bench: Path, file: Path, args) -> dict:
    out = run([str(bench), f"--file={file}", f"--size={args.size}", f"--block={args.block}",
               f"--depth={args.depth}", "--benchmark_format=json"])
    report = json.loads(out)
    rates = {"/".join(b["name"].split("/")[:2]): b["bytes_per_second"] for b in report["benchmarks"]}
    sample = {"context": report["context"]}
    for direction, name in (("write", "BM_WritePod"), ("read", "BM_ReadPod")):
        for memory, arg in MEMORY:
            sample[f"{direction}/{memory}"] = rates[f"{name}/memory:{arg}"]
    return sample


def fio_rate(file: Path, mode: str, args) -> float:
    out = run(["fio", "--name=tier", f"--filename={file}", f"--rw={mode}", f"--bs={args.block}k",
               f"--size={args.size}m", "--ioengine=io_uring", f"--iodepth={args.depth}", "--direct=1",
               f"--loops={args.fio_loops}", "--output-format=json"])
    job = json.loads(out)["jobs"][0]
    return float(job[mode]["bw_bytes"])


def fio_sample(file: Path, args) -> dict:
    try:
        return {"write": fio_rate(file, "write", args), "read": fio_rate(file, "read", args)}
    finally:
        file.unlink(missing_ok=True)


def table(larder: list[dict], fio: list[dict]) -> str:
    lines = ["| direction | larder memory | larder disk tier MB/s | fio io_uring MB/s | larder / fio | target |",
             "| --- | --- | ---: | ---: | ---: | --- |"]
    for direction in ("write", "read"):
        theirs = median([s[direction] for s in fio]) / 1e6
        for memory, _ in MEMORY:
            ours = median([s[f"{direction}/{memory}"] for s in larder]) / 1e6
            ratio = ours / theirs
            if memory == "cycled":
                verdict = f">= {TARGET:.0%}: " + ("met" if ratio >= TARGET else "missed")
            else:
                verdict = "(not judged)"
            lines.append(f"| {direction} | {memory} | {ours:.0f} | {theirs:.0f} | {ratio:.0%} | {verdict} |")
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--build-dir", default="build")
    parser.add_argument("--dir", default="/var/tmp", help="folder of the file both write (a disk, for O_DIRECT)")
    parser.add_argument("--size", type=int, default=256, help="MiB written and read per run")
    parser.add_argument("--block", type=int, default=1024, help="request size in KiB")
    parser.add_argument("--depth", type=int, default=32, help="requests in flight")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--fio-loops", type=int, default=4, help="passes over the file per fio run")
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()

    if shutil.which("fio") is None:
        print("fio is not installed (apt-get install fio, or scripts/install-deps.sh --bench): skipped")
        return 77
    bench = find_in_build(resolve_build_dir(args.build_dir), "tier_disk_bench", ["bench"])
    if bench is None:
        sys.exit("tier_disk_bench not found: build with -DLARDER_BUILD_BENCH=ON")
    file = Path(args.dir) / f"tier_disk_compare.{os.getpid()}"

    larder, fio = [], []
    for _ in range(args.repeats):
        larder.append(larder_sample(bench, file, args))
        fio.append(fio_sample(file, args))

    info = machine_info()
    context = larder[0]["context"]
    print(f"Machine: {info['cpu']}, {info['cores']} cores, Linux {info['kernel']}; {info['date']}, "
          f"larder {info['revision']}")
    print(f"File in {args.dir}; {args.size} MiB per run, {args.block} KiB requests, queue depth {args.depth}; "
          f"larder O_DIRECT: {context.get('direct')}, io_uring: {context.get('io_uring')}; "
          f"median of {args.repeats} runs each\n")
    print(table(larder, fio))
    if args.json:
        args.json.write_text(json.dumps({"machine": info, "larder": larder, "fio": fio}, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
