#!/usr/bin/env python3
"""Run larder_placement_bench several times and tabulate what placement saves.

What it runs
  larder_placement_bench (bench/placement_bench.cpp) --repeats times, each in
  its own process with --json; repeat i gets --seed S+i (S from --seed,
  default 42), so that the repeats are different programs of the same
  shape: the bench itself is deterministic for one seed. Arguments this
  script does not know are passed to the bench (sizes, --epochs, --warmup,
  --workloads).

What it prints
  Markdown: per workload and way (one pod, hand, auto), the median over the
  repeats of each run's medians: pages written per epoch (all, of the
  program's pods, and of those the ones written before), the checkpoint's
  new pages and bytes per version; then the ratios one pod / auto and
  auto / hand of those medians, with the lowest and highest ratio of a
  single repeat. --json PATH saves every run's output and the summary;
  --plot PNG draws pages per epoch per workload and way (old pages written
  again and pages new data went to, stacked) beside checkpoint bytes per
  version; --write-doc PATH replaces the text between
  <!-- placement-table:begin --> and <!-- placement-table:end --> in PATH.

Usage (from the repository root, after a Release build with
-DLARDER_BUILD_BENCH=ON):
    python3 bench/placement_compare.py --build-dir build --repeats 3 \\
        --plot docs/placement_bench.png
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
from pathlib import Path

SCRIPT_DIR = Path(__file__).resolve().parent
REPO_ROOT = SCRIPT_DIR.parent
sys.path.insert(0, str(SCRIPT_DIR))
from bench_env import find_in_build, machine_info, median, resolve_build_dir, write_between_markers  # noqa: E402

MARKERS = ("<!-- placement-table:begin -->", "<!-- placement-table:end -->")
WAYS = [("one_pod", "one pod"), ("hand", "hand"), ("auto", "auto")]
# (JSON field, column title, decimals)
COLUMNS = [
    ("pages", "pages/epoch", 0),
    ("user_pages", "user-pod pages/epoch", 0),
    ("rewritten_pages", "of those, written before", 0),
    ("checkpoint_new_pages", "checkpoint pages/version", 0),
    ("checkpoint_bytes", "checkpoint bytes/version", 0),
]
RATIO_FIELDS = [("pages", "pages"), ("user_pages", "user-pod pages"), ("checkpoint_bytes", "checkpoint bytes")]
TARGET_ONE_POD_OVER_AUTO = 5.0
TARGET_AUTO_OVER_HAND = 1.2


def run_bench(bench: Path, seed: int, extra: list[str], timeout: float) -> dict:
    with tempfile.NamedTemporaryFile(suffix=".json") as out:
        cmd = [str(bench), "--seed", str(seed), "--json", out.name] + extra
        print("$ " + " ".join(cmd), file=sys.stderr)
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)
        if proc.returncode != 0:
            raise RuntimeError(f"{bench.name} failed ({proc.returncode}): {proc.stderr.strip()[-500:]}")
        sys.stderr.write(proc.stdout)
        return json.loads(Path(out.name).read_text())


def summarise(runs: list[dict]) -> dict:
    """Per workload and way, the median over the runs of each field's median."""
    summary: dict = {}
    for name in runs[0]["workloads"]:
        entry = {"ways": {}, "ratios": {}, "outcome": runs[0]["workloads"][name].get("outcome"),
                 "shared_size_class": runs[0]["workloads"][name]["shared_size_class"]}
        for way, _ in WAYS:
            medians = [r["workloads"][name]["ways"][way]["median"] for r in runs]
            entry["ways"][way] = {f: median([m[f] for m in medians]) for f in medians[0] if f != "pod_pages"}
            pods = sorted({pod for m in medians for pod in m.get("pod_pages", {})})
            entry["ways"][way]["pod_pages"] = {pod: median([m["pod_pages"].get(pod, 0) for m in medians])
                                               for pod in pods}
        for pair, top, bottom in (("one_pod_over_auto", "one_pod", "auto"), ("auto_over_hand", "auto", "hand")):
            entry["ratios"][pair] = {}
            for f, _ in RATIO_FIELDS:
                b = entry["ways"][bottom][f]
                single = [r["workloads"][name]["ratios"][pair][f] for r in runs]
                entry["ratios"][pair][f] = {"of_medians": entry["ways"][top][f] / b if b else None,
                                            "lowest": min(single), "highest": max(single)}
        summary[name] = entry
    return summary


def ratio_text(r: dict) -> str:
    if r["of_medians"] is None:
        return "n/a"
    spread = f" ({r['lowest']:.2f}–{r['highest']:.2f})" if r["highest"] - r["lowest"] >= 0.005 else ""
    return f"{r['of_medians']:.2f}×{spread}"


def tables(summary: dict) -> list[str]:
    lines = ["| workload | way | " + " | ".join(title for _, title, _ in COLUMNS) + " |",
             "|---|---|" + "---:|" * len(COLUMNS)]
    for name, entry in summary.items():
        for way, label in WAYS:
            cells = [f"{entry['ways'][way][f]:,.{d}f}" for f, _, d in COLUMNS]
            lines.append(f"| {name} | {label} | " + " | ".join(cells) + " |")
    lines += ["", "| workload | " + " | ".join(f"one pod / auto: {t}" for _, t in RATIO_FIELDS) + " | " +
              " | ".join(f"auto / hand: {t}" for _, t in RATIO_FIELDS) + " |",
              "|---|" + "---:|" * (2 * len(RATIO_FIELDS))]
    for name, entry in summary.items():
        cells = [ratio_text(entry["ratios"]["one_pod_over_auto"][f]) for f, _ in RATIO_FIELDS]
        cells += [ratio_text(entry["ratios"]["auto_over_hand"][f]) for f, _ in RATIO_FIELDS]
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    return lines


