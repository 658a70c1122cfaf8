"""What every benchmark shares: the options, the result record, appending it, alternating timing.

A benchmark builds its rich tables, calls :func:`make_record` with its figures and
:func:`append_result` to write a block to ``RESULTS.md`` and a JSON line to ``results.jsonl``
beside it. Timings that compare two (or more) sides go through :func:`alternate`: the sides run
in turn, their order rotated each repeat, so that load from other processes on a shared machine
hits every side alike; each side's figure is the median over repeats, and ratios are medians of
the per-repeat ratios.
"""

from __future__ import annotations

import argparse
import datetime
import importlib.metadata
import io
import json
import os
import platform
import re
import shlex
import statistics
import subprocess
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table

BENCH_DIR = Path(__file__).resolve().parent
REPOSITORY = BENCH_DIR.parent
"""The checkout the bench runs in; paths inside it are recorded relative to it."""
DEFAULT_RESULTS = BENCH_DIR / "RESULTS.md"
WIDTH = 140
"""Width of printed and recorded tables, in characters."""


def add_common_options(parser: argparse.ArgumentParser) -> None:
    """``--quick`` (smallest size, for the smoke test) and ``--results`` (where to append)."""
    parser.add_argument("--quick", action="store_true", help="smallest size, for the smoke test")
    parser.add_argument("--results", default=str(DEFAULT_RESULTS),
                        help="Markdown file to append to; results.jsonl is written beside it (default bench/RESULTS.md)")


def should_record(args: argparse.Namespace) -> bool:
    """A ``--quick`` run is recorded only when it was sent to another file than the default."""
    return not args.quick or Path(args.results).resolve() != DEFAULT_RESULTS


def machine() -> dict[str, Any]:
    """CPU model, cores and threads, and the GPU when there is one (imports torch)."""
    import torch

    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    gpu = torch.cuda.get_device_name() if torch.cuda.is_available() else None
    return {"cpu": cpu, "arch": platform.machine(), "cores": os.cpu_count(), "torch_threads": torch.get_num_threads(),
            "gpu": gpu, "os": platform.platform(terse=True)}


def describe_machine(info: dict[str, Any]) -> str:
    text = f"{info['arch']} {info['cpu']}, {info['cores']} cores, {info['torch_threads']} torch threads"
    return text + (f", GPU {info['gpu']}" if info["gpu"] else ", no GPU")


def versions(*modules: str) -> dict[str, str]:
    """Python and the installed version of each named distribution."""
    found = {"python": platform.python_version()}
    for name in modules:
        try:
            found[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            continue
    return found


def commit() -> str:
    """Short hash of ``HEAD``, with ``+dirty`` when the working tree has uncommitted changes."""
    def git(*args: str) -> str:
        return subprocess.run(["git", *args], capture_output=True, text=True, cwd=BENCH_DIR).stdout.strip()

    try:
        head = git("rev-parse", "--short", "HEAD") or "unknown"
        return head + ("+dirty" if git("status", "--porcelain", "--untracked-files=no") else "")
    except OSError:
        return "unknown"


def make_record(benchmark: str, argv: Sequence[str] | None, args: argparse.Namespace, *,
                modules: Sequence[str] = ("torch", "mup"), **figures: Any) -> dict[str, Any]:
    """The machine-readable result: what ran, where, when, at which commit, and its figures."""
    return {"benchmark": benchmark, "date": datetime.datetime.now().isoformat(timespec="seconds"),
            "machine": machine(), "versions": versions(*modules), "commit": commit(),
            "command": _command(benchmark, sys.argv[1:] if argv is None else argv), "args": vars(args), **figures}


def _command(benchmark: str, argv: Sequence[str]) -> str:
    """The command line that reproduces the run, without ``--results``."""
    kept, skip_next = [], False
    for argument in argv:
        if skip_next or argument.startswith("--results="):
            skip_next = False
            continue
        if argument == "--results":
            skip_next = True
            continue
        kept.append(shlex.quote(argument))
    return " ".join(["python", f"bench/{benchmark}.py", *kept])


def render(*tables: Table) -> str:
    """Tables as plain text, the way they were printed."""
    console = Console(width=WIDTH, record=True, file=io.StringIO())
    for table in tables:
        console.print(table)
    return console.export_text()


def append_result(args: argparse.Namespace, record: dict[str, Any], tables: Sequence[Table], notes: str = "",
                  console: Console | None = None) -> None:
    """Append a Markdown block to ``args.results`` and the record to ``results.jsonl`` beside it."""
    if not should_record(args):
        return
    path = Path(args.results)
    version_text = ", ".join(f"{name} {value}" for name, value in record["versions"].items())
    block = (f"\n## {record['benchmark']} — {record['date']}, commit {record['commit']}\n\n"
             f"{describe_machine(record['machine'])} (shared with other work); {version_text}\n\n"
             f"`{record['command']}`\n\n```\n{render(*tables)}```\n" + (f"\n{notes}\n" if notes else ""))
    with path.open("a") as handle:
        handle.write(block)
    with path.with_name("results.jsonl").open("a") as handle:
        handle.write(json.dumps(repository_relative(record), default=str) + "\n")
    (console or Console(width=WIDTH)).print(f"appended to {path} and {path.with_name('results.jsonl')}")


def repository_relative(value: Any, repository: Path = REPOSITORY) -> Any:
    """``value`` with every absolute path inside ``repository`` made relative to it, in strings
    (command lines included), lists and dicts at any depth; other values unchanged. A record then
    reads the same on every machine (``bench/RESULTS.md``, ``.venv/bin/python``)."""
    if isinstance(value, Path):
        value = str(value)
    if isinstance(value, str):
        root = str(repository).rstrip("/")
        return "." if value == root else re.sub(rf"(?<![\w.~/-]){re.escape(root)}/", "", value)
    if isinstance(value, dict):
        return {key: repository_relative(item, repository) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [repository_relative(item, repository) for item in value]
    return value


def alternate(sides: dict[str, Callable[[], float]], repeats: int, warmup: int = 1) -> dict[str, list[float]]:
    """Run every side ``warmup + repeats`` times in turn, rotating the order each round.

    Each side returns its own figure (a rate or a time); warm-up rounds are dropped.

    Returns:
        ``{side: [figure of repeat 0, …]}``, the repeats in the order they ran.
    """
    names = list(sides)
    figures: dict[str, list[float]] = {name: [] for name in names}
    for round_index in range(warmup + repeats):
        shift = round_index % len(names)
        for name in names[shift:] + names[:shift]:
            value = sides[name]()
            if round_index >= warmup:
                figures[name].append(value)
    return figures


def median_ratio(numerators: Sequence[float], denominators: Sequence[float]) -> tuple[float, float, float]:
    """Median, minimum and maximum of the per-repeat ratios ``numerators[i] / denominators[i]``."""
    ratios = [n / d for n, d in zip(numerators, denominators)]
    return statistics.median(ratios), min(ratios), max(ratios)


def spread(values: Sequence[float]) -> tuple[float, float]:
    """Mean and sample standard deviation (0 for a single value)."""
    return statistics.fmean(values), statistics.stdev(values) if len(values) > 1 else 0.0
