#!/usr/bin/env python3
"""Run larder_tx_bench and tabulate larder transactions against libpmemobj's.

What it runs
  larder_tx_bench (bench/tx_bench.cpp), larder and pmemobj side by side in
  one process, in three settings, in --reps rounds (default 5), each round
  a fresh process per setting:
    * disk (--disk-dir, default /var/tmp): both libraries make their data
      durable with msync/fdatasync, so both are bound by how many syncs a
      transaction makes; PMEM_* variables are removed from the environment;
    * shm (--shm-dir, default /dev/shm) with persistent memory emulated:
      pmemobj with PMEM_IS_PMEM_FORCE=1 and larder with
      PMEM2_FORCE_GRANULARITY=CACHE_LINE (larder's persistence domain then
      uses libpmem2's cache-line flushes), so that the software overhead of
      the two is compared. Both persist with the same CPU flush instructions
      and fences; PMEM_NO_FLUSH is removed from the environment;
    * shm-noflush: the same without the cache-line write-backs
      (PMEM_NO_FLUSH=1 for pmemobj, PMEM2_FORCE_GRANULARITY=BYTE for larder),
      as on a machine whose caches are persistent (eADR): only the fences
      are left, so the software alone is compared (throughput only).
  Cases: tx_update64 (a transaction updating one 64-byte field),
  tx_alloc_link64 (a transaction allocating a 64-byte node and linking it at
  the head of a list), tx_recovery (time to open a heap or pool holding
  1 GiB of data with an empty log, and after a child crashed in the middle
  of a transaction that had logged tens to hundreds of MiB), and sync_cost
  (one msync or fdatasync on that file system). The order of larder and
  pmemobj alternates between rounds. Recovery runs in the first
  --recovery-reps rounds only (it takes long on a disk).

  Then, unless --no-strace, it counts the sync system calls per transaction:
  `larder_tx_bench --probe=CASE --probe-tx=N` under `strace -f`, counting
  msync, fsync, fdatasync, sync_file_range and syncfs between the probe's
  two marker calls (nothing but the N transactions runs between them).

What it prints
  Markdown: the machine and run, per file system the median transactions
  per second of each side, the larder / pmemobj ratio of the medians with
  the range of the per-round ratios, the syncs per transaction, and the
  issue's targets next to the numbers (larder >= 3x pmemobj on both cases;
  larder's recovery of 1 GiB with an empty log <= 10 ms).

  --write-doc PATH replaces the text between <!-- tx-table:begin --> and
  <!-- tx-table:end --> in PATH (appending a section with the markers at the
  end of the file if it has none); the raw output and the medians go to
  bench/results/tx_latest.json (--json PATH).

With --threads it runs only tx_update64_threads instead: N threads (1, 2,
4) each updating a 64-byte field of its own in one heap, a file heap in
--disk-dir and a shm heap, in --reps rounds (a fresh process each), and
prints the median commits per second of all threads together, the ratio
4 threads / 1 thread, and the target next to it (file heap >= 3x); with
--write-doc it replaces the text between <!-- tx-threads:begin --> and
<!-- tx-threads:end -->, and the raw output goes to
bench/results/tx_threads_latest.json.

Usage (from the repository root, after a Release build with
-DLARDER_BUILD_BENCH=ON):
    python3 bench/tx_compare.py --build-dir build
    python3 bench/tx_compare.py --build-dir build --write-doc docs/PERFORMANCE.md
    python3 bench/tx_compare.py --quick      # smoke test, well under a minute
    python3 bench/tx_compare.py --threads --reps 5 --write-doc docs/PERFORMANCE.md
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

SCRIPT_DIR = Path(__file__).resolve().parent
REPO_ROOT = SCRIPT_DIR.parent
sys.path.insert(0, str(SCRIPT_DIR))
from bench_env import (find_in_build, load_average, machine_info, median, resolve_build_dir,  # noqa: E402
                       write_between_markers)

MARKERS = ("<!-- tx-table:begin -->", "<!-- tx-table:end -->")
THREADS_MARKERS = ("<!-- tx-threads:begin -->", "<!-- tx-threads:end -->")
THREADS_HEADING = "### Concurrent transactions"
THREADS_RUN = re.compile(r"^tx_update64_threads/(file|shm)/.*threads:(\d+)$")
TARGET_THREADS_RATIO = 3.0  # 4 threads / 1 thread on the file heap
SECTION_HEADING = "## Transactions: larder and libpmemobj"

LIBS = ("larder", "pmemobj")
# (case in the benchmark names, row label)
THROUGHPUT_CASES = [
    ("tx_update64", "update one 64-byte field"),
    ("tx_alloc_link64", "allocate a 64-byte node, link it at the list head"),
]
SYNC_CALLS = ("msync", "fsync", "fdatasync", "sync_file_range", "syncfs")
PMEM_VARIABLES = ("PMEM_IS_PMEM_FORCE", "PMEM2_FORCE_GRANULARITY", "PMEM_NO_FLUSH")

# The targets.
TARGET_THROUGHPUT_RATIO = 3.0   # larder >= 3x pmemobj, cases 1 and 2
TARGET_RECOVERY_EMPTY_MS = 10.0  # larder, 1 GiB heap, empty log

# Per file system: directory option, environment, recovery settings.
FILE_SYSTEMS = {
    "disk": {
        "env": {},
        "recovery": {"log_mib": 64, "full_opens": 1, "empty_opens": 5},
        "probe_tx": 50,
    },
    "shm": {
        "env": {"PMEM_IS_PMEM_FORCE": "1", "PMEM2_FORCE_GRANULARITY": "CACHE_LINE"},
        "recovery": {"log_mib": 256, "full_opens": 3, "empty_opens": 10},
        "probe_tx": 2000,
    },
    # The same files with the cache-line write-backs turned off on both
    # sides, as on a machine whose caches are persistent (eADR): only the
    # fences are left, so the software alone is compared. Throughput only.
    "shm-noflush": {
        "env": {"PMEM_IS_PMEM_FORCE": "1", "PMEM_NO_FLUSH": "1", "PMEM2_FORCE_GRANULARITY": "BYTE"},
        "recovery": None,
        "probe_tx": 2000,
    },
}
QUICK = {"data_mib": 64, "log_mib": 16, "full_opens": 1, "empty_opens": 3, "min_time": 0.05, "probe_tx": 10}


# ---------------------------------------------------------------------------
# discovery and running


def fs_env(fs: str) -> dict:
    env = {k: v for k, v in os.environ.items() if k not in PMEM_VARIABLES}
    env.update(FILE_SYSTEMS[fs]["env"])
    return env


def remove_leftovers(directory: Path, pid: int) -> None:
    """The files of a benchmark process that did not get to delete them."""
    for path in directory.glob(f"*-tx-bench*-{pid}*"):
        try:
            path.unlink()
            print(f"removed {path}, left by the failed process", file=sys.stderr)
        except OSError:
            pass


def run_json(cmd: list[str], env: dict, timeout: float, directory: Path) -> tuple[dict, str | None]:
    """The benchmark's JSON output, and what went wrong (None: nothing)."""
    print(f"running: {' '.join(cmd)}", file=sys.stderr, flush=True)
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        stdout, stderr = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.communicate()
        remove_leftovers(directory, proc.pid)
        return {}, f"did not finish within {timeout:.0f} s"
    for line in stderr.splitlines():
        if "Library was built as DEBUG" not in line:  # Debian's libbenchmark; see bench/README.md
            print(f"larder_tx_bench: {line}", file=sys.stderr)
    if proc.returncode != 0:
        how = (f"killed by signal {-proc.returncode}" if proc.returncode < 0
               else f"exit status {proc.returncode}")
        print(f"larder_tx_bench failed: {how}", file=sys.stderr)
        remove_leftovers(directory, proc.pid)
        return {}, how
    try:
        return json.loads(stdout), None
    except json.JSONDecodeError as e:
        return {}, f"unreadable output ({e})"