def verdict(summary: dict) -> list[str]:
    lines = []
    for name, entry in summary.items():
        one = entry["ratios"]["one_pod_over_auto"]["pages"]["of_medians"] or 0
        hand = entry["ratios"]["auto_over_hand"]["pages"]["of_medians"] or 0
        lines.append(f"* {name}: one pod / auto {one:.2f}× (target ≥ {TARGET_ONE_POD_OVER_AUTO:g}×: "
                     f"{'met' if one >= TARGET_ONE_POD_OVER_AUTO else 'missed'}); auto / hand {hand:.2f}× "
                     f"(target ≤ {TARGET_AUTO_OVER_HAND:g}×: {'met' if hand <= TARGET_AUTO_OVER_HAND else 'missed'})")
    return lines


def plot(summary: dict, path: Path) -> None:
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        print("note: no plot: matplotlib is not installed (apt-get install python3-matplotlib)", file=sys.stderr)
        return

    names = list(summary)
    fig, (pages_ax, bytes_ax) = plt.subplots(1, 2, figsize=(11, 4.2))
    width = 0.26
    colours = {"one_pod": "#9e9e9e", "hand": "#4c72b0", "auto": "#dd8452"}
    for i, (way, label) in enumerate(WAYS):
        xs = [n + (i - 1) * width for n in range(len(names))]
        old = [summary[w]["ways"][way]["rewritten_pages"] for w in names]
        rest = [summary[w]["ways"][way]["pages"] - summary[w]["ways"][way]["rewritten_pages"] for w in names]
        pages_ax.bar(xs, old, width, color=colours[way], label=f"{label}: old pages written again")
        pages_ax.bar(xs, rest, width, bottom=old, color=colours[way], alpha=0.45, hatch="//",
                     label=f"{label}: new pages, metadata")
        bytes_ax.bar(xs, [summary[w]["ways"][way]["checkpoint_bytes"] / 2**20 for w in names], width,
                     color=colours[way], label=label)
    for ax, title in ((pages_ax, "4 KiB pages written per epoch (median)"),
                      (bytes_ax, "checkpoint MiB per version (median)")):
        ax.set_xticks(range(len(names)), names)
        ax.set_title(title, fontsize=10)
        ax.grid(axis="y", alpha=0.3)
    pages_ax.legend(fontsize=7, ncol=1)
    bytes_ax.legend(fontsize=8)
    fig.suptitle("larder_placement_bench: everything in one pod, pods by hand, automatic placement", fontsize=11)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    print(f"plot: {path}", file=sys.stderr)


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--build-dir", default="build", help="CMake build folder (default: build)")
    p.add_argument("--bench", default=None, help="path of larder_placement_bench")
    p.add_argument("--repeats", type=int, default=3, help="runs of the bench (default 3)")
    p.add_argument("--seed", type=int, default=42, help="the first run's seed; run i gets seed + i (default 42)")
    p.add_argument("--timeout", type=float, default=900.0, help="seconds per run (default 900)")
    p.add_argument("--json", default=None, help="where to write every run's output and the summary")
    p.add_argument("--plot", default=None, help="where to write a PNG of pages and checkpoint bytes")
    p.add_argument("--write-doc", default=None, metavar="PATH",
                   help="replace the text between the placement-table markers in PATH")
    args, extra = p.parse_known_args()
    if args.repeats < 1:
        p.error("--repeats must be at least 1")
    bench = Path(args.bench) if args.bench else \
        find_in_build(resolve_build_dir(args.build_dir), "larder_placement_bench", ["bench", ""])
    if bench is None or not bench.is_file():
        print("error: larder_placement_bench not found; configure with -DLARDER_BUILD_BENCH=ON and build it",
              file=sys.stderr)
        return 2
    info = machine_info()
    try:
        runs = [run_bench(bench, args.seed + i, extra, args.timeout) for i in range(args.repeats)]
    except (RuntimeError, subprocess.TimeoutExpired) as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    summary = summarise(runs)
    settings = runs[0]["settings"]
    head = (f"Measured {info['date']} on {info['cpu']}, {info['cores']} cores, Linux {info['kernel']}, larder "
            f"{info['revision']}; heaps on {settings['file_system']}; {args.repeats} runs (seeds {args.seed}–"
            f"{args.seed + args.repeats - 1}), each {settings['warmup']} warm-up and {settings['epochs']} measured "
            f"epochs; the median over the runs of each run's median over its epochs. Ratios: of those medians, "
            f"with the lowest and highest of a single run.")
    lines = [head, ""] + tables(summary) + [""] + verdict(summary)
    print("\n".join(lines))
    if args.json:
        out = Path(args.json)
        out.parent.mkdir(parents=True, exist_ok=True)
        # Compact: every run's per-epoch numbers make it large.
        out.write_text(json.dumps({"machine": info, "repeats": args.repeats, "first_seed": args.seed,
                                   "bench_args": extra, "summary": summary, "runs": runs},
                                  separators=(",", ":")) + "\n")
    if args.plot:
        plot(summary, Path(args.plot))
    if args.write_doc and not write_between_markers(Path(args.write_doc), MARKERS, "\n".join(lines)):
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
