"""Startup: the wall time of ``hpogrow --help`` against the bare interpreter and heavy imports.

Each command runs as a fresh process; the commands alternate, order rotated each repeat, and
each figure is the median. The table also says which heavy libraries ``--help`` imported (it
must import none of torch, Ray, Optuna, NumPy, mup).

    python bench/startup.py            # 10 repeats (~1 min)
    python bench/startup.py --quick    # smoke size
"""

from __future__ import annotations

import argparse
import json
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

from rich.console import Console
from rich.table import Table

from _harness import WIDTH, add_common_options, alternate, append_result, make_record

HEAVY = ("torch", "ray", "optuna", "numpy", "mup", "pandas", "rich")
_IMPORTED = ("import sys\nfrom hpogrow.cli import main\ntry:\n    main({argv!r})\nexcept SystemExit:\n    pass\n"
             "print(__import__('json').dumps([m for m in {heavy!r} if m in sys.modules]), file=sys.stderr)")


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=10)
    add_common_options(parser)
    args = parser.parse_args(argv)
    if args.quick:
        args.repeats = 1
    hpogrow = _hpogrow_command()
    commands = {
        "python -c pass": [sys.executable, "-c", "pass"],
        "hpogrow --help": [*hpogrow, "--help"],
        "hpogrow train --help": [*hpogrow, "train", "--help"],
        "python -c 'import torch'": [sys.executable, "-c", "import torch"],
        "python -c 'import ray'": [sys.executable, "-c", "import ray"],
    }
    if args.quick:
        del commands["python -c 'import ray'"]
    console = Console(width=WIDTH)
    console.print(f"timing {len(commands)} commands, {args.repeats} runs each")
    seconds = alternate({name: _timer(command) for name, command in commands.items()}, args.repeats)
    floor = statistics.median(seconds["python -c pass"])
    rows = [{"command": name, "seconds": statistics.median(values), "samples": values,
             "over_interpreter": statistics.median(values) - floor,
             "imports": _heavy_imports(name.split()[1:]) if name.startswith("hpogrow") else None}
            for name, values in seconds.items()]
    table = Table(title=f"startup: median wall time of a fresh process ({args.repeats} runs each, alternating)")
    for column in ("command", "ms", "ms over bare interpreter", "heavy modules imported"):
        table.add_column(column, justify="right")
    for row in rows:
        imported = "—" if row["imports"] is None else (", ".join(row["imports"]) or "none")
        table.add_row(row["command"], f"{row['seconds'] * 1000:.0f}", f"{row['over_interpreter'] * 1000:.0f}", imported)
    console.print(table)
    help_row = rows[1]
    notes = (f"`hpogrow --help` takes {help_row['seconds'] * 1000:.0f} ms, {help_row['over_interpreter'] * 1000:.0f} ms "
             f"over starting Python, and imports {', '.join(help_row['imports']) or 'no heavy library'}.")
    console.print(notes)
    record = make_record("startup", argv, args, modules=("torch", "ray"), rows=rows, command_lines=commands)
    append_result(args, record, [table], notes, console)
    return record


def _hpogrow_command() -> list[str]:
    """The installed console script beside this interpreter, else ``python -m hpogrow``."""
    script = Path(sys.executable).with_name("hpogrow")
    if script.exists():
        return [str(script)]
    found = shutil.which("hpogrow")
    return [found] if found else [sys.executable, "-m", "hpogrow"]


def _timer(command: list[str]):
    def run() -> float:
        started = time.perf_counter()
        subprocess.run(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=True)
        return time.perf_counter() - started

    return run


def _heavy_imports(argv: list[str]) -> list[str]:
    """Which of :data:`HEAVY` are in ``sys.modules`` after ``hpogrow ARGV`` (run in a fresh process)."""
    code = _IMPORTED.format(argv=argv, heavy=HEAVY)
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    return json.loads(result.stderr.strip().splitlines()[-1])


if __name__ == "__main__":
    main()