def split_name(run_name: str) -> tuple[str, str] | None:
    parts = run_name.split("/")
    if len(parts) >= 2 and parts[1] in LIBS + ("msync", "fdatasync"):
        return parts[0], parts[1]
    return None


UNIT_TO_S = {"ns": 1e-9, "us": 1e-6, "ms": 1e-3, "s": 1.0}


def collect(data: dict, fs: str, results: dict) -> None:
    """Adds one process's numbers to results[fs][(case, lib)]."""
    for b in data.get("benchmarks", []):
        key = split_name(b.get("run_name") or b.get("name", ""))
        if key is None or b.get("run_type", "iteration") != "iteration":
            continue
        cell = results.setdefault(fs, {}).setdefault("/".join(key), {"runs": []})
        if b.get("error_occurred"):
            cell.setdefault("errors", []).append(b.get("error_message", "error"))
            continue
        run = {}
        if key[0] == "tx_recovery":
            for counter in ("open_empty_ms", "open_full_ms", "child_log_ms", "log_mib", "lane_full", "data_mib"):
                if counter in b:
                    run[counter] = b[counter]
        else:
            run["per_second"] = b.get("items_per_second")
            cpu = b.get("cpu_time")
            scale = UNIT_TO_S.get(b.get("time_unit", "ns"))
            if cpu and scale:
                run["per_cpu_second"] = 1.0 / (cpu * scale)
            run["iterations"] = b.get("iterations")
        cell["runs"].append(run)


