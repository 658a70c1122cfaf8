"""Several drivers, one study: N copies of one ``hpogrow search`` command started at once against
one storage (issue 13), as a user starts them on N machines or terminals.

Each case is a storage (a PostgreSQL database on a throwaway server this script starts on a
loopback port, or Optuna's journal file) and an executor (``local``: trials in process; ``ray``:
every driver starts a local Ray runtime of its own). Counted, from the processes and the study
they leave: exit codes, error lines on stderr (tracebacks, lock and database errors), base trials
against ``--trials`` (the study's total), configurations run more than once, how many drivers ran
base trials, the target study's warmstart/scratch trials, and how many different final reports
the drivers printed (one is right: they all report the same study).

    python bench/drivers.py            # 4 drivers, 8 trials; PostgreSQL and journal, local; journal, Ray (~5 min)
    python bench/drivers.py --quick    # 2 drivers, 3 trials, journal file, local
"""

from __future__ import annotations

import argparse
import collections
import os
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import optuna
from rich.console import Console
from rich.table import Table

from _harness import WIDTH, add_common_options, append_result, make_record

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
from postgres_server import PostgresServer, server_problem, usable_bin_folders  # noqa: E402

TrialState = optuna.trial.TrialState
REPOSITORY = Path(__file__).resolve().parents[1]
STUDY = "mlp-w16"
ERROR_LINE = re.compile(r"Traceback|Error\b|Exception\b|deadlock|database is locked|could not obtain lock", re.IGNORECASE)
"""A line of a driver's stderr that reports an error (Python's, the database's or a lock's)."""
CASES = ("postgresql:local", "journal:local", "journal:ray")


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--drivers", type=int, default=4, help="processes started at once per case (default 4)")
    parser.add_argument("--trials", type=int, default=8, help="--trials of every driver: the study's total (default 8)")
    parser.add_argument("--grow-factor", type=float, default=8.0,
                        help="--grow-factor (default 8: target runs long enough that drivers meet at the target lock)")
    parser.add_argument("--cases", nargs="+", help=f"STORAGE:EXECUTOR pairs (default {' '.join(CASES)}; --quick: journal:local)")
    parser.add_argument("--timeout", type=float, default=900.0, help="seconds per case before the drivers are killed")
    add_common_options(parser)
    args = parser.parse_args(argv)
    if args.quick:
        args.drivers, args.trials, args.grow_factor = 2, 3, 2.0
    args.cases = args.cases or (["journal:local"] if args.quick else list(CASES))
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    console = Console(width=WIDTH)
    server = None
    rows = []
    with tempfile.TemporaryDirectory(prefix="hpg-drivers-") as scratch:
        try:
            for index, case in enumerate(args.cases):
                storage_kind, executor = case.split(":")
                if storage_kind == "postgresql" and server is None:
                    problem = server_problem()
                    if problem is not None:
                        raise SystemExit(f"bench/drivers.py: {problem}")
                    server = PostgresServer(usable_bin_folders()[0])
                    server.start()
                folder = Path(scratch) / f"case{index}"
                url = server.create_database(f"drivers{index}") if storage_kind == "postgresql" \
                    else f"journal:{folder / 'hpogrow.log'}"
                console.print(f"{case}: {args.drivers} drivers, --trials {args.trials}")
                rows.append({"case": case, **run_case(url, folder, executor, args)})
                console.print(_summary(rows[-1], args))
        finally:
            if server is not None:
                server.stop()
    table = Table(title=f"{args.drivers} drivers started at once on one study, --trials {args.trials} "
                        f"(mlp, base width 16, grow factor {args.grow_factor:g})")
    for column in ("storage:executor", "exit codes", "error lines", "base trials", "duplicated", "drivers with base",
                   "target trials (complete unless said)", "reports", "wall s"):
        table.add_column(column, justify="right")
    for row in rows:
        states = ", ".join(f"{n} {state.lower()}" for state, n in row["states"].items())
        table.add_row(row["case"], " ".join(map(str, row["exit_codes"])), str(row["error_lines"]),
                      f"{row['base_trials']} ({states})", str(row["duplicated_configurations"]),
                      str(row["drivers_with_base_trials"]),
                      ", ".join(f"{n} {role.removesuffix(' complete')}" for role, n in row["target_trials"].items()) or "none",
                      str(row["distinct_reports"]), f"{row['wall_seconds']:.0f}")
    console.print(table)
    notes = _notes(rows, args)
    console.print(notes)
    record = make_record("drivers", argv, args, modules=("torch", "optuna", "ray", "psycopg"), rows=rows)
    append_result(args, record, [table], notes, console)
    return record


