#!/usr/bin/env python3
"""Object stores side by side: Redis over a Unix socket (plain and pipelined),
memcached, Lightning (where bench/lightning/build.sh built it) and larder's
store, with 1 and 2 client processes.

What it runs: build/bench/larder_store_compare_bench (bench/store_bench.cpp) --repeats
times over every backend; each repeat measures, against a freshly started
store per part, the latency of single operations (create+seal or SET of
1 KiB, get, release, delete: median and p99 over all clients) and the
throughput of YCSB workloads A-F (bench/ycsb.hpp) for 100 B and 1 KiB values.
Cells are the median over the repeats; the ratios are what to read, as the
machine is shared and noisy.

What it writes
  Markdown tables (stdout, and with --write-doc PATH between
  <!-- store-table:begin --> and <!-- store-table:end -->, a "## Object store"
  section appended where the markers are missing), the raw runs as JSON
  (--json, default bench/results/store_latest.json) and a plot (--plot,
  default docs/store_bench.png; skipped with a note without matplotlib).
  A backend that is not built or not installed is left out with the reason.
  With larder's store measured, a table of issue 11's targets follows, each
  with its number and met / not met.

Usage (from the repository root, after a Release build with
-DLARDER_BUILD_BENCH=ON, and -DLARDER_BENCH_LIGHTNING_DIR=... for Lightning):
    python3 bench/store_compare.py --build-dir build --write-doc docs/PERFORMANCE.md
    python3 bench/store_compare.py --records 200 --operations 400 --latency-ops 200 --repeats 1 --no-plot  # smoke
    python3 bench/store_compare.py --from-json bench/results/store_latest.json   # tabulate and plot again
"""

from __future__ import annotations

import argparse
import json
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

MARKERS = ("<!-- store-table:begin -->", "<!-- store-table:end -->")
SECTION_HEADING = "## Object store"
BACKENDS = ("larder", "lightning", "redis", "redis-pipelined", "memcached")
OBJECT_OPS = (("put", "create+seal / SET"), ("get", "get"), ("release", "release"), ("delete", "delete"))
READ_HEAVY = "BCD"
NO_INSERTS = "ABCF"  # every record these read or write was loaded before the run
SKIPPED = 77  # the exit status CTest's SKIP_RETURN_CODE is told
# Lightning's own numbers on the paper's machine (VLDB 2022, MPK off), the
# issue's latency targets.
LIGHTNING_PAPER_NS = {"put": 420.0, "get": 12.0, "delete": 78.0}