def count_syncs(binary: Path, fs: str, directory: Path, probe: str, n: int, timeout: float) -> dict:
    """Sync system calls per transaction of `probe`, by call, from strace."""
    with tempfile.TemporaryDirectory(prefix="tx-compare-") as tmp:
        out = Path(tmp) / "strace.txt"
        cmd = ["strace", "-f", "-qq", "-o", str(out), "-e", "trace=" + ",".join(SYNC_CALLS + ("faccessat",)),
               str(binary), f"--dir={directory}", f"--probe={probe}", f"--probe-tx={n}"]
        print(f"running: {' '.join(cmd)}", file=sys.stderr, flush=True)
        try:
            proc = subprocess.run(cmd, env=fs_env(fs), stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                  text=True, timeout=timeout)
        except subprocess.TimeoutExpired:
            return {"error": "timed out"}
        if proc.returncode != 0:
            return {"error": (proc.stderr.strip().splitlines() or ["exit status %d" % proc.returncode])[-1]}
        counts: dict = {}
        inside = False
        for line in out.read_text(errors="replace").splitlines():
            if "probe-begin" in line:
                inside = True
                continue
            if "probe-end" in line:
                inside = False
                continue
            if not inside or "resumed>" in line:
                continue
            m = re.match(r"^\s*(?:\d+\s+)?(\w+)\(", line)
            if m and m.group(1) in SYNC_CALLS:
                counts[m.group(1)] = counts.get(m.group(1), 0) + 1
        return {"per_tx": sum(counts.values()) / n, "by_call": {k: v / n for k, v in sorted(counts.items())},
                "transactions": n}


def file_system_text(directory: Path) -> str:
    try:
        out = subprocess.run(["findmnt", "-n", "-o", "FSTYPE,SOURCE", "--target", str(directory)],
                             capture_output=True, text=True, timeout=10)
        fields = out.stdout.split()
        if out.returncode == 0 and fields:
            return f"{fields[0]} on {fields[1]}" if len(fields) > 1 and fields[1].startswith("/dev/") else fields[0]
    except (OSError, subprocess.SubprocessError):
        pass
    return "unknown file system"


def pmemobj_version() -> str:
    try:
        out = subprocess.run(["pkg-config", "--modversion", "libpmemobj"], capture_output=True, text=True, timeout=10)
        if out.returncode == 0 and out.stdout.strip():
            return out.stdout.strip()
    except (OSError, subprocess.SubprocessError):
        pass
    return "unknown"


# ---------------------------------------------------------------------------
# summarising and formatting


def summarise(results: dict) -> dict:
    """{fs: {cell: {"median": ..., "ratios": ...}}} next to the runs."""
    for fs, cells in results.items():
        for name, cell in cells.items():
            if "runs" not in cell:  # the per-round ratios, added below
                continue
            runs = cell["runs"]
            if name.startswith("tx_recovery/"):
                for counter in ("open_empty_ms", "open_full_ms", "child_log_ms", "log_mib", "lane_full"):
                    cell[counter] = median([r.get(counter) for r in runs])
            else:
                values = [r.get("per_second") for r in runs if r.get("per_second")]
                cell["median"] = median(values)
                cell["median_cpu"] = median([r.get("per_cpu_second") for r in runs])
                if len(values) > 1 and cell["median"]:
                    cell["spread"] = (max(values) - min(values)) / cell["median"]
        for case, _ in THROUGHPUT_CASES:
            a = cells.get(f"{case}/larder", {}).get("runs", [])
            b = cells.get(f"{case}/pmemobj", {}).get("runs", [])
            ratios = [x["per_second"] / y["per_second"] for x, y in zip(a, b)
                      if x.get("per_second") and y.get("per_second")]
            if ratios:
                cells.setdefault(f"{case}/ratio", {})["per_round"] = ratios
    return results


def fmt_rate(v: float | None) -> str:
    if v is None:
        return "—"
    if v >= 1e6:
        return f"{v / 1e6:.2f} M"
    if v >= 1e3:
        return f"{v / 1e3:.1f} k"
    return f"{v:.0f}"


def fmt_ms(v: float | None) -> str:
    if v is None:
        return "—"
    return f"{v:.2f}" if v < 10 else f"{v:,.0f}"


def fmt_ratio(v: float | None) -> str:
    return "n/a" if v is None else f"{v:.2f}×"


def fmt_syncs(s: dict | None) -> str:
    if not s:
        return "n/a"
    if "error" in s:
        return f"error ({s['error']})"
    if not s["by_call"]:
        return "0"
    parts = ", ".join(f"{k} {v:g}" for k, v in s["by_call"].items())
    return f"{s['per_tx']:g} ({parts})"