def search_command(url: str, workdir: Path, executor: str, trials: int, grow_factor: float) -> list[str]:
    """The one command every driver runs (tiny: the residual MLP at width 16, 2 tokens/parameter),
    with trials claimed one at a time (successive halving claims a whole bracket per driver)."""
    return [sys.executable, "-m", "hpogrow", "search", "--task", "mlp", "--base-width", "16", "--depth", "1",
            "--tokens-per-param", "2", "--evaluations", "4", "--device", "cpu", "--executor", executor,
            "--scheduler", "median" if executor == "local" else "asha",
            "--trials", str(trials), "--grow-factor", f"{grow_factor:g}", "--seeds", "1",  # one target pair
            "--storage", url, "--workdir", str(workdir)]


def run_case(url: str, folder: Path, executor: str, args: argparse.Namespace) -> dict:
    """Start ``args.drivers`` drivers at once, wait for all, and audit them and their study."""
    env = {**os.environ, "PYTHONPATH": str(REPOSITORY), "OMP_NUM_THREADS": "1", "COLUMNS": "160"}
    command = search_command(url, folder / "work", executor, args.trials, args.grow_factor)
    started = time.perf_counter()
    drivers = [subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env,
                                cwd=folder.parent) for _ in range(args.drivers)]
    outputs = []
    for driver in drivers:
        try:
            outputs.append(driver.communicate(timeout=max(1.0, args.timeout - (time.perf_counter() - started))))
        except subprocess.TimeoutExpired:
            driver.kill()
            outputs.append(driver.communicate())
    wall = time.perf_counter() - started
    errors = [line for _, err in outputs for line in err.splitlines() if ERROR_LINE.search(line)]
    reports = {final_report(out) for driver, (out, _) in zip(drivers, outputs) if driver.returncode == 0}
    return {"exit_codes": [driver.returncode for driver in drivers], "error_lines": len(errors),
            "first_errors": list(dict.fromkeys(errors))[:5], "distinct_reports": len(reports),
            "wall_seconds": wall, "command": " ".join(command), **audit_study(url)}


def audit_study(url: str) -> dict:
    """Base trials, their states, duplicated configurations and drivers; the target trials by role."""
    from hpogrow.storage import open_storage

    storage = open_storage(url)
    names = optuna.get_all_study_names(storage)
    if f"{STUDY}/base" not in names:
        return {"base_trials": 0, "states": {}, "duplicated_configurations": 0, "drivers_with_base_trials": 0,
                "target_trials": {}}
    base = optuna.load_study(study_name=f"{STUDY}/base", storage=storage).get_trials(deepcopy=False)
    configurations = collections.Counter((t.params.get("learning_rate"), t.params.get("batch_size")) for t in base)
    targets = collections.Counter()
    for name in names:
        if name.startswith(f"{STUDY}/target"):
            for trial in optuna.load_study(study_name=name, storage=storage).get_trials(deepcopy=False):
                targets[f"{trial.user_attrs.get('role')} {trial.state.name.lower()}"] += 1
    return {"base_trials": len(base), "states": dict(collections.Counter(t.state.name for t in base)),
            "duplicated_configurations": sum(n - 1 for n in configurations.values()),
            "drivers_with_base_trials": len({t.user_attrs.get("driver") for t in base}),
            "target_trials": dict(sorted(targets.items()))}


def final_report(stdout: str) -> str:
    """The report a driver printed last: from the base study's table title to the end."""
    lines = stdout.splitlines()
    starts = [i for i, line in enumerate(lines) if line.strip().startswith(f"{STUDY}/base:")]
    return "\n".join(lines[starts[-1]:]) if starts else ""


def _notes(rows: list[dict], args: argparse.Namespace) -> str:
    return "\n".join(f"- {_summary(row, args)}" for row in rows)


def _summary(row: dict, args: argparse.Namespace) -> str:
    """One case in a line: whether it went as it should, and its counts."""
    right = (row["exit_codes"] == [0] * args.drivers and row["base_trials"] == args.trials
             and not row["duplicated_configurations"] and row["distinct_reports"] == 1 and not row["error_lines"]
             and row["target_trials"] == {"scratch complete": 1, "warmstart complete": 1})
    verdict = "as it should" if right else "NOT as it should"
    return (f"{row['case']}: {verdict} — exit codes {row['exit_codes']}, {row['base_trials']} base trials of "
            f"{args.trials} from {row['drivers_with_base_trials']} drivers, {row['duplicated_configurations']} "
            f"duplicated, target {row['target_trials']}, {row['distinct_reports']} distinct report(s), "
            f"{row['error_lines']} error lines" + (f" (first: {row['first_errors'][:2]})" if row["first_errors"] else ""))


if __name__ == "__main__":
    main()
