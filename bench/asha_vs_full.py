"""ASHA against a full-budget search over the same configurations, on the embedded LM (issue 3).

The same ``--trials`` configurations (drawn once from the LM search space with a seeded random
sampler) run twice through :class:`hpogrow.executors.ray.RayExecutor`: every one to its full
token budget (scheduler ``none``), then under ASHA. Reported: the best full-budget loss of each
search, whether ASHA's winner is within 1% of the full search's best, the tokens each search
consumed and their ratio. Then Ray's per-trial overhead on this machine: ``--overhead-trials``
trivial trials through Tune against the same function called in process.

    python bench/asha_vs_full.py            # width 32, 12 trials, 20 tokens/parameter (~2.5 min on 2 cores)
    python bench/asha_vs_full.py --quick    # smoke size
"""

from __future__ import annotations

import argparse
import datetime
import io
import json
import logging
import os
import platform
import subprocess
import tempfile
import time
from pathlib import Path

import optuna
import ray
import torch
from rich.console import Console
from rich.table import Table

from hpogrow.executors.ray import RayExecutor
from hpogrow.pipeline import SearchConfig, make_plan
from hpogrow.runs import BaseTrial
from hpogrow.space import load_space
from hpogrow.storage import load_or_create_study, open_storage
from hpogrow.tasks import LanguageTask

TrialState = optuna.trial.TrialState


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--base-width", type=int, default=32)
    parser.add_argument("--depth", type=int, default=2)
    parser.add_argument("--trials", type=int, default=12)
    parser.add_argument("--tokens-per-param", type=float, default=20.0)
    parser.add_argument("--evaluations", type=int, default=16)
    parser.add_argument("--reduction-factor", type=int, default=2)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--overhead-trials", type=int, default=16)
    parser.add_argument("--quick", action="store_true", help="tiny sizes, for a smoke run")
    parser.add_argument("--results", default=str(Path(__file__).with_name("RESULTS.md")))
    args = parser.parse_args(argv)
    if args.quick:
        args.base_width, args.trials, args.tokens_per_param, args.evaluations, args.overhead_trials = 16, 4, 2.0, 4, 4
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    console = Console(width=140)
    task = LanguageTask(depth=args.depth, head_size=16, seq_len=64, eval_tokens=4096)
    started = time.perf_counter()
    ray.init(address="local", num_cpus=os.cpu_count(), include_dashboard=False, log_to_driver=False,
             logging_level=logging.ERROR)
    init_seconds = time.perf_counter() - started
    try:
        with tempfile.TemporaryDirectory(prefix="hpogrow-asha-bench-") as folder:
            searches = {scheduler: _search(task, args, scheduler, Path(folder), console)
                        for scheduler in ("none", "asha")}
        overhead = _overhead(args.overhead_trials)
    finally:
        ray.shutdown()

    full, asha = searches["none"], searches["asha"]
    within = asha["best_loss"] <= 1.01 * full["best_loss"]
    ratio = asha["tokens"] / full["tokens"]
    table = Table(title=f"ASHA vs full-budget search on the embedded LM (width {args.base_width}, depth {args.depth}, "
                        f"{args.trials} configurations, {args.tokens_per_param:g} tokens/param, rf {args.reduction_factor})")
    for column in ("search", "complete", "pruned", "best loss", "winner", "tokens", "wall s"):
        table.add_column(column, justify="right")
    for name, row in (("full budget", full), ("ASHA", asha)):
        table.add_row(name, str(row["complete"]), str(row["pruned"]), f"{row['best_loss']:.4f}", f"#{row['winner']}",
                      f"{row['tokens']:,}", f"{row['seconds']:.0f}")
    console.print(table)
    verdict = "within" if within else "NOT within"
    summary = (f"ASHA's winner is {verdict} 1% of the full search's best loss "
               f"({asha['best_loss']:.4f} vs {full['best_loss']:.4f}) using {ratio:.2f}× the tokens "
               f"({1 / ratio:.1f}× fewer).\nRay: ray.init {init_seconds:.1f} s; {args.overhead_trials} trivial trials "
               f"{overhead['tune_seconds']:.1f} s through Tune vs {overhead['inprocess_seconds'] * 1000:.1f} ms in process "
               f"= {overhead['per_trial_seconds']:.2f} s overhead per trial (reused actors).")
    console.print(summary)
    record = {"benchmark": "asha_vs_full", "date": datetime.datetime.now().isoformat(timespec="seconds"),
              "machine": f"{platform.machine()} {os.cpu_count()} cores", "python": platform.python_version(),
              "torch": torch.__version__, "ray": ray.__version__, "optuna": optuna.__version__, "commit": _commit(),
              "args": vars(args), "full": full, "asha": asha, "within_1_percent": within, "token_ratio": ratio,
              "ray_init_seconds": init_seconds, "overhead": overhead}
    if not args.quick or args.results != parser.get_default("results"):
        _append(Path(args.results), table, summary, record, console)
    return record