def verdict(ok: bool | None) -> str:
    return "n/a" if ok is None else ("**met**" if ok else "**not met**")


def fs_heading(fs: str, ctx: dict, directory: Path) -> str:
    ctx = {**FILE_SYSTEMS[fs]["env"], **{k: v for k, v in ctx.items() if v}}
    if fs == "disk":
        return (f"**Disk: `{directory}`, {file_system_text(directory)}** — real msync/fdatasync "
                "(pmemobj: libpmem's msync path, larder: its file persistence domain).")
    if fs == "shm-noflush":
        return (f"**Emulated persistent memory without cache-line write-backs (eADR-like): `{directory}`, "
                f"{file_system_text(directory)}** — pmemobj with PMEM_IS_PMEM_FORCE=1 PMEM_NO_FLUSH=1, larder "
                f"with PMEM2_FORCE_GRANULARITY={ctx.get('PMEM2_FORCE_GRANULARITY') or '?'}: fences only, so "
                "this compares the software alone.")
    return (f"**Emulated persistent memory: `{directory}`, {file_system_text(directory)}** — pmemobj with "
            f"PMEM_IS_PMEM_FORCE={ctx.get('PMEM_IS_PMEM_FORCE') or '?'}, larder with "
            f"PMEM2_FORCE_GRANULARITY={ctx.get('PMEM2_FORCE_GRANULARITY') or '?'}: both persist with "
            "cache-line flushes and fences, no system calls.")


def throughput_section(fs: str, cells: dict, syncs: dict, ctx: dict, directory: Path) -> tuple[list[str], list]:
    lines = [fs_heading(fs, ctx, directory), ""]
    if fs == "disk":
        parts = []
        for call, what in (("msync", "msync of one page"), ("fdatasync", "fdatasync")):
            rates = [r["per_second"] for r in cells.get(f"sync_cost/{call}", {}).get("runs", []) if r.get("per_second")]
            if rates:
                text = f"{what} {1e6 / statistics.median(rates):,.0f} µs"
                if len(rates) > 1:
                    text += f" (rounds {1e6 / max(rates):,.0f}–{1e6 / min(rates):,.0f} µs)"
                parts.append(text)
        if parts:
            lines += ["One sync on this file system, 8 bytes written and then synced (median of the rounds' "
                      "means): " + "; ".join(parts) + ". It varies with the other I/O on the machine's disk, "
                      "which is why the per-round ratios, both sides measured in one process, are steadier "
                      "than the absolute numbers.", ""]
    by_cpu = fs != "disk"
    header = ["transaction", "larder tx/s", "pmemobj tx/s", "larder / pmemobj, ratio of medians",
              "per-round ratios: median (range)"]
    header += ["ratio by CPU time"] if by_cpu else []
    header += [f"target ≥ {TARGET_THROUGHPUT_RATIO:g}×", "syncs per tx: larder", "syncs per tx: pmemobj"]
    lines.append("| " + " | ".join(header) + " |")
    lines.append("|" + "|".join(["---"] + ["---:"] * (5 if by_cpu else 4) + ["---"] * 3) + "|")
    verdicts = []
    for case, label in THROUGHPUT_CASES:
        la = cells.get(f"{case}/larder", {})
        pm = cells.get(f"{case}/pmemobj", {})
        ratio = la.get("median") / pm["median"] if la.get("median") and pm.get("median") else None
        per_round = cells.get(f"{case}/ratio", {}).get("per_round", [])
        paired = statistics.median(per_round) if per_round else None
        rng = (f"{paired:.2f}× ({min(per_round):.2f}–{max(per_round):.2f}×)" if len(per_round) > 1
               else fmt_ratio(paired))
        judged = paired if paired is not None else ratio
        ok = None if judged is None else judged >= TARGET_THROUGHPUT_RATIO
        verdicts.append((fs, case, judged, ok))
        row = [f"`{case}`: {label}",
               "error" if la.get("errors") and not la.get("median") else fmt_rate(la.get("median")),
               "error" if pm.get("errors") and not pm.get("median") else fmt_rate(pm.get("median")),
               fmt_ratio(ratio), rng]
        if by_cpu:
            cpu_ratio = (la["median_cpu"] / pm["median_cpu"]
                         if la.get("median_cpu") and pm.get("median_cpu") else None)
            row.append(fmt_ratio(cpu_ratio))
        row += [verdict(ok),
               fmt_syncs(syncs.get(f"{case.removeprefix('tx_')}/larder")),
               fmt_syncs(syncs.get(f"{case.removeprefix('tx_')}/pmemobj"))]
        lines.append("| " + " | ".join(row) + " |")
    lines.append("")
    if fs == "disk":
        bounds = []
        for case, _ in THROUGHPUT_CASES:
            la = syncs.get(f"{case.removeprefix('tx_')}/larder") or {}
            pm = syncs.get(f"{case.removeprefix('tx_')}/pmemobj") or {}
            if la.get("per_tx") and pm.get("per_tx"):
                bounds.append(f"`{case}` {pm['per_tx']:g} / {la['per_tx']:g} = {pm['per_tx'] / la['per_tx']:.2f}×")
        if bounds:
            lines += ["When every sync costs the same and the rest is negligible, the throughput ratio is the ratio "
                      "of syncs per transaction, pmemobj / larder: " + "; ".join(bounds) + ".", ""]
    return lines, verdicts


