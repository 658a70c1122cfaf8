"""Where the default run's time goes (issue 23, item 5): ``hpogrow search --base-width 128`` as a
new user runs it, timed end to end, its phases read back from the study.

The command runs as a fresh process in a temporary work folder; the phases come from the trials'
own start and end times: start-up and the plan (process start to the first base trial), the
base search, the replicate base, the target runs (each one's time open beside its training
time, tokens ÷ its tokens/s), and the tail (the last target run's end to the process's: report,
plot, notes). Times are stated with the throughput the plan measured, since machines of this kind
differ by 2× from day to day.

    python bench/default_run.py            # the README's command (~5 min on 2 cores)
    python bench/default_run.py --quick    # width 64, 2 trials, 1 pair
"""

from __future__ import annotations

import argparse
import os
import re
import subprocess
import sys
import tempfile
import time
from datetime import datetime, timezone
from pathlib import Path

import optuna
from rich.console import Console
from rich.table import Table

from _harness import WIDTH, add_common_options, append_result, make_record

COMMAND = ["search", "--base-width", "128"]
QUICK = ["search", "--base-width", "64", "--trials", "2", "--seeds", "1", "--evaluations", "4"]


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--output", default=None, help="also write the command's own output here (what the README quotes)")
    add_common_options(parser)
    args = parser.parse_args(argv)
    command = QUICK if args.quick else COMMAND
    console = Console(width=WIDTH)
    with tempfile.TemporaryDirectory(prefix="hpogrow-default-run-") as folder:
        started = time.time()
        run = subprocess.run([sys.executable, "-m", "hpogrow", *command, "--workdir", folder], capture_output=True,
                             text=True, env={**os.environ, "COLUMNS": "140"})
        ended = time.time()
        if args.output:
            Path(args.output).write_text(run.stdout)
        if run.returncode:
            raise RuntimeError(f"hpogrow {' '.join(command)} failed: {run.stderr[-2000:]}")
        storage = optuna.storages.RDBStorage(f"sqlite:///{folder}/hpogrow.db")
        phases = _phases(storage, started, ended)
    speeds = [float(x.replace(",", "")) for x in re.findall(r"([\d,]+) tokens/s at width", run.stdout)[:1]]
    table = Table(title=f"hpogrow {' '.join(command)}: {ended - started:.0f} s end to end"
                        + (f", plan measured {speeds[0]:,.0f} tokens/s at the base width" if speeds else ""))
    for column in ("phase", "from (s)", "to (s)", "seconds", "share", "detail"):
        table.add_column(column, justify="right" if column not in ("phase", "detail") else "left")
    for phase in phases:
        table.add_row(phase["phase"], f"{phase['from']:.0f}", f"{phase['to']:.0f}", f"{phase['seconds']:.0f}",
                      f"{phase['seconds'] / (ended - started):.0%}", phase.get("detail", ""))
    console.print(table)
    notes = ("Phases overlap where runs are concurrent (the target runs share the cores); 'training' is a run's tokens "
             "÷ its own tokens/s, so open − training is time the run spent waiting, starting or being recorded.")
    console.print(notes)
    result = make_record("default_run", argv, args, modules=("torch", "ray", "optuna", "mup"), hpogrow_command=command,
                         seconds=ended - started, base_tokens_per_second=speeds[0] if speeds else None, phases=phases)
    append_result(args, result, [table], notes, console)
    return result


def _phases(storage, started: float, ended: float) -> list[dict]:
    def at(moment: datetime) -> float:
        return moment.replace(tzinfo=timezone.utc).timestamp() - started if moment.tzinfo is None else \
            moment.timestamp() - started

    summaries = optuna.get_all_study_summaries(storage)
    base = next(s for s in summaries if s.study_name.endswith("/base"))
    target = next(s for s in summaries if "/target-" in s.study_name)
    base_trials = optuna.load_study(study_name=base.study_name, storage=storage).trials
    target_trials = optuna.load_study(study_name=target.study_name, storage=storage).trials
    first = min(at(t.datetime_start) for t in base_trials)
    spent = sum(t.user_attrs.get("fidelity_reached", 0) for t in base_trials)
    budget = max(t.user_attrs.get("fidelity_reached", 0) for t in base_trials)
    phases = [{"phase": "start-up and plan", "from": 0.0, "to": first, "seconds": first},
              {"phase": "base search", "from": first, "to": max(at(t.datetime_complete) for t in base_trials),
               "detail": f"{len(base_trials)} trials, {spent / (len(base_trials) * budget):.3f}× the tokens of "
                         "as many full-budget trials"}]
    for trial in sorted(target_trials, key=lambda t: t.number):
        role = trial.user_attrs.get("role", "?")
        label = role + (f" {trial.user_attrs['pair']}" if "pair" in trial.user_attrs else "")
        tokens, speed = trial.user_attrs.get("tokens"), trial.user_attrs.get("tokens_per_second")
        training = tokens / speed if tokens and speed else None
        phases.append({"phase": label, "from": at(trial.datetime_start), "to": at(trial.datetime_complete),
                       "training": training, "detail": f"training {training:.0f} s at {speed:,.0f} tokens/s"
                       if training else ""})
    last = max(phase["to"] for phase in phases)
    phases.append({"phase": "tail (report, plot, notes)", "from": last, "to": ended - started})
    for phase in phases:
        phase.setdefault("seconds", phase["to"] - phase["from"])
    return phases


if __name__ == "__main__":
    main()