def run_driver(binary: Path, opts, out: Path) -> dict:
    cmd = [str(binary), f"--backends={opts.backends}", f"--clients={opts.clients}", f"--records={opts.records}",
           f"--operations={opts.operations}", f"--latency-ops={opts.latency_ops}",
           f"--value-sizes={opts.value_sizes}", f"--workloads={opts.workloads}", f"--pipeline={opts.pipeline}",
           f"--out={out}"]
    print(f"running: {' '.join(cmd)}", file=sys.stderr, flush=True)
    # The driver reports its progress on stderr; Lightning's client prints to stdout.
    proc = subprocess.run(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    if proc.returncode != 0:
        raise RuntimeError(f"larder_store_compare_bench failed ({proc.returncode}): {proc.stderr.strip()[-2000:]}")
    return json.loads(out.read_text(encoding="utf-8"))


# ---------------------------------------------------------------------------
# summarising: the median over the repeats of every cell


def summarize(repeats: list[dict]) -> dict:
    """{backend: {"version", "skipped", "errors", "latency": {(clients, op): {median_ns, p99_ns}},
    "ycsb": {(workload, size, clients): {ops_per_s, misses}}}}"""
    out = {}
    for rep in repeats:
        for b in rep["backends"]:
            s = out.setdefault(b["name"], {"version": b.get("version"), "skipped": b.get("skipped"), "errors": [],
                                           "latency": {}, "ycsb": {}})
            for run in b.get("runs", []):
                c = run["clients"]
                if "error" in run:
                    s["errors"].append(f"{c} client(s): {run['error']}")
                latency = run.get("latency") or {}
                if "error" in latency:
                    s["errors"].append(f"latency, {c} client(s): {latency['error']}")
                for op, _ in OBJECT_OPS:
                    if isinstance(latency.get(op), dict):
                        s["latency"].setdefault((c, op), []).append(latency[op])
                for y in run.get("ycsb", []):
                    where = f"YCSB {y['workload']}, {y['value_size']} B, {c} client(s)"
                    if "error" in y:
                        s["errors"].append(f"{where}: {y['error']}")
                    else:
                        if y["misses"] and y["workload"] in NO_INSERTS:
                            s["errors"].append(f"{where}: {y['misses']} operations found no record")
                        s["ycsb"].setdefault((y["workload"], y["value_size"], c), []).append(y)
    for s in out.values():
        s["latency"] = {k: {"median_ns": median([x["median_ns"] for x in v]),
                            "p99_ns": median([x["p99_ns"] for x in v])} for k, v in s["latency"].items()}
        s["ycsb"] = {k: {"ops_per_s": median([x["ops_per_s"] for x in v]), "misses": sum(x["misses"] for x in v),
                         "ops": sum(x["ops"] for x in v)} for k, v in s["ycsb"].items()}
    return out


def measured(summary: dict) -> list[str]:
    return [b for b in BACKENDS if b in summary and not summary[b]["skipped"]]


def throughput(summary: dict, backend: str, key: tuple) -> float | None:
    cell = summary.get(backend, {}).get("ycsb", {}).get(key)
    return cell["ops_per_s"] if cell else None


def ratio(a, b):
    return a / b if a and b else None


# ---------------------------------------------------------------------------
# formatting


def fmt_ns(ns) -> str:
    if ns is None:
        return "—"
    return f"{ns:.0f} ns" if ns < 1000 else f"{ns / 1000:.2f} µs" if ns < 100_000 else f"{ns / 1000:.0f} µs"


def fmt_rate(r) -> str:
    if r is None:
        return "—"
    return f"{r / 1e6:.2f} M" if r >= 1e6 else f"{r / 1e3:.0f} k"


def fmt_x(r) -> str:
    return "—" if r is None else f"{r:.2f}×" if r < 10 else f"{r:.1f}×"


def options_of(result: dict) -> dict:
    return result["repeats"][0]["options"]


def header(result: dict) -> list[str]:
    m, o, t = result["machine"], options_of(result), result["repeats"][0]["timer"]
    lines = [f"Measured {m['date']} on {m['cpu']}, {m['cores']} cores, Linux {m['kernel']}; larder {m['revision']}; "
             f"median of {len(result['repeats'])} runs (load average {result['load_before']} before, "
             f"{result['load_after']} after; the run took {result['elapsed_s']:.0f} s). {o['records']:,} records "
             f"loaded per workload, {o['operations']:,} operations shared by the client processes, a fresh store for "
             f"every workload; {o['latency_ops']:,} objects of {o['latency_value_size']} B per client for the "
             f"latencies, each operation timed on its own ({t['source']}, whose own cost, "
             f"{t['overhead_ns']:.0f} ns, is included). Redis pipelined: {o['pipeline']} commands per round trip."]
    summary = result["summary"]
    for b in BACKENDS:
        s = summary.get(b)
        if s is None:
            continue
        if s["skipped"]:
            lines.append(f"* {b}: not measured: {s['skipped']}.")
        else:
            lines.append(f"* {b}: {s['version']}.")
        for e in sorted(set(s["errors"])):
            lines.append(f"  * failed: {e}")
    return lines


def latency_table(result: dict) -> list[str]:
    summary = result["summary"]
    cols = " | ".join(f"{label} median | p99" for _, label in OBJECT_OPS)
    lines = [f"| store | clients | {cols} |", "|---|---:|" + "---:|---:|" * len(OBJECT_OPS)]
    for b in measured(summary):
        for c in options_of(result)["clients"]:
            cells = [summary[b]["latency"].get((c, op)) for op, _ in OBJECT_OPS]
            if not any(cells):
                continue
            text = " | ".join(f"{fmt_ns(x['median_ns'])} | {fmt_ns(x['p99_ns'])}" if x else "— | —" for x in cells)
            lines.append(f"| {b} | {c} | {text} |")
    return lines


def throughput_tables(result: dict) -> list[str]:
    summary = result["summary"]
    names = measured(summary)
    ratio_cols = [(b, "redis") for b in names if b != "redis" and "redis" in names]
    ratio_cols += [("larder", "lightning")] if {"larder", "lightning"} <= set(names) else []
    lines = []
    for size in options_of(result)["value_sizes"]:
        lines += ["", f"YCSB throughput, {size} B values (operations per second, all clients together):", "",
                  "| workload | clients | " + " | ".join(names)
                  + "".join(f" | {b} ÷ {r}" for b, r in ratio_cols) + " |",
                  "|---|---:|" + "---:|" * (len(names) + len(ratio_cols))]
        for w in options_of(result)["workloads"]:
            for c in options_of(result)["clients"]:
                key = (w, size, c)
                rates = [fmt_rate(throughput(summary, b, key)) for b in names]
                ratios = [fmt_x(ratio(throughput(summary, b, key), throughput(summary, r, key))) for b, r in ratio_cols]
                lines.append(f"| {w} | {c} | " + " | ".join(rates + ratios) + " |")
    return lines


def scaling_table(result: dict) -> list[str]:
    summary, o = result["summary"], options_of(result)
    if not {1, 2} <= set(o["clients"]):
        return []
    names = measured(summary)
    lines = ["", "Two client processes against one (aggregate throughput, 2 ÷ 1) on the read-heavy workloads:", "",
             "| workload | value | " + " | ".join(names) + " |", "|---|---:|" + "---:|" * len(names)]
    for w in (w for w in o["workloads"] if w in READ_HEAVY):
        for size in o["value_sizes"]:
            cells = [fmt_x(ratio(throughput(summary, b, (w, size, 2)), throughput(summary, b, (w, size, 1))))
                     for b in names]
            lines.append(f"| {w} | {size} B | " + " | ".join(cells) + " |")
    return lines


def misses_note(result: dict) -> list[str]:
    parts = []
    for b in measured(result["summary"]):
        for (w, size, c), cell in sorted(result["summary"][b]["ycsb"].items()):
            if cell["misses"]:
                parts.append(f"{b} {w}/{size} B/{c} clients {cell['misses'] / cell['ops'] * 100:.1f} %")
    if not parts:
        return ["", "Every read found its record."]
    return ["", "Operations that found no record (with 2 clients, a read of the newest record may overtake the other "
            "client's insert of one just below it): " + "; ".join(parts) + "."]


def lightning_note(result: dict) -> list[str]:
    lat = result["summary"].get("lightning", {}).get("latency", {})
    if not lat:
        return []
    cells = [f"{label} {fmt_ns(lat[(1, op)]['median_ns'])} here against {fmt_ns(LIGHTNING_PAPER_NS[op])} in the paper"
             for op, label in OBJECT_OPS if op in LIGHTNING_PAPER_NS and (1, op) in lat]
    return ["", "Lightning, one client: " + "; ".join(cells)
            + " (the issue's latency targets are the paper's numbers)."]


def targets_table(result: dict) -> list[str]:
    """Issue 11's targets for larder's store, each with its number and
    whether it is met: every operation no slower than Lightning (measured in
    this run, and the paper's numbers), YCSB at least 10x plain Redis on every
    workload, and 2 client processes at least 1.8x one on the read-heavy
    workloads."""
    summary, o = result["summary"], options_of(result)
    if "larder" not in measured(summary):
        return []
    lat = summary["larder"]["latency"]
    lightning = summary.get("lightning", {}).get("latency", {})
    rows = []  # (target, measured, met: True, False or None where there is nothing to compare with)
    for c in o["clients"]:
        for op, label in OBJECT_OPS:
            label = label.split(" / ")[0]
            mine = (lat.get((c, op)) or {}).get("median_ns")
            if mine is None:
                continue
            theirs = (lightning.get((c, op)) or {}).get("median_ns")
            r = ratio(mine, theirs)
            rows.append((f"{label}, {c} client(s): ≤ Lightning in this run",
                         f"{fmt_ns(mine)} against {fmt_ns(theirs)} ({fmt_x(r)})", None if r is None else r <= 1))
            if c == 1 and op in LIGHTNING_PAPER_NS:
                paper = LIGHTNING_PAPER_NS[op]
                rows.append((f"{label}, 1 client: ≤ Lightning's published {fmt_ns(paper)}",
                             f"{fmt_ns(mine)} ({fmt_x(mine / paper)})", mine <= paper))
    for w in o["workloads"]:
        cells = [(ratio(throughput(summary, "larder", (w, size, c)), throughput(summary, "redis", (w, size, c))),
                  size, c) for size in o["value_sizes"] for c in o["clients"]]
        cells = [x for x in cells if x[0] is not None]
        if cells:
            low, size, c = min(cells)
            rows.append((f"YCSB {w} ≥ 10× Redis (every value size and client count)",
                         f"smallest {fmt_x(low)} ({size} B, {c} client(s))", low >= 10))
    if {1, 2} <= set(o["clients"]):
        for w in (w for w in o["workloads"] if w in READ_HEAVY):
            for size in o["value_sizes"]:
                r = ratio(throughput(summary, "larder", (w, size, 2)), throughput(summary, "larder", (w, size, 1)))
                rows.append((f"YCSB {w}, {size} B: 2 processes ≥ 1.8× one", fmt_x(r), None if r is None else r >= 1.8))
    verdict = {True: "met", False: "**not met**", None: "—"}
    judged = [ok for _, _, ok in rows if ok is not None]
    return (["", "Targets (issue 11) for larder's store:", "", "| target | measured | met |", "|---|---|---|"]
            + [f"| {t} | {m} | {verdict[ok]} |" for t, m, ok in rows]
            + ["", f"{sum(judged)} of {len(judged)} targets met in this run. Two client processes can double the "
                   f"throughput only on two otherwise idle cores: the load averages above say how far the machine "
                   f"was from that."])


def tables(result: dict) -> str:
    lines = header(result) + ["", "Latency of single operations (1 KiB objects):", ""] + latency_table(result)
    lines += lightning_note(result) + throughput_tables(result) + scaling_table(result) + targets_table(result)
    lines += misses_note(result)
    return "\n".join(lines)


def plot(result: dict, path: Path) -> None:
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        print("note: no plot: matplotlib is not installed (apt-get install python3-matplotlib)", file=sys.stderr)
        return
    summary, o = result["summary"], options_of(result)
    names = measured(summary)
    sizes = o["value_sizes"]
    fig, axes = plt.subplots(1, len(sizes) + 1, figsize=(5.2 * (len(sizes) + 1), 4.4))
    width = 0.8 / max(len(names), 1)
    groups = [(w, c) for w in o["workloads"] for c in o["clients"]]
    for ax, size in zip(axes, sizes):
        for i, b in enumerate(names):
            ys = [throughput(summary, b, (w, size, c)) or 0 for w, c in groups]
            ax.bar([g + i * width for g in range(len(groups))], ys, width, label=b, color=f"C{i}")
        ax.set_xticks([g + width * (len(names) - 1) / 2 for g in range(len(groups))],
                      [f"{w}\n{c}p" for w, c in groups], fontsize=7)
        ax.set(yscale="log", ylabel="operations per second", title=f"YCSB, {size} B values (p: client processes)")
    ax = axes[-1]
    ops = [op for op, _ in OBJECT_OPS]
    timed = [b for b in names if summary[b]["latency"]]
    width = 0.8 / max(len(timed), 1)
    for i, b in enumerate(timed):
        ys = [(summary[b]["latency"].get((1, op)) or {}).get("median_ns") or 0 for op in ops]
        ax.bar([g + i * width for g in range(len(ops))], ys, width, label=b, color=f"C{names.index(b)}")
    ax.set_xticks([g + width * (len(timed) - 1) / 2 for g in range(len(ops))], [label for _, label in OBJECT_OPS],
                  fontsize=8)
    ax.set(yscale="log", ylabel="ns (median, 1 client)", title="Latency, 1 KiB objects")
    axes[0].legend(fontsize=8)
    fig.suptitle(f"Object stores, {result['machine']['cpu']} ({result['machine']['date']})", fontsize=9)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    print(f"wrote {path}", file=sys.stderr)


def report(result: dict, opts) -> int:
    """Prints and writes the tables; 1 when a measured backend failed
    somewhere, SKIPPED when no backend could be measured."""
    if not measured(result["summary"]):
        reasons = "; ".join(f"{b}: {s['skipped']}" for b, s in result["summary"].items())
        print(f"skipped: no store to measure ({reasons})", file=sys.stderr)
        return SKIPPED
    body = tables(result)
    print(body)
    if not opts.no_plot:
        plot(result, Path(opts.plot))
    if opts.write_doc:
        write_between_markers(Path(opts.write_doc), MARKERS, body, SECTION_HEADING)
    failed = [b for b in measured(result["summary"]) if result["summary"][b]["errors"]]
    if failed:
        print(f"failed: {', '.join(failed)} (see the notes under the table)", file=sys.stderr)
    return 1 if failed else 0


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--build-dir", default="build")
    p.add_argument("--backends", default=",".join(BACKENDS))
    p.add_argument("--clients", default="1,2")
    p.add_argument("--records", type=int, default=10000)
    p.add_argument("--operations", type=int, default=30000, help="per workload run, shared by the clients")
    p.add_argument("--latency-ops", type=int, default=10000, help="objects per client in the latency part")
    p.add_argument("--value-sizes", default="100,1024")
    p.add_argument("--workloads", default="ABCDEF")
    p.add_argument("--pipeline", type=int, default=16, help="commands per round trip for redis-pipelined")
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--json", default=str(REPO_ROOT / "bench/results/store_latest.json"))
    p.add_argument("--plot", default=str(REPO_ROOT / "docs/store_bench.png"))
    p.add_argument("--no-plot", action="store_true")
    p.add_argument("--write-doc", metavar="PATH")
    p.add_argument("--from-json", metavar="PATH", help="tabulate and plot an earlier run's JSON; run nothing")
    opts = p.parse_args()
    if opts.from_json:
        result = json.loads(Path(opts.from_json).read_text(encoding="utf-8"))
        result["summary"] = summarize(result["repeats"])
        return report(result, opts)
    if opts.repeats < 1:
        p.error("--repeats must be at least 1")
    binary = find_in_build(resolve_build_dir(opts.build_dir), "larder_store_compare_bench", ["bench"])
    if binary is None:
        print(f"larder_store_compare_bench is not in {opts.build_dir}: build with -DLARDER_BUILD_BENCH=ON",
              file=sys.stderr)
        return 1
    result = {"machine": machine_info(), "load_before": load_average(), "repeats": []}
    start = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="larder-store-compare-") as tmp:
        for i in range(opts.repeats):
            result["repeats"].append(run_driver(binary, opts, Path(tmp) / f"run{i}.json"))
    result["elapsed_s"] = time.monotonic() - start
    result["load_after"] = load_average()
    Path(opts.json).parent.mkdir(parents=True, exist_ok=True)
    Path(opts.json).write_text(json.dumps(result, indent=1) + "\n", encoding="utf-8")
    result["summary"] = summarize(result["repeats"])
    return report(result, opts)


if __name__ == "__main__":
    sys.exit(main())