def recovery_section(results: dict, dirs: dict) -> tuple[list[str], list]:
    rows = []
    verdicts = []
    data_mib = None
    for fs, cells in results.items():
        la = cells.get("tx_recovery/larder")
        pm = cells.get("tx_recovery/pmemobj")
        if not la and not pm:
            continue
        la = la or {}
        pm = pm or {}
        for c in (la, pm):
            for run in c.get("runs", []):
                data_mib = data_mib or run.get("data_mib")

        def cell(c, key):
            if c.get("errors") and c.get(key) is None:
                return "error"
            return fmt_ms(c.get(key))

        logged = []
        for name, c in (("larder", la), ("pmemobj", pm)):
            if c.get("log_mib") is not None:
                logged.append(f"{name} {c['log_mib']:.0f}" + (" (lane full)" if name == "larder" and c.get("lane_full") else ""))
        runs = max(len(la.get("runs", [])), len(pm.get("runs", [])))
        rows.append([f"{fs} (`{dirs[fs]}`)", cell(la, "open_empty_ms"), cell(pm, "open_empty_ms"),
                     cell(la, "open_full_ms"), cell(pm, "open_full_ms"), ", ".join(logged) or "—",
                     f"{fmt_ms(la.get('child_log_ms'))} / {fmt_ms(pm.get('child_log_ms'))}", str(runs)])
        e = la.get("open_empty_ms")
        verdicts.append((fs, e, None if e is None or data_mib != 1024 else e <= TARGET_RECOVERY_EMPTY_MS))
    if not rows:
        return [], []
    size = "1 GiB" if data_mib == 1024 else f"{data_mib or 0:g} MiB"
    lines = [f"**Recovery**: time to open (ms, median; lower is better) a heap or pool holding {size} of data in "
             "64 KiB blocks, after a clean close (empty log) and after a child process logged and overwrote "
             "that many MiB of the data in one transaction (64 KiB snapshots) and `_exit`ed without committing, "
             "so that the open rolls it back (the data is checked afterwards). The files are in the page cache.",
             "",
             "| file system | larder, empty log | pmemobj, empty log | larder, crashed tx | pmemobj, crashed tx "
             "| MiB logged | child's logging time, ms (larder / pmemobj) | rounds |",
             "|---|---:|---:|---:|---:|---|---:|---:|"]
    lines += ["| " + " | ".join(r) + " |" for r in rows]
    lines.append("")
    return lines, verdicts