def _search(task: LanguageTask, args, scheduler: str, folder: Path, console: Console) -> dict:
    """One search over the seeded configurations; returns its outcome and the tokens it used."""
    workdir = folder / scheduler
    config = SearchConfig(base_width=args.base_width, trials=args.trials, tokens_per_param=args.tokens_per_param,
                          evaluations=args.evaluations, seed=args.seed, workdir=str(workdir), device="cpu",
                          pruner="none", executor="ray", scheduler=scheduler, reduction_factor=args.reduction_factor)
    plan = make_plan(task, config)
    study = load_or_create_study(open_storage(config.storage_url), plan.base_study, {"bench": scheduler},
                                 optuna.samplers.TPESampler(seed=args.seed))
    for params in _configurations(args.trials, args.seed):
        study.enqueue_trial(params)
    executor = RayExecutor(scheduler=scheduler, reduction_factor=args.reduction_factor,
                           storage_path=str(workdir / "ray"))
    console.print(f"{scheduler}: {args.trials} trials of {plan.base_tokens:,} tokens "
                  f"(rungs {executor.rungs(plan.base_tokens, args.evaluations)})")
    started = time.perf_counter()
    executor.run(study, plan.space, args.trials, BaseTrial(task, args.base_width, plan.template, plan.checkpoint_dir / "base"))
    seconds = time.perf_counter() - started
    trials = study.get_trials(deepcopy=False)
    complete = [t for t in trials if t.state == TrialState.COMPLETE]
    winner = min(complete, key=lambda t: t.value)
    return {"complete": len(complete), "pruned": sum(t.state == TrialState.PRUNED for t in trials),
            "failed": sum(t.state == TrialState.FAIL for t in trials), "best_loss": winner.value,
            "winner": winner.number, "winner_params": winner.params, "seconds": seconds,
            "tokens": sum(int(t.user_attrs.get("fidelity_reached", 0)) for t in trials),
            "trial_budget": plan.base_tokens}


def _configurations(count: int, seed: int) -> list[dict]:
    """``count`` configurations drawn from the LM space by a seeded random sampler."""
    space = load_space(None, "lm")
    draw = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=seed))
    return [draw.ask(space.distributions()).params for _ in range(count)]


def _trivial(config: dict) -> None:
    from ray import tune

    tune.report({"val_loss": float(config["x"])})


def _overhead(count: int) -> dict:
    """Wall time of ``count`` trivial trials through Tune against calling them in process."""
    from ray import tune

    started = time.perf_counter()
    for x in range(count):
        float(x)  # what the trivial trial computes
    inprocess = time.perf_counter() - started
    with tempfile.TemporaryDirectory(prefix="hpogrow-overhead-") as folder:
        tuner = tune.Tuner(tune.with_resources(_trivial, {"cpu": 1}),
                           param_space={"x": tune.grid_search(list(range(count)))},
                           tune_config=tune.TuneConfig(reuse_actors=True, max_concurrent_trials=os.cpu_count()),
                           run_config=tune.RunConfig(storage_path=folder, name="overhead", verbose=0))
        started = time.perf_counter()
        tuner.fit()
        tune_seconds = time.perf_counter() - started
    return {"trials": count, "tune_seconds": tune_seconds, "inprocess_seconds": inprocess,
            "per_trial_seconds": (tune_seconds - inprocess) / count}


def _commit() -> str:
    try:
        return subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True,
                              cwd=Path(__file__).parent).stdout.strip() or "unknown"
    except OSError:
        return "unknown"


def _append(path: Path, table: Table, summary: str, record: dict, console: Console) -> None:
    text = Console(width=140, record=True, file=io.StringIO())
    text.print(table)
    arguments = " ".join(f"--{k.replace('_', '-')} {v}" for k, v in record["args"].items() if k not in ("results", "quick"))
    block = (f"\n## asha_vs_full — {record['date']}, commit {record['commit']}, {record['machine']}, "
             f"Python {record['python']}, torch {record['torch']}, ray {record['ray']}, optuna {record['optuna']}\n\n"
             f"`python bench/asha_vs_full.py {arguments}`\n\n```\n{text.export_text()}```\n\n{summary}\n")
    with path.open("a") as handle:
        handle.write(block)
    with path.with_name("results.jsonl").open("a") as handle:
        handle.write(json.dumps(record) + "\n")
    console.print(f"appended to {path}")


if __name__ == "__main__":
    main()
