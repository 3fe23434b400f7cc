"""What the comparison scripts share: where the repository, the build and
the benchmark programs in it are, the machine, revision and load a run is
reported with, the median of the values measured, and writing the tables into
a document between markers."""

from __future__ import annotations

import datetime
import os
import platform
import statistics
import subprocess
import sys
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent


def resolve_build_dir(text: str) -> Path:
    path = Path(text)
    if path.is_absolute() or path.exists():
        return path.resolve()
    candidate = REPO_ROOT / path
    return candidate.resolve() if candidate.exists() else path.resolve()


def find_in_build(build_dir: Path, name: str, preferred: list[str]) -> Path | None:
    """The file `name` in the first of the `preferred` subfolders of the build
    that holds it, else anywhere in the build but CMake's own folders."""
    for sub in preferred:
        path = build_dir / sub / name
        if path.is_file():
            return path
    if build_dir.is_dir():
        for path in sorted(build_dir.rglob(name)):
            if path.is_file() and "CMakeFiles" not in path.parts:
                return path
    return None


def median(values):
    """The median of the values that are not None; None when there are none."""
    values = [v for v in values if v is not None]
    return statistics.median(values) if values else None


def load_average() -> str:
    try:
        return " ".join(Path("/proc/loadavg").read_text().split()[:3])
    except OSError:
        return "?"


def larder_revision() -> str:
    try:
        rev = subprocess.run(["git", "-C", str(REPO_ROOT), "rev-parse", "--short", "HEAD"],
                             capture_output=True, text=True, timeout=10)
        if rev.returncode != 0:
            return "no commit yet"
        dirty = subprocess.run(["git", "-C", str(REPO_ROOT), "status", "--porcelain",
                                "--untracked-files=no"],
                               capture_output=True, text=True, timeout=10)
        return rev.stdout.strip() + ("+local changes" if dirty.stdout.strip() else "")
    except (OSError, subprocess.SubprocessError):
        return "unknown"


def machine_info() -> dict:
    cpu = "unknown CPU"
    try:
        with open("/proc/cpuinfo", encoding="utf-8", errors="replace") as f:
            for line in f:
                if line.lower().startswith("model name"):
                    cpu = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    return {
        "cpu": cpu,
        "cores": os.cpu_count(),
        "kernel": platform.release(),
        "libc": platform.libc_ver()[1] or "unknown",
        "python": platform.python_version(),
        "date": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
        "revision": larder_revision(),
    }


def write_between_markers(path: Path, markers: tuple[str, str], body: str, heading: str | None = None) -> bool:
    """Replaces the text between the two markers in the file `path` with
    `body`. A file without the markers gets a section `heading` holding them
    appended; with no heading it is left alone. False when nothing was
    written."""
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as e:
        print(f"note: cannot read {path} ({e}); nothing written", file=sys.stderr)
        return False
    begin, end = markers
    start = text.find(begin)
    stop = text.find(end, start + len(begin)) if start >= 0 else -1
    block = f"{begin}\n{body.rstrip()}\n{end}"
    if start >= 0 and stop >= 0:
        text = text[:start] + block + text[stop + len(end):]
    elif heading is not None:
        text = text.rstrip("\n") + f"\n\n{heading}\n\n{block}\n"
        print(f"note: {path} had no {begin} … {end} markers; appended a section with them", file=sys.stderr)
    else:
        print(f"note: {path} has no {begin} … {end} markers; nothing written. Add them where the "
              "table should go and rerun.", file=sys.stderr)
        return False
    path.write_text(text, encoding="utf-8")
    print(f"wrote the tables into {path}", file=sys.stderr)
    return True