def render(results: dict, syncs: dict, ctxs: dict, dirs: dict, info: dict, args, elapsed: float) -> str:
    head = (f"Measured {info['date']} on {info['cpu']}, {info['cores']} cores, Linux {info['kernel']}; "
            f"larder {info['revision']}, libpmemobj {pmemobj_version()}; median of {args.reps} "
            f"round{'s' if args.reps != 1 else ''}, each a fresh process per setting running larder "
            f"and pmemobj side by side (their order alternating; recovery in a process per library); "
            f"every throughput benchmark at least "
            f"{args.min_time:g} s. The run took {elapsed:.0f} s; load average {args.load_before} before it, "
            f"{args.load_after or '?'} after (on {info['cores']} cores: other work on the machine slows both sides).")
    if args.quick:
        head += " **Quick run with small settings: not representative.**"
    lines = [head, ""]
    tp_verdicts = []
    for fs in results:
        part, v = throughput_section(fs, results[fs], syncs.get(fs, {}), ctxs.get(fs, {}), dirs[fs])
        lines += part
        tp_verdicts += v
    rec_lines, rec_verdicts = recovery_section(results, dirs)
    lines += rec_lines
    if tp_verdicts:
        judged = [v for v in tp_verdicts if v[0] != "shm-noflush"] or tp_verdicts
        lines.append("Targets: larder ≥ 3× pmemobj in transactions per second — " + "; ".join(
            f"{fs} `{case}` {fmt_ratio(r)}, {verdict(ok)}" for fs, case, r, ok in judged) + ".")
        lines.append("")
    if rec_verdicts:
        lines.append(f"Target: larder opens a 1 GiB heap with an empty log in ≤ {TARGET_RECOVERY_EMPTY_MS:g} ms — "
                     + "; ".join(f"{fs} {fmt_ms(v)} ms, {verdict(ok)}" for fs, v, ok in rec_verdicts) + ".")
        lines.append("")
    notes = []
    spreads = [(c["spread"], fs, name) for fs, cells in results.items() for name, c in cells.items()
               if c.get("spread") is not None and not name.startswith("sync_cost")]
    if spreads:
        worst, fs, name = max(spreads)
        notes.append(f"* Largest spread between the rounds of one throughput cell, (max − min) / median: "
                     f"{worst * 100:.0f} % ({fs} `{name}`); the machine is shared, so read the ratios.")
    notes.append("* The targets are judged on the median of the per-round ratios (larder and pmemobj measured "
                 "in the same process, seconds apart); the ratio of the medians is given next to it.")
    if any(fs != "disk" for fs in results):
        notes.append("* \"Ratio by CPU time\" (emulated pmem): the same ratio from transactions per second of the "
                     "benchmark thread's CPU time, which other load on the machine disturbs less than the wall "
                     "clock; the targets are judged on the wall-clock ratio.")
    notes.append("* Syncs per transaction: counted with `strace -f` over `larder_tx_bench --probe=CASE "
                 "--probe-tx=N` (N transactions between two marker calls, after three warm-up ones), "
                 "in a separate run; on emulated pmem 0 means that no sync system call was made.")
    for fs, cells in results.items():
        for name, c in cells.items():
            for e in sorted(set(c.get("errors", []))):
                notes.append(f"* {fs} `{name}` failed: {e}")
    lines += notes
    return "\n".join(lines) + "\n"


