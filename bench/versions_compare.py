#!/usr/bin/env python3
"""Versions of a heap with larder against what a user runs today: a full copy
of the heap file per version, `restic backup` and `borg create`.

What it runs, in one run on one machine (bench/versions_bench.cpp is the
driver; it pauses between commands, so every system sees the heap file as
the version larder just recorded):
  * For each change rate (--rates, default 0.1 %, 1 %, 10 % of the objects
    per step): a heap of --size bytes (default 1 GiB) holding an object
    graph, checkpointed as it is built and then after each of --versions - 1
    steps (default 20 versions in all). After each checkpoint the heap file
    is copied in full (cp --sparse=never, then fsync) into a versions
    directory, backed up with `restic backup --force` into a restic
    repository and with `borg create --files-cache=disabled` into a borg
    repository (both told to read the whole file: stores through a shared
    mapping need not change the file's mtime, which their caches trust).
    Then the storage of each (du), and checkouts: larder's checkout of a
    version 1, half-way and all the way back from the latest (and forward
    again), against a full restore of the same version: the copy copied
    back, `restic restore`, `borg extract` (each then fsynced) and larder's
    own clone_version (every page of the version into a new file).
  * Lazy checkout (--lazy-sizes, default 64 MiB, 256 MiB and 1 GiB; shm and
    anonymous heaps, --lazy-backings): a heap of each size, checkpointed as
    built and after --lazy-steps steps that change --lazy-change of the
    objects (about 1 % of the pages at the default 0.2 %), then checked out
    one version back and forward again, eagerly and lazily, --lazy-repeats
    times: the time until a lazy checkout returned (usable), until every
    page was loaded (finish_checkout), an eager checkout's, and a full
    restore (clone_version, every page of the version into a new file).
    The steps' checkpoints give the time threads were held beyond the last
    collect (held_ns - held_collect_ns). `--only lazy` runs only this part
    and writes only its tables.
  * Ten heaps that share most of their pages (--heaps): one base heap,
    copied ten times, each copy changed by --heap-change of its objects in
    its own way and checkpointed into ONE chunk store (a branch each); the
    storage of that store against ten full copies, one restic repository
    and one borg repository holding the ten files.
Times are medians over the steps; the ratios (other / larder) are what to
read, as the machine is shared and noisy.

What it writes
  Markdown tables and the issue's targets with the measured ratios (stdout,
  and with --write-doc PATH between <!-- versions-table:begin --> and
  <!-- versions-table:end -->, the lazy checkout's between
  <!-- versions-lazy:begin --> and <!-- versions-lazy:end -->), the raw
  per-step JSON (--json, default bench/results/versions_latest.json, or
  versions_lazy_latest.json with --only lazy) and a plot (--plot, default
  docs/versions_bench.png; skipped with a note without matplotlib).
  restic or borg missing: their columns are skipped with the reason.

Usage (from the repository root, after a Release build with
-DLARDER_BUILD_BENCH=ON):
    python3 bench/versions_compare.py --build-dir build --write-doc docs/PERFORMANCE.md
    python3 bench/versions_compare.py --size 64M --versions 5 --rates 0.01 --heaps 3   # smoke run
    python3 bench/versions_compare.py --only lazy --write-doc docs/PERFORMANCE.md    # lazy checkout only
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

SCRIPT_DIR = Path(__file__).resolve().parent
REPO_ROOT = SCRIPT_DIR.parent
sys.path.insert(0, str(SCRIPT_DIR))
from bench_env import find_in_build, machine_info, median, resolve_build_dir, write_between_markers  # noqa: E402

MARKERS = ("<!-- versions-table:begin -->", "<!-- versions-table:end -->")
LAZY_MARKERS = ("<!-- versions-lazy:begin -->", "<!-- versions-lazy:end -->")
SECTION_HEADING = "## Versions: checkpoint and checkout against full copies, restic and borg"
LAZY_HEADING = "### Lazy checkout: usable at once, at any heap size"
PAGE = 4096
SUPERBLOCK_PAGES = 2
# Checkout modes the driver is asked for in the comparison with full
# restores; the lazy part asks for both itself.
CHECKOUT_MODES = ("eager",)

# The targets (at 1 % changed).
TARGET_COPY_RATIO = 30.0       # checkpoint <= 1/30 of a full copy
TARGET_RESTIC_RATIO = 50.0     # checkpoint >= 50x faster than restic backup
TARGET_HELD_MS = 1.0           # threads held off per checkpoint
TARGET_STORAGE_COPY = 20.0     # storage after 20 versions >= 20x smaller than full copies
TARGET_STORAGE_TOOLS = 5.0     # and <= 1/5 of restic's and borg's
TARGET_CHECKOUT_RATIO = 10.0   # checkout at 1 % difference >= 10x faster than a full restore
TARGET_LAZY_USABLE_MS = 5.0    # a lazy checkout usable in <= 5 ms at any heap size


def parse_size(text: str) -> int:
    units = {"K": 1 << 10, "M": 1 << 20, "G": 1 << 30}
    text = text.strip().upper().removesuffix("IB").removesuffix("B")
    if text and text[-1] in units:
        return int(float(text[:-1]) * units[text[-1]])
    return int(text)


def ratio(other, larder):
    return other / larder if other and larder else None


def du_bytes(path: Path) -> int:
    out = subprocess.run(["du", "-s", "--block-size=1", str(path)], capture_output=True, text=True, check=True)
    return int(out.stdout.split()[0])


def fsync_path(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def copy_file(src: Path, dst: Path) -> None:
    """A full copy, every byte written (holes too), durable on return."""
    run(["cp", "--sparse=never", src, dst])
    fsync_path(dst)


def timed(fn, *args, **kwargs):
    start = time.perf_counter()
    result = fn(*args, **kwargs)
    return time.perf_counter() - start, result


def run(cmd: list, **kwargs) -> str:
    proc = subprocess.run([str(c) for c in cmd], capture_output=True, text=True, **kwargs)
    if proc.returncode != 0:
        raise RuntimeError(f"{' '.join(map(str, cmd))} failed ({proc.returncode}): {proc.stderr.strip()[-2000:]}")
    return proc.stdout


class Driver:
    """larder_versions_bench, one command at a time."""

    def __init__(self, binary: Path, args: list):
        cmd = [str(binary)] + [str(a) for a in args]
        print(f"running: {' '.join(cmd)}", file=sys.stderr, flush=True)
        self.proc = subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, bufsize=1)
        self.ready = self._answer()

    def _answer(self) -> dict:
        line = self.proc.stdout.readline()
        if not line:
            raise RuntimeError(f"larder_versions_bench stopped (exit status {self.proc.wait()})")
        answer = json.loads(line)
        if "error" in answer:
            raise RuntimeError(f"larder_versions_bench: {answer['error']}")
        return answer

    def ask(self, command: str) -> dict:
        self.proc.stdin.write(command + "\n")
        self.proc.stdin.flush()
        return self._answer()

    def quit(self) -> None:
        self.ask("quit")
        self.proc.stdin.close()
        self.proc.wait()


class Tools:
    """The other systems: a full copy, restic and borg, each with its store in `root`."""

    def __init__(self, root: Path, skip: dict):
        self.copies = root / "copies"
        self.copies.mkdir(parents=True)
        self.copy_bytes = 0
        self.restic = None if "restic" in skip else root / "restic-repo"
        self.borg = None if "borg" in skip else root / "borg-repo"
        self.env = dict(os.environ, RESTIC_PASSWORD="larder-bench", RESTIC_CACHE_DIR=str(root / "restic-cache"),
                        BORG_BASE_DIR=str(root / "borg-base"), BORG_UNKNOWN_UNENCRYPTED_REPO_ACCESS_IS_OK="yes",
                        BORG_RELOCATED_REPO_ACCESS_IS_OK="yes")
        if self.restic:
            run(["restic", "init", "--repo", self.restic], env=self.env)
        if self.borg:
            run(["borg", "init", "--encryption", "none", self.borg], env=self.env)
        self.restic_snapshots = {}

    def copy(self, src: Path, name: str, keep: bool) -> float:
        """Seconds for a full copy of `src`; only its du is kept unless `keep`."""
        dst = self.copies / name
        seconds, _ = timed(copy_file, src, dst)
        self.copy_bytes += du_bytes(dst)
        if not keep:
            dst.unlink()
        return seconds

    def restic_backup(self, src: Path, name: str) -> float | None:
        if not self.restic:
            return None
        seconds, out = timed(run, ["restic", "backup", "--repo", self.restic, "--force", "--json", "--tag", name, src],
                             env=self.env)
        for line in out.splitlines():
            message = json.loads(line)
            if message.get("message_type") == "summary":
                self.restic_snapshots[name] = message["snapshot_id"]
        return seconds

    def borg_create(self, src: Path, name: str) -> float | None:
        if not self.borg:
            return None
        seconds, _ = timed(run, ["borg", "create", "--files-cache=disabled", f"{self.borg}::{name}", src.name],
                           env=self.env, cwd=src.parent)
        return seconds

    def snapshot(self, src: Path, name: str, keep_copy: bool) -> dict:
        return {"copy_s": self.copy(src, name, keep_copy), "restic_s": self.restic_backup(src, name),
                "borg_s": self.borg_create(src, name)}

    def storage(self) -> dict:
        return {"copies": self.copy_bytes, "restic": du_bytes(self.restic) if self.restic else None,
                "borg": du_bytes(self.borg) if self.borg else None}

    def restores(self, name: str, heap_name: str, into: Path) -> dict:
        """Seconds for a full restore of version `name` by each system, the file fsynced."""
        def from_copy(target: Path):
            copy_file(self.copies / name, target / heap_name)

        def from_restic(target: Path):
            run(["restic", "restore", "--repo", self.restic, self.restic_snapshots[name], "--target", target],
                env=self.env)
            for path in target.rglob(heap_name):  # restic restores the whole path below the target
                fsync_path(path)

        def from_borg(target: Path):
            run(["borg", "extract", f"{self.borg}::{name}"], env=self.env, cwd=target)
            fsync_path(target / heap_name)

        times = {}
        for system, restore, present in (("copy", from_copy, True), ("restic", from_restic, self.restic),
                                         ("borg", from_borg, self.borg)):
            times[system] = None
            if present:
                target = into / system
                target.mkdir(parents=True)
                times[system], _ = timed(restore, target)
                shutil.rmtree(target)
        return times


def pages_differing(version_clone: Path, copy: Path) -> int:
    """Pages holding data in the clone of a version that differ from the
    full copy taken at that version, the two superblocks (pages 0 and 1,
    docs/format/heap.md), which a clone rebuilds, apart. Not 0: the other
    systems did not see the state larder recorded."""
    differing = 0
    zero = bytes(PAGE)
    with open(version_clone, "rb") as a, open(copy, "rb") as b:
        a.seek(SUPERBLOCK_PAGES * PAGE)
        b.seek(SUPERBLOCK_PAGES * PAGE)
        while True:
            pa, pb = a.read(PAGE), b.read(PAGE)
            if not pa:
                return differing
            if pa != zero and pa != pb:
                differing += 1


def run_rate(binary: Path, work: Path, rate: float, opts, skip: dict) -> dict:
    root = work / f"rate-{rate}"
    root.mkdir(parents=True)
    heap = root / "heap"
    tools = Tools(root, skip)
    driver = Driver(binary, ["--heap", heap, "--size", opts.size, "--seed", 1])
    n = opts.versions
    distances = sorted({d for d in (1, n // 2, n - 1) if d >= 1})
    targets = {n - 1 - d for d in distances}
    steps = []
    for i in range(n):
        answer = driver.ask("checkpoint initial") if i == 0 else driver.ask(f"step {rate}")
        answer.update(tools.snapshot(heap, f"v{i:02d}", keep_copy=i in targets))
        answer["version"] = i
        steps.append(answer)
        print(f"rate {rate}: version {i}: larder {answer['total_ns'] / 1e9:.3f} s, copy {answer['copy_s']:.3f} s, "
              f"restic {answer['restic_s']}, borg {answer['borg_s']}", file=sys.stderr, flush=True)
    storage = tools.storage()
    storage["larder"] = du_bytes(Path(str(heap) + ".versions"))
    storage["larder_bytes_stored"] = sum(s["bytes_stored"] for s in steps)
    heap_bytes = driver.ready["heap_bytes"]
    checkouts = []
    latest = steps[-1]["id"]
    for d in distances:
        t = n - 1 - d
        restore = tools.restores(f"v{t:02d}", heap.name, root / "restore")
        clone_path = root / "clone.heap"
        restore["clone"] = driver.ask(f"clone {steps[t]['id']} {clone_path}")["total_ns"] / 1e9
        differing = pages_differing(clone_path, tools.copies / f"v{t:02d}")
        clone_path.unlink()
        if differing:
            raise RuntimeError(f"the clone of version {t} differs from the full copy taken at it in {differing} "
                               "pages: the other systems did not see the state larder recorded")
        for mode in CHECKOUT_MODES:
            back = driver.ask(f"checkout {steps[t]['id']} {mode}")
            forth = driver.ask(f"checkout {latest} {mode}")
            checkouts.append({"distance": d, "mode": mode, "back": back, "forth": forth,
                              "difference": back["pages_loaded"] * PAGE / heap_bytes, "restore_s": restore})
    driver.quit()
    if not opts.keep:
        shutil.rmtree(root)
    return {"rate": rate, "heap_bytes": heap_bytes, "objects": driver.ready["objects"], "steps": steps,
            "storage": storage, "checkouts": checkouts}


def run_lazy_heap(binary: Path, work: Path, backing: str, size: int, opts) -> dict:
    """One heap of `size` on `backing`: checkpoints, then checkouts one
    version back and forth, eager and lazy, and a clone of the version."""
    root = work / f"lazy-{backing}-{size >> 20}M"
    root.mkdir(parents=True)
    heap = [] if backing == "anonymous" else ["--heap", f"/larder-versions-bench-{os.getpid()}"]
    driver = Driver(binary, ["--backing", backing, *heap, "--size", size, "--store", root / "store", "--seed", 3])
    steps = [driver.ask("checkpoint initial")]
    for _ in range(opts.lazy_steps):
        steps.append(driver.ask(f"step {opts.lazy_change}"))
    back, latest = steps[-2]["id"], steps[-1]["id"]
    checkouts = {"eager": [], "lazy": []}
    for _ in range(opts.lazy_repeats):
        for mode in checkouts:
            checkouts[mode].append(driver.ask(f"checkout {back} {mode}"))
            checkouts[mode].append(driver.ask(f"checkout {latest} {mode}"))
    clone_path = root / "clone.heap"
    clone_s = driver.ask(f"clone {back} {clone_path}")["total_ns"] / 1e9
    driver.quit()
    shutil.rmtree(root)
    lazy_back = checkouts["lazy"][0]
    heap_pages = driver.ready["heap_bytes"] // PAGE
    print(f"lazy {backing} {fmt_b(size)}: usable {median([c['usable_ns'] for c in checkouts['lazy']]) / 1e6:.2f} ms",
          file=sys.stderr, flush=True)
    return {"backing": backing, "size": size, "heap_bytes": driver.ready["heap_bytes"],
            "objects": driver.ready["objects"], "steps": steps, "checkouts": checkouts, "clone_s": clone_s,
            "difference": (lazy_back["pages_loaded"] + lazy_back["pages_lazy"]) / heap_pages}


def run_lazy(binary: Path, work: Path, opts) -> dict:
    heaps = []
    for backing in opts.lazy_backings.split(","):
        for size in (parse_size(x) for x in opts.lazy_sizes.split(",")):
            try:
                heaps.append(run_lazy_heap(binary, work, backing, size, opts))
            except RuntimeError as e:
                if "unsupported" not in str(e):
                    raise
                print(f"skipping the lazy checkout on {backing}: {e}", file=sys.stderr)
                return {"change": opts.lazy_change, "heaps": heaps, "skipped": str(e)}
    return {"change": opts.lazy_change, "heaps": heaps}


def run_shared(binary: Path, work: Path, opts, skip: dict) -> dict:
    root = work / "shared"
    root.mkdir(parents=True)
    base = root / "base.heap"
    Driver(binary, ["--heap", base, "--size", opts.size, "--seed", 2]).quit()
    store = root / "store"
    tools = Tools(root, skip)
    heaps = []
    for i in range(opts.heaps):
        heap = root / f"heap{i:02d}"
        run(["cp", "--sparse=always", base, heap])
        driver = Driver(binary, ["--heap", heap, "--open", "--store", store, "--branch", f"heap{i:02d}",
                                 "--seed", 100 + i])
        answer = driver.ask(f"step {opts.heap_change}")
        driver.quit()
        answer.update(tools.snapshot(heap, heap.name, keep_copy=False))
        heaps.append(answer)
    storage = tools.storage()
    storage["larder"] = du_bytes(store)
    if not opts.keep:
        shutil.rmtree(root)
    return {"heaps": heaps, "storage": storage, "change": opts.heap_change}


# ---------------------------------------------------------------------------
# tables


def fmt_s(seconds):
    if seconds is None:
        return "—"
    return f"{seconds * 1e3:.1f} ms" if seconds < 1 else f"{seconds:.2f} s"


def fmt_b(n):
    if n is None:
        return "—"
    for unit, size in (("GiB", 1 << 30), ("MiB", 1 << 20), ("KiB", 1 << 10)):
        if n >= size:
            return f"{n / size:.2f} {unit}"
    return f"{n} B"


def fmt_x(r):
    return "—" if r is None else f"{r:.1f}×"


def summarize(result: dict) -> dict:
    """Medians per rate over the steps (the first, full, checkpoint apart)."""
    out = {}
    for r in result["rates"]:
        changed = r["steps"][1:] or r["steps"]
        s = {
            "larder": median([x["total_ns"] / 1e9 for x in changed]),
            "held_ms": median([x["held_ns"] / 1e6 for x in changed]),
            "held_max_ms": max(x["held_ns"] / 1e6 for x in changed),
            "first": r["steps"][0]["total_ns"] / 1e9,
            "pages": median([x["pages_considered"] for x in changed]),
        }
        for system in ("copy", "restic", "borg"):
            s[system] = median([x[f"{system}_s"] for x in changed])
        out[r["rate"]] = s
    return out


def storage_cells(st: dict) -> str:
    return (f"{fmt_b(st['larder'])} | {fmt_b(st['copies'])} | {fmt_b(st['restic'])} | {fmt_b(st['borg'])} "
            f"| {fmt_x(ratio(st['copies'], st['larder']))} | {fmt_x(ratio(st['restic'], st['larder']))} "
            f"| {fmt_x(ratio(st['borg'], st['larder']))}")


STORAGE_HEADER = "larder store | full copies | restic repo | borg repo | copies / larder | restic / larder | borg / larder"


def fastest_restore(checkout: dict) -> float:
    return min(v for v in checkout["restore_s"].values() if v is not None)


def checkpoint_table(result: dict, summary: dict) -> list:
    lines = ["Time per checkpoint (median over the steps) and the other systems' time for the same version; "
             "ratios are other / larder:", "",
             "| objects changed per step | pages read | larder checkpoint | threads held | full copy | restic backup "
             "| borg create | copy / larder | restic / larder | borg / larder |",
             "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for r in result["rates"]:
        s = summary[r["rate"]]
        lines.append(f"| {r['rate'] * 100:g} % | {s['pages']:.0f} | {fmt_s(s['larder'])} | {s['held_ms']:.2f} ms "
                     f"(max {s['held_max_ms']:.2f}) | {fmt_s(s['copy'])} | {fmt_s(s['restic'])} | {fmt_s(s['borg'])} "
                     f"| {fmt_x(ratio(s['copy'], s['larder']))} | {fmt_x(ratio(s['restic'], s['larder']))} "
                     f"| {fmt_x(ratio(s['borg'], s['larder']))} |")
    firsts = ", ".join(f"{fmt_s(summary[r['rate']]['first'])} at {r['rate'] * 100:g} %" for r in result["rates"])
    return lines + ["", f"The first checkpoint of a heap reads and stores every used page: {firsts}."]


def storage_table(result: dict) -> list:
    lines = [f"Storage after {result['options']['versions']} versions (du):", "",
             f"| objects changed per step | {STORAGE_HEADER} |", "|---|---:|---:|---:|---:|---:|---:|---:|"]
    return lines + [f"| {r['rate'] * 100:g} % | {storage_cells(r['storage'])} |" for r in result["rates"]]


def checkout_table(result: dict) -> list:
    lines = ["Checkout of an earlier version from the latest (larder, eager) against a full restore of the same "
             "version (copy back, `restic restore`, `borg extract`, each fsynced; larder's clone_version writes "
             "every page of the version into a new file). Difference: the pages larder loaded, as a share of the "
             "heap file; ratio: the fastest full restore / larder's checkout:", "",
             "| changed per step | versions back | difference | larder checkout | and forward again | copy back "
             "| restic restore | borg extract | larder clone | fastest full / checkout |",
             "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for r in result["rates"]:
        for c in r["checkouts"]:
            back, forth, rs = c["back"]["total_ns"] / 1e9, c["forth"]["total_ns"] / 1e9, c["restore_s"]
            lines.append(f"| {r['rate'] * 100:g} % | {c['distance']} | {c['difference'] * 100:.2f} % "
                         f"| {fmt_s(back)} | {fmt_s(forth)} | {fmt_s(rs['copy'])} | {fmt_s(rs['restic'])} "
                         f"| {fmt_s(rs['borg'])} | {fmt_s(rs['clone'])} | {fmt_x(ratio(fastest_restore(c), back))} |")
    return lines + ["", "Every version checked out was also cloned and compared with the full copy taken at it: no "
                    "page with data differs beyond the superblocks, so every system saw the state larder recorded."]


def shared_table(sh: dict) -> list:
    n = len(sh["heaps"])
    times = [fmt_s(median([h["total_ns"] / 1e9 for h in sh["heaps"]]))]
    times += [fmt_s(median([h[key] for h in sh["heaps"]])) for key in ("copy_s", "restic_s", "borg_s")]
    return [f"{n} heaps that share most of their pages (copies of one base heap, each with {sh['change'] * 100:g} % "
            "of its objects changed its own way), all checkpointed into one chunk store; the others hold the "
            f"{n} files (full copies, one restic and one borg repository):", "",
            f"| | {STORAGE_HEADER} |", "|---|---:|---:|---:|---:|---:|---:|---:|",
            f"| storage | {storage_cells(sh['storage'])} |",
            f"| time per heap (median) | {' | '.join(times)} | | | |",
            "", "Each heap is checkpointed by a new process, whose first checkpoint reads every used page."]


def beyond_collect_ms(steps: list) -> float | None:
    """Median time threads were held beyond the last collect, over the
    steps (the first checkpoint apart); None for runs without the split."""
    changed = steps[1:] or steps
    if any("held_collect_ns" not in x for x in changed):
        return None
    return median([(x["held_ns"] - x["held_collect_ns"]) / 1e6 for x in changed])


def lazy_summary(h: dict) -> dict:
    changed = h["steps"][1:] or h["steps"]
    lazy, eager = h["checkouts"]["lazy"], h["checkouts"]["eager"]
    return {"usable_ms": median([c["usable_ns"] / 1e6 for c in lazy]),
            "usable_max_ms": max(c["usable_ns"] / 1e6 for c in lazy),
            "loaded_ms": median([c["loaded_ns"] / 1e6 for c in lazy]),
            "eager_ms": median([c["usable_ns"] / 1e6 for c in eager]),
            "clone_ms": h["clone_s"] * 1e3,
            "held_ms": median([x["held_ns"] / 1e6 for x in changed]),
            "beyond_ms": beyond_collect_ms(h["steps"])}


def lazy_tables(result: dict) -> str:
    lazy = result["lazy"]
    m = result["machine"]
    lines = [f"Measured {m['date']} on {m['cpu']}, {m['cores']} cores, Linux {m['kernel']}; larder {m['revision']}. "
             f"Each heap checkpointed as built and after steps changing {lazy['change'] * 100:g} % of its objects, "
             "then checked out one version back and forward again, eagerly and lazily (medians over both directions "
             "and the repeats). Usable: until checkout returned; loaded: until finish_checkout returned, every page "
             "in; full restore: clone_version of the version (every page into a new file). Held: threads held off "
             "per checkpoint of a step, and of that the part beyond the last collect (the tracker's scan).", ""]
    if lazy.get("skipped"):
        lines += [f"Lazy checkout not measured on every backing: {lazy['skipped']}", ""]
    lines += ["| backing | heap | difference | lazy: usable | (max) | lazy: loaded | eager checkout | full restore "
              "| threads held | beyond the collect |", "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for h in lazy["heaps"]:
        s = lazy_summary(h)
        beyond = "—" if s["beyond_ms"] is None else f"{s['beyond_ms']:.2f} ms"
        lines.append(f"| {h['backing']} | {fmt_b(h['heap_bytes'])} | {h['difference'] * 100:.2f} % "
                     f"| {s['usable_ms']:.2f} ms | {s['usable_max_ms']:.2f} ms | {fmt_s(s['loaded_ms'] / 1e3)} "
                     f"| {fmt_s(s['eager_ms'] / 1e3)} | {fmt_s(s['clone_ms'] / 1e3)} | {s['held_ms']:.2f} ms "
                     f"| {beyond} |")
    return "\n".join(lines)


def lazy_targets(result: dict) -> str:
    heaps = [lazy_summary(h) for h in result["lazy"]["heaps"]]
    usable = max((s["usable_ms"] for s in heaps), default=None)
    beyond = [s["beyond_ms"] for s in heaps if s["beyond_ms"] is not None]
    beyond_worst = max(beyond) if beyond else None
    rows = [("lazy checkout usable in ≤ 5 ms at any heap size (worst median)", usable, TARGET_LAZY_USABLE_MS),
            ("threads held ≤ 1 ms per checkpoint beyond the collect itself (worst median)", beyond_worst,
             TARGET_HELD_MS)]
    lines = ["Targets of the lazy checkout's run:", "", "| target | measured | |", "|---|---:|---|"]
    for name, value, target in rows:
        shown = "—" if value is None else f"{value:.2f} ms"
        lines.append(f"| {name} | {shown} | {verdict(value, target, at_least=False)} |")
    return "\n".join(lines)


def tables(result: dict, summary: dict) -> str:
    m, o = result["machine"], result["options"]
    lines = [f"Measured {m['date']} on {m['cpu']}, {m['cores']} cores, Linux {m['kernel']}; larder {m['revision']}, "
             f"{result['tool_versions']}. Heap of {fmt_b(o['size'])}, {o['versions']} versions per change rate "
             f"(the first as built, then one per step); medians over the steps. Run in {o['work_dir']}.", ""]
    lines += [f"{name} was not run: {why}." for name, why in result["skipped"].items()]
    lines += checkpoint_table(result, summary) + [""] + storage_table(result) + [""] + checkout_table(result)
    if result.get("shared"):
        lines += [""] + shared_table(result["shared"])
    return "\n".join(lines)


def verdict(value, target, at_least=True):
    if value is None:
        return "not measured"
    met = value >= target if at_least else value <= target
    return "met" if met else "**MISSED**"


def targets(result: dict, summary: dict) -> str:
    rate = min(summary, key=lambda x: abs(x - 0.01))
    s = summary[rate]
    st = next(r["storage"] for r in result["rates"] if r["rate"] == rate)
    co = [c for r in result["rates"] if r["rate"] == rate for c in r["checkouts"] if c["distance"] == 1]
    checkout_ratio = None
    if co:
        checkout_ratio = ratio(fastest_restore(co[0]), co[0]["back"]["total_ns"] / 1e9)
    rows = [
        ("checkpoint ≤ 1/30 of a full copy", ratio(s["copy"], s["larder"]), TARGET_COPY_RATIO, True, "×"),
        ("checkpoint ≥ 50× faster than restic backup", ratio(s["restic"], s["larder"]), TARGET_RESTIC_RATIO, True, "×"),
        ("threads held ≤ 1 ms per checkpoint (median; includes the collect)", s["held_ms"], TARGET_HELD_MS, False,
         " ms"),
        ("storage ≥ 20× smaller than full copies", ratio(st["copies"], st["larder"]), TARGET_STORAGE_COPY, True, "×"),
        ("storage ≤ 1/5 of restic's", ratio(st["restic"], st["larder"]), TARGET_STORAGE_TOOLS, True, "×"),
        ("storage ≤ 1/5 of borg's", ratio(st["borg"], st["larder"]), TARGET_STORAGE_TOOLS, True, "×"),
        ("checkout (1 version back) ≥ 10× faster than the fastest full restore", checkout_ratio,
         TARGET_CHECKOUT_RATIO, True, "×"),
    ]
    lines = [f"Targets at {rate * 100:g} % of the objects changed per step:", "", "| target | measured | |",
             "|---|---:|---|"]
    for name, value, target, at_least, unit in rows:
        shown = "—" if value is None else f"{value:.2f}{unit}"
        lines.append(f"| {name} | {shown} | {verdict(value, target, at_least)} |")
    beyond = median([beyond_collect_ms(r["steps"]) for r in result["rates"] if r["rate"] == rate])
    shown = "—" if beyond is None else f"{beyond:.2f} ms"
    judged = "not in this run: see the lazy checkout's table" if beyond is None else verdict(beyond, TARGET_HELD_MS,
                                                                                            False)
    lines.append(f"| threads held ≤ 1 ms per checkpoint beyond the collect itself (median) | {shown} | {judged} |")
    lines.append("| lazy checkout usable in ≤ 5 ms at any heap size | — | see the lazy checkout's table |")
    return "\n".join(lines)


def plot(result: dict, summary: dict, path: Path) -> None:
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        print("note: no plot: matplotlib is not installed (apt-get install python3-matplotlib)", file=sys.stderr)
        return
    fig, (left, right) = plt.subplots(1, 2, figsize=(11, 4.2))
    rates = [r["rate"] * 100 for r in result["rates"]]
    for key, label, style in (("larder", "larder checkpoint", "o-"), ("copy", "full copy", "s--"),
                              ("restic", "restic backup", "^--"), ("borg", "borg create", "v--")):
        ys = [summary[r["rate"]][key] for r in result["rates"]]
        if all(y is not None for y in ys):
            left.plot(rates, ys, style, label=label)
    left.set(xscale="log", yscale="log", xlabel="objects changed per step (%)", ylabel="seconds per version (median)",
             title="Time per version")
    left.legend()
    points = sorted((c["difference"] * 100, c["back"]["total_ns"] / 1e9, c["restore_s"])
                    for r in result["rates"] for c in r["checkouts"])
    xs = [p[0] for p in points]
    right.plot(xs, [p[1] for p in points], "o-", label="larder checkout")
    # One restore per point, whose time does not depend on the difference: markers, no lines.
    for key, label, style in (("copy", "copy back", "s"), ("restic", "restic restore", "^"),
                              ("borg", "borg extract", "v"), ("clone", "larder clone (every page)", "d")):
        ys = [p[2][key] for p in points]
        if all(y is not None for y in ys):
            right.plot(xs, ys, style, label=label)
    right.set(xscale="log", yscale="log", xlabel="pages that differ (% of the heap)", ylabel="seconds",
              title="Checkout vs full restore")
    right.legend()
    fig.suptitle(f"larder versions, {fmt_b(result['options']['size'])} heap ({result['machine']['date']})")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    print(f"wrote {path}", file=sys.stderr)


# ---------------------------------------------------------------------------


def tool_versions(skip: dict) -> str:
    parts = []
    for tool, flag in (("restic", "version"), ("borg", "--version")):
        if tool not in skip:
            parts.append(run([tool, flag]).split(" compiled")[0].strip())
    return ", ".join(parts) or "no restic or borg"


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--build-dir", default="build")
    p.add_argument("--work-dir", default="/var/tmp/larder-versions-bench",
                   help="where heaps, copies and repositories go (a disk; emptied first)")
    p.add_argument("--size", default="1G", help="heap size (default 1G)")
    p.add_argument("--versions", type=int, default=20)
    p.add_argument("--rates", default="0.001,0.01,0.1", help="fractions of the objects changed per step")
    p.add_argument("--heaps", type=int, default=10, help="heaps in the shared-store workload (0: skip it)")
    p.add_argument("--heap-change", type=float, default=0.02, help="fraction of objects each of those heaps changes")
    p.add_argument("--only", choices=("lazy",), help="run only this part (lazy: the lazy checkout's table)")
    p.add_argument("--lazy-sizes", default="64M,256M,1G", help="heap sizes of the lazy checkout's part")
    p.add_argument("--lazy-backings", default="shm,anonymous", help="backings of the lazy checkout's part")
    p.add_argument("--lazy-change", type=float, default=0.002, help="fraction of objects changed per lazy step")
    p.add_argument("--lazy-steps", type=int, default=3, help="steps checkpointed before the lazy checkouts")
    p.add_argument("--lazy-repeats", type=int, default=3, help="checkouts back and forth per mode")
    p.add_argument("--json", help="raw results (default bench/results/versions_latest.json, "
                   "versions_lazy_latest.json with --only lazy)")
    p.add_argument("--plot", default=str(REPO_ROOT / "docs/versions_bench.png"))
    p.add_argument("--no-plot", action="store_true")
    p.add_argument("--write-doc", metavar="PATH")
    p.add_argument("--keep", action="store_true", help="keep the heaps, copies and repositories")
    p.add_argument("--from-json", metavar="PATH", help="tabulate and plot an earlier run's JSON; run nothing")
    opts = p.parse_args()
    if opts.json is None:
        opts.json = str(REPO_ROOT / "bench/results" / ("versions_lazy_latest.json" if opts.only else
                                                       "versions_latest.json"))
    if opts.lazy_steps < 1:
        p.error("--lazy-steps must be at least 1")
    if opts.from_json:
        return report(json.loads(Path(opts.from_json).read_text(encoding="utf-8")), opts)
    opts.size = parse_size(opts.size)
    if opts.versions < 2:
        p.error("--versions must be at least 2")
    binary = find_in_build(resolve_build_dir(opts.build_dir), "larder_versions_bench", ["bench"])
    if binary is None:
        print(f"larder_versions_bench is not in {opts.build_dir}: build with -DLARDER_BUILD_BENCH=ON", file=sys.stderr)
        return 1
    skip = {tool: f"`{tool}` is not installed (scripts/install-deps.sh --bench)"
            for tool in ("restic", "borg") if shutil.which(tool) is None}
    for why in skip.values():
        print(f"skipping: {why}", file=sys.stderr)
    work = Path(opts.work_dir)
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True)
    result = {"machine": machine_info(), "tool_versions": tool_versions(skip), "skipped": skip,
              "options": {"size": opts.size, "versions": opts.versions, "work_dir": str(work)}, "rates": []}
    if opts.only != "lazy":
        for rate in (float(x) for x in opts.rates.split(",")):
            result["rates"].append(run_rate(binary, work, rate, opts, skip))
        if opts.heaps > 0:
            result["shared"] = run_shared(binary, work, opts, skip)
    result["lazy"] = run_lazy(binary, work, opts)
    if not opts.keep:
        shutil.rmtree(work, ignore_errors=True)
    Path(opts.json).parent.mkdir(parents=True, exist_ok=True)
    Path(opts.json).write_text(json.dumps(result, indent=1) + "\n", encoding="utf-8")
    return report(result, opts)


def report(result: dict, opts) -> int:
    """The comparison's tables where the run has them (not with --only
    lazy), the lazy checkout's where it has those (not in older runs)."""
    if result["rates"]:
        summary = summarize(result)
        body = tables(result, summary) + "\n\n" + targets(result, summary)
        if not opts.no_plot:
            plot(result, summary, Path(opts.plot))
        print(body)
        if opts.write_doc:
            write_between_markers(Path(opts.write_doc), MARKERS, body, SECTION_HEADING)
    if result.get("lazy"):
        body = lazy_tables(result) + "\n\n" + lazy_targets(result)
        print(body)
        if opts.write_doc:
            write_between_markers(Path(opts.write_doc), LAZY_MARKERS, body, LAZY_HEADING)
    return 0


if __name__ == "__main__":
    sys.exit(main())