def run_threads(binary: Path, args, info: dict) -> str:
    """tx_update64_threads in --reps fresh processes: the table, in Markdown."""
    rates: dict = {}  # (heap, threads) -> commits per second, one per round
    raw = []
    started = time.monotonic()
    load_before = load_average()
    for r in range(args.reps):
        cmd = [str(binary), "--benchmark_format=json", f"--dir={Path(args.disk_dir).resolve()}",
               f"--benchmark_min_time={args.min_time:g}", "--benchmark_filter=^tx_update64_threads/"]
        data, problem = run_json(cmd, fs_env("disk"), args.timeout, Path(args.disk_dir))
        raw.append({"round": r, "cmd": cmd, "output": data, "problem": problem})
        if problem is not None:
            sys.exit(f"larder_tx_bench failed: {problem}")
        for b in data.get("benchmarks", []):
            m = THREADS_RUN.match(b.get("name", ""))
            if m is None or b.get("run_type", "iteration") != "iteration":
                continue
            if b.get("error_occurred"):
                sys.exit(f"{b['name']}: {b.get('error_message', 'error')}")
            rates.setdefault((m.group(1), int(m.group(2))), []).append(b["items_per_second"])
    elapsed = time.monotonic() - started
    lines = [f"Measured {info['date']} on {info['cpu']}, {info['cores']} cores, Linux {info['kernel']}; "
             f"larder {info['revision']}; median of {args.reps} round{'s' if args.reps != 1 else ''} "
             f"(a fresh process each), every cell at least {args.min_time:g} s; the file heap in "
             f"{Path(args.disk_dir).resolve()} ({file_system_text(Path(args.disk_dir))}). The run took "
             f"{elapsed:.0f} s; load average {load_before} before it, {load_average()} after.", "",
             "| heap | 1 thread | 2 threads | 4 threads | 4 threads / 1 thread |",
             "|---|---:|---:|---:|---:|"]
    verdicts = []
    spread = []
    for heap in ("file", "shm"):
        med = {n: median(rates.get((heap, n), [])) for n in (1, 2, 4)}
        ratio = med[4] / med[1] if med[1] and med[4] else None
        lines.append(f"| {heap} | " + " | ".join(fmt_rate(med[n]) for n in (1, 2, 4)) + f" | {fmt_ratio(ratio)} |")
        if heap == "file":
            verdicts.append((ratio, ratio is not None and ratio >= TARGET_THREADS_RATIO))
        rounds = [four / one for one, four in zip(rates.get((heap, 1), []), rates.get((heap, 4), [])) if one]
        if rounds:
            spread.append(f"{heap} {min(rounds):.2f}–{max(rounds):.2f}× (median {median(rounds):.2f}×)")
    lines.append("")
    if spread:
        lines.append("4 threads / 1 thread in each round (both in the same process, seconds apart): "
                     + "; ".join(spread) + ".")
        lines.append("")
    for ratio, ok in verdicts:
        lines.append(f"Target: 4 threads ≥ {TARGET_THREADS_RATIO:g}× one thread's commits per second on the file "
                     f"heap — {fmt_ratio(ratio)}, {verdict(ok)}.")
    if args.json:
        out = Path(args.json)
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(json.dumps({"machine": info, "rates": {f"{h}/{n}": v for (h, n), v in rates.items()},
                                   "raw": raw}, indent=2, default=str) + "\n", encoding="utf-8")
    return "\n".join(lines) + "\n"


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--build-dir", default="build", help="CMake build folder holding bench/larder_tx_bench")
    p.add_argument("--bench", default=None, help="path of larder_tx_bench (overrides --build-dir)")
    p.add_argument("--reps", type=int, default=None, help="rounds; the tables show medians (default 5, 1 with --quick)")
    p.add_argument("--recovery-reps", type=int, default=3,
                   help="rounds that include the recovery benchmark (default 3; slow on a disk)")
    p.add_argument("--fs", default="disk,shm,shm-noflush",
                   help="what to run, comma-separated: disk, shm, shm-noflush (emulated pmem without cache-line "
                        "write-backs) (default all three)")
    p.add_argument("--disk-dir", default="/var/tmp", help="folder on a disk file system (default /var/tmp)")
    p.add_argument("--shm-dir", default="/dev/shm", help="folder on tmpfs for emulated pmem (default /dev/shm)")
    p.add_argument("--min-time", type=float, default=None,
                   help="--benchmark_min_time of each throughput benchmark, seconds (default 1)")
    p.add_argument("--data-mib", type=int, default=None, help="data in the recovery heap and pool (default 1024)")
    p.add_argument("--disk-log-mib", type=int, default=None,
                   help="most a crashed transaction logs on the disk (default 64)")
    p.add_argument("--shm-log-mib", type=int, default=None,
                   help="most a crashed transaction logs on shm (default 256)")
    p.add_argument("--no-recovery", action="store_true", help="leave out the recovery benchmark")
    p.add_argument("--no-strace", action="store_true", help="do not count syncs per transaction")
    p.add_argument("--quick", action="store_true", help="smoke test: small settings, one round; not representative")
    p.add_argument("--write-doc", metavar="PATH", default=None,
                   help="replace the text between the tx-table markers in PATH")
    p.add_argument("--json", metavar="PATH", default=str(SCRIPT_DIR / "results" / "tx_latest.json"),
                   help="where to save the raw output and medians as JSON (default bench/results/tx_latest.json; "
                        "'' for nowhere)")
    p.add_argument("--timeout", type=float, default=3600, help="seconds one process may take")
    p.add_argument("--threads", action="store_true",
                   help="run only the concurrent-transaction benchmark (tx_update64_threads) and print its table")
    p.add_argument("--from-json", metavar="PATH", default=None,
                   help="do not run anything: print (and with --write-doc write) the tables of an earlier run "
                        "saved with --json")
    args = p.parse_args()

    if args.from_json:
        saved = json.loads(Path(args.from_json).read_text(encoding="utf-8"))
        old = saved.get("args", {})
        for key in ("reps", "min_time", "quick", "load_before", "load_after"):
            setattr(args, key, old.get(key))
        dirs = {"disk": Path(old.get("disk_dir", "/var/tmp")), "shm": Path(old.get("shm_dir", "/dev/shm")),
                "shm-noflush": Path(old.get("shm_dir", "/dev/shm"))}
        results = summarise(saved["results"])
        body = render(results, saved.get("syncs", {}), saved.get("contexts", {}), dirs, saved["machine"], args,
                      saved.get("elapsed_s", 0.0))
        print(body)
        if args.write_doc:
            write_between_markers(Path(args.write_doc), MARKERS, body, heading=SECTION_HEADING)
        return 0

    args.reps = args.reps if args.reps is not None else (1 if args.quick else 5)
    args.min_time = args.min_time if args.min_time is not None else (QUICK["min_time"] if args.quick else 1.0)
    if args.reps < 1:
        p.error("--reps must be at least 1")
    file_systems = [f.strip() for f in args.fs.split(",") if f.strip()]
    for f in file_systems:
        if f not in FILE_SYSTEMS:
            p.error(f"unknown file system {f!r} (want disk, shm or shm-noflush)")
    dirs = {"disk": Path(args.disk_dir).resolve(), "shm": Path(args.shm_dir).resolve(),
            "shm-noflush": Path(args.shm_dir).resolve()}
    for f in file_systems:
        if not dirs[f].is_dir():
            sys.exit(f"{dirs[f]} is not a folder")
    binary = Path(args.bench) if args.bench else \
        find_in_build(resolve_build_dir(args.build_dir), "larder_tx_bench", ["bench", "."])
    if binary is None or not binary.is_file():
        sys.exit(f"larder_tx_bench not found under {args.build_dir}; build it with -DLARDER_BUILD_BENCH=ON "
                 "(target larder_tx_bench) or pass --bench")
    if args.threads:
        if args.json == str(SCRIPT_DIR / "results" / "tx_latest.json"):
            args.json = str(SCRIPT_DIR / "results" / "tx_threads_latest.json")
        body = run_threads(binary, args, machine_info())
        print(body)
        if args.write_doc:
            write_between_markers(Path(args.write_doc), THREADS_MARKERS, body, heading=THREADS_HEADING)
        return 0
    strace = None if args.no_strace else shutil.which("strace")
    if not args.no_strace and strace is None:
        print("note: strace not found; syncs per transaction are not counted", file=sys.stderr)

    info = machine_info()
    args.load_before = load_average()
    started = time.monotonic()
    results: dict = {f: {} for f in file_systems}
    ctxs: dict = {}
    raw: list = []

    def run_one(fs: str, r: int, cmd: list[str], what: list[str]) -> dict:
        data, problem = run_json(cmd, fs_env(fs), args.timeout, dirs[fs])
        raw.append({"round": r, "fs": fs, "cmd": cmd, "output": data, "problem": problem})
        if problem is not None:
            for name in what:
                cell = results[fs].setdefault(name, {"runs": []})
                cell.setdefault("errors", []).append(f"the process failed ({problem})")
            return {}
        ctxs.setdefault(fs, data.get("context", {}))
        collect(data, fs, results)
        return data

    # Throughput and sync cost in one process per round and file system,
    # larder and pmemobj side by side. Recovery in a process per library, so
    # that a crash of one side costs only its own numbers; pmemobj's crashed
    # transaction logs as much as larder's did in the same round.
    for r in range(args.reps):
        order = file_systems if r % 2 == 0 else list(reversed(file_systems))
        for fs in order:
            common = [str(binary), "--benchmark_format=json", f"--dir={dirs[fs]}"]
            cmd = common + [f"--benchmark_min_time={args.min_time:g}",
                            "--benchmark_filter=^(tx_update64|tx_alloc_link64|sync_cost)/"]
            if r % 2 == 1:
                cmd.append("--pmemobj-first")
            run_one(fs, r, cmd, [f"{c}/{lib}" for c, _ in THROUGHPUT_CASES for lib in LIBS])
            if args.no_recovery or r >= args.recovery_reps or FILE_SYSTEMS[fs]["recovery"] is None:
                continue
            rec = dict(FILE_SYSTEMS[fs]["recovery"])
            if fs == "disk" and args.disk_log_mib:
                rec["log_mib"] = args.disk_log_mib
            if fs == "shm" and args.shm_log_mib:
                rec["log_mib"] = args.shm_log_mib
            data_mib = args.data_mib or 1024
            if args.quick:
                rec.update({k: QUICK[k] for k in ("log_mib", "full_opens", "empty_opens")})
                data_mib = args.data_mib or QUICK["data_mib"]
            log_mib = rec["log_mib"]
            for lib in LIBS:
                cmd = common + [f"--benchmark_filter=^tx_recovery/{lib}/", f"--data-mib={data_mib}",
                                f"--log-mib={log_mib}", f"--full-opens={rec['full_opens']}",
                                f"--empty-opens={rec['empty_opens']}"]
                data = run_one(fs, r, cmd, [f"tx_recovery/{lib}"])
                for b in data.get("benchmarks", []):
                    if lib == "larder" and b.get("lane_full") and b.get("log_mib"):
                        log_mib = max(1, int(b["log_mib"]))  # what larder's lane held
    summarise(results)

    syncs: dict = {}
    if strace:
        for fs in file_systems:
            n = QUICK["probe_tx"] if args.quick else FILE_SYSTEMS[fs]["probe_tx"]
            for case, _ in THROUGHPUT_CASES:
                for lib in LIBS:
                    probe = f"{case.removeprefix('tx_')}/{lib}"
                    syncs.setdefault(fs, {})[probe] = count_syncs(binary, fs, dirs[fs], probe, n, args.timeout)
    elapsed = time.monotonic() - started
    args.load_after = load_average()

    body = render(results, syncs, ctxs, dirs, info, args, elapsed)
    print(body)
    if args.json:
        out = Path(args.json)
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(json.dumps({"machine": info, "args": vars(args), "elapsed_s": elapsed,
                                   "results": results, "syncs": syncs, "contexts": ctxs, "raw": raw},
                                  indent=2, default=str) + "\n", encoding="utf-8")
    if args.write_doc:
        write_between_markers(Path(args.write_doc), MARKERS, body, heading=SECTION_HEADING)
    return 0


if __name__ == "__main__":
    sys.exit(main())
